import Foundation

/// Secrets in memory only: for previews, tests, and apps that keep no session.
public final class InMemorySecureStore: SecureStore, @unchecked Sendable {
    private var entries: [String: Data] = [:]
    private let lock = NSLock()

    public init() {}

    public var isEmpty: Bool { lock.lock(); defer { lock.unlock() }; return entries.isEmpty }

    public func get(key: String) throws -> Data? {
        lock.lock(); defer { lock.unlock() }
        return entries[key]
    }

    public func set(key: String, value: Data) throws {
        lock.lock(); defer { lock.unlock() }
        entries[key] = value
    }

    public func delete(key: String) throws {
        lock.lock(); defer { lock.unlock() }
        entries.removeValue(forKey: key)
    }
}

extension PortaClient {
    /// A client for `serverURL` keeping its database in `dataDirectory`. `lockTransport` is how
    /// it reaches the locks: nil, the built-in Bluetooth LE transport (CoreBluetooth).
    public convenience init(
        serverURL: URL, dataDirectory: URL, deviceName: String, secureStore: SecureStore,
        lockTransport: LockTransport? = nil
    ) throws {
        try self.init(
            config: ClientConfig(
                serverUrl: serverURL.absoluteString, dataDir: dataDirectory.path,
                deviceName: deviceName, requestTimeoutS: 15),
            secureStore: secureStore, lockTransport: lockTransport)
    }
}
