//! The PostgreSQL backend of [`AccessStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`]. An event is stored once per `(lock_id, counter)` however
//! many instances receive its upload (`ON CONFLICT DO NOTHING`), and the purge is a plain
//! DELETE by age, so every instance may run it.

use async_trait::async_trait;
use tokio_postgres::GenericClient;

use super::store::{AccessStore, DoorRetention, NewAccessEvent, RecordLock, UserAccessEvent};
use super::{DEFAULT_RETENTION_DAYS, MAX_LOCK_CLOCK_AHEAD_S};
use crate::error::ApiError;
use crate::pg::PgPool;

pub struct PgAccessStore {
    pool: PgPool,
}

impl PgAccessStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A door number or lock id as stored (BIGINT) back to the protocol's `u32`.
fn door_number(stored: i64) -> Result<u32, ApiError> {
    u32::try_from(stored).map_err(|_| ApiError::Internal("door number out of range".into()))
}

fn decision(stored: i64) -> Result<u8, ApiError> {
    u8::try_from(stored).map_err(|_| ApiError::Internal("access decision out of range".into()))
}

/// Log retention of `door` in days; for an unknown door the longest of the site, as
/// [`purge_expired`] applies.
async fn retention_days(client: &impl GenericClient, door: Option<u32>) -> Result<i64, tokio_postgres::Error> {
    let door = door.map(i64::from);
    let row = client
        .query_one(
            "SELECT COALESCE((SELECT log_retention_days FROM doors WHERE number = $1),
                             (SELECT MAX(log_retention_days) FROM doors), $2::BIGINT)",
            &[&door, &DEFAULT_RETENTION_DAYS],
        )
        .await?;
    Ok(row.get(0))
}

/// Deletes access events past their door's retention (or dated beyond their arrival), and
/// issued-credential records too old for any event that could still name them, as the SQLite
/// backend's `purge_expired`. Returns the events deleted.
pub(crate) async fn purge_expired(client: &impl GenericClient, now: i64) -> Result<usize, tokio_postgres::Error> {
    let events = client
        .execute(
            "DELETE FROM access_events WHERE at < $1 - 86400 * COALESCE(
                 (SELECT d.log_retention_days FROM doors d WHERE d.number = access_events.door_number),
                 (SELECT MAX(log_retention_days) FROM doors), $2::BIGINT)
                 OR at > received_at + $3",
            &[&now, &DEFAULT_RETENTION_DAYS, &MAX_LOCK_CLOCK_AHEAD_S],
        )
        .await?;
    client
        .execute(
            "DELETE FROM credentials WHERE not_after < $1 - 86400 *
                 COALESCE((SELECT MAX(log_retention_days) FROM doors), $2::BIGINT)",
            &[&now, &DEFAULT_RETENTION_DAYS],
        )
        .await?;
    if events > 0 {
        tracing::info!(events, "purged access events past retention");
    }
    Ok(usize::try_from(events).unwrap_or(usize::MAX))
}

#[async_trait]
impl AccessStore for PgAccessStore {
    async fn record_locks(&self, records: &[(u32, u32)]) -> Result<Vec<Option<RecordLock>>, ApiError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare(
                "SELECT l.public_key, COALESCE(
                     (SELECT door_number FROM lock_doors d WHERE d.lock_id = l.lock_id AND d.door_number = $2),
                     (SELECT MIN(door_number) FROM lock_doors d WHERE d.lock_id = l.lock_id)),
                     l.revoked_at
                 FROM locks l WHERE l.lock_id = $1",
            )
            .await?;
        let mut out = Vec::with_capacity(records.len());
        for &(lock_id, door_id) in records {
            let row = client.query_opt(&stmt, &[&i64::from(lock_id), &i64::from(door_id)]).await?;
            out.push(match row {
                None => None,
                Some(row) => {
                    let door = row.get::<_, Option<i64>>(1).map(door_number).transpose()?;
                    Some(RecordLock {
                        public_key: row.get(0),
                        door,
                        retention_days: retention_days(&*client, door).await?,
                        revoked_at: row.get(2),
                    })
                }
            });
        }
        Ok(out)
    }

    async fn store_events(&self, events: Vec<NewAccessEvent>, now: i64) -> Result<Vec<bool>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut stored = Vec::with_capacity(events.len());
        for event in &events {
            let owner: Option<String> = tx
                .query_opt("SELECT user_id FROM credentials WHERE id = $1", &[&event.credential_id.as_slice()])
                .await?
                .map(|r| r.get(0));
            // A credential id that maps to no one is a stable identifier with no use here: the
            // event is kept without it, like the anonymised events of deleted accounts.
            let (credential_id, record): (&[u8], &[u8]) = if owner.is_some() {
                (&event.credential_id, &event.record)
            } else if event.credential_id == [0u8; 16] {
                (&[0u8; 16], &event.record)
            } else {
                (&[0u8; 16], &[])
            };
            let inserted = tx
                .execute(
                    "INSERT INTO access_events
                         (lock_id, counter, door_number, credential_id, user_id, decision, at, received_at, record)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (lock_id, counter) DO NOTHING",
                    &[
                        &i64::from(event.lock_id),
                        &event.counter,
                        &event.door.map(i64::from),
                        &credential_id,
                        &owner,
                        &i64::from(event.decision),
                        &event.at,
                        &now,
                        &record,
                    ],
                )
                .await?;
            stored.push(inserted == 1);
        }
        purge_expired(&tx, now).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, ApiError> {
        let client = self.pool.get().await?;
        Ok(purge_expired(&*client, now).await?)
    }

    async fn user_events(&self, user_id: &str, limit: u32) -> Result<Vec<UserAccessEvent>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.door_number, d.name, e.at, e.decision FROM access_events e
                 LEFT JOIN doors d ON d.number = e.door_number
                 WHERE e.user_id = $1 ORDER BY e.at DESC, e.id DESC LIMIT $2",
                &[&user_id, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UserAccessEvent {
                    door_id: r.get::<_, Option<i64>>(0).map(door_number).transpose()?,
                    door_name: r.get(1),
                    at: r.get(2),
                    decision: decision(r.get(3))?,
                })
            })
            .collect()
    }

    async fn user_retention(&self, user_id: &str) -> Result<Vec<DoorRetention>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT number, name, log_retention_days FROM doors WHERE number IN (
                     SELECT door_number FROM door_grants WHERE user_id = $1
                     UNION SELECT door_number FROM access_events WHERE user_id = $1)
                 ORDER BY number",
                &[&user_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DoorRetention { door_id: door_number(r.get(0))?, door_name: r.get(1), retention_days: r.get(2) })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::store_tests::Fixture;

    /// A fresh database with the fixture the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', '');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ('d2', 'site-a', 'Roof', 2, 7);
             INSERT INTO users (id, name, email, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 1, 1), ('bob', 'Bob', 'bob@a.example', 1, 1);",
        )
        .await
        .unwrap();
        for lock in [5i64, 6] {
            tx.execute(
                "INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at)
                 VALUES ($1, 'site-a', $2, ''::BYTEA, 1)",
                &[&lock, &vec![lock as u8; 32]],
            )
            .await
            .unwrap();
        }
        tx.batch_execute("INSERT INTO lock_doors (lock_id, door_number) VALUES (5, 1), (5, 2);").await.unwrap();
        tx.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('g1', 'ann', 2, 0, $1, 1)",
            &[&crate::demo::FOREVER],
        )
        .await
        .unwrap();
        for (id, user) in [(1u8, "ann"), (2, "bob")] {
            tx.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after, issued_at)
                 VALUES ($1, 'site-a', $2, 's', $3, 0, $4, 0)",
                &[&vec![id; 16], &user, &[0u8; 32].as_slice(), &(now + 1000)],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgAccessStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::access_store_tests!(get_store);

    /// A phone retrying its upload through another instance while the first is still storing
    /// it: each event is stored once, and reported stored by exactly one of the two.
    #[tokio::test]
    async fn the_same_upload_through_two_instances_at_once_is_stored_once() {
        let f = get_store().await;
        let batch: Vec<_> = (1..=20).map(|n| crate::access::store_tests::event(n, 1, 1, f.now - n)).collect();
        let store: std::sync::Arc<dyn AccessStore> = f.store.into();
        let uploads = (0..2).map(|_| {
            let (store, batch) = (store.clone(), batch.clone());
            tokio::spawn(async move { store.store_events(batch, f.now).await.unwrap() })
        });
        let mut stored = vec![0; batch.len()];
        for upload in uploads {
            for (count, was_stored) in stored.iter_mut().zip(upload.await.unwrap()) {
                *count += usize::from(was_stored);
            }
        }
        assert!(stored.iter().all(|&n| n == 1), "{stored:?}");
        assert_eq!(store.user_events("ann", 100).await.unwrap().len(), batch.len());
    }
}
