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
        XCTAssertEqual(updated.phone, phone)
        let fetched = try await client.profile()
        XCTAssertEqual(fetched.name, "Kari Nordmann", "the server kept it")
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
