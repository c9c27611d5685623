//! The PostgreSQL backend of [`DoorStore`] (feature `postgres`): the same tables and semantics
//! as [`super::sqlite`]. Recording an issuance locks the session's device key, so the per-session
//! issuing limit holds when requests reach several instances at once.

use async_trait::async_trait;
use tokio_postgres::GenericClient;

use super::store::{ActiveGrant, DoorRecord, DoorStore, DoorsSnapshot, Issuance, Issued, SiteRef, StoredCredential};
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::site_time::{DstRule, SiteTime};

use crate::pg::PgPool;

pub struct PgDoorStore {
    pool: PgPool,
}

impl PgDoorStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn number(stored: i64) -> Result<u32, ApiError> {
    u32::try_from(stored).map_err(|_| ApiError::Internal("door or lock number out of range".into()))
}

/// The site's local time (standard offset and daylight-saving rule).
pub(crate) async fn site_time(client: &impl GenericClient, site_id: &str) -> Result<SiteTime, ApiError> {
    let row = client.query_one("SELECT utc_offset_minutes, dst_rule FROM sites WHERE id = $1", &[&site_id]).await?;
    let offset =
        i16::try_from(row.get::<_, i64>(0)).map_err(|_| ApiError::Internal("utc offset out of range".into()))?;
    let dst = DstRule::parse(row.get(1)).ok_or_else(|| ApiError::Internal("unknown dst rule".into()))?;
    Ok(SiteTime { standard_offset_minutes: offset, dst })
}

/// The site whose doors the user sees: that of their grants, else their unit's, else the
/// first site; `not_found` without any.
pub(crate) async fn site_for_user(client: &impl GenericClient, user_id: &str) -> Result<(String, String), ApiError> {
    let queries = [
        "SELECT s.id, s.name FROM door_grants g JOIN doors d ON d.number = g.door_number
         JOIN sites s ON s.id = d.site_id WHERE g.user_id = $1 ORDER BY g.created_at, g.id LIMIT 1",
        "SELECT s.id, s.name FROM users u JOIN units n ON n.id = u.unit_id
         JOIN sites s ON s.id = n.site_id WHERE u.id = $1",
        "SELECT id, name FROM sites WHERE $1::TEXT IS NOT NULL ORDER BY id LIMIT 1",
    ];
    for sql in queries {
        if let Some(row) = client.query_opt(sql, &[&user_id]).await? {
            return Ok((row.get(0), row.get(1)));
        }
    }
    Err(ApiError::NotFound)
}

/// The session's unrevoked device key; with `lock`, its row stays locked until the caller's
/// transaction ends.
async fn device_key(client: &impl GenericClient, session_id: &str, lock: bool) -> Result<Option<[u8; 32]>, ApiError> {
    let sql = if lock {
        "SELECT public_key FROM device_keys WHERE session_id = $1 AND revoked_at IS NULL FOR UPDATE"
    } else {
        "SELECT public_key FROM device_keys WHERE session_id = $1 AND revoked_at IS NULL"
    };
    let key: Option<Vec<u8>> = client.query_opt(sql, &[&session_id]).await?.map(|r| r.get(0));
    Ok(key.and_then(|k| k.try_into().ok()))
}

async fn active_grants(
    client: &impl GenericClient,
    user_id: &str,
    site_id: &str,
    now: i64,
) -> Result<Vec<ActiveGrant>, ApiError> {
    let rows = client
        .query(
            "SELECT g.door_number, g.not_before, g.not_after, g.schedule_json, g.guest_access_id IS NOT NULL
             FROM door_grants g JOIN doors d ON d.number = g.door_number
             WHERE g.user_id = $1 AND d.site_id = $2 AND g.not_after >= $3
             ORDER BY g.door_number, g.rowid",
            &[&user_id, &site_id, &now],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ActiveGrant {
                door_number: number(r.get(0))?,
                not_before: r.get(1),
                not_after: r.get(2),
                schedule_json: r.get(3),
                whole_window: r.get(4),
            })
        })
        .collect()
}

/// `Some(oldest issue)` once `limit` different issuing requests (distinct `issued_at`) of the
/// session lie within `window_s` before `now`.
async fn rate_limited(
    client: &impl GenericClient,
    session_id: &str,
    limit: u32,
    window_s: i64,
    now: i64,
) -> Result<Option<i64>, ApiError> {
    let row = client
        .query_one(
            "SELECT COUNT(DISTINCT issued_at), MIN(issued_at) FROM credentials WHERE session_id = $1 AND issued_at > $2",
            &[&session_id, &(now - window_s)],
        )
        .await?;
    let (issues, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
    Ok((issues >= i64::from(limit)).then(|| oldest.unwrap_or(now)))
}

#[async_trait]
impl DoorStore for PgDoorStore {
    async fn device_key(&self, session_id: &str) -> Result<Option<[u8; 32]>, ApiError> {
        let client = self.pool.get().await?;
        device_key(&*client, session_id, false).await
    }

    async fn site_of(&self, user_id: &str) -> Result<Option<SiteRef>, ApiError> {
        let client = self.pool.get().await?;
        match site_for_user(&*client, user_id).await {
            Ok((id, name)) => Ok(Some(SiteRef { id, name })),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn doors_snapshot(
        &self,
        user_id: &str,
        session_id: &str,
        site_id: &str,
        now: i64,
    ) -> Result<DoorsSnapshot, ApiError> {
        let mut client = self.pool.get().await?;
        // One snapshot, as SQLite's transaction gives: grants, doors and credentials agree.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let grants = active_grants(&tx, user_id, site_id, now).await?;
        let stmt = tx
            .prepare(
                "SELECT d.number, d.name, d.log_retention_days, l.lock_id, l.public_key FROM doors d
                 LEFT JOIN (SELECT ld.door_number, k.lock_id, k.public_key FROM lock_doors ld
                            JOIN locks k ON k.lock_id = ld.lock_id WHERE k.revoked_at IS NULL) l
                   ON l.door_number = d.number
                 WHERE d.number = $1",
            )
            .await?;
        let mut numbers: Vec<u32> = grants.iter().map(|g| g.door_number).collect();
        numbers.dedup();
        let mut doors = Vec::with_capacity(numbers.len());
        for n in numbers {
            let r = tx.query_one(&stmt, &[&i64::from(n)]).await?;
            let lock = match (r.get::<_, Option<i64>>(3), r.get::<_, Option<Vec<u8>>>(4)) {
                (Some(id), Some(key)) => Some((number(id)?, key)),
                _ => None,
            };
            doors.push(DoorRecord { number: number(r.get(0))?, name: r.get(1), log_retention_days: r.get(2), lock });
        }
        let credentials = tx
            .query(
                "SELECT c.signed, c.not_before, c.not_after, c.issued_at FROM credentials c
                 WHERE c.session_id = $1 AND c.signed IS NOT NULL AND c.not_after >= $2
                   AND NOT EXISTS (SELECT 1 FROM revoked_credentials r WHERE r.credential_id = c.id)
                 ORDER BY c.not_after DESC, c.issued_at DESC",
                &[&session_id, &now],
            )
            .await?
            .iter()
            .map(|r| StoredCredential {
                signed: r.get(0),
                not_before: r.get(1),
                not_after: r.get(2),
                issued_at: r.get(3),
            })
            .collect();
        let site_time = site_time(&tx, site_id).await?;
        tx.commit().await?;
        Ok(DoorsSnapshot { grants, doors, credentials, site_time })
    }

    async fn record_issuance(&self, issuance: Issuance) -> Result<Issued, ApiError> {
        let i = &issuance;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locked: issuances for one device take turns, so the limit counts each of them.
        if device_key(&tx, &i.session_id, true).await? != Some(i.device_key) {
            return Ok(Issued::DeviceGone);
        }
        // Read with the same `now`, so only a real change of grants differs.
        if active_grants(&tx, &i.user_id, &i.site_id, i.now).await? != i.grants {
            return Ok(Issued::GrantsChanged);
        }
        if let Some(oldest_at) = rate_limited(&tx, &i.session_id, i.limit, i.window_s, i.now).await? {
            return Ok(Issued::RateLimited { oldest_at });
        }
        for c in &i.credentials {
            let doors = serde_json::to_string(&c.doors).map_err(|e| ApiError::Internal(e.to_string()))?;
            tx.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key,
                                          not_before, not_after, issued_at, doors, signed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &c.id.as_slice(),
                    &i.site_id,
                    &i.user_id,
                    &i.session_id,
                    &i.device_key.as_slice(),
                    &c.not_before,
                    &c.not_after,
                    &i.now,
                    &doors,
                    &c.signed,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Issued::Recorded)
    }

    async fn add_dev_grants(
        &self,
        identifier: &Identifier,
        grants: &[(String, u32)],
        not_before: i64,
        not_after: i64,
        schedule_json: Option<String>,
        now: i64,
    ) -> Result<Option<String>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        for (_, door) in grants {
            if tx.query_opt("SELECT 1 FROM doors WHERE number = $1", &[&i64::from(*door)]).await?.is_none() {
                return Ok(None);
            }
        }
        let user_id = crate::auth::postgres::find_or_create_user(&tx, identifier, now).await?;
        for (id, door) in grants {
            tx.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[id, &user_id, &i64::from(*door), &not_before, &not_after, &schedule_json, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doors::store_tests::Fixture;

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
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1),
                 ('d3', 'site-b', 'Side', 3);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ('d2', 'site-a', 'Bike', 2, 30);
             INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at)
                 VALUES (7, 'site-a', '\\x0707070707070707070707070707070707070707070707070707070707070707', '', 1);
             INSERT INTO lock_doors (lock_id, door_number) VALUES (7, 1);
             INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 'unit-a', 1, 1),
                 ('carl', 'Carl', 'carl@a.example', 'unit-a', 1, 1),
                 ('dora', 'Dora', 'dora@b.example', 'unit-b', 1, 1),
                 ('bob', 'Bob', 'bob@x.example', NULL, 1, 1);
             INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at) VALUES
                 ('s1', 'ann', 'phone', '127.0.0.1', 1, 1), ('s2', 'ann', 'old phone', '127.0.0.1', 1, 1);",
        )
        .await
        .unwrap();
        for (id, user, door, not_before, not_after) in [
            ("g1", "ann", 2i64, now - 100, crate::demo::FOREVER),
            ("g2", "ann", 1, now - 100, now + 500),
            ("g3", "ann", 1, now - 1000, now - 1),
            ("g4", "carl", 3, now - 100, now + 500),
        ] {
            tx.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &user, &door, &not_before, &not_after, &(now - 1000)],
            )
            .await
            .unwrap();
        }
        tx.execute(
            "INSERT INTO device_keys (session_id, user_id, public_key, created_at, revoked_at) VALUES
                 ('s1', 'ann', $1, 1, NULL), ('s2', 'ann', $2, 1, 5)",
            &[&[9u8; 32].as_slice(), &[8u8; 32].as_slice()],
        )
        .await
        .unwrap();
        for (id, not_after) in [(0xe0u8, now - 10), (0xe1, now + 100)] {
            tx.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after,
                                          issued_at, doors, signed)
                 VALUES ($1, 'site-a', 'ann', 's1', $2, $3, $4, $3, '[1,2]', '\\x00')",
                &[&vec![id; 16], &[9u8; 32].as_slice(), &(now - 7200), &not_after],
            )
            .await
            .unwrap();
        }
        crate::authority::postgres::revoke_credential(&tx, "site-a", &[0xe1; 16], now + 100, now).await.unwrap();
        tx.commit().await.unwrap();
        drop(client);
        Fixture { store: Box::new(PgDoorStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::door_store_tests!(get_store);
}
