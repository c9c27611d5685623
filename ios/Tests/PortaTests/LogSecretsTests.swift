import Foundation
import XCTest
@testable import Porta

/// No secrets in the app's log: a shortened resident journey with the core's logger at TRACE,
/// and no record may hold a one-time code, a token, the device key or its public key, an email
/// address or a phone number of the run (raw, hex or base64).
final class LogSecretsTests: XCTestCase {
    var server: TestServer!

    override func setUpWithError() throws { server = try TestServer() }
    override func tearDown() { server.stop() }

    final class Recorder: Logger, @unchecked Sendable {
        private let lock = NSLock()
        private var records: [LogRecord] = []
        func log(record: LogRecord) throws { lock.lock(); records.append(record); lock.unlock() }
        var all: [LogRecord] { lock.lock(); defer { lock.unlock() }; return records }
    }

    final class Silent: Logger, @unchecked Sendable {
        func log(record: LogRecord) throws {}
    }

    final class NoProgress: UnlockListener, @unchecked Sendable {
        func onProgress(progress: UnlockProgress) throws {}
    }

    private var secrets: [String: String] = [:]

    private func bytes(_ name: String, _ value: Data) {
        secrets["\(name) (hex)"] = value.map { String(format: "%02x", $0) }.joined()
        secrets["\(name) (HEX)"] = value.map { String(format: "%02X", $0) }.joined()
        let base64 = value.base64EncodedString()
        secrets["\(name) (base64)"] = base64
        secrets["\(name) (base64url)"] = base64.replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    private func fromStore(_ who: String, _ store: InMemorySecureStore) throws {
        if let session = try store.get(key: "porta.session") {
            let json = try JSONSerialization.jsonObject(with: session) as! [String: Any]
            for token in ["access_token", "refresh_token"] {
                secrets["\(who) \(token)"] = json[token] as? String
            }
        }
        if let key = try store.get(key: "porta.device_key") { bytes("\(who) device key", key) }
    }

    func testJourneyAtTraceLogsNoSecret() async throws {
        let recorder = Recorder()
        setLogger(logger: recorder, maxLevel: .trace)
        let email = "ada@demo.porta.app"
        let phone = "+4791234569"
        secrets["email"] = email
        secrets["phone"] = phone
        secrets["phone digits"] = String(phone.dropFirst())

        let store = InMemorySecureStore()
        let locks = server.locks
        let client = try makeClient(server.url, store, lockTransport: simulatedTransport(locks: locks))
        try await client.requestCode(identifier: email)
        let code = try await server.devCode(email)
        secrets["sign-in code"] = code
        try await client.signIn(identifier: email, code: code)
        _ = try await client.updateProfile(update: ProfileUpdate(name: "Ada Logtest", phone: phone))
        let phoneCode = try await server.devCode(phone)
        secrets["phone confirmation code"] = phoneCode
        _ = try await client.confirmContactChange(code: phoneCode)
        _ = try await client.profile()
        let doors = try await client.doors()
        try fromStore("phone", store)
        try await client.unlock(doorId: doors[0].doorId, listener: NoProgress())
        _ = try await client.accessLog()
        // A guest invitation, accepted on a phone with no account, which opens the door.
        let now = Int64(Date().timeIntervalSince1970)
        let created = try await client.createInvitation(
            invitation: NewInvitation(doors: [1], notBefore: now, notAfter: now + 24 * 3600, uses: 2))
        secrets["invitation code"] = created.code
        secrets["invitation link"] = created.link
        secrets["invitation token"] = created.code.replacingOccurrences(of: "-", with: "")
        secrets["invitation token (lower case)"] = created.code.replacingOccurrences(of: "-", with: "").lowercased()
        let guestStore = InMemorySecureStore()
        let guest = try makeClient(server.url, guestStore, lockTransport: simulatedTransport(locks: locks))
        _ = try await guest.acceptInvitation(linkOrCode: created.link)
        try fromStore("guest", guestStore)
        try await guest.unlock(doorId: 1, listener: NoProgress())
        try await client.revokeInvitation(invitationId: created.invitation.id)
        _ = try await client.devices()
        _ = try await client.myData()
        let export = try temporaryDirectory().appendingPathComponent("export.json")
        _ = try await client.exportMyData(path: export.path)
        let exported = try JSONSerialization.jsonObject(with: try Data(contentsOf: export))
        for (i, key) in publicKeys(in: exported).enumerated() {
            if let raw = Data(base64Encoded: key) { bytes("device public key \(i)", raw) }
        }
        try await client.requestDeletionCode()
        let deletionCode = try await server.devCode(email)
        secrets["deletion code"] = deletionCode
        _ = try await client.deleteAccount(code: deletionCode)
        setLogger(logger: Silent(), maxLevel: .error)

        let records = recorder.all
        XCTAssertTrue(records.contains { $0.level == .info && $0.message.contains("signed in") }, "nothing logged")
        var leaks: [String] = []
        for record in records {
            for (name, value) in secrets where record.message.contains(value) || record.target.contains(value) {
                leaks.append("\(name) in \(record.message)")
            }
        }
        XCTAssertTrue(leaks.isEmpty, "secrets in the log: \(leaks)")
        print("Swift log secrets: \(records.count) records at TRACE, \(secrets.count) secret forms searched, none found")
    }

    /// Every `public_key` string anywhere in the exported document.
    private func publicKeys(in value: Any) -> [String] {
        if let object = value as? [String: Any] {
            return object.flatMap { key, v -> [String] in
                if key == "public_key", let s = v as? String { return [s] }
                return publicKeys(in: v)
            }
        }
        if let array = value as? [Any] { return array.flatMap { publicKeys(in: $0) } }
        return []
    }
}
