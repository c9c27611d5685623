//! Unlocking a door: the phone's side of the door protocol over a [`LockTransport`] (Bluetooth
//! LE on a phone, the simulated lock in tests and the demo). No network is needed: the
//! credential, the site's key and the updates to carry come from the local cache.

use std::time::Duration;

use porta_protocol::{
    wire, Decision, DeltaStatus, DenyReason, PhoneHandshake, PhoneOutcome, PhoneParams, Reassembler, RevocationDelta,
};

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
    /// The radio is off (or in airplane mode / rfkill-blocked).
    #[error("bluetooth is off")]
    BluetoothOff,
    /// The platform refuses this app the use of Bluetooth.
    #[error("bluetooth permission denied")]
    NotPermitted,
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
    /// Called, without waiting, when an unlock is dropped before it finished (the app
    /// cancelled it): the transport should close its link in the background. Does nothing
    /// by default.
    fn cancel(&self) {}
}

/// Cancels the transport's link if the unlock is dropped before it disconnected.
struct CancelOnDrop<'a>(Option<&'a dyn LockTransport>);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(transport) = self.0.take() {
            transport.cancel();
        }
    }
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
    /// The access has expired.
    Expired,
    /// The access has not started yet (a guest's window opens later).
    NotYetValid,
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
            DenyReason::Expired => DenialReason::Expired,
            DenyReason::NotYetValid => DenialReason::NotYetValid,
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
        TransportError::Disconnected => Error::ConnectionLost,
        TransportError::BluetoothOff => Error::BluetoothOff,
        TransportError::NotPermitted => Error::BluetoothNotPermitted,
        TransportError::Failed(reason) => Error::Transport(reason),
    }
}

fn protocol_error(e: porta_protocol::ProtocolError) -> Error {
    match e {
        // The phone's own check, before any radio: the same answer the lock would give.
        porta_protocol::ProtocolError::CredentialNotUsable(reason) => Error::Denied(reason.into()),
        // Refused before anything of ours went out: not the building's lock for this door.
        porta_protocol::ProtocolError::UntrustedLock
        | porta_protocol::ProtocolError::DoorNotControlled
        | porta_protocol::ProtocolError::LockNotCurrent
        | porta_protocol::ProtocolError::LockCertificateExpired => Error::UntrustedLock,
        e => Error::Protocol(format!("{e:?}")),
    }
}

/// How long the phone keeps delivering revocation deltas after the door's decision.
const UPDATE_BUDGET: Duration = Duration::from_secs(5);

/// Runs one handshake and reports the decision to `listener` as soon as it is known (after
/// `on_decision` stored it). A link lost before the Proof went out is retried once, on a new
/// link; lost after it, the lock may already have decided (and opened), so a second handshake
/// would be a second decision: that is [`Error::ConnectionLost`] at once.
/// Then, the door already decided, delivers the revocation deltas the
/// lock lacks (`next_delta(version)` gives the one that continues `version`), for at most
/// [`UPDATE_BUDGET`]; a failure there costs nothing but the rest of the deltas. Returns the
/// outcome with the lock's latest status.
pub(crate) async fn run(
    transport: &dyn LockTransport,
    listener: &dyn UnlockListener,
    lock_id: u32,
    params: PhoneParams,
    on_decision: &(dyn Fn(&PhoneOutcome) -> Result<()> + Sync),
    next_delta: &(dyn Fn(u64) -> Option<Vec<u8>> + Sync),
) -> Result<PhoneOutcome> {
    listener.on_progress(UnlockProgress::Searching);
    let mut cancel = CancelOnDrop(Some(transport));
    let mut mtu = transport.connect(lock_id, CONNECT_TIMEOUT).await.map_err(transport_error)?;
    listener.on_progress(UnlockProgress::Connecting);
    let result = async {
        let mut proof_sent = false;
        let (mut phone, mut outcome) = match exchange(transport, listener, mtu, params.clone(), &mut proof_sent).await {
            // The link dropped before the lock could decide: one fresh attempt on a new link (a
            // new Hello and keys; nothing of the lost exchange is reused).
            Err(Error::ConnectionLost) if !proof_sent => {
                tracing::debug!("link lost before the decision; reconnecting once");
                let _ = transport.disconnect().await;
                mtu = transport.connect(lock_id, CONNECT_TIMEOUT).await.map_err(transport_error)?;
                exchange(transport, listener, mtu, params, &mut proof_sent).await?
            }
            other => other?,
        };
        on_decision(&outcome)?;
        listener.on_progress(match outcome.decision {
            Decision::Opened => UnlockProgress::Opened,
            Decision::Denied(_) => UnlockProgress::Denied,
        });
        let delivery = deliver_revocations(transport, &mut phone, &mut outcome, mtu, next_delta);
        match tokio::time::timeout(UPDATE_BUDGET, delivery).await {
            Ok(Ok(delivered)) if delivered > 0 => tracing::debug!(delivered, "revocation deltas delivered"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "revocation delivery stopped"),
            Err(_) => tracing::debug!("revocation delivery out of time"),
        }
        Ok(outcome)
    }
    .await;
    // Free the lock for the next phone whatever happened.
    let _ = transport.disconnect().await;
    cancel.0 = None;
    result
}

async fn exchange(
    transport: &dyn LockTransport,
    listener: &dyn UnlockListener,
    mtu: u16,
    params: PhoneParams,
    proof_sent: &mut bool,
) -> Result<(PhoneHandshake, PhoneOutcome)> {
    let (mut phone, hello) = PhoneHandshake::start(params, &mut rand::rngs::OsRng).map_err(protocol_error)?;
    send(transport, &hello, mtu).await?;
    let challenge = receive(transport).await?;
    listener.on_progress(UnlockProgress::Verifying);
    // Verifies the lock's site certificate before anything about us goes out.
    let proof = phone.handle_challenge(&challenge).map_err(protocol_error)?;
    // From the first Proof byte on, a lost link may hide a decision already made.
    *proof_sent = true;
    send(transport, &proof, mtu).await?;
    let result = receive(transport).await?;
    let outcome = phone.handle_result(&result).map_err(protocol_error)?;
    Ok((phone, outcome))
}

/// Sends the deltas that continue the lock's revocation version, one `Update` at a time, until
/// the lock is current, refuses one, or the cache has nothing more. Returns how many it applied.
async fn deliver_revocations(
    transport: &dyn LockTransport,
    phone: &mut PhoneHandshake,
    outcome: &mut PhoneOutcome,
    mtu: u16,
    next_delta: &(dyn Fn(u64) -> Option<Vec<u8>> + Sync),
) -> Result<usize> {
    let mut applied = 0;
    while phone.accepts_updates() {
        let Some(bytes) = next_delta(outcome.lock_status.revocation_version) else { break };
        let delta = RevocationDelta::from_bytes(&bytes).map_err(protocol_error)?;
        let update = match phone.update(&delta) {
            Ok(u) => u,
            Err(_) => break, // the connection's update allowance is used up
        };
        send(transport, &update, mtu).await?;
        let ack = phone.handle_update_ack(&receive(transport).await?).map_err(protocol_error)?;
        outcome.lock_status = ack.lock_status;
        if ack.status != DeltaStatus::Applied {
            break;
        }
        applied += 1;
    }
    Ok(applied)
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
