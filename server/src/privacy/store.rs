//! What the privacy domain needs from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn PrivacyStore>` and never see SQL; they turn the typed records into the API's
//! data categories and choose the errors. Each backend runs the shared suite in
//! [`super::store_tests`].
//!
//! Records holding personal data (names, addresses, IPs) have no `Debug`, so they cannot end
//! up in logs.
//!
//! Confirming a deletion is one atomic unit: the code's attempt count, the receipt and the
//! erasure commit together, so two server instances on one database agree on them.

use async_trait::async_trait;

use super::DeletionReceipt;
use crate::access::store::DoorRetention;
use crate::auth::store::CodeLimits;
use crate::error::ApiError;
use crate::identity::Identifier;

#[derive(Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The account's email and phone as stored (either may be missing).
#[derive(Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A contact change waiting for its confirmation code.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingContactChange {
    /// `email` or `phone`.
    pub field: String,
    pub value: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub site_name: String,
    pub site_address: String,
}

/// What is known about a picture without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureMeta {
    pub content_type: String,
    pub size_bytes: i64,
    pub updated_at: i64,
}

/// The picture itself, for the export.
#[derive(Clone, PartialEq, Eq)]
pub struct PictureFile {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: String,
    pub device_name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: String,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeyRecord {
    pub session_id: String,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub grant_id: String,
    pub door_id: u32,
    /// `None` once the door is gone.
    pub door_name: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// The schedule as stored (JSON), if the grant has one.
    pub schedule_json: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    pub credential_id: Vec<u8>,
    pub session_id: String,
    /// The doors as stored (a JSON list).
    pub doors_json: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    /// Revoked by id, or through its revoked device key.
    pub revoked: bool,
}

/// One of the person's access events, with everything stored about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEventRecord {
    pub door_id: Option<u32>,
    pub door_name: Option<String>,
    pub lock_id: u32,
    pub at: i64,
    /// The protocol's decision code.
    pub decision: u8,
    pub credential_id: Vec<u8>,
    pub received_at: i64,
    /// The lock-signed record.
    pub record: Vec<u8>,
}

/// One change of a consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub purpose: String,
    pub granted: bool,
    pub at: i64,
}

/// A pending one-time code, without the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub purpose: String,
    pub expires_at: i64,
    pub attempts: i64,
}

/// Everything stored about one account, read at one point in time.
#[derive(Clone, PartialEq)]
pub struct PersonalData {
    pub profile: ProfileRecord,
    pub contact: ContactRecord,
    pub pending_contact_change: Option<PendingContactChange>,
    pub unit: Option<UnitRecord>,
    pub picture: Option<PictureMeta>,
    /// Oldest first.
    pub sessions: Vec<SessionRecord>,
    /// Oldest first.
    pub device_keys: Vec<DeviceKeyRecord>,
    /// By door, then oldest first.
    pub grants: Vec<GrantRecord>,
    /// By issue time.
    pub credentials: Vec<CredentialRecord>,
    /// The invitations store's view: what the person sent, and the guest access they hold.
    pub invitations_sent: serde_json::Value,
    pub guest_access: Option<serde_json::Value>,
    /// The log retention of each door the person has a grant for or events at, by door.
    pub access_retention: Vec<DoorRetention>,
    /// Newest first (by time, then by arrival).
    pub access_events: Vec<AccessEventRecord>,
    /// Every consent change, oldest first (the last one per purpose is the current choice).
    pub consent_history: Vec<ConsentChange>,
    /// Of the account's email, then phone: sign-in code, then deletion code.
    pub pending_codes: Vec<PendingCode>,
    /// Times codes were requested for the account's email, then phone, oldest first each.
    pub code_requests: Vec<i64>,
}

/// Whose account a deletion confirms.
#[derive(Clone, PartialEq, Eq)]
pub enum Who {
    /// The signed-in caller.
    User(String),
    /// Whoever typed this identifier on the deletion page.
    Identifier(Identifier),
}

/// What confirming a deletion did.
#[derive(Debug)]
pub enum Deletion {
    /// The account is erased and this receipt stored under the request.
    Deleted(DeletionReceipt),
    /// No account by the identifier, and the request already has this receipt: a retry after
    /// success. Nothing changed.
    AlreadyDeleted(DeletionReceipt),
    /// The signed-in account no longer exists.
    AccountGone,
    /// The code did not confirm it (`invalid_code`, `code_expired`, `too_many_attempts`); a
    /// wrong guess was counted against the code.
    CodeRejected(ApiError),
    /// The code was right but no account goes by the identifier.
    NoAccount,
    /// The request id already has someone else's receipt. Nothing changed: the code is still
    /// pending.
    RequestIdTaken,
}

#[async_trait]
pub trait PrivacyStore: Send + Sync {
    /// Everything stored about `user_id`; `None` if there is no such account.
    async fn personal_data(&self, user_id: &str) -> Result<Option<PersonalData>, ApiError>;
    /// [`personal_data`](Self::personal_data) and the picture, read together.
    async fn export(&self, user_id: &str) -> Result<Option<(PersonalData, Option<PictureFile>)>, ApiError>;
    /// The account's email and phone; `None` if there is no such account.
    async fn contact(&self, user_id: &str) -> Result<Option<ContactRecord>, ApiError>;
    /// Whether an account signs in with `identifier`.
    async fn account_exists(&self, identifier: &Identifier) -> Result<bool, ApiError>;

    /// Every consent change of `user_id`, oldest first.
    async fn consent_history(&self, user_id: &str) -> Result<Vec<ConsentChange>, ApiError>;
    /// Records a consent change and returns the purpose's current choice after it.
    async fn record_consent(
        &self,
        user_id: &str,
        purpose: &str,
        granted: bool,
        now: i64,
    ) -> Result<ConsentChange, ApiError>;

    /// Checks the pending deletion code of `who` (for the signed-in user: of the identifier
    /// with one pending, email first) and, if it is right, erases the account and stores a
    /// receipt `{now, now + backup_retention_s}` under `request_hash`, in one transaction.
    async fn confirm_deletion(
        &self,
        who: &Who,
        code: &str,
        request_hash: &str,
        now: i64,
        limits: CodeLimits,
        backup_retention_s: i64,
    ) -> Result<Deletion, ApiError>;
    /// The receipt stored under `request_hash`.
    async fn receipt(&self, request_hash: &str) -> Result<Option<DeletionReceipt>, ApiError>;
    /// Deletes receipts whose backups are gone by `now`; returns how many.
    async fn purge_receipts(&self, now: i64) -> Result<usize, ApiError>;
    /// Makes deleted rows unrecoverable from the storage's own files (SQLite: the WAL). Best
    /// effort: a failure is logged and retried on the next purge.
    async fn compact(&self);
}
