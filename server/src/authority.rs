//! The site authority: each site's Ed25519 signing key (its root of trust) and the
//! site-signed updates phones carry to offline locks (time updates
//! and revocation deltas).
//!
//! The reference backend keeps the authority key in its SQLite database. A production
//! deployment keeps it in an HSM or a cloud KMS and only ever asks it to sign.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::SigningKey;
use porta_protocol::updates::MAX_REVOCATION_ENTRY_BYTES;
use porta_protocol::{RevocationDelta, RevokedCredential, RevokedDevice, TimeUpdate};
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::ApiError;

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

fn key_from_blob(blob: &[u8]) -> Result<SigningKey, ApiError> {
    let seed: [u8; 32] = blob.try_into().map_err(|_| ApiError::Internal("stored key is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The site's authority key, generated (and stored) on first use.
pub fn site_key(conn: &Connection, site_id: &str) -> Result<SigningKey, ApiError> {
    let stored: Option<Option<Vec<u8>>> =
        conn.query_row("SELECT authority_key FROM sites WHERE id = ?1", [site_id], |r| r.get(0)).optional()?;
    match stored {
        None => Err(ApiError::NotFound),
        Some(Some(blob)) => key_from_blob(&blob),
        Some(None) => {
            let key = generate_key();
            conn.execute(
                "UPDATE sites SET authority_key = ?1 WHERE id = ?2 AND authority_key IS NULL",
                params![key.to_bytes().to_vec(), site_id],
            )?;
            tracing::info!(%site_id, "generated site authority key");
            // Re-read: whichever key is stored is the one that counts.
            let blob: Vec<u8> =
                conn.query_row("SELECT authority_key FROM sites WHERE id = ?1", [site_id], |r| r.get(0))?;
            key_from_blob(&blob)
        }
    }
}

/// Signs a time update for every lock of the site (`lock_id` 0) with the next sequence.
pub fn next_time_update(conn: &Connection, site_id: &str, key: &SigningKey, now: i64) -> Result<TimeUpdate, ApiError> {
    let sequence: i64 = conn.query_row(
        "UPDATE sites SET time_sequence = time_sequence + 1 WHERE id = ?1
         RETURNING time_sequence",
        [site_id],
        |r| r.get(0),
    )?;
    Ok(TimeUpdate::issue(key, 0, now.max(0) as u64, sequence as u64))
}

/// Bumps and returns the site's revocation version: each revocation entry gets its own
/// number, so deltas can be cut between any two entries.
fn next_revocation_seq(conn: &Connection, site_id: &str) -> rusqlite::Result<i64> {
    conn.query_row(
        "UPDATE sites SET revocation_version = revocation_version + 1 WHERE id = ?1
         RETURNING revocation_version",
        [site_id],
        |r| r.get(0),
    )
}

/// Revokes one credential at `site_id` until it expires (`not_after`). Idempotent.
pub fn revoke_credential(
    conn: &Connection,
    site_id: &str,
    credential_id: &[u8; 16],
    not_after: i64,
    now: i64,
) -> rusqlite::Result<()> {
    let known = conn
        .query_row(
            "SELECT 1 FROM revoked_credentials WHERE site_id = ?1 AND credential_id = ?2",
            params![site_id, credential_id.to_vec()],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if known || not_after < now {
        return Ok(());
    }
    let seq = next_revocation_seq(conn, site_id)?;
    conn.execute(
        "INSERT INTO revoked_credentials (site_id, credential_id, not_after, revoked_at, seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![site_id, credential_id.to_vec(), not_after, now, seq],
    )?;
    Ok(())
}

/// Revokes a device key at `site_id` until `not_after`, the last expiry of any credential
/// issued for it: one entry covers every credential of the device, however many it synced.
/// A later expiry re-lists the key under a new number, so locks that have the old entry
/// learn the new bound.
pub fn revoke_device_key(
    conn: &Connection,
    site_id: &str,
    key: &[u8; 32],
    not_after: i64,
    now: i64,
) -> rusqlite::Result<()> {
    let known: Option<i64> = conn
        .query_row(
            "SELECT not_after FROM revoked_device_keys WHERE site_id = ?1 AND public_key = ?2",
            params![site_id, key.to_vec()],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some_and(|k| k >= not_after) || not_after < now {
        return Ok(());
    }
    let seq = next_revocation_seq(conn, site_id)?;
    conn.execute(
        "INSERT INTO revoked_device_keys (site_id, public_key, not_after, revoked_at, seq)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (site_id, public_key) DO UPDATE SET not_after = excluded.not_after, seq = excluded.seq",
        params![site_id, key.to_vec(), not_after, now, seq],
    )?;
    Ok(())
}

/// Drops revocation entries that can no longer matter: the credential, or every credential
/// issued for the key, has expired. Deltas simply no longer carry them; locks forget them
/// on their own at the same expiry.
pub fn prune_revocations(conn: &Connection, now: i64) -> rusqlite::Result<()> {
    for table in ["revoked_credentials", "revoked_device_keys"] {
        conn.execute(&format!("DELETE FROM {table} WHERE not_after < ?1"), [now])?;
    }
    Ok(())
}

/// The site's current revocation version (the newest entry's number).
pub fn revocation_version(conn: &Connection, site_id: &str) -> Result<u64, ApiError> {
    let v: i64 = conn.query_row("SELECT revocation_version FROM sites WHERE id = ?1", [site_id], |r| r.get(0))?;
    Ok(v.max(0) as u64)
}

enum Revoked {
    Credential(RevokedCredential),
    Device(RevokedDevice),
}

/// (number, `N`-byte id, expiry) of the entries of `table` numbered after `since`; ids of
/// another length (the schema never stores one) are skipped.
fn entries_after<const N: usize>(
    conn: &Connection,
    table: &str,
    id_column: &str,
    site_id: &str,
    since: u64,
) -> rusqlite::Result<Vec<(u64, [u8; N], u64)>> {
    let mut stmt =
        conn.prepare(&format!("SELECT seq, {id_column}, not_after FROM {table} WHERE site_id = ?1 AND seq > ?2"))?;
    let rows = stmt.query_map(params![site_id, since as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, id, not_after) = row?;
        if let Ok(id) = <[u8; N]>::try_from(id.as_slice()) {
            out.push((seq.max(0) as u64, id, not_after.max(0) as u64));
        }
    }
    Ok(out)
}

/// Signed deltas taking a lock from version `since` to the site's current version, each
/// small enough for one `Update` message, in order. Empty if `since` is current (or
/// ahead, which only a lock restored from elsewhere can be). Call [`prune_revocations`] first.
pub fn revocation_deltas(
    conn: &Connection,
    site_id: &str,
    key: &SigningKey,
    since: u64,
) -> Result<Vec<RevocationDelta>, ApiError> {
    let head = revocation_version(conn, site_id)?;
    if since >= head {
        return Ok(Vec::new());
    }
    let mut entries: Vec<(u64, Revoked)> = Vec::new();
    for (seq, id, expires) in entries_after::<16>(conn, "revoked_credentials", "credential_id", site_id, since)? {
        entries.push((seq, Revoked::Credential(RevokedCredential { id, expires })));
    }
    for (seq, key, expires) in entries_after::<32>(conn, "revoked_device_keys", "public_key", site_id, since)? {
        entries.push((seq, Revoked::Device(RevokedDevice { key, expires })));
    }
    entries.sort_by_key(|(seq, _)| *seq);

    let issue = |from: u64, to: u64, credentials, devices| {
        RevocationDelta::issue(key, from, to, credentials, devices)
            .map_err(|e| ApiError::Internal(format!("revocation delta: {e:?}")))
    };
    let mut deltas = Vec::new();
    let (mut from, mut credentials, mut devices) = (since, Vec::new(), Vec::new());
    let mut last_seq = since;
    for (seq, entry) in entries {
        let (c, d) = match &entry {
            Revoked::Credential(_) => (credentials.len() + 1, devices.len()),
            Revoked::Device(_) => (credentials.len(), devices.len() + 1),
        };
        if RevocationDelta::entry_bytes(c, d) > MAX_REVOCATION_ENTRY_BYTES {
            // Full: this delta ends just before `seq`.
            deltas.push(issue(from, last_seq, std::mem::take(&mut credentials), std::mem::take(&mut devices))?);
            from = last_seq;
        }
        match entry {
            Revoked::Credential(c) => credentials.push(c),
            Revoked::Device(d) => devices.push(d),
        }
        last_seq = seq;
    }
    deltas.push(issue(from, head, credentials, devices)?);
    Ok(deltas)
}
