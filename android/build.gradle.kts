// The Porta Android library (AAR): the UniFFI-generated Kotlin (package app.porta), the
// native libporta_ffi.so per ABI, btleplug's Java side for Bluetooth LE (src/main/java, kept by
// consumer-rules.pro), the BLE permissions (src/main/AndroidManifest.xml), and app.porta.platform:
// an Android Keystore-backed SecureStore, BluetoothPermissions, PortaAndroid (see README.md).
//
// Build it with `cargo xtask aar` (needs the Android SDK + NDK and `cargo install cargo-ndk`):
// it runs cargo-ndk for arm64-v8a, armeabi-v7a and x86_64 into src/main/jniLibs, generates
// the bindings into src/main/kotlin, then `gradle assembleRelease`.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.21"
}

android {
    namespace = "app.porta"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
}

dependencies {
    // JNA's AAR carries its own native dispatch library per ABI.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
