//! Lock provisioning: a lock makes its own key and a request signed with it (SPEC §2.6); an
//! admin submits the request for a door and gets the lock's certificate to install. The
//! server only ever sees the public key. Replacing or decommissioning a lock revokes its
//! certificate: phones drop it at their next sync (`lock_public_key` in `/v1/me/doors`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{LockRecord, LockRefused};
use super::{door_number, log, whole, SiteAdmin};
use crate::authority::{b64, unb64};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::security_log::EventKind;
use crate::AppState;

/// Certificates are valid five years unless the admin says otherwise.
const DEFAULT_VALID_DAYS: u32 = 5 * 365;
const MAX_VALID_DAYS: u32 = 10 * 365;

/// A lock's provisioning request, submitted for a door.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    /// The lock's provisioning request (SPEC §2.6, 113 bytes), standard base64 (152
    /// characters; surrounding whitespace is ignored): what `porta-lockd provision-request`
    /// prints.
    #[schema(min_length = 152, max_length = 256)]
    pub request: String,
    /// How long the certificate is valid, in days (1 to 3650; default 1825).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 3650)]
    pub valid_days: Option<u32>,
}

/// A door's lock and its certificate: what the lock installs
/// (`porta-lockd install-certificate`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LockInstalled {
    pub lock_id: u32,
    pub door_id: u32,
    /// The lock's Ed25519 public key, base64.
    pub lock_public_key: String,
    /// The site-signed lock certificate (SPEC §2.2), base64.
    pub certificate: String,
    /// The site authority's public key, base64: the lock trusts credentials it signed.
    pub authority_public_key: String,
    /// Validity of the certificate (unix seconds, inclusive).
    pub not_before: u32,
    pub not_after: u32,
    pub provisioned_at: i64,
    /// The door's previous lock, whose certificate this replaced and revoked.
    pub replaced_lock_id: Option<u32>,
}

fn installed(l: &LockRecord, authority: &SigningKey) -> LockInstalled {
    LockInstalled {
        lock_id: l.lock_id,
        door_id: l.door,
        lock_public_key: b64(l.public_key),
        certificate: b64(&l.certificate),
        authority_public_key: b64(authority.verifying_key().to_bytes()),
        not_before: l.not_before,
        not_after: l.not_after,
        provisioned_at: l.provisioned_at,
        replaced_lock_id: l.replaced_lock_id,
    }
}

/// The key the site's certificates are signed with (configured or stored: see
/// [`crate::authority::keys`]).
async fn site_authority(state: &AppState, site_id: &str) -> Result<SigningKey, ApiError> {
    state.authority.site_key(site_id).await?.ok_or(ApiError::NotFound)
}

/// The request's lock key, once its signature shows the submitter's lock holds the private key.
fn checked_request(text: &str) -> Result<[u8; 32], ApiError> {
    let bytes = unb64(text.trim()).ok_or(ApiError::InvalidField { problem: "base64 in", field: "request".into() })?;
    let request = porta_protocol::ProvisioningRequest::from_bytes(&bytes).map_err(|_| ApiError::InvalidField {
        problem: "a provisioning request (SPEC §2.6) in",
        field: "request".into(),
    })?;
    request.verify().map_err(|_| ApiError::InvalidLockRequest)?;
    Ok(request.lock_key)
}

/// Install a lock at a door from the lock's own provisioning request.
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/doors/{door_id}/lock", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("door_id" = u32, Path)),
    request_body = LockRequest,
    responses(
        (status = 201, description = "Certified; a lock the door had is revoked", body = LockInstalled),
        (status = 400, description = "`invalid_request`: not a provisioning request, or `valid_days` out of range; \
            `invalid_lock_request`: its signature does not verify", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such door at a site you administer", body = ErrorBody),
        (status = 409, description = "`lock_key_in_use`: this key was certified before; a lock key is installed once",
            body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn install_lock(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, door)): Path<(String, String)>,
    ApiJson(body): ApiJson<LockRequest>,
) -> Result<(StatusCode, ApiJson<LockInstalled>), ApiError> {
    let door = door_number(&door)?;
    let valid_days = body.valid_days.unwrap_or(DEFAULT_VALID_DAYS);
    if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
        return Err(ApiError::InvalidField { problem: "1 to 3650 days in", field: "valid_days".into() });
    }
    let lock_key = checked_request(&body.request)?;
    let now = state.clock.now();
    let authority = site_authority(&state, admin.site_id()).await?;
    let lock = match state.admin.install_lock(admin.site_id(), door, lock_key, &authority, valid_days, now).await? {
        Ok(lock) => lock,
        Err(LockRefused::NoSuchDoor) => return Err(ApiError::NotFound),
        Err(LockRefused::KeyInUse) => return Err(ApiError::LockKeyInUse),
    };
    let subject = door.to_string();
    if let Some(old) = lock.replaced_lock_id {
        tracing::info!(door, old_lock = old, "lock replaced: old certificate revoked");
        log(&state, admin.event(EventKind::LockRevoked, now).subject(&subject).detail("replaced")).await?;
    }
    log(&state, admin.event(EventKind::LockProvisioned, now).subject(&subject)).await?;
    tracing::info!(door, lock_id = lock.lock_id, "lock provisioned");
    Ok((StatusCode::CREATED, ApiJson(installed(&lock, &authority))))
}

/// The door's current lock.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/doors/{door_id}/lock", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("door_id" = u32, Path)),
    responses(
        (status = 200, description = "The lock and its certificate", body = LockInstalled),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such door at a site you administer, or it has no lock",
            body = ErrorBody),
    )
)]
pub async fn door_lock(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, door)): Path<(String, String)>,
) -> Result<ApiJson<LockInstalled>, ApiError> {
    let door = door_number(&door)?;
    let lock = state.admin.door_lock(admin.site_id(), door).await?.ok_or(ApiError::NotFound)?;
    let authority = site_authority(&state, admin.site_id()).await?;
    Ok(ApiJson(installed(&lock, &authority)))
}

/// Decommission the door's lock: its certificate is revoked and the door has no lock.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/doors/{door_id}/lock", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("door_id" = u32, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such door at a site you administer, or it has no lock",
            body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn decommission_lock(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, door)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let door = door_number(&door)?;
    let now = state.clock.now();
    let lock_id = state.admin.decommission_lock(admin.site_id(), door, now).await?.ok_or(ApiError::NotFound)?;
    tracing::info!(door, lock_id, "lock decommissioned: certificate revoked");
    log(&state, admin.event(EventKind::LockRevoked, now).subject(&door.to_string()).detail("decommissioned")).await?;
    Ok(StatusCode::NO_CONTENT)
}
