// Pure Kotlin/JVM: everything the Python reference client decides, with no Android import, so the
// same code runs in the app and in this project's JVM tests (jvm-test.sh, or `gradle :core:test`).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    api(libs.gson)
    testImplementation(libs.junit)
}

tasks.test {
    // a relative -PcompressBundle is taken from this project's root (examples/android)
    val bundle = rootDir.resolve(providers.gradleProperty("compressBundle").getOrElse("../../runs/dc_clip/bundle"))
    systemProperty("compress.bundle", bundle.canonicalPath)
}
