package app.porta

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.nio.file.Files
import java.util.Base64
import java.util.Collections

/**
 * No secrets in the app's log: a shortened resident journey with the core's logger at TRACE,
 * and no record may hold a one-time code, a token, the device key or its public key, an email
 * address or a phone number of the run (raw, hex or base64).
 */
class LogSecretsTest {
    private val server = TestServer()

    @AfterEach
    fun stop() = server.close()

    private class Recorder : Logger {
        val records: MutableList<LogRecord> = Collections.synchronizedList(mutableListOf())
        override fun log(record: LogRecord) { records.add(record) }
    }

    private class NoProgress : UnlockListener {
        override fun onProgress(progress: UnlockProgress) {}
    }

    private val secrets = mutableMapOf<String, String>()

    private fun bytes(name: String, value: ByteArray) {
        secrets["$name (hex)"] = value.joinToString("") { "%02x".format(it) }
        secrets["$name (HEX)"] = value.joinToString("") { "%02X".format(it) }
        secrets["$name (base64)"] = Base64.getEncoder().encodeToString(value)
        secrets["$name (base64url)"] = Base64.getUrlEncoder().withoutPadding().encodeToString(value)
    }

    private fun fromStore(who: String, store: MemorySecureStore) {
        store.entries["porta.session"]?.let { session ->
            for (token in listOf("access_token", "refresh_token")) {
                secrets["$who $token"] =
                    Regex("\"$token\"\\s*:\\s*\"([^\"]+)\"").find(String(session))!!.groupValues[1]
            }
        }
        store.entries["porta.device_key"]?.let { bytes("$who device key", it) }
    }

    @Test
    fun `a journey at TRACE logs no secret`() = runBlocking<Unit> {
        val recorder = Recorder()
        setLogger(recorder, LogLevel.TRACE)
        val email = "ada@demo.porta.app"
        val phone = "+4791234568"
        secrets["email"] = email
        secrets["phone"] = phone
        secrets["phone digits"] = phone.drop(1)

        val store = MemorySecureStore()
        val locks = server.locks
        val client = newClient(server.url, store, lockTransport = simulatedTransport(locks))
        client.requestCode(email)
        val code = server.devCode(email)
        secrets["sign-in code"] = code
        client.signIn(email, code)
        client.updateProfile(ProfileUpdate(name = "Ada Logtest", phone = phone))
        val phoneCode = server.devCode(phone)
        secrets["phone confirmation code"] = phoneCode
        client.confirmContactChange(phoneCode)
        client.profile()
        val doors = client.doors()
        fromStore("phone", store)
        client.unlock(doors[0].doorId, NoProgress())
        client.accessLog()
        // A guest invitation, accepted on a phone with no account, which opens the door.
        val now = System.currentTimeMillis() / 1000
        val created = client.createInvitation(NewInvitation(doors = listOf(1u), notBefore = now, notAfter = now + 24 * 3600, uses = 2u))
        secrets["invitation code"] = created.code
        secrets["invitation link"] = created.link
        secrets["invitation token"] = created.code.replace("-", "")
        secrets["invitation token (lower case)"] = created.code.replace("-", "").lowercase()
        val guestStore = MemorySecureStore()
        val guest = newClient(server.url, guestStore, lockTransport = simulatedTransport(locks))
        guest.acceptInvitation(created.link)
        fromStore("guest", guestStore)
        guest.unlock(1u, NoProgress())
        client.revokeInvitation(created.invitation.id)
        client.devices()
        client.myData()
        val export = File(Files.createTempDirectory("porta-export").toFile(), "export.json")
        client.exportMyData(export.path)
        Regex("\"public_key\"\\s*:\\s*\"([^\"]+)\"").findAll(export.readText()).forEachIndexed { i, m ->
            bytes("device public key $i", Base64.getDecoder().decode(m.groupValues[1]))
        }
        client.requestDeletionCode()
        val deletionCode = server.devCode(email)
        secrets["deletion code"] = deletionCode
        client.deleteAccount(deletionCode)
        setLogger(object : Logger { override fun log(record: LogRecord) {} }, LogLevel.ERROR)

        val records = recorder.records.toList()
        assertTrue(records.any { it.level == LogLevel.INFO && it.message.contains("signed in") }, "nothing logged")
        val leaks = records.flatMap { r ->
            secrets.filterValues { r.message.contains(it) || r.target.contains(it) }.keys.map { "$it in ${r.message}" }
        }
        assertTrue(leaks.isEmpty(), "secrets in the log: $leaks")
        println("Kotlin log secrets: ${records.size} records at TRACE, ${secrets.size} secret forms searched, none found")
    }
}
