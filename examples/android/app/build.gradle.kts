import javax.inject.Inject

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// The bundle to ship inside the APK: -PcompressBundle=/path/to/bundle (a relative path is taken from
// examples/android), by default the demo recipe's. Without one the app asks for a bundle pushed with adb.
val bundleFolder: File = rootDir.resolve(providers.gradleProperty("compressBundle").getOrElse("../../runs/dc_clip/bundle"))

/** Copies the compress bundle into the variant's generated assets, as `assets/bundle/`. */
abstract class CopyCompressBundle : DefaultTask() {
    @get:InputFiles
    @get:PathSensitive(PathSensitivity.RELATIVE)
    abstract val bundle: DirectoryProperty

    @get:OutputDirectory
    abstract val outputDirectory: DirectoryProperty

    @get:Inject
    abstract val fileSystem: FileSystemOperations

    @TaskAction
    fun copy() {
        val source = bundle.get().asFile
        val target = outputDirectory.get().dir("bundle").asFile
        if (!source.resolve("manifest.json").isFile) {
            logger.warn("compress: no bundle at $source; the APK will carry none (push one with adb, see README.md)")
            fileSystem.delete { delete(target) }
            return
        }
        // every file, the iOS app's Core ML packages too: manifest.json lists them and verification wants them all
        fileSystem.sync {
            from(source)
            into(target)
        }
    }
}

androidComponents {
    onVariants { variant ->
        val copy = tasks.register<CopyCompressBundle>("copy${variant.name.replaceFirstChar { it.uppercase() }}CompressBundle") {
            bundle.set(bundleFolder)
        }
        variant.sources.assets?.addGeneratedSourceDirectory(copy, CopyCompressBundle::outputDirectory)
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
