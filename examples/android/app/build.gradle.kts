plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// The bundle to ship inside the APK: -PcompressBundle=/path/to/bundle (a relative path is taken from
// examples/android), by default the demo recipe's. Without one the app asks for a bundle pushed with adb.
val bundleFolder: File = rootDir.resolve(providers.gradleProperty("compressBundle").getOrElse("../../runs/dc_clip/bundle"))
val bundleAssets = layout.buildDirectory.dir("generated/compressBundle")

val copyCompressBundle by tasks.registering(Sync::class) {
    description = "Copies the compress bundle into the app's assets (assets/bundle/)."
    // every file, the iOS app's Core ML packages too: manifest.json lists them and verification wants them all
    from(bundleFolder)
    into(bundleAssets.map { it.dir("bundle") })
    doFirst {
        if (!bundleFolder.resolve("manifest.json").isFile) {
            logger.warn("compress: no bundle at $bundleFolder; the APK will carry none (push one with adb, see README.md)")
        }
    }
}

android {
    namespace = "dev.compress.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.compress.app"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner"
        ndk {
            // the ExecuTorch AAR ships these two
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    buildFeatures {
        compose = true
    }

    sourceSets {
        getByName("main").assets.srcDir(bundleAssets)
    }

    androidResources {
        // models are copied out of the APK at first launch; storing them uncompressed makes that a plain copy
        noCompress += listOf("pte", "json", "f32", "bin")
        // keep every bundle file (the default pattern drops names starting with '_'), or verification fails
        ignoreAssetsPattern = "!.svn:!.git:!.ds_store:!*.scc:!CVS:!thumbs.db:!picasa.ini:!*~"
    }

    packaging {
        jniLibs {
            useLegacyPackaging = false
        }
    }
}

tasks.named("preBuild") {
    dependsOn(copyCompressBundle)
}

val executorchVersion = providers.gradleProperty("executorchVersion")

dependencies {
    implementation(project(":core"))
    if (executorchVersion.isPresent) {
        implementation("org.pytorch:executorch-android:${executorchVersion.get()}")
    } else {
        implementation(libs.executorch.android)
    }
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.exifinterface)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.ui.tooling.preview)
    implementation(libs.androidx.compose.material3)
    debugImplementation(libs.androidx.compose.ui.tooling)

    androidTestImplementation(libs.androidx.test.ext.junit)
    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.junit)
}
