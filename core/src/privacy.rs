//! The person's rights over their data, in the app: see everything held about them (with
//! purpose, legal basis, retention and who sees it), export it, object to marketing, and
//! delete the account — confirmed by a fresh code, resumable if interrupted, and followed by
//! a wipe of everything this phone stored.

use serde::{Deserialize, Serialize};

/// One category of personal data the backend holds about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCategory {
    pub category: String,
    pub description: String,
    pub purpose: String,
    pub legal_basis: String,
    pub retention: String,
    /// Who can see it ("you", "building administrators", ...).
    pub visible_to: Vec<String>,
    /// The data itself, as JSON.
    pub items: serde_json::Value,
}

/// Everything the backend holds about the signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MyData {
    pub user_id: String,
    pub categories: Vec<DataCategory>,
}

/// A consent the person can give and withdraw (marketing is off until given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub purpose: String,
    pub granted: bool,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

/// Proof that the account was deleted, and when backups holding it are purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionReceipt {
    pub deleted_at: i64,
    /// At most 90 days after `deleted_at`.
    pub backups_purged_by: i64,
}

/// Secure-store key of an account deletion in progress.
pub(crate) const PENDING_DELETION_KEY: &str = "porta.pending_deletion";

/// Written before the request (so a retry reuses `request_id`) and again once the server
/// confirmed (so the next start finishes the local wipe without the network).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingDeletion {
    pub request_id: String,
    #[serde(default)]
    pub receipt: Option<DeletionReceipt>,
}

/// Writes `bytes` to `path` atomically (temp file + rename), readable only by the owner.
pub(crate) fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| crate::Error::Storage(format!("export file: {}", e.kind()));
    let tmp = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
