//! The one error type every handler returns, and its JSON wire shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
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
    #[error("this device key is enrolled for another session")]
    KeyInUse,
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
    /// The detail is logged, never sent.
    #[error("internal server error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidRequest | InvalidIdentifier | InvalidName(_) | InvalidDeviceName(_) | InvalidEmail
            | InvalidPhone | InvalidProof | InvalidRecord | TooManyEvents | UnknownDoor | InvalidSchedule => {
                StatusCode::BAD_REQUEST
            }
            RateLimited { .. } | TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            InvalidCode | CodeExpired | InvalidToken | RefreshTokenReused | Unauthorized | TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            AlreadyInUse | AlreadyEnrolled | KeyInUse | DeviceNotEnrolled => StatusCode::CONFLICT,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Forbidden => StatusCode::FORBIDDEN,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidRequest => "invalid_request",
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
            KeyInUse => "key_in_use",
            DeviceNotEnrolled => "device_not_enrolled",
            InvalidRecord => "invalid_record",
            TooManyEvents => "too_many_events",
            UnknownDoor => "unknown_door",
            InvalidSchedule => "invalid_schedule",
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
        tracing::debug!(error = %rejection.body_text(), "rejected JSON body");
        ApiError::InvalidRequest
    }
}

/// `axum::Json` whose rejections are [`ApiError::InvalidRequest`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Answer for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Answer for known routes hit with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
