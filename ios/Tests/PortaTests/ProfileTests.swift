import Foundation
import XCTest
@testable import Porta

final class ProfileTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data((0..<64).map { UInt8($0) })

    func testProfileUpdateCorrectsNameAndPhone() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        let phone = "+47" + String(10_000_000 + Int.random(in: 0..<89_999_999))
        let updated = try await client.updateProfile(update: ProfileUpdate(name: "Kari Nordmann", phone: phone))
        XCTAssertEqual(updated.name, "Kari Nordmann")
        // A new phone counts only once the code sent to it is confirmed.
        XCTAssertNil(updated.phone)
        XCTAssertEqual(updated.pendingContact?.field, .phone)
        XCTAssertEqual(updated.pendingContact?.value, phone)
        let confirmed = try await client.confirmContactChange(code: try await server.devCode(phone))
        XCTAssertEqual(confirmed.phone, phone)
        XCTAssertNil(confirmed.pendingContact)
        let fetched = try await client.profile()
        XCTAssertEqual(fetched.name, "Kari Nordmann", "the server kept it")
        XCTAssertEqual(fetched.phone, phone)
    }

    func testANewEmailNeedsTheCodeSentToIt() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        let email = uniqueEmail()
        try await client.signInWithOutbox(server, email)
        let newEmail = uniqueEmail()
        let pending = try await client.updateProfile(update: ProfileUpdate(email: newEmail))
        XCTAssertEqual(pending.email, email, "not applied before it is confirmed")
        XCTAssertEqual(pending.pendingContact?.value, newEmail)
        let code = try await server.devCode(newEmail)
        let wrong = String(format: "%06d", (Int(code)! + 1) % 1_000_000)
        await assertThrows({ _ = try await client.confirmContactChange(code: wrong) }) {
            if case .InvalidCode = $0 { return true } else { return false }
        }
        let unchanged = try await client.profile()
        XCTAssertEqual(unchanged.email, email)
        let confirmed = try await client.confirmContactChange(code: code)
        XCTAssertEqual(confirmed.email, newEmail)
    }

    func testANameWithATextDirectionOverrideIsRefused() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        await assertThrows({ _ = try await client.updateProfile(update: ProfileUpdate(name: "Admin\u{202E}")) }) {
            if case .InvalidInput(let field, _) = $0 { return field == "name" } else { return false }
        }
    }

    func testInvalidEmailIsRefusedAndNothingChanges() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        let email = uniqueEmail()
        try await client.signInWithOutbox(server, email)
        await assertThrows({ _ = try await client.updateProfile(update: ProfileUpdate(email: "nope")) }) {
            if case .InvalidInput(let field, _) = $0 { return field == "email" } else { return false }
        }
        let profile = try await client.profile()
        XCTAssertEqual(profile.email, email)
    }

    func testPictureRoundTrip() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        let none = try await client.picture()
        XCTAssertNil(none)
        try await client.setPicture(image: png)
        let stored = try await client.picture()
        XCTAssertEqual(stored, png)
        let profile = try await client.profile()
        XCTAssertTrue(profile.hasPicture)
        await assertThrows({ try await client.setPicture(image: Data("GIF89a not a png".utf8)) }) {
            if case .InvalidInput(let field, _) = $0 { return field == "picture" } else { return false }
        }
        let kept = try await client.picture()
        XCTAssertEqual(kept, png, "a refused upload keeps the old picture")
    }

    func testDemoResidentSeesUnitSetByBuilding() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, "ada@demo.porta.app")
        let unit = try await client.profile().unit
        XCTAssertEqual(unit?.name, "Apartment 4B")
        XCTAssertEqual(unit?.kind, .apartment)
    }

    func testProfileShowsOfflineFromCache() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        let online = try await client.updateProfile(update: ProfileUpdate(name: "Offline Olga"))
        server.stop()
        let offline = try await client.profile()
        XCTAssertEqual(offline, online)
        XCTAssertEqual(try client.cachedProfile()?.name, "Offline Olga")
    }

    final class Collector: Logger, @unchecked Sendable {
        private let lock = NSLock()
        private var records: [LogRecord] = []
        func log(record: LogRecord) throws { lock.lock(); records.append(record); lock.unlock() }
        var all: [LogRecord] { lock.lock(); defer { lock.unlock() }; return records }
    }

    func testCoreLogsReachAppLoggerWithoutTokens() async throws {
        let collector = Collector()
        setLogger(logger: collector, maxLevel: .debug)
        let store = InMemorySecureStore()
        let client = try makeClient(server.url, store)
        try await client.signInWithOutbox(server, uniqueEmail())
        XCTAssertTrue(collector.all.contains { $0.message.contains("signed in") })
        let session = try JSONSerialization.jsonObject(with: try store.get(key: "porta.session")!) as! [String: Any]
        let token = session["access_token"] as! String
        XCTAssertFalse(collector.all.contains { $0.message.contains(token) }, "no token in any log record")
    }
}
