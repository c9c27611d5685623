//! The security-event log: sign-ins, failed codes, account deletions, and what admins change.
//! It is kept apart from residents' personal data: its own table, no foreign keys into
//! theirs, and no name, email or phone ever: actor and subject are random ids (a user's id,
//! a grant's, a unit's, a door's). It has its own retention, applied by the purge loop.
//!
//! Handlers use the [`store::SecurityLog`] trait (SQLite: [`sqlite`]); code already inside a
//! SQLite transaction (sign-in, account deletion) records with [`sqlite::record_in`] so the
//! event commits with what it logs.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::store::SecurityLog;

/// Default retention of security events.
pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// What happened. The wire and stored name is the snake_case form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    SignIn,
    CodeFailed,
    AccountDeleted,
    GrantCreated,
    GrantRevoked,
    RoleGranted,
    RoleRevoked,
    ResidentAdded,
    ResidentRemoved,
    SiteChanged,
    RetentionChanged,
    /// A lock was certified for a door from its own request (subject: the door).
    LockProvisioned,
    /// A door's lock certificate was revoked: the lock replaced or decommissioned (subject: the
    /// door; detail: which).
    LockRevoked,
    /// A site admin made a partner API key (subject: the key's id).
    PartnerKeyCreated,
    PartnerKeyRevoked,
    /// A partner read the site's people or access log (subject: the key's id).
    PartnerRead,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::SignIn,
        EventKind::CodeFailed,
        EventKind::AccountDeleted,
        EventKind::GrantCreated,
        EventKind::GrantRevoked,
        EventKind::RoleGranted,
        EventKind::RoleRevoked,
        EventKind::ResidentAdded,
        EventKind::ResidentRemoved,
        EventKind::SiteChanged,
        EventKind::RetentionChanged,
        EventKind::LockProvisioned,
        EventKind::LockRevoked,
        EventKind::PartnerKeyCreated,
        EventKind::PartnerKeyRevoked,
        EventKind::PartnerRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SignIn => "sign_in",
            EventKind::CodeFailed => "code_failed",
            EventKind::AccountDeleted => "account_deleted",
            EventKind::GrantCreated => "grant_created",
            EventKind::GrantRevoked => "grant_revoked",
            EventKind::RoleGranted => "role_granted",
            EventKind::RoleRevoked => "role_revoked",
            EventKind::ResidentAdded => "resident_added",
            EventKind::ResidentRemoved => "resident_removed",
            EventKind::SiteChanged => "site_changed",
            EventKind::RetentionChanged => "retention_changed",
            EventKind::LockProvisioned => "lock_provisioned",
            EventKind::LockRevoked => "lock_revoked",
            EventKind::PartnerKeyCreated => "partner_key_created",
            EventKind::PartnerKeyRevoked => "partner_key_revoked",
            EventKind::PartnerRead => "partner_read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One event to record. Only ids and server-chosen codes: never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub at: i64,
    pub site_id: Option<String>,
    /// Who did it: a user id, or none (e.g. a failed code for no known account).
    pub actor: Option<String>,
    /// What it was done to: a user, grant, unit, door or partner key id.
    pub subject: Option<String>,
    /// A code the server chose (`"site_admin"`, `"unit"`), never text from a request.
    pub detail: Option<&'static str>,
}

impl NewEvent {
    pub fn new(kind: EventKind, at: i64) -> Self {
        Self { kind, at, site_id: None, actor: None, subject: None, detail: None }
    }
    pub fn site(mut self, site_id: &str) -> Self {
        self.site_id = Some(site_id.to_owned());
        self
    }
    pub fn actor(mut self, user_id: &str) -> Self {
        self.actor = Some(user_id.to_owned());
        self
    }
    pub fn subject(mut self, id: &str) -> Self {
        self.subject = Some(id.to_owned());
        self
    }
    pub fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SecurityEvent {
    /// Increasing; page with `before`.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: EventKind,
    pub site_id: Option<String>,
    /// A user id.
    pub actor: Option<String>,
    /// A user, grant, unit or door id.
    pub subject: Option<String>,
    pub detail: Option<String>,
}

/// Which events to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events at this site; `None`: every event (operators).
    pub site_id: Option<String>,
    pub kind: Option<EventKind>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events with a smaller id (the next page).
    pub before: Option<i64>,
    pub limit: u32,
}
