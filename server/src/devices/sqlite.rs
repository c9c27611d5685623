//! The SQLite backend of [`DeviceStore`] (tables `sessions`, `device_keys`; revocations via
//! the authority's tables).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Transaction};

use super::store::{DeviceRecord, DeviceStore, Enrollment};
use crate::authority::revoke_device_key;
use crate::db::Db;
use crate::error::ApiError;

pub struct SqliteDeviceStore {
    db: Db,
}

impl SqliteDeviceStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl DeviceStore for SqliteDeviceStore {
    async fn enroll_key(
        &self,
        session_id: &str,
        user_id: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Result<Enrollment, ApiError> {
        let (session_id, user_id) = (session_id.to_owned(), user_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let current: Option<Vec<u8>> = tx
                    .query_row("SELECT public_key FROM device_keys WHERE session_id = ?1", [&session_id], |r| r.get(0))
                    .optional()?;
                let outcome = match current {
                    Some(key) if key == public_key => Enrollment::AlreadyThisKey,
                    Some(_) => Enrollment::SessionHasOtherKey,
                    None => {
                        let taken = tx
                            .query_row("SELECT 1 FROM device_keys WHERE public_key = ?1", [public_key.to_vec()], |_| {
                                Ok(())
                            })
                            .optional()?
                            .is_some();
                        if taken {
                            Enrollment::KeyOfOtherSession
                        } else {
                            tx.execute(
                                "INSERT INTO device_keys (session_id, user_id, public_key, created_at)
                                 VALUES (?1, ?2, ?3, ?4)",
                                params![session_id, user_id, public_key.to_vec(), now],
                            )?;
                            Enrollment::Enrolled
                        }
                    }
                };
                tx.commit()?;
                Ok(outcome)
            })
            .await
    }

    async fn active_devices(&self, user_id: &str, now: i64) -> Result<Vec<DeviceRecord>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT s.id, s.device_name, s.created_at, s.last_seen_at, s.ip FROM sessions s
                     WHERE s.user_id = ?1 AND s.revoked_at IS NULL
                       AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id
                                   AND r.used_at IS NULL AND r.expires_at > ?2)
                     ORDER BY s.last_seen_at DESC, s.created_at DESC",
                )?;
                let rows = stmt.query_map(params![user_id, now], |r| {
                    Ok(DeviceRecord {
                        device_id: r.get(0)?,
                        device_name: r.get(1)?,
                        created_at: r.get(2)?,
                        last_seen_at: r.get(3)?,
                        ip: r.get(4)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn revoke_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<bool, ApiError> {
        let (user_id, device_id) = (user_id.to_owned(), device_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let owned = tx
                    .query_row(
                        "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                        params![device_id, user_id],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if owned {
                    revoke_device(&tx, &device_id, now)?;
                }
                tx.commit()?;
                Ok(owned)
            })
            .await
    }
}

/// Marks the session revoked (which kills its refresh tokens) and drops its access tokens.
/// Refresh-token rows stay so a later replay of a used one is still recognised as reuse.
pub(crate) fn revoke_session(tx: &Transaction<'_>, session_id: &str, now: i64) -> rusqlite::Result<()> {
    tx.execute("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2", params![now, session_id])?;
    tx.execute("DELETE FROM access_tokens WHERE session_id = ?1", [session_id])?;
    Ok(())
}

/// Revokes the session and its device key, at every site where a credential issued for it
/// is still valid. Sign-out, a detected refresh-token reuse and account deletion run it
/// inside their own transactions.
pub(crate) fn revoke_device(tx: &Transaction<'_>, session_id: &str, now: i64) -> rusqlite::Result<()> {
    revoke_session(tx, session_id, now)?;
    let key: Option<Vec<u8>> = tx
        .query_row(
            "UPDATE device_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE session_id = ?2
             RETURNING public_key",
            params![now, session_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(key) = key else {
        return Ok(());
    };
    let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
        return Ok(());
    };
    // Per site, the key until its last credential expires: one entry for all of them.
    let sites: Vec<(String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT site_id, MAX(not_after) FROM credentials
             WHERE session_id = ?1 AND not_after >= ?2 GROUP BY site_id",
        )?;
        let rows = stmt.query_map(params![session_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (site_id, last_not_after) in sites {
        revoke_device_key(tx, &site_id, &key, last_not_after, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch(
            "INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@example.com', 1, 1), ('bob', 'Bob', 'bob@example.com', 1, 1);",
        )
        .unwrap();
        let sessions = [
            ("ann-old", "ann", now - 300, now - 60, None),
            ("ann-new", "ann", now - 200, now - 10, None),
            ("ann-gone", "ann", now - 100, now - 5, Some(now - 1)),
            ("ann-spent", "ann", now - 100, now - 1, None),
            ("bob-1", "bob", now - 100, now - 1, None),
        ];
        for (id, user, created, seen, revoked) in sessions {
            conn.execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at, revoked_at)
                 VALUES (?1, ?2, 'Phone', '192.0.2.1', ?3, ?4, ?5)",
                params![id, user, created, seen, revoked],
            )
            .unwrap();
            let used = (id == "ann-spent").then_some(now - 1);
            conn.execute(
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at) VALUES (?1, ?1, ?2, ?3)",
                params![id, now + 3600, used],
            )
            .unwrap();
        }
        Fixture { store: Box::new(SqliteDeviceStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::device_store_tests!(get_store);
}
