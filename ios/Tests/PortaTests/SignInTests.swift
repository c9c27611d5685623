import Foundation
import XCTest
@testable import Porta

final class SignInTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    func testSignInWithCodeFromDevOutbox() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        XCTAssertFalse(client.isSignedIn())
        let email = uniqueEmail()
        try await client.signInWithOutbox(server, email)
        XCTAssertTrue(client.isSignedIn())
        let profile = try await client.profile()
        XCTAssertEqual(profile.email, email)
        XCTAssertEqual(profile.userId, client.userId())
    }

    func testWrongCodeIsInvalidCode() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        let email = uniqueEmail()
        try await client.requestCode(identifier: email)
        let right = try await server.devCode(email)
        let wrong = String(format: "%06d", (Int(right)! + 1) % 1_000_000)
        await assertThrows({ try await client.signIn(identifier: email, code: wrong) }) { $0 == .InvalidCode }
        XCTAssertFalse(client.isSignedIn())
        try await client.signIn(identifier: email, code: right)
        XCTAssertTrue(client.isSignedIn())
    }

    func testSessionRestoredAfterRecreatingClient() async throws {
        let store = InMemorySecureStore()
        let dataDirectory = try temporaryDirectory()
        let email = uniqueEmail()
        do {
            let first = try makeClient(server.url, store, dataDirectory: dataDirectory)
            try await first.signInWithOutbox(server, email)
            _ = try await first.updateProfile(update: ProfileUpdate(name: "Restored Resident"))
        }
        XCTAssertFalse(store.isEmpty, "tokens are kept in the secure store")
        let second = try makeClient(server.url, store, dataDirectory: dataDirectory)
        XCTAssertTrue(second.isSignedIn())
        let profile = try await second.profile()
        XCTAssertEqual(profile.name, "Restored Resident")
    }

    func testSignOutWipesSession() async throws {
        let store = InMemorySecureStore()
        let client = try makeClient(server.url, store)
        try await client.signInWithOutbox(server, uniqueEmail())
        _ = try await client.profile()
        try await client.signOut()
        XCTAssertFalse(client.isSignedIn())
        XCTAssertTrue(store.isEmpty, "no token left in the secure store")
        XCTAssertNil(try client.cachedProfile())
        await assertThrows({ _ = try await client.profile() }) { $0 == .NotSignedIn }
    }

    func testServerUnreachableIsNetworkError() async throws {
        let client = try makeClient("http://127.0.0.1:9", InMemorySecureStore())
        await assertThrows({ try await client.requestCode(identifier: uniqueEmail()) }) {
            if case .Network = $0 { return true } else { return false }
        }
    }

    func testTooManyCodeRequestsAreRateLimited() async throws {
        let client = try makeClient(server.url, InMemorySecureStore())
        let email = uniqueEmail()
        await assertThrows({ for _ in 0..<20 { try await client.requestCode(identifier: email) } }) {
            if case .RateLimited(let retryAfter) = $0 { return retryAfter > 0 } else { return false }
        }
    }
}
