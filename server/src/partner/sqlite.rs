//! The SQLite backend of [`PartnerStore`] (table `partner_keys`, migration 9; people and
//! events from the residents' and doors' tables).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::store::{LogQuery, PartnerKeyRecord, PartnerStore, SiteAccessEvent, SitePerson};
use crate::db::Db;
use crate::error::ApiError;

const PSEUDONYM_KEY_NAME: &str = "partner_pseudonym_key";
const KEY_COLUMNS: &str = "id, site_id, label, created_at, last_used_at, revoked_at";

pub struct SqlitePartnerStore {
    db: Db,
}

impl SqlitePartnerStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<PartnerKeyRecord> {
    Ok(PartnerKeyRecord {
        id: r.get(0)?,
        site_id: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        last_used_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

#[async_trait]
impl PartnerStore for SqlitePartnerStore {
    async fn pseudonym_key(&self) -> Result<[u8; 32], ApiError> {
        self.db.call(|conn| crate::db::server_secret(conn, PSEUDONYM_KEY_NAME)).await
    }

    async fn create_key(&self, key: &PartnerKeyRecord, secret_hash: &str) -> Result<(), ApiError> {
        let (key, secret_hash) = (key.clone(), secret_hash.to_owned());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO partner_keys (id, site_id, label, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![key.id, key.site_id, key.label, secret_hash, key.created_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn keys(&self, site_id: &str) -> Result<Vec<PartnerKeyRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {KEY_COLUMNS} FROM partner_keys WHERE site_id = ?1 ORDER BY created_at, id"
                ))?;
                let keys = stmt.query_map([site_id], key_row)?.collect::<rusqlite::Result<_>>()?;
                Ok(keys)
            })
            .await
    }

    async fn revoke_key(&self, site_id: &str, key_id: &str, now: i64) -> Result<bool, ApiError> {
        let (site_id, key_id) = (site_id.to_owned(), key_id.to_owned());
        self.db
            .call(move |conn| {
                let found = conn.execute(
                    "UPDATE partner_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE site_id = ?1 AND id = ?2",
                    params![site_id, key_id, now],
                )?;
                Ok(found > 0)
            })
            .await
    }

    async fn use_key(&self, secret_hash: &str, now: i64) -> Result<Option<PartnerKeyRecord>, ApiError> {
        let secret_hash = secret_hash.to_owned();
        self.db
            .call(move |conn| {
                let key = conn
                    .query_row(
                        &format!(
                            "UPDATE partner_keys SET last_used_at = ?2 WHERE secret_hash = ?1 AND revoked_at IS NULL
                             RETURNING {KEY_COLUMNS}"
                        ),
                        params![secret_hash, now],
                        key_row,
                    )
                    .optional()?;
                Ok(key)
            })
            .await
    }

    async fn count_read(&self, key_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError> {
        let key_id = key_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                crate::auth::sqlite::take_rate_slot(&tx, "partner_read", &key_id, limit, now, window)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn people(&self, site_id: &str) -> Result<Vec<SitePerson>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT u.id, u.name FROM users u WHERE u.kind = 'resident' AND (
                         u.unit_id IN (SELECT id FROM units WHERE site_id = ?1)
                         OR u.id IN (SELECT g.user_id FROM door_grants g
                                     JOIN doors d ON d.number = g.door_number WHERE d.site_id = ?1))
                     ORDER BY u.id",
                )?;
                let people = stmt
                    .query_map([site_id], |r| Ok(SitePerson { user_id: r.get(0)?, name: r.get(1)? }))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(people)
            })
            .await
    }

    async fn access_log(&self, site_id: &str, query: LogQuery) -> Result<Vec<SiteAccessEvent>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                // Events past their door's retention are left out even before the purge runs.
                let mut stmt = conn.prepare(
                    "SELECT e.id, e.at, e.door_number, d.name, e.decision, e.user_id FROM access_events e
                     JOIN doors d ON d.number = e.door_number
                     WHERE d.site_id = ?1 AND e.at >= ?2 - 86400 * d.log_retention_days
                       AND (?3 IS NULL OR e.at >= ?3) AND (?4 IS NULL OR e.id < ?4)
                     ORDER BY e.id DESC LIMIT ?5",
                )?;
                let events = stmt
                    .query_map(params![site_id, query.now, query.since, query.before, query.limit], |r| {
                        Ok(SiteAccessEvent {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            door_id: r.get(2)?,
                            door_name: r.get(3)?,
                            opened: r.get::<_, u8>(4)? == 0,
                            user_id: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(events)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', ''), ('site-b', 'B', '');
             INSERT INTO units (id, site_id, name, kind) VALUES ('unit-a', 'site-a', 'A1', 'apartment'),
                 ('unit-b', 'site-b', 'B1', 'apartment');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'A gate', 1), ('d2', 'site-b', 'B gate', 2);
             INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 'unit-a', 1, 1),
                 ('bob', 'Bob', 'bob@b.example', 'unit-b', 1, 1),
                 ('gus', 'Gus', 'gus@x.example', NULL, 1, 1);
             INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                 VALUES ('g1', 'gus', 1, 0, 9, 1);",
        )
        .unwrap();
        let insert_event = |counter: i64, door: u32, user: &str, at: i64, decision: u8| {
            conn.execute(
                "INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
                     received_at, record) VALUES (1, ?1, ?2, zeroblob(16), ?3, ?4, ?5, ?5, x'')",
                params![counter, door, user, decision, at],
            )
            .unwrap();
        };
        insert_event(1, 1, "ann", now - 100, 0);
        insert_event(2, 2, "bob", now - 90, 0);
        insert_event(3, 1, "gus", now - 80, 4);
        insert_event(4, 1, "ann", now - 200 * 86400, 0);
        Fixture { store: Box::new(SqlitePartnerStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::partner_store_tests!(get_store);
}
