//! The PostgreSQL backend of [`SecurityLog`] (feature `postgres`), and [`record_in`] and
//! [`forget_user`] for other PostgreSQL stores to run inside their own transactions.

use async_trait::async_trait;
use tokio_postgres::GenericClient;

use super::store::SecurityLog;
use super::{EventFilter, EventKind, NewEvent, SecurityEvent};
use crate::error::ApiError;
use crate::pg::PgPool;

/// Records `event` on `client` (inside the caller's transaction, if it is one).
pub(crate) async fn record_in(client: &impl GenericClient, event: &NewEvent) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO security_events (at, kind, site_id, actor, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&event.at, &event.kind.as_str(), &event.site_id, &event.actor, &event.subject, &event.detail],
        )
        .await?;
    Ok(())
}

/// Replaces `user_id` in every event by one fresh random pseudonym, as the SQLite backend's
/// `forget_user` does: a deleted account's events stay, linked to each other, but unnamed.
pub(crate) async fn forget_user(client: &impl GenericClient, user_id: &str) -> Result<(), tokio_postgres::Error> {
    let pseudonym = uuid::Uuid::new_v4().to_string();
    for column in ["actor", "subject"] {
        client
            .execute(&format!("UPDATE security_events SET {column} = $2 WHERE {column} = $1"), &[&user_id, &pseudonym])
            .await?;
    }
    Ok(())
}

pub struct PgSecurityLog {
    pool: PgPool,
}

impl PgSecurityLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl SecurityLog for PgSecurityLog {
    async fn record(&self, event: NewEvent) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        Ok(record_in(&*client, &event).await?)
    }

    async fn list(&self, filter: &EventFilter) -> Result<Vec<SecurityEvent>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, at, kind, site_id, actor, subject, detail FROM security_events
                 WHERE ($1::TEXT IS NULL OR site_id = $1) AND ($2::TEXT IS NULL OR kind = $2)
                   AND ($3::BIGINT IS NULL OR at >= $3) AND ($4::BIGINT IS NULL OR id < $4)
                 ORDER BY id DESC LIMIT $5",
                &[
                    &filter.site_id,
                    &filter.kind.map(EventKind::as_str),
                    &filter.since,
                    &filter.before,
                    &i64::from(filter.limit),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                // A kind this server does not know (written by a newer one) is left out.
                let kind = EventKind::parse(r.get(2))?;
                Some(SecurityEvent {
                    id: r.get(0),
                    at: r.get(1),
                    kind,
                    site_id: r.get(3),
                    actor: r.get(4),
                    subject: r.get(5),
                    detail: r.get(6),
                })
            })
            .collect())
    }

    async fn purge(&self, now: i64, retention_days: i64) -> Result<usize, ApiError> {
        let client = self.pool.get().await?;
        let cutoff = now.saturating_sub(retention_days.saturating_mul(86400));
        let purged = client.execute("DELETE FROM security_events WHERE at < $1", &[&cutoff]).await?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security_log::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        Fixture { store: Box::new(PgSecurityLog::new(pool)), _dir: Box::new(()), now: 1_750_000_000 }
    }

    crate::security_log_store_tests!(get_store);
}
