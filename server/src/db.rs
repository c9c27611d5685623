//! SQLite storage: opening, versioned migrations, and running queries off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};

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
    // 2: door protocol: site authority keys, numbered doors, locks, grants, device keys,
    // issued credentials, revocations, access events.
    r#"
    -- The site's Ed25519 authority key (32-byte secret seed): its root of trust.
    ALTER TABLE sites ADD COLUMN authority_key BLOB;
    ALTER TABLE sites ADD COLUMN time_sequence INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN revocation_version INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE doors ADD COLUMN number INTEGER CHECK (number BETWEEN 1 AND 4294967295);
    ALTER TABLE doors ADD COLUMN log_retention_days INTEGER NOT NULL DEFAULT 90
        CHECK (log_retention_days >= 0);
    CREATE UNIQUE INDEX doors_number ON doors(number);
    CREATE TABLE locks (
        lock_id     INTEGER PRIMARY KEY CHECK (lock_id BETWEEN 1 AND 4294967295),
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        public_key  BLOB NOT NULL,
        certificate BLOB NOT NULL,
        -- Only for locks provisioned by the demo seed (simulated locks); real locks keep it.
        demo_secret_key BLOB,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE lock_doors (
        lock_id     INTEGER NOT NULL REFERENCES locks(lock_id) ON DELETE CASCADE,
        door_number INTEGER NOT NULL UNIQUE REFERENCES doors(number) ON DELETE CASCADE,
        PRIMARY KEY (lock_id, door_number)
    );
    CREATE TABLE door_grants (
        id          TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        door_number INTEGER NOT NULL REFERENCES doors(number) ON DELETE CASCADE,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        schedule_json TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX door_grants_user ON door_grants(user_id);
    -- One device key per session; the device id is the session id.
    CREATE TABLE device_keys (
        session_id  TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        public_key  BLOB NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE credentials (
        id          BLOB PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        session_id  TEXT NOT NULL,
        device_key  BLOB NOT NULL,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        issued_at   INTEGER NOT NULL
    );
    CREATE INDEX credentials_session ON credentials(session_id);
    -- What the signed revocation deltas carry. Rows leave once they can no longer matter
    -- (the credential, or every credential of the key, has expired).
    CREATE TABLE revoked_credentials (
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        credential_id BLOB NOT NULL,
        not_after   INTEGER NOT NULL,
        revoked_at  INTEGER NOT NULL,
        PRIMARY KEY (site_id, credential_id)
    );
    CREATE TABLE revoked_device_keys (
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        public_key  BLOB NOT NULL,
        not_after   INTEGER NOT NULL,
        revoked_at  INTEGER NOT NULL,
        PRIMARY KEY (site_id, public_key)
    );
    CREATE TABLE access_events (
        id          INTEGER PRIMARY KEY,
        lock_id     INTEGER NOT NULL,
        counter     INTEGER NOT NULL,
        door_number INTEGER,
        credential_id BLOB NOT NULL,
        user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
        decision    INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        record      BLOB NOT NULL,
        UNIQUE (lock_id, counter)
    );
    CREATE INDEX access_events_user ON access_events(user_id, at);
    CREATE INDEX access_events_at ON access_events(at);
    "#,
    // 3: privacy: consents with history, deletion receipts, the doors of each credential.
    r#"
    -- Append-only: every change of a consent is a row; the newest row per purpose counts.
    CREATE TABLE consent_events (
        id          INTEGER PRIMARY KEY,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose     TEXT NOT NULL,
        granted     INTEGER NOT NULL CHECK (granted IN (0, 1)),
        at          INTEGER NOT NULL
    );
    CREATE INDEX consent_events_user ON consent_events(user_id, purpose, at);
    -- Proof that an account was deleted, keyed by SHA-256 of the client's request id. Holds
    -- no personal data.
    CREATE TABLE deletion_receipts (
        request_hash      TEXT PRIMARY KEY,
        deleted_at        INTEGER NOT NULL,
        backups_purged_by INTEGER NOT NULL
    );
    -- JSON array of door numbers, so residents can see what each credential opened.
    ALTER TABLE credentials ADD COLUMN doors TEXT;
    "#,
    // 4: revocations travel as deltas: each entry has its number in the site's sequence.
    r#"
    ALTER TABLE revoked_credentials ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE revoked_device_keys ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX revoked_credentials_seq ON revoked_credentials(site_id, seq);
    CREATE INDEX revoked_device_keys_seq ON revoked_device_keys(site_id, seq);
    "#,
    // 5: the signed bytes of each issued credential, so a sync can hand out the same one again.
    r#"
    ALTER TABLE credentials ADD COLUMN signed BLOB;
    "#,
    // 6: a change of email or phone waits for a code sent to the new address.
    r#"
    -- Until confirmed, the new address is not the account's: sign-in never finds it here.
    -- One pending change per account; a new request replaces it. Gone when confirmed, when
    -- expired (housekeeping) and with the account.
    CREATE TABLE contact_changes (
        user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        field       TEXT NOT NULL CHECK (field IN ('email', 'phone')),
        value       TEXT NOT NULL,
        salt        TEXT NOT NULL,
        code_hash   TEXT NOT NULL,
        expires_at  INTEGER NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 7: guests and invitations. `users` is rebuilt so a guest principal can exist: no name,
    // no email, no phone, no unit, and an end (its invitation's window).
    r#"
    CREATE TABLE users_new (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        email       TEXT UNIQUE,
        phone       TEXT UNIQUE,
        unit_id     TEXT REFERENCES units(id) ON DELETE SET NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        kind        TEXT NOT NULL DEFAULT 'resident' CHECK (kind IN ('resident', 'guest')),
        expires_at  INTEGER,
        CHECK ((kind = 'resident' AND (email IS NOT NULL OR phone IS NOT NULL))
            OR (kind = 'guest' AND email IS NULL AND phone IS NULL AND name = '' AND unit_id IS NULL
                AND expires_at IS NOT NULL))
    );
    INSERT INTO users_new (id, name, email, phone, unit_id, created_at, updated_at)
        SELECT id, name, email, phone, unit_id, created_at, updated_at FROM users;
    DROP TABLE users;
    ALTER TABLE users_new RENAME TO users;
    CREATE INDEX users_guest_end ON users(expires_at) WHERE kind = 'guest';

    ALTER TABLE sites ADD COLUMN utc_offset_minutes INTEGER NOT NULL DEFAULT 0
        CHECK (utc_offset_minutes BETWEEN -1080 AND 1080);
    -- 'eu': summer time (+1 h) from the last Sunday of March to the last Sunday of October.
    ALTER TABLE sites ADD COLUMN dst_rule TEXT NOT NULL DEFAULT 'none' CHECK (dst_rule IN ('none', 'eu'));
    ALTER TABLE sites ADD COLUMN max_invitation_days INTEGER NOT NULL DEFAULT 30
        CHECK (max_invitation_days BETWEEN 1 AND 366);
    CREATE TABLE server_secrets (
        name        TEXT PRIMARY KEY,
        value       BLOB NOT NULL
    );
    -- Only while a use is left and the window has not ended: the row, and the hash of its
    -- token, go with the last use (or the purge). A revoked one stays until its window ends.
    CREATE TABLE invitations (
        id          TEXT PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label       TEXT,
        doors       TEXT NOT NULL,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        schedule_json TEXT,
        uses        INTEGER NOT NULL CHECK (uses >= 1),
        uses_left   INTEGER NOT NULL CHECK (uses_left BETWEEN 0 AND uses),
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE INDEX invitations_tenant ON invitations(tenant_id);
    CREATE INDEX invitations_end ON invitations(not_after);
    -- When each tenant created invitations, for the daily cap; kept one day.
    CREATE TABLE invitation_events (
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL
    );
    CREATE INDEX invitation_events_tenant ON invitation_events(tenant_id, at);
    -- One per accepted use. `accept_tag` is an HMAC of the token and the acceptor (device key
    -- or account) under the server's key: it recognises a repeated acceptance, but cannot be
    -- checked against a guessed token without that key.
    CREATE TABLE guest_accesses (
        id          TEXT PRIMARY KEY,
        invitation_id TEXT,
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        label       TEXT,
        doors       TEXT NOT NULL,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        schedule_json TEXT,
        accept_tag  TEXT NOT NULL UNIQUE,
        accepted_at INTEGER NOT NULL
    );
    CREATE INDEX guest_accesses_tenant ON guest_accesses(tenant_id);
    CREATE INDEX guest_accesses_user ON guest_accesses(user_id);
    CREATE INDEX guest_accesses_invitation ON guest_accesses(invitation_id);
    CREATE INDEX guest_accesses_end ON guest_accesses(not_after);
    ALTER TABLE door_grants ADD COLUMN guest_access_id TEXT REFERENCES guest_accesses(id) ON DELETE CASCADE;
    "#,
    // 8: the building's administration: roles, grants made by admins, the security-event log.
    r#"
    -- An operator acts across all sites (site_id NULL); a site admin at one site.
    CREATE TABLE roles (
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role        TEXT NOT NULL CHECK (role IN ('operator', 'site_admin')),
        site_id     TEXT REFERENCES sites(id) ON DELETE CASCADE,
        granted_at  INTEGER NOT NULL,
        CHECK ((role = 'operator') = (site_id IS NULL))
    );
    CREATE UNIQUE INDEX roles_unique ON roles(user_id, role, COALESCE(site_id, ''));
    CREATE INDEX roles_site ON roles(site_id);
    ALTER TABLE sites ADD COLUMN tenants_may_invite INTEGER NOT NULL DEFAULT 1 CHECK (tenants_may_invite IN (0, 1));
    -- A grant an admin made, to a unit (every resident of it, now and later) or to one person.
    -- Each holder gets `door_grants` rows carrying its id, so the resident's doors and the
    -- credentials need nothing new.
    CREATE TABLE site_grants (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        unit_id     TEXT REFERENCES units(id) ON DELETE CASCADE,
        user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
        doors       TEXT NOT NULL,
        not_before  INTEGER NOT NULL,
        not_after   INTEGER NOT NULL,
        schedule_json TEXT,
        created_at  INTEGER NOT NULL,
        CHECK ((unit_id IS NULL) != (user_id IS NULL))
    );
    CREATE INDEX site_grants_site ON site_grants(site_id);
    ALTER TABLE door_grants ADD COLUMN site_grant_id TEXT REFERENCES site_grants(id) ON DELETE CASCADE;
    -- Apart from residents' data: no foreign keys, no names, emails or phones. Actor and
    -- subject are random ids (user, grant, unit, door); `detail` is a code the server chose.
    CREATE TABLE security_events (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        kind        TEXT NOT NULL,
        site_id     TEXT,
        actor       TEXT,
        subject     TEXT,
        detail      TEXT
    );
    CREATE INDEX security_events_at ON security_events(at);
    CREATE INDEX security_events_site ON security_events(site_id, id);
    "#,
    // 9: partner API keys, per site. Only the secret's SHA-256 is kept; a revoked key stays
    // listed, as revoked.
    r#"
    CREATE TABLE partner_keys (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at  INTEGER
    );
    CREATE INDEX partner_keys_site ON partner_keys(site_id);
    "#,
    // 10: locks are provisioned from their own requests: the key is born in the lock and the
    // server keeps only the public half. A certificate has a validity and can be revoked (the
    // lock replaced or decommissioned); a revoked lock keeps its rows so its late audit records
    // still find their door.
    r#"
    -- Locks the server made keys for (the old demo seed) are revoked, and their secret keys
    -- dropped: no lock private key is kept from now on.
    ALTER TABLE locks DROP COLUMN demo_secret_key;
    ALTER TABLE locks ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE locks ADD COLUMN not_after INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE locks ADD COLUMN revoked_at INTEGER;
    UPDATE locks SET revoked_at = created_at;
    -- A key is certified once, whatever the door.
    CREATE UNIQUE INDEX locks_public_key ON locks(public_key);
    -- Rebuilt without UNIQUE(door_number): a door has one current lock, and keeps the rows of
    -- the locks it had.
    CREATE TABLE lock_doors_new (
        lock_id     INTEGER NOT NULL REFERENCES locks(lock_id) ON DELETE CASCADE,
        door_number INTEGER NOT NULL REFERENCES doors(number) ON DELETE CASCADE,
        PRIMARY KEY (lock_id, door_number)
    );
    INSERT INTO lock_doors_new (lock_id, door_number) SELECT lock_id, door_number FROM lock_doors;
    DROP TABLE lock_doors;
    ALTER TABLE lock_doors_new RENAME TO lock_doors;
    CREATE INDEX lock_doors_door ON lock_doors(door_number);
    "#,
    // 11: the purge job deletes by ranges on indexes, so it costs what it deletes: a door's
    // events by time, expired credentials by end. Uploads have long refused events dated more
    // than 300 s after their arrival; the few stored before that go now, so the purge need
    // not look for them.
    r#"
    CREATE INDEX access_events_door_at ON access_events(door_number, at);
    CREATE INDEX credentials_not_after ON credentials(not_after);
    DELETE FROM access_events WHERE at > received_at + 300;
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
    if current >= MIGRATIONS.len() {
        return Ok(());
    }
    // A migration may rebuild a table others reference (SQLite's documented procedure): with
    // foreign keys enforced, dropping the old table would cascade. They are checked after.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = run_migrations(conn, current, MIGRATIONS.len());
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

/// Applies migrations `current + 1 ..= upto`.
fn run_migrations(conn: &mut Connection, current: usize, upto: usize) -> rusqlite::Result<()> {
    for (index, sql) in MIGRATIONS.iter().enumerate().take(upto).skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        let broken: Option<String> = tx.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).optional()?;
        if let Some(table) = broken {
            tracing::error!(version = index + 1, %table, "migration broke a foreign key");
            return Err(rusqlite::Error::InvalidQuery);
        }
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
            let mut conn = inner.lock().map_err(|_| ApiError::Internal("database mutex poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))?
    }
}

/// The server's own 32-byte secret called `name`, made on first use and the same for every
/// later call (and every instance on this database).
pub(crate) fn server_secret(conn: &Connection, name: &str) -> Result<[u8; 32], ApiError> {
    use rand::RngCore as _;
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    conn.execute(
        "INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?1, ?2)",
        rusqlite::params![name, fresh.to_vec()],
    )?;
    let stored: Vec<u8> = conn.query_row("SELECT value FROM server_secrets WHERE name = ?1", [name], |r| r.get(0))?;
    stored.try_into().map_err(|_| ApiError::Internal(format!("stored server secret {name} is malformed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 7 rebuilds `users`, which nearly every table references. A database made by
    /// a server of migration 6 keeps its people, and deleting one still cascades to what
    /// they own.
    #[test]
    fn rebuilding_users_keeps_the_accounts_and_the_references_to_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_migrations(&mut conn, 0, 6).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@example.com', 1, 1);
             INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                 VALUES ('s1', 'u1', 'Phone', '127.0.0.1', 1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let (kind, email): (String, String) = conn
            .query_row("SELECT kind, email FROM users WHERE id = 'u1'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((kind.as_str(), email.as_str()), ("resident", "a@example.com"));
        let fks: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
        assert!(fks, "foreign keys are enforced again after migrating");
        let sessions: i64 = conn.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(sessions, 1, "rebuilding the table cascaded nothing");
        conn.execute("DELETE FROM users WHERE id = 'u1'", []).unwrap();
        let sessions: i64 = conn.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(sessions, 0, "sessions still reference users and cascade");
        // A guest without contact data is now allowed; a resident without it, or a guest with
        // it, is not.
        let insert = |sql: &str| conn.execute(sql, []);
        assert!(insert(
            "INSERT INTO users (id, created_at, updated_at, kind, expires_at) VALUES ('g', 1, 1, 'guest', 9)"
        )
        .is_ok());
        assert!(insert("INSERT INTO users (id, created_at, updated_at) VALUES ('r', 1, 1)").is_err());
        assert!(insert(
            "INSERT INTO users (id, email, created_at, updated_at, kind, expires_at) VALUES ('x', 'x@e.com', 1, 1, 'guest', 9)"
        )
        .is_err());
    }

    /// Migration 8 adds roles and admin grants to a database of migration 7: its grants stay
    /// the residents' own, and a role is either global (operator) or of one site.
    #[test]
    fn administration_joins_a_database_of_migration_7() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_migrations(&mut conn, 0, 7).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('s1', 'Site', 'Street 1');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 's1', 'Main', 1);
             INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'a@example.com', 1, 1);
             INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                 VALUES ('g1', 'u1', 1, 0, 9, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let (grant, admin_grant): (String, Option<String>) =
            conn.query_row("SELECT id, site_grant_id FROM door_grants", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((grant.as_str(), admin_grant), ("g1", None));
        let may_invite: bool = conn.query_row("SELECT tenants_may_invite FROM sites", [], |r| r.get(0)).unwrap();
        assert!(may_invite, "sites keep letting tenants invite");
        let insert = |sql: &str| conn.execute(sql, []);
        assert!(insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'site_admin', 's1', 1)")
            .is_ok());
        assert!(
            insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'operator', NULL, 1)").is_ok()
        );
        assert!(insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'operator', 's1', 1)")
            .is_err());
        assert!(insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'site_admin', NULL, 1)")
            .is_err());
        assert!(
            insert("INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ('u1', 'root', NULL, 1)").is_err()
        );
        // Roles go with the account; the security log, which names no one, does not.
        insert("INSERT INTO security_events (at, kind, actor) VALUES (1, 'sign_in', 'u1')").unwrap();
        insert("DELETE FROM users WHERE id = 'u1'").unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT COUNT(*) FROM roles"), 0);
        assert_eq!(count("SELECT COUNT(*) FROM security_events"), 1);
    }

    /// Migration 9 adds partner keys to a database of migration 8: a key belongs to one site,
    /// goes with it, and its secret hash is unique.
    #[test]
    fn partner_keys_join_a_database_of_migration_8() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_migrations(&mut conn, 0, 8).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch("INSERT INTO sites (id, name, address) VALUES ('s1', 'Site', 'Street 1');").unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let insert = |sql: &str| conn.execute(sql, []);
        let key = |id: &str, site: &str, hash: &str| {
            format!(
                "INSERT INTO partner_keys (id, site_id, label, secret_hash, created_at) VALUES ('{id}', '{site}', 'L', '{hash}', 1)"
            )
        };
        assert!(insert(&key("k1", "s1", "h1")).is_ok());
        assert!(insert(&key("k2", "s1", "h1")).is_err(), "a secret hash is unique");
        assert!(insert(&key("k3", "nowhere", "h3")).is_err(), "a key belongs to a site");
        insert("DELETE FROM sites WHERE id = 's1'").unwrap();
        let keys: i64 = conn.query_row("SELECT COUNT(*) FROM partner_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(keys, 0, "keys go with their site");
    }

    /// Migration 10 drops the secret keys the old demo seed kept for its locks, revokes those
    /// locks, and lets a door keep the locks it had: one key, one certificate, ever.
    #[test]
    fn locks_lose_their_server_made_keys_in_migration_10() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_migrations(&mut conn, 0, 9).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('s1', 'Site', 'Street 1');
             INSERT INTO doors (id, site_id, name, number) VALUES ('d1', 's1', 'Main', 1);
             INSERT INTO locks (lock_id, site_id, public_key, certificate, demo_secret_key, created_at)
                 VALUES (1, 's1', x'01', x'02', x'0303030303', 5);
             INSERT INTO lock_doors (lock_id, door_number) VALUES (1, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let columns: Vec<String> = {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('locks')").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        assert!(!columns.iter().any(|c| c.contains("secret")), "{columns:?}");
        let revoked: Option<i64> = conn.query_row("SELECT revoked_at FROM locks", [], |r| r.get(0)).unwrap();
        assert_eq!(revoked, Some(5), "a lock whose key the server made is not trusted any more");
        let insert = |sql: &str| conn.execute(sql, []);
        insert("INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at) VALUES (2, 's1', x'04', x'05', 6)")
            .unwrap();
        assert!(insert("INSERT INTO lock_doors (lock_id, door_number) VALUES (2, 1)").is_ok(), "the door's next lock");
        assert!(
            insert("INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at) VALUES (3, 's1', x'04', x'06', 7)")
                .is_err(),
            "a key is certified once"
        );
    }

    /// Migration 11 indexes what the purge deletes by, and removes the events stored before
    /// uploads were bounded that are dated beyond their arrival (they would never expire);
    /// every other event stays.
    #[test]
    fn the_purge_indexes_arrive_and_events_from_the_future_go() {
        let mut conn = Connection::open_in_memory().unwrap();
        run_migrations(&mut conn, 0, 10).unwrap();
        conn.execute_batch(
            "INSERT INTO access_events (lock_id, counter, door_number, credential_id, decision, at, received_at, record)
                 VALUES (1, 1, 1, x'00', 0, 1000, 1000, x''),
                        (1, 2, 1, x'00', 0, 1299, 1000, x''),
                        (1, 3, 1, x'00', 0, 4102444800, 1000, x'');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let counters: Vec<i64> = {
            let mut stmt = conn.prepare("SELECT counter FROM access_events ORDER BY counter").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        assert_eq!(counters, [1, 2]);
        let plan: String = conn
            .query_row("EXPLAIN QUERY PLAN DELETE FROM access_events WHERE door_number IN (1, 2) AND at < 5", [], |r| {
                r.get(3)
            })
            .unwrap();
        assert!(plan.contains("access_events_door_at"), "{plan}");
    }
}
