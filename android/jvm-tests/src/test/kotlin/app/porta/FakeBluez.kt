package app.porta

import com.sun.jna.Library
import com.sun.jna.Native
import java.io.BufferedReader
import java.io.File
import java.io.Writer
import java.nio.file.Files

/** libc's `setenv`: libdbus reads the process environment, which Java cannot change. */
private interface LibC : Library {
    fun setenv(name: String, value: String, overwrite: Int): Int
}

/** What a fake lock saw of the phone (the fake's `trace` reply). */
data class LockTrace(
    val connects: Int,
    val disconnectCalls: Int,
    val connected: Boolean,
    val notifying: Boolean,
    val writes: List<Int>,
    val notifications: Int,
)

/**
 * The fake BlueZ: the `porta-fake-bluez` binary, a private D-Bus (never the system bus) on
 * which `org.bluez` is served and whose locks are real porta-lock state machines. The library's
 * built-in Bluetooth transport (btleplug) reaches it through `DBUS_SYSTEM_BUS_ADDRESS`, which
 * libdbus reads once per process: so there is one fake per JVM ([get]), started on first use
 * before any Bluetooth, and the tests take turns at it (JUnit runs them one at a time here).
 * It exits, and its bus with it, when this JVM closes its stdin (also when the JVM dies).
 */
class FakeBluez private constructor() {
    companion object {
        // A failed start fails every Bluetooth test with its reason (never a skip).
        private val shared by lazy { runCatching { FakeBluez() } }

        fun get(): FakeBluez = shared.getOrThrow()
    }

    private val process: Process
    private val replies: BufferedReader
    private val commands: Writer
    val address: String

    init {
        // Surefire passes -D flags to the test JVM as system properties; xtask also sets the variable.
        val bin = System.getProperty("PORTA_FAKE_BLUEZ_BIN")?.takeIf { it.isNotEmpty() }
            ?: System.getenv("PORTA_FAKE_BLUEZ_BIN")
            ?: File("../../target/debug/porta-fake-bluez").absolutePath
        check(File(bin).canExecute()) {
            "no fake BlueZ at $bin: build it (cargo build -p porta-fake-bluez) or set PORTA_FAKE_BLUEZ_BIN"
        }
        val stderr = Files.createTempFile("porta-fake-bluez", ".log").toFile().apply { deleteOnExit() }
        process = ProcessBuilder(bin).redirectError(stderr).start()
        replies = process.inputStream.bufferedReader()
        commands = process.outputStream.bufferedWriter()
        address = replies.readLine() ?: run {
            process.waitFor()
            // Loud, never a skip: without dbus-daemon there is no Bluetooth test.
            error("the fake BlueZ did not start (exit ${process.exitValue()}): ${stderr.readText().trim()}")
        }
        check(address.startsWith("unix:")) { "unexpected first line from the fake BlueZ: $address" }
        check(Native.load("c", LibC::class.java).setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1) == 0)
    }

    /** Sends one command; the text after "ok" in its one-line reply. */
    @Synchronized
    private fun call(command: String): String {
        commands.write(command + "\n")
        commands.flush()
        val reply = replies.readLine() ?: error("the fake BlueZ exited at \"$command\"")
        check(reply == "ok" || reply.startsWith("ok ")) { "fake BlueZ, \"$command\": $reply" }
        return reply.removePrefix("ok").trim()
    }

    /**
     * Puts the locks of [server]'s building in range, at this ATT MTU; returns their lock ids. The
     * fake makes three new locks and has the site admin provision them, REPLACING the doors' locks
     * (the old ones, such as [TestServer.locks], are revoked): a phone must sync after this.
     */
    fun serve(server: TestServer, mtu: Int): List<UInt> =
        call("serve ${server.url} $mtu").split(" ").filter { it.isNotEmpty() }.map { it.toUInt() }

    /** How often the lock [lockId] opened its door. */
    fun opened(lockId: UInt): Int = call("opened $lockId").toInt()

    fun trace(lockId: UInt): LockTrace {
        val json = call("trace $lockId")
        fun field(name: String) = Regex("\"$name\":([^,}\\]]+)").find(json)?.groupValues?.get(1)
            ?: error("no $name in $json")
        val writes = Regex("\"writes\":\\[([^\\]]*)]").find(json)!!.groupValues[1]
        return LockTrace(
            connects = field("connects").toInt(),
            disconnectCalls = field("disconnect_calls").toInt(),
            connected = field("connected").toBoolean(),
            notifying = field("notifying").toBoolean(),
            writes = writes.split(",").filter { it.isNotEmpty() }.map { it.toInt() },
            notifications = field("notifications").toInt(),
        )
    }

    /** Turns the adapter on, or off as an rfkill block does. */
    fun powered(on: Boolean) {
        call("powered ${if (on) "on" else "off"}")
    }

    /** One of: none, not-advertising, disconnect-mid-handshake, disconnect-mid-handshake-once, silent. */
    fun fault(lockId: UInt, fault: String) {
        call("fault $lockId $fault")
    }
}
