//! HTTP to the Porta backend: timeouts, retries for idempotent calls, and the mapping of the
//! server's `{code, message}` errors onto [`Error`].

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Attempts for idempotent requests (GET, PUT, DELETE); POSTs are sent once.
const MAX_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(150);

#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    retry_after_s: Option<u64>,
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
        Ok(Self { http, base })
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.base, path))
    }

    /// Sends the request built by `build`; retries with backoff on connection failures and
    /// 502/503/504 when the method is idempotent. Returns the response whatever its status.
    pub async fn send(&self, method: Method, build: impl Fn() -> RequestBuilder) -> Result<Response> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE | Method::HEAD);
        let attempts = if idempotent { MAX_ATTEMPTS } else { 1 };
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = build().send().await;
            let retryable = match &outcome {
                Ok(resp) => matches!(
                    resp.status(),
                    StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
                ),
                Err(e) => e.is_connect() || e.is_timeout(),
            };
            if !retryable || attempt >= attempts {
                return outcome.map_err(Error::from);
            }
            tracing::debug!(attempt, "retrying idempotent request after a transient failure");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }
}

/// Turns a non-success response into an [`Error`]; success passes through.
pub(crate) async fn check(resp: Response) -> Result<Response> {
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
    pub async fn read(resp: Response) -> Self {
        let status = resp.status();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let body = resp.bytes().await.unwrap_or_default();
        Self::from_parts(status, retry_after, &body)
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
            "unauthorized" | "invalid_token" | "refresh_token_reused" | "token_expired" => Error::NotSignedIn,
            "invalid_identifier" => {
                Error::InvalidInput { field: "identifier", reason: "not an email address or phone number" }
            }
            "invalid_name" => {
                Error::InvalidInput { field: "name", reason: "1 to 100 characters, no control characters" }
            }
            "invalid_email" => Error::InvalidInput { field: "email", reason: "not a valid email address" },
            "invalid_phone" => {
                Error::InvalidInput { field: "phone", reason: "use international format, e.g. +4712345678" }
            }
            "unsupported_media_type" => Error::InvalidInput { field: "picture", reason: "must be a PNG or JPEG image" },
            "payload_too_large" => Error::InvalidInput { field: "picture", reason: "larger than 2 MB" },
            "already_in_use" => Error::AlreadyInUse,
            "not_found" => Error::NotFound,
            _ => Error::Server { status: status.as_u16(), code: body.code },
        }
    }
}

/// Reads a JSON body, reporting garbage as [`Error::InvalidResponse`].
pub(crate) async fn json<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let bytes = resp.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidResponse(crate::error::json_error("unexpected JSON", &e)))
}
