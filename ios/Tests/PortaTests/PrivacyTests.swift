import Foundation
import XCTest
@testable import Porta

final class PrivacyTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    func testMyDataListsEveryCategoryWithPurposeBasisRetentionAudience() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        _ = try await client.updateProfile(update: ProfileUpdate(name: "Mia Data"))
        let data = try await client.myData()
        XCTAssertEqual(data.userId, client.userId())
        let names = data.categories.map(\.category)
        for expected in ["profile", "contact", "devices_and_sessions", "access_log", "consents"] {
            XCTAssertTrue(names.contains { $0.contains(expected) }, "\(expected) missing from \(names)")
        }
        for c in data.categories {
            XCTAssertFalse(c.purpose.isEmpty || c.legalBasis.isEmpty || c.retention.isEmpty || c.visibleTo.isEmpty)
        }
        XCTAssertTrue(data.categories.first { $0.category == "profile" }!.itemsJson.contains("Mia Data"))
    }

    func testExportWritesOneFileWithEveryCategory() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        let email = uniqueEmail()
        try await client.signInWithOutbox(server, email)
        let file = try temporaryDirectory().appendingPathComponent("export.json")
        let size = try await client.exportMyData(path: file.path)
        let data = try Data(contentsOf: file)
        XCTAssertEqual(Int(size), data.count)
        let doc = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(doc["format"] as? String, "porta-export")
        let categories = doc["categories"] as! [String: Any]
        for c in try await client.myData().categories {
            XCTAssertNotNil(categories[c.category], "export lacks \(c.category)")
        }
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains(email))
    }

    func testMarketingConsentIsOffUntilGivenAndCanBeWithdrawn() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        try await client.signInWithOutbox(server, uniqueEmail())
        let initial = try await client.consents()
        XCTAssertEqual(initial.first { $0.purpose == "marketing" }?.granted, false)
        let given = try await client.setConsent(purpose: "marketing", granted: true)
        XCTAssertTrue(given.granted)
        let withdrawn = try await client.setConsent(purpose: "marketing", granted: false)
        XCTAssertFalse(withdrawn.granted)
    }

    func testSigningADeviceOutRemotelyEndsItsSession() async throws {
        let email = uniqueEmail()
        let phone = try makeClient(server.url, InMemorySecureStore())
        try await phone.signInWithOutbox(server, email)
        let laptop = try makeClient(server.url, InMemorySecureStore())
        try await laptop.signInWithOutbox(server, email)
        let devices = try await laptop.devices()
        XCTAssertEqual(devices.count, 2)
        try await laptop.signOutDevice(deviceId: devices.first { !$0.current }!.deviceId)
        await assertThrows({ _ = try await phone.profile() }) { $0 == .NotSignedIn }
    }

    func testAccountDeletionNeedsAFreshCodeAndWipesThePhone() async throws {
        let store = InMemorySecureStore()
        let dataDirectory = try temporaryDirectory()
        let client = try makeClient(server.url, store, dataDirectory: dataDirectory)
        let email = uniqueEmail()
        try await client.signInWithOutbox(server, email)
        _ = try await client.updateProfile(update: ProfileUpdate(name: "Deleted Dag"))
        try await client.requestDeletionCode()
        let code = try await server.devCode(email)
        let wrong = String(format: "%06d", (Int(code)! + 1) % 1_000_000)
        await assertThrows({ _ = try await client.deleteAccount(code: wrong) }) { $0 == .InvalidCode }
        XCTAssertTrue(client.isSignedIn(), "a wrong code deletes nothing")
        let receipt = try await client.deleteAccount(code: code)
        XCTAssertEqual(receipt.backupsPurgedBy - receipt.deletedAt, 90 * 24 * 3600)
        XCTAssertFalse(client.isSignedIn())
        XCTAssertTrue(store.isEmpty, "secure store emptied")
        let files = FileManager.default.enumerator(atPath: dataDirectory.path)?.allObjects as? [String] ?? []
        for name in files {
            let data = (try? Data(contentsOf: dataDirectory.appendingPathComponent(name))) ?? Data()
            let text = String(decoding: data, as: UTF8.self)
            XCTAssertFalse(text.contains(email) || text.contains("Deleted Dag"), "\(name) still holds personal data")
        }
    }
}
