//! The site authority: each site's Ed25519 signing key (its root of trust) and the
//! site-signed updates phones carry to offline locks (time updates
//! and revocation deltas).
//!
//! The keys, sequence numbers and revocation entries live behind [`store::AuthorityStore`];
//! this module signs. The embedded server keeps each site's authority key in its database;
//! with an operator's secret configured ([`keys`]), every instance derives the keys from it
//! and the database holds none. A deployment that wants more keeps the secret in an HSM or a
//! cloud KMS.

pub mod keys;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use porta_protocol::updates::MAX_REVOCATION_ENTRY_BYTES;
use porta_protocol::{RevocationDelta, TimeUpdate};
use rand::rngs::OsRng;
use rand::RngCore;

use self::store::{RevocationList, Revoked};
use crate::error::ApiError;

// The SQLite stores of other domains revoke inside their own transactions.
pub use self::sqlite::{revoke_credential, revoke_device_key};

/// Standard base64 with padding, the encoding of every binary field in the API.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64 (with padding).
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

/// A fresh Ed25519 key from the OS CSPRNG.
pub fn generate_key() -> SigningKey {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    key
}

/// A time update for every lock of the site (`lock_id` 0), numbered `sequence`.
pub fn time_update(key: &SigningKey, now: i64, sequence: u64) -> TimeUpdate {
    TimeUpdate::issue(key, 0, now.max(0) as u64, sequence)
}

/// Signed deltas taking a lock from version `since` to `list.version`, each small enough
/// for one `Update` message, in order. Empty if `since` is current (or ahead, which only a
/// lock restored from elsewhere can be). `list` holds the entries numbered after `since`.
pub fn revocation_deltas(key: &SigningKey, since: u64, list: RevocationList) -> Result<Vec<RevocationDelta>, ApiError> {
    let head = list.version;
    if since >= head {
        return Ok(Vec::new());
    }
    let issue = |from: u64, to: u64, credentials, devices| {
        RevocationDelta::issue(key, from, to, credentials, devices)
            .map_err(|e| ApiError::Internal(format!("revocation delta: {e:?}")))
    };
    let mut deltas = Vec::new();
    let (mut from, mut credentials, mut devices) = (since, Vec::new(), Vec::new());
    let mut last_seq = since;
    for entry in list.entries {
        let (c, d) = match &entry.revoked {
            Revoked::Credential(_) => (credentials.len() + 1, devices.len()),
            Revoked::Device(_) => (credentials.len(), devices.len() + 1),
        };
        if RevocationDelta::entry_bytes(c, d) > MAX_REVOCATION_ENTRY_BYTES {
            // Full: this delta ends just before `entry.seq`.
            deltas.push(issue(from, last_seq, std::mem::take(&mut credentials), std::mem::take(&mut devices))?);
            from = last_seq;
        }
        match entry.revoked {
            Revoked::Credential(c) => credentials.push(c),
            Revoked::Device(d) => devices.push(d),
        }
        last_seq = entry.seq;
    }
    deltas.push(issue(from, head, credentials, devices)?);
    Ok(deltas)
}
