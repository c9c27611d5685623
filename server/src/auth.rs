//! Passwordless sign-in with one-time codes, token issuing and rotation, and the bearer
//! extractor that guards `/v1/me`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::{is_disallowed_in_name, Identifier, NameError};
use crate::security_log::{EventKind, NewEvent};
use crate::{AppState, Limits};

const DEFAULT_DEVICE_NAME: &str = "Unknown device";
const MAX_DEVICE_NAME_CHARS: usize = 64;
/// `last_seen_at` is refreshed at most this often, so reads don't all turn into writes.
const LAST_SEEN_GRANULARITY_S: i64 = 60;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// Email address or phone number in international format (`+` and 8-15 digits).
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeResponse {
    /// Seconds the code stays valid.
    pub expires_in_s: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
    /// The 6-digit code that was sent.
    #[schema(example = "042917", pattern = r"^[0-9]{6}$")]
    pub code: String,
    /// Shown in the list of sessions; cut to 64 characters. Control, invisible and
    /// text-direction characters are refused (`invalid_device_name`).
    #[schema(example = "Ada's iPhone")]
    pub device_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Tokens for a session. Both are opaque; the refresh token is single-use.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_in_s: i64,
    pub user_id: String,
    pub session_id: String,
}

/// Hex SHA-256. Tokens and codes are only ever stored in this form.
pub(crate) fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(data.as_ref()))
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Uniform over 000000..=999999 (`gen_range` avoids modulo bias).
pub(crate) fn new_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000u32))
}

/// Salted so equal codes for different people don't share a hash.
pub(crate) fn code_hash(salt: &str, code: &str) -> String {
    sha256_hex(format!("{salt}:{code}"))
}

pub(crate) fn identifier_key(identifier: &Identifier) -> String {
    sha256_hex(format!("identifier:{}", identifier.as_str()))
}

/// The name shown in the list of sessions. Absent or blank gets a default and a long one is
/// cut to 64 characters, but control, invisible and text-direction characters are refused:
/// they would let one device pass for another in the list.
pub(crate) fn device_name(raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.unwrap_or_default().trim();
    if let Some(c) = raw.chars().find(|&c| is_disallowed_in_name(c)) {
        let problem = if c.is_control() { NameError::Control } else { NameError::Invisible };
        return Err(ApiError::InvalidDeviceName(problem));
    }
    let name: String = raw.chars().take(MAX_DEVICE_NAME_CHARS).collect();
    let name = name.trim();
    Ok(if name.is_empty() { DEFAULT_DEVICE_NAME.to_owned() } else { name.to_owned() })
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

/// Request a one-time sign-in code.
///
/// Answers the same whether or not an account exists for the identifier.
#[utoipa::path(
    post,
    path = "/v1/auth/code",
    tag = "auth",
    request_body = CodeRequest,
    responses(
        (status = 202, description = "Code sent", body = CodeResponse),
        (status = 400, description = "`invalid_identifier` or `invalid_request`", body = ErrorBody),
        (status = 429, description = "`rate_limited`; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
        (status = 503, description = "`delivery_failed`: the email or SMS provider did not take the code; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn request_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<(StatusCode, ApiJson<CodeResponse>), ApiError> {
    let identifier = Identifier::parse(&body.identifier).ok_or(ApiError::InvalidIdentifier)?;
    let now = state.clock.now();
    let limits = state.limits.clone();
    let ip = peer.ip();
    let to = identifier.clone();
    let code = state.db.call(move |conn| issue_code(conn, &to, CodePurpose::SignIn, ip, now, &limits, true)).await?;
    code_sent(&state, &identifier, code).await
}

/// Sends `code` (if one was issued) to `identifier` and builds the `202 Accepted` answer.
/// Every code-request endpoint answers alike whether or not a code went out, so no caller
/// can tell from the reply whether an account exists: with no code to send, the channel is
/// checked instead, and a broken provider is the same retryable `delivery_failed` either way.
pub(crate) async fn code_sent(
    state: &AppState,
    identifier: &Identifier,
    code: Option<String>,
) -> Result<(StatusCode, ApiJson<CodeResponse>), ApiError> {
    deliver(state, identifier, code).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(CodeResponse { expires_in_s: state.limits.code_ttl_s })))
}

/// Delivers `code` to `identifier`, or with none only checks the channel (see [`code_sent`]).
pub(crate) async fn deliver(state: &AppState, identifier: &Identifier, code: Option<String>) -> Result<(), ApiError> {
    let outcome = match code {
        Some(code) => state.sender.send(identifier, &code).await,
        None => state.sender.check(identifier).await,
    };
    outcome.map_err(|e| {
        // The reason names the provider's trouble, never the address.
        tracing::warn!(reason = %e.0, "one-time code not delivered");
        ApiError::DeliveryFailed
    })
}

/// What a one-time code is for. Each purpose has its own row per identifier, so a sign-in
/// code can never confirm an account deletion and requesting one never replaces the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    SignIn,
    DeleteAccount,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            CodePurpose::SignIn => "sign_in",
            CodePurpose::DeleteAccount => "delete_account",
        }
    }
}

/// The `one_time_codes` key of `identifier`'s pending code for `purpose`.
pub(crate) fn code_key(identifier: &Identifier, purpose: CodePurpose) -> String {
    match purpose {
        CodePurpose::SignIn => identifier_key(identifier),
        CodePurpose::DeleteAccount => sha256_hex(format!("delete_account:{}", identifier.as_str())),
    }
}

/// Applies the per-identifier and per-IP rate limits (shared by every purpose), then stores a
/// fresh code (replacing a pending one of the same purpose) and returns it for sending. With
/// `store` false the request still counts against the limits but nothing is stored and
/// `None` is returned, so callers can answer the same whether or not an account exists.
pub(crate) fn issue_code(
    conn: &mut Connection,
    identifier: &Identifier,
    purpose: CodePurpose,
    ip: IpAddr,
    now: i64,
    limits: &Limits,
    store: bool,
) -> Result<Option<String>, ApiError> {
    let tx = conn.transaction()?;
    if let Err(err) = count_code_request(&tx, identifier, ip, now, limits)? {
        tx.commit()?;
        return Err(err);
    }
    let code = if store {
        let code = new_code();
        let salt = random_hex(16);
        // A new code replaces the old one and resets the attempt counter.
        tx.execute(
            "INSERT OR REPLACE INTO one_time_codes
                 (identifier_hash, salt, code_hash, expires_at, attempts, purpose)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![
                code_key(identifier, purpose),
                salt,
                code_hash(&salt, &code),
                now + limits.code_ttl_s,
                purpose.as_str()
            ],
        )?;
        Some(code)
    } else {
        None
    };
    tx.commit()?;
    Ok(code)
}

/// Applies the per-identifier and per-IP limits on sending codes and, within them, counts this
/// request. Every way of sending a code (sign-in, deletion, a contact change) shares them.
pub(crate) fn count_code_request(
    tx: &Transaction<'_>,
    identifier: &Identifier,
    ip: IpAddr,
    now: i64,
    limits: &Limits,
) -> rusqlite::Result<Result<(), ApiError>> {
    let id_key = identifier_key(identifier);
    let ip_key = sha256_hex(format!("ip:{ip}"));
    let window = limits.rate_window_s;
    tx.execute("DELETE FROM rate_events WHERE at <= ?1", [now - window])?;
    let waits = [
        rate_wait(tx, "code_identifier", &id_key, limits.code_requests_per_identifier, now, window)?,
        rate_wait(tx, "code_ip", &ip_key, limits.code_requests_per_ip, now, window)?,
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
    limits: &Limits,
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
        Some((_, _, _, attempts, _)) if attempts >= limits.code_max_attempts => Err(ApiError::TooManyAttempts),
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

/// Stores hashes of a fresh access/refresh pair for the session and returns the clear tokens
/// as the token response; sign-in and refresh answer with exactly this shape.
fn issue_tokens(
    tx: &Transaction<'_>,
    user_id: String,
    session_id: String,
    now: i64,
    limits: &Limits,
) -> rusqlite::Result<TokenResponse> {
    let access = random_hex(32);
    let refresh = random_hex(32);
    // A guest's session cannot outlive its window: no token of it does.
    let end: Option<i64> =
        tx.query_row("SELECT expires_at FROM users WHERE id = ?1", [&user_id], |r| r.get(0)).optional()?.flatten();
    let until = |ttl: i64| end.map_or(now + ttl, |end| (now + ttl).min(end));
    let access_expires_at = until(limits.access_ttl_s);
    tx.execute(
        "INSERT INTO access_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sha256_hex(&access), session_id, access_expires_at],
    )?;
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?1, ?2, ?3)",
        params![sha256_hex(&refresh), session_id, until(limits.refresh_ttl_s)],
    )?;
    // Housekeeping: expired tokens are useless and only take space.
    tx.execute("DELETE FROM access_tokens WHERE expires_at <= ?1", [now])?;
    Ok(TokenResponse {
        access_token: access,
        refresh_token: refresh,
        access_expires_in_s: (access_expires_at - now).max(0),
        user_id,
        session_id,
    })
}

/// Fresh tokens for an existing session (a guest's, made when it accepted an invitation).
pub(crate) async fn issue_session_tokens(
    db: &crate::db::Db,
    user_id: String,
    session_id: String,
    now: i64,
    limits: &Limits,
) -> Result<TokenResponse, ApiError> {
    let limits = limits.clone();
    db.call(move |conn| {
        let tx = conn.transaction()?;
        let tokens = issue_tokens(&tx, user_id, session_id, now, &limits)?;
        tx.commit()?;
        Ok(tokens)
    })
    .await
}

/// Exchange a one-time code for a session. Creates the account on first sign-in.
#[utoipa::path(
    post,
    path = "/v1/auth/sign-in",
    tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "`invalid_identifier`, `invalid_device_name` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_code` or `code_expired`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: request a new code", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let identifier = Identifier::parse(&body.identifier).ok_or(ApiError::InvalidIdentifier)?;
    let now = state.clock.now();
    let limits = state.limits.clone();
    let device_name = device_name(body.device_name.as_deref())?;
    let ip = peer.ip().to_string();
    let code = body.code;

    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            // Only a guess at a live code is a security event: those are bounded by the code
            // limits, while guesses with no code pending would let anyone fill the log.
            let guessable: bool = tx
                .query_row(
                    "SELECT attempts < ?2 FROM one_time_codes WHERE identifier_hash = ?1",
                    params![code_key(&identifier, CodePurpose::SignIn), limits.code_max_attempts],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(false);
            if let Err(err) = verify_code(&tx, &identifier, CodePurpose::SignIn, &code, now, &limits)? {
                if guessable {
                    // Under the account's random id, if there is one; never the address.
                    let mut event = NewEvent::new(EventKind::CodeFailed, now).detail(err.code());
                    if let Some(user_id) = find_user(&tx, &identifier)? {
                        event = event.subject(&user_id);
                    }
                    crate::security_log::record_in(&tx, &event)?;
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
            crate::security_log::record_in(&tx, &NewEvent::new(EventKind::SignIn, now).actor(&user_id))?;
            let tokens = issue_tokens(&tx, user_id, session_id, now, &limits)?;
            tx.execute("DELETE FROM one_time_codes WHERE expires_at <= ?1", [now])?;
            tx.execute("DELETE FROM contact_changes WHERE expires_at <= ?1", [now])?;
            tx.commit()?;
            tracing::info!(session_id = %tokens.session_id, "signed in");
            Ok(tokens)
        })
        .await
        .map(ApiJson)
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

struct RefreshRow {
    session_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    user_id: String,
}

/// Rotate a refresh token: returns a new access token and a new refresh token.
///
/// Refresh tokens are single-use. Presenting one twice means it leaked, so the whole session
/// is revoked.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `refresh_token_reused`", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let now = state.clock.now();
    let limits = state.limits.clone();
    let hash = sha256_hex(body.refresh_token.trim());

    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let row = tx
                .query_row(
                    "SELECT r.session_id, r.expires_at, r.used_at, s.revoked_at, s.user_id
                     FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                     WHERE r.token_hash = ?1",
                    [&hash],
                    |r| {
                        Ok(RefreshRow {
                            session_id: r.get(0)?,
                            expires_at: r.get(1)?,
                            used_at: r.get(2)?,
                            revoked_at: r.get(3)?,
                            user_id: r.get(4)?,
                        })
                    },
                )
                .optional()?;
            let Some(RefreshRow { session_id, expires_at, used_at, revoked_at, user_id }) = row else {
                return Err(ApiError::InvalidToken);
            };
            if used_at.is_some() {
                crate::devices::sqlite::revoke_device(&tx, &session_id, now)?;
                tx.commit()?;
                tracing::warn!(%session_id, "refresh token reused; session revoked");
                return Err(ApiError::RefreshTokenReused);
            }
            if revoked_at.is_some() || expires_at <= now {
                return Err(ApiError::InvalidToken);
            }
            tx.execute("UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2", params![now, hash])?;
            tx.execute("UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2", params![now, session_id])?;
            let tokens = issue_tokens(&tx, user_id, session_id, now, &limits)?;
            tx.commit()?;
            Ok(tokens)
        })
        .await
        .map(ApiJson)
}

/// Sign out: revokes the caller's session and all its tokens, and its device key and
/// credentials (its key is revoked for the locks).
#[utoipa::path(
    post,
    path = "/v1/auth/sign-out",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn sign_out(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if auth.guest {
                // A guest has one device and nothing else: leaving deletes all of it.
                crate::privacy::delete_account(&tx, &auth.user_id, now)?;
            } else {
                crate::devices::sqlite::revoke_device(&tx, &auth.session_id, now)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The authenticated caller, from `Authorization: Bearer <access token>`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user_id: String,
    pub session_id: String,
    /// An anonymous guest principal (see `invitations`): it may open its invited doors and
    /// see its data, nothing more.
    pub guest: bool,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(ApiError::Unauthorized);
        }
        let hash = sha256_hex(token);
        let now = state.clock.now();

        state
            .db
            .call(move |conn| {
                #[allow(clippy::type_complexity)]
                let row: Option<(String, i64, String, Option<i64>, i64, bool, Option<i64>)> = conn
                    .query_row(
                        "SELECT a.session_id, a.expires_at, s.user_id, s.revoked_at, s.last_seen_at,
                                u.kind = 'guest', u.expires_at
                         FROM access_tokens a JOIN sessions s ON s.id = a.session_id
                         JOIN users u ON u.id = s.user_id
                         WHERE a.token_hash = ?1",
                        [&hash],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                    )
                    .optional()?;
                let Some((session_id, expires_at, user_id, revoked_at, last_seen_at, guest, guest_end)) = row else {
                    return Err(ApiError::Unauthorized);
                };
                // A guest whose window has ended is gone, whether or not the purge ran yet.
                if revoked_at.is_some() || guest_end.is_some_and(|end| end < now) {
                    return Err(ApiError::Unauthorized);
                }
                // Distinct from `unauthorized`: tells the client to refresh, not sign in again.
                if expires_at <= now {
                    return Err(ApiError::TokenExpired);
                }
                if now - last_seen_at >= LAST_SEEN_GRANULARITY_S {
                    conn.execute("UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2", params![now, session_id])?;
                }
                Ok(AuthUser { user_id, session_id, guest })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let c = new_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn device_names() {
        assert_eq!(device_name(None).unwrap(), "Unknown device");
        assert_eq!(device_name(Some("   ")).unwrap(), "Unknown device");
        assert_eq!(device_name(Some(" Pixel ")).unwrap(), "Pixel");
        assert_eq!(device_name(Some(&"x".repeat(100))).unwrap().chars().count(), 64);
        assert!(matches!(device_name(Some("Pix\u{202E}el")), Err(ApiError::InvalidDeviceName(NameError::Invisible))));
        assert!(matches!(device_name(Some("Pix\u{7}el")), Err(ApiError::InvalidDeviceName(NameError::Control))));
    }
}
