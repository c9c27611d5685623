package app.porta

import java.io.File
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit

/** The demo building's site admin and site (porta_server::DEMO_ADMIN_EMAIL, DEMO_SITE_ID). */
const val DEMO_ADMIN_EMAIL = "admin@demo.porta.app"
const val DEMO_SITE_ID = "5e7d1c2a-0000-4000-8000-000000000001"

/**
 * A real porta-server process on a free loopback port, with the demo building (its three locks
 * provisioned, [locks]) and the dev outbox, so tests read the one-time codes the server "sent". It exits when the test JVM
 * closes its stdin, so a crashed test never leaks it.
 */
class TestServer(
    extraArgs: List<String> = emptyList(),
    env: Map<String, String> = emptyMap(),
    provisionLocks: Boolean = true,
) : AutoCloseable {
    val dir: File = Files.createTempDirectory("porta-server").toFile()
    private val process: Process
    val url: String

    init {
        val bin = System.getenv("PORTA_SERVER_BIN") ?: File("../../target/debug/porta-server").absolutePath
        process = ProcessBuilder(
            listOf(
                bin, "--db", File(dir, "server.db").path, "--listen", "127.0.0.1:0",
                "--demo", "--dev-outbox", "--exit-on-stdin-eof", "--code-requests-per-ip", "10000",
            ) + extraArgs,
        ).apply { environment().putAll(env) }.redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val first = process.inputStream.bufferedReader().readLine()
            ?: error("porta-server exited before listening")
        url = first.substringAfter("listening on ").trim()
        require(url.startsWith("http://")) { "unexpected first line: $first" }
    }

    /** The last code the server sent to [identifier]. */
    fun devCode(identifier: String): String {
        val encoded = URLEncoder.encode(identifier, "UTF-8").replace("+", "%20")
        val resp = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI("$url/v1/dev/outbox/$encoded")).GET().build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        check(resp.statusCode() == 200) { "dev outbox answered ${resp.statusCode()}" }
        return Regex("\"code\"\\s*:\\s*\"(\\d{6})\"").find(resp.body())!!.groupValues[1]
    }

    /** An access token of the demo building's site admin, signed in once per server. */
    val adminToken: String by lazy { signInAdmin() }

    /**
     * The demo building's three locks (doors 1, 2, 3): each key born in the lock, its request
     * submitted by the site admin, the answer installed. Made once, when the server starts, so
     * doors have their locks before any phone syncs; MTU 185, 30 ms connection interval. Empty
     * with `provisionLocks = false` (a server whose codes go by real email: the admin's would too).
     */
    val locks: List<SimulatedLock>

    init {
        locks = if (!provisionLocks) emptyList() else (1u..3u).map { door ->
            val lock = NewSimulatedLock()
            lock.install(provisionLock(door, lock), 185u, 30.0)
        }
    }

    /**
     * Provisions [lock] for demo door [door] as a building does (the admin submits the lock's
     * own request), replacing the door's lock if it had one; the answer's JSON, for the lock
     * to install.
     */
    fun provisionLock(door: UInt, lock: NewSimulatedLock): String {
        val path = "/v1/admin/sites/$DEMO_SITE_ID/doors/$door/lock"
        // Base64 needs no JSON escaping.
        val (status, body) = post(path, """{"request":"${lock.provisioningRequest()}"}""", adminToken)
        check(status == 201) { "provisioning door $door answered $status: $body" }
        return body
    }

    private fun signInAdmin(): String {
        val (codeStatus, _) = post("/v1/auth/code", """{"identifier":"$DEMO_ADMIN_EMAIL"}""")
        check(codeStatus == 202) { "admin code request answered $codeStatus" }
        val code = devCode(DEMO_ADMIN_EMAIL)
        val (status, body) = post(
            "/v1/auth/sign-in",
            """{"identifier":"$DEMO_ADMIN_EMAIL","code":"$code","device_name":"JVM test harness"}""",
        )
        check(status == 200) { "admin sign-in answered $status" }
        return Regex("\"access_token\"\\s*:\\s*\"([^\"]+)\"").find(body)!!.groupValues[1]
    }

    private fun post(path: String, json: String, bearer: String? = null): Pair<Int, String> {
        val request = HttpRequest.newBuilder(URI("$url$path"))
            .header("content-type", "application/json")
            .apply { if (bearer != null) header("authorization", "Bearer $bearer") }
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build()
        val resp = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString())
        return resp.statusCode() to resp.body()
    }

    override fun close() {
        process.outputStream.close()
        process.destroy()
        process.waitFor(5, TimeUnit.SECONDS)
        dir.deleteRecursively()
    }
}

/** Secrets in memory, as the Android Keystore store would hold them. */
class MemorySecureStore : SecureStore {
    val entries = ConcurrentHashMap<String, ByteArray>()
    override fun get(key: String): ByteArray? = entries[key]
    override fun set(key: String, value: ByteArray) { entries[key] = value }
    override fun delete(key: String) { entries.remove(key) }
}

/** A phone; [lockTransport] is how it reaches the locks (null: the built-in Bluetooth transport). */
fun newClient(
    serverUrl: String,
    store: SecureStore,
    dataDir: File = Files.createTempDirectory("porta-app").toFile(),
    lockTransport: LockTransport? = null,
) = PortaClient(
    ClientConfig(serverUrl = serverUrl, dataDir = dataDir.path, deviceName = "JVM test", requestTimeoutS = 10u),
    store,
    lockTransport,
)

/** A fresh identity per test, so tests never share an account. */
fun uniqueEmail(): String = "kt-${System.nanoTime()}@example.com"

suspend fun PortaClient.signInWithOutbox(server: TestServer, identifier: String) {
    requestCode(identifier)
    signIn(identifier, server.devCode(identifier))
}
