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

    /// The demo building's locks, provisioned when the server started: MTU 185, 30 ms connection interval.
    func locks() async throws -> [SimulatedLock] { server.locks }

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

    /// The phone's radio: reaches whichever locks are in range now (`inRange`, changed by the test).
    final class Radio: LockTransport, @unchecked Sendable {
        private let lock = NSLock()
        private var current: LockTransport
        init(_ inRange: LockTransport) { current = inRange }
        var inRange: LockTransport {
            get { lock.lock(); defer { lock.unlock() }; return current }
            set { lock.lock(); current = newValue; lock.unlock() }
        }
        func connect(lockId: UInt32, timeoutMs: UInt64) async throws -> UInt16 {
            try await inRange.connect(lockId: lockId, timeoutMs: timeoutMs)
        }
        func write(fragment: Data) async throws { try await inRange.write(fragment: fragment) }
        func nextNotification(timeoutMs: UInt64) async throws -> Data {
            try await inRange.nextNotification(timeoutMs: timeoutMs)
        }
        func disconnect() async throws { try await inRange.disconnect() }
    }

    func testReplacedLockIsRefused() async throws {
        let old = try await locks()
        let radio = Radio(simulatedTransport(locks: old))
        let client = try await ada(radio)
        _ = try await client.doors()
        try await client.unlock(doorId: 1, listener: Progress())
        XCTAssertEqual(old[0].openedCount(), 1)

        // The building replaces the main entrance's lock, the new one provisioned from its own request.
        let replacement = NewSimulatedLock()
        let answer = try server.provisionLock(door: 1, replacement)
        let new = try replacement.install(answerJson: answer, attMtu: 185, connectionIntervalMs: 30)
        XCTAssertNotEqual(new.lockId(), old[0].lockId())
        // An answer is for the lock that made the request: another lock refuses to install it.
        await assertThrows({ _ = try NewSimulatedLock().install(answerJson: answer, attMtu: 185, connectionIntervalMs: 30) }) {
            if case .InvalidInput(field: "lock provisioning answer", _) = $0 { return true }
            return false
        }
        _ = try await client.doors()

        // The old lock answering for door 1 (re-flashed under the new lock's id), and door 2's lock
        // doing the same: the phone refuses both before anything of Ada's is sent.
        for impostor in [old[0], old[1]] {
            radio.inRange = simulatedTransport(locks: [impostor.answeringAs(lockId: new.lockId())])
            let progress = Progress()
            await assertThrows({ try await client.unlock(doorId: 1, listener: progress) }) { $0 == .UntrustedLock }
            XCTAssertFalse(progress.events.contains(.opened))
        }
        XCTAssertEqual(old[0].openedCount(), 1, "the old lock never opened again")
        XCTAssertEqual(old[1].openedCount(), 0)

        radio.inRange = simulatedTransport(locks: [new])
        try await client.unlock(doorId: 1, listener: Progress())
        XCTAssertEqual(new.openedCount(), 1)
    }
}
