//! The one error type every handler returns, and its JSON wire shape.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Body of every error response. `code` is stable and meant for programs; `message` is for
/// humans and never contains personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case error code, e.g. `invalid_code`.
    #[schema(example = "invalid_code")]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Only on `rate_limited`: seconds until a new request may succeed (same as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request is malformed")]
    InvalidRequest,
    /// `invalid_request` that names the offending field of a JSON body (never its value).
    #[error("the request is malformed: {problem} `{field}`")]
    InvalidField { problem: &'static str, field: String },
    #[error("the identifier must be an email address or a phone number in international format")]
    InvalidIdentifier,
    #[error("too many requests; try again later")]
    RateLimited { retry_after_s: i64 },
    #[error("the code is wrong")]
    InvalidCode,
    #[error("the code has expired; request a new one")]
    CodeExpired,
    #[error("too many wrong attempts; request a new code")]
    TooManyAttempts,
    #[error("the token is unknown or expired")]
    InvalidToken,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("authentication required")]
    Unauthorized,
    #[error("the access token has expired")]
    TokenExpired,
    /// The profile name; the reason says what is wrong, never what was typed.
    #[error("the name is not valid: {0}")]
    InvalidName(crate::identity::NameError),
    /// The device name given at sign-in.
    #[error("the device name is not valid: {0}")]
    InvalidDeviceName(crate::identity::NameError),
    #[error("the email address is not valid")]
    InvalidEmail,
    #[error("the phone number is not valid")]
    InvalidPhone,
    #[error("the email address or phone number is already in use")]
    AlreadyInUse,
    #[error("only PNG and JPEG images are accepted")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("forbidden")]
    Forbidden,
    #[error("the proof of possession of the device key does not verify")]
    InvalidProof,
    #[error("this session already has a different device key")]
    AlreadyEnrolled,
    #[error("change email or phone one at a time (one code proves one address), and keep at least one")]
    ContactChangeConflict,
    #[error("this device key is enrolled for another session")]
    KeyInUse,
    #[error("the provisioning request's signature does not verify: it was not made by the lock's key")]
    InvalidLockRequest,
    #[error("this lock key was certified before: a lock is installed once, and comes back with a new key")]
    LockKeyInUse,
    #[error("enroll a device key first")]
    DeviceNotEnrolled,
    #[error("an access record is malformed or its signature does not verify")]
    InvalidRecord,
    #[error("too many access events in one batch")]
    TooManyEvents,
    #[error("no such door")]
    UnknownDoor,
    #[error("the schedule is not valid")]
    InvalidSchedule,
    #[error("the request took too long")]
    RequestTimeout,
    #[error("no invitation has this code")]
    InvitationUnknown,
    #[error("the invitation has expired")]
    InvitationExpired,
    #[error("every use of the invitation has been taken")]
    InvitationUsedUp,
    #[error("the invitation was revoked by the person who sent it")]
    InvitationRevoked,
    #[error("the invitation's window is not valid: it must end after it starts, not lie in the past, and not be longer than the site allows")]
    InvalidWindow,
    /// The invitation's label; the reason says what is wrong, never what was typed.
    #[error("the label is not valid: {0}")]
    InvalidLabel(crate::identity::NameError),
    #[error("you can only invite to doors you may open yourself for the whole window")]
    DoorNotAllowed,
    #[error("guests cannot do this")]
    GuestAccount,
    #[error("you have as many guests and open invitations as allowed; revoke some first")]
    TooManyGuests,
    #[error("this is your own invitation: hand it to your guest")]
    OwnInvitation,
    #[error("the building does not let tenants invite guests")]
    InvitationsNotAllowed,
    /// The detail is logged, never sent.
    /// The email or SMS provider did not take the code; nothing says whether the address exists.
    #[error("the code could not be sent just now; try again shortly")]
    DeliveryFailed,
    #[error("internal server error")]
    Internal(String),
}

/// How long a client should wait before asking for a code again after a failed delivery.
const DELIVERY_RETRY_AFTER_S: i64 = 30;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidRequest | InvalidIdentifier | InvalidName(_) | InvalidDeviceName(_) | InvalidEmail
            | InvalidPhone | InvalidProof | InvalidRecord | TooManyEvents | UnknownDoor | InvalidSchedule
            | InvalidWindow | InvalidLabel(_) | InvalidLockRequest => StatusCode::BAD_REQUEST,
            InvitationUnknown => StatusCode::NOT_FOUND,
            InvitationExpired | InvitationUsedUp | InvitationRevoked => StatusCode::GONE,
            DoorNotAllowed | GuestAccount | InvitationsNotAllowed => StatusCode::FORBIDDEN,
            InvalidField { .. } => StatusCode::BAD_REQUEST,
            RateLimited { .. } | TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            InvalidCode | CodeExpired | InvalidToken | RefreshTokenReused | Unauthorized | TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            AlreadyInUse
            | AlreadyEnrolled
            | ContactChangeConflict
            | KeyInUse
            | LockKeyInUse
            | DeviceNotEnrolled
            | TooManyGuests
            | OwnInvitation => StatusCode::CONFLICT,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Forbidden => StatusCode::FORBIDDEN,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            DeliveryFailed => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidRequest | InvalidField { .. } => "invalid_request",
            InvalidIdentifier => "invalid_identifier",
            RateLimited { .. } => "rate_limited",
            InvalidCode => "invalid_code",
            CodeExpired => "code_expired",
            TooManyAttempts => "too_many_attempts",
            InvalidToken => "invalid_token",
            RefreshTokenReused => "refresh_token_reused",
            Unauthorized => "unauthorized",
            TokenExpired => "token_expired",
            InvalidName(_) => "invalid_name",
            InvalidDeviceName(_) => "invalid_device_name",
            InvalidEmail => "invalid_email",
            InvalidPhone => "invalid_phone",
            AlreadyInUse => "already_in_use",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Forbidden => "forbidden",
            InvalidProof => "invalid_proof",
            AlreadyEnrolled => "already_enrolled",
            ContactChangeConflict => "contact_change_conflict",
            KeyInUse => "key_in_use",
            InvalidLockRequest => "invalid_lock_request",
            LockKeyInUse => "lock_key_in_use",
            DeviceNotEnrolled => "device_not_enrolled",
            InvalidRecord => "invalid_record",
            TooManyEvents => "too_many_events",
            UnknownDoor => "unknown_door",
            InvalidSchedule => "invalid_schedule",
            RequestTimeout => "request_timeout",
            InvitationUnknown => "invitation_unknown",
            InvitationExpired => "invitation_expired",
            InvitationUsedUp => "invitation_used_up",
            InvitationRevoked => "invitation_revoked",
            InvalidWindow => "invalid_window",
            InvalidLabel(_) => "invalid_label",
            DoorNotAllowed => "door_not_allowed",
            GuestAccount => "guest_account",
            TooManyGuests => "too_many_guests",
            OwnInvitation => "own_invitation",
            DeliveryFailed => "delivery_failed",
            InvitationsNotAllowed => "invitations_not_allowed",
            Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let retry_after_s = match self {
            ApiError::RateLimited { retry_after_s } => Some(retry_after_s.max(1)),
            ApiError::DeliveryFailed => Some(DELIVERY_RETRY_AFTER_S),
            _ => None,
        };
        let body = ErrorBody { code: self.code().to_owned(), message: self.to_string(), retry_after_s };
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(secs) = retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(format!("database: {e}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // Axum would answer in plain text; clients only ever parse our JSON shape.
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge;
        }
        ApiError::from_serde(&rejection.body_text())
    }
}

impl ApiError {
    /// `invalid_request` for a body that does not fit its type, naming the field if serde did.
    fn from_serde(error: &str) -> Self {
        for problem in ["unknown field", "missing field"] {
            if let Some(field) = field_named(error, problem) {
                return ApiError::InvalidField { problem, field };
            }
        }
        ApiError::InvalidRequest
    }
}

/// The field serde names in "`problem` `name`", if it looks like a field name of ours. Anything
/// else (a client may send any key, e.g. an email address) is not echoed back.
fn field_named(serde_error: &str, problem: &str) -> Option<String> {
    let rest = &serde_error[serde_error.find(&format!("{problem} `"))? + problem.len() + 2..];
    let field = &rest[..rest.find('`')?];
    let plausible = (1..=64).contains(&field.len())
        && field.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plausible.then(|| field.to_owned())
}

/// A JSON object body (or answer) whose rejections are `invalid_request` in our shape; unknown
/// fields are refused by the request types themselves (`deny_unknown_fields`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        // Every request body is an object; serde alone would also read a struct from an array.
        if !value.is_object() {
            return Err(ApiError::InvalidRequest);
        }
        T::deserialize(value).map(ApiJson).map_err(|e| ApiError::from_serde(&e.to_string()))
    }
}

/// `deserialize_with` for request fields holding structs (alone, in an `Option` or a `Vec`):
/// each must be a JSON object, as documented; serde alone would also read one from an array.
pub fn nested_objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<T, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    let objects = match &value {
        serde_json::Value::Array(items) => items.iter().all(serde_json::Value::is_object),
        other => other.is_object() || other.is_null(),
    };
    if !objects {
        return Err(D::Error::custom("expected a JSON object"));
    }
    T::deserialize(value).map_err(D::Error::custom)
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The documented error for a bare status, for answers the framework makes itself.
fn status_error(status: StatusCode) -> ErrorBody {
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", ApiError::InvalidRequest.to_string()),
        StatusCode::UNAUTHORIZED => ("unauthorized", ApiError::Unauthorized.to_string()),
        StatusCode::FORBIDDEN => ("forbidden", ApiError::Forbidden.to_string()),
        StatusCode::NOT_FOUND => ("not_found", ApiError::NotFound.to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", ApiError::MethodNotAllowed.to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", ApiError::PayloadTooLarge.to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "the content type is not supported".into()),
        s if s.is_server_error() => ("internal", "internal server error".into()),
        s => {
            let reason = s.canonical_reason().unwrap_or("request failed").to_ascii_lowercase();
            return ErrorBody { code: reason.replace([' ', '-'], "_"), message: reason, retry_after_s: None };
        }
    };
    ErrorBody { code: code.to_owned(), message, retry_after_s: None }
}

/// Router-wide: every 4xx/5xx answer carries the documented [`ErrorBody`], including the
/// framework's own rejections (path, body limit, ...) that axum answers in plain text. Bodies
/// that are already JSON, and the HTML deletion page, are left as they are.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&status_error(status)).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// Answer for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Answer for known routes hit with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
