//! The PostgreSQL backend of [`PartnerStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`].

use async_trait::async_trait;
use tokio_postgres::Row;

use super::store::{LogQuery, PartnerKeyRecord, PartnerStore, SiteAccessEvent, SitePerson};
use crate::error::ApiError;
use crate::pg::PgPool;

const PSEUDONYM_KEY_NAME: &str = "partner_pseudonym_key";
const KEY_COLUMNS: &str = "id, site_id, label, created_at, last_used_at, revoked_at";

pub struct PgPartnerStore {
    pool: PgPool,
}

impl PgPartnerStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn key_row(r: &Row) -> PartnerKeyRecord {
    PartnerKeyRecord {
        id: r.get(0),
        site_id: r.get(1),
        label: r.get(2),
        created_at: r.get(3),
        last_used_at: r.get(4),
        revoked_at: r.get(5),
    }
}

#[async_trait]
impl PartnerStore for PgPartnerStore {
    async fn pseudonym_key(&self) -> Result<[u8; 32], ApiError> {
        let client = self.pool.get().await?;
        crate::pg::server_secret(&client, PSEUDONYM_KEY_NAME).await
    }

    async fn create_key(&self, key: &PartnerKeyRecord, secret_hash: &str) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO partner_keys (id, site_id, label, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&key.id, &key.site_id, &key.label, &secret_hash, &key.created_at],
            )
            .await?;
        Ok(())
    }

    async fn keys(&self, site_id: &str) -> Result<Vec<PartnerKeyRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM partner_keys WHERE site_id = $1 ORDER BY created_at, id"),
                &[&site_id],
            )
            .await?;
        Ok(rows.iter().map(key_row).collect())
    }

    async fn revoke_key(&self, site_id: &str, key_id: &str, now: i64) -> Result<bool, ApiError> {
        let client = self.pool.get().await?;
        let found = client
            .execute(
                "UPDATE partner_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE site_id = $1 AND id = $2",
                &[&site_id, &key_id, &now],
            )
            .await?;
        Ok(found > 0)
    }

    async fn use_key(&self, secret_hash: &str, now: i64) -> Result<Option<PartnerKeyRecord>, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE partner_keys SET last_used_at = $2 WHERE secret_hash = $1 AND revoked_at IS NULL
                     RETURNING {KEY_COLUMNS}"
                ),
                &[&secret_hash, &now],
            )
            .await?;
        Ok(row.as_ref().map(key_row))
    }

    async fn count_read(&self, key_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        crate::pg::take_rate_slot(&tx, "partner_read", key_id, limit, now, window).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn people(&self, site_id: &str) -> Result<Vec<SitePerson>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT u.id, u.name FROM users u WHERE u.kind = 'resident' AND (
                     u.unit_id IN (SELECT id FROM units WHERE site_id = $1)
                     OR u.id IN (SELECT g.user_id FROM door_grants g
                                 JOIN doors d ON d.number = g.door_number WHERE d.site_id = $1))
                 ORDER BY u.id",
                &[&site_id],
            )
            .await?;
        Ok(rows.iter().map(|r| SitePerson { user_id: r.get(0), name: r.get(1) }).collect())
    }

    async fn access_log(&self, site_id: &str, query: LogQuery) -> Result<Vec<SiteAccessEvent>, ApiError> {
        let client = self.pool.get().await?;
        // Events past their door's retention are left out even before the purge runs.
        let rows = client
            .query(
                "SELECT e.id, e.at, e.door_number, d.name, e.decision, e.user_id FROM access_events e
                 JOIN doors d ON d.number = e.door_number
                 WHERE d.site_id = $1 AND e.at >= $2 - 86400 * d.log_retention_days
                   AND ($3::BIGINT IS NULL OR e.at >= $3) AND ($4::BIGINT IS NULL OR e.id < $4)
                 ORDER BY e.id DESC LIMIT $5",
                &[&site_id, &query.now, &query.since, &query.before, &i64::from(query.limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let door: i64 = r.get(2);
                Ok(SiteAccessEvent {
                    id: r.get(0),
                    at: r.get(1),
                    door_id: u32::try_from(door).map_err(|_| ApiError::Internal("door number out of range".into()))?,
                    door_name: r.get(3),
                    opened: r.get::<_, i64>(4) == 0,
                    user_id: r.get(5),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::store_tests::Fixture;

    /// A fresh database with the fixture the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(
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
        .await
        .unwrap();
        for (counter, door, user, at, decision) in [
            (1i64, 1i64, "ann", now - 100, 0i64),
            (2, 2, "bob", now - 90, 0),
            (3, 1, "gus", now - 80, 4),
            (4, 1, "ann", now - 200 * 86400, 0),
        ] {
            tx.execute(
                "INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
                     received_at, record) VALUES (1, $1, $2, $3, $4, $5, $6, $6, ''::BYTEA)",
                &[&counter, &door, &[0u8; 16].as_slice(), &user, &decision, &at],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgPartnerStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::partner_store_tests!(get_store);
}
