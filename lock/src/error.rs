//! Error types.

use porta_protocol::ProtocolError;

/// Errors of the lock role ([`crate::Lock`], [`crate::LockConnection`]).
///
/// Every error returned by [`crate::LockConnection::on_write`] ends the connection:
/// later writes return [`LockError::ConnectionClosed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A fragment could not be reassembled (bad header, out of order, wrong length…).
    #[error("bad fragment: {0}")]
    Framing(ProtocolError),
    /// A fragment is larger than the connection's ATT MTU allows.
    #[error("fragment of {len} bytes exceeds the {max} bytes allowed by the ATT MTU")]
    FragmentTooLarge {
        /// Length of the fragment received.
        len: usize,
        /// Largest fragment for the connection's ATT MTU.
        max: usize,
    },
    /// The handshake refused a message (wrong type or state, malformed Hello, weak key…).
    #[error("handshake: {0}")]
    Protocol(ProtocolError),
    /// The connection already failed or finished its handshake.
    #[error("connection closed")]
    ConnectionClosed,
    /// ATT MTU outside 23..=517.
    #[error("invalid ATT MTU {0} (must be 23..=517)")]
    InvalidMtu(u16),
    /// The persisted lock state could not be parsed.
    #[error("persisted lock state is corrupt: {0}")]
    CorruptState(ProtocolError),
    /// The audit log holds a record that does not parse.
    #[error("audit log is corrupt at byte {offset}")]
    CorruptAuditLog {
        /// Offset of the bad entry in the log file.
        offset: u64,
    },
    /// The state directory was created by a lock with another identity.
    #[error("state directory belongs to another lock")]
    StateMismatch,
    /// Provisioning data is invalid (certificate, keys).
    #[error("invalid provisioning data: {0}")]
    Provision(ProtocolError),
    /// The certificate is valid but certifies another lock's key: the answer to another
    /// lock's provisioning request.
    #[error("the certificate is for another lock's key")]
    CertificateForAnotherKey,
    /// The lock directory has no key yet, so nothing can be installed in it.
    #[error("the lock has no key yet: make a provisioning request first")]
    NoKey,
    /// The lock directory has a key but no installed certificate.
    #[error("the lock has no certificate installed")]
    NotInstalled,
    /// The lock is installed as `lock_id` and the certificate names another lock id or
    /// comes from another site authority: a key is installed once.
    #[error("the lock is already installed as lock {lock_id}; this certificate is for another lock id or site")]
    AlreadyInstalled {
        /// Lock id of the installed certificate.
        lock_id: u32,
    },
    /// The certificate starts before the installed one: an old answer, not a renewal.
    #[error("the certificate is older than the installed one")]
    OlderCertificate,
    /// A file of the lock directory is truncated or damaged. It is left as it is.
    #[error("lock directory file `{file}` is corrupt: {problem}")]
    CorruptLockFile {
        /// The file's name in the lock directory.
        file: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Reading or writing the state directory failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors of the simulated BLE link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The lock is out of radio range (connect fails, an open link drops).
    #[error("lock not in range")]
    NotInRange,
    /// Another phone is connected to the lock.
    #[error("lock busy")]
    Busy,
    /// The link was closed (by either side, or the lock walked out of range).
    #[error("disconnected")]
    Disconnected,
    /// No notification within the timeout.
    #[error("timed out waiting for a notification")]
    Timeout,
    /// The lock rejected what the phone sent and dropped the connection.
    #[error("lock error: {0}")]
    Lock(#[from] LockError),
}
