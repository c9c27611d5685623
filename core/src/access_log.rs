//! The resident's own access log: which doors they opened and when, and how long the
//! building keeps it. Lock-signed audit records wait in a local outbox until uploaded once.

use serde::{Deserialize, Serialize};

/// One entry of the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvent {
    /// `None` if the building has since removed the door.
    pub door_id: Option<u32>,
    pub door_name: Option<String>,
    /// Unix seconds, from the lock's trusted clock.
    pub at: i64,
    /// "opened" or "denied".
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl AccessEvent {
    pub fn opened(&self) -> bool {
        self.decision == "opened"
    }
}

/// How long the building keeps the log of one door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub door_id: u32,
    pub door_name: String,
    pub retention_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLog {
    /// Newest first.
    pub events: Vec<AccessEvent>,
    pub retention: Vec<Retention>,
}

/// Records per upload; the server accepts at most 500.
pub(crate) const UPLOAD_BATCH: usize = 200;

/// The server's answer to an upload: how many records it stored now and how many it held
/// already (same lock and audit counter).
#[derive(Deserialize)]
pub(crate) struct IngestResult {
    pub accepted: usize,
    pub duplicates: usize,
    /// Verified but already past their door's retention: dropped by the server, for good.
    #[serde(default)]
    pub expired: usize,
    /// Verified but dated too far after the upload (the lock's clock was wrong): dropped too.
    #[serde(default)]
    pub implausible_time: usize,
}

impl IngestResult {
    /// Records the server has dealt with for good: stored now or before, or dropped as it
    /// will always drop them. Only these leave the outbox.
    pub fn settled(&self) -> usize {
        self.accepted + self.duplicates + self.expired + self.implausible_time
    }
}
