//! What the site authority needs from storage, as one trait. [`super`] signs; the store only
//! keeps the keys, the sequence numbers and the revocation entries. Each backend runs the
//! shared suite in [`super::store_tests`].

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use porta_protocol::{RevokedCredential, RevokedDevice};

use crate::error::ApiError;

/// One revocation entry, numbered in the site's revocation sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    pub seq: u64,
    pub revoked: Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    Credential(RevokedCredential),
    Device(RevokedDevice),
}

/// A site's revocation version and the entries numbered after some version, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// The newest entry's number (0 for none ever).
    pub version: u64,
    /// Ordered by `seq`, each above the asked-for version and at most `version`.
    pub entries: Vec<RevocationEntry>,
}

#[async_trait]
pub trait AuthorityStore: Send + Sync {
    /// The site's authority key, made and kept on first use (the same for every caller
    /// after that). `None` if there is no such site.
    async fn site_key(&self, site_id: &str) -> Result<Option<SigningKey>, ApiError>;
    /// The key stored for the site, making none: `None` if there is no such site,
    /// `Some(None)` if it has no stored key (yet, or because keys come from configuration).
    async fn stored_site_key(&self, site_id: &str) -> Result<Option<Option<SigningKey>>, ApiError>;
    /// Takes the next number of the site's time updates: each call gets a larger one.
    async fn next_time_sequence(&self, site_id: &str) -> Result<u64, ApiError>;
    /// The site's current revocation version.
    async fn revocation_version(&self, site_id: &str) -> Result<u64, ApiError>;
    /// Drops the entries expired before `now` (of every site), then reads the site's version
    /// and its entries numbered after `since`, in one consistent view.
    async fn revocations_since(&self, site_id: &str, since: u64, now: i64) -> Result<RevocationList, ApiError>;
    /// Drops the entries expired before `now`, of every site.
    async fn prune_revocations(&self, now: i64) -> Result<(), ApiError>;
}
