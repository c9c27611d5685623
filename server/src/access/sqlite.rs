//! The SQLite backend of [`AccessStore`] (table `access_events`; credential owners from
//! `credentials`, retention from `doors`).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::store::{AccessStore, DoorRetention, NewAccessEvent, RecordLock, UserAccessEvent};
use super::DEFAULT_RETENTION_DAYS;
use crate::db::Db;
use crate::error::ApiError;

pub struct SqliteAccessStore {
    db: Db,
}

impl SqliteAccessStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Log retention of `door` in days; for an unknown door the longest of the site, as
/// [`purge_expired`] applies.
fn retention_days(conn: &Connection, door: Option<u32>) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE((SELECT log_retention_days FROM doors WHERE number = ?1),
                         (SELECT MAX(log_retention_days) FROM doors), ?2)",
        params![door, DEFAULT_RETENTION_DAYS],
        |r| r.get(0),
    )
}

/// Deletes access events older than their door's `log_retention_days`, and issued-credential
/// records too old for any event that could still name them. Returns the events deleted.
///
/// Each statement is a range on an index, so a purge costs what it deletes, not what is kept
/// (BENCHMARKS.md, the size run's plans): per retention in use, its doors' older events
/// (`access_events_door_at`); events of no door (NULL, or a door since removed) older than
/// the longest retention (`access_events_at`); credentials expired before that
/// (`credentials_not_after`).
pub fn purge_expired(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    let tx = conn.unchecked_transaction()?;
    let longest: i64 =
        tx.query_row("SELECT COALESCE(MAX(log_retention_days), ?1) FROM doors", [DEFAULT_RETENTION_DAYS], |r| {
            r.get(0)
        })?;
    let retentions: Vec<i64> = tx
        .prepare("SELECT DISTINCT log_retention_days FROM doors")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut events = 0;
    let mut by_door = tx.prepare(
        "DELETE FROM access_events
         WHERE door_number IN (SELECT number FROM doors WHERE log_retention_days = ?1) AND at < ?2",
    )?;
    for days in retentions {
        events += by_door.execute(params![days, now - 86_400 * days])?;
    }
    drop(by_door);
    events += tx.execute(
        "DELETE FROM access_events WHERE at < ?1
             AND (door_number IS NULL
                  OR NOT EXISTS (SELECT 1 FROM doors d WHERE d.number = access_events.door_number))",
        [now - 86_400 * longest],
    )?;
    tx.execute("DELETE FROM credentials WHERE not_after < ?1", [now - 86_400 * longest])?;
    tx.commit()?;
    if events > 0 {
        tracing::info!(events, "purged access events past retention");
    }
    Ok(events)
}

#[async_trait]
impl AccessStore for SqliteAccessStore {
    async fn record_locks(&self, records: &[(u32, u32)]) -> Result<Vec<Option<RecordLock>>, ApiError> {
        let records = records.to_vec();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT l.public_key, COALESCE(
                         (SELECT door_number FROM lock_doors d WHERE d.lock_id = l.lock_id AND d.door_number = ?2),
                         (SELECT MIN(door_number) FROM lock_doors d WHERE d.lock_id = l.lock_id)),
                         l.revoked_at
                     FROM locks l WHERE l.lock_id = ?1",
                )?;
                let mut out = Vec::with_capacity(records.len());
                for (lock_id, door_id) in records {
                    let lock: Option<(Vec<u8>, Option<u32>, Option<i64>)> = stmt
                        .query_row(params![lock_id, door_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()?;
                    out.push(match lock {
                        None => None,
                        Some((public_key, door, revoked_at)) => Some(RecordLock {
                            public_key,
                            door,
                            retention_days: retention_days(conn, door)?,
                            revoked_at,
                        }),
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn store_events(&self, events: Vec<NewAccessEvent>, now: i64) -> Result<Vec<bool>, ApiError> {
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let mut stored = Vec::with_capacity(events.len());
                for event in &events {
                    let owner: Option<String> = tx
                        .query_row(
                            "SELECT user_id FROM credentials WHERE id = ?1",
                            [event.credential_id.to_vec()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    // A credential id that maps to no one is a stable identifier with no use
                    // here: the event is kept without it, like the anonymised events of
                    // deleted accounts.
                    let (credential_id, record): (Vec<u8>, &[u8]) = if owner.is_some() {
                        (event.credential_id.to_vec(), &event.record)
                    } else if event.credential_id == [0u8; 16] {
                        (vec![0u8; 16], &event.record)
                    } else {
                        (vec![0u8; 16], &[])
                    };
                    let inserted = tx.execute(
                        "INSERT OR IGNORE INTO access_events
                             (lock_id, counter, door_number, credential_id, user_id, decision, at,
                              received_at, record)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            event.lock_id,
                            event.counter,
                            event.door,
                            credential_id,
                            owner,
                            event.decision,
                            event.at,
                            now,
                            record
                        ],
                    )?;
                    stored.push(inserted == 1);
                }
                tx.commit()?;
                Ok(stored)
            })
            .await
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, ApiError> {
        self.db.call(move |conn| Ok(purge_expired(conn, now)?)).await
    }

    async fn user_events(&self, user_id: &str, now: i64, limit: u32) -> Result<Vec<UserAccessEvent>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT e.door_number, d.name, e.at, e.decision FROM access_events e
                     LEFT JOIN doors d ON d.number = e.door_number
                     WHERE e.user_id = ?1 AND e.at >= ?2 - 86400 * COALESCE(d.log_retention_days,
                           (SELECT MAX(log_retention_days) FROM doors), ?3)
                     ORDER BY e.at DESC, e.id DESC LIMIT ?4",
                )?;
                let rows = stmt.query_map(params![user_id, now, DEFAULT_RETENTION_DAYS, limit], |r| {
                    Ok(UserAccessEvent { door_id: r.get(0)?, door_name: r.get(1)?, at: r.get(2)?, decision: r.get(3)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn user_retention(&self, user_id: &str) -> Result<Vec<DoorRetention>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT number, name, log_retention_days FROM doors WHERE number IN (
                         SELECT door_number FROM door_grants WHERE user_id = ?1
                         UNION SELECT door_number FROM access_events WHERE user_id = ?1)
                     ORDER BY number",
                )?;
                let rows = stmt.query_map([&user_id], |r| {
                    Ok(DoorRetention { door_id: r.get(0)?, door_name: r.get(1)?, retention_days: r.get(2)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', '');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ('d2', 'site-a', 'Roof', 2, 7);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 1, 1), ('bob', 'Bob', 'bob@a.example', 1, 1);",
        )
        .unwrap();
        for lock in [5u32, 6] {
            conn.execute(
                "INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at) VALUES (?1, 'site-a', ?2, x'', 1)",
                params![lock, vec![lock as u8; 32]],
            )
            .unwrap();
        }
        conn.execute_batch("INSERT INTO lock_doors (lock_id, door_number) VALUES (5, 1), (5, 2);").unwrap();
        conn.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('g1', 'ann', 2, 0, ?1, 1)",
            [crate::demo::FOREVER],
        )
        .unwrap();
        for (id, user) in [(1u8, "ann"), (2, "bob")] {
            conn.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at)
                 VALUES (?1, 'site-a', ?2, 's', zeroblob(32), 0, ?3, 0)",
                params![vec![id; 16], user, now + 1000],
            )
            .unwrap();
        }
        Fixture { store: Box::new(SqliteAccessStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::access_store_tests!(get_store);
}
