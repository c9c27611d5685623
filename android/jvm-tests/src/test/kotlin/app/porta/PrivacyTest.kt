package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.nio.file.Files

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PrivacyTest {
    private val server = TestServer()

    @AfterAll
    fun stop() = server.close()

    @Test
    fun `my data lists every category with purpose, basis, retention and audience`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, uniqueEmail())
        client.updateProfile(ProfileUpdate(name = "Mia Data"))
        val data = client.myData()
        assertEquals(client.userId(), data.userId)
        val names = data.categories.map { it.category }
        for (expected in listOf("profile", "contact", "devices_and_sessions", "access_log", "consents")) {
            assertTrue(names.any { it.contains(expected) }, "$expected missing from $names")
        }
        data.categories.forEach {
            assertTrue(it.purpose.isNotBlank() && it.legalBasis.isNotBlank() && it.retention.isNotBlank() && it.visibleTo.isNotEmpty())
        }
        assertTrue(data.categories.first { it.category == "profile" }.itemsJson.contains("Mia Data"))
    }

    @Test
    fun `export writes one machine-readable file with every category`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        val email = uniqueEmail()
        client.signInWithOutbox(server, email)
        val file = File(Files.createTempDirectory("porta-export").toFile(), "export.json")
        val size = client.exportMyData(file.path)
        val text = file.readText()
        assertEquals(size.toLong(), file.length())
        assertTrue(text.contains("\"format\":\"porta-export\"") || text.contains("\"format\": \"porta-export\""))
        assertTrue(text.contains(email))
        for (category in client.myData().categories) {
            assertTrue(text.contains("\"${category.category}\""), "export lacks ${category.category}")
        }
    }

    @Test
    fun `marketing consent is off until given and can be withdrawn`() = runBlocking<Unit> {
        val client = newClient(server.url, MemorySecureStore())
        client.signInWithOutbox(server, uniqueEmail())
        assertFalse(client.consents().first { it.purpose == "marketing" }.granted)
        assertTrue(client.setConsent("marketing", true).granted)
        assertTrue(client.consents().first { it.purpose == "marketing" }.granted)
        assertFalse(client.setConsent("marketing", false).granted)
    }

    @Test
    fun `signing a device out remotely ends its session`() = runBlocking<Unit> {
        val email = uniqueEmail()
        val phone = newClient(server.url, MemorySecureStore())
        phone.signInWithOutbox(server, email)
        val laptop = newClient(server.url, MemorySecureStore())
        laptop.signInWithOutbox(server, email)
        val devices = laptop.devices()
        assertEquals(2, devices.size)
        assertEquals(1, devices.count { it.current })
        laptop.signOutDevice(devices.first { !it.current }.deviceId)
        assertThrows<PortaException.NotSignedIn> { runBlocking { phone.profile() } }
        assertEquals(1, laptop.devices().size)
    }

    @Test
    fun `account deletion needs a fresh code and wipes the phone`() = runBlocking<Unit> {
        val store = MemorySecureStore()
        val dataDir = Files.createTempDirectory("porta-app").toFile()
        val client = newClient(server.url, store, dataDir)
        val email = uniqueEmail()
        client.signInWithOutbox(server, email)
        client.updateProfile(ProfileUpdate(name = "Deleted Dag"))
        client.requestDeletionCode()
        val code = server.devCode(email)
        val wrong = ((code.toInt() + 1) % 1_000_000).toString().padStart(6, '0')
        assertThrows<PortaException.InvalidCode> { runBlocking { client.deleteAccount(wrong) } }
        assertTrue(client.isSignedIn(), "a wrong code deletes nothing")
        val receipt = client.deleteAccount(code)
        assertEquals(90L * 24 * 3600, receipt.backupsPurgedBy - receipt.deletedAt)
        assertFalse(client.isSignedIn())
        assertTrue(store.entries.isEmpty(), "secure store emptied")
        assertThrows<PortaException.NotSignedIn> { runBlocking { client.profile() } }
        dataDir.walkTopDown().filter { it.isFile }.forEach { f ->
            val text = String(f.readBytes(), Charsets.ISO_8859_1)
            assertFalse(text.contains(email) || text.contains("Deleted Dag"), "${f.name} still holds personal data")
        }
    }
}
