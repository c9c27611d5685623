//! Unlocking a door: the phone's side of the door protocol over a [`LockTransport`] (Bluetooth
//! LE on a phone, the simulated lock in tests and the demo). No network is needed: the
//! credential, the site's key and the updates to carry come from the local cache.

use std::time::Duration;

use porta_protocol::{wire, Decision, DenyReason, PhoneHandshake, PhoneOutcome, PhoneParams, Reassembler};

use crate::error::{Error, Result};

/// The GATT service Porta locks advertise (the lock id travels in the advert's service data).
pub const PORTA_SERVICE_UUID: &str = "5a1e0001-7c3b-4f2e-9b1d-706f72746121";

/// Why a transport operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("lock not in range")]
    NotInRange,
    #[error("lock busy with another phone")]
    Busy,
    #[error("disconnected")]
    Disconnected,
    #[error("timed out")]
    Timeout,
    #[error("bluetooth failure: {0}")]
    Failed(String),
}

/// A Bluetooth LE link to a lock: scan for [`PORTA_SERVICE_UUID`], connect, write to the
/// lock's RX characteristic, receive its TX notifications. One connection at a time.
#[async_trait::async_trait]
pub trait LockTransport: Send + Sync {
    /// Finds the lock advertising `lock_id` and connects; returns the negotiated ATT MTU.
    async fn connect(&self, lock_id: u32, timeout: Duration) -> std::result::Result<u16, TransportError>;
    /// Writes one fragment (at most MTU - 3 bytes).
    async fn write(&self, fragment: Vec<u8>) -> std::result::Result<(), TransportError>;
    /// The next notification from the lock.
    async fn next_notification(&self, timeout: Duration) -> std::result::Result<Vec<u8>, TransportError>;
    async fn disconnect(&self) -> std::result::Result<(), TransportError>;
}

/// What the user sees while a door opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockProgress {
    Searching,
    Connecting,
    Verifying,
    Opened,
    Denied,
}

pub trait UnlockListener: Send + Sync {
    fn on_progress(&self, progress: UnlockProgress);
}

/// Why the lock (or the phone, before asking it) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    /// The access has expired (or has not started yet).
    Expired,
    /// Valid, but not at this time of the week.
    OutsideSchedule,
    /// This device or credential was revoked.
    Revoked,
    /// This credential does not open this door.
    UnknownDoor,
    /// The lock rejected the exchange (bad signature, too slow, corrupted on the air).
    Rejected,
}

impl From<DenyReason> for DenialReason {
    fn from(r: DenyReason) -> Self {
        match r {
            DenyReason::Expired | DenyReason::NotYetValid => DenialReason::Expired,
            DenyReason::OutsideSchedule => DenialReason::OutsideSchedule,
            DenyReason::Revoked => DenialReason::Revoked,
            DenyReason::WrongDoor => DenialReason::UnknownDoor,
            _ => DenialReason::Rejected,
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

fn transport_error(e: TransportError) -> Error {
    match e {
        TransportError::NotInRange => Error::NotInRange,
        TransportError::Busy => Error::LockBusy,
        TransportError::Timeout => Error::Timeout,
        TransportError::Disconnected => Error::Transport("disconnected".into()),
        TransportError::Failed(reason) => Error::Transport(reason),
    }
}

fn protocol_error(e: porta_protocol::ProtocolError) -> Error {
    Error::Protocol(format!("{e:?}"))
}

/// Runs one handshake. Returns the outcome (opened or denied) with its audit record.
pub(crate) async fn run(
    transport: &dyn LockTransport,
    listener: &dyn UnlockListener,
    lock_id: u32,
    params: PhoneParams,
) -> Result<PhoneOutcome> {
    listener.on_progress(UnlockProgress::Searching);
    let mtu = transport.connect(lock_id, CONNECT_TIMEOUT).await.map_err(transport_error)?;
    listener.on_progress(UnlockProgress::Connecting);
    let result = exchange(transport, listener, mtu, params).await;
    // Free the lock for the next phone whatever happened.
    let _ = transport.disconnect().await;
    result
}

async fn exchange(
    transport: &dyn LockTransport,
    listener: &dyn UnlockListener,
    mtu: u16,
    params: PhoneParams,
) -> Result<PhoneOutcome> {
    let (mut phone, hello) = PhoneHandshake::start(params, &mut rand::rngs::OsRng).map_err(protocol_error)?;
    send(transport, &hello, mtu).await?;
    let challenge = receive(transport).await?;
    listener.on_progress(UnlockProgress::Verifying);
    // Verifies the lock's site certificate before anything about us goes out.
    let proof = phone.handle_challenge(&challenge).map_err(protocol_error)?;
    send(transport, &proof, mtu).await?;
    let result = receive(transport).await?;
    phone.handle_result(&result).map_err(protocol_error)
}

async fn send(transport: &dyn LockTransport, message: &[u8], mtu: u16) -> Result<()> {
    for fragment in wire::fragment(message, mtu).map_err(protocol_error)? {
        transport.write(fragment).await.map_err(transport_error)?;
    }
    Ok(())
}

async fn receive(transport: &dyn LockTransport) -> Result<Vec<u8>> {
    let mut reassembler = Reassembler::new();
    loop {
        let fragment = transport.next_notification(REPLY_TIMEOUT).await.map_err(transport_error)?;
        if let Some(message) = reassembler.push(&fragment).map_err(protocol_error)? {
            return Ok(message);
        }
    }
}

/// The user-facing result of a finished handshake.
pub(crate) fn decision(outcome: &PhoneOutcome) -> std::result::Result<(), DenialReason> {
    match outcome.decision {
        Decision::Opened => Ok(()),
        Decision::Denied(reason) => Err(reason.into()),
    }
}
