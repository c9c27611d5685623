package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The app side of real code delivery: nothing changes for the app, the code just arrives by email. */
class EmailDeliveryTest {
    @Test
    fun `a sign-in code arrives by email through a real SMTP server and signs the resident in`() = runBlocking<Unit> {
        MailServer().use { mail ->
            TestServer(mail.serverArgs, mail.serverEnv, provisionLocks = false).use { server ->
                val client = newClient(server.url, MemorySecureStore())
                client.requestCode("ada@demo.porta.app")
                assertEquals("ada@demo.porta.app", mail.recipient(1))
                client.signIn("ada@demo.porta.app", mail.code(1))
                assertTrue(client.isSignedIn())
                assertEquals("ada@demo.porta.app", client.profile().email)
            }
        }
    }

    @Test
    fun `with the mail server down a code request is CodeNotDelivered with a wait`() = runBlocking<Unit> {
        val mail = MailServer()
        TestServer(mail.serverArgs, mail.serverEnv, provisionLocks = false).use { server ->
            mail.close()
            val client = newClient(server.url, MemorySecureStore())
            val e = assertThrows<PortaException.CodeNotDelivered> { runBlocking { client.requestCode("ada@demo.porta.app") } }
            assertEquals(30uL, e.retryAfterS)
        }
    }
}
