//! The partner API: a third party a site works with (a caretaker's system, a booking tool)
//! reads, with a key the site's admin made, exactly what the privacy notice promises it:
//! the names and pseudonymous ids of the people with access at the site, and the access log
//! of its doors. Nothing else, nothing of another site, and nothing it could write.
//!
//! - Keys are per site, managed by its admins under `/v1/admin/sites/{site_id}/partner-keys`.
//!   The secret (`porta_pk_…`) is shown once, when made; only its SHA-256 is stored, and a
//!   key is found by that hash.
//! - A partner sends `Authorization: Bearer porta_pk_…`. The [`PartnerKey`] extractor is the
//!   one place that decides: unknown, garbled and revoked keys are refused alike (`401`), and
//!   the key's site is the only site any answer comes from (no parameter names a site).
//! - A person's id for partners is `HMAC-SHA256(server key, site id, user id)`, so it is
//!   stable for the site whatever key reads it, differs between sites, and cannot be turned
//!   back into the account (no internal id, email or phone is ever sent).
//! - Reads are rate limited per key (`Limits::partner_reads_per_window`); every call with a
//!   live key (served, or refused by the limit: detail `rate_limited`), and every key made or
//!   revoked, is a security event naming the key's id, never its secret.
//!
//! Storage is behind [`store::PartnerStore`] (SQLite: [`sqlite`]).

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::{IntoParams, ToSchema};

use self::store::{LogQuery, PartnerKeyRecord, PartnerStore};
use crate::admin::SiteAdmin;
use crate::auth::sha256_hex;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::security_log::{EventKind, NewEvent};
use crate::AppState;

/// What every partner key starts with, so it is never mistaken for a user's token.
pub const KEY_PREFIX: &str = "porta_pk_";
/// Most access events per page.
pub const MAX_EVENTS_PER_PAGE: u32 = 500;
/// Longest key label.
pub const MAX_LABEL_CHARS: usize = 100;

/// The partner domain: its store and the key for pseudonymous ids.
pub struct Partners {
    store: Arc<dyn PartnerStore>,
    pseudonym_key: [u8; 32],
}

impl Partners {
    pub async fn new(store: Arc<dyn PartnerStore>) -> Result<Self, ApiError> {
        let pseudonym_key = store.pseudonym_key().await?;
        Ok(Self { store, pseudonym_key })
    }

    /// The person's id for partners of `site_id`.
    fn pseudonym(&self, site_id: &str, user_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.pseudonym_key).expect("HMAC takes any key length");
        // Length-prefixed, so no (site, user) pair can collide with another.
        mac.update(&(site_id.len() as u64).to_be_bytes());
        mac.update(site_id.as_bytes());
        mac.update(user_id.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("pp_{}", hex::encode(&tag[..16]))
    }
}

/// A caller holding a live partner key: the key's id and its site.
pub struct PartnerKey {
    pub key_id: String,
    pub site_id: String,
}

impl PartnerKey {
    fn read_event(&self, now: i64, what: &'static str) -> NewEvent {
        NewEvent::new(EventKind::PartnerRead, now).site(&self.site_id).subject(&self.key_id).detail(what)
    }
}

impl FromRequestParts<AppState> for PartnerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
        let (scheme, secret) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
        let secret = secret.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || !secret.starts_with(KEY_PREFIX) {
            return Err(ApiError::Unauthorized);
        }
        let now = state.clock.now();
        // Looked up by hash: the secret itself is never compared, stored or logged.
        let key = state.partner.store.use_key(&sha256_hex(secret), now).await?.ok_or(ApiError::Unauthorized)?;
        let limits = &state.limits;
        let key = PartnerKey { key_id: key.id, site_id: key.site_id };
        let counted =
            state.partner.store.count_read(&key.key_id, now, limits.partner_window_s, limits.partner_reads_per_window);
        if let Err(refused) = counted.await {
            // A refused read by a known key is logged too: the site sees who hammers it.
            if matches!(refused, ApiError::RateLimited { .. }) {
                state.security.record(key.read_event(now, "rate_limited")).await?;
            }
            return Err(refused);
        }
        Ok(key)
    }
}

// ---- keys, for the site's admins ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartnerKey {
    /// Who the key is for, e.g. the partner's name: 1 to 100 visible characters.
    #[schema(
        example = "Caretaker AS",
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerKeyView {
    pub id: String,
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPartnerKey {
    #[serde(flatten)]
    pub key: PartnerKeyView,
    /// The key to give the partner, shown only now: the server keeps only its hash.
    #[schema(example = "porta_pk_3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    pub secret: String,
}

fn key_view(key: &PartnerKeyRecord) -> PartnerKeyView {
    PartnerKeyView {
        id: key.id.clone(),
        label: key.label.clone(),
        created_at: key.created_at,
        last_used_at: key.last_used_at,
        revoked_at: key.revoked_at,
    }
}

/// The site's partner API keys, revoked ones included; never their secrets.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/partner-keys", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "Keys, oldest first", body = Vec<PartnerKeyView>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    admin: SiteAdmin,
) -> Result<ApiJson<Vec<PartnerKeyView>>, ApiError> {
    Ok(ApiJson(state.partner.store.keys(admin.site_id()).await?.iter().map(key_view).collect()))
}

/// Make a partner API key for the site. The answer carries the secret, once.
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/partner-keys", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = NewPartnerKey,
    responses(
        (status = 201, description = "Made; `secret` is shown only here", body = CreatedPartnerKey),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<NewPartnerKey>,
) -> Result<(StatusCode, ApiJson<CreatedPartnerKey>), ApiError> {
    let label = crate::identity::check_name(&body.label, MAX_LABEL_CHARS)
        .map_err(|_| ApiError::InvalidField { problem: "1 to 100 visible characters in", field: "label".into() })?;
    let now = state.clock.now();
    let mut random = [0u8; 32];
    OsRng.fill_bytes(&mut random);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random));
    let key = PartnerKeyRecord {
        id: uuid::Uuid::new_v4().to_string(),
        site_id: admin.site_id().to_owned(),
        label,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    state.partner.store.create_key(&key, &sha256_hex(&secret)).await?;
    let event = NewEvent::new(EventKind::PartnerKeyCreated, now).site(&key.site_id).actor(&admin.user_id);
    state.security.record(event.subject(&key.id)).await?;
    Ok((StatusCode::CREATED, ApiJson(CreatedPartnerKey { key: key_view(&key), secret })))
}

/// Revoke a partner API key: it is refused from now on. It stays listed, as revoked.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/partner-keys/{key_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("key_id" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    if !state.partner.store.revoke_key(admin.site_id(), &key_id, now).await? {
        return Err(ApiError::NotFound);
    }
    let event = NewEvent::new(EventKind::PartnerKeyRevoked, now).site(admin.site_id()).actor(&admin.user_id);
    state.security.record(event.subject(&key_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- the partner API ----

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerPerson {
    /// Stable for this site, whichever key reads it; not the account's id.
    #[schema(example = "pp_5f0c6e1c9b2d4a7e8f1a2b3c4d5e6f70")]
    pub pseudonymous_id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerPeople {
    pub people: Vec<PartnerPerson>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartnerDecision {
    Opened,
    Denied,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerAccessEvent {
    /// Increasing; page with `before`.
    pub id: i64,
    /// Unix seconds (the lock's time of the decision).
    pub at: i64,
    pub door_id: u32,
    pub door_name: String,
    pub decision: PartnerDecision,
    /// Absent when the credential's owner is not known.
    pub pseudonymous_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerAccessLog {
    /// Newest first.
    pub events: Vec<PartnerAccessEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessLogQuery {
    /// Only events at or after this Unix time.
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// Only events with a smaller id: pass the previous page's `next_before`.
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Events per page: 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The people with access at the key's site: residents of its units and holders of grants to
/// its doors, each by name and pseudonymous id.
#[utoipa::path(
    get, path = "/v1/partner/people", tag = "partner", security(("partner_key" = [])),
    responses(
        (status = 200, description = "People", body = PartnerPeople),
        (status = 401, description = "`unauthorized`: no live partner key", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many reads with this key", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn people(State(state): State<AppState>, key: PartnerKey) -> Result<ApiJson<PartnerPeople>, ApiError> {
    let now = state.clock.now();
    let people = state.partner.store.people(&key.site_id).await?;
    let mut people: Vec<PartnerPerson> = people
        .into_iter()
        .map(|p| PartnerPerson { pseudonymous_id: state.partner.pseudonym(&key.site_id, &p.user_id), name: p.name })
        .collect();
    // Ordered by pseudonym: the order tells nothing about the accounts.
    people.sort_by(|a, b| a.pseudonymous_id.cmp(&b.pseudonymous_id));
    state.security.record(key.read_event(now, "people")).await?;
    Ok(ApiJson(PartnerPeople { people }))
}

/// The access log of the key's site's doors, newest first, in pages.
#[utoipa::path(
    get, path = "/v1/partner/access-log", tag = "partner", security(("partner_key" = [])),
    params(AccessLogQuery),
    responses(
        (status = 200, description = "Events, newest first", body = PartnerAccessLog),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no live partner key", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many reads with this key", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn access_log(
    State(state): State<AppState>,
    key: PartnerKey,
    query: Result<Query<AccessLogQuery>, QueryRejection>,
) -> Result<ApiJson<PartnerAccessLog>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::InvalidRequest)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PER_PAGE).contains(&limit) {
        return Err(ApiError::InvalidField { problem: "1 to 500 in", field: "limit".into() });
    }
    for (value, field) in [(query.since, "since"), (query.before, "before")] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::InvalidField { problem: "0 or more in", field: field.into() });
        }
    }
    let now = state.clock.now();
    let log_query = LogQuery { since: query.since, before: query.before, limit, now };
    let events = state.partner.store.access_log(&key.site_id, log_query).await?;
    let next_before = (events.len() == limit as usize).then(|| events.last().map(|e| e.id)).flatten();
    let events = events
        .into_iter()
        .map(|e| PartnerAccessEvent {
            id: e.id,
            at: e.at,
            door_id: e.door_id,
            door_name: e.door_name,
            decision: if e.opened { PartnerDecision::Opened } else { PartnerDecision::Denied },
            pseudonymous_id: e.user_id.map(|u| state.partner.pseudonym(&key.site_id, &u)),
        })
        .collect();
    state.security.record(key.read_event(now, "access_log")).await?;
    Ok(ApiJson(PartnerAccessLog { events, next_before }))
}
