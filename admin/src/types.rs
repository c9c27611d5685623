//! What the admin API sends and takes, as the server defines it (server/src/admin,
//! server/src/partner, the lock provisioning contract). Unknown fields in answers are
//! ignored, so a newer server does not break an older tool.

use serde::{Deserialize, Serialize};

/// Daylight-saving rule of a site's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DstRule {
    /// No daylight-saving time.
    None,
    /// EU summer time: +1 h from the last Sunday of March to the last Sunday of October.
    Eu,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: String,
    pub name: String,
    pub address: String,
    /// Standard local time = UTC + this many minutes.
    pub utc_offset_minutes: i16,
    pub dst_rule: DstRule,
    /// Longest invitation window tenants may give.
    pub max_invitation_days: i64,
    pub tenants_may_invite: bool,
}

/// A new site; `None` fields take the server's defaults (no address, UTC, no summer time,
/// 30 days, tenants may invite).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewSite {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_rule: Option<DstRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_invitation_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants_may_invite: Option<bool>,
}

/// A change to a site; `None` fields stay as they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_rule: Option<DstRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_invitation_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenants_may_invite: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    Apartment,
    Office,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub name: String,
    /// `apartment` or `office`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Door {
    /// The door's number: in credentials, at the lock, and in every door path.
    pub door_id: u32,
    pub name: String,
    /// Access events at this door are kept this many days (1 to 365).
    pub log_retention_days: i64,
    /// The door's current lock, if one is provisioned (servers with lock provisioning).
    #[serde(default)]
    pub lock_id: Option<u32>,
}

/// A change to a door; `None` fields stay as they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DoorChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_retention_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The answer to adding a resident: a sign-in code is on its way to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentInvited {
    /// Seconds the code sent to the person stays valid.
    pub code_expires_in_s: i64,
}

/// One weekly window, in the site's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleWindow {
    /// Days bitmask: bit 0 = Monday … bit 6 = Sunday.
    pub days: u8,
    /// First allowed minute of the day (inclusive).
    pub start_minute: u16,
    /// End minute (exclusive), at most 1440.
    pub end_minute: u16,
}

/// A grant's weekly schedule as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub utc_offset_minutes: i16,
    pub windows: Vec<ScheduleWindow>,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// Every resident of the unit, now and later.
    Unit(String),
    /// One resident of the site, by user id.
    Person(String),
}

/// A new grant of doors.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub to: Grantee,
    pub doors: Vec<u32>,
    /// Unix seconds; `None`: now.
    pub not_before: Option<i64>,
    /// Unix seconds, inclusive; `None`: no end.
    pub not_after: Option<i64>,
    /// Weekly hours in the site's local time; `None`: any time in the window.
    pub hours: Option<Vec<ScheduleWindow>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub unit_id: Option<String>,
    pub user_id: Option<String>,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRole {
    pub user_id: String,
    /// `site_admin`.
    pub role: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One security event. Actors and subjects are random ids, never names or addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// e.g. `grant_created`, `retention_changed`, `lock_provisioned`.
    pub kind: String,
    pub site_id: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// One page of security events, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvents {
    pub events: Vec<SecurityEvent>,
    /// Pass as [`EventQuery::before`] for the next page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// Which security events to read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// At or after this Unix time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// With an id below this (the previous page's `next_before`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// 1 to 200 (server default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerKey {
    pub id: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A partner key just made: the only time its secret is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedPartnerKey {
    #[serde(flatten)]
    pub key: PartnerKey,
    /// `porta_pk_…`, to hand to the partner; the server keeps only its hash.
    pub secret: String,
}

impl std::fmt::Debug for CreatedPartnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedPartnerKey").field("key", &self.key).field("secret", &"<redacted>").finish()
    }
}

/// A door's lock as the server certified it: the answer to provisioning, and the answer
/// file the lock installs (the contract's `LockInstalled`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInstalled {
    pub lock_id: u32,
    pub door_id: u32,
    /// Standard base64 of the lock's 32-byte public key.
    pub lock_public_key: String,
    /// Standard base64 of the certificate bytes.
    pub certificate: String,
    /// Standard base64 of the site authority's 32-byte public key.
    pub authority_public_key: String,
    /// Unix seconds.
    pub not_before: u32,
    pub not_after: u32,
    pub provisioned_at: i64,
    /// The lock this one replaced (its certificate is revoked), if the door had one.
    pub replaced_lock_id: Option<u32>,
}

/// An admin's session: where, and its tokens. Debug never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("user_id", &self.user_id)
            .field("tokens", &"<redacted>")
            .finish()
    }
}
