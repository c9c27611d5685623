//! What the devices domain needs from storage, as one trait. Handlers in [`super`] hold an
//! `Arc<dyn DeviceStore>` and never see SQL; each backend runs the shared suite in
//! [`super::store_tests`].
//!
//! A device is a session: the device id is the session id.

use async_trait::async_trait;

use crate::error::ApiError;

/// What enrolling a key for a session found. Only `Enrolled` changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrollment {
    Enrolled,
    /// The session already has this very key.
    AlreadyThisKey,
    /// The session already has a different key.
    SessionHasOtherKey,
    /// The key belongs to another session.
    KeyOfOtherSession,
}

/// One signed-in device of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_id: String,
    pub device_name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Client IP at sign-in.
    pub ip: String,
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Enrolls `public_key` for `user_id`'s session unless the session or the key already
    /// has a partner.
    async fn enroll_key(
        &self,
        session_id: &str,
        user_id: &str,
        public_key: [u8; 32],
        now: i64,
    ) -> Result<Enrollment, ApiError>;
    /// The account's devices still signed in (unrevoked, with a live unused refresh token at
    /// `now`), most recently seen first.
    async fn active_devices(&self, user_id: &str, now: i64) -> Result<Vec<DeviceRecord>, ApiError>;
    /// Revokes `user_id`'s unrevoked session `device_id`: its tokens, and its device key at
    /// every site where one of its credentials is still valid. `false` if the account has no
    /// such session.
    async fn revoke_device(&self, user_id: &str, device_id: &str, now: i64) -> Result<bool, ApiError>;
}
