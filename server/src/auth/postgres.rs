//! The PostgreSQL backend of [`AuthStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`], and the account, code-limit and identifier helpers other
//! PostgreSQL stores run inside their own transactions.
//!
//! What two instances must agree on is decided by row locks: a guess locks its pending code
//! (the attempt limit holds across instances), a rotation locks its refresh token (a token
//! replayed through another instance at the same moment is seen as reused).

use std::net::IpAddr;

use async_trait::async_trait;
use subtle::ConstantTimeEq;
use tokio_postgres::GenericClient;

use super::store::{AccessTokenRecord, AuthStore, CodeLimits, Rotation, SessionTokens, SignIn, TokenLifetimes};
use super::{code_hash, code_key, identifier_key, random_hex, sha256_hex, CodePurpose};
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::pg::{delete_expired, PgPool};
use crate::security_log::postgres::record_in;
use crate::security_log::{EventKind, NewEvent};

pub struct PgAuthStore {
    pool: PgPool,
}

impl PgAuthStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AuthStore for PgAuthStore {
    async fn issue_code(
        &self,
        identifier: &Identifier,
        purpose: CodePurpose,
        ip: IpAddr,
        code: Option<&str>,
        now: i64,
        limits: CodeLimits,
    ) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // A limited request is refused and counts nothing.
        if let Err(err) = count_code_request(&tx, identifier, ip, now, limits).await? {
            tx.commit().await?;
            return Err(err);
        }
        if let Some(code) = code {
            let salt = random_hex(16);
            // A new code replaces the old one and resets the attempt counter.
            tx.execute(
                "INSERT INTO one_time_codes (identifier_hash, salt, code_hash, expires_at, attempts, purpose)
                 VALUES ($1, $2, $3, $4, 0, $5)
                 ON CONFLICT (identifier_hash) DO UPDATE SET salt = excluded.salt, code_hash = excluded.code_hash,
                     expires_at = excluded.expires_at, attempts = 0, purpose = excluded.purpose",
                &[
                    &code_key(identifier, purpose),
                    &salt,
                    &code_hash(&salt, code),
                    &(now + limits.ttl_s),
                    &purpose.as_str(),
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sign_in(
        &self,
        attempt: &SignIn,
        now: i64,
        limits: CodeLimits,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError> {
        let SignIn { identifier, code, device_name, ip } = attempt;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Only a guess at a live code is a security event (see the SQLite backend). Read
        // with the code locked, so guesses through other instances count before this one.
        let guessable: bool = tx
            .query_opt(
                "SELECT attempts < $2 FROM one_time_codes WHERE identifier_hash = $1 FOR UPDATE",
                &[&code_key(identifier, CodePurpose::SignIn), &i64::from(limits.max_attempts)],
            )
            .await?
            .is_some_and(|r| r.get(0));
        if let Err(err) = check_code(&tx, identifier, CodePurpose::SignIn, code, now, limits.max_attempts).await? {
            if guessable {
                // Under the account's random id, if there is one; never the address.
                let mut event = NewEvent::new(EventKind::CodeFailed, now).detail(err.code());
                if let Some(user_id) = find_user(&tx, identifier).await? {
                    event = event.subject(&user_id);
                }
                record_in(&tx, &event).await?;
            }
            tx.commit().await?;
            return Err(err);
        }
        let user_id = find_or_create_user(&tx, identifier, now).await?;
        let session_id = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $5)",
            &[&session_id, &user_id, device_name, ip, &now],
        )
        .await?;
        record_in(&tx, &NewEvent::new(EventKind::SignIn, now).actor(&user_id)).await?;
        let tokens = issue_tokens(&tx, user_id, session_id, now, lifetimes).await?;
        delete_expired(&tx, "one_time_codes", "expires_at <= $1", &[&now]).await?;
        delete_expired(&tx, "contact_changes", "expires_at <= $1", &[&now]).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn issue_tokens(
        &self,
        user_id: &str,
        session_id: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tokens = issue_tokens(&tx, user_id.to_owned(), session_id.to_owned(), now, lifetimes).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<Rotation, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locked: a second rotation of the same token waits, then sees it used.
        let row = tx
            .query_opt(
                "SELECT r.session_id, r.expires_at, r.used_at, s.revoked_at, s.user_id
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                 WHERE r.token_hash = $1 FOR UPDATE OF r",
                &[&token_hash],
            )
            .await?;
        let Some(row) = row else {
            return Ok(Rotation::Unknown);
        };
        let (session_id, expires_at, used_at, revoked_at, user_id): (String, i64, Option<i64>, Option<i64>, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        if used_at.is_some() {
            crate::devices::postgres::revoke_device(&tx, &session_id, now).await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { session_id });
        }
        if revoked_at.is_some() || expires_at <= now {
            return Ok(Rotation::Dead);
        }
        tx.execute("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2", &[&now, &token_hash]).await?;
        tx.execute("UPDATE sessions SET last_seen_at = $1 WHERE id = $2", &[&now, &session_id]).await?;
        let tokens = issue_tokens(&tx, user_id, session_id, now, lifetimes).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated(tokens))
    }

    async fn access_token(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT a.session_id, s.user_id, a.expires_at, s.revoked_at IS NOT NULL, s.last_seen_at,
                        u.kind = 'guest', u.expires_at
                 FROM access_tokens a JOIN sessions s ON s.id = a.session_id
                 JOIN users u ON u.id = s.user_id
                 WHERE a.token_hash = $1",
                &[&token_hash],
            )
            .await?;
        Ok(row.map(|r| AccessTokenRecord {
            session_id: r.get(0),
            user_id: r.get(1),
            expires_at: r.get(2),
            session_revoked: r.get(3),
            last_seen_at: r.get(4),
            guest: r.get(5),
            guest_until: r.get(6),
        }))
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        client.execute("UPDATE sessions SET last_seen_at = $1 WHERE id = $2", &[&now, &session_id]).await?;
        Ok(())
    }

    async fn delete_guest(&self, user_id: &str, now: i64) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        crate::privacy::postgres::delete_account(&tx, user_id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Checks `code` against `identifier`'s pending code for `purpose` (see [`check_code`]), for
/// the stores that ask for codes of their own (account deletion).
pub(crate) async fn verify_code(
    client: &impl GenericClient,
    identifier: &Identifier,
    purpose: CodePurpose,
    code: &str,
    now: i64,
    limits: CodeLimits,
) -> Result<Result<(), ApiError>, tokio_postgres::Error> {
    check_code(client, identifier, purpose, code, now, limits.max_attempts).await
}

/// Checks `code` against `identifier`'s pending code for `purpose`, with the code's row
/// locked. A wrong guess counts against the code, so on `Ok(Err(_))` the caller must commit
/// before answering; on `Ok(Ok(()))` the code has been used up.
async fn check_code(
    client: &impl GenericClient,
    identifier: &Identifier,
    purpose: CodePurpose,
    code: &str,
    now: i64,
    max_attempts: u32,
) -> Result<Result<(), ApiError>, tokio_postgres::Error> {
    let key = code_key(identifier, purpose);
    let row = client
        .query_opt(
            "SELECT salt, code_hash, expires_at, attempts, purpose FROM one_time_codes
             WHERE identifier_hash = $1 FOR UPDATE",
            &[&key],
        )
        .await?;
    let check = match row {
        None => Err(ApiError::InvalidCode),
        Some(r) => {
            let (salt, stored, expires_at, attempts, stored_purpose): (String, String, i64, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            if stored_purpose != purpose.as_str() {
                Err(ApiError::InvalidCode)
            } else if attempts >= i64::from(max_attempts) {
                Err(ApiError::TooManyAttempts)
            } else if expires_at <= now {
                Err(ApiError::CodeExpired)
            } else if bool::from(code_hash(&salt, code.trim()).as_bytes().ct_eq(stored.as_bytes())) {
                Ok(())
            } else {
                client
                    .execute("UPDATE one_time_codes SET attempts = attempts + 1 WHERE identifier_hash = $1", &[&key])
                    .await?;
                Err(ApiError::InvalidCode)
            }
        }
    };
    if check.is_ok() {
        client.execute("DELETE FROM one_time_codes WHERE identifier_hash = $1", &[&key]).await?;
    }
    Ok(check)
}

/// Stores hashes of a fresh access/refresh pair for the session and returns the clear tokens.
async fn issue_tokens(
    client: &impl GenericClient,
    user_id: String,
    session_id: String,
    now: i64,
    lifetimes: TokenLifetimes,
) -> Result<SessionTokens, tokio_postgres::Error> {
    let access = random_hex(32);
    let refresh = random_hex(32);
    // A guest's session cannot outlive its window: no token of it does.
    let end: Option<i64> =
        client.query_opt("SELECT expires_at FROM users WHERE id = $1", &[&user_id]).await?.and_then(|r| r.get(0));
    let until = |ttl: i64| end.map_or(now + ttl, |end| (now + ttl).min(end));
    let access_expires_at = until(lifetimes.access_s);
    client
        .execute(
            "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
            &[&sha256_hex(&access), &session_id, &access_expires_at],
        )
        .await?;
    client
        .execute(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
            &[&sha256_hex(&refresh), &session_id, &until(lifetimes.refresh_s)],
        )
        .await?;
    // Housekeeping: expired tokens are useless and only take space.
    delete_expired(client, "access_tokens", "expires_at <= $1", &[&now]).await?;
    Ok(SessionTokens { access_token: access, refresh_token: refresh, access_expires_at, user_id, session_id })
}

/// The account whose email or phone is `identifier`.
pub(crate) async fn find_user(
    client: &impl GenericClient,
    identifier: &Identifier,
) -> Result<Option<String>, tokio_postgres::Error> {
    let sql = match identifier {
        Identifier::Email(_) => "SELECT id FROM users WHERE email = $1",
        Identifier::Phone(_) => "SELECT id FROM users WHERE phone = $1",
    };
    Ok(client.query_opt(sql, &[&identifier.as_str()]).await?.map(|r| r.get(0)))
}

/// The account of `identifier`, created (with a random id) if there is none. Two instances
/// creating it at once make one: the unique address decides, and both read back its row.
pub(crate) async fn find_or_create_user(
    client: &impl GenericClient,
    identifier: &Identifier,
    now: i64,
) -> Result<String, ApiError> {
    if let Some(id) = find_user(client, identifier).await? {
        return Ok(id);
    }
    let (email, phone) = match identifier {
        Identifier::Email(e) => (Some(e.as_str()), None),
        Identifier::Phone(p) => (None, Some(p.as_str())),
    };
    // Random, so the id reveals nothing about the person.
    let id = uuid::Uuid::new_v4().to_string();
    let created = client
        .execute(
            "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
             VALUES ($1, '', $2, $3, NULL, $4, $4) ON CONFLICT DO NOTHING",
            &[&id, &email, &phone, &now],
        )
        .await?;
    if created == 1 {
        tracing::info!(user_id = %id, "created account");
        return Ok(id);
    }
    find_user(client, identifier).await?.ok_or_else(|| ApiError::Internal("account neither found nor created".into()))
}

/// Seconds to wait if `key` already used up `limit` events in the window, else `None`.
async fn rate_wait(
    client: &impl GenericClient,
    bucket: &str,
    key: &str,
    limit: u32,
    now: i64,
    window: i64,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT COUNT(*), MIN(at) FROM rate_events WHERE bucket = $1 AND key = $2 AND at > $3",
            &[&bucket, &key, &(now - window)],
        )
        .await?;
    let (count, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
    Ok(match oldest {
        Some(oldest) if count >= i64::from(limit) => Some((oldest + window - now).max(1)),
        None if limit == 0 => Some(window.max(1)),
        _ => None,
    })
}

/// Applies the per-identifier and per-IP limits on sending codes and, within them, counts this
/// request, as the SQLite backend's `count_code_request`. Advisory locks on both keys (always
/// the identifier's first, so two requests never wait on each other in a circle) make
/// requests reaching several instances at once count one after another. Run it in a
/// transaction.
pub(crate) async fn count_code_request(
    client: &impl GenericClient,
    identifier: &Identifier,
    ip: IpAddr,
    now: i64,
    limits: CodeLimits,
) -> Result<Result<(), ApiError>, tokio_postgres::Error> {
    let id_key = identifier_key(identifier);
    let ip_key = sha256_hex(format!("ip:{ip}"));
    let window = limits.window_s;
    for (bucket, key) in [("code_identifier", &id_key), ("code_ip", &ip_key)] {
        crate::pg::lock_key(client, bucket, key).await?;
    }
    delete_expired(client, "rate_events", "at <= $1", &[&(now - window)]).await?;
    let waits = [
        rate_wait(client, "code_identifier", &id_key, limits.per_identifier, now, window).await?,
        rate_wait(client, "code_ip", &ip_key, limits.per_ip, now, window).await?,
    ];
    if let Some(retry_after_s) = waits.into_iter().flatten().max() {
        tracing::info!("code request rate limited");
        return Ok(Err(ApiError::RateLimited { retry_after_s }));
    }
    for (bucket, key) in [("code_identifier", &id_key), ("code_ip", &ip_key)] {
        client.execute("INSERT INTO rate_events (bucket, key, at) VALUES ($1, $2, $3)", &[&bucket, key, &now]).await?;
    }
    Ok(Ok(()))
}

/// Drops what is kept under hashes of `identifier`: its pending codes of every purpose and
/// its code-request rate events.
pub(crate) async fn forget_identifier(
    client: &impl GenericClient,
    identifier: &Identifier,
) -> Result<(), tokio_postgres::Error> {
    for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
        client
            .execute("DELETE FROM one_time_codes WHERE identifier_hash = $1", &[&code_key(identifier, purpose)])
            .await?;
    }
    client
        .execute(
            "DELETE FROM rate_events WHERE bucket = 'code_identifier' AND key = $1",
            &[&identifier_key(identifier)],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store_tests::Fixture;

    /// A fresh database with the guest the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_750_000_000;
        let client = pool.get().await.unwrap();
        client
            .execute(
                "INSERT INTO users (id, kind, expires_at, created_at, updated_at) VALUES ('guest-1', 'guest', $1, $2, $2)",
                &[&(now + 100), &now],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                 VALUES ('guest-1-session', 'guest-1', 'Guest phone', '192.0.2.7', $1, $1)",
                &[&now],
            )
            .await
            .unwrap();
        drop(client);
        Fixture { store: Box::new(PgAuthStore::new(pool)), _dir: Box::new(()), now }
    }

    crate::auth_store_tests!(get_store);

    /// Two instances on one database: a session made on A refreshes on B, and one refresh
    /// token sent to both at the same moment rotates once; the other sees it reused.
    #[tokio::test]
    async fn a_refresh_token_raced_through_two_instances_rotates_once() {
        use crate::auth::store_tests::{LIFETIMES, LIMITS};
        let pool = crate::pg::test_support::fresh_database().await;
        let other = crate::pg::test_support::another_instance(&pool).await;
        let (a, b) = (PgAuthStore::new(pool), PgAuthStore::new(other));
        let now: i64 = 1_750_000_000;
        let identifier = Identifier::parse("ann@example.com").unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        a.issue_code(&identifier, CodePurpose::SignIn, ip, Some("123456"), now, LIMITS).await.unwrap();
        let attempt = SignIn { identifier, code: "123456".into(), device_name: "Phone".into(), ip: "192.0.2.1".into() };
        let tokens = a.sign_in(&attempt, now, LIMITS, LIFETIMES).await.unwrap();
        let Rotation::Rotated(next) =
            b.rotate_refresh_token(&sha256_hex(&tokens.refresh_token), now + 1, LIFETIMES).await.unwrap()
        else {
            panic!("B refreshes A's session");
        };
        let hash = sha256_hex(&next.refresh_token);
        let (on_a, on_b) = tokio::join!(
            a.rotate_refresh_token(&hash, now + 2, LIFETIMES),
            b.rotate_refresh_token(&hash, now + 2, LIFETIMES)
        );
        let outcomes = [on_a.unwrap(), on_b.unwrap()];
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Rotation::Rotated(_))).count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| matches!(o, Rotation::Reused { .. })).count(), 1, "{outcomes:?}");
    }
}
