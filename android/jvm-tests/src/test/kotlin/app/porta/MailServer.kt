package app.porta

import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit

/**
 * A real SMTP server (aiosmtpd, `server/tests/smtp/sink.py`) on a free loopback port, STARTTLS
 * and AUTH required, keeping each delivered message as a file. Python comes from
 * `PORTA_TEST_PYTHON` (the venv `cargo xtask test` provisions with that directory's requirements).
 */
class MailServer : AutoCloseable {
    val dir: File = Files.createTempDirectory("porta-mail").toFile()
    val port: Int = java.net.ServerSocket(0).use { it.localPort }
    private val process: Process

    init {
        val python = System.getenv("PORTA_TEST_PYTHON")
            ?: error("PORTA_TEST_PYTHON is not set: run through `cargo xtask test`")
        process = ProcessBuilder(python, File("../../server/tests/smtp/sink.py").absolutePath, dir.path, "$port", USER, PASSWORD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        val ready = process.inputStream.bufferedReader().readLine()
        check(ready == "ready") { "the SMTP server did not start: $ready" }
    }

    /** The porta-server flags and environment that send codes through this server. */
    val serverArgs = listOf(
        "--smtp", "smtp://$USER@localhost:$port", "--smtp-from", "Porta <no-reply@porta.example>",
        "--smtp-ca", File(dir, "ca.pem").path,
    )
    val serverEnv = mapOf("PORTA_SMTP_PASSWORD" to PASSWORD)

    /** The code in the [n]th message delivered (waits for it). */
    fun code(n: Int): String {
        val file = File(dir, "mail/$n.eml")
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (!file.exists()) {
            check(System.nanoTime() < deadline) { "message $n never arrived" }
            Thread.sleep(20)
        }
        return Regex("Your Porta code is (\\d{6})").find(file.readText())!!.groupValues[1]
    }

    fun recipient(n: Int): String = File(dir, "mail/$n.eml").readLines().first().removePrefix("X-Envelope-To: ")

    override fun close() {
        process.outputStream.close()
        process.waitFor(5, TimeUnit.SECONDS)
        process.destroy()
    }

    companion object {
        const val USER = "porta"
        const val PASSWORD = "s3cret-smtp"
    }
}
