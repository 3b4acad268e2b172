// The core through its generated Kotlin bindings on the JVM, against a real `kintsugi serve`:
// pairing, an offline edit on both phones merged, live sync's callback, the error classes.
// Prints "N passed, N failed"; the exit code is the number failed.

import java.io.File
import java.nio.file.Files
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import uniffi.kintsugi_ffi.*

/** `kintsugi serve` on 127.0.0.1, port 0; its URL from the JSON "listening" log line. */
class Server(binary: String, data: File) {
    val process: Process = ProcessBuilder(
        binary, "serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data", data.path,
    ).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
    val url: String

    init {
        val address = Regex("\"address\":\"([^\"]+)\"")
        val log = process.errorStream.bufferedReader()
        val listening = generateSequence { log.readLine() }.first { it.contains("listening") }
        url = "http://" + (address.find(listening)?.groupValues?.get(1) ?: error("no address"))
        // Reads the rest of the log, so the server never blocks on a full pipe.
        Thread { log.lineSequence().forEach { } }.apply { isDaemon = true }.start()
    }

    fun stop() = process.destroyForcibly().waitFor()
}

class Listener : SyncListener {
    val online = CountDownLatch(1)
    val changed = CountDownLatch(1)
    @Volatile var document = ""

    override fun documentChanged(document: String, description: String) {
        this.document = document
        changed.countDown()
    }

    override fun connectionChanged(state: ConnectionState) {
        if (state is ConnectionState.Online) online.countDown()
    }
}

fun check(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
}

suspend fun couple(server: Server, home: File): Pair<Device, Device> {
    val alice = initDevice(File(home, "alice").path, server.url, "Alice", "phone", null)
    val code = alice.invite(true)
    val bob = joinDevice(File(home, "bob").path, server.url, "Bob", "phone", null, code)
    alice.sync()
    bob.sync()
    return alice to bob
}

suspend fun offlineEditsMerge(server: Server, home: File) {
    val (alice, bob) = couple(server, home)
    val id = alice.addBoundary("No contact with X", "contact")
    alice.sync()
    bob.sync()
    alice.editBoundary(id, "No contact with X, ever")
    bob.editBoundary(id, "Absolutely no contact with X")
    for (device in listOf(alice, bob, alice)) device.sync()
    val (onAlice, onBob) = alice.boundaries().single() to bob.boundaries().single()
    check(onAlice.text == onBob.text, "both phones hold the same text")
    check("Absolutely" in onAlice.text && "ever" in onAlice.text, "both edits survive: ${onAlice.text}")
    check(onAlice.status == BoundaryStatus.PROPOSED, "an edit asks for approval again")
}

suspend fun liveSyncCallsBack(server: Server, home: File) {
    val (alice, bob) = couple(server, home)
    val listener = Listener()
    val live = bob.startLiveSync(listener)
    check(listener.online.await(30, TimeUnit.SECONDS), "live sync came online")
    alice.addBoundary("Phones stay unlocked", "trust")
    alice.sync()
    check(listener.changed.await(30, TimeUnit.SECONDS), "the change callback fired")
    check(listener.document == "agreement", "the agreement changed, not ${listener.document}")
    live.stop()
}

suspend fun errorsAreTyped(server: Server, home: File) {
    val (alice, _) = couple(server, home)
    try {
        joinDevice(File(home, "eve").path, server.url, "Eve", "phone", null, "not a code")
        throw AssertionError("a wrong code was accepted")
    } catch (expected: KintsugiException.InvalidCode) {
    }
    try {
        alice.approveBoundary("no-such-boundary")
        throw AssertionError("an unknown id was accepted")
    } catch (expected: KintsugiException.UnknownId) {
    }
}

fun main() {
    val binary = System.getenv("KINTSUGI_BIN") ?: error("set KINTSUGI_BIN to the kintsugi binary")
    val tests = mapOf(
        "offline edits on both phones merge" to ::offlineEditsMerge,
        "live sync calls back when the partner edits" to ::liveSyncCallsBack,
        "errors are typed exceptions" to ::errorsAreTyped,
    )
    var (passed, failed) = 0 to 0
    for ((name, test) in tests) {
        val home = Files.createTempDirectory("kintsugi-kotlin").toFile()
        val server = Server(binary, File(home, "server"))
        try {
            runBlocking { test(server, home) }
            println("ok   $name")
            passed++
        } catch (error: Throwable) {
            println("FAIL $name: $error")
            failed++
        } finally {
            server.stop()
            home.deleteRecursively()
        }
    }
    println("$passed passed, $failed failed")
    System.exit(failed)
}
