import Foundation

#if canImport(Security)
import Security

/// Porta's secrets in the iOS/macOS Keychain, readable only on this device after the first
/// unlock (so a door can open from the lock screen) and never synced to iCloud.
public final class KeychainSecureStore: SecureStore, @unchecked Sendable {
    private let service: String

    public init(service: String = "app.porta.core") {
        self.service = service
    }

    private func query(_ key: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: key,
        ]
    }

    public func get(key: String) throws -> Data? {
        var q = query(key)
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var out: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &out)
        switch status {
        case errSecSuccess: return out as? Data
        case errSecItemNotFound: return nil
        default: throw SecureStoreError.Unavailable(reason: "keychain status \(status)")
        }
    }

    public func set(key: String, value: Data) throws {
        let attrs: [String: Any] = [
            kSecValueData as String: value,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
        ]
        var status = SecItemUpdate(query(key) as CFDictionary, attrs as CFDictionary)
        if status == errSecItemNotFound {
            status = SecItemAdd(query(key).merging(attrs) { $1 } as CFDictionary, nil)
        }
        guard status == errSecSuccess else {
            throw SecureStoreError.Unavailable(reason: "keychain status \(status)")
        }
    }

    public func delete(key: String) throws {
        let status = SecItemDelete(query(key) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw SecureStoreError.Unavailable(reason: "keychain status \(status)")
        }
    }
}
#endif
