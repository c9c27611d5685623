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

/**
 * A real porta-server process on a free loopback port, with the demo building and the dev
 * outbox, so tests read the one-time codes the server "sent". It exits when the test JVM
 * closes its stdin, so a crashed test never leaks it.
 */
class TestServer(extraArgs: List<String> = emptyList(), env: Map<String, String> = emptyMap()) : AutoCloseable {
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

    /** The demo building's locks, as the JSON objects the simulator is built from. */
    fun lockProvisions(): List<String> {
        val resp = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI("$url/v1/dev/locks")).GET().build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        check(resp.statusCode() == 200) { "dev locks answered ${resp.statusCode()}" }
        // Flat objects (no nested braces), so a regex is enough and no JSON library is needed.
        return Regex("\\{[^{}]*\\}").findAll(resp.body()).map { it.value }.toList()
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
