//! What the partner domain needs from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn PartnerStore>` and never see SQL; each backend runs the shared suite in
//! [`super::store_tests`].
//!
//! Every read takes the site: a key's site is the only one its answers come from.

use async_trait::async_trait;

use crate::error::ApiError;

/// A partner API key, without its secret (only the secret's hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerKeyRecord {
    pub id: String,
    pub site_id: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A person with access at a site: the internal id (never sent to a partner) and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePerson {
    pub user_id: String,
    pub name: String,
}

/// One access event at one of the site's doors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteAccessEvent {
    /// Increasing; page with `before`.
    pub id: i64,
    pub at: i64,
    pub door_id: u32,
    pub door_name: String,
    pub opened: bool,
    /// The credential's owner, when known.
    pub user_id: Option<String>,
}

/// Which events to read, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogQuery {
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events with a smaller id (the next page).
    pub before: Option<i64>,
    pub limit: u32,
    /// The server's time: events past their door's retention are not read.
    pub now: i64,
}

#[async_trait]
pub trait PartnerStore: Send + Sync {
    /// The server's key for pseudonymous ids, made once and kept.
    async fn pseudonym_key(&self) -> Result<[u8; 32], ApiError>;

    async fn create_key(&self, key: &PartnerKeyRecord, secret_hash: &str) -> Result<(), ApiError>;
    /// The site's keys, revoked ones included, oldest first.
    async fn keys(&self, site_id: &str) -> Result<Vec<PartnerKeyRecord>, ApiError>;
    /// Revokes the key (a revoked one stays revoked). `false` if the site has no such key.
    async fn revoke_key(&self, site_id: &str, key_id: &str, now: i64) -> Result<bool, ApiError>;
    /// The unrevoked key whose secret hashes to `secret_hash`, marked as used at `now`.
    async fn use_key(&self, secret_hash: &str, now: i64) -> Result<Option<PartnerKeyRecord>, ApiError>;
    /// Counts one read with `key_id` unless `limit` were made in the `window` seconds before
    /// `now`; then errs with `rate_limited`.
    async fn count_read(&self, key_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError>;

    /// Residents living in one of the site's units or holding a grant to one of its doors.
    async fn people(&self, site_id: &str) -> Result<Vec<SitePerson>, ApiError>;
    /// Events at the site's doors, newest first.
    async fn access_log(&self, site_id: &str, query: LogQuery) -> Result<Vec<SiteAccessEvent>, ApiError>;
}
