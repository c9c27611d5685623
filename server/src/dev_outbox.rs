//! Delivery of one-time codes, and the development outbox that lets tests and the demo read
//! them back without a real email/SMS provider.
//!
//! A code is as good as the account it opens, so no code ever reaches a log, at any level.
//! Without a provider codes are simply not delivered (the server says so once, at startup);
//! the dev outbox shows them only when explicitly enabled, and only to loopback peers of a
//! server listening on loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
use crate::AppState;

pub use crate::delivery::{CodeSender, DeliveryFailed};

/// What runs when no provider is configured: the code goes nowhere. Sign-in and deletion
/// cannot complete, which [`crate::start`] announces once at startup.
#[derive(Debug, Default)]
pub struct UndeliveredCodes;

#[async_trait::async_trait]
impl CodeSender for UndeliveredCodes {
    async fn send(&self, _to: &Identifier, _code: &str) -> Result<(), DeliveryFailed> {
        tracing::debug!("one-time code not delivered: no code sender is configured");
        Ok(())
    }
}

/// Remembers the latest code per identifier, in memory only, and passes it on to a real
/// sender if there is one.
pub struct DevOutbox {
    inner: Option<Arc<dyn CodeSender>>,
    latest: Mutex<HashMap<String, String>>,
}

impl DevOutbox {
    pub fn new(inner: Option<Arc<dyn CodeSender>>) -> Self {
        Self { inner, latest: Mutex::new(HashMap::new()) }
    }

    pub fn latest(&self, identifier: &str) -> Option<String> {
        self.latest.lock().ok().and_then(|map| map.get(identifier).cloned())
    }
}

#[async_trait::async_trait]
impl CodeSender for DevOutbox {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        if let Ok(mut map) = self.latest.lock() {
            map.insert(to.as_str().to_owned(), code.to_owned());
        }
        match &self.inner {
            Some(inner) => inner.send(to, code).await,
            None => Ok(()),
        }
    }

    async fn check(&self, to: &Identifier) -> Result<(), DeliveryFailed> {
        match &self.inner {
            Some(inner) => inner.check(to).await,
            None => Ok(()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEntry {
    /// The latest code sent to the identifier.
    #[schema(example = "042917")]
    pub code: String,
}

/// Latest one-time code sent to an identifier (development only; loopback peers only).
#[utoipa::path(
    get,
    path = "/v1/dev/outbox/{identifier}",
    tag = "dev",
    params(("identifier" = String, Path, max_length = 254, pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#,
        description = "Email or phone number, normalised like sign-in does")),
    responses(
        (status = 200, description = "Latest code", body = OutboxEntry),
        (status = 400, description = "Not an email or phone number", body = ErrorBody),
        (status = 403, description = "Peer is not loopback", body = ErrorBody),
        (status = 404, description = "No code sent to this identifier", body = ErrorBody),
    )
)]
pub async fn get_outbox(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(identifier): Path<String>,
) -> Result<ApiJson<OutboxEntry>, ApiError> {
    // The listen address is already loopback-only; this guards against proxies in front.
    if !client.is_loopback() {
        return Err(ApiError::Forbidden);
    }
    let outbox = state.outbox.as_ref().ok_or(ApiError::NotFound)?;
    let identifier = Identifier::parse(&identifier).ok_or(ApiError::InvalidIdentifier)?;
    let code = outbox.latest(identifier.as_str()).ok_or(ApiError::NotFound)?;
    Ok(ApiJson(OutboxEntry { code }))
}
