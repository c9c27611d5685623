package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.util.Collections

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProfileTest {
    private val server = TestServer()

    @AfterAll
    fun stop() = server.close()

    private val png = byteArrayOf(0x89.toByte(), 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A) + ByteArray(64) { it.toByte() }

    @Test
    fun `profile update corrects name and phone`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, uniqueEmail())
        val phone = "+47" + (10_000_000 + (System.nanoTime() % 89_999_999)).toString()
        val updated = client.updateProfile(ProfileUpdate(name = "Kari Nordmann", phone = phone))
        assertEquals("Kari Nordmann", updated.name)
        // A new phone counts only once the code sent to it is confirmed.
        assertNull(updated.phone)
        assertEquals(ContactField.PHONE, updated.pendingContact?.field)
        assertEquals(phone, updated.pendingContact?.value)
        val confirmed = client.confirmContactChange(server.devCode(phone))
        assertEquals(phone, confirmed.phone)
        assertNull(confirmed.pendingContact)
        assertEquals("Kari Nordmann", client.profile().name, "the server kept it")
        assertEquals(phone, client.profile().phone)
    }

    @Test
    fun `a new email needs the code sent to it`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val email = uniqueEmail()
        client.signInWithOutbox(server, email)
        val newEmail = uniqueEmail()
        val pending = client.updateProfile(ProfileUpdate(email = newEmail))
        assertEquals(email, pending.email, "not applied before it is confirmed")
        assertEquals(newEmail, pending.pendingContact?.value)
        val code = server.devCode(newEmail)
        val wrong = ((code.toInt() + 1) % 1_000_000).toString().padStart(6, '0')
        assertThrows<PortaException.InvalidCode> { runBlocking { client.confirmContactChange(wrong) } }
        assertEquals(email, client.profile().email)
        assertEquals(newEmail, client.confirmContactChange(code).email)
    }

    @Test
    fun `a name with a text-direction override is refused`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, uniqueEmail())
        val e = assertThrows<PortaException.InvalidInput> {
            runBlocking { client.updateProfile(ProfileUpdate(name = "Admin\u202E")) }
        }
        assertEquals("name", e.field)
    }

    @Test
    fun `invalid email is refused and nothing changes`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val email = uniqueEmail()
        client.signInWithOutbox(server, email)
        val e = assertThrows<PortaException.InvalidInput> {
            runBlocking { client.updateProfile(ProfileUpdate(email = "nope")) }
        }
        assertEquals("email", e.field)
        assertEquals(email, client.profile().email)
    }

    @Test
    fun `picture round trip`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, uniqueEmail())
        assertNull(client.picture())
        client.setPicture(png)
        assertArrayEquals(png, client.picture())
        assertTrue(client.profile().hasPicture)
        val e = assertThrows<PortaException.InvalidInput> {
            runBlocking { client.setPicture("GIF89a not a png".toByteArray()) }
        }
        assertEquals("picture", e.field)
        assertArrayEquals(png, client.picture(), "a refused upload keeps the old picture")
    }

    @Test
    fun `demo resident sees the unit set by the building`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, "ada@demo.porta.app")
        val unit = client.profile().unit!!
        assertEquals("Apartment 4B", unit.name)
        assertEquals(UnitKind.APARTMENT, unit.kind)
    }

    @Test
    fun `profile shows offline from the local cache`() = runBlocking<Unit> {
        TestServer().use { own ->
            val client = newClient(own.url, MemorySecureStore())
            client.signInWithOutbox(own, uniqueEmail())
            val online = client.updateProfile(ProfileUpdate(name = "Offline Olga"))
            own.close()
            val offline = client.profile()
            assertEquals(online, offline)
            assertEquals("Offline Olga", client.cachedProfile()?.name)
        }
    }

    @Test
    fun `core logs reach the app logger without tokens`() = runBlocking<Unit> {
        val records = Collections.synchronizedList(mutableListOf<LogRecord>())
        setLogger(object : Logger {
            override fun log(record: LogRecord) { records.add(record) }
        }, LogLevel.DEBUG)
        val store = MemorySecureStore()
        val client = newClient(server.url, store)
        client.signInWithOutbox(server, uniqueEmail())
        assertTrue(records.any { it.message.contains("signed in") }, "sign-in was logged")
        val session = String(store.entries.getValue("porta.session"))
        val token = Regex("\"access_token\"\\s*:\\s*\"([^\"]+)\"").find(session)!!.groupValues[1]
        assertFalse(records.any { it.message.contains(token) }, "no token in any log record")
    }
}
