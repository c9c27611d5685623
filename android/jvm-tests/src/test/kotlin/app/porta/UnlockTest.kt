package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.Collections

/**
 * A fresh server per test (JUnit's default lifecycle): every test signs the demo resident in,
 * and one server would rate-limit her code requests (5 per 10 minutes) across tests.
 */
class UnlockTest {
    private val server = TestServer()

    @AfterEach
    fun stop() = server.close()

    private class Progress : UnlockListener {
        val events: MutableList<UnlockProgress> = Collections.synchronizedList(mutableListOf())
        override fun onProgress(progress: UnlockProgress) { events.add(progress) }
    }

    /** The demo building's locks, provisioned when [from] started: MTU 185, 30 ms connection interval. */
    private fun locks(from: TestServer = server) = from.locks

    /** Ada on a phone that reaches the locks through [transport]. */
    private suspend fun ada(transport: LockTransport, from: TestServer = server): PortaClient {
        val client = newClient(from.url, MemorySecureStore(), lockTransport = transport)
        client.signInWithOutbox(from, "ada@demo.porta.app")
        return client
    }

    @Test
    fun `resident opens a door with progress in order and sees it in the access log`() = runBlocking<Unit> {
        TestServer().use { own ->
            val locks = locks(own)
            val client = ada(simulatedTransport(locks), own)
            val doors = client.doors()
            assertEquals(listOf("Main entrance", "Bike room", "Roof terrace"), doors.map { it.name })
            val progress = Progress()
            client.unlock(doors[0].doorId, progress)
            assertEquals(1uL, locks[0].openedCount())
            assertEquals(
                listOf(UnlockProgress.SEARCHING, UnlockProgress.CONNECTING, UnlockProgress.VERIFYING, UnlockProgress.OPENED),
                progress.events.toList(),
            )
            val log = client.accessLog()
            assertEquals(1, log.events.size)
            assertTrue(log.events[0].opened)
            assertEquals("Main entrance", log.events[0].doorName)
            assertEquals(30u, log.retention.first { it.doorId == doors[0].doorId }.retentionDays)
        }
    }

    @Test
    fun `a recorded exchange replayed later never opens the door`() = runBlocking<Unit> {
        val locks = locks()
        val client = ada(simulatedTransport(locks))
        client.doors()
        client.unlock(1u, Progress())
        assertEquals(1uL, locks[0].openedCount())
        assertFalse(locks[0].replay(locks[0].phoneFragments()))
        assertEquals(1uL, locks[0].openedCount())
    }

    @Test
    fun `a byte flipped on the air is refused and the credential still works`() = runBlocking<Unit> {
        val locks = locks()
        // An attacker on the air flips a byte of fragment 1 (0 is the Hello; 1 starts the
        // encrypted Proof) during the first unlock only.
        val client = ada(simulatedTransportTampering(locks, 1u))
        client.doors()
        assertThrows<PortaException.Denied> { runBlocking { client.unlock(1u, Progress()) } }
        assertEquals(0uL, locks[0].openedCount())
        client.unlock(1u, Progress())
        assertEquals(1uL, locks[0].openedCount())
    }

    @Test
    fun `expired credential is refused with Expired`() = runBlocking<Unit> {
        val locks = locks()
        val client = ada(simulatedTransport(locks))
        client.doors()
        locks[0].setClock((System.currentTimeMillis() / 1000 + 2 * 24 * 3600).toULong())
        assertThrows<PortaException.Expired> { runBlocking { client.unlock(1u, Progress()) } }
        assertEquals(0uL, locks[0].openedCount())
    }

    @Test
    fun `a device signed out remotely is refused with Revoked`() = runBlocking<Unit> {
        val locks = locks()
        val transport = simulatedTransport(locks)
        val lostPhone = ada(transport)
        lostPhone.doors()
        val lostId = lostPhone.devices().first { it.current }.deviceId
        val tablet = ada(transport)
        tablet.signOutDevice(lostId)
        tablet.doors()
        tablet.unlock(1u, Progress()) // carries the new revocation list to the lock
        assertThrows<PortaException.Revoked> { runBlocking { lostPhone.unlock(1u, Progress()) } }
        assertEquals(1uL, locks[0].openedCount())
    }

    @Test
    fun `unlock works with the server stopped`() = runBlocking<Unit> {
        val own = TestServer()
        val locks = locks(own)
        val client = ada(simulatedTransport(locks), own)
        client.doors()
        own.close()
        client.unlock(2u, Progress())
        assertEquals(1uL, locks[1].openedCount())
        assertEquals(1u, client.pendingAccessEvents(), "the receipt waits for the network")
        assertEquals("Bike room", client.cachedDoors()[1].name)
    }

    @Test
    fun `a lock out of range is NotInRange`() = runBlocking<Unit> {
        val locks = locks()
        val client = ada(simulatedTransport(locks))
        client.doors()
        locks[2].setInRange(false)
        assertThrows<PortaException.NotInRange> { runBlocking { client.unlock(3u, Progress()) } }
    }

    /** The phone's radio: reaches whichever locks are in range now ([inRange], changed by the test). */
    private class Radio(@Volatile var inRange: LockTransport) : LockTransport {
        override suspend fun connect(lockId: UInt, timeoutMs: ULong) = inRange.connect(lockId, timeoutMs)
        override suspend fun write(fragment: ByteArray) = inRange.write(fragment)
        override suspend fun nextNotification(timeoutMs: ULong) = inRange.nextNotification(timeoutMs)
        override suspend fun disconnect() = inRange.disconnect()
    }

    @Test
    fun `a replaced lock is refused`() = runBlocking<Unit> {
        val old = locks()
        val radio = Radio(simulatedTransport(old))
        val client = ada(radio)
        client.doors()
        client.unlock(1u, Progress())
        assertEquals(1uL, old[0].openedCount())

        // The building replaces the main entrance's lock, the new one provisioned from its own request.
        val replacement = NewSimulatedLock()
        val answer = server.provisionLock(1u, replacement)
        val new = replacement.install(answer, 185u, 30.0)
        assertNotEquals(old[0].lockId(), new.lockId())
        // An answer is for the lock that made the request: another lock refuses to install it.
        val refused = assertThrows<PortaException.InvalidInput> { NewSimulatedLock().install(answer, 185u, 30.0) }
        assertEquals("lock provisioning answer", refused.field)
        client.doors()

        // The old lock answering for door 1 (re-flashed under the new lock's id), and door 2's lock
        // doing the same: the phone refuses both before anything of Ada's is sent.
        for (impostor in listOf(old[0], old[1])) {
            radio.inRange = simulatedTransport(listOf(impostor.answeringAs(new.lockId())))
            val progress = Progress()
            assertThrows<PortaException.UntrustedLock> { runBlocking { client.unlock(1u, progress) } }
            assertFalse(UnlockProgress.OPENED in progress.events)
        }
        assertEquals(1uL, old[0].openedCount(), "the old lock never opened again")
        assertEquals(0uL, old[1].openedCount())

        radio.inRange = simulatedTransport(listOf(new))
        client.unlock(1u, Progress())
        assertEquals(1uL, new.openedCount())
    }
}
