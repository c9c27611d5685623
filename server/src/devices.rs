//! The caller's devices: device-key enrollment (one Ed25519 key per session, created on the
//! phone), the list of signed-in devices, and revoking one.
//!
//! A device is a session: the device id is the session id. Revoking a device (or signing
//! out, or a detected refresh-token reuse) revokes the session and puts its device key and
//! every unexpired credential issued for it on the site's revocation list.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ed25519_dalek::{Signature, VerifyingKey};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{revoke_session, AuthUser};
use crate::authority::{revoke_device_key, unb64};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

/// Domain-separation prefix of the enrollment proof.
pub const ENROLL_CONTEXT: &[u8] = b"porta-enroll-v1";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The device's Ed25519 public key (32 bytes), base64.
    pub public_key: String,
    /// Ed25519 signature (64 bytes), base64, by the device key over
    /// `"porta-enroll-v1" || session_id (UTF-8) || public_key`.
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// The device id (equal to the session id).
    pub device_id: String,
}

/// Checks the proof of possession. Malformed input is `invalid_request`, a key or signature
/// that does not verify is `invalid_proof`.
pub fn verify_enrollment(session_id: &str, public_key: &[u8], signature: &[u8]) -> Result<[u8; 32], ApiError> {
    let public_key: [u8; 32] = public_key.try_into().map_err(|_| ApiError::InvalidRequest)?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| ApiError::InvalidRequest)?;
    let key = VerifyingKey::from_bytes(&public_key).map_err(|_| ApiError::InvalidProof)?;
    if key.is_weak() {
        return Err(ApiError::InvalidProof);
    }
    let mut message = Vec::with_capacity(ENROLL_CONTEXT.len() + session_id.len() + 32);
    message.extend_from_slice(ENROLL_CONTEXT);
    message.extend_from_slice(session_id.as_bytes());
    message.extend_from_slice(&public_key);
    key.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(|_| ApiError::InvalidProof)?;
    Ok(public_key)
}

/// Enroll this session's device key.
///
/// Re-enrolling the same key is idempotent; a session has at most one key and a key
/// belongs to at most one session.
#[utoipa::path(
    post,
    path = "/v1/me/device-key",
    tag = "devices",
    security(("bearer" = [])),
    request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled (or already enrolled with this key)", body = EnrollResponse),
        (status = 400, description = "`invalid_proof` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 409, description = "`already_enrolled` (another key for this session) or `key_in_use` (key of another session)", body = ErrorBody),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, ApiJson<EnrollResponse>), ApiError> {
    let public_key = unb64(&body.public_key).ok_or(ApiError::InvalidRequest)?;
    let signature = unb64(&body.signature).ok_or(ApiError::InvalidRequest)?;
    let public_key = verify_enrollment(&auth.session_id, &public_key, &signature)?;
    let now = state.clock.now();
    let device_id = auth.session_id.clone();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let current: Option<Vec<u8>> = tx
                .query_row("SELECT public_key FROM device_keys WHERE session_id = ?1", [&auth.session_id], |r| r.get(0))
                .optional()?;
            match current {
                Some(key) if key == public_key => {}
                Some(_) => return Err(ApiError::AlreadyEnrolled),
                None => {
                    let taken = tx
                        .query_row("SELECT 1 FROM device_keys WHERE public_key = ?1", [public_key.to_vec()], |_| Ok(()))
                        .optional()?
                        .is_some();
                    if taken {
                        return Err(ApiError::KeyInUse);
                    }
                    tx.execute(
                        "INSERT INTO device_keys (session_id, user_id, public_key, created_at)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![auth.session_id, auth.user_id, public_key.to_vec(), now],
                    )?;
                    tracing::info!(session_id = %auth.session_id, "device key enrolled");
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, ApiJson(EnrollResponse { device_id })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    /// The device id (its session id).
    pub device_id: String,
    #[schema(example = "Ada's iPhone")]
    pub device_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds (refreshed at most once a minute).
    pub last_seen_at: i64,
    /// Client IP at sign-in.
    pub ip: String,
    /// Whether this is the device making the request.
    pub current: bool,
}

/// The caller's signed-in devices, most recently seen first.
#[utoipa::path(
    get,
    path = "/v1/me/devices",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Devices", body = Vec<Device>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn list_devices(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<Vec<Device>>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT s.id, s.device_name, s.created_at, s.last_seen_at, s.ip FROM sessions s
                 WHERE s.user_id = ?1 AND s.revoked_at IS NULL
                   AND EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.session_id = s.id
                               AND r.used_at IS NULL AND r.expires_at > ?2)
                 ORDER BY s.last_seen_at DESC, s.created_at DESC",
            )?;
            let rows = stmt.query_map(params![auth.user_id, now], |r| {
                let device_id: String = r.get(0)?;
                Ok(Device {
                    current: device_id == auth.session_id,
                    device_id,
                    device_name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    ip: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .map(ApiJson)
}

/// Revoke one of the caller's devices: signs it out and revokes its device key and
/// credentials (they go on the next revocation list).
#[utoipa::path(
    delete,
    path = "/v1/me/devices/{device_id}",
    tag = "devices",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "A device id from `GET /v1/me/devices`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "Not one of the caller's active devices", body = ErrorBody),
    )
)]
pub async fn delete_device(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(device_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let owned = tx
                .query_row(
                    "SELECT 1 FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                    params![device_id, auth.user_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if !owned {
                return Err(ApiError::NotFound);
            }
            revoke_device(&tx, &device_id, now)?;
            tx.commit()?;
            tracing::info!(%device_id, "device revoked");
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the session and its device key, at every site where a credential issued for it
/// is still valid.
pub fn revoke_device(tx: &Transaction<'_>, session_id: &str, now: i64) -> rusqlite::Result<()> {
    revoke_session(tx, session_id, now)?;
    let key: Option<Vec<u8>> = tx
        .query_row(
            "UPDATE device_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE session_id = ?2
             RETURNING public_key",
            params![now, session_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(key) = key else {
        return Ok(());
    };
    let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
        return Ok(());
    };
    // Per site, the key until its last credential expires: one entry for all of them.
    let sites: Vec<(String, i64)> = {
        let mut stmt = tx.prepare(
            "SELECT site_id, MAX(not_after) FROM credentials
             WHERE session_id = ?1 AND not_after >= ?2 GROUP BY site_id",
        )?;
        let rows = stmt.query_map(params![session_id, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (site_id, last_not_after) in sites {
        revoke_device_key(tx, &site_id, &key, last_not_after, now)?;
    }
    Ok(())
}
