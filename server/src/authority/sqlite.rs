//! The SQLite backend of [`AuthorityStore`] (columns `authority_key`, `time_sequence` and
//! `revocation_version` of `sites`; tables `revoked_credentials` and `revoked_device_keys`),
//! and the SQL helpers other domains' SQLite stores call inside their own transactions
//! (revoking when a grant, a guest or a device goes).

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use porta_protocol::{RevokedCredential, RevokedDevice};
use rusqlite::{params, Connection, OptionalExtension};

use super::store::{AuthorityStore, RevocationEntry, RevocationList, Revoked};
use crate::db::Db;
use crate::error::ApiError;

pub struct SqliteAuthorityStore {
    db: Db,
}

impl SqliteAuthorityStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AuthorityStore for SqliteAuthorityStore {
    async fn site_key(&self, site_id: &str) -> Result<Option<SigningKey>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| match site_key(conn, &site_id) {
                Ok(key) => Ok(Some(key)),
                Err(ApiError::NotFound) => Ok(None),
                Err(e) => Err(e),
            })
            .await
    }

    async fn stored_site_key(&self, site_id: &str) -> Result<Option<Option<SigningKey>>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let stored: Option<Option<Vec<u8>>> = conn
                    .query_row("SELECT authority_key FROM sites WHERE id = ?1", [&site_id], |r| r.get(0))
                    .optional()?;
                stored.map(|key| key.map(|blob| key_from_blob(&blob)).transpose()).transpose()
            })
            .await
    }

    async fn next_time_sequence(&self, site_id: &str) -> Result<u64, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let sequence: i64 = conn.query_row(
                    "UPDATE sites SET time_sequence = time_sequence + 1 WHERE id = ?1 RETURNING time_sequence",
                    [site_id],
                    |r| r.get(0),
                )?;
                Ok(sequence.max(0) as u64)
            })
            .await
    }

    async fn revocation_version(&self, site_id: &str) -> Result<u64, ApiError> {
        let site_id = site_id.to_owned();
        self.db.call(move |conn| revocation_version(conn, &site_id)).await
    }

    async fn revocations_since(&self, site_id: &str, since: u64, now: i64) -> Result<RevocationList, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                prune_revocations(&tx, now)?;
                let version = revocation_version(&tx, &site_id)?;
                let mut entries = Vec::new();
                if since < version {
                    for (seq, id, expires) in
                        entries_after::<16>(&tx, "revoked_credentials", "credential_id", &site_id, since)?
                    {
                        entries.push(RevocationEntry {
                            seq,
                            revoked: Revoked::Credential(RevokedCredential { id, expires }),
                        });
                    }
                    for (seq, key, expires) in
                        entries_after::<32>(&tx, "revoked_device_keys", "public_key", &site_id, since)?
                    {
                        entries.push(RevocationEntry { seq, revoked: Revoked::Device(RevokedDevice { key, expires }) });
                    }
                    entries.sort_by_key(|e| e.seq);
                }
                tx.commit()?;
                Ok(RevocationList { version, entries })
            })
            .await
    }

    async fn prune_revocations(&self, now: i64) -> Result<(), ApiError> {
        self.db.call(move |conn| Ok(prune_revocations(conn, now)?)).await
    }
}

fn key_from_blob(blob: &[u8]) -> Result<SigningKey, ApiError> {
    let seed: [u8; 32] = blob.try_into().map_err(|_| ApiError::Internal("stored key is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The site's authority key, generated (and stored) on first use; `not_found` without the site.
pub fn site_key(conn: &Connection, site_id: &str) -> Result<SigningKey, ApiError> {
    let stored: Option<Option<Vec<u8>>> =
        conn.query_row("SELECT authority_key FROM sites WHERE id = ?1", [site_id], |r| r.get(0)).optional()?;
    match stored {
        None => Err(ApiError::NotFound),
        Some(Some(blob)) => key_from_blob(&blob),
        Some(None) => {
            let key = super::generate_key();
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
fn revocation_version(conn: &Connection, site_id: &str) -> Result<u64, ApiError> {
    let v: i64 = conn.query_row("SELECT revocation_version FROM sites WHERE id = ?1", [site_id], |r| r.get(0))?;
    Ok(v.max(0) as u64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch("INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', ''), ('site-b', 'B', '');")
            .unwrap();
        // As the admin, invitation and device stores revoke: inside their own transactions.
        let tx = conn.transaction().unwrap();
        revoke_credential(&tx, "site-a", &[1; 16], now + 100, now).unwrap();
        revoke_device_key(&tx, "site-a", &[2; 32], now + 1000, now).unwrap();
        revoke_credential(&tx, "site-a", &[3; 16], now + 10, now).unwrap();
        revoke_credential(&tx, "site-a", &[1; 16], now + 100, now).unwrap(); // again: no new entry
        revoke_credential(&tx, "site-b", &[4; 16], now + 100, now).unwrap();
        revoke_credential(&tx, "site-b", &[5; 16], now - 1, now).unwrap(); // expired: never listed
        tx.commit().unwrap();
        Fixture { store: Box::new(SqliteAuthorityStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::authority_store_tests!(get_store);
}
