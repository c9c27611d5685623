package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SignInTest {
    private val server = TestServer()

    @AfterAll
    fun stop() = server.close()

    @Test
    fun `sign in with the code from the dev outbox`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        assertFalse(client.isSignedIn())
        val email = uniqueEmail()
        client.signInWithOutbox(server, email)
        assertTrue(client.isSignedIn())
        val profile = client.profile()
        assertEquals(email, profile.email)
        assertEquals(profile.userId, client.userId())
    }

    @Test
    fun `wrong code is a typed InvalidCode error`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val email = uniqueEmail()
        client.requestCode(email)
        val right = server.devCode(email)
        val wrong = ((right.toInt() + 1) % 1_000_000).toString().padStart(6, '0')
        assertThrows<PortaException.InvalidCode> { runBlocking { client.signIn(email, wrong) } }
        assertFalse(client.isSignedIn())
        // The right code still works after one wrong try.
        client.signIn(email, right)
        assertTrue(client.isSignedIn())
    }

    @Test
    fun `malformed identifier is refused with the field named`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val e = assertThrows<PortaException.InvalidInput> { runBlocking { client.requestCode("not-an-email") } }
        assertEquals("identifier", e.field)
    }

    @Test
    fun `session is restored after recreating the client with the same store`() = runBlocking<Unit> {
        val store = MemorySecureStore()
        val dataDir = java.nio.file.Files.createTempDirectory("porta-app").toFile()
        val email = uniqueEmail()
        newClient(server.url, store, dataDir).use { first ->
            first.signInWithOutbox(server, email)
            first.updateProfile(ProfileUpdate(name = "Restored Resident"))
        }
        assertTrue(store.entries.isNotEmpty(), "tokens are kept in the secure store")
        newClient(server.url, store, dataDir).use { second ->
            assertTrue(second.isSignedIn())
            assertEquals("Restored Resident", second.profile().name)
        }
    }

    @Test
    fun `sign out wipes the session`() = runBlocking<Unit> {
        val store = MemorySecureStore()
        val client = newClient(server.url, store)
        client.signInWithOutbox(server, uniqueEmail())
        client.profile()
        client.signOut()
        assertFalse(client.isSignedIn())
        assertTrue(store.entries.isEmpty(), "no token left in the secure store")
        assertEquals(null, client.cachedProfile())
        assertThrows<PortaException.NotSignedIn> { runBlocking { client.profile() } }
    }

    @Test
    fun `server unreachable is a typed Network error`() = runBlocking<Unit> {
        val client = newClient("http://127.0.0.1:9", MemorySecureStore())
        val e = assertThrows<PortaException.Network> { runBlocking { client.requestCode(uniqueEmail()) } }
        assertNotNull(e.reason)
    }

    @Test
    fun `too many code requests are rate limited with a retry delay`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val email = uniqueEmail()
        val e = assertThrows<PortaException.RateLimited> {
            runBlocking { repeat(20) { client.requestCode(email) } }
        }
        assertTrue(e.retryAfterS > 0u)
    }
}
