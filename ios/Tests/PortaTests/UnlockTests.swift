import Foundation
import XCTest
@testable import Porta

final class UnlockTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    final class Progress: UnlockListener, @unchecked Sendable {
        private let lock = NSLock()
        private var recorded: [UnlockProgress] = []
        func onProgress(progress: UnlockProgress) throws { lock.lock(); recorded.append(progress); lock.unlock() }
        var events: [UnlockProgress] { lock.lock(); defer { lock.unlock() }; return recorded }
    }

    /// The demo building's locks: MTU 185, 30 ms connection interval.
    func locks() async throws -> [SimulatedLock] {
        try await server.lockProvisions().map { try SimulatedLock(provisionJson: $0, attMtu: 185, connectionIntervalMs: 30) }
    }

    /// Ada on a phone that reaches the locks through `transport`.
    func ada(_ transport: LockTransport) async throws -> PortaClient {
        let client = try makeClient(server.url, InMemorySecureStore(), lockTransport: transport)
        try await client.signInWithOutbox(server, "ada@demo.porta.app")
        return client
    }

    func testResidentOpensDoorWithProgressInOrderAndSeesItInAccessLog() async throws {
        let locks = try await locks()
        let client = try await ada(simulatedTransport(locks: locks))
        let doors = try await client.doors()
        XCTAssertEqual(doors.map(\.name), ["Main entrance", "Bike room", "Roof terrace"])
        let progress = Progress()
        try await client.unlock(doorId: doors[0].doorId, listener: progress)
        XCTAssertEqual(locks[0].openedCount(), 1)
        XCTAssertEqual(progress.events, [.searching, .connecting, .verifying, .opened])
        let log = try await client.accessLog()
        XCTAssertEqual(log.events.count, 1)
        XCTAssertTrue(log.events[0].opened)
        XCTAssertEqual(log.retention.first { $0.doorId == doors[0].doorId }?.retentionDays, 30)
    }

    func testRecordedExchangeReplayedLaterNeverOpensTheDoor() async throws {
        let locks = try await locks()
        let client = try await ada(simulatedTransport(locks: locks))
        _ = try await client.doors()
        try await client.unlock(doorId: 1, listener: Progress())
        let replayed = await locks[0].replay(fragments: locks[0].phoneFragments())
        XCTAssertFalse(replayed)
        XCTAssertEqual(locks[0].openedCount(), 1)
    }

    func testByteFlippedOnTheAirIsRefusedAndTheCredentialStillWorks() async throws {
        let locks = try await locks()
        // An attacker on the air flips a byte of fragment 1 (0 is the Hello; 1 starts the
        // encrypted Proof) during the first unlock only.
        let client = try await ada(simulatedTransportTampering(locks: locks, fragmentIndex: 1))
        _ = try await client.doors()
        await assertThrows({ try await client.unlock(doorId: 1, listener: Progress()) }) {
            $0 == .Denied
        }
        XCTAssertEqual(locks[0].openedCount(), 0)
        try await client.unlock(doorId: 1, listener: Progress())
        XCTAssertEqual(locks[0].openedCount(), 1)
    }

    func testExpiredCredentialIsRefusedWithExpired() async throws {
        let locks = try await locks()
        let client = try await ada(simulatedTransport(locks: locks))
        _ = try await client.doors()
        locks[0].setClock(unixSeconds: UInt64(Date().timeIntervalSince1970) + 2 * 24 * 3600)
        await assertThrows({ try await client.unlock(doorId: 1, listener: Progress()) }) {
            $0 == .Expired
        }
        XCTAssertEqual(locks[0].openedCount(), 0)
    }

    func testDeviceSignedOutRemotelyIsRefusedWithRevoked() async throws {
        let locks = try await locks()
        let transport = simulatedTransport(locks: locks)
        let lostPhone = try await ada(transport)
        _ = try await lostPhone.doors()
        let lostId = try await lostPhone.devices().first { $0.current }!.deviceId
        let tablet = try await ada(transport)
        try await tablet.signOutDevice(deviceId: lostId)
        _ = try await tablet.doors()
        try await tablet.unlock(doorId: 1, listener: Progress())
        await assertThrows({ try await lostPhone.unlock(doorId: 1, listener: Progress()) }) {
            $0 == .Revoked
        }
        XCTAssertEqual(locks[0].openedCount(), 1)
    }

    func testUnlockWorksWithTheServerStopped() async throws {
        let locks = try await locks()
        let client = try await ada(simulatedTransport(locks: locks))
        _ = try await client.doors()
        server.stop()
        try await client.unlock(doorId: 2, listener: Progress())
        XCTAssertEqual(locks[1].openedCount(), 1)
        XCTAssertEqual(try client.pendingAccessEvents(), 1, "the receipt waits for the network")
    }

    func testLockOutOfRangeIsNotInRange() async throws {
        let locks = try await locks()
        let client = try await ada(simulatedTransport(locks: locks))
        _ = try await client.doors()
        locks[2].setInRange(inRange: false)
        await assertThrows({ try await client.unlock(doorId: 3, listener: Progress()) }) {
            $0 == .NotInRange
        }
    }
}
