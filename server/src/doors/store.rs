//! What the doors domain needs from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn DoorStore>` and never see SQL; they group grants, choose what to reuse and sign.
//! Each backend runs the shared suite in [`super::store_tests`].

use async_trait::async_trait;

use crate::error::ApiError;
use crate::identity::Identifier;
use crate::site_time::SiteTime;

/// The site whose doors a user sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRef {
    pub id: String,
    pub name: String,
}

/// A grant of one door to the user that has not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    pub door_number: u32,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule_json: Option<String>,
    /// From an accepted invitation: its credential spans the whole window, so the guest
    /// need not sync again and the lock enforces the window offline.
    pub whole_window: bool,
}

/// A door the user holds a grant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorRecord {
    pub number: u32,
    pub name: String,
    pub log_retention_days: i64,
    /// The installed (not decommissioned) lock and its public key, if any.
    pub lock: Option<(u32, Vec<u8>)>,
}

/// A credential issued before to a session, with its signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub signed: Vec<u8>,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
}

/// What a sync needs to know about one user's doors at one site, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorsSnapshot {
    /// Ordered by door number.
    pub grants: Vec<ActiveGrant>,
    /// One per granted door, by number.
    pub doors: Vec<DoorRecord>,
    /// The session's credentials that are signed, unrevoked and not expired, the latest
    /// ending (then the latest issued) first.
    pub credentials: Vec<StoredCredential>,
    pub site_time: SiteTime,
}

/// A newly signed credential to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub id: [u8; 16],
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    pub signed: Vec<u8>,
}

/// New credentials of one session's device key, issued from the grants a snapshot showed.
#[derive(Debug, Clone)]
pub struct Issuance {
    pub site_id: String,
    pub user_id: String,
    pub session_id: String,
    pub device_key: [u8; 32],
    /// The grants the credentials were made from, as [`DoorsSnapshot::grants`] gave them.
    pub grants: Vec<ActiveGrant>,
    pub credentials: Vec<NewCredential>,
    /// At most this many issuing requests per session within `window_s` before `now`.
    pub limit: u32,
    pub window_s: i64,
    pub now: i64,
}

/// What became of an [`Issuance`]. Only `Recorded` stored anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    Recorded,
    /// The session's device key was revoked or replaced meanwhile.
    DeviceGone,
    /// The user's grants at the site are no longer those the credentials were made from.
    GrantsChanged,
    /// `limit` issuing requests were made within the window; the oldest at `oldest_at`.
    RateLimited {
        oldest_at: i64,
    },
}

#[async_trait]
pub trait DoorStore: Send + Sync {
    /// The session's unrevoked device key.
    async fn device_key(&self, session_id: &str) -> Result<Option<[u8; 32]>, ApiError>;
    /// The site whose doors the user sees: that of their first grant, else their unit's,
    /// else the first site. `None` without any site.
    async fn site_of(&self, user_id: &str) -> Result<Option<SiteRef>, ApiError>;
    /// The user's grants at the site that end at or after `now`, their doors, and the
    /// session's live credentials.
    async fn doors_snapshot(
        &self,
        user_id: &str,
        session_id: &str,
        site_id: &str,
        now: i64,
    ) -> Result<DoorsSnapshot, ApiError>;
    /// Records the new credentials at once, or none: only while the device key is still the
    /// session's, the grants are unchanged and the rate limit allows. Credentials recorded
    /// together count as one issuing request.
    async fn record_issuance(&self, issuance: Issuance) -> Result<Issued, ApiError>;
    /// Grants `doors` to the user with the identifier (created if needed) with the given
    /// ids, one per door. `None`, granting nothing, if a door does not exist.
    async fn add_dev_grants(
        &self,
        identifier: &Identifier,
        grants: &[(String, u32)],
        not_before: i64,
        not_after: i64,
        schedule_json: Option<String>,
        now: i64,
    ) -> Result<Option<String>, ApiError>;
}
