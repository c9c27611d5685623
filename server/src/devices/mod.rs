//! The caller's devices: device-key enrollment (one Ed25519 key per session, created on the
//! phone), the list of signed-in devices, and revoking one.
//!
//! A device is a session: the device id is the session id. Revoking a device (or signing
//! out, or a detected refresh-token reuse) revokes the session and puts its device key and
//! its device key on the site's revocations until its last credential expires.
//!
//! Keys and sessions are kept by a [`store::DeviceStore`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::authority::unb64;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;
use store::Enrollment;

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

/// Domain-separation prefix of the enrollment proof.
pub const ENROLL_CONTEXT: &[u8] = b"porta-enroll-v1";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The device's Ed25519 public key (32 bytes), base64.
    #[schema(format = Byte, pattern = r"^[A-Za-z0-9+/]{43}=$")]
    pub public_key: String,
    /// Ed25519 signature (64 bytes), base64, by the device key over
    /// `"porta-enroll-v1" || session_id (UTF-8) || public_key`.
    #[schema(format = Byte, pattern = r"^[A-Za-z0-9+/]{86}==$")]
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
    match state.devices.enroll_key(&auth.session_id, &auth.user_id, public_key, now).await? {
        Enrollment::Enrolled => tracing::info!(session_id = %auth.session_id, "device key enrolled"),
        Enrollment::AlreadyThisKey => {}
        Enrollment::SessionHasOtherKey => return Err(ApiError::AlreadyEnrolled),
        Enrollment::KeyOfOtherSession => return Err(ApiError::KeyInUse),
    }
    let device_id = auth.session_id;
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
    let devices = state.devices.active_devices(&auth.user_id, now).await?;
    let devices = devices
        .into_iter()
        .map(|d| Device {
            current: d.device_id == auth.session_id,
            device_id: d.device_id,
            device_name: d.device_name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            ip: d.ip,
        })
        .collect();
    Ok(ApiJson(devices))
}

/// Revoke one of the caller's devices: signs it out and revokes its device key and
/// credentials (its key is revoked for the locks).
#[utoipa::path(
    delete,
    path = "/v1/me/devices/{device_id}",
    tag = "devices",
    security(("bearer" = [])),
    params(("device_id" = String, Path, format = Uuid, description = "A device id from `GET /v1/me/devices`")),
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
    if !state.devices.revoke_device(&auth.user_id, &device_id, now).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(%device_id, "device revoked");
    Ok(StatusCode::NO_CONTENT)
}
