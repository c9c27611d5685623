//! What the invitations domain needs from storage, as one trait. Handlers and policy in
//! [`super`] hold an `Arc<dyn InvitationStore>` and never see SQL; each backend implements it
//! and runs the shared suite in [`super::store_tests`].

use async_trait::async_trait;

use crate::doors::Schedule;
use crate::error::ApiError;

/// The site an invitation is for, with the settings that bound it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSettings {
    pub site_id: String,
    pub site_name: String,
    /// The site's local time; guest schedules are in it.
    pub time: crate::site_time::SiteTime,
    /// Longest invitation window the site allows.
    pub max_invitation_days: i64,
    /// Whether the building lets tenants invite at all.
    pub tenants_may_invite: bool,
}

/// One of the tenant's own grants (never one that came from an invitation: guests cannot
/// pass access on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantGrant {
    pub door_number: u32,
    pub not_before: i64,
    pub not_after: i64,
    pub scheduled: bool,
}

/// An invitation that can still be used or answered about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: String,
    pub site_id: String,
    pub tenant_id: String,
    pub label: Option<String>,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub uses: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// One accepted use: a guest (anonymous, or an account that accepted) and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRecord {
    pub id: String,
    /// Gone once the invitation's row is (used up, expired).
    pub invitation_id: Option<String>,
    pub tenant_id: String,
    /// The account holding the access: a guest principal, or the resident who accepted.
    pub user_id: String,
    pub site_id: String,
    pub label: Option<String>,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub accepted_at: i64,
    pub has_account: bool,
}

/// Who takes a use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptor {
    /// A signed-in resident: the access joins their account.
    Account { user_id: String },
    /// Nobody signed in: a new guest principal with this device key and one session.
    NewGuest { device_key: [u8; 32], device_name: String, ip: String },
}

/// The result of [`InvitationStore::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per request, never stored
pub enum AcceptOutcome {
    /// The use is taken (or, with `repeated`, was taken before by the same acceptor).
    Accepted {
        guest: GuestRecord,
        session_id: Option<String>,
        repeated: bool,
    },
    /// No row under that hash: used up (or never existed).
    Gone,
    Revoked,
    Expired,
}

/// The tenant's limits a new invitation must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantCaps {
    /// Invitations the tenant may have created in the day up to the new one's `created_at`.
    pub per_day: u32,
    /// Guests whose window has not ended plus uses still open on live invitations, the new
    /// invitation's uses included.
    pub guests: u32,
}

/// The result of [`InvitationStore::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// The tenant created [`TenantCaps::per_day`] invitations in the last day already.
    DailyCapReached,
    /// The new uses would take the tenant past [`TenantCaps::guests`].
    GuestCapReached,
}

/// What the purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub invitations: usize,
    pub guests: usize,
}

#[async_trait]
pub trait InvitationStore: Send + Sync {
    /// The key the invitation tokens are tagged with, created on first use.
    async fn token_key(&self) -> Result<[u8; 32], ApiError>;
    /// The site whose doors `user_id` sees, with its invitation settings.
    async fn site_for(&self, user_id: &str) -> Result<Option<SiteSettings>, ApiError>;
    /// Whether `user_id` is a guest principal.
    async fn is_guest(&self, user_id: &str) -> Result<bool, ApiError>;
    /// The user's own grants at the site (not those from invitations), any time.
    async fn tenant_grants(&self, user_id: &str, site_id: &str) -> Result<Vec<TenantGrant>, ApiError>;
    /// The site's name and local time.
    async fn site(&self, site_id: &str) -> Result<(String, crate::site_time::SiteTime), ApiError>;
    /// Takes one of `limit` lookup slots of `ip_key` per sliding `window` seconds, or errs
    /// with `rate_limited` and the wait, taking nothing. A lookup counts as failed until its
    /// slot is given back, so lookups at once (through any instance) never pass the limit
    /// together.
    async fn take_lookup_slot(&self, ip_key: &str, now: i64, limit: u32, window: i64) -> Result<(), ApiError>;
    /// Gives back the slot `ip_key` took at `at`: the lookup found a token of ours.
    async fn release_lookup_slot(&self, ip_key: &str, at: i64) -> Result<(), ApiError>;
    /// Names of the site's doors among `doors`, in the order given; unknown doors are left out.
    async fn door_names(&self, site_id: &str, doors: &[u32]) -> Result<Vec<(u32, String)>, ApiError>;
    /// Stores the invitation unless it takes its tenant past `caps`, counted at its
    /// `created_at`: invitations created in the day before (used-up ones too), and guests
    /// whose window has not ended plus uses open on live (unrevoked, unexpired) invitations.
    /// The counts and the insert are one unit, so creations at once (through any instance)
    /// never pass a cap together.
    async fn insert(
        &self,
        invitation: &InvitationRecord,
        token_hash: &str,
        caps: TenantCaps,
    ) -> Result<Insert, ApiError>;
    async fn find(&self, token_hash: &str) -> Result<Option<InvitationRecord>, ApiError>;
    /// The tenant's invitations (still stored) and the guests who accepted any of them.
    async fn list(&self, tenant_id: &str) -> Result<(Vec<InvitationRecord>, Vec<GuestRecord>), ApiError>;
    /// The guest access held by `user_id` as a guest principal.
    async fn guest_access_of(&self, user_id: &str) -> Result<Option<GuestRecord>, ApiError>;
    /// Takes one use, in one transaction: an acceptance with `accept_tag` seen before is
    /// returned as it was; otherwise the invitation must be stored, unrevoked and unexpired.
    /// The row (and its token hash) is deleted with its last use.
    async fn accept(
        &self,
        token_hash: &str,
        accept_tag: &str,
        acceptor: Acceptor,
        now: i64,
    ) -> Result<AcceptOutcome, ApiError>;
    /// Revokes the tenant's invitation and every guest who accepted it. `false` if the
    /// tenant has no such invitation.
    async fn revoke_invitation(&self, tenant_id: &str, invitation_id: &str, now: i64) -> Result<bool, ApiError>;
    /// Revokes one guest: its credentials go on the site's revocation list. `false` if
    /// the tenant has no such guest.
    async fn revoke_guest(&self, tenant_id: &str, guest_id: &str, now: i64) -> Result<bool, ApiError>;
    /// Deletes invitations whose window has ended and guests (and all they hold) whose
    /// window has ended; their access-log rows stay, anonymised, for the log's retention.
    async fn purge(&self, now: i64) -> Result<Purged, ApiError>;
}
