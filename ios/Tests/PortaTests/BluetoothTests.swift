#if os(Linux)
import Foundation
import XCTest
@testable import Porta

/// The library's built-in Bluetooth transport (btleplug over BlueZ, chosen with
/// `lockTransport: nil`) opening doors through the fake BlueZ: a private D-Bus whose locks are
/// real porta-lock state machines provisioned by the real porta-server. Nothing in the library
/// knows it is a test. Linux only: on Apple platforms the built-in transport is CoreBluetooth,
/// which no fake reaches. A fresh server per test; one fake BlueZ per process (see `FakeBluez`).
final class BluetoothTests: XCTestCase {
    var server: TestServer!
    var bluez: FakeBluez!

    override func setUpWithError() throws {
        server = try TestServer()
        bluez = try FakeBluez.shared()
    }

    override func tearDown() {
        try? bluez?.powered(true)
        server.stop()
    }

    final class Progress: UnlockListener, @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [UnlockProgress] = []
        func onProgress(progress: UnlockProgress) throws { lock.lock(); recorded.append(progress); lock.unlock() }
        var events: [UnlockProgress] { lock.lock(); defer { lock.unlock() }; return recorded }
    }

    /// Ada on a fresh phone whose client uses the built-in Bluetooth, her doors synced. Call it
    /// after `bluez.serve`, which replaces the doors' locks: the phone learns the served ones.
    func ada() async throws -> PortaClient {
        let client = try makeClient(server.url, InMemorySecureStore(), lockTransport: nil)
        try await client.signInWithOutbox(server, "ada@demo.porta.app")
        _ = try await client.doors()
        return client
    }

    func mainEntrance(_ client: PortaClient) throws -> (doorId: UInt32, lockId: UInt32) {
        let door = try XCTUnwrap(try client.cachedDoors().first { $0.name == "Main entrance" })
        return (door.doorId, try XCTUnwrap(door.lockId))
    }

    /// The phone closed the link and told BlueZ so.
    func assertClosed(_ trace: LockTrace, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(trace.connected, "the link is still up: \(trace)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(trace.disconnectCalls, 1, "the phone never disconnected: \(trace)", file: file, line: line)
    }

    func opensTheMainEntrance(atMTU mtu: Int) async throws {
        try bluez.serve(server, mtu: mtu)
        let client = try await ada()
        let (doorId, lockId) = try mainEntrance(client)
        let progress = Progress()
        try await client.unlock(doorId: doorId, listener: progress)
        XCTAssertEqual(progress.events, [.searching, .connecting, .verifying, .opened])
        XCTAssertEqual(try bluez.opened(lockId), 1)
        let trace = try bluez.trace(lockId)
        XCTAssertEqual(trace.connects, 1, "\(trace)")
        assertClosed(trace)
        // Fragments sized for the MTU BlueZ reported: the Proof fills 20-byte fragments at 23
        // and goes in one write at 517.
        let capacity = min(mtu - 3, 512)
        let largest = trace.writes.max() ?? 0
        XCTAssertTrue(trace.writes.allSatisfy { $0 <= capacity }, "\(trace)")
        if mtu == 23 { XCTAssertEqual(largest, capacity, "\(trace)") } else { XCTAssertGreaterThan(largest, 182, "\(trace)") }
        let log = try await client.accessLog()
        XCTAssertEqual(log.events.count, 1)
        XCTAssertTrue(log.events.first?.opened ?? false)
        XCTAssertEqual(log.events.first?.doorName, "Main entrance")
    }

    func testFakeBluezServesTheBuildingsLocksOnAPrivateBus() throws {
        XCTAssertTrue(bluez.address.hasPrefix("unix:path="), bluez.address)
        let locks = try bluez.serve(server, mtu: 185)
        XCTAssertEqual(locks.count, 3)
        XCTAssertEqual(try bluez.opened(locks[0]), 0)
        XCTAssertEqual(try bluez.trace(locks[0]).connects, 0)
    }

    func testAdaOpensTheMainEntranceOverBluetoothAtMTU23() async throws {
        try await opensTheMainEntrance(atMTU: 23)
    }

    func testAdaOpensTheMainEntranceOverBluetoothAtMTU517() async throws {
        try await opensTheMainEntrance(atMTU: 517)
    }

    func testALockThatDoesNotAdvertiseIsNotInRange() async throws {
        try bluez.serve(server, mtu: 185)
        let client = try await ada()
        let (doorId, lockId) = try mainEntrance(client)
        try bluez.fault(lockId, "not-advertising")
        let progress = Progress()
        await assertThrows({ try await client.unlock(doorId: doorId, listener: progress) }) { $0 == .NotInRange }
        XCTAssertEqual(progress.events, [.searching])
        XCTAssertEqual(try bluez.trace(lockId).connects, 0)
        XCTAssertEqual(try bluez.opened(lockId), 0)
    }

    func testBluetoothOffIsBluetoothOff() async throws {
        try bluez.serve(server, mtu: 185)
        let client = try await ada()
        let (doorId, lockId) = try mainEntrance(client)
        try bluez.powered(false)
        await assertThrows({ try await client.unlock(doorId: doorId, listener: Progress()) }) { $0 == .BluetoothOff }
        XCTAssertEqual(try bluez.trace(lockId).connects, 0)
    }

    func testALinkLostMidHandshakeIsConnectionLostWithTheDoorShutAndTheLinkClosed() async throws {
        try bluez.serve(server, mtu: 185)
        let client = try await ada()
        let (doorId, lockId) = try mainEntrance(client)
        try bluez.fault(lockId, "disconnect-mid-handshake")
        await assertThrows({ try await client.unlock(doorId: doorId, listener: Progress()) }) { $0 == .ConnectionLost }
        XCTAssertEqual(try bluez.opened(lockId), 0)
        let trace = try bluez.trace(lockId)
        XCTAssertEqual(trace.connects, 2, "one retry, then the phone gives up: \(trace)")
        assertClosed(trace)
    }
}
#endif
