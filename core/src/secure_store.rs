//! Where keys and tokens live: the platform's secure storage (Keychain, Android Keystore)
//! behind one small trait, with a file store for desktops and an in-memory store for tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use zeroize::Zeroizing;

/// A failure of the secure store, described without the stored value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SecureStoreError(pub String);

/// Key-value storage for secrets. Implementations must be safe to call from any thread.
pub trait SecureStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecureStoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecureStoreError>;
    /// Deleting a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), SecureStoreError>;
}

/// Secrets in memory only; gone when dropped. For tests and ephemeral sessions.
#[derive(Default)]
pub struct MemorySecureStore {
    entries: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl MemorySecureStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys currently held (for tests that check a wipe).
    pub fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }
}

impl SecureStore for MemorySecureStore {
    fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecureStoreError> {
        Ok(self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecureStoreError> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), SecureStoreError> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        Ok(())
    }
}

/// Secrets as files readable only by the owner (0600, in a 0700 directory). The desktop
/// default where no OS keychain is wired in; the `porta` terminal app uses it.
pub struct FileSecureStore {
    dir: PathBuf,
}

impl FileSecureStore {
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, SecureStoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io_error)?;
        }
        Ok(Self { dir })
    }

    fn path(&self, key: &str) -> Result<PathBuf, SecureStoreError> {
        // Keys are ours ("porta.session"), but refuse anything that could escape the directory.
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(SecureStoreError("invalid key name".into()));
        }
        Ok(self.dir.join(key))
    }
}

fn io_error(e: std::io::Error) -> SecureStoreError {
    SecureStoreError(e.kind().to_string())
}

impl SecureStore for FileSecureStore {
    fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecureStoreError> {
        match std::fs::read(self.path(key)?) {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecureStoreError> {
        use std::io::Write;
        let path = self.path(key)?;
        // One temp file per key: `with_extension` would map "porta.session" and
        // "porta.device_key" to the same "porta.tmp", and concurrent writes would swap values.
        let tmp = self.dir.join(format!("{key}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io_error)?;
        file.write_all(value).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        // Rename so a crash never leaves a half-written token behind.
        std::fs::rename(&tmp, &path).map_err(io_error)
    }

    fn delete(&self, key: &str) -> Result<(), SecureStoreError> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecureStore::new(dir.path().join("secrets")).unwrap();
        assert!(store.get("porta.session").unwrap().is_none());
        store.set("porta.session", b"secret").unwrap();
        assert_eq!(&store.get("porta.session").unwrap().unwrap()[..], b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets/porta.session")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.delete("porta.session").unwrap();
        store.delete("porta.session").unwrap();
        assert!(store.get("porta.session").unwrap().is_none());
    }

    #[test]
    fn file_store_keeps_keys_apart_under_concurrent_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(FileSecureStore::new(dir.path()).unwrap());
        let writers: Vec<_> = ["porta.session", "porta.device_key"]
            .into_iter()
            .map(|key| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        store.set(key, format!("{key}-{i}").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for key in ["porta.session", "porta.device_key"] {
            assert_eq!(&store.get(key).unwrap().unwrap()[..], format!("{key}-299").as_bytes());
        }
    }

    #[test]
    fn file_store_refuses_path_traversal() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecureStore::new(dir.path()).unwrap();
        assert!(store.set("../escape", b"x").is_err());
        assert!(store.get("a/b").is_err());
    }
}
