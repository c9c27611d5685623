//! The SQLite backend of [`SecurityLog`] (table `security_events`, migration 8), and the SQL
//! helpers other stores run inside their own transactions.

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::store::SecurityLog;
use super::{EventFilter, EventKind, NewEvent, SecurityEvent};
use crate::db::Db;
use crate::error::ApiError;

/// Records `event` on `conn` (inside the caller's transaction, if any).
pub(crate) fn record_in(conn: &Connection, event: &NewEvent) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO security_events (at, kind, site_id, actor, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![event.at, event.kind.as_str(), event.site_id, event.actor, event.subject, event.detail],
    )?;
    Ok(())
}

/// Replaces `user_id` in every event by one fresh random pseudonym: a deleted account's
/// events stay (and stay linked to each other) but no longer name the account.
pub(crate) fn forget_user(conn: &Connection, user_id: &str) -> rusqlite::Result<()> {
    let pseudonym = uuid::Uuid::new_v4().to_string();
    for column in ["actor", "subject"] {
        conn.execute(
            &format!("UPDATE security_events SET {column} = ?2 WHERE {column} = ?1"),
            params![user_id, pseudonym],
        )?;
    }
    Ok(())
}

pub struct SqliteSecurityLog {
    db: Db,
}

impl SqliteSecurityLog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SecurityLog for SqliteSecurityLog {
    async fn record(&self, event: NewEvent) -> Result<(), ApiError> {
        self.db.call(move |conn| Ok(record_in(conn, &event)?)).await
    }

    async fn list(&self, filter: &EventFilter) -> Result<Vec<SecurityEvent>, ApiError> {
        let filter = filter.clone();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, at, kind, site_id, actor, subject, detail FROM security_events
                     WHERE (?1 IS NULL OR site_id = ?1) AND (?2 IS NULL OR kind = ?2)
                       AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR id < ?4)
                     ORDER BY id DESC LIMIT ?5",
                )?;
                let rows = stmt.query_map(
                    params![
                        filter.site_id,
                        filter.kind.map(EventKind::as_str),
                        filter.since,
                        filter.before,
                        filter.limit
                    ],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, Option<String>>(6)?,
                        ))
                    },
                )?;
                let mut events = Vec::new();
                for row in rows {
                    let (id, at, kind, site_id, actor, subject, detail) = row?;
                    let Some(kind) = EventKind::parse(&kind) else { continue };
                    events.push(SecurityEvent { id, at, kind, site_id, actor, subject, detail });
                }
                Ok(events)
            })
            .await
    }

    async fn purge(&self, now: i64, retention_days: i64) -> Result<usize, ApiError> {
        self.db
            .call(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM security_events WHERE at < ?1",
                    [now.saturating_sub(retention_days.saturating_mul(86400))],
                )?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security_log::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        Fixture { store: Box::new(SqliteSecurityLog::new(Db::new(conn))), _dir: Box::new(dir), now: 1_750_000_000 }
    }

    crate::security_log_store_tests!(get_store);
}
