import Foundation
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Porta

/// The demo building's site admin and site (porta_server::DEMO_ADMIN_EMAIL, DEMO_SITE_ID).
let demoAdminEmail = "admin@demo.porta.app"
let demoSiteId = "5e7d1c2a-0000-4000-8000-000000000001"

/// A real porta-server process on a free loopback port with the demo building (its three locks
/// provisioned, `locks`) and the dev outbox. It exits when its stdin closes, so a crashed test
/// run never leaks it.
final class TestServer {
    let url: String
    /// An access token of the demo building's site admin, signed in once, at start.
    private(set) var adminToken = ""
    /// The demo building's three locks (doors 1, 2, 3): each key born in the lock, its request
    /// submitted by the site admin, the answer installed. Made once, when the server starts, so
    /// doors have their locks before any phone syncs; MTU 185, 30 ms connection interval.
    private(set) var locks: [SimulatedLock] = []
    private let process = Process()
    private let stdin = Pipe()
    private let directory: URL

    init() throws {
        let env = ProcessInfo.processInfo.environment
        let bin = env["PORTA_SERVER_BIN"]
            ?? URL(fileURLWithPath: #filePath).appendingPathComponent("../../../../target/debug/porta-server").standardized.path
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("porta-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = [
            "--db", directory.appendingPathComponent("server.db").path, "--listen", "127.0.0.1:0",
            "--demo", "--dev-outbox", "--exit-on-stdin-eof", "--code-requests-per-ip", "10000",
        ]
        process.standardOutput = stdout
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is "porta-server listening on http://127.0.0.1:PORT".
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { throw TestServerError.exitedEarly }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on ") else { throw TestServerError.exitedEarly }
        url = text[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
        adminToken = try signInAdmin()
        locks = try (1...3).map { (door: UInt32) in
            let lock = NewSimulatedLock()
            return try lock.install(answerJson: try provisionLock(door: door, lock), attMtu: 185, connectionIntervalMs: 30)
        }
    }

    /// Provisions `lock` for demo door `door` as a building does (the admin submits the lock's
    /// own request), replacing the door's lock if it had one; the answer's JSON, for the lock
    /// to install.
    func provisionLock(door: UInt32, _ lock: NewSimulatedLock) throws -> String {
        let (status, body) = try send(
            "POST", "/v1/admin/sites/\(demoSiteId)/doors/\(door)/lock",
            ["request": lock.provisioningRequest()], bearer: adminToken)
        guard status == 201 else { throw TestServerError.refused("provisioning door \(door)", status) }
        return String(decoding: body, as: UTF8.self)
    }

    private func signInAdmin() throws -> String {
        let (codeStatus, _) = try send("POST", "/v1/auth/code", ["identifier": demoAdminEmail])
        guard codeStatus == 202 else { throw TestServerError.refused("admin code request", codeStatus) }
        let (outboxStatus, outbox) = try send("GET", "/v1/dev/outbox/\(demoAdminEmail)")
        guard outboxStatus == 200,
              let code = (try JSONSerialization.jsonObject(with: outbox) as? [String: Any])?["code"] as? String
        else { throw TestServerError.noCode }
        let (status, body) = try send(
            "POST", "/v1/auth/sign-in",
            ["identifier": demoAdminEmail, "code": code, "device_name": "Swift test harness"])
        guard status == 200,
              let token = (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["access_token"] as? String
        else { throw TestServerError.refused("admin sign-in", status) }
        return token
    }

    /// One blocking JSON request (the server is on loopback): its status and body.
    private func send(
        _ method: String, _ path: String, _ json: [String: String]? = nil, bearer: String? = nil
    ) throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: "\(url)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 10
        if let json {
            request.setValue("application/json", forHTTPHeaderField: "content-type")
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
        }
        if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "authorization") }
        let reply = Reply()
        URLSession.shared.dataTask(with: request) { data, response, error in
            reply.result = error.map { .failure($0) }
                ?? .success(((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            reply.done.signal()
        }.resume()
        reply.done.wait()
        return try reply.result.get()
    }

    /// Where a blocking request's completion handler leaves its result (written once, before
    /// `done` is signalled).
    private final class Reply: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        var result: Result<(Int, Data), Error> = .failure(TestServerError.noCode)
    }

    /// The last code the server sent to `identifier`.
    func devCode(_ identifier: String) async throws -> String {
        let escaped = identifier.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "+")))!
        let request = URLRequest(url: URL(string: "\(url)/v1/dev/outbox/\(escaped)")!)
        let data: Data = try await withCheckedThrowingContinuation { cont in
            URLSession.shared.dataTask(with: request) { data, response, error in
                if let error { cont.resume(throwing: error); return }
                guard (response as? HTTPURLResponse)?.statusCode == 200, let data else {
                    cont.resume(throwing: TestServerError.noCode); return
                }
                cont.resume(returning: data)
            }.resume()
        }
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        guard let code = json?["code"] as? String else { throw TestServerError.noCode }
        return code
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

enum TestServerError: Error { case exitedEarly, noCode, refused(String, Int) }

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("porta-app-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A phone; `lockTransport` is how it reaches the locks (nil: the built-in Bluetooth transport).
func makeClient(
    _ server: String, _ store: SecureStore, dataDirectory: URL? = nil, lockTransport: LockTransport? = nil
) throws -> PortaClient {
    try PortaClient(
        serverURL: URL(string: server)!, dataDirectory: try dataDirectory ?? temporaryDirectory(),
        deviceName: "Swift test", secureStore: store, lockTransport: lockTransport)
}

func uniqueEmail() -> String { "swift-\(UUID().uuidString.prefix(12).lowercased())@example.com" }

extension PortaClient {
    func signInWithOutbox(_ server: TestServer, _ identifier: String) async throws {
        try await requestCode(identifier: identifier)
        try await signIn(identifier: identifier, code: try await server.devCode(identifier))
    }
}

/// Asserts that `body` throws an error matching `matches`.
func assertThrows(
    _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line,
    _ matches: (PortaError) -> Bool
) async {
    do {
        try await body()
        XCTFail("expected an error", file: file, line: line)
    } catch let error as PortaError {
        XCTAssertTrue(matches(error), "unexpected error \(error)", file: file, line: line)
    } catch {
        XCTFail("not a PortaError: \(error)", file: file, line: line)
    }
}
