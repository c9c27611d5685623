//! The SQLite backend of [`DoorStore`] (tables `door_grants`, `doors`, `locks`, `lock_doors`,
//! `device_keys` and `credentials`).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::store::{ActiveGrant, DoorRecord, DoorStore, DoorsSnapshot, Issuance, Issued, SiteRef, StoredCredential};
use crate::db::Db;
use crate::error::ApiError;
use crate::identity::Identifier;

pub struct SqliteDoorStore {
    db: Db,
}

impl SqliteDoorStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The site whose doors the user sees: that of their grants, else their unit's, else the
/// first site; `not_found` without any. (The reference backend serves one site per user.)
pub(crate) fn site_for_user(conn: &Connection, user_id: &str) -> Result<(String, String), ApiError> {
    let queries = [
        "SELECT s.id, s.name FROM door_grants g JOIN doors d ON d.number = g.door_number
         JOIN sites s ON s.id = d.site_id WHERE g.user_id = ?1 ORDER BY g.created_at, g.id LIMIT 1",
        "SELECT s.id, s.name FROM users u JOIN units n ON n.id = u.unit_id
         JOIN sites s ON s.id = n.site_id WHERE u.id = ?1",
        "SELECT id, name FROM sites WHERE ?1 IS NOT NULL ORDER BY id LIMIT 1",
    ];
    for sql in queries {
        if let Some(site) = conn.query_row(sql, [user_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()? {
            return Ok(site);
        }
    }
    Err(ApiError::NotFound)
}

fn device_key(conn: &Connection, session_id: &str) -> rusqlite::Result<Option<[u8; 32]>> {
    let key = conn
        .query_row(
            "SELECT public_key FROM device_keys WHERE session_id = ?1 AND revoked_at IS NULL",
            [session_id],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()?;
    Ok(key.and_then(|k| k.try_into().ok()))
}

fn active_grants(conn: &Connection, user_id: &str, site_id: &str, now: i64) -> rusqlite::Result<Vec<ActiveGrant>> {
    let mut stmt = conn.prepare(
        "SELECT g.door_number, g.not_before, g.not_after, g.schedule_json, g.guest_access_id IS NOT NULL
         FROM door_grants g JOIN doors d ON d.number = g.door_number
         WHERE g.user_id = ?1 AND d.site_id = ?2 AND g.not_after >= ?3
         ORDER BY g.door_number, g.rowid",
    )?;
    let rows = stmt.query_map(params![user_id, site_id, now], |r| {
        Ok(ActiveGrant {
            door_number: r.get(0)?,
            not_before: r.get(1)?,
            not_after: r.get(2)?,
            schedule_json: r.get(3)?,
            whole_window: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// `Some(oldest issue)` once `limit` different issuing requests (distinct `issued_at`) of the
/// session lie within `window_s` before `now`.
fn rate_limited(
    conn: &Connection,
    session_id: &str,
    limit: u32,
    window_s: i64,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let (issues, oldest): (u32, Option<i64>) = conn.query_row(
        "SELECT COUNT(DISTINCT issued_at), MIN(issued_at) FROM credentials
         WHERE session_id = ?1 AND issued_at > ?2",
        params![session_id, now - window_s],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((issues >= limit).then(|| oldest.unwrap_or(now)))
}

#[async_trait]
impl DoorStore for SqliteDoorStore {
    async fn device_key(&self, session_id: &str) -> Result<Option<[u8; 32]>, ApiError> {
        let session_id = session_id.to_owned();
        self.db.call(move |conn| Ok(device_key(conn, &session_id)?)).await
    }

    async fn site_of(&self, user_id: &str) -> Result<Option<SiteRef>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| match site_for_user(conn, &user_id) {
                Ok((id, name)) => Ok(Some(SiteRef { id, name })),
                Err(ApiError::NotFound) => Ok(None),
                Err(e) => Err(e),
            })
            .await
    }

    async fn doors_snapshot(
        &self,
        user_id: &str,
        session_id: &str,
        site_id: &str,
        now: i64,
    ) -> Result<DoorsSnapshot, ApiError> {
        let (user_id, session_id, site_id) = (user_id.to_owned(), session_id.to_owned(), site_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let grants = active_grants(&tx, &user_id, &site_id, now)?;
                let mut doors = Vec::new();
                {
                    let mut stmt = tx.prepare(
                        "SELECT d.number, d.name, d.log_retention_days, l.lock_id, l.public_key FROM doors d
                         LEFT JOIN (SELECT ld.door_number, k.lock_id, k.public_key FROM lock_doors ld
                                    JOIN locks k ON k.lock_id = ld.lock_id WHERE k.revoked_at IS NULL) l
                           ON l.door_number = d.number
                         WHERE d.number = ?1",
                    )?;
                    let mut numbers: Vec<u32> = grants.iter().map(|g| g.door_number).collect();
                    numbers.dedup();
                    for n in numbers {
                        doors.push(stmt.query_row([n], |r| {
                            let lock = match (r.get::<_, Option<u32>>(3)?, r.get::<_, Option<Vec<u8>>>(4)?) {
                                (Some(id), Some(key)) => Some((id, key)),
                                _ => None,
                            };
                            Ok(DoorRecord { number: r.get(0)?, name: r.get(1)?, log_retention_days: r.get(2)?, lock })
                        })?);
                    }
                }
                let credentials = {
                    let mut stmt = tx.prepare(
                        "SELECT c.signed, c.not_before, c.not_after, c.issued_at FROM credentials c
                         WHERE c.session_id = ?1 AND c.signed IS NOT NULL AND c.not_after >= ?2
                           AND NOT EXISTS (SELECT 1 FROM revoked_credentials r WHERE r.credential_id = c.id)
                         ORDER BY c.not_after DESC, c.issued_at DESC",
                    )?;
                    let rows = stmt.query_map(params![session_id, now], |r| {
                        Ok(StoredCredential {
                            signed: r.get(0)?,
                            not_before: r.get(1)?,
                            not_after: r.get(2)?,
                            issued_at: r.get(3)?,
                        })
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()?
                };
                let site_time = crate::invitations::sqlite::site_time(&tx, &site_id)?;
                tx.commit()?;
                Ok(DoorsSnapshot { grants, doors, credentials, site_time })
            })
            .await
    }

    async fn record_issuance(&self, issuance: Issuance) -> Result<Issued, ApiError> {
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let i = &issuance;
                if device_key(&tx, &i.session_id)? != Some(i.device_key) {
                    return Ok(Issued::DeviceGone);
                }
                // Read with the same `now`, so only a real change of grants differs.
                if active_grants(&tx, &i.user_id, &i.site_id, i.now)? != i.grants {
                    return Ok(Issued::GrantsChanged);
                }
                if let Some(oldest_at) = rate_limited(&tx, &i.session_id, i.limit, i.window_s, i.now)? {
                    return Ok(Issued::RateLimited { oldest_at });
                }
                for c in &i.credentials {
                    tx.execute(
                        "INSERT INTO credentials (id, site_id, user_id, session_id, device_key,
                                                  not_before, not_after, issued_at, doors, signed)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            c.id.to_vec(),
                            i.site_id,
                            i.user_id,
                            i.session_id,
                            i.device_key.to_vec(),
                            c.not_before,
                            c.not_after,
                            i.now,
                            serde_json::to_string(&c.doors).map_err(|e| ApiError::Internal(e.to_string()))?,
                            c.signed,
                        ],
                    )?;
                }
                tx.commit()?;
                Ok(Issued::Recorded)
            })
            .await
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
        let (identifier, grants) = (identifier.clone(), grants.to_vec());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (_, door) in &grants {
                    let exists =
                        tx.query_row("SELECT 1 FROM doors WHERE number = ?1", [door], |_| Ok(())).optional()?.is_some();
                    if !exists {
                        return Ok(None);
                    }
                }
                let user_id = crate::auth::find_or_create_user(&tx, &identifier, now)?;
                for (id, door) in &grants {
                    tx.execute(
                        "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after,
                                                  schedule_json, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, user_id, door, not_before, not_after, schedule_json, now],
                    )?;
                }
                tx.commit()?;
                Ok(Some(user_id))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doors::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', ''), ('site-b', 'B', '');
             INSERT INTO units (id, site_id, name, kind) VALUES ('unit-a', 'site-a', 'A1', 'apartment'),
                 ('unit-b', 'site-b', 'B1', 'apartment');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 'site-a', 'Main', 1),
                 ('d3', 'site-b', 'Side', 3);
             INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ('d2', 'site-a', 'Bike', 2, 30);
             INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at)
                 VALUES (7, 'site-a', zeroblob(32), x'', 1);
             UPDATE locks SET public_key = x'0707070707070707070707070707070707070707070707070707070707070707';
             INSERT INTO lock_doors (lock_id, door_number) VALUES (7, 1);
             INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@a.example', 'unit-a', 1, 1),
                 ('carl', 'Carl', 'carl@a.example', 'unit-a', 1, 1),
                 ('dora', 'Dora', 'dora@b.example', 'unit-b', 1, 1),
                 ('bob', 'Bob', 'bob@x.example', NULL, 1, 1);
             INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at) VALUES
                 ('s1', 'ann', 'phone', '127.0.0.1', 1, 1), ('s2', 'ann', 'old phone', '127.0.0.1', 1, 1);",
        )
        .unwrap();
        let grant = |id: &str, user: &str, door: u32, not_before: i64, not_after: i64| {
            conn.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, user, door, not_before, not_after, now - 1000],
            )
            .unwrap();
        };
        grant("g1", "ann", 2, now - 100, crate::demo::FOREVER);
        grant("g2", "ann", 1, now - 100, now + 500);
        grant("g3", "ann", 1, now - 1000, now - 1);
        grant("g4", "carl", 3, now - 100, now + 500);
        conn.execute(
            "INSERT INTO device_keys (session_id, user_id, public_key, created_at, revoked_at) VALUES
                 ('s1', 'ann', ?1, 1, NULL), ('s2', 'ann', ?2, 1, 5)",
            params![vec![9u8; 32], vec![8u8; 32]],
        )
        .unwrap();
        for (id, not_after) in [(0xe0u8, now - 10), (0xe1, now + 100)] {
            conn.execute(
                "INSERT INTO credentials (id, site_id, user_id, session_id, device_key, not_before, not_after,
                                          issued_at, doors, signed)
                 VALUES (?1, 'site-a', 'ann', 's1', ?2, ?3, ?4, ?3, '[1,2]', x'00')",
                params![vec![id; 16], vec![9u8; 32], now - 7200, not_after],
            )
            .unwrap();
        }
        crate::authority::sqlite::revoke_credential(&conn, "site-a", &[0xe1; 16], now + 100, now).unwrap();
        Fixture { store: Box::new(SqliteDoorStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::door_store_tests!(get_store);
}
