//! Mobile packages. Neither runs on this project's Linux CI (no Xcode, no Android NDK); both
//! are kept here so the steps are code, not folklore.

use std::path::Path;
use std::process::Command;

use crate::{cargo, run, Result};

const IOS_TARGETS: &[&str] = &["aarch64-apple-ios", "aarch64-apple-ios-sim", "x86_64-apple-ios"];

/// `Porta.xcframework` from the static library for device and simulators (macOS + Xcode).
pub fn xcframework(root: &Path) -> Result {
    if !cfg!(target_os = "macos") {
        return Err("the XCFramework needs macOS with Xcode (xcodebuild, lipo)".into());
    }
    crate::suites::bindings(root)?;
    for target in IOS_TARGETS {
        run(Command::new("rustup").args(["target", "add", target]))?;
        run(Command::new(cargo()).current_dir(root).args([
            "build",
            "--release",
            "-p",
            "porta-ffi",
            "--no-default-features",
            "--features",
            "bluetooth",
            "--lib",
            "--target",
            target,
        ]))?;
    }
    let out = crate::target_dir(root).join("ios");
    let _ = std::fs::remove_dir_all(&out);
    let headers = out.join("headers");
    std::fs::create_dir_all(&headers).map_err(|e| e.to_string())?;
    std::fs::copy(root.join("ios/Sources/PortaFFI/include/portaFFI.h"), headers.join("portaFFI.h"))
        .map_err(|e| e.to_string())?;
    std::fs::write(headers.join("module.modulemap"), "module PortaFFI {\n  header \"portaFFI.h\"\n  export *\n}\n")
        .map_err(|e| e.to_string())?;
    let lib = |t: &str| crate::target_dir(root).join(format!("{t}/release/libporta_ffi.a"));
    let sim = out.join("libporta_ffi_sim.a");
    run(Command::new("lipo")
        .arg("-create")
        .arg(lib("aarch64-apple-ios-sim"))
        .arg(lib("x86_64-apple-ios"))
        .arg("-output")
        .arg(&sim))?;
    run(Command::new("xcodebuild")
        .arg("-create-xcframework")
        .arg("-library")
        .arg(lib("aarch64-apple-ios"))
        .arg("-headers")
        .arg(&headers)
        .arg("-library")
        .arg(&sim)
        .arg("-headers")
        .arg(&headers)
        .arg("-output")
        .arg(out.join("PortaFFI.xcframework")))?;
    println!("built {}", out.join("PortaFFI.xcframework").display());
    Ok(())
}

/// The Android library: `.so` per ABI with cargo-ndk, then the Gradle module's AAR.
pub fn aar(root: &Path) -> Result {
    if std::env::var_os("ANDROID_NDK_HOME").is_none() {
        return Err("the AAR needs the Android NDK (set ANDROID_NDK_HOME), `cargo install cargo-ndk`, and Gradle with the Android SDK".into());
    }
    crate::suites::bindings(root)?;
    for target in ["aarch64-linux-android", "armv7-linux-androideabi", "x86_64-linux-android"] {
        run(Command::new("rustup").args(["target", "add", target]))?;
    }
    run(Command::new(cargo())
        .current_dir(root)
        .args(["ndk", "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64", "-o", "android/src/main/jniLibs"])
        .args(["build", "--release", "-p", "porta-ffi", "--no-default-features", "--features", "bluetooth", "--lib"]))?;
    let kotlin_out = root.join("android/src/main/kotlin");
    run(Command::new(crate::target_dir(root).join("debug/uniffi-bindgen"))
        .current_dir(root)
        .args(["generate", "--language", "kotlin", "--config", "uniffi.toml", "--out-dir"])
        .arg(&kotlin_out)
        .arg("--library")
        .arg(crate::target_dir(root).join("debug/libporta_ffi.so")))?;
    run(Command::new("gradle").current_dir(root.join("android")).args(["assembleRelease"]))
}
