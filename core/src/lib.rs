//! # porta-core
//!
//! The Porta client: everything a residents' door-access app does, as idiomatic Rust.
//! Apps reach it through `porta-ffi` (Swift, Kotlin); the `porta` terminal app uses it directly.
//!
//! Start with [`Client::new`], giving it a [`ClientConfig`] and a [`SecureStore`].

mod access_log;
mod api;
mod auth;
#[cfg(feature = "bluetooth")]
pub mod bluetooth;
mod client;
mod clock;
mod device;
mod devices;
mod doors;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod invitations;
mod privacy;
mod profile;
mod secret;
mod secure_store;
#[cfg(feature = "simulator")]
pub mod simulated;
mod store;
pub mod unlock;

pub use access_log::{AccessEvent, AccessLog, Retention};
pub use client::{Client, ClientConfig};
pub use clock::{Clock, ManualClock, SystemClock};
pub use devices::Device;
pub use doors::Door;
pub use error::{Error, InvitationError, Result};
pub use invitations::{
    AcceptedInvitation, AccessWindow, CreatedInvitation, Guest, GuestSchedule, Invitation, InvitationPreview,
    Invitations, InvitedDoor, NewInvitation, ScheduleWindow, MONDAY,
};
pub use privacy::{Consent, DataCategory, DeletionReceipt, MyData};
pub use profile::{ContactField, PendingContact, Profile, ProfileUpdate, Unit, UnitKind, MAX_PICTURE_BYTES};
pub use secret::Secret;
pub use secure_store::{FileSecureStore, MemorySecureStore, SecureStore, SecureStoreError};
pub use store::DB_FILE;
pub use unlock::{DenialReason, LockTransport, TransportError, UnlockListener, UnlockProgress};
