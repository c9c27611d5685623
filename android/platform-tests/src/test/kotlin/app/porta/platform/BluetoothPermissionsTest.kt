package app.porta.platform

import android.Manifest
import android.app.Application
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothManager
import android.content.pm.PackageManager
import android.location.LocationManager
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/** What the app asks the user for before an unlock, on Android 11 (API 30) and Android 12 (API 31). */
@RunWith(RobolectricTestRunner::class)
class BluetoothPermissionsTest {
    private lateinit var app: Application

    @Before
    fun phoneWithBluetoothLe() {
        app = RuntimeEnvironment.getApplication()
        shadowOf(app.packageManager).setSystemFeature(PackageManager.FEATURE_BLUETOOTH_LE, true)
        bluetooth(on = true)
        shadowOf(app.getSystemService(LocationManager::class.java)!!).setLocationEnabled(true)
    }

    private fun bluetooth(on: Boolean) {
        val adapter: BluetoothAdapter = app.getSystemService(BluetoothManager::class.java)!!.adapter
        shadowOf(adapter).setEnabled(on)
    }

    private fun grant(vararg permissions: String) = shadowOf(app).grantPermissions(*permissions)

    @Test
    @Config(sdk = [30])
    fun android11AsksForFineLocationOnly() {
        assertEquals(listOf(Manifest.permission.ACCESS_FINE_LOCATION), BluetoothPermissions.required())
        // The Android 12 permissions do not exist there: granting them changes nothing.
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        assertFalse(BluetoothPermissions.granted(app))
        assertEquals(BluetoothReadiness.PermissionsMissing, BluetoothPermissions.readiness(app))
        grant(Manifest.permission.ACCESS_FINE_LOCATION)
        assertTrue(BluetoothPermissions.granted(app))
        assertEquals(BluetoothReadiness.Ready, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [31])
    fun android12AsksForScanAndConnectAndNoLocation() {
        assertEquals(
            listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT),
            BluetoothPermissions.required(),
        )
        grant(Manifest.permission.ACCESS_FINE_LOCATION)
        assertEquals(BluetoothPermissions.required(), BluetoothPermissions.missing(app))
        grant(Manifest.permission.BLUETOOTH_SCAN)
        assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), BluetoothPermissions.missing(app))
        assertEquals(BluetoothReadiness.PermissionsMissing, BluetoothPermissions.readiness(app))
        grant(Manifest.permission.BLUETOOTH_CONNECT)
        assertEquals(emptyList<String>(), BluetoothPermissions.missing(app))
        assertEquals(BluetoothReadiness.Ready, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [31])
    fun aDeniedPermissionStaysMissing() {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        shadowOf(app).denyPermissions(Manifest.permission.BLUETOOTH_CONNECT)
        assertEquals(listOf(Manifest.permission.BLUETOOTH_CONNECT), BluetoothPermissions.missing(app))
        assertEquals(BluetoothReadiness.PermissionsMissing, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [31])
    fun bluetoothOffIsToldApartFromMissingPermissions() {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        bluetooth(on = false)
        assertFalse(BluetoothPermissions.isBluetoothOn(app))
        assertEquals(BluetoothReadiness.BluetoothOff, BluetoothPermissions.readiness(app))
        assertEquals(BluetoothAdapter.ACTION_REQUEST_ENABLE, BluetoothPermissions.enableBluetoothIntent().action)
        bluetooth(on = true)
        assertTrue(BluetoothPermissions.isBluetoothOn(app))
        assertEquals(BluetoothReadiness.Ready, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [30])
    fun android11NeedsTheLocationSettingOnToFindLocks() {
        grant(Manifest.permission.ACCESS_FINE_LOCATION)
        shadowOf(app.getSystemService(LocationManager::class.java)!!).setLocationEnabled(false)
        assertEquals(BluetoothReadiness.LocationOff, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [31])
    fun android12FindsLocksWithTheLocationSettingOff() {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        shadowOf(app.getSystemService(LocationManager::class.java)!!).setLocationEnabled(false)
        assertEquals(BluetoothReadiness.Ready, BluetoothPermissions.readiness(app))
    }

    @Test
    @Config(sdk = [31])
    fun aPhoneWithoutBluetoothLeCannotUnlock() {
        grant(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT)
        shadowOf(app.packageManager).setSystemFeature(PackageManager.FEATURE_BLUETOOTH_LE, false)
        assertFalse(BluetoothPermissions.isBluetoothOn(app))
        assertEquals(BluetoothReadiness.Unsupported, BluetoothPermissions.readiness(app))
    }
}
