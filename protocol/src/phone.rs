//! The phone's role.
//!
//! ```text
//! start() ──Hello──▶ AwaitChallenge ──handle_challenge()──Proof──▶ AwaitResult
//!                                                        handle_result() ──▶ Done
//! Done (lock named our credential) ──update()──Update──▶ AwaitAck ──handle_update_ack()──▶ Done
//! any error ──▶ Failed (every later call returns ProtocolError::InvalidState)
//! ```
//!
//! After the decision the phone may deliver any number of revocation deltas, one `Update`
//! each, without delaying the door: the door's answer never waits for them.
//!
//! The phone reveals nothing about its user, device or credential until it has
//! verified that the lock's certificate is signed by the site authority, that it lists
//! the requested door, and that the lock signed this session's transcript.
//! The app must only call [`PhoneHandshake::start`] on an explicit user action
//! (tap / unlock gesture): user intent is the second half of the relay defence.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::credential::{Credential, LockCertificate};
use crate::crypto::{self, SessionKeys, DST_CHALLENGE, DST_PROOF};
use crate::error::ProtocolError;
use crate::messages::{
    expect_type, Challenge, DeltaStatus, Hello, MessageType, ProofPlaintext, ResultPlaintext, UpdateAckPlaintext,
    MAX_PROOF_LEN,
};
use crate::updates::{AuditRecord, Decision, DenyReason, LockStatus, RevocationDelta, TimeUpdate};
use crate::wire::MAX_MESSAGE_LEN;
use crate::{DoorId, LockId};

/// Tolerance (seconds) of the phone's local validity pre-check, for clock skew
/// between phone and lock. The lock's decision is authoritative.
pub const PHONE_CLOCK_SKEW_S: u64 = 300;

/// Site-signed updates the phone carries to the lock inside its (encrypted) proof.
/// Revocations travel after the decision instead ([`PhoneHandshake::update`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updates {
    /// Latest time update from the server, if any.
    pub time: Option<TimeUpdate>,
}

/// The lock's answer to one `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateAck {
    /// What the lock did with the delta.
    pub status: DeltaStatus,
    /// The lock's update state afterwards.
    pub lock_status: LockStatus,
}

/// Everything the phone needs for one attempt.
#[derive(Clone)]
pub struct PhoneParams {
    /// This device's credential.
    pub credential: Credential,
    /// The device key created on the phone (zeroized on drop).
    pub device_key: SigningKey,
    /// The site authority public key.
    pub authority: VerifyingKey,
    /// The door the user asked to open.
    pub door_id: DoorId,
    /// Phone's current time (unix seconds): the credential pre-check and the lock
    /// certificate's validity.
    pub now: u64,
    /// The public key of the lock the site has on record for this door (from the phone's
    /// last sync). A lock presenting another key, even one the site once certified, is
    /// refused: that is how a replaced lock's revoked certificate stops working. `None`
    /// skips the check (a site that does not publish it).
    pub lock_key: Option<[u8; 32]>,
    /// Updates to carry to the lock.
    pub updates: Updates,
}

impl fmt::Debug for PhoneParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneParams")
            .field("credential", &self.credential)
            .field("device_key", &"<redacted>")
            .field("authority", &self.authority)
            .field("door_id", &self.door_id)
            .field("now", &self.now)
            .field("lock_key", &self.lock_key)
            .field("updates", &self.updates)
            .finish()
    }
}

/// Outcome reported to the app after the lock's `Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneOutcome {
    /// The lock's decision (from its signed audit record).
    pub decision: Decision,
    /// The lock's certified id.
    pub lock_id: LockId,
    /// The lock's certified public key (to verify `audit` later).
    pub lock_key: [u8; 32],
    /// The lock-signed audit record, verified; upload `audit.to_bytes()` to the server.
    pub audit: AuditRecord,
    /// The lock's update state (which updates it still needs).
    pub lock_status: LockStatus,
}

enum State {
    AwaitChallenge {
        eph: x25519_dalek::StaticSecret,
        hello: Vec<u8>,
    },
    AwaitResult {
        keys: SessionKeys,
        th: [u8; 32],
        cert: LockCertificate,
    },
    /// Decided. `updates` holds the session if the lock authenticated us and so accepts
    /// updates; `awaiting_ack` while an `Update` is unanswered.
    Done {
        updates: Option<(SessionKeys, [u8; 32])>,
        next: u64,
        awaiting_ack: bool,
    },
    Failed,
}

/// The phone's handshake state machine. One instance per attempt.
pub struct PhoneHandshake {
    params: PhoneParams,
    /// Encoded signed part of the proof plaintext (contains the credential).
    signed_part: Zeroizing<Vec<u8>>,
    state: State,
}

impl fmt::Debug for PhoneHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.state {
            State::AwaitChallenge { .. } => "AwaitChallenge",
            State::AwaitResult { .. } => "AwaitResult",
            State::Done { .. } => "Done",
            State::Failed => "Failed",
        };
        f.debug_struct("PhoneHandshake")
            .field("state", &s)
            .field("door_id", &self.params.door_id)
            .finish_non_exhaustive()
    }
}

impl PhoneHandshake {
    /// Starts an attempt: pre-checks the credential locally and returns the `Hello`
    /// message. Draws 32 bytes (X25519 secret) then 16 bytes (nonce) from `rng`.
    ///
    /// Pre-check errors ([`ProtocolError::DeviceKeyMismatch`],
    /// [`ProtocolError::CredentialNotUsable`], [`ProtocolError::MessageTooLarge`])
    /// happen before anything is sent.
    pub fn start<R: RngCore + CryptoRng>(params: PhoneParams, rng: &mut R) -> Result<(Self, Vec<u8>), ProtocolError> {
        let c = &params.credential;
        if c.body.device_key != params.device_key.verifying_key().to_bytes() {
            return Err(ProtocolError::DeviceKeyMismatch);
        }
        if !c.covers(params.door_id) {
            return Err(ProtocolError::CredentialNotUsable(DenyReason::WrongDoor));
        }
        if params.now > c.body.not_after.saturating_add(PHONE_CLOCK_SKEW_S) {
            return Err(ProtocolError::CredentialNotUsable(DenyReason::Expired));
        }
        if params.now.saturating_add(PHONE_CLOCK_SKEW_S) < c.body.not_before {
            return Err(ProtocolError::CredentialNotUsable(DenyReason::NotYetValid));
        }
        Self::start_unchecked(params, rng)
    }

    /// Like [`Self::start`] without the local credential pre-check. Only for tests
    /// that play a misbehaving phone to exercise the lock's own enforcement.
    #[doc(hidden)]
    pub fn start_unchecked<R: RngCore + CryptoRng>(
        params: PhoneParams,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), ProtocolError> {
        let c = &params.credential;
        let signed_part = ProofPlaintext::encode_signed_part(params.door_id, c, params.updates.time.as_ref());
        if 1 + ProofPlaintext::padded_len(signed_part.len()) + crypto::TAG_LEN > MAX_PROOF_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        let (eph, nonce) = crypto::draw_ephemeral(rng);
        let hello = Hello { eph: x25519_dalek::PublicKey::from(&eph).to_bytes(), nonce }.encode();
        let out = hello.clone();
        Ok((Self { params, signed_part, state: State::AwaitChallenge { eph, hello } }, out))
    }

    /// Handles the lock's `Challenge`: verifies the lock certificate against the site
    /// authority, that it lists the door, that it is the door's current lock (when the
    /// params name one) and is valid now, and the lock's transcript signature; then
    /// returns the encrypted `Proof`.
    pub fn handle_challenge(&mut self, challenge: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let r = self.challenge_inner(challenge);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn challenge_inner(&mut self, msg: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let State::AwaitChallenge { eph, hello } = &self.state else {
            return Err(ProtocolError::InvalidState);
        };
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        let (ch, unsigned_len) = Challenge::decode(msg)?;
        ch.certificate.verify(&self.params.authority).map_err(|_| ProtocolError::UntrustedLock)?;
        if !ch.certificate.doors.contains(&self.params.door_id) {
            return Err(ProtocolError::DoorNotControlled);
        }
        if self.params.lock_key.is_some_and(|k| k != ch.certificate.lock_key) {
            return Err(ProtocolError::LockNotCurrent);
        }
        if !ch.certificate.valid_at(self.params.now, PHONE_CLOCK_SKEW_S) {
            return Err(ProtocolError::LockCertificateExpired);
        }
        let mut signed = Vec::with_capacity(hello.len() + unsigned_len);
        signed.extend_from_slice(hello);
        signed.extend_from_slice(&msg[..unsigned_len]);
        crypto::verify(&ch.certificate.lock_key, DST_CHALLENGE, &signed, &ch.signature)
            .map_err(|_| ProtocolError::LockSignatureInvalid)?;
        let shared = crypto::agree(eph, &ch.eph)?;
        let th = crypto::transcript_hash(hello, msg);
        let keys = crypto::derive_keys(&shared, &th);

        let mut to_sign = Zeroizing::new(Vec::with_capacity(32 + self.signed_part.len()));
        to_sign.extend_from_slice(&th);
        to_sign.extend_from_slice(&self.signed_part);
        let sig = crypto::sign(&self.params.device_key, DST_PROOF, &to_sign);
        let pt = ProofPlaintext::finish(&self.signed_part, &sig);
        let ct = crypto::seal(&keys.phone_to_lock, MessageType::Proof as u8, &th, &pt);
        let mut proof = Vec::with_capacity(1 + ct.len());
        proof.push(MessageType::Proof as u8);
        proof.extend_from_slice(&ct);
        self.state = State::AwaitResult { keys, th, cert: ch.certificate };
        Ok(proof)
    }

    /// Handles the lock's `Result`: decrypts it and verifies the lock-signed audit record.
    pub fn handle_result(&mut self, result: &[u8]) -> Result<PhoneOutcome, ProtocolError> {
        let State::AwaitResult { keys, th, cert } = core::mem::replace(&mut self.state, State::Failed) else {
            return Err(ProtocolError::InvalidState);
        };
        let outcome = self.result_inner(&keys, &th, &cert, result)?;
        // The lock accepts updates only from a phone it authenticated, which its signed
        // record shows by naming our credential.
        let authenticated = outcome.audit.credential_id == self.params.credential.body.credential_id;
        self.state = State::Done { updates: authenticated.then_some((keys, th)), next: 0, awaiting_ack: false };
        Ok(outcome)
    }

    fn result_inner(
        &self,
        keys: &SessionKeys,
        th: &[u8; 32],
        cert: &LockCertificate,
        msg: &[u8],
    ) -> Result<PhoneOutcome, ProtocolError> {
        expect_type(msg, MessageType::Result)?;
        let pt = crypto::open(&keys.lock_to_phone, MessageType::Result as u8, th, &msg[1..])?;
        let rp = ResultPlaintext::decode(&pt)?;
        rp.audit.verify(&cert.lock_key).map_err(|_| ProtocolError::AuditMismatch)?;
        if rp.audit.lock_id != cert.lock_id {
            return Err(ProtocolError::AuditMismatch);
        }
        // The record names our credential and door, or (the lock could not authenticate us)
        // nobody and no door, and then it cannot say Opened.
        let ours = rp.audit.credential_id == self.params.credential.body.credential_id;
        let consistent = if ours {
            rp.audit.door_id == self.params.door_id
        } else {
            !rp.audit.decision.is_opened() && rp.audit.credential_id == [0; 16] && rp.audit.door_id == 0
        };
        if !consistent {
            return Err(ProtocolError::AuditMismatch);
        }
        Ok(PhoneOutcome {
            decision: rp.audit.decision,
            lock_id: cert.lock_id,
            lock_key: cert.lock_key,
            audit: rp.audit,
            lock_status: rp.status,
        })
    }

    /// Whether the handshake is finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done { .. } | State::Failed)
    }

    /// Whether the lock accepts revocation deltas from this session (it authenticated us).
    pub fn accepts_updates(&self) -> bool {
        matches!(self.state, State::Done { updates: Some(_), awaiting_ack: false, .. })
    }

    /// Seals one revocation delta as the next `Update` message. Only after
    /// [`Self::handle_result`], when [`Self::accepts_updates`], one at a time: wait for the
    /// [`UpdateAck`] before sending the next.
    pub fn update(&mut self, delta: &RevocationDelta) -> Result<Vec<u8>, ProtocolError> {
        let State::Done { updates: Some((keys, th)), next, awaiting_ack } = &mut self.state else {
            return Err(ProtocolError::InvalidState);
        };
        if *awaiting_ack || *next >= crate::lock::MAX_UPDATES_PER_CONNECTION {
            return Err(ProtocolError::InvalidState);
        }
        let ct = crypto::seal_n(&keys.updates, *next, MessageType::Update as u8, th, &delta.to_bytes());
        *awaiting_ack = true;
        let mut msg = Vec::with_capacity(1 + ct.len());
        msg.push(MessageType::Update as u8);
        msg.extend_from_slice(&ct);
        Ok(msg)
    }

    /// Handles the lock's `UpdateAck` for the last [`Self::update`].
    pub fn handle_update_ack(&mut self, ack: &[u8]) -> Result<UpdateAck, ProtocolError> {
        let State::Done { updates: Some((keys, th)), next, awaiting_ack } = &mut self.state else {
            return Err(ProtocolError::InvalidState);
        };
        if !*awaiting_ack {
            return Err(ProtocolError::InvalidState);
        }
        let r = expect_type(ack, MessageType::UpdateAck)
            .and_then(|()| crypto::open_n(&keys.update_acks, *next, MessageType::UpdateAck as u8, th, &ack[1..]))
            .and_then(|pt| UpdateAckPlaintext::decode(&pt));
        match r {
            Ok(p) => {
                *next += 1;
                *awaiting_ack = false;
                Ok(UpdateAck { status: p.status, lock_status: p.lock })
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }
}
