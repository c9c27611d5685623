//! # porta-protocol
//!
//! The Porta door protocol as pure, sans-IO state machines for both roles:
//!
//! * [`phone::PhoneHandshake`] — the phone (holder of a device key and a credential);
//! * [`lock::LockHandshake`] — the lock (holder of a site-certified lock key).
//!
//! The crate performs no I/O, has no clock and no RNG of its own: callers pass the
//! current time (unix seconds, and a millisecond timer for the lock's response
//! deadline) and a `RngCore + CryptoRng`. Messages are byte vectors; use
//! [`wire::fragment`] / [`wire::Reassembler`] to carry them over BLE GATT writes and
//! notifications for any ATT MTU from 23 to 517.
//!
//! Handshake (2 GATT round trips):
//!
//! ```text
//! phone                                   lock
//!   Hello{eph_P, nonce_P}            ──▶
//!                                    ◀──  Challenge{eph_L, nonce_L, attempt, LockCert, sig_L}
//!   (verify LockCert and sig_L)
//!   Proof{AEAD(door, Credential,     ──▶
//!         time update, sig_device)}       (verify, apply time update, decide)
//!                                    ◀──  Result{AEAD(signed AuditRecord, lock status)}
//!   then, door already decided, any number of:
//!   Update{AEAD(RevocationDelta)}    ──▶
//!                                    ◀──  UpdateAck{AEAD(status, lock status)}
//! ```
//!
//! The byte-level specification is in `SPEC.md` next to this crate's `Cargo.toml`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod credential;
mod crypto;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod lock;
pub mod messages;
pub mod phone;
pub mod updates;
pub mod wire;

pub use credential::{
    Credential, CredentialBody, LockCertificate, ProvisioningRequest, TimeWindow, WeeklySchedule,
    PROVISIONING_REQUEST_LEN,
};
pub use error::ProtocolError;
pub use lock::{LockConfig, LockHandshake, LockOutcome, LockState, UpdateOutcome, UpdateStatus};
pub use messages::{DeltaStatus, MessageType};
pub use phone::{PhoneHandshake, PhoneOutcome, PhoneParams, UpdateAck, Updates};
pub use updates::{
    AuditRecord, Decision, DenyReason, LockStatus, RevocationDelta, RevokedCredential, RevokedDevice, TimeUpdate,
};
pub use wire::{fragment, Reassembler};

/// Re-exported so callers use exactly the key types this crate was built against.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use rand_core::{CryptoRng, RngCore};

/// Protocol version carried in `Hello` and `Challenge`, and format version of every
/// signed structure.
pub const PROTOCOL_VERSION: u8 = 1;

/// A door identifier, unique within a site (big-endian `u32` on the wire).
pub type DoorId = u32;
/// A lock identifier, unique within a site, never 0 (big-endian `u32` on the wire).
pub type LockId = u32;
/// A credential identifier, 16 random bytes chosen by the site authority.
pub type CredentialId = [u8; 16];

/// Maximum time (milliseconds) between the lock sending its `Challenge` and receiving
/// the *last fragment* of the phone's `Proof`; later proofs are denied with
/// [`DenyReason::Timeout`].
pub const PROOF_DEADLINE_MS: u64 = 2000;

/// Maximum number of doors in a credential or lock certificate.
pub const MAX_DOORS: usize = 32;
/// Maximum number of windows in a weekly schedule.
pub const MAX_SCHEDULE_WINDOWS: usize = 16;
