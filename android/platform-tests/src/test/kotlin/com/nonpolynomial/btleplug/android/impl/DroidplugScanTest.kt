package com.nonpolynomial.btleplug.android.impl

import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothManager
import android.os.ParcelUuid
import org.junit.Assert.assertEquals
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * The packaged droidplug Java (btleplug 0.13.5, which the core's BtleplugTransport calls through JNI)
 * on Android's framework classes: what a scan does with Bluetooth on and off. In this package because
 * droidplug's classes are package-private.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [31])
class DroidplugScanTest {
    private val portaService = "5a1e0001-7c3b-4f2e-9b1d-706f72746121" // PORTA_SERVICE_UUID in core/src/unlock.rs

    private fun adapter(): BluetoothAdapter =
        RuntimeEnvironment.getApplication().getSystemService(BluetoothManager::class.java)!!.adapter

    @Test
    fun withBluetoothOffAScanFailsAsNoAdapter() {
        shadowOf(adapter()).setEnabled(false)
        // With the system's "Bluetooth scanning" setting on, Android scans even with Bluetooth off
        // (and the connection then fails): BluetoothPermissions.readiness checks isEnabled first.
        shadowOf(adapter()).setBleScanAlwaysAvailable(false)
        try {
            Adapter().startScan(ScanFilter(arrayOf(portaService)))
            fail("scanned with Bluetooth off")
        } catch (e: NoBluetoothAdapterException) {
            // btleplug's start_scan turns this into Error::NoAdapterAvailable: on Android, "Bluetooth is off".
        }
    }

    @Test
    fun aScanLooksForThePortaServiceOnly() {
        shadowOf(adapter()).setEnabled(true)
        val adapter = Adapter()
        adapter.startScan(ScanFilter(arrayOf(portaService)))
        val scanner = shadowOf(adapter().bluetoothLeScanner)
        val scan = scanner.activeScans.single()
        assertEquals(listOf(ParcelUuid.fromString(portaService)), scan.scanFilters().map { it.serviceUuid })
        adapter.stopScan()
        assertEquals(0, scanner.activeScans.size)
    }
}
