//! HTTP to the Porta backend: timeouts, retries for idempotent calls, and the mapping of the
//! server's `{code, message}` errors onto [`Error`].

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Attempts for idempotent requests (GET, PUT, DELETE, HEAD). Other methods are sent once:
/// once the request may have reached the server, sending it again could apply it twice.
const MAX_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(150);

#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    /// Budget for one exchange, retries and body included.
    request_timeout: Duration,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    retry_after_s: Option<u64>,
}

/// A whole answer: status, headers and the body read to its end. Reading the body inside the
/// retry loop means a connection cut mid-body is a failed attempt, not a half response.
pub(crate) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub async fn bytes(self) -> Result<Vec<u8>> {
        Ok(self.body)
    }

    pub async fn text(self) -> Result<String> {
        String::from_utf8(self.body).map_err(|_| Error::InvalidResponse("body is not UTF-8".into()))
    }
}

/// Whether a failed attempt may be repeated. A connection that was never made carried
/// nothing, so any method may try again; anything later is repeated only if idempotent.
fn retryable(outcome: &Result<Reply, reqwest::Error>, idempotent: bool) -> bool {
    match outcome {
        Ok(reply) => {
            idempotent
                && matches!(
                    reply.status,
                    StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
                )
        }
        // A timeout spent the whole budget; there is no time left to try again.
        Err(e) if e.is_timeout() => false,
        Err(e) if e.is_connect() => true,
        // Dropped, reset or truncated: the server may have acted on it.
        Err(_) => idempotent,
    }
}

/// A failed exchange as the caller can act on it. reqwest calls a body cut short a decode
/// error; here it is what it is, a broken connection, since the body is not decoded yet.
fn transport_error(e: &reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "connection lost"
    };
    Error::Network(kind.to_string())
}

impl Api {
    pub fn new(base_url: &str, request_timeout: Duration) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::InvalidInput { field: "server_url", reason: "must start with https:// or http://" });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(request_timeout))
            .timeout(request_timeout)
            .user_agent(concat!("porta-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {e}")))?;
        Ok(Self { http, base, request_timeout })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends the request built by `build` and reads the whole answer, whatever its status.
    /// Idempotent methods are retried with backoff after a broken connection or a 502/503/504;
    /// all attempts together stay within the request timeout.
    pub async fn send(&self, method: Method, build: impl Fn() -> RequestBuilder) -> Result<Reply> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE | Method::HEAD);
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        // An earlier attempt broke after the server may have acted on it.
        let mut maybe_applied = false;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut outcome = Self::exchange(build().timeout(remaining)).await;
            if let Ok(reply) = &mut outcome {
                if maybe_applied && method == Method::DELETE && reply.status == StatusCode::NOT_FOUND {
                    // The lost attempt deleted it: gone is what was asked for.
                    *reply = Reply { status: StatusCode::NO_CONTENT, headers: HeaderMap::new(), body: Vec::new() };
                }
            }
            let out_of_time = tokio::time::Instant::now() + backoff >= deadline;
            if attempt >= MAX_ATTEMPTS || out_of_time || !retryable(&outcome, idempotent) {
                return outcome.map_err(|e| transport_error(&e));
            }
            maybe_applied |= outcome.as_ref().is_err_and(|e| !e.is_connect());
            tracing::debug!(attempt, "retrying a request after a transient failure");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn exchange(request: RequestBuilder) -> Result<Reply, reqwest::Error> {
        let resp = request.send().await?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.bytes().await?.to_vec();
        Ok(Reply { status, headers, body })
    }
}

/// Turns a non-success response into an [`Error`]; success passes through.
pub(crate) async fn check(resp: Reply) -> Result<Reply> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(ErrorResponse::read(resp).await.into_error())
}

/// A non-success answer, read whole, so its code can be looked at before mapping it.
pub(crate) struct ErrorResponse {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Option<ErrorBody>,
}

impl ErrorResponse {
    pub async fn read(resp: Reply) -> Self {
        let status = resp.status;
        let retry_after =
            resp.headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        Self::from_parts(status, retry_after, &resp.body)
    }

    /// An answer already read; a body that is not the `{code}` JSON counts as none.
    pub(crate) fn from_parts(status: StatusCode, retry_after: Option<u64>, body: &[u8]) -> Self {
        Self { status, retry_after, body: serde_json::from_slice(body).ok() }
    }

    /// The server refused the access token itself (not, say, a wrong one-time code).
    pub fn is_auth_failure(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
            && self
                .body
                .as_ref()
                .is_none_or(|b| matches!(b.code.as_str(), "unauthorized" | "token_expired" | "invalid_token"))
    }

    pub fn into_error(self) -> Error {
        let status = self.status;
        let Some(body) = self.body else {
            return Error::Server { status: status.as_u16(), code: "unknown".into() };
        };
        match body.code.as_str() {
            "invalid_code" => Error::InvalidCode,
            "code_expired" => Error::CodeExpired,
            "too_many_attempts" => Error::TooManyAttempts,
            "rate_limited" => {
                Error::RateLimited { retry_after_s: self.retry_after.or(body.retry_after_s).unwrap_or(60) }
            }
            "delivery_failed" => {
                Error::CodeNotDelivered { retry_after_s: self.retry_after.or(body.retry_after_s).unwrap_or(30) }
            }
            "unauthorized" | "invalid_token" | "refresh_token_reused" | "token_expired" => Error::NotSignedIn,
            "invalid_identifier" => {
                Error::InvalidInput { field: "identifier", reason: "not an email address or phone number" }
            }
            "invalid_name" => Error::InvalidInput {
                field: "name",
                reason: "1 to 100 characters, no control, invisible or text-direction characters",
            },
            "invalid_device_name" => Error::InvalidInput {
                field: "device_name",
                reason: "no control, invisible or text-direction characters",
            },
            "invalid_email" => Error::InvalidInput { field: "email", reason: "not a valid email address" },
            "invalid_phone" => {
                Error::InvalidInput { field: "phone", reason: "use international format, e.g. +4712345678" }
            }
            "unsupported_media_type" => Error::InvalidInput { field: "picture", reason: "must be a PNG or JPEG image" },
            "payload_too_large" => Error::InvalidInput { field: "picture", reason: "larger than 2 MB" },
            "already_in_use" => Error::AlreadyInUse,
            "contact_change_conflict" => Error::InvalidInput {
                field: "contact",
                reason: "change email or phone one at a time, and keep at least one",
            },
            "not_found" => Error::NotFound,
            "invitation_unknown" => Error::Invitation(crate::InvitationError::Unknown),
            "invitation_expired" => Error::Invitation(crate::InvitationError::Expired),
            "invitation_used_up" => Error::Invitation(crate::InvitationError::UsedUp),
            "invitation_revoked" => Error::Invitation(crate::InvitationError::Revoked),
            // Only doors the inviter may open for the whole window can be given to a guest.
            "door_not_allowed" => Error::NoAccess,
            "invalid_window" => Error::InvalidInput {
                field: "window",
                reason: "must end after it starts, in the future, and last no longer than the site allows",
            },
            "invalid_schedule" => Error::InvalidInput {
                field: "schedule",
                reason: "1 to 16 windows, each on some day, start before end, within the day",
            },
            "invalid_label" => Error::InvalidInput {
                field: "label",
                reason: "at most 64 characters, no control, invisible or text-direction characters",
            },
            "guest_account" | "guests_cannot_invite" => Error::GuestAccount,
            "too_many_guests" => Error::InvalidInput {
                field: "uses",
                reason: "at most 100 guests and open uses at once; revoke some first",
            },
            "own_invitation" => Error::InvalidInput { field: "code", reason: "this is your own invitation" },
            _ => Error::Server { status: status.as_u16(), code: body.code },
        }
    }
}

/// Reads a JSON body, reporting garbage as [`Error::InvalidResponse`].
pub(crate) async fn json<T: DeserializeOwned>(resp: Reply) -> Result<T> {
    serde_json::from_slice(&resp.body)
        .map_err(|e| Error::InvalidResponse(crate::error::json_error("unexpected JSON", &e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InvitationError;

    fn error(status: u16, code: &str) -> Error {
        let body = serde_json::json!({ "code": code, "message": "…" }).to_string();
        ErrorResponse::from_parts(StatusCode::from_u16(status).unwrap(), None, body.as_bytes()).into_error()
    }

    #[test]
    fn invitation_errors_are_typed() {
        assert!(matches!(error(404, "invitation_unknown"), Error::Invitation(InvitationError::Unknown)));
        assert!(matches!(error(410, "invitation_expired"), Error::Invitation(InvitationError::Expired)));
        assert!(matches!(error(410, "invitation_used_up"), Error::Invitation(InvitationError::UsedUp)));
        assert!(matches!(error(410, "invitation_revoked"), Error::Invitation(InvitationError::Revoked)));
        assert!(matches!(error(403, "door_not_allowed"), Error::NoAccess));
        assert!(matches!(error(409, "too_many_guests"), Error::InvalidInput { field: "uses", .. }));
        assert!(matches!(error(409, "own_invitation"), Error::InvalidInput { field: "code", .. }));
        assert!(matches!(error(400, "invalid_window"), Error::InvalidInput { field: "window", .. }));
        assert!(matches!(error(400, "invalid_schedule"), Error::InvalidInput { field: "schedule", .. }));
        assert!(matches!(error(400, "invalid_label"), Error::InvalidInput { field: "label", .. }));
        assert!(matches!(error(403, "guest_account"), Error::GuestAccount));
        assert!(matches!(error(403, "guests_cannot_invite"), Error::GuestAccount));
    }
}
