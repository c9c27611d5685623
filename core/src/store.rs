//! The local SQLite cache: what the app shows offline. Versioned migrations, WAL, and
//! `secure_delete` so removed rows are overwritten rather than left in free pages.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Result;

/// Each entry moves the schema one version up; never edit a released entry, append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: cached profile and picture of the signed-in user.
    "CREATE TABLE profile (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         user_id TEXT NOT NULL,
         json TEXT NOT NULL,
         fetched_at INTEGER NOT NULL
     );
     CREATE TABLE picture (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         bytes BLOB NOT NULL
     );",
    // 2: doors with their credentials (offline unlock), the access-log cache, and the outbox
    // of lock-signed audit records waiting for upload.
    "CREATE TABLE doors (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         user_id TEXT NOT NULL,
         json TEXT NOT NULL,
         fetched_at INTEGER NOT NULL
     );
     CREATE TABLE access_log (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         user_id TEXT NOT NULL,
         json TEXT NOT NULL,
         fetched_at INTEGER NOT NULL
     );
     CREATE TABLE audit_outbox (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         record BLOB NOT NULL UNIQUE,
         queued_at INTEGER NOT NULL
     );",
    // 3: what each lock reported holding (from its signed Result), so the phone carries a
    // revocation list or time update only to a lock that lacks it.
    "CREATE TABLE lock_status (
         lock_id INTEGER PRIMARY KEY,
         revocation_version INTEGER NOT NULL,
         time_sequence INTEGER NOT NULL,
         seen_at INTEGER NOT NULL
     );",
    // 4: the site-signed revocation deltas the phone delivers to locks after an unlock,
    // as fetched at the last sync (the chain from the oldest version a lock reported).
    "CREATE TABLE revocation_deltas (
         from_version INTEGER NOT NULL,
         to_version INTEGER PRIMARY KEY,
         delta BLOB NOT NULL
     );",
];

pub const DB_FILE: &str = "porta.db";

/// The cached JSON documents, one row each.
#[derive(Clone, Copy)]
pub(crate) enum Document {
    Doors,
    AccessLog,
}

impl Document {
    fn name(self) -> &'static str {
        match self {
            Document::Doors => "doors",
            Document::AccessLog => "access_log",
        }
    }
}

pub(crate) struct LocalStore {
    /// `None` after [`LocalStore::wipe`]; the next use opens a fresh, empty database.
    conn: Mutex<Option<Connection>>,
    path: PathBuf,
}

pub(crate) struct ConnGuard<'a>(MutexGuard<'a, Option<Connection>>);

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.0.as_ref().expect("ConnGuard is only built around an open connection")
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.0.as_mut().expect("ConnGuard is only built around an open connection")
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrate(&mut conn)?;
    Ok(conn)
}

impl LocalStore {
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| crate::Error::Storage(e.kind().to_string()))?;
        let path = data_dir.join(DB_FILE);
        let conn = open_connection(&path)?;
        Ok(Self { conn: Mutex::new(Some(conn)), path })
    }

    pub(crate) fn conn(&self) -> Result<ConnGuard<'_>> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it has its own
        // transactions), so a poisoned lock is still safe to use.
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(open_connection(&self.path)?);
        }
        Ok(ConnGuard(guard))
    }

    /// Closes the database and deletes its files (db, -wal, -shm): nothing of the person
    /// stays on the phone. A later use starts from an empty database.
    pub fn wipe(&self) -> Result<()> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = guard.take() {
            conn.close().map_err(|(_, e)| crate::Error::from(e))?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::Error::Storage(format!("delete database file: {}", e.kind()))),
            }
        }
        Ok(())
    }

    pub fn save_profile(&self, user_id: &str, json: &str, now: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO profile (id, user_id, json, fetched_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, json = excluded.json,
                                           fetched_at = excluded.fetched_at",
            params![user_id, json, now],
        )?;
        Ok(())
    }

    pub fn load_profile(&self) -> Result<Option<(String, String)>> {
        Ok(self
            .conn()?
            .query_row("SELECT user_id, json FROM profile WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Saves one cached JSON document (`doors` or `access_log`) for `user_id`.
    pub fn save_document(&self, table: Document, user_id: &str, json: &str, now: i64) -> Result<()> {
        self.conn()?.execute(
            &format!(
                "INSERT INTO {t} (id, user_id, json, fetched_at) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, json = excluded.json,
                                               fetched_at = excluded.fetched_at",
                t = table.name()
            ),
            params![user_id, json, now],
        )?;
        Ok(())
    }

    pub fn load_document(&self, table: Document) -> Result<Option<(String, String)>> {
        Ok(self
            .conn()?
            .query_row(&format!("SELECT user_id, json FROM {} WHERE id = 1", table.name()), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    /// Queues a lock-signed audit record; the same record twice is kept once.
    pub fn queue_audit(&self, record: &[u8], now: i64) -> Result<()> {
        self.conn()?
            .execute("INSERT OR IGNORE INTO audit_outbox (record, queued_at) VALUES (?1, ?2)", params![record, now])?;
        Ok(())
    }

    /// The oldest queued records, at most `limit`.
    pub fn pending_audits(&self, limit: usize) -> Result<Vec<(i64, Vec<u8>)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT seq, record FROM audit_outbox ORDER BY seq LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn pending_audit_count(&self) -> Result<usize> {
        Ok(self.conn()?.query_row("SELECT COUNT(*) FROM audit_outbox", [], |r| r.get::<_, i64>(0))? as usize)
    }

    /// Removes uploaded records, all or none.
    pub fn remove_audits(&self, seqs: &[i64]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for seq in seqs {
            tx.execute("DELETE FROM audit_outbox WHERE seq = ?1", [seq])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Remembers the update state a lock reported.
    pub fn save_lock_status(&self, lock_id: u32, revocation_version: u64, time_sequence: u64, now: i64) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO lock_status (lock_id, revocation_version, time_sequence, seen_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(lock_id) DO UPDATE SET revocation_version = excluded.revocation_version,
                 time_sequence = excluded.time_sequence, seen_at = excluded.seen_at",
            params![lock_id, revocation_version as i64, time_sequence as i64, now],
        )?;
        Ok(())
    }

    /// (revocation version, time sequence) the lock last reported, if known.
    pub fn lock_status(&self, lock_id: u32) -> Result<Option<(u64, u64)>> {
        Ok(self
            .conn()?
            .query_row("SELECT revocation_version, time_sequence FROM lock_status WHERE lock_id = ?1", [lock_id], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
            .optional()?)
    }

    /// Oldest revocation version any of `lock_ids` reported; 0 if one was never seen.
    pub fn oldest_lock_revocation(&self, lock_ids: &[u32]) -> Result<u64> {
        let mut oldest = u64::MAX;
        for &id in lock_ids {
            oldest = oldest.min(self.lock_status(id)?.map(|(v, _)| v).unwrap_or(0));
        }
        Ok(if oldest == u64::MAX { 0 } else { oldest })
    }

    /// Replaces the cached revocation deltas (encoded, each with its version range).
    pub fn save_revocation_deltas(&self, deltas: &[(u64, u64, Vec<u8>)]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM revocation_deltas", [])?;
        for (from, to, bytes) in deltas {
            tx.execute(
                "INSERT OR REPLACE INTO revocation_deltas (from_version, to_version, delta) VALUES (?1, ?2, ?3)",
                params![*from as i64, *to as i64, bytes],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The cached delta that takes a lock at `version` furthest: `from ≤ version < to`.
    pub fn next_revocation_delta(&self, version: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT delta FROM revocation_deltas WHERE from_version <= ?1 AND to_version > ?1
                 ORDER BY to_version DESC LIMIT 1",
                [version as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The range the cached deltas cover, if any: (oldest from, newest to).
    pub fn revocation_delta_range(&self) -> Result<Option<(u64, u64)>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT MIN(from_version), MAX(to_version) FROM revocation_deltas HAVING COUNT(*) > 0",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    pub fn save_picture(&self, bytes: Option<&[u8]>) -> Result<()> {
        let conn = self.conn()?;
        match bytes {
            Some(b) => conn.execute(
                "INSERT INTO picture (id, bytes) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET bytes = excluded.bytes",
                params![b],
            )?,
            None => conn.execute("DELETE FROM picture", [])?,
        };
        Ok(())
    }

    pub fn load_picture(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.conn()?.query_row("SELECT bytes FROM picture WHERE id = 1", [], |r| r.get(0)).optional()?)
    }

    /// Forget everything cached about the signed-in person (sign-out, account switch).
    pub fn clear_user_data(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM profile", [])?;
        tx.execute("DELETE FROM picture", [])?;
        tx.execute("DELETE FROM doors", [])?;
        tx.execute("DELETE FROM access_log", [])?;
        tx.execute("DELETE FROM audit_outbox", [])?;
        tx.execute("DELETE FROM lock_status", [])?;
        tx.execute("DELETE FROM revocation_deltas", [])?;
        tx.commit()?;
        // Fold the WAL back so deleted rows do not linger in the -wal file.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(crate::Error::Storage(format!(
            "database schema version {version} is newer than this app supports ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_applied_once_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LocalStore::open(dir.path()).unwrap();
            store.save_profile("u1", "{\"name\":\"A\"}", 10).unwrap();
        }
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.load_profile().unwrap().unwrap().0, "u1");
        let version: i64 = store.conn().unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        store.clear_user_data().unwrap();
        assert!(store.load_profile().unwrap().is_none());
    }

    #[test]
    fn audit_outbox_keeps_each_record_once_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.queue_audit(b"record-1", 1).unwrap();
        store.queue_audit(b"record-1", 2).unwrap();
        store.queue_audit(b"record-2", 3).unwrap();
        let pending = store.pending_audits(10).unwrap();
        assert_eq!(pending.iter().map(|(_, r)| r.as_slice()).collect::<Vec<_>>(), [b"record-1", b"record-2"]);
        drop(store);
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.pending_audit_count().unwrap(), 2, "the outbox survives a restart");
        store.remove_audits(&[pending[0].0]).unwrap();
        assert_eq!(store.pending_audits(10).unwrap()[0].1, b"record-2");
    }

    #[test]
    fn a_newer_schema_is_refused_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            conn.pragma_update(None, "user_version", 999).unwrap();
        }
        assert!(matches!(LocalStore::open(dir.path()), Err(crate::Error::Storage(_))));
    }
}
