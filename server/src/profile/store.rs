//! What the profile domain needs from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn ProfileStore>` and never see SQL; each backend runs the shared suite in
//! [`super::store_tests`].
//!
//! Every method takes the caller's user id: there is no way to address another account.

use std::net::IpAddr;

use async_trait::async_trait;

use super::ContactField;
use crate::auth::store::CodeLimits;
use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    pub id: String,
    pub name: String,
    /// `apartment` or `office`.
    pub kind: String,
}

/// A change of email or phone waiting for its code.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingContactRecord {
    pub field: ContactField,
    pub value: String,
    pub expires_at: i64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub unit: Option<UnitRecord>,
    pub has_picture: bool,
    pub updated_at: i64,
    /// Only one that has not expired.
    pub pending_contact: Option<PendingContactRecord>,
}

// Debug shows no name, address or phone number: they are personal data.
impl std::fmt::Debug for PendingContactRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingContactRecord")
            .field("field", &self.field)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ProfileRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileRecord")
            .field("user_id", &self.user_id)
            .field("has_email", &self.email.is_some())
            .field("has_phone", &self.phone.is_some())
            .field("unit", &self.unit)
            .field("has_picture", &self.has_picture)
            .field("updated_at", &self.updated_at)
            .field("pending_contact", &self.pending_contact)
            .finish_non_exhaustive()
    }
}

/// A new address for `field`, pending until `code` (sent to it) confirms it.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactRequest {
    pub field: ContactField,
    pub value: String,
    pub code: String,
}

/// What a profile update writes, decided by the domain from the current profile.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub name: Option<String>,
    /// Fields set to none at once.
    pub clear: Vec<ContactField>,
    /// Fields whose pending change is dropped.
    pub drop_pending: Vec<ContactField>,
    /// Replaces any pending change.
    pub request: Option<ContactRequest>,
}

/// Decides, inside the update's transaction, what to write given the current profile; an
/// error leaves everything as it was.
pub type PlanChange = Box<dyn FnOnce(&ProfileRecord) -> Result<ProfileChange, ApiError> + Send>;

/// The outcome of an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedProfile {
    pub profile: ProfileRecord,
    /// The contact change requested, if one was.
    pub requested: Option<RequestedContact>,
}

/// A contact change now pending.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestedContact {
    pub field: ContactField,
    pub value: String,
    /// Whether its code may be sent. It may not when another account uses the address; the
    /// change is pending all the same and its code can never match.
    pub code_sendable: bool,
}

impl std::fmt::Debug for RequestedContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestedContact")
            .field("field", &self.field)
            .field("code_sendable", &self.code_sendable)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct PictureRecord {
    /// `image/png` or `image/jpeg`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The account's profile; `None` if there is no such account.
    async fn profile(&self, user_id: &str, now: i64) -> Result<Option<ProfileRecord>, ApiError>;

    /// Drops expired pending changes, reads the profile, lets `plan` decide and writes what it
    /// decided, all in one transaction, and answers with the profile as it is now. A contact
    /// request is counted against the code limits for its address and `ip` (errs with
    /// `rate_limited`, changing nothing). `None` if there is no such account.
    async fn update_profile(
        &self,
        user_id: &str,
        plan: PlanChange,
        ip: IpAddr,
        now: i64,
        limits: CodeLimits,
    ) -> Result<Option<UpdatedProfile>, ApiError>;

    /// Applies the pending contact change if `code` is its code, with the same attempt count
    /// and errors as sign-in codes (`invalid_code`, `too_many_attempts`, `code_expired`). An
    /// address another account took meanwhile fails like a wrong code. Once applied, nothing
    /// kept under the old address's hashes remains. Answers with the updated profile.
    async fn confirm_contact(
        &self,
        user_id: &str,
        code: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<Option<ProfileRecord>, ApiError>;

    /// Sets the picture (replacing one); the profile counts as changed.
    async fn put_picture(&self, user_id: &str, picture: PictureRecord, now: i64) -> Result<(), ApiError>;
    async fn picture(&self, user_id: &str) -> Result<Option<PictureRecord>, ApiError>;
    /// Removes the picture; `false` if there was none (then the profile is unchanged).
    async fn delete_picture(&self, user_id: &str, now: i64) -> Result<bool, ApiError>;
}
