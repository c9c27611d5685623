//! The SQLite backend of [`AuthStore`] (tables `one_time_codes`, `rate_events`, `sessions`,
//! `access_tokens`, `refresh_tokens`), and the SQL helpers other stores run inside their own
//! transactions: rate slots, codes, and finding or creating an account.

use std::net::IpAddr;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use subtle::ConstantTimeEq;

use super::store::{AccessTokenRecord, AuthStore, CodeLimits, Rotation, SessionTokens, SignIn, TokenLifetimes};
use super::{code_hash, code_key, identifier_key, random_hex, sha256_hex, CodePurpose};
use crate::db::Db;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::security_log::{EventKind, NewEvent};

pub struct SqliteAuthStore {
    db: Db,
}

impl SqliteAuthStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AuthStore for SqliteAuthStore {
    async fn issue_code(
        &self,
        identifier: &Identifier,
        purpose: CodePurpose,
        ip: IpAddr,
        code: Option<&str>,
        now: i64,
        limits: CodeLimits,
    ) -> Result<(), ApiError> {
        let (identifier, code) = (identifier.clone(), code.map(str::to_owned));
        self.db.call(move |conn| store_code(conn, &identifier, purpose, ip, code.as_deref(), now, limits)).await
    }

    async fn sign_in(
        &self,
        attempt: &SignIn,
        now: i64,
        limits: CodeLimits,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError> {
        let SignIn { identifier, code, device_name, ip } = attempt.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                // Only a guess at a live code is a security event: those are bounded by the code
                // limits, while guesses with no code pending would let anyone fill the log.
                let guessable: bool = tx
                    .query_row(
                        "SELECT attempts < ?2 FROM one_time_codes WHERE identifier_hash = ?1",
                        params![code_key(&identifier, CodePurpose::SignIn), limits.max_attempts],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(false);
                if let Err(err) = check_code(&tx, &identifier, CodePurpose::SignIn, &code, now, limits.max_attempts)? {
                    if guessable {
                        // Under the account's random id, if there is one; never the address.
                        let mut event = NewEvent::new(EventKind::CodeFailed, now).detail(err.code());
                        if let Some(user_id) = find_user(&tx, &identifier)? {
                            event = event.subject(&user_id);
                        }
                        crate::security_log::sqlite::record_in(&tx, &event)?;
                    }
                    tx.commit()?;
                    return Err(err);
                }
                let user_id = find_or_create_user(&tx, &identifier, now)?;
                let session_id = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![session_id, user_id, device_name, ip, now],
                )?;
                crate::security_log::sqlite::record_in(&tx, &NewEvent::new(EventKind::SignIn, now).actor(&user_id))?;
                let tokens = issue_tokens(&tx, user_id, session_id, now, lifetimes)?;
                tx.execute("DELETE FROM one_time_codes WHERE expires_at <= ?1", [now])?;
                tx.execute("DELETE FROM contact_changes WHERE expires_at <= ?1", [now])?;
                tx.commit()?;
                Ok(tokens)
            })
            .await
    }

    async fn issue_tokens(
        &self,
        user_id: &str,
        session_id: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError> {
        let (user_id, session_id) = (user_id.to_owned(), session_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let tokens = issue_tokens(&tx, user_id, session_id, now, lifetimes)?;
                tx.commit()?;
                Ok(tokens)
            })
            .await
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<Rotation, ApiError> {
        let hash = token_hash.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let row: Option<(String, i64, Option<i64>, Option<i64>, String)> = tx
                    .query_row(
                        "SELECT r.session_id, r.expires_at, r.used_at, s.revoked_at, s.user_id
                         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                         WHERE r.token_hash = ?1",
                        [&hash],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .optional()?;
                let Some((session_id, expires_at, used_at, revoked_at, user_id)) = row else {
                    return Ok(Rotation::Unknown);
                };
                if used_at.is_some() {
                    crate::devices::sqlite::revoke_device(&tx, &session_id, now)?;
                    tx.commit()?;
                    return Ok(Rotation::Reused { session_id });
                }
                if revoked_at.is_some() || expires_at <= now {
                    return Ok(Rotation::Dead);
                }
                tx.execute("UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2", params![now, hash])?;
                tx.execute("UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2", params![now, session_id])?;
                let tokens = issue_tokens(&tx, user_id, session_id, now, lifetimes)?;
                tx.commit()?;
                Ok(Rotation::Rotated(tokens))
            })
            .await
    }

    async fn access_token(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>, ApiError> {
        let hash = token_hash.to_owned();
        self.db
            .call(move |conn| {
                let record = conn
                    .query_row(
                        "SELECT a.session_id, s.user_id, a.expires_at, s.revoked_at IS NOT NULL, s.last_seen_at,
                                u.kind = 'guest', u.expires_at
                         FROM access_tokens a JOIN sessions s ON s.id = a.session_id
                         JOIN users u ON u.id = s.user_id
                         WHERE a.token_hash = ?1",
                        [&hash],
                        |r| {
                            Ok(AccessTokenRecord {
                                session_id: r.get(0)?,
                                user_id: r.get(1)?,
                                expires_at: r.get(2)?,
                                session_revoked: r.get(3)?,
                                last_seen_at: r.get(4)?,
                                guest: r.get(5)?,
                                guest_until: r.get(6)?,
                            })
                        },
                    )
                    .optional()?;
                Ok(record)
            })
            .await
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), ApiError> {
        let session_id = session_id.to_owned();
        self.db
            .call(move |conn| {
                conn.execute("UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2", params![now, session_id])?;
                Ok(())
            })
            .await
    }

    async fn delete_guest(&self, user_id: &str, now: i64) -> Result<(), ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                crate::privacy::sqlite::delete_account(&tx, &user_id, now)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

/// Seconds to wait if `key` already used up `limit` events in the window, else `None`.
fn rate_wait(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    limit: u32,
    now: i64,
    window: i64,
) -> rusqlite::Result<Option<i64>> {
    let (count, oldest): (u32, Option<i64>) = tx.query_row(
        "SELECT COUNT(*), MIN(at) FROM rate_events WHERE bucket = ?1 AND key = ?2 AND at > ?3",
        params![bucket, key, now - window],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(match oldest {
        Some(oldest) if count >= limit => Some((oldest + window - now).max(1)),
        None if limit == 0 => Some(window.max(1)),
        _ => None,
    })
}

/// Takes one of `limit` slots per `window` seconds for `key` in `bucket` (sliding window), or
/// answers `RateLimited` with the wait. Expired events of the bucket are pruned on the way.
pub(crate) fn take_rate_slot(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    limit: u32,
    now: i64,
    window: i64,
) -> Result<(), ApiError> {
    tx.execute("DELETE FROM rate_events WHERE bucket = ?1 AND at <= ?2", params![bucket, now - window])?;
    if let Some(retry_after_s) = rate_wait(tx, bucket, key, limit, now, window)? {
        return Err(ApiError::RateLimited { retry_after_s });
    }
    tx.execute("INSERT INTO rate_events (bucket, key, at) VALUES (?1, ?2, ?3)", params![bucket, key, now])?;
    Ok(())
}

/// Counts a code request within the limits and stores `code` (if any) as the pending code for
/// `purpose`, in one transaction. A limited request is refused and counts nothing.
fn store_code(
    conn: &mut Connection,
    identifier: &Identifier,
    purpose: CodePurpose,
    ip: IpAddr,
    code: Option<&str>,
    now: i64,
    limits: CodeLimits,
) -> Result<(), ApiError> {
    let tx = conn.transaction()?;
    if let Err(err) = count_code_request(&tx, identifier, ip, now, limits)? {
        tx.commit()?;
        return Err(err);
    }
    if let Some(code) = code {
        let salt = random_hex(16);
        // A new code replaces the old one and resets the attempt counter.
        tx.execute(
            "INSERT OR REPLACE INTO one_time_codes
                 (identifier_hash, salt, code_hash, expires_at, attempts, purpose)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![code_key(identifier, purpose), salt, code_hash(&salt, code), now + limits.ttl_s, purpose.as_str()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Applies the per-identifier and per-IP limits on sending codes and, within them, counts this
/// request. Every way of sending a code (sign-in, deletion, a contact change) shares them.
pub(crate) fn count_code_request(
    tx: &Transaction<'_>,
    identifier: &Identifier,
    ip: IpAddr,
    now: i64,
    limits: CodeLimits,
) -> rusqlite::Result<Result<(), ApiError>> {
    let id_key = identifier_key(identifier);
    let ip_key = sha256_hex(format!("ip:{ip}"));
    let window = limits.window_s;
    tx.execute("DELETE FROM rate_events WHERE at <= ?1", [now - window])?;
    let waits = [
        rate_wait(tx, "code_identifier", &id_key, limits.per_identifier, now, window)?,
        rate_wait(tx, "code_ip", &ip_key, limits.per_ip, now, window)?,
    ];
    if let Some(retry_after_s) = waits.into_iter().flatten().max() {
        tracing::info!("code request rate limited");
        return Ok(Err(ApiError::RateLimited { retry_after_s }));
    }
    for (bucket, key) in [("code_identifier", &id_key), ("code_ip", &ip_key)] {
        tx.execute("INSERT INTO rate_events (bucket, key, at) VALUES (?1, ?2, ?3)", params![bucket, key, now])?;
    }
    Ok(Ok(()))
}

/// Drops what is kept under hashes of `identifier`: its pending codes of every purpose and
/// its code-request rate events. Used when the identifier leaves an account (deletion, a
/// confirmed change of email or phone), so no hash of it outlives its use.
pub(crate) fn forget_identifier(tx: &Transaction<'_>, identifier: &Identifier) -> rusqlite::Result<()> {
    for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
        tx.execute("DELETE FROM one_time_codes WHERE identifier_hash = ?1", [code_key(identifier, purpose)])?;
    }
    tx.execute("DELETE FROM rate_events WHERE bucket = 'code_identifier' AND key = ?1", [identifier_key(identifier)])?;
    Ok(())
}

/// Checks `code` against `identifier`'s pending code for `purpose`. A wrong guess counts
/// against the code, so on `Ok(Err(_))` the caller must commit before answering; on
/// `Ok(Ok(()))` the code has been used up.
pub(crate) fn verify_code(
    tx: &Transaction<'_>,
    identifier: &Identifier,
    purpose: CodePurpose,
    code: &str,
    now: i64,
    limits: CodeLimits,
) -> rusqlite::Result<Result<(), ApiError>> {
    check_code(tx, identifier, purpose, code, now, limits.max_attempts)
}

fn check_code(
    tx: &Transaction<'_>,
    identifier: &Identifier,
    purpose: CodePurpose,
    code: &str,
    now: i64,
    max_attempts: u32,
) -> rusqlite::Result<Result<(), ApiError>> {
    let key = code_key(identifier, purpose);
    let row: Option<(String, String, i64, u32, String)> = tx
        .query_row(
            "SELECT salt, code_hash, expires_at, attempts, purpose FROM one_time_codes
             WHERE identifier_hash = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let check = match row {
        None => Err(ApiError::InvalidCode),
        Some((_, _, _, _, stored)) if stored != purpose.as_str() => Err(ApiError::InvalidCode),
        Some((_, _, _, attempts, _)) if attempts >= max_attempts => Err(ApiError::TooManyAttempts),
        Some((_, _, expires_at, _, _)) if expires_at <= now => Err(ApiError::CodeExpired),
        Some((salt, stored, _, _, _)) => {
            let given = code_hash(&salt, code.trim());
            if bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
                Ok(())
            } else {
                tx.execute("UPDATE one_time_codes SET attempts = attempts + 1 WHERE identifier_hash = ?1", [&key])?;
                Err(ApiError::InvalidCode)
            }
        }
    };
    if check.is_ok() {
        tx.execute("DELETE FROM one_time_codes WHERE identifier_hash = ?1", [&key])?;
    }
    Ok(check)
}

/// Stores hashes of a fresh access/refresh pair for the session and returns the clear tokens.
fn issue_tokens(
    tx: &Transaction<'_>,
    user_id: String,
    session_id: String,
    now: i64,
    lifetimes: TokenLifetimes,
) -> rusqlite::Result<SessionTokens> {
    let access = random_hex(32);
    let refresh = random_hex(32);
    // A guest's session cannot outlive its window: no token of it does.
    let end: Option<i64> =
        tx.query_row("SELECT expires_at FROM users WHERE id = ?1", [&user_id], |r| r.get(0)).optional()?.flatten();
    let until = |ttl: i64| end.map_or(now + ttl, |end| (now + ttl).min(end));
    let access_expires_at = until(lifetimes.access_s);
    tx.execute(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sha256_hex(&access), session_id, access_expires_at],
    )?;
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sha256_hex(&refresh), session_id, until(lifetimes.refresh_s)],
    )?;
    // Housekeeping: expired tokens are useless and only take space.
    tx.execute("DELETE FROM access_tokens WHERE expires_at <= ?1", [now])?;
    Ok(SessionTokens { access_token: access, refresh_token: refresh, access_expires_at, user_id, session_id })
}

/// The id of the account signed in by `identifier` (its email or phone), if there is one.
/// Sign-in, the deletion page and deletion confirmation must all find the same account.
pub(crate) fn find_user(conn: &Connection, identifier: &Identifier) -> rusqlite::Result<Option<String>> {
    let sql = match identifier {
        Identifier::Email(_) => "SELECT id FROM users WHERE email = ?1",
        Identifier::Phone(_) => "SELECT id FROM users WHERE phone = ?1",
    };
    conn.query_row(sql, [identifier.as_str()], |r| r.get(0)).optional()
}

pub(crate) fn find_or_create_user(tx: &Transaction<'_>, identifier: &Identifier, now: i64) -> rusqlite::Result<String> {
    if let Some(id) = find_user(tx, identifier)? {
        return Ok(id);
    }
    let (email, phone) = match identifier {
        Identifier::Email(e) => (Some(e), None),
        Identifier::Phone(p) => (None, Some(p)),
    };
    // Random, so the id reveals nothing about the person.
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
         VALUES (?1, '', ?2, ?3, NULL, ?4, ?4)",
        params![id, email, phone, now],
    )?;
    tracing::info!(user_id = %id, "created account");
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        conn.execute(
            "INSERT INTO users (id, kind, expires_at, created_at, updated_at) VALUES ('guest-1', 'guest', ?1, ?2, ?2)",
            params![now + 100, now],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
             VALUES ('guest-1-session', 'guest-1', 'Guest phone', '192.0.2.7', ?1, ?1)",
            [now],
        )
        .unwrap();
        Fixture { store: Box::new(SqliteAuthStore::new(Db::new(conn))), _dir: Box::new(dir), now }
    }

    crate::auth_store_tests!(get_store);
}
