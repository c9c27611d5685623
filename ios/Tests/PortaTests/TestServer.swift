import Foundation
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Porta

/// A real porta-server process on a free loopback port with the demo building and the dev
/// outbox. It exits when its stdin closes, so a crashed test run never leaks it.
final class TestServer {
    let url: String
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

    /// The demo building's locks, as the JSON objects the simulator is built from.
    func lockProvisions() async throws -> [String] {
        let data = try await get("/v1/dev/locks")
        let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        return try list.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
    }

    private func get(_ path: String) async throws -> Data {
        let request = URLRequest(url: URL(string: "\(url)\(path)")!)
        return try await withCheckedThrowingContinuation { cont in
            URLSession.shared.dataTask(with: request) { data, response, error in
                if let error { cont.resume(throwing: error); return }
                guard (response as? HTTPURLResponse)?.statusCode == 200, let data else {
                    cont.resume(throwing: TestServerError.noCode); return
                }
                cont.resume(returning: data)
            }.resume()
        }
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

enum TestServerError: Error { case exitedEarly, noCode }

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
