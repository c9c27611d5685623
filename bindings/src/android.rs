//! Android: the set-up btleplug's Android backend (droidplug) needs before the first unlock.
//!
//! On Android, btleplug drives the platform's Bluetooth stack through Java classes packaged in
//! the AAR (`android/src/main/java`, `com.nonpolynomial.btleplug.android.impl` and
//! `io.github.gedgygedgy.rust`). `btleplug::platform::init` looks those classes up, registers
//! their native methods and keeps the JavaVM, so that the threads the core unlocks on (tokio
//! workers, not Java threads) can attach to it later. Class lookups only see the app's classes
//! from a thread that came from Java, which is why this runs in `JNI_OnLoad`.
//!
//! The JVM calls `JNI_OnLoad` when the app loads the library with
//! `System.loadLibrary("porta_ffi")` (`app.porta.platform.PortaAndroid.loadNativeLibrary()`),
//! on the calling Java thread. JNA, through which the generated Kotlin calls the library,
//! opens it with `dlopen` and never calls `JNI_OnLoad`: the app must also load the library through
//! the JVM, before the first unlock (android/README.md).
//!
//! Only with the `bluetooth` feature (every app build): without it there is no built-in transport
//! to set up, and the library loads without a `JNI_OnLoad`.
#![cfg(all(target_os = "android", feature = "bluetooth"))]

use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::sys::{jint, JNI_ERR, JNI_VERSION_1_6};
use jni::JavaVM;

/// Called by the JVM once, when `System.loadLibrary("porta_ffi")` loads this library.
///
/// A failure here means the AAR was built wrong (droidplug's Java classes missing or renamed by
/// R8): the library refuses to load, so `System.loadLibrary` throws at start-up instead of the
/// first unlock failing later, and the reason goes to logcat.
///
/// # Safety
///
/// Only the JVM calls this, with its own valid `JavaVM` pointer.
#[no_mangle]
pub unsafe extern "system" fn JNI_OnLoad(vm: *mut jni::sys::JavaVM, _reserved: *mut c_void) -> jint {
    if vm.is_null() {
        log_error("JNI_OnLoad without a JavaVM");
        return JNI_ERR;
    }
    // No panic may unwind into the JVM.
    match catch_unwind(AssertUnwindSafe(|| init_bluetooth(vm))) {
        Ok(Ok(())) => JNI_VERSION_1_6,
        Ok(Err(e)) => {
            log_error(&format!("Bluetooth (btleplug) could not be initialised: {e}"));
            JNI_ERR
        }
        Err(_) => {
            log_error("Bluetooth (btleplug) initialisation panicked");
            JNI_ERR
        }
    }
}

fn init_bluetooth(vm: *mut jni::sys::JavaVM) -> Result<(), btleplug::Error> {
    // SAFETY: the JVM hands JNI_OnLoad its own JavaVM, valid for the life of the process.
    // `from_raw` also keeps it as jni's process-wide `JavaVM::singleton()`, the one droidplug
    // attaches its worker threads with later.
    let vm = unsafe { JavaVM::from_raw(vm) };
    // This thread came from Java (System.loadLibrary), so attaching is only a lookup, and its
    // class loader sees the app's classes, droidplug's among them.
    vm.attach_current_thread(btleplug::platform::init)
}

/// Writes to logcat: the app's logger (`setLogger`) is not installed yet when the library loads.
fn log_error(message: &str) {
    #[link(name = "log")]
    extern "C" {
        fn __android_log_write(priority: c_int, tag: *const c_char, text: *const c_char) -> c_int;
    }
    const ANDROID_LOG_ERROR: c_int = 6;
    let text = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: both strings are NUL-terminated and outlive the call.
    unsafe { __android_log_write(ANDROID_LOG_ERROR, c"porta".as_ptr(), text.as_ptr()) };
}
