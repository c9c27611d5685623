//! The core's one error type. Variants say what happened in terms a caller can act on;
//! none carries personal data, tokens or URLs with identifiers in them.

/// Errors returned by every fallible operation of the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached, timed out, or the connection broke.
    #[error("network error: {0}")]
    Network(String),
    /// No session, or the server no longer accepts it (signed out elsewhere, revoked).
    #[error("not signed in")]
    NotSignedIn,
    /// The one-time code is wrong.
    #[error("the code is not correct")]
    InvalidCode,
    /// The one-time code has expired; request a new one.
    #[error("the code has expired")]
    CodeExpired,
    /// Too many wrong codes; request a new one.
    #[error("too many attempts; request a new code")]
    TooManyAttempts,
    /// The server could not send the one-time code just now (its email or SMS provider
    /// failed); ask again after the given number of seconds.
    #[error("the code could not be sent; try again in {retry_after_s} s")]
    CodeNotDelivered { retry_after_s: u64 },
    /// Too many requests; try again after the given number of seconds.
    #[error("rate limited; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// A value the user entered was refused. `field` names it (`identifier`, `name`, `email`,
    /// `phone`, `picture`, `device_name`); `reason` says why, without echoing the value.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: &'static str },
    /// The email or phone number belongs to another account.
    #[error("already in use by another account")]
    AlreadyInUse,
    /// The requested thing does not exist.
    #[error("not found")]
    NotFound,
    /// No door by that id, or no credential that opens it: sync, or ask the building.
    #[error("no access to this door")]
    NoAccess,
    /// The invitation link or code cannot be used; the variant says why. Never carries the code.
    #[error("invitation: {0}")]
    Invitation(InvitationError),
    /// Guests (who accepted an invitation without an account) cannot do this: edit a profile,
    /// invite others, delete an account.
    #[error("not available to guests")]
    GuestAccount,
    /// The lock (or the phone, before asking it) refused to open.
    #[error("access denied: {0:?}")]
    Denied(crate::unlock::DenialReason),
    /// The lock is not in Bluetooth range.
    #[error("lock not in range")]
    NotInRange,
    /// Another phone is talking to the lock; try again in a moment.
    #[error("lock busy")]
    LockBusy,
    /// The lock did not answer in time.
    #[error("the lock did not answer in time")]
    Timeout,
    /// Bluetooth is off: ask the user to turn it on.
    #[error("bluetooth is off")]
    BluetoothOff,
    /// The platform does not let this app use Bluetooth: ask the user to allow it.
    #[error("bluetooth permission denied")]
    BluetoothNotPermitted,
    /// The link to the lock dropped mid-handshake (after one retry, or after the Proof went
    /// out, when the door may have opened). Try again closer to the lock.
    #[error("connection to the lock lost")]
    ConnectionLost,
    /// This build has no Bluetooth transport and the client was given none
    /// (`ClientConfig::lock_transport`).
    #[error("no Bluetooth transport in this build")]
    NoRadio,
    /// The Bluetooth link failed otherwise (no adapter, the Bluetooth service not running, not
    /// a Porta lock); the text says which.
    #[error("bluetooth: {0}")]
    Transport(String),
    /// The device answering for this door is not the building's lock for it: not certified
    /// by the site, certified for another door, replaced or decommissioned (its certificate
    /// revoked), or past its certificate's validity. Nothing identifying was sent to it. Tell
    /// the building; syncing may help if the lock was replaced since the last sync.
    #[error("this is not the building's lock for the door")]
    UntrustedLock,
    /// The lock sent something the protocol forbids.
    #[error("door protocol: {0}")]
    Protocol(String),
    /// The server answered with an error this version does not know.
    #[error("server error {status}: {code}")]
    Server { status: u16, code: String },
    /// The server answered something that is not the documented API.
    #[error("invalid response from server: {0}")]
    InvalidResponse(String),
    /// The local database failed.
    #[error("local storage error: {0}")]
    Storage(String),
    /// The platform's secure storage failed.
    #[error("secure storage error: {0}")]
    SecureStore(String),
    /// A bug or an impossible state; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why an invitation link or code cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    /// Not an invitation of this server (mistyped, or not a link or code at all).
    #[error("unknown invitation")]
    Unknown,
    /// Its window has ended.
    #[error("the invitation has expired")]
    Expired,
    /// Every use was taken by other devices.
    #[error("the invitation has been used up")]
    UsedUp,
    /// The resident withdrew it.
    #[error("the invitation was revoked")]
    Revoked,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite messages name tables and constraints, never row values.
        Error::Storage(e.to_string())
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        // Drop the URL: paths may one day carry identifiers.
        let e = e.without_url();
        if e.is_decode() {
            Error::InvalidResponse(e.to_string())
        } else {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            Error::Network(kind.to_string())
        }
    }
}

/// Describes a JSON decoding failure by kind and position only: serde's own message can quote
/// the offending value, which may be someone's name or email.
pub(crate) fn json_error(what: &str, e: &serde_json::Error) -> String {
    format!("{what}: {:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_errors_do_not_quote_values() {
        let e = serde_json::from_str::<u32>("\"ada@example.com\"").unwrap_err();
        let text = super::json_error("profile", &e);
        assert!(!text.contains("ada"), "{text}");
        assert!(text.starts_with("profile: Data"), "{text}");
    }
}
