//! What the access-event domain needs from storage, as one trait. Handlers in [`super`]
//! hold an `Arc<dyn AccessStore>` and never see SQL; they verify records and bound their
//! times. Each backend runs the shared suite in [`super::store_tests`].

use async_trait::async_trait;

use crate::error::ApiError;

/// What an uploaded record is checked against: the lock that signed it and the door it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLock {
    pub public_key: Vec<u8>,
    /// The door the record names (SPEC §2.5) if the lock controls it, else (no authenticated
    /// phone) the lock's first door; `None` for a lock without doors.
    pub door: Option<u32>,
    /// That door's log retention; for no known door the longest of any door, else
    /// [`DEFAULT_RETENTION_DAYS`](super::DEFAULT_RETENTION_DAYS) (as the purge applies).
    pub retention_days: i64,
    /// When the lock's certificate was revoked (replaced or decommissioned), if it was.
    pub revoked_at: Option<i64>,
}

/// A verified record to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccessEvent {
    pub lock_id: u32,
    pub counter: i64,
    pub door: Option<u32>,
    pub credential_id: [u8; 16],
    /// The protocol's decision code.
    pub decision: u8,
    pub at: i64,
    /// The lock-signed record as uploaded.
    pub record: Vec<u8>,
}

/// One event of a user's own log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAccessEvent {
    pub door_id: Option<u32>,
    /// `None` once the door is gone.
    pub door_name: Option<String>,
    pub at: i64,
    pub decision: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorRetention {
    pub door_id: u32,
    pub door_name: String,
    pub retention_days: i64,
}

#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Per `(lock_id, door_id)` of an uploaded record, in order: its lock, `None` for an
    /// unknown lock.
    async fn record_locks(&self, records: &[(u32, u32)]) -> Result<Vec<Option<RecordLock>>, ApiError>;
    /// Stores the events at once, each attributed to the owner of the credential it names.
    /// The caller has refused events dated beyond their arrival plus
    /// [`MAX_LOCK_CLOCK_AHEAD_S`](super::MAX_LOCK_CLOCK_AHEAD_S) or already past retention.
    /// An event naming a credential of no one (e.g. of a deleted account) is kept without its
    /// credential id and record (all-zero id: kept with its record). Per event, in order:
    /// `true` if stored now, `false` if one with its lock and counter was stored before (or
    /// earlier in `events`).
    async fn store_events(&self, events: Vec<NewAccessEvent>, now: i64) -> Result<Vec<bool>, ApiError>;
    /// Deletes events older than their door's retention (events of no door: the longest
    /// retention), and issued-credential records too old for any event that could still name
    /// them. Returns the events deleted. The purge job runs it; requests never wait for it,
    /// and its cost follows what it deletes, not the size of the log.
    async fn purge_expired(&self, now: i64) -> Result<usize, ApiError>;
    /// The user's events still within their door's retention at `now`, newest first (by
    /// time, then by arrival), at most `limit`: what the purge will delete is never shown,
    /// even before it runs.
    async fn user_events(&self, user_id: &str, now: i64, limit: u32) -> Result<Vec<UserAccessEvent>, ApiError>;
    /// The retention of each door the user holds a grant for or has events at, by door.
    async fn user_retention(&self, user_id: &str) -> Result<Vec<DoorRetention>, ApiError>;
}
