package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * The library's built-in Bluetooth transport (btleplug) opening doors through the fake BlueZ:
 * a private D-Bus whose locks are real porta-lock state machines provisioned by the real
 * porta-server. Nothing in the library knows it is a test.
 */
class BluetoothTest {
    private val server = TestServer()

    @AfterEach
    fun stop() = server.close()

    @Test
    fun `the fake BlueZ serves the building's locks on a private bus`() {
        val bluez = FakeBluez.get()
        assertTrue(bluez.address.startsWith("unix:path="), bluez.address)
        val locks = bluez.serve(server, 185)
        assertEquals(3, locks.size)
        assertEquals(0, bluez.opened(locks[0]))
        assertEquals(0, bluez.trace(locks[0]).connects)
    }
}
