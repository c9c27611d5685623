//! The person's signed-in devices; signing one out revokes its key and credentials.

use serde::{Deserialize, Serialize};

/// A signed-in device (one per session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub device_id: String,
    pub device_name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The address it last signed in from.
    #[serde(default)]
    pub ip: Option<String>,
    /// This phone.
    pub current: bool,
}
