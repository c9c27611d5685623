package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.time.Instant
import java.time.OffsetDateTime
import java.time.ZoneOffset

/**
 * Journey 8: Ada invites a cleaner for 09-12; the cleaner's phone is a second client
 * with its own data directory and secure store, never signed in. The simulated lock's clock is
 * set by hand to inside and outside the schedule.
 */
class InvitationTest {
    private val server = TestServer()

    @AfterEach
    fun stop() = server.close()

    private class NoProgress : UnlockListener {
        override fun onProgress(progress: UnlockProgress) {}
    }

    /** The next [hour]:00 in the site's time (UTC + [offsetMinutes]) after [after]. */
    private fun nextAt(hour: Int, offsetMinutes: Int, after: Long): Long {
        val site = ZoneOffset.ofTotalSeconds(offsetMinutes * 60)
        var t = OffsetDateTime.ofInstant(Instant.ofEpochSecond(after), site)
            .withHour(hour).withMinute(0).withSecond(0).withNano(0)
        if (t.toEpochSecond() <= after) t = t.plusDays(1)
        return t.toEpochSecond()
    }

    @Test
    fun `a guest without an account opens the invited door only on schedule, until revoked`() = runBlocking<Unit> {
        val locks = server.locks
        val transport = simulatedTransport(locks)
        val ada = newClient(server.url, MemorySecureStore(), lockTransport = transport)
        ada.signInWithOutbox(server, "ada@demo.porta.app")
        ada.doors()
        val now = System.currentTimeMillis() / 1000

        // Ada invites a cleaner: the main entrance, 09:00-12:00 every day, for the next 8 days. (Every
        // day, not one weekday: the next slot is then within a day, never past a change of
        // daylight-saving time, where the server starts a new credential.)
        val created = ada.createInvitation(
            NewInvitation(
                doors = listOf(1u),
                notBefore = now,
                notAfter = now + 8 * 24 * 3600,
                schedule = listOf(ScheduleWindow(days = 0x7fu, startMinute = (9 * 60).toUShort(), endMinute = (12 * 60).toUShort())),
                uses = 2u,
                label = "cleaner",
            ),
        )
        assertTrue(created.link.contains("/i/"))
        val offset = created.invitation.schedule!!.utcOffsetMinutes.toInt()

        // The cleaner's phone: its own data directory and secure store, no account.
        val guest = newClient(server.url, MemorySecureStore(), lockTransport = transport)
        val preview = guest.invitationPreview(created.code)
        assertEquals(listOf("Main entrance"), preview.doors.map { it.name })
        val accepted = guest.acceptInvitation(created.link)
        assertTrue(guest.isGuest())
        assertEquals(accepted.guestId, guest.acceptInvitation(created.code.lowercase()).guestId, "accepting again")
        val door = guest.cachedDoors().single()
        assertEquals(1u, door.doorId)
        assertEquals(0x7fu.toUByte(), door.access.first().schedule!!.windows.single().days)
        assertThrows<PortaException.GuestAccount> { runBlocking { guest.profile() } }

        // 10:00 at the site: it opens. 13:00 the same day: OutsideSchedule. Another door: NoAccess.
        val inside = nextAt(10, offset, now + 60)
        locks[0].setClock(inside.toULong())
        guest.unlock(1u, NoProgress())
        assertEquals(1uL, locks[0].openedCount())
        locks[0].setClock((inside + 3 * 3600).toULong())
        assertThrows<PortaException.OutsideSchedule> { runBlocking { guest.unlock(1u, NoProgress()) } }
        assertThrows<PortaException.NoAccess> { runBlocking { guest.unlock(2u, NoProgress()) } }
        assertEquals(1uL, locks[0].openedCount())
        // The guest's records reach the server while it still may (the explicit upload waits
        // for the one each unlock starts); from here on its phone is offline: an upload after
        // the revocation would sign it out and wipe its credential.
        guest.uploadAccessEvents()
        assertEquals(0u, guest.pendingAccessEvents())

        // Ada sees the guest by label, revokes the invitation, and her next unlock carries
        // the new revocation list to the lock.
        val sent = ada.invitations()
        assertEquals(1u, sent.invitations.single { it.id == created.invitation.id }.usesLeft)
        val cleaner = sent.guests.single()
        assertEquals("cleaner", cleaner.label)
        assertFalse(cleaner.hasAccount)
        ada.revokeInvitation(created.invitation.id)
        ada.doors()
        locks[0].setClock(now.toULong())
        ada.unlock(1u, NoProgress())
        assertEquals(2uL, locks[0].openedCount())
        locks[0].setClock(inside.toULong())
        assertThrows<PortaException.Revoked> { runBlocking { guest.unlock(1u, NoProgress()) } }
        assertEquals(2uL, locks[0].openedCount())
        assertThrows<PortaException.Revoked> { runBlocking { newClient(server.url, MemorySecureStore()).acceptInvitation(created.code) } }
    }

    @Test
    fun `before its window a guest hears NotYetValid, and a used-up invitation is UsedUp`() = runBlocking<Unit> {
        val locks = server.locks
        val transport = simulatedTransport(locks)
        val ada = newClient(server.url, MemorySecureStore(), lockTransport = transport)
        ada.signInWithOutbox(server, "ada@demo.porta.app")
        val now = System.currentTimeMillis() / 1000
        // One use, from two hours from now.
        val later = ada.createInvitation(NewInvitation(doors = listOf(1u), notBefore = now + 2 * 3600, notAfter = now + 24 * 3600))
        val guest = newClient(server.url, MemorySecureStore(), lockTransport = transport)
        guest.acceptInvitation(later.code)
        assertThrows<PortaException.NotYetValid> { runBlocking { guest.unlock(1u, NoProgress()) } }
        assertEquals(0uL, locks[0].openedCount())
        assertThrows<PortaException.UsedUp> { runBlocking { newClient(server.url, MemorySecureStore()).acceptInvitation(later.link) } }
    }

    @Test
    fun `a mistyped code is InvalidCode before any request`() = runBlocking<Unit> {
        val guest = newClient(server.url, MemorySecureStore())
        assertThrows<PortaException.InvalidCode> { runBlocking { guest.acceptInvitation("not-a-code") } }
        assertFalse(guest.isSignedIn())
    }
}
