package app.porta.platform

import android.Manifest
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothManager
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.location.LocationManager
import android.os.Build

/** Whether this phone can unlock a door over Bluetooth right now, and if not, what the app should ask for. */
enum class BluetoothReadiness {
    /** Everything an unlock needs is there. */
    Ready,

    /** The phone has no Bluetooth LE: unlocking needs another phone (or the building's own means). */
    Unsupported,

    /** The runtime permissions in [BluetoothPermissions.missing] are not granted: ask for them. */
    PermissionsMissing,

    /** Bluetooth is switched off: offer [BluetoothPermissions.enableBluetoothIntent]. */
    BluetoothOff,

    /**
     * Android 11 and earlier only: the system's location setting is off, and then a Bluetooth LE scan
     * finds nothing, so no lock would be in range. Offer the location settings.
     */
    LocationOff,
}

/**
 * The Android side of unlocking over Bluetooth LE, for the app's UI: which runtime permissions to ask
 * for on this Android version, whether they are granted, and whether Bluetooth is on.
 *
 * The library's manifest declares every permission (see android/README.md); on Android 12 (API 31)
 * and later the app must still ask the user for [Manifest.permission.BLUETOOTH_SCAN] and
 * [Manifest.permission.BLUETOOTH_CONNECT] at run time, and on Android 11 and earlier for
 * [Manifest.permission.ACCESS_FINE_LOCATION], which a Bluetooth LE scan needs there. Without them
 * an unlock ends in `PortaException.BluetoothNotPermitted`; with Bluetooth off, in
 * `PortaException.BluetoothOff`.
 */
object BluetoothPermissions {
    /** The runtime permissions an unlock needs on this phone, for `requestPermissions` (or `RequestMultiplePermissions`). */
    @JvmStatic
    fun required(): List<String> =
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        } else {
            listOf(Manifest.permission.ACCESS_FINE_LOCATION)
        }

    /** Those of [required] the user has not granted (empty when all are). */
    @JvmStatic
    fun missing(context: Context): List<String> =
        required().filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }

    /** Whether every permission in [required] is granted. */
    @JvmStatic
    fun granted(context: Context): Boolean = missing(context).isEmpty()

    /** The phone's Bluetooth adapter, or null when it has no Bluetooth LE. */
    private fun adapter(context: Context): BluetoothAdapter? {
        if (!context.packageManager.hasSystemFeature(PackageManager.FEATURE_BLUETOOTH_LE)) return null
        return context.getSystemService(BluetoothManager::class.java)?.adapter
    }

    /** Whether the phone has Bluetooth LE and it is switched on. Needs no runtime permission. */
    @JvmStatic
    fun isBluetoothOn(context: Context): Boolean = adapter(context)?.isEnabled == true

    /** What stands between the user and an unlock, checked in the order the user has to fix it. */
    @JvmStatic
    fun readiness(context: Context): BluetoothReadiness {
        val adapter = adapter(context) ?: return BluetoothReadiness.Unsupported
        return when {
            !granted(context) -> BluetoothReadiness.PermissionsMissing
            !adapter.isEnabled -> BluetoothReadiness.BluetoothOff
            Build.VERSION.SDK_INT < Build.VERSION_CODES.S && !locationOn(context) -> BluetoothReadiness.LocationOff
            else -> BluetoothReadiness.Ready
        }
    }

    /**
     * The system dialog that asks the user to switch Bluetooth on, for `startActivityForResult` (or
     * `StartActivityForResult`). On Android 12 and later it needs BLUETOOTH_CONNECT granted first.
     */
    @JvmStatic
    fun enableBluetoothIntent(): Intent = Intent(BluetoothAdapter.ACTION_REQUEST_ENABLE)

    private fun locationOn(context: Context): Boolean {
        val location = context.getSystemService(LocationManager::class.java) ?: return false
        return if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) {
            location.isLocationEnabled
        } else {
            @Suppress("DEPRECATION")
            location.isProviderEnabled(LocationManager.GPS_PROVIDER) ||
                location.isProviderEnabled(LocationManager.NETWORK_PROVIDER)
        }
    }
}
