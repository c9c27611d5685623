//! Passwordless sign-in with one-time codes, token issuing and rotation, and the bearer
//! extractor that guards `/v1/me`.
//!
//! Codes, rate slots, sessions and tokens are kept by an [`store::AuthStore`]; this module
//! decides what to allow and which error to give.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::{is_disallowed_in_name, Identifier, NameError};
use crate::AppState;
use store::{Rotation, SessionTokens, SignIn};

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

/// Kept at its old path for the doors domain's SQLite store (moved there on another branch),
/// so the two branches merge without a compile fix.
pub(crate) use sqlite::find_or_create_user;

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

impl TokenResponse {
    /// The answer of sign-in, refresh and a guest's acceptance: all have exactly this shape.
    pub(crate) fn new(tokens: SessionTokens, now: i64) -> Self {
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_in_s: (tokens.access_expires_at - now).max(0),
            user_id: tokens.user_id,
            session_id: tokens.session_id,
        }
    }
}

/// Fresh tokens for an existing session (a guest's, made when it accepted an invitation).
pub(crate) async fn issue_session_tokens(
    state: &AppState,
    user_id: &str,
    session_id: &str,
    now: i64,
) -> Result<TokenResponse, ApiError> {
    let tokens = state.auth.issue_tokens(user_id, session_id, now, (&state.limits).into()).await?;
    Ok(TokenResponse::new(tokens, now))
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
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<(StatusCode, ApiJson<CodeResponse>), ApiError> {
    let identifier = Identifier::parse(&body.identifier).ok_or(ApiError::InvalidIdentifier)?;
    let now = state.clock.now();
    let code = new_code();
    state.auth.issue_code(&identifier, CodePurpose::SignIn, client, Some(&code), now, (&state.limits).into()).await?;
    code_sent(&state, &identifier, Some(code)).await
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
    pub(crate) fn as_str(self) -> &'static str {
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
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<SignInRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let identifier = Identifier::parse(&body.identifier).ok_or(ApiError::InvalidIdentifier)?;
    let now = state.clock.now();
    let attempt = SignIn {
        identifier,
        code: body.code,
        device_name: device_name(body.device_name.as_deref())?,
        ip: client.to_string(),
    };
    let limits = &state.limits;
    let tokens = state.auth.sign_in(&attempt, now, limits.into(), limits.into()).await?;
    tracing::info!(session_id = %tokens.session_id, "signed in");
    Ok(ApiJson(TokenResponse::new(tokens, now)))
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
    let hash = sha256_hex(body.refresh_token.trim());
    match state.auth.rotate_refresh_token(&hash, now, (&state.limits).into()).await? {
        Rotation::Rotated(tokens) => Ok(ApiJson(TokenResponse::new(tokens, now))),
        Rotation::Unknown | Rotation::Dead => Err(ApiError::InvalidToken),
        Rotation::Reused { session_id } => {
            tracing::warn!(%session_id, "refresh token reused; session revoked");
            Err(ApiError::RefreshTokenReused)
        }
    }
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
    if auth.guest {
        // A guest has one device and nothing else: leaving deletes all of it.
        state.auth.delete_guest(&auth.user_id, now).await?;
    } else {
        // Already revoked by a racing sign-out: signed out all the same.
        state.devices.revoke_device(&auth.user_id, &auth.session_id, now).await?;
    }
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

        let record = state.auth.access_token(&hash).await?.ok_or(ApiError::Unauthorized)?;
        // A guest whose window has ended is gone, whether or not the purge ran yet.
        if record.session_revoked || record.guest_until.is_some_and(|end| end < now) {
            return Err(ApiError::Unauthorized);
        }
        // Distinct from `unauthorized`: tells the client to refresh, not sign in again.
        if record.expires_at <= now {
            return Err(ApiError::TokenExpired);
        }
        if now - record.last_seen_at >= LAST_SEEN_GRANULARITY_S {
            state.auth.touch_session(&record.session_id, now).await?;
        }
        Ok(AuthUser { user_id: record.user_id, session_id: record.session_id, guest: record.guest })
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
