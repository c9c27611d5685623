//! Where the session (tokens, device key) is kept: the system keyring where one answers
//! (the Secret Service on Linux: GNOME Keyring, KWallet), otherwise 0600 files
//! ([`FileSecureStore`]). The choice is said out loud at sign-in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use porta_core::{FileSecureStore, SecureStore};

/// Where secrets went.
pub enum Kept {
    Keyring,
    Files(PathBuf),
}

impl Kept {
    /// What `porta sign-in` tells the person.
    pub fn sentence(&self) -> String {
        match self {
            Kept::Keyring => "session kept in the system keyring".into(),
            Kept::Files(dir) => {
                format!("session kept in {} (mode 0600; no system keyring found)", crate::place::tilde(dir))
            }
        }
    }
}

/// The store for this home. A session already in files stays there (so a keyring that
/// appears later does not hide it); otherwise the keyring if one answers, else files.
pub fn open(secrets_dir: &Path, scope: &Path) -> Result<(Arc<dyn SecureStore>, Kept), String> {
    let has_files = std::fs::read_dir(secrets_dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !has_files {
        if let Some(keyring) = keyring::open(scope) {
            return Ok((keyring, Kept::Keyring));
        }
    }
    let files = FileSecureStore::new(secrets_dir).map_err(|e| format!("cannot keep the session: {e}"))?;
    Ok((Arc::new(files), Kept::Files(secrets_dir.to_owned())))
}

#[cfg(target_os = "linux")]
mod keyring {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use dbus_secret_service::{EncryptionType, Error, SecretService};
    use porta_core::{SecureStore, SecureStoreError};
    use zeroize::Zeroizing;

    /// Secret Service items tagged `application=porta`, `home=<data dir>` and `key=<name>`,
    /// so two `--home`s keep two sessions.
    struct Keyring {
        service: Mutex<SecretService>,
        scope: String,
    }

    /// The Secret Service, if a session bus and a keyring daemon answer. Never starts a bus
    /// (libdbus would try X11 autolaunch): without an address there is no keyring here.
    pub fn open(scope: &Path) -> Option<Arc<dyn SecureStore>> {
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
            || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
        if !bus {
            return None;
        }
        // A locked keyring may ask the person to unlock it; give up after a minute.
        let service = SecretService::connect_with_max_prompt_timeout(EncryptionType::Plain, 60).ok()?;
        service.get_any_collection().ok()?;
        Some(Arc::new(Keyring { service: Mutex::new(service), scope: scope.display().to_string() }))
    }

    fn failed(e: Error) -> SecureStoreError {
        // The service's messages name items by path, never by secret.
        SecureStoreError(format!("system keyring: {e}"))
    }

    impl Keyring {
        fn attributes<'a>(&'a self, key: &'a str) -> HashMap<&'a str, &'a str> {
            HashMap::from([("application", "porta"), ("home", self.scope.as_str()), ("key", key)])
        }
    }

    impl SecureStore for Keyring {
        fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecureStoreError> {
            let service = self.service.lock().unwrap_or_else(|e| e.into_inner());
            let found = service.search_items(self.attributes(key)).map_err(failed)?;
            let item = match (found.unlocked.first(), found.locked.first()) {
                (Some(item), _) => item,
                (None, Some(item)) => {
                    item.unlock().map_err(failed)?;
                    item
                }
                (None, None) => return Ok(None),
            };
            Ok(Some(Zeroizing::new(item.get_secret().map_err(failed)?)))
        }

        fn set(&self, key: &str, value: &[u8]) -> Result<(), SecureStoreError> {
            let service = self.service.lock().unwrap_or_else(|e| e.into_inner());
            let collection = service.get_any_collection().map_err(failed)?;
            collection.ensure_unlocked().map_err(failed)?;
            let label = format!("Porta ({key})");
            collection
                .create_item(&label, self.attributes(key), value, true, "application/octet-stream")
                .map_err(failed)?;
            Ok(())
        }

        fn delete(&self, key: &str) -> Result<(), SecureStoreError> {
            let service = self.service.lock().unwrap_or_else(|e| e.into_inner());
            let found = service.search_items(self.attributes(key)).map_err(failed)?;
            for item in found.unlocked.iter().chain(&found.locked) {
                item.delete().map_err(failed)?;
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod keyring {
    /// The Keychain (macOS) and Credential Manager (Windows) are not wired in yet: files.
    pub fn open(_scope: &std::path::Path) -> Option<std::sync::Arc<dyn porta_core::SecureStore>> {
        None
    }
}
