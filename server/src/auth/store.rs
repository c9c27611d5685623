//! What sign-in and sessions need from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn AuthStore>` and never see SQL; each backend runs the shared suite in
//! [`super::store_tests`].
//!
//! Codes and tokens are only ever stored as hashes. Each method is one atomic unit: a code's
//! attempt count, a refresh token's single use and a rate slot are taken together with the
//! write they guard, so two server instances on one database agree on them.

use std::net::IpAddr;

use async_trait::async_trait;

use super::CodePurpose;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::Limits;

/// The limits on one-time codes (from [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    /// Lifetime of a code.
    pub ttl_s: i64,
    /// Wrong guesses allowed before the code is dead.
    pub max_attempts: u32,
    /// Code requests per identifier per window.
    pub per_identifier: u32,
    /// Code requests per client IP per window.
    pub per_ip: u32,
    pub window_s: i64,
}

impl From<&Limits> for CodeLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            ttl_s: limits.code_ttl_s,
            max_attempts: limits.code_max_attempts,
            per_identifier: limits.code_requests_per_identifier,
            per_ip: limits.code_requests_per_ip,
            window_s: limits.rate_window_s,
        }
    }
}

/// How long fresh tokens live. A guest's tokens never outlive the guest's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access_s: i64,
    pub refresh_s: i64,
}

impl From<&Limits> for TokenLifetimes {
    fn from(limits: &Limits) -> Self {
        Self { access_s: limits.access_ttl_s, refresh_s: limits.refresh_ttl_s }
    }
}

/// A fresh access/refresh pair of a session, in the clear (only their hashes are stored).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: i64,
    pub user_id: String,
    pub session_id: String,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tokens are secrets; the ids are random and say nothing about the person.
        f.debug_struct("SessionTokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A sign-in attempt: the code sent to `identifier`, and the device signing in.
#[derive(Clone)]
pub struct SignIn {
    pub identifier: Identifier,
    pub code: String,
    pub device_name: String,
    pub ip: String,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token is used up; here is the session's next pair.
    Rotated(SessionTokens),
    /// No such token.
    Unknown,
    /// The token's session is revoked, or the token expired. Nothing changed.
    Dead,
    /// The token had been used before: it leaked, so its session (and device key) is now
    /// revoked.
    Reused { session_id: String },
}

/// What an access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    pub session_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub session_revoked: bool,
    pub last_seen_at: i64,
    pub guest: bool,
    /// A guest's end of window.
    pub guest_until: Option<i64>,
}

#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Counts a code request for `identifier` from `ip` against the per-identifier and per-IP
    /// limits (errs with `rate_limited` if either is used up, counting nothing) and, within
    /// them, stores `code` as the pending code for `purpose`: it replaces a pending one and
    /// starts with no attempts. With no code the request is only counted.
    async fn issue_code(
        &self,
        identifier: &Identifier,
        purpose: CodePurpose,
        ip: IpAddr,
        code: Option<&str>,
        now: i64,
        limits: CodeLimits,
    ) -> Result<(), ApiError>;

    /// Uses up the pending sign-in code and opens a session with fresh tokens, creating the
    /// account on its first sign-in. A wrong code counts against the code (`invalid_code`,
    /// then `too_many_attempts` once `max_attempts` were wrong; `code_expired` past its
    /// time) and, while the code could still be guessed, is recorded as a security event.
    async fn sign_in(
        &self,
        attempt: &SignIn,
        now: i64,
        limits: CodeLimits,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError>;

    /// A fresh pair for an existing session (a guest's, made when it accepted an invitation).
    async fn issue_tokens(
        &self,
        user_id: &str,
        session_id: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<SessionTokens, ApiError>;

    /// Uses up the refresh token with this hash and issues the session's next pair, at most
    /// once: of two racing rotations of one token, one gets `Rotated` and the other `Reused`.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        lifetimes: TokenLifetimes,
    ) -> Result<Rotation, ApiError>;

    /// The session behind the access token with this hash, if there is one.
    async fn access_token(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>, ApiError>;

    /// Records that the session was seen at `now`.
    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), ApiError>;

    /// Deletes a guest and everything of it (its one session, device key and credentials).
    async fn delete_guest(&self, user_id: &str, now: i64) -> Result<(), ApiError>;
}
