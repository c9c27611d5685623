//! The phone's role.
//!
//! ```text
//! start() ──Hello──▶ AwaitChallenge ──handle_challenge()──Proof──▶ AwaitResult
//!                                                        handle_result() ──▶ Done
//! any error ──▶ Failed (every later call returns ProtocolError::InvalidState)
//! ```
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
use crate::messages::{expect_type, Challenge, Hello, MessageType, ProofPlaintext, ResultPlaintext, PROOF_PADDING};
use crate::updates::{AuditRecord, Decision, DenyReason, LockStatus, RevocationList, TimeUpdate};
use crate::wire::MAX_MESSAGE_LEN;
use crate::{DoorId, LockId};

/// Tolerance (seconds) of the phone's local validity pre-check, for clock skew
/// between phone and lock. The lock's decision is authoritative.
pub const PHONE_CLOCK_SKEW_S: u64 = 300;

/// Site-signed updates the phone carries to the lock inside its (encrypted) proof.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Updates {
    /// Latest time update from the server, if any.
    pub time: Option<TimeUpdate>,
    /// Latest revocation list from the server, if any.
    pub revocations: Option<RevocationList>,
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
    /// Phone's current time (unix seconds), for a local pre-check only.
    pub now: u64,
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
    AwaitChallenge { eph: x25519_dalek::StaticSecret, hello: Vec<u8> },
    AwaitResult { keys: SessionKeys, th: [u8; 32], cert: LockCertificate },
    Done,
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
            State::Done => "Done",
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
        let signed_part = Zeroizing::new(ProofPlaintext::encode_signed_part(
            params.door_id,
            c,
            params.updates.time.as_ref(),
            params.updates.revocations.as_ref(),
        ));
        let pt_len = (signed_part.len() + 64).div_ceil(PROOF_PADDING) * PROOF_PADDING;
        if 1 + pt_len + crypto::TAG_LEN > MAX_MESSAGE_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        let (eph, nonce) = crypto::draw_ephemeral(rng);
        let hello = Hello { eph: x25519_dalek::PublicKey::from(&eph).to_bytes(), nonce }.encode();
        let out = hello.clone();
        Ok((Self { params, signed_part, state: State::AwaitChallenge { eph, hello } }, out))
    }

    /// Handles the lock's `Challenge`: verifies the lock certificate against the site
    /// authority, that it lists the door, and the lock's transcript signature; then
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
        let pt = Zeroizing::new(ProofPlaintext::finish(self.signed_part.to_vec(), &sig));
        let ct = crypto::seal(&keys.phone_to_lock, MessageType::Proof as u8, &th, &pt);
        let mut proof = Vec::with_capacity(1 + ct.len());
        proof.push(MessageType::Proof as u8);
        proof.extend_from_slice(&ct);
        self.state = State::AwaitResult { keys, th, cert: ch.certificate };
        Ok(proof)
    }

    /// Handles the lock's `Result`: decrypts it and verifies the lock-signed audit record.
    pub fn handle_result(&mut self, result: &[u8]) -> Result<PhoneOutcome, ProtocolError> {
        let r = self.result_inner(result);
        self.state = if r.is_ok() { State::Done } else { State::Failed };
        r
    }

    fn result_inner(&mut self, msg: &[u8]) -> Result<PhoneOutcome, ProtocolError> {
        let State::AwaitResult { keys, th, cert } = &self.state else {
            return Err(ProtocolError::InvalidState);
        };
        expect_type(msg, MessageType::Result)?;
        let pt = crypto::open(&keys.lock_to_phone, MessageType::Result as u8, th, &msg[1..])?;
        let rp = ResultPlaintext::decode(&pt)?;
        rp.audit.verify(&cert.lock_key).map_err(|_| ProtocolError::AuditMismatch)?;
        if rp.audit.lock_id != cert.lock_id {
            return Err(ProtocolError::AuditMismatch);
        }
        let ours = rp.audit.credential_id == self.params.credential.body.credential_id;
        if !ours && (rp.audit.decision.is_opened() || rp.audit.credential_id != [0; 16]) {
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
        matches!(self.state, State::Done | State::Failed)
    }
}
