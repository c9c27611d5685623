//! # porta-lock
//!
//! The lock's side of the Porta door protocol ([`porta_protocol`]) with I/O around it:
//!
//! * [`Lock`] — the lock's persistent role: its provisioned identity, its
//!   [`LockState`](porta_protocol::LockState) (saved atomically after every handshake
//!   step) and an append-only log of the signed audit records it produced.
//! * [`LockConnection`] — one BLE connection: reassembles GATT-write fragments, runs the
//!   handshake and returns the notification fragments to send back.
//! * [`SimulatedLock`] / [`SimulatedLink`] — the lock on an in-memory BLE link with a
//!   virtual-time model of connection events, for phone tests, demos and benchmarks.
//! * [`NewLock`] — a lock before installation: its own key, the provisioning request it
//!   signs, and installing the certificate the site answers with; [`LockProvision`] after.
//! * [`LockDir`] — the same on disk: a lock's data directory with its key (created there,
//!   never overwritten), its installed certificate and its [`Lock`] state.
//!
//! The timing model is described in this crate's `README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod lock;
mod lock_dir;
mod provision;
mod sim;

pub use error::{LinkError, LockError};
pub use lock::{Lock, LockConnection, UnlockOutcome, AUDIT_LOG_FILE, IDENTITY_FILE, STATE_FILE};
pub use lock_dir::{LockDir, LockDirStatus, AUTHORITY_FILE, CERTIFICATE_FILE, LOCK_KEY_FILE};
pub use provision::{provision_new_lock, LockProvision, NewLock};
pub use sim::{Direction, LinkParams, LinkStats, SimulatedLink, SimulatedLock};

/// Re-exported so users of this crate need no direct dependency for the basics.
pub use porta_protocol;
