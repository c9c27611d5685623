//! SQLite storage: opening, versioned migrations, and running queries off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::ApiError;

/// Schema versions, applied in order. `PRAGMA user_version` records how many have run, so
/// never edit an entry that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, buildings, auth.
    r#"
    CREATE TABLE sites (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        address     TEXT NOT NULL
    );
    CREATE TABLE units (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('apartment', 'office'))
    );
    CREATE TABLE doors (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        name        TEXT NOT NULL
    );
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        email       TEXT UNIQUE,
        phone       TEXT UNIQUE,
        unit_id     TEXT REFERENCES units(id) ON DELETE SET NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        CHECK (email IS NOT NULL OR phone IS NOT NULL)
    );
    -- Keyed by a hash of the identifier: a pending sign-in says nothing readable about who.
    CREATE TABLE one_time_codes (
        identifier_hash TEXT PRIMARY KEY,
        salt        TEXT NOT NULL,
        code_hash   TEXT NOT NULL,
        expires_at  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        purpose     TEXT NOT NULL DEFAULT 'sign_in'
    );
    CREATE TABLE rate_events (
        bucket      TEXT NOT NULL,
        key         TEXT NOT NULL,
        at          INTEGER NOT NULL
    );
    CREATE INDEX rate_events_lookup ON rate_events(bucket, key, at);
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device_name  TEXT NOT NULL,
        ip           TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        revoked_at   INTEGER
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE access_tokens (
        token_hash  TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX access_tokens_session ON access_tokens(session_id);
    CREATE TABLE refresh_tokens (
        token_hash  TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    );
    CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
    CREATE TABLE pictures (
        user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        content_type TEXT NOT NULL,
        bytes        BLOB NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    "#,
];

/// Opens (creating if needed) and migrates the database.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers don't block the writer. secure_delete: deleted tokens/codes/pictures are
    // overwritten rather than left in free pages.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "applied database migration");
    }
    Ok(())
}

/// Shared handle. SQLite access is blocking, so every call hops onto the blocking pool and the
/// mutex is never held across an `.await`.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Connection>>);

impl Db {
    pub fn new(conn: Connection) -> Self {
        Self(Arc::new(Mutex::new(conn)))
    }

    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .lock()
                .map_err(|_| ApiError::Internal("database mutex poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))?
    }
}
