//! The one error apps see. Variants are what a UI can act on; core errors are mapped here
//! and nowhere else.

/// Why a Porta call failed. Messages carry no personal data and no secrets.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum PortaError {
    /// Server unreachable or the connection failed: show "offline", retry later.
    #[error("network error: {reason}")]
    Network { reason: String },
    /// Sign in first (or again: the session ended or was revoked).
    #[error("not signed in")]
    NotSignedIn,
    /// The one-time code is wrong, or the invitation link or code is not one of this server.
    #[error("invalid code")]
    InvalidCode,
    /// The one-time code, the invitation, or the access has expired.
    #[error("expired")]
    Expired,
    /// Every use of the invitation was taken by other devices.
    #[error("invitation used up")]
    UsedUp,
    /// Guests (an invitation accepted without an account) cannot do this.
    #[error("not available to guests")]
    GuestAccount,
    /// Too many wrong codes: request a new code.
    #[error("too many attempts")]
    TooManyAttempts,
    /// The server could not send the code just now (its email or SMS provider failed):
    /// "We could not send your code; try again in `retry_after_s` s".
    #[error("code not delivered, retry after {retry_after_s} s")]
    CodeNotDelivered { retry_after_s: u64 },
    /// Slow down; try again after `retry_after_s` seconds.
    #[error("rate limited, retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// The user entered something the backend refuses; `field` says which.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// That email or phone number belongs to another account.
    #[error("already in use")]
    AlreadyInUse,
    #[error("not found")]
    NotFound,
    /// No such door, or no credential for it: sync doors, or ask the building.
    #[error("no access to this door")]
    NoAccess,
    /// The access has not started yet (a guest's window opens later).
    #[error("not valid yet")]
    NotYetValid,
    /// Valid, but not at this time of the week.
    #[error("outside the access schedule")]
    OutsideSchedule,
    /// This device or its access was revoked (also: the invitation was withdrawn).
    #[error("access revoked")]
    Revoked,
    /// The lock refused for another reason (tampering, too slow, bad signature).
    #[error("access denied")]
    Denied,
    /// The lock is not in Bluetooth range.
    #[error("lock not in range")]
    NotInRange,
    /// Another phone is using the lock; try again.
    #[error("lock busy")]
    LockBusy,
    /// The lock did not answer in time.
    #[error("timed out")]
    Timeout,
    /// Bluetooth is off: ask the user to turn it on.
    #[error("bluetooth is off")]
    BluetoothOff,
    /// The app may not use Bluetooth: ask for the permission (Android: BLUETOOTH_SCAN and
    /// BLUETOOTH_CONNECT; iOS: NSBluetoothAlwaysUsageDescription).
    #[error("bluetooth not permitted")]
    BluetoothNotPermitted,
    /// The link to the lock dropped mid-handshake; try again closer to the door.
    #[error("connection to the lock lost")]
    ConnectionLost,
    /// What answered for this door is not the building's lock for it (replaced, decommissioned,
    /// another door's, or not certified): nothing identifying was sent. Say so, and suggest
    /// telling the building.
    #[error("this is not the building's lock for the door")]
    UntrustedLock,
    /// The Bluetooth link failed, or the lock broke the protocol (e.g. not certified by the site).
    #[error("bluetooth: {reason}")]
    Bluetooth { reason: String },
    /// The backend failed or answered something unexpected.
    #[error("server error: {reason}")]
    Server { reason: String },
    /// Local storage (database or secure store) failed.
    #[error("storage error: {reason}")]
    Storage { reason: String },
    /// A bug; please report it.
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<porta_core::Error> for PortaError {
    fn from(e: porta_core::Error) -> Self {
        use porta_core::Error as E;
        match e {
            E::Network(reason) => PortaError::Network { reason },
            E::NotSignedIn => PortaError::NotSignedIn,
            E::InvalidCode => PortaError::InvalidCode,
            E::CodeExpired => PortaError::Expired,
            E::TooManyAttempts => PortaError::TooManyAttempts,
            E::RateLimited { retry_after_s } => PortaError::RateLimited { retry_after_s },
            E::CodeNotDelivered { retry_after_s } => PortaError::CodeNotDelivered { retry_after_s },
            E::InvalidInput { field, reason } => {
                PortaError::InvalidInput { field: field.to_owned(), reason: reason.to_owned() }
            }
            E::AlreadyInUse => PortaError::AlreadyInUse,
            E::NotFound => PortaError::NotFound,
            E::NoAccess => PortaError::NoAccess,
            E::Invitation(reason) => match reason {
                porta_core::InvitationError::Unknown => PortaError::InvalidCode,
                porta_core::InvitationError::Expired => PortaError::Expired,
                porta_core::InvitationError::UsedUp => PortaError::UsedUp,
                porta_core::InvitationError::Revoked => PortaError::Revoked,
            },
            E::GuestAccount => PortaError::GuestAccount,
            E::Denied(reason) => match reason {
                porta_core::DenialReason::Expired => PortaError::Expired,
                porta_core::DenialReason::NotYetValid => PortaError::NotYetValid,
                porta_core::DenialReason::OutsideSchedule => PortaError::OutsideSchedule,
                porta_core::DenialReason::Revoked => PortaError::Revoked,
                porta_core::DenialReason::UnknownDoor => PortaError::NoAccess,
                porta_core::DenialReason::Rejected => PortaError::Denied,
            },
            E::NotInRange => PortaError::NotInRange,
            E::LockBusy => PortaError::LockBusy,
            E::Timeout => PortaError::Timeout,
            E::BluetoothOff => PortaError::BluetoothOff,
            E::BluetoothNotPermitted => PortaError::BluetoothNotPermitted,
            E::ConnectionLost => PortaError::ConnectionLost,
            E::UntrustedLock => PortaError::UntrustedLock,
            e @ (E::NoRadio | E::Transport(_) | E::Protocol(_)) => PortaError::Bluetooth { reason: e.to_string() },
            e @ (E::Server { .. } | E::InvalidResponse(_)) => PortaError::Server { reason: e.to_string() },
            e @ (E::Storage(_) | E::SecureStore(_)) => PortaError::Storage { reason: e.to_string() },
            E::Internal(reason) => PortaError::Internal { reason },
        }
    }
}
