//! The crate's error type.

use core::fmt;

use crate::updates::DenyReason;

/// Every way input can be rejected. No function of this crate panics on any input;
/// it returns one of these instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Input ended before a complete structure was read.
    Truncated,
    /// Bytes left over after a complete structure.
    TrailingBytes,
    /// A message is larger than [`crate::wire::MAX_MESSAGE_LEN`].
    MessageTooLarge,
    /// An empty message was given to the fragmenter.
    EmptyMessage,
    /// ATT MTU outside `23..=517`.
    InvalidMtu(u16),
    /// A fragment header is inconsistent (bad first-fragment sequence, empty fragment…).
    BadFragment,
    /// A fragment arrived out of order (wrong sequence, continuation without a start,
    /// or a new start in the middle of a message).
    FragmentOutOfOrder,
    /// Reassembled length differs from the length announced in the first fragment.
    FragmentLengthMismatch,
    /// First byte of a message is not a known message type.
    UnknownMessageType(u8),
    /// A known message arrived in a state that does not expect it.
    UnexpectedMessage {
        /// Message type the state machine was waiting for.
        expected: u8,
        /// Message type received.
        got: u8,
    },
    /// Unsupported protocol / format version.
    UnsupportedVersion(u8),
    /// A field has an out-of-range or inconsistent value.
    InvalidField(&'static str),
    /// A signature (credential, certificate, update or audit record) does not verify.
    InvalidSignature,
    /// The lock's certificate is not signed by the site authority the phone trusts.
    UntrustedLock,
    /// The lock's transcript signature does not verify with its certified key.
    LockSignatureInvalid,
    /// The lock's certificate does not list the door the phone wants to open.
    DoorNotControlled,
    /// The lock's certificate is outside its validity period at the phone's time.
    LockCertificateExpired,
    /// The lock is certified, but it is not the lock the site has on record for this door:
    /// replaced or decommissioned (its certificate revoked), so not to be trusted.
    LockNotCurrent,
    /// The peer's X25519 share is a low-order point (non-contributory exchange).
    WeakKey,
    /// AEAD decryption failed (tampered, replayed or mis-keyed message).
    DecryptFailed,
    /// The state machine was used after it finished or failed.
    InvalidState,
    /// The device signing key does not match the credential's device key.
    DeviceKeyMismatch,
    /// The phone's local pre-check found the credential unusable for this attempt.
    CredentialNotUsable(DenyReason),
    /// The lock's audit record is inconsistent with this session.
    AuditMismatch,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input truncated"),
            Self::TrailingBytes => f.write_str("trailing bytes after structure"),
            Self::MessageTooLarge => f.write_str("message exceeds maximum size"),
            Self::EmptyMessage => f.write_str("empty message"),
            Self::InvalidMtu(m) => write!(f, "invalid ATT MTU {m}"),
            Self::BadFragment => f.write_str("malformed fragment"),
            Self::FragmentOutOfOrder => f.write_str("fragment out of order"),
            Self::FragmentLengthMismatch => f.write_str("fragment length mismatch"),
            Self::UnknownMessageType(t) => write!(f, "unknown message type {t:#04x}"),
            Self::UnexpectedMessage { expected, got } => {
                write!(f, "unexpected message {got:#04x}, expected {expected:#04x}")
            }
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::InvalidField(name) => write!(f, "invalid field: {name}"),
            Self::InvalidSignature => f.write_str("invalid signature"),
            Self::UntrustedLock => f.write_str("lock certificate not signed by the site authority"),
            Self::LockSignatureInvalid => f.write_str("lock transcript signature invalid"),
            Self::DoorNotControlled => f.write_str("lock is not certified for this door"),
            Self::LockCertificateExpired => f.write_str("lock certificate outside its validity period"),
            Self::LockNotCurrent => f.write_str("lock is not the one on record for this door"),
            Self::WeakKey => f.write_str("non-contributory key exchange"),
            Self::DecryptFailed => f.write_str("decryption failed"),
            Self::InvalidState => f.write_str("handshake already finished or failed"),
            Self::DeviceKeyMismatch => f.write_str("device key does not match credential"),
            Self::CredentialNotUsable(r) => write!(f, "credential not usable: {r:?}"),
            Self::AuditMismatch => f.write_str("audit record inconsistent with session"),
        }
    }
}

impl core::error::Error for ProtocolError {}
