package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.Collections

/**
 * The library's built-in Bluetooth transport (btleplug, chosen with `lockTransport = null`)
 * opening doors through the fake BlueZ: a private D-Bus whose locks are real porta-lock state
 * machines provisioned by the real porta-server. Nothing in the library knows it is a test.
 * A fresh server per test; one fake BlueZ for the JVM (see [FakeBluez]).
 */
class BluetoothTest {
    private val server = TestServer()
    private val bluez = FakeBluez.get()

    @AfterEach
    fun stop() {
        bluez.powered(true)
        server.close()
    }

    private class Progress : UnlockListener {
        val events: MutableList<UnlockProgress> = Collections.synchronizedList(mutableListOf())
        override fun onProgress(progress: UnlockProgress) { events.add(progress) }
    }

    /**
     * Ada on a fresh phone whose client uses the built-in Bluetooth, her doors synced. Call it
     * after [FakeBluez.serve], which replaces the doors' locks: the phone learns the served ones.
     */
    private suspend fun ada(): PortaClient {
        val client = newClient(server.url, MemorySecureStore(), lockTransport = null)
        client.signInWithOutbox(server, "ada@demo.porta.app")
        client.doors()
        return client
    }

    private suspend fun PortaClient.mainEntrance(): Door = cachedDoors().first { it.name == "Main entrance" }

    /** The phone closed the link and told BlueZ so. */
    private fun assertClosed(trace: LockTrace) {
        assertFalse(trace.connected, "the link is still up: $trace")
        assertTrue(trace.disconnectCalls >= 1, "the phone never disconnected: $trace")
    }

    private fun opensTheMainEntranceAt(mtu: Int) = runBlocking<Unit> {
        bluez.serve(server, mtu)
        val client = ada()
        val door = client.mainEntrance()
        val lockId = door.lockId!!
        val progress = Progress()
        client.unlock(door.doorId, progress)
        assertEquals(
            listOf(UnlockProgress.SEARCHING, UnlockProgress.CONNECTING, UnlockProgress.VERIFYING, UnlockProgress.OPENED),
            progress.events.toList(),
        )
        assertEquals(1, bluez.opened(lockId))
        val trace = bluez.trace(lockId)
        assertEquals(1, trace.connects, "$trace")
        assertClosed(trace)
        // Fragments sized for the MTU BlueZ reported: the Proof fills 20-byte fragments at 23
        // and goes in one write at 517.
        val capacity = minOf(mtu - 3, 512)
        assertTrue(trace.writes.all { it <= capacity }, "$trace")
        if (mtu == 23) assertEquals(capacity, trace.writes.max(), "$trace") else assertTrue(trace.writes.max() > 182, "$trace")
        val log = client.accessLog()
        assertEquals(1, log.events.size)
        assertTrue(log.events[0].opened)
        assertEquals("Main entrance", log.events[0].doorName)
    }

    @Test
    fun `the fake BlueZ serves the building's locks on a private bus`() {
        assertTrue(bluez.address.startsWith("unix:path="), bluez.address)
        val locks = bluez.serve(server, 185)
        assertEquals(3, locks.size)
        assertEquals(0, bluez.opened(locks[0]))
        assertEquals(0, bluez.trace(locks[0]).connects)
    }

    @Test
    fun `Ada opens the main entrance over Bluetooth at MTU 23`() = opensTheMainEntranceAt(23)

    @Test
    fun `Ada opens the main entrance over Bluetooth at MTU 517`() = opensTheMainEntranceAt(517)

    @Test
    fun `a lock that does not advertise is NotInRange`() = runBlocking<Unit> {
        bluez.serve(server, 185)
        val client = ada()
        val door = client.mainEntrance()
        bluez.fault(door.lockId!!, "not-advertising")
        val progress = Progress()
        assertThrows<PortaException.NotInRange> { runBlocking { client.unlock(door.doorId, progress) } }
        assertEquals(listOf(UnlockProgress.SEARCHING), progress.events.toList())
        assertEquals(0, bluez.trace(door.lockId!!).connects)
        assertEquals(0, bluez.opened(door.lockId!!))
    }

    @Test
    fun `Bluetooth off is BluetoothOff`() = runBlocking<Unit> {
        bluez.serve(server, 185)
        val client = ada()
        val door = client.mainEntrance()
        bluez.powered(false)
        assertThrows<PortaException.BluetoothOff> { runBlocking { client.unlock(door.doorId, Progress()) } }
        assertEquals(0, bluez.trace(door.lockId!!).connects)
    }

    @Test
    fun `a link lost mid-handshake is ConnectionLost with the door shut and the link closed`() = runBlocking<Unit> {
        bluez.serve(server, 185)
        val client = ada()
        val door = client.mainEntrance()
        bluez.fault(door.lockId!!, "disconnect-mid-handshake")
        assertThrows<PortaException.ConnectionLost> { runBlocking { client.unlock(door.doorId, Progress()) } }
        assertEquals(0, bluez.opened(door.lockId!!))
        val trace = bluez.trace(door.lockId!!)
        assertEquals(2, trace.connects, "one retry, then the phone gives up: $trace")
        assertClosed(trace)
    }
}
