//! The PostgreSQL schema, as versioned migrations. `schema_migrations` records each applied
//! version, so never edit an entry that has shipped: append a new one.
//!
//! Migration 1 is the schema SQLite reaches after its ten migrations (server/src/db.rs),
//! translated: BYTEA for BLOB, BIGINT for INTEGER, identity columns for SQLite's integer row
//! ids, and the same CHECKs, UNIQUEs, indexes and ON DELETE rules.

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: everything up to SQLite's migration 10.
    r#"
    CREATE TABLE sites (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        address     TEXT NOT NULL,
        -- The site's Ed25519 authority key (32-byte secret seed): its root of trust.
        authority_key BYTEA,
        time_sequence BIGINT NOT NULL DEFAULT 0,
        revocation_version BIGINT NOT NULL DEFAULT 0,
        utc_offset_minutes BIGINT NOT NULL DEFAULT 0 CHECK (utc_offset_minutes BETWEEN -1080 AND 1080),
        -- 'eu': summer time (+1 h) from the last Sunday of March to the last Sunday of October.
        dst_rule    TEXT NOT NULL DEFAULT 'none' CHECK (dst_rule IN ('none', 'eu')),
        max_invitation_days BIGINT NOT NULL DEFAULT 30 CHECK (max_invitation_days BETWEEN 1 AND 366),
        tenants_may_invite BIGINT NOT NULL DEFAULT 1 CHECK (tenants_may_invite IN (0, 1))
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
        name        TEXT NOT NULL,
        number      BIGINT CHECK (number BETWEEN 1 AND 4294967295),
        log_retention_days BIGINT NOT NULL DEFAULT 90 CHECK (log_retention_days >= 0),
        CONSTRAINT doors_number UNIQUE (number)
    );
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL DEFAULT '',
        email       TEXT UNIQUE,
        phone       TEXT UNIQUE,
        unit_id     TEXT REFERENCES units(id) ON DELETE SET NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        kind        TEXT NOT NULL DEFAULT 'resident' CHECK (kind IN ('resident', 'guest')),
        expires_at  BIGINT,
        CHECK ((kind = 'resident' AND (email IS NOT NULL OR phone IS NOT NULL))
            OR (kind = 'guest' AND email IS NULL AND phone IS NULL AND name = '' AND unit_id IS NULL
                AND expires_at IS NOT NULL))
    );
    CREATE INDEX users_guest_end ON users(expires_at) WHERE kind = 'guest';
    -- Keyed by a hash of the identifier: a pending sign-in says nothing readable about who.
    CREATE TABLE one_time_codes (
        identifier_hash TEXT PRIMARY KEY,
        salt        TEXT NOT NULL,
        code_hash   TEXT NOT NULL,
        expires_at  BIGINT NOT NULL,
        attempts    BIGINT NOT NULL DEFAULT 0,
        purpose     TEXT NOT NULL DEFAULT 'sign_in'
    );
    CREATE TABLE rate_events (
        bucket      TEXT NOT NULL,
        key         TEXT NOT NULL,
        at          BIGINT NOT NULL
    );
    CREATE INDEX rate_events_lookup ON rate_events(bucket, key, at);
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        device_name  TEXT NOT NULL,
        ip           TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        revoked_at   BIGINT
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE access_tokens (
        token_hash  TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        expires_at  BIGINT NOT NULL
    );
    CREATE INDEX access_tokens_session ON access_tokens(session_id);
    CREATE TABLE refresh_tokens (
        token_hash  TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        expires_at  BIGINT NOT NULL,
        used_at     BIGINT
    );
    CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
    CREATE TABLE pictures (
        user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        content_type TEXT NOT NULL,
        bytes        BYTEA NOT NULL,
        updated_at   BIGINT NOT NULL
    );

    -- Lock ids come from the locks' own requests, so they are given, not generated.
    CREATE TABLE locks (
        lock_id     BIGINT PRIMARY KEY CHECK (lock_id BETWEEN 1 AND 4294967295),
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        public_key  BYTEA NOT NULL,
        certificate BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        not_before  BIGINT NOT NULL DEFAULT 0,
        not_after   BIGINT NOT NULL DEFAULT 0,
        revoked_at  BIGINT
    );
    -- A key is certified once, whatever the door.
    CREATE UNIQUE INDEX locks_public_key ON locks(public_key);
    -- A door has one current lock, and keeps the rows of the locks it had.
    CREATE TABLE lock_doors (
        lock_id     BIGINT NOT NULL REFERENCES locks(lock_id) ON DELETE CASCADE,
        door_number BIGINT NOT NULL REFERENCES doors(number) ON DELETE CASCADE,
        PRIMARY KEY (lock_id, door_number)
    );
    CREATE INDEX lock_doors_door ON lock_doors(door_number);
    -- One device key per session; the device id is the session id.
    CREATE TABLE device_keys (
        session_id  TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        public_key  BYTEA NOT NULL UNIQUE,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );
    CREATE TABLE credentials (
        id          BYTEA PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        session_id  TEXT NOT NULL,
        device_key  BYTEA NOT NULL,
        not_before  BIGINT NOT NULL,
        not_after   BIGINT NOT NULL,
        issued_at   BIGINT NOT NULL,
        -- JSON array of door numbers, so residents can see what each credential opened.
        doors       TEXT,
        -- The signed bytes, so a sync can hand out the same credential again.
        signed      BYTEA
    );
    CREATE INDEX credentials_session ON credentials(session_id);
    -- What the signed revocation deltas carry, each entry numbered in the site's sequence.
    -- Rows leave once they can no longer matter.
    CREATE TABLE revoked_credentials (
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        credential_id BYTEA NOT NULL,
        not_after   BIGINT NOT NULL,
        revoked_at  BIGINT NOT NULL,
        seq         BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (site_id, credential_id)
    );
    CREATE INDEX revoked_credentials_seq ON revoked_credentials(site_id, seq);
    CREATE TABLE revoked_device_keys (
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        public_key  BYTEA NOT NULL,
        not_after   BIGINT NOT NULL,
        revoked_at  BIGINT NOT NULL,
        seq         BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (site_id, public_key)
    );
    CREATE INDEX revoked_device_keys_seq ON revoked_device_keys(site_id, seq);
    CREATE TABLE access_events (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lock_id     BIGINT NOT NULL,
        counter     BIGINT NOT NULL,
        door_number BIGINT,
        credential_id BYTEA NOT NULL,
        user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
        decision    BIGINT NOT NULL,
        at          BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        record      BYTEA NOT NULL,
        UNIQUE (lock_id, counter)
    );
    CREATE INDEX access_events_user ON access_events(user_id, at);
    CREATE INDEX access_events_at ON access_events(at);

    -- Append-only: every change of a consent is a row; the newest row per purpose counts.
    CREATE TABLE consent_events (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        purpose     TEXT NOT NULL,
        granted     BIGINT NOT NULL CHECK (granted IN (0, 1)),
        at          BIGINT NOT NULL
    );
    CREATE INDEX consent_events_user ON consent_events(user_id, purpose, at);
    -- Proof that an account was deleted, keyed by SHA-256 of the client's request id. Holds
    -- no personal data.
    CREATE TABLE deletion_receipts (
        request_hash      TEXT PRIMARY KEY,
        deleted_at        BIGINT NOT NULL,
        backups_purged_by BIGINT NOT NULL
    );
    -- Until confirmed, the new address is not the account's. One pending change per account.
    CREATE TABLE contact_changes (
        user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        field       TEXT NOT NULL CHECK (field IN ('email', 'phone')),
        value       TEXT NOT NULL,
        salt        TEXT NOT NULL,
        code_hash   TEXT NOT NULL,
        expires_at  BIGINT NOT NULL,
        attempts    BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE server_secrets (
        name        TEXT PRIMARY KEY,
        value       BYTEA NOT NULL
    );

    -- Only while a use is left and the window has not ended. A revoked one stays until its
    -- window ends.
    CREATE TABLE invitations (
        id          TEXT PRIMARY KEY,
        token_hash  TEXT NOT NULL UNIQUE,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label       TEXT,
        doors       TEXT NOT NULL,
        not_before  BIGINT NOT NULL,
        not_after   BIGINT NOT NULL,
        schedule_json TEXT,
        uses        BIGINT NOT NULL CHECK (uses >= 1),
        uses_left   BIGINT NOT NULL CHECK (uses_left BETWEEN 0 AND uses),
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );
    CREATE INDEX invitations_tenant ON invitations(tenant_id);
    CREATE INDEX invitations_end ON invitations(not_after);
    -- When each tenant created invitations, for the daily cap; kept one day.
    CREATE TABLE invitation_events (
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        at          BIGINT NOT NULL
    );
    CREATE INDEX invitation_events_tenant ON invitation_events(tenant_id, at);
    -- One per accepted use; `accept_tag` (an HMAC under the server's key) recognises a
    -- repeated acceptance.
    CREATE TABLE guest_accesses (
        id          TEXT PRIMARY KEY,
        invitation_id TEXT,
        tenant_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        label       TEXT,
        doors       TEXT NOT NULL,
        not_before  BIGINT NOT NULL,
        not_after   BIGINT NOT NULL,
        schedule_json TEXT,
        accept_tag  TEXT NOT NULL UNIQUE,
        accepted_at BIGINT NOT NULL
    );
    CREATE INDEX guest_accesses_tenant ON guest_accesses(tenant_id);
    CREATE INDEX guest_accesses_user ON guest_accesses(user_id);
    CREATE INDEX guest_accesses_invitation ON guest_accesses(invitation_id);
    CREATE INDEX guest_accesses_end ON guest_accesses(not_after);

    -- An operator acts across all sites (site_id NULL); a site admin at one site.
    CREATE TABLE roles (
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role        TEXT NOT NULL CHECK (role IN ('operator', 'site_admin')),
        site_id     TEXT REFERENCES sites(id) ON DELETE CASCADE,
        granted_at  BIGINT NOT NULL,
        CHECK ((role = 'operator') = (site_id IS NULL))
    );
    CREATE UNIQUE INDEX roles_unique ON roles(user_id, role, COALESCE(site_id, ''));
    CREATE INDEX roles_site ON roles(site_id);
    -- A grant an admin made, to a unit (every resident of it, now and later) or to one person.
    CREATE TABLE site_grants (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        unit_id     TEXT REFERENCES units(id) ON DELETE CASCADE,
        user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
        doors       TEXT NOT NULL,
        not_before  BIGINT NOT NULL,
        not_after   BIGINT NOT NULL,
        schedule_json TEXT,
        created_at  BIGINT NOT NULL,
        CHECK ((unit_id IS NULL) != (user_id IS NULL))
    );
    CREATE INDEX site_grants_site ON site_grants(site_id);
    -- `rowid` stands for SQLite's implicit row id: grants of one door are read in the order
    -- they were made.
    CREATE TABLE door_grants (
        id          TEXT PRIMARY KEY,
        rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        door_number BIGINT NOT NULL REFERENCES doors(number) ON DELETE CASCADE,
        not_before  BIGINT NOT NULL,
        not_after   BIGINT NOT NULL,
        schedule_json TEXT,
        created_at  BIGINT NOT NULL,
        guest_access_id TEXT REFERENCES guest_accesses(id) ON DELETE CASCADE,
        site_grant_id TEXT REFERENCES site_grants(id) ON DELETE CASCADE
    );
    CREATE INDEX door_grants_user ON door_grants(user_id);
    -- Apart from residents' data: no foreign keys, no names, emails or phones.
    CREATE TABLE security_events (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          BIGINT NOT NULL,
        kind        TEXT NOT NULL,
        site_id     TEXT,
        actor       TEXT,
        subject     TEXT,
        detail      TEXT
    );
    CREATE INDEX security_events_at ON security_events(at);
    CREATE INDEX security_events_site ON security_events(site_id, id);

    -- Partner API keys, per site. Only the secret's SHA-256 is kept; a revoked key stays
    -- listed, as revoked.
    CREATE TABLE partner_keys (
        id          TEXT PRIMARY KEY,
        site_id     TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at  BIGINT NOT NULL,
        last_used_at BIGINT,
        revoked_at  BIGINT
    );
    CREATE INDEX partner_keys_site ON partner_keys(site_id);
    "#,
    // 2: SQLite's migration 11: the purge job deletes by ranges on indexes (a door's events
    // by time, expired credentials by end), and events dated beyond their arrival go.
    r#"
    CREATE INDEX access_events_door_at ON access_events(door_number, at);
    CREATE INDEX credentials_not_after ON credentials(not_after);
    DELETE FROM access_events WHERE at > received_at + 300;
    "#,
];
