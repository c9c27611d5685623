#if os(Linux)
import Foundation
import Glibc
import XCTest

/// What a fake lock saw of the phone (the fake's `trace` reply).
struct LockTrace: Decodable {
    let connects: Int
    let disconnectCalls: Int
    let connected: Bool
    let notifying: Bool
    let writes: [Int]
    let notifications: Int

    enum CodingKeys: String, CodingKey {
        case connects, connected, notifying, writes, notifications
        case disconnectCalls = "disconnect_calls"
    }
}

enum FakeBluezError: Error, CustomStringConvertible {
    case notStarted(String), failed(String)
    var description: String {
        switch self {
        case .notStarted(let why): return "the fake BlueZ did not start: \(why)"
        case .failed(let why): return "fake BlueZ: \(why)"
        }
    }
}

/// The fake BlueZ: the `porta-fake-bluez` binary, a private D-Bus (never the system bus) on which
/// `org.bluez` is served and whose locks are real porta-lock state machines. The library's
/// built-in Bluetooth transport (btleplug, over BlueZ on Linux) reaches it through
/// `DBUS_SYSTEM_BUS_ADDRESS`, which libdbus reads once per process: so there is one fake per
/// test process (`shared()`), started before any Bluetooth, and the tests take turns at it
/// (XCTest runs them one at a time). It exits, and its bus with it, when its stdin closes.
final class FakeBluez: @unchecked Sendable {
    let address: String
    private let process = Process()
    private let stdin = Pipe()
    private let stdout = Pipe()
    private var buffered = Data()
    private let lock = NSLock()

    // A failed start fails every Bluetooth test with its reason (never a skip).
    private static let started: Result<FakeBluez, Error> = Result { try FakeBluez() }

    static func shared() throws -> FakeBluez { try started.get() }

    private init() throws {
        let bin = ProcessInfo.processInfo.environment["PORTA_FAKE_BLUEZ_BIN"]
            ?? URL(fileURLWithPath: #filePath).appendingPathComponent("../../../../target/debug/porta-fake-bluez").standardized.path
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            throw FakeBluezError.notStarted("no binary at \(bin): build it (cargo build -p porta-fake-bluez) or set PORTA_FAKE_BLUEZ_BIN")
        }
        let stderr = Pipe()
        process.executableURL = URL(fileURLWithPath: bin)
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        guard let first = try? Self.readLine(stdout, &buffered) else {
            process.waitUntilExit()
            let why = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw FakeBluezError.notStarted("exit \(process.terminationStatus): \(why.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard first.hasPrefix("unix:") else { throw FakeBluezError.notStarted("unexpected first line \(first)") }
        address = first
        guard setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1) == 0 else {
            throw FakeBluezError.notStarted("setenv failed")
        }
    }

    private static func readLine(_ pipe: Pipe, _ buffered: inout Data) throws -> String {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[buffered.startIndex..<newline], as: UTF8.self)
                buffered = Data(buffered[(newline + 1)...])
                return line
            }
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { throw FakeBluezError.failed("it exited") }
            buffered.append(chunk)
        }
    }

    /// Sends one command; the text after "ok" in its one-line reply.
    @discardableResult
    private func call(_ command: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        stdin.fileHandleForWriting.write(Data((command + "\n").utf8))
        let reply = try Self.readLine(stdout, &buffered)
        guard reply == "ok" || reply.hasPrefix("ok ") else { throw FakeBluezError.failed("\(command): \(reply)") }
        return String(reply.dropFirst(2)).trimmingCharacters(in: .whitespaces)
    }

    /// Puts the locks of `server`'s building in range, at this ATT MTU; returns their lock ids. The
    /// fake makes three new locks and has the site admin provision them, REPLACING the doors' locks
    /// (the old ones, such as `TestServer.locks`, are revoked): a phone must sync after this.
    @discardableResult
    func serve(_ server: TestServer, mtu: Int) throws -> [UInt32] {
        try call("serve \(server.url) \(mtu)").split(separator: " ").compactMap { UInt32($0) }
    }

    /// How often the lock `lockId` opened its door.
    func opened(_ lockId: UInt32) throws -> Int { Int(try call("opened \(lockId)")) ?? -1 }

    func trace(_ lockId: UInt32) throws -> LockTrace {
        try JSONDecoder().decode(LockTrace.self, from: Data(try call("trace \(lockId)").utf8))
    }

    /// Turns the adapter on, or off as an rfkill block does.
    func powered(_ on: Bool) throws { try call("powered \(on ? "on" : "off")") }

    /// One of: none, not-advertising, disconnect-mid-handshake, disconnect-mid-handshake-once, silent.
    func fault(_ lockId: UInt32, _ fault: String) throws { try call("fault \(lockId) \(fault)") }
}
#endif
