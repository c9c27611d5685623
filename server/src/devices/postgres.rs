//! The PostgreSQL backend of [`DeviceStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`], and [`revoke_device`] for other PostgreSQL stores to run
//! inside their own transactions.

use async_trait::async_trait;
use tokio_postgres::GenericClient;

use super::store::{DeviceRecord, DeviceStore, Enrollment};
use crate::authority::postgres::revoke_device_key;
use crate::error::ApiError;
use crate::pg::PgPool;

pub struct PgDeviceStore {
    pool: PgPool,
}

impl PgDeviceStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl DeviceStore for PgDeviceStore {
    async fn enroll_key(
        &self,
        session_id: &str,
        user_id: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Result<Enrollment, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One enrollment per session at a time, whichever instance it reaches.
        tx.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", &[&session_id]).await?;
        let current: Option<Vec<u8>> = tx
            .query_opt("SELECT public_key FROM device_keys WHERE session_id = $1", &[&session_id])
            .await?
            .map(|r| r.get(0));
        let outcome = match current {
            Some(key) if key == public_key => Enrollment::AlreadyThisKey,
            Some(_) => Enrollment::SessionHasOtherKey,
            None => {
                // The key is unique across sessions: if another session holds it (or is taking
                // it right now), nothing is inserted.
                let inserted = tx
                    .execute(
                        "INSERT INTO device_keys (session_id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT DO NOTHING",
                        &[&session_id, &user_id, &public_key.as_slice(), &now],
                    )
                    .await?;
                if inserted == 1 {
                    Enrollment::Enrolled
                } else {
                    Enrollment::KeyOfOtherSession
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn active_devices(&self, user_id: &str, now: i64) -> Result<Vec<DeviceRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT s.id, s.device_name, s.created_at, s.last_seen_at, s.ip FROM sessions s
                 WHERE s.user_id = $1 AND s.revoked_at IS NULL
                   AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id
                               AND r.used_at IS NULL AND r.expires_at > $2)
                 ORDER BY s.last_seen_at DESC, s.created_at DESC",
                &[&user_id, &now],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DeviceRecord {
                device_id: r.get(0),
                device_name: r.get(1),
                created_at: r.get(2),
                last_seen_at: r.get(3),
                ip: r.get(4),
            })
            .collect())
    }

    async fn revoke_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let owned = tx
            .query_opt(
                "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL FOR UPDATE",
                &[&device_id, &user_id],
            )
            .await?
            .is_some();
        if owned {
            revoke_device(&tx, device_id, now).await?;
        }
        tx.commit().await?;
        Ok(owned)
    }
}

/// Marks the session revoked (which kills its refresh tokens) and drops its access tokens.
/// Refresh-token rows stay so a later replay of a used one is still recognised as reuse.
pub async fn revoke_session(
    client: &impl GenericClient,
    session_id: &str,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute("UPDATE sessions SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2", &[&now, &session_id])
        .await?;
    client.execute("DELETE FROM access_tokens WHERE session_id = $1", &[&session_id]).await?;
    Ok(())
}

/// Revokes the session and its device key, at every site where a credential issued for it
/// is still valid, as the SQLite backend's `revoke_device`. Run it in a transaction.
pub async fn revoke_device(
    client: &impl GenericClient,
    session_id: &str,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    revoke_session(client, session_id, now).await?;
    let key: Option<Vec<u8>> = client
        .query_opt(
            "UPDATE device_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE session_id = $2 RETURNING public_key",
            &[&now, &session_id],
        )
        .await?
        .map(|r| r.get(0));
    let Some(Ok(key)) = key.map(|k| <[u8; 32]>::try_from(k.as_slice())) else {
        return Ok(());
    };
    // Per site, the key until its last credential expires: one entry for all of them.
    let sites = client
        .query(
            "SELECT site_id, MAX(not_after) FROM credentials WHERE session_id = $1 AND not_after >= $2 GROUP BY site_id",
            &[&session_id, &now],
        )
        .await?;
    for row in sites {
        let (site_id, last_not_after): (String, i64) = (row.get(0), row.get(1));
        revoke_device_key(client, &site_id, &key, last_not_after, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::store_tests::Fixture;

    /// A fresh database with the sessions the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
            "INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@example.com', 1, 1), ('bob', 'Bob', 'bob@example.com', 1, 1);",
        )
        .await
        .unwrap();
        let sessions = [
            ("ann-old", "ann", now - 300, now - 60, None),
            ("ann-new", "ann", now - 200, now - 10, None),
            ("ann-gone", "ann", now - 100, now - 5, Some(now - 1)),
            ("ann-spent", "ann", now - 100, now - 1, None),
            ("bob-1", "bob", now - 100, now - 1, None),
        ];
        for (id, user, created, seen, revoked) in sessions {
            tx.execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at, revoked_at)
                 VALUES ($1, $2, 'Phone', '192.0.2.1', $3, $4, $5)",
                &[&id, &user, &created, &seen, &revoked],
            )
            .await
            .unwrap();
            let used = (id == "ann-spent").then_some(now - 1);
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at) VALUES ($1, $1, $2, $3)",
                &[&id, &(now + 3600), &used],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgDeviceStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::device_store_tests!(get_store);
}
