package app.porta.platform

/**
 * Start-up for the Porta library on Android.
 *
 * Call [loadNativeLibrary] once, before the first unlock (`Application.onCreate` is the simplest place).
 * It loads `libporta_ffi.so` through the JVM, which runs the library's `JNI_OnLoad`: that hands
 * btleplug (the core's Bluetooth LE layer) the JavaVM and the Java classes of its Android backend.
 * The generated bindings open the same library through JNA, which does not run `JNI_OnLoad`; without
 * this call every other Porta feature works, but every unlock through the built-in Bluetooth transport fails.
 */
object PortaAndroid {
    /** The library's name, as `uniffi.toml` gives it to the generated bindings (`cdylib_name`). */
    const val LIBRARY = "porta_ffi"

    @Volatile
    private var loaded = false

    /**
     * Loads the native library; later calls do nothing. Throws [UnsatisfiedLinkError] when the
     * library is not in the APK for this ABI, or when the Bluetooth set-up failed (the AAR was shrunk
     * without its consumer ProGuard rules; logcat, tag `porta`, says why).
     */
    @JvmStatic
    @Synchronized
    fun loadNativeLibrary() {
        if (loaded) return
        System.loadLibrary(LIBRARY)
        loaded = true
    }
}
