//! Site authority keys from configuration, for servers that run as several instances.
//!
//! The operator keeps one secret (a key file, or `PORTA_AUTHORITY_KEY`); every site's Ed25519
//! authority key is derived from it and the site's id. Every instance given the same secret
//! signs with the same keys, and the database never holds an authority private key.
//!
//! Sites whose key was stored in the database before a secret was configured (an embedded
//! server moved to configured keys) keep their stored key: their locks' certificates are
//! signed with it, and changing it would lock everyone out until every lock is re-provisioned.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::store::{AuthorityStore, RevocationList};
use crate::error::ApiError;

/// Domain separation: this secret derives nothing else.
const SITE_KEY_LABEL: &[u8] = b"porta-v1:site-authority:";

/// Why a configured authority secret could not be used. Never holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityKeyError {
    #[error("the authority key must be 32 bytes in standard base64 (44 characters)")]
    Malformed,
    #[error("cannot read the authority key file: {0}")]
    Unreadable(std::io::Error),
    #[error("the authority key file may be read by other users; make it private (chmod 600)")]
    NotPrivate,
    #[error("cannot write the authority key file: {0}")]
    Unwritable(std::io::Error),
}

/// The operator's secret that every site's authority key is derived from. Zeroized on drop;
/// its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AuthoritySecret(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for AuthoritySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthoritySecret(..)")
    }
}

impl AuthoritySecret {
    /// A new secret from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(secret.as_mut());
        Self(secret)
    }

    /// From its text form: 32 bytes in standard base64, surrounding whitespace ignored.
    pub fn from_text(text: &str) -> Result<Self, AuthorityKeyError> {
        let mut decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| AuthorityKeyError::Malformed)?);
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| AuthorityKeyError::Malformed)?;
        decoded.zeroize();
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// Its text form, as a key file holds it.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Reads a key file. On Unix the file must not be readable by group or others.
    pub fn load(path: &Path) -> Result<Self, AuthorityKeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path).map_err(AuthorityKeyError::Unreadable)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(AuthorityKeyError::NotPrivate);
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(AuthorityKeyError::Unreadable)?);
        Self::from_text(&text)
    }

    /// Writes a new secret to `path`, readable only by its owner, refusing to replace a file
    /// that exists: overwriting a key file would cut every lock off from its authority.
    pub fn create_file(path: &Path) -> Result<Self, AuthorityKeyError> {
        use std::io::Write as _;
        let secret = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(AuthorityKeyError::Unwritable)?;
        let mut text = secret.to_text();
        text.push('\n');
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(AuthorityKeyError::Unwritable)?;
        Ok(secret)
    }

    /// The authority key of `site_id`: HMAC-SHA256(secret, label || site id) as the Ed25519
    /// seed. The secret is uniformly random, so the MAC is a sound key derivation.
    pub fn site_key(&self, site_id: &str) -> SigningKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length");
        mac.update(SITE_KEY_LABEL);
        mac.update(site_id.as_bytes());
        let mut seed: [u8; 32] = mac.finalize().into_bytes().into();
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        key
    }
}

/// An [`AuthorityStore`] whose site keys come from an [`AuthoritySecret`] instead of the
/// database; everything else is the wrapped store's.
pub struct ConfiguredKeys {
    store: Arc<dyn AuthorityStore>,
    secret: AuthoritySecret,
}

impl ConfiguredKeys {
    pub fn new(store: Arc<dyn AuthorityStore>, secret: AuthoritySecret) -> Self {
        Self { store, secret }
    }
}

#[async_trait]
impl AuthorityStore for ConfiguredKeys {
    async fn site_key(&self, site_id: &str) -> Result<Option<SigningKey>, ApiError> {
        Ok(match self.store.stored_site_key(site_id).await? {
            None => None,
            Some(Some(stored)) => Some(stored),
            Some(None) => Some(self.secret.site_key(site_id)),
        })
    }

    async fn stored_site_key(&self, site_id: &str) -> Result<Option<Option<SigningKey>>, ApiError> {
        self.store.stored_site_key(site_id).await
    }

    async fn next_time_sequence(&self, site_id: &str) -> Result<u64, ApiError> {
        self.store.next_time_sequence(site_id).await
    }

    async fn revocation_version(&self, site_id: &str) -> Result<u64, ApiError> {
        self.store.revocation_version(site_id).await
    }

    async fn revocations_since(&self, site_id: &str, since: u64, now: i64) -> Result<RevocationList, ApiError> {
        self.store.revocations_since(site_id, since, now).await
    }

    async fn prune_revocations(&self, now: i64) -> Result<(), ApiError> {
        self.store.prune_revocations(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::sqlite::SqliteAuthorityStore;
    use crate::db::{self, Db};

    fn site_store() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let conn = db::open(&dir.path().join("porta.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', 'Street 1'), ('site-b', 'B', 'Street 2')",
        )
        .unwrap();
        (dir, Db::new(conn))
    }

    #[tokio::test]
    async fn two_instances_with_one_secret_sign_with_the_same_keys_and_store_none() {
        let (_dir, db) = site_store();
        let secret = AuthoritySecret::generate();
        let same = AuthoritySecret::from_text(&secret.to_text()).unwrap();
        let a = ConfiguredKeys::new(Arc::new(SqliteAuthorityStore::new(db.clone())), secret);
        let b = ConfiguredKeys::new(Arc::new(SqliteAuthorityStore::new(db.clone())), same);
        let key_a = a.site_key("site-a").await.unwrap().unwrap();
        assert_eq!(key_a.to_bytes(), b.site_key("site-a").await.unwrap().unwrap().to_bytes());
        let key_b = a.site_key("site-b").await.unwrap().unwrap();
        assert_ne!(key_a.to_bytes(), key_b.to_bytes(), "each site its own key");
        assert!(a.site_key("no-such-site").await.unwrap().is_none());
        assert_eq!(a.stored_site_key("site-a").await.unwrap(), Some(None), "nothing written to the database");
        let other = ConfiguredKeys::new(Arc::new(SqliteAuthorityStore::new(db)), AuthoritySecret::generate());
        assert_ne!(other.site_key("site-a").await.unwrap().unwrap().to_bytes(), key_a.to_bytes());
    }

    #[tokio::test]
    async fn a_key_stored_before_the_secret_was_configured_is_kept() {
        let (_dir, db) = site_store();
        let embedded = SqliteAuthorityStore::new(db.clone());
        let stored = embedded.site_key("site-a").await.unwrap().unwrap();
        let configured = ConfiguredKeys::new(Arc::new(embedded), AuthoritySecret::generate());
        assert_eq!(configured.site_key("site-a").await.unwrap().unwrap().to_bytes(), stored.to_bytes());
    }

    #[test]
    fn the_key_file_is_private_malformed_text_is_refused_and_debug_shows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authority.key");
        let made = AuthoritySecret::create_file(&path).unwrap();
        let loaded = AuthoritySecret::load(&path).unwrap();
        assert_eq!(made.site_key("s").to_bytes(), loaded.site_key("s").to_bytes());
        assert!(matches!(AuthoritySecret::create_file(&path), Err(AuthorityKeyError::Unwritable(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(AuthoritySecret::load(&path), Err(AuthorityKeyError::NotPrivate)));
        }
        for bad in ["", "not base64!", "AAAA", &STANDARD.encode([7u8; 31])] {
            assert!(matches!(AuthoritySecret::from_text(bad), Err(AuthorityKeyError::Malformed)), "{bad:?}");
        }
        let text = made.to_text();
        assert!(!format!("{made:?}").contains(text.as_str()));
    }
}
