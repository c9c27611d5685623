//! The PostgreSQL backend of [`AuthorityStore`] (feature `postgres`): the same columns and
//! tables as [`super::sqlite`], and the revoking helpers other PostgreSQL stores will call
//! inside their own transactions.
//!
//! Revocation numbers come from the site's row, locked (`FOR UPDATE`) for the rest of the
//! revoking transaction, so instances revoking at once number their entries one after another
//! and never list one twice.

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use porta_protocol::{RevokedCredential, RevokedDevice};
use tokio_postgres::{GenericClient, IsolationLevel};

use super::store::{AuthorityStore, RevocationEntry, RevocationList, Revoked};
use crate::error::ApiError;
use crate::pg::PgPool;

pub struct PgAuthorityStore {
    pool: PgPool,
}

impl PgAuthorityStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn unsigned(stored: i64) -> u64 {
    stored.max(0) as u64
}

#[async_trait]
impl AuthorityStore for PgAuthorityStore {
    async fn site_key(&self, site_id: &str) -> Result<Option<SigningKey>, ApiError> {
        let client = self.pool.get().await?;
        match site_key(&*client, site_id).await {
            Ok(key) => Ok(Some(key)),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn stored_site_key(&self, site_id: &str) -> Result<Option<Option<SigningKey>>, ApiError> {
        let client = self.pool.get().await?;
        let stored: Option<Option<Vec<u8>>> =
            client.query_opt("SELECT authority_key FROM sites WHERE id = $1", &[&site_id]).await?.map(|r| r.get(0));
        stored.map(|key| key.map(|bytes| key_from_bytes(&bytes)).transpose()).transpose()
    }

    async fn next_time_sequence(&self, site_id: &str) -> Result<u64, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "UPDATE sites SET time_sequence = time_sequence + 1 WHERE id = $1 RETURNING time_sequence",
                &[&site_id],
            )
            .await?;
        Ok(unsigned(row.get(0)))
    }

    async fn revocation_version(&self, site_id: &str) -> Result<u64, ApiError> {
        let client = self.pool.get().await?;
        revocation_version(&*client, site_id).await
    }

    async fn revocations_since(&self, site_id: &str, since: u64, now: i64) -> Result<RevocationList, ApiError> {
        let mut client = self.pool.get().await?;
        prune_revocations(&*client, now).await?;
        // One snapshot: the version and the entries agree even while another instance revokes.
        let tx =
            client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().await?;
        let version = revocation_version(&tx, site_id).await?;
        let mut entries = Vec::new();
        if since < version {
            for (seq, id, expires) in
                entries_after::<16>(&tx, "revoked_credentials", "credential_id", site_id, since).await?
            {
                entries.push(RevocationEntry { seq, revoked: Revoked::Credential(RevokedCredential { id, expires }) });
            }
            for (seq, key, expires) in
                entries_after::<32>(&tx, "revoked_device_keys", "public_key", site_id, since).await?
            {
                entries.push(RevocationEntry { seq, revoked: Revoked::Device(RevokedDevice { key, expires }) });
            }
            entries.sort_by_key(|e| e.seq);
        }
        tx.commit().await?;
        Ok(RevocationList { version, entries })
    }

    async fn prune_revocations(&self, now: i64) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        Ok(prune_revocations(&*client, now).await?)
    }
}

fn key_from_bytes(bytes: &[u8]) -> Result<SigningKey, ApiError> {
    let seed: [u8; 32] = bytes.try_into().map_err(|_| ApiError::Internal("stored key is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The site's authority key, generated (and stored) on first use; `not_found` without the
/// site. Two instances generating at once store one key: the UPDATE only fills an empty
/// column, and both read back the stored one.
pub async fn site_key(client: &impl GenericClient, site_id: &str) -> Result<SigningKey, ApiError> {
    let stored: Option<Option<Vec<u8>>> =
        client.query_opt("SELECT authority_key FROM sites WHERE id = $1", &[&site_id]).await?.map(|r| r.get(0));
    match stored {
        None => Err(ApiError::NotFound),
        Some(Some(bytes)) => key_from_bytes(&bytes),
        Some(None) => {
            let key = super::generate_key();
            client
                .execute(
                    "UPDATE sites SET authority_key = $1 WHERE id = $2 AND authority_key IS NULL",
                    &[&key.to_bytes().as_slice(), &site_id],
                )
                .await?;
            tracing::info!(%site_id, "generated site authority key");
            let bytes: Vec<u8> =
                client.query_one("SELECT authority_key FROM sites WHERE id = $1", &[&site_id]).await?.get(0);
            key_from_bytes(&bytes)
        }
    }
}

/// Locks the site's row until the caller's transaction ends: revocations at one site are
/// checked and numbered one after another.
async fn lock_site(client: &impl GenericClient, site_id: &str) -> Result<(), tokio_postgres::Error> {
    client.execute("SELECT 1 FROM sites WHERE id = $1 FOR UPDATE", &[&site_id]).await?;
    Ok(())
}

/// Bumps and returns the site's revocation version: each entry gets its own number.
async fn next_revocation_seq(client: &impl GenericClient, site_id: &str) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "UPDATE sites SET revocation_version = revocation_version + 1 WHERE id = $1 RETURNING revocation_version",
            &[&site_id],
        )
        .await?;
    Ok(row.get(0))
}

/// Revokes one credential at `site_id` until it expires (`not_after`). Idempotent. Run it in
/// a transaction: the site's row stays locked until it ends.
pub async fn revoke_credential(
    client: &impl GenericClient,
    site_id: &str,
    credential_id: &[u8; 16],
    not_after: i64,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    if not_after < now {
        return Ok(());
    }
    lock_site(client, site_id).await?;
    let known = client
        .query_opt(
            "SELECT 1 FROM revoked_credentials WHERE site_id = $1 AND credential_id = $2",
            &[&site_id, &credential_id.as_slice()],
        )
        .await?
        .is_some();
    if known {
        return Ok(());
    }
    let seq = next_revocation_seq(client, site_id).await?;
    client
        .execute(
            "INSERT INTO revoked_credentials (site_id, credential_id, not_after, revoked_at, seq)
             VALUES ($1, $2, $3, $4, $5)",
            &[&site_id, &credential_id.as_slice(), &not_after, &now, &seq],
        )
        .await?;
    Ok(())
}

/// Revokes a device key at `site_id` until `not_after`, the last expiry of any credential
/// issued for it; a later expiry re-lists the key under a new number. Run it in a transaction.
pub async fn revoke_device_key(
    client: &impl GenericClient,
    site_id: &str,
    key: &[u8; 32],
    not_after: i64,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    if not_after < now {
        return Ok(());
    }
    lock_site(client, site_id).await?;
    let known: Option<i64> = client
        .query_opt(
            "SELECT not_after FROM revoked_device_keys WHERE site_id = $1 AND public_key = $2",
            &[&site_id, &key.as_slice()],
        )
        .await?
        .map(|r| r.get(0));
    if known.is_some_and(|k| k >= not_after) {
        return Ok(());
    }
    let seq = next_revocation_seq(client, site_id).await?;
    client
        .execute(
            "INSERT INTO revoked_device_keys (site_id, public_key, not_after, revoked_at, seq)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (site_id, public_key) DO UPDATE SET not_after = excluded.not_after, seq = excluded.seq",
            &[&site_id, &key.as_slice(), &not_after, &now, &seq],
        )
        .await?;
    Ok(())
}

/// Drops revocation entries that can no longer matter (every credential they cover has
/// expired). A plain DELETE by age: every instance may run it.
pub async fn prune_revocations(client: &impl GenericClient, now: i64) -> Result<(), tokio_postgres::Error> {
    for table in ["revoked_credentials", "revoked_device_keys"] {
        client.execute(&format!("DELETE FROM {table} WHERE not_after < $1"), &[&now]).await?;
    }
    Ok(())
}

async fn revocation_version(client: &impl GenericClient, site_id: &str) -> Result<u64, ApiError> {
    let row = client.query_one("SELECT revocation_version FROM sites WHERE id = $1", &[&site_id]).await?;
    Ok(unsigned(row.get(0)))
}

/// (number, `N`-byte id, expiry) of the entries of `table` numbered after `since`.
async fn entries_after<const N: usize>(
    client: &impl GenericClient,
    table: &str,
    id_column: &str,
    site_id: &str,
    since: u64,
) -> Result<Vec<(u64, [u8; N], u64)>, tokio_postgres::Error> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = client
        .query(
            &format!("SELECT seq, {id_column}, not_after FROM {table} WHERE site_id = $1 AND seq > $2"),
            &[&site_id, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let id = <[u8; N]>::try_from(r.get::<_, &[u8]>(1)).ok()?;
            Some((unsigned(r.get(0)), id, unsigned(r.get(2))))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::store_tests::Fixture;

    /// A fresh database with the revocations the SQLite backend's tests make, made the same
    /// way: inside one transaction, as the other stores revoke.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        client
            .batch_execute("INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', ''), ('site-b', 'B', '');")
            .await
            .unwrap();
        let tx = client.transaction().await.unwrap();
        revoke_credential(&tx, "site-a", &[1; 16], now + 100, now).await.unwrap();
        revoke_device_key(&tx, "site-a", &[2; 32], now + 1000, now).await.unwrap();
        revoke_credential(&tx, "site-a", &[3; 16], now + 10, now).await.unwrap();
        revoke_credential(&tx, "site-a", &[1; 16], now + 100, now).await.unwrap(); // again: no new entry
        revoke_credential(&tx, "site-b", &[4; 16], now + 100, now).await.unwrap();
        revoke_credential(&tx, "site-b", &[5; 16], now - 1, now).await.unwrap(); // expired: never listed
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgAuthorityStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::authority_store_tests!(get_store);

    /// Instances revoking the same credential at once list it once, under one number.
    #[tokio::test]
    async fn concurrent_revocations_of_one_credential_make_one_entry() {
        let now: i64 = 1_750_000_000;
        let pool = crate::pg::test_support::fresh_database().await;
        pool.get()
            .await
            .unwrap()
            .batch_execute("INSERT INTO sites (id, name, address) VALUES ('s', 'S', '')")
            .await
            .unwrap();
        let revokers = (0..8).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut client = pool.get().await.unwrap();
                let tx = client.transaction().await.unwrap();
                revoke_credential(&tx, "s", &[9; 16], now + 100, now).await.unwrap();
                tx.commit().await.unwrap();
            })
        });
        for revoker in revokers {
            revoker.await.unwrap();
        }
        let store = PgAuthorityStore::new(pool);
        let list = store.revocations_since("s", 0, now).await.unwrap();
        assert_eq!((list.version, list.entries.len()), (1, 1));
    }
}
