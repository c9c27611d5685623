//! The lock's role.
//!
//! ```text
//! new() ─▶ AwaitHello ──handle_hello()──Challenge──▶ AwaitProof ──handle_proof()──Result──▶ AcceptUpdates
//!            (proof authenticated)  AcceptUpdates ──handle_update()──UpdateAck──▶ AcceptUpdates
//!            (otherwise)            Done
//! any error ──▶ Done (every later call returns ProtocolError::InvalidState)
//! ```
//!
//! One [`LockHandshake`] per BLE connection / attempt. The lock's persistent state
//! ([`LockState`]) is passed in by `&mut` so the caller can persist it
//! ([`LockState::to_bytes`]) after each call: it holds the trusted time, the
//! revocation list, and the attempt and audit counters.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};

use crate::credential::LockCertificate;
use crate::crypto::{self, SessionKeys, DST_CHALLENGE, DST_PROOF};
use crate::error::ProtocolError;
use crate::messages::{
    expect_type, Challenge, DeltaStatus, Hello, MessageType, ProofPlaintext, ResultPlaintext, UpdateAckPlaintext,
    MAX_PROOF_LEN,
};
use crate::updates::{AuditRecord, Decision, DenyReason, LockStatus, RevocationDelta, TimeUpdate};
use crate::wire::{Reader, Writer, MAX_MESSAGE_LEN};
use crate::{CredentialId, DoorId, LockId, PROOF_DEADLINE_MS};

/// Most revocation entries (credentials plus devices) a lock holds. Entries leave when they
/// expire, and credentials live at most a day, so this is a day of revocations at a very
/// large site; past it a lock refuses new deltas ([`DeltaStatus::Full`]) rather than
/// forgetting a live revocation.
pub const MAX_REVOCATION_ENTRIES: usize = 100_000;
/// Most `Update` messages one connection may deliver (about 400 KB).
pub const MAX_UPDATES_PER_CONNECTION: u64 = 128;

/// The lock's provisioned identity (immutable).
pub struct LockConfig {
    signing_key: SigningKey,
    certificate: LockCertificate,
    authority: VerifyingKey,
}

impl fmt::Debug for LockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockConfig")
            .field("signing_key", &"<redacted>")
            .field("certificate", &self.certificate)
            .field("authority", &self.authority)
            .finish()
    }
}

impl LockConfig {
    /// Builds a config, checking that `certificate` is signed by `authority` and
    /// certifies `signing_key`'s public key.
    pub fn new(
        signing_key: SigningKey,
        certificate: LockCertificate,
        authority: VerifyingKey,
    ) -> Result<Self, ProtocolError> {
        certificate.verify(&authority)?;
        if certificate.lock_key != signing_key.verifying_key().to_bytes() {
            return Err(ProtocolError::InvalidField("certificate does not match lock key"));
        }
        Ok(Self { signing_key, certificate, authority })
    }

    /// The lock id from the certificate.
    pub fn lock_id(&self) -> LockId {
        self.certificate.lock_id
    }

    /// Doors this lock controls (from the certificate).
    pub fn doors(&self) -> &[DoorId] {
        &self.certificate.doors
    }

    /// The lock certificate.
    pub fn certificate(&self) -> &LockCertificate {
        &self.certificate
    }

    /// The site authority public key.
    pub fn authority(&self) -> &VerifyingKey {
        &self.authority
    }
}

/// Result of offering a signed update to the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStatus {
    /// No update was carried.
    NotPresent,
    /// Applied (newer than the lock's state).
    Applied,
    /// Valid but not newer than what the lock has; ignored.
    Stale,
    /// Bad signature or addressed to another lock; ignored.
    Invalid,
}

/// The lock's persistent mutable state. Persist it after every handshake call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    /// Highest unix time from an applied time update (a floor for the lock's clock).
    pub trusted_time: u64,
    /// Sequence of the last applied time update.
    pub time_sequence: u64,
    /// The site revocation version this lock holds (0 = none).
    pub revocation_version: u64,
    /// Revoked credential ids, each with when it may be forgotten (its `not_after`).
    pub revoked_credentials: BTreeMap<CredentialId, u64>,
    /// Revoked device keys, each with when it may be forgotten.
    pub revoked_devices: BTreeMap<[u8; 32], u64>,
    /// Number of challenges issued (carried in each challenge).
    pub attempt_counter: u64,
    /// Number of audit records signed (the last record's counter).
    pub audit_counter: u64,
}

const STATE_FORMAT: u8 = 2;

impl LockState {
    /// A fresh state (no trusted time, no revocations, counters at 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Time used for validity checks: `max(rtc_now, trusted_time)`.
    pub fn effective_time(&self, rtc_now: u64) -> u64 {
        rtc_now.max(self.trusted_time)
    }

    /// The status reported to phones.
    pub fn status(&self) -> LockStatus {
        LockStatus {
            trusted_time: self.trusted_time,
            time_sequence: self.time_sequence,
            revocation_version: self.revocation_version,
        }
    }

    /// Applies a time update if it is validly signed, addressed to this lock (or to
    /// all locks, `lock_id == 0`) and has a greater sequence. Trusted time only rises.
    pub fn apply_time_update(&mut self, config: &LockConfig, update: &TimeUpdate) -> UpdateStatus {
        // Stale first: an update this lock already has is ignored without spending a
        // signature verification on it (the common case once one phone delivered it).
        if update.sequence <= self.time_sequence {
            return UpdateStatus::Stale;
        }
        if update.verify(&config.authority).is_err() || (update.lock_id != 0 && update.lock_id != config.lock_id()) {
            return UpdateStatus::Invalid;
        }
        self.time_sequence = update.sequence;
        self.trusted_time = self.trusted_time.max(update.unix_time);
        UpdateStatus::Applied
    }

    /// Applies a revocation delta if it is validly signed and continues this lock's
    /// sequence (`from_version ≤ revocation_version < to_version`). Entries already expired
    /// at `now` (the lock's effective time) are not stored, and expired ones are forgotten.
    pub fn apply_revocation_delta(&mut self, config: &LockConfig, delta: &RevocationDelta, now: u64) -> DeltaStatus {
        if delta.to_version <= self.revocation_version {
            return DeltaStatus::Stale;
        }
        if delta.from_version > self.revocation_version {
            return DeltaStatus::Gap;
        }
        if delta.verify(&config.authority).is_err() {
            return DeltaStatus::Invalid;
        }
        self.forget_expired(now);
        let live_new = delta.credentials.iter().filter(|c| c.expires >= now).count()
            + delta.devices.iter().filter(|d| d.expires >= now).count();
        if self.revoked_credentials.len() + self.revoked_devices.len() + live_new > MAX_REVOCATION_ENTRIES {
            return DeltaStatus::Full;
        }
        for c in delta.credentials.iter().filter(|c| c.expires >= now) {
            let e = self.revoked_credentials.entry(c.id).or_insert(c.expires);
            *e = (*e).max(c.expires);
        }
        for d in delta.devices.iter().filter(|d| d.expires >= now) {
            let e = self.revoked_devices.entry(d.key).or_insert(d.expires);
            *e = (*e).max(d.expires);
        }
        self.revocation_version = delta.to_version;
        DeltaStatus::Applied
    }

    /// Drops revocations whose credentials have expired at `now`: the lock refuses those
    /// credentials as expired anyway.
    pub fn forget_expired(&mut self, now: u64) {
        self.revoked_credentials.retain(|_, expires| *expires >= now);
        self.revoked_devices.retain(|_, expires| *expires >= now);
    }

    /// Whether the credential id or the device key is revoked.
    pub fn is_revoked(&self, credential_id: &CredentialId, device_key: &[u8; 32]) -> bool {
        self.revoked_credentials.contains_key(credential_id) || self.revoked_devices.contains_key(device_key)
    }

    /// Serializes the state for persistence (format in `SPEC.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(STATE_FORMAT);
        w.u64(self.trusted_time);
        w.u64(self.time_sequence);
        w.u64(self.revocation_version);
        w.u64(self.attempt_counter);
        w.u64(self.audit_counter);
        w.u32(self.revoked_credentials.len() as u32);
        for (id, expires) in &self.revoked_credentials {
            w.bytes(id);
            w.u64(*expires);
        }
        w.u32(self.revoked_devices.len() as u32);
        for (key, expires) in &self.revoked_devices {
            w.bytes(key);
            w.u64(*expires);
        }
        w.into_vec()
    }

    /// Parses a persisted state.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(STATE_FORMAT)?;
        let mut s = Self {
            trusted_time: r.u64()?,
            time_sequence: r.u64()?,
            revocation_version: r.u64()?,
            attempt_counter: r.u64()?,
            audit_counter: r.u64()?,
            ..Self::default()
        };
        s.revoked_credentials = revocation_entries(&mut r)?;
        s.revoked_devices = revocation_entries(&mut r)?;
        r.finish()?;
        Ok(s)
    }
}

/// A counted list of `key || expires` entries, strictly ascending by key (canonical).
fn revocation_entries<const N: usize>(r: &mut Reader<'_>) -> Result<BTreeMap<[u8; N], u64>, ProtocolError> {
    let n = r.u32()? as usize;
    if n > MAX_REVOCATION_ENTRIES || n > r.remaining() / (N + 8) {
        return Err(ProtocolError::InvalidField("revocation entries"));
    }
    let mut out = BTreeMap::new();
    let mut last: Option<[u8; N]> = None;
    for _ in 0..n {
        let key: [u8; N] = r.array()?;
        let expires = r.u64()?;
        if last.is_some_and(|l| l >= key) {
            return Err(ProtocolError::InvalidField("revocation entries order"));
        }
        last = Some(key);
        out.insert(key, expires);
    }
    Ok(out)
}

/// What the lock decided, for the caller to act on (drive the actuator, log) and the
/// `Result` message to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOutcome {
    /// Open the door `door_id` iff this is [`Decision::Opened`].
    pub decision: Decision,
    /// The door requested in the proof (only if the proof was authenticated).
    pub door_id: Option<DoorId>,
    /// The presented credential id (only if the proof was authenticated).
    pub credential_id: Option<CredentialId>,
    /// The signed audit record (also sent to the phone, encrypted).
    pub audit: AuditRecord,
    /// What happened to a carried time update.
    pub time_update: UpdateStatus,
    /// The `Result` message to send to the phone.
    pub response: Vec<u8>,
}

enum State {
    AwaitHello,
    AwaitProof {
        keys: SessionKeys,
        th: [u8; 32],
        sent_ms: u64,
    },
    /// After a Result to an authenticated phone: it may deliver revocation deltas.
    AcceptUpdates {
        keys: SessionKeys,
        th: [u8; 32],
        next: u64,
    },
    Done,
}

/// What the lock did with one `Update`, and the `UpdateAck` to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// What happened to the delta.
    pub status: DeltaStatus,
    /// The `UpdateAck` message to send to the phone.
    pub response: Vec<u8>,
}

/// The lock's handshake state machine. One instance per connection / attempt.
pub struct LockHandshake {
    state: State,
}

impl fmt::Debug for LockHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.state {
            State::AwaitHello => "AwaitHello",
            State::AwaitProof { .. } => "AwaitProof",
            State::AcceptUpdates { .. } => "AcceptUpdates",
            State::Done => "Done",
        };
        f.debug_struct("LockHandshake").field("state", &s).finish()
    }
}

impl Default for LockHandshake {
    fn default() -> Self {
        Self::new()
    }
}

struct Evaluation {
    decision: Decision,
    /// Set only once the credential and the device signature verified.
    door_id: Option<DoorId>,
    credential_id: Option<CredentialId>,
    time_update: UpdateStatus,
}

impl LockHandshake {
    /// A handshake waiting for the phone's `Hello`.
    pub fn new() -> Self {
        Self { state: State::AwaitHello }
    }

    /// Whether the handshake is finished (the decision is made; updates may still follow).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::AcceptUpdates { .. })
    }

    /// Whether the lock accepts `Update` messages on this connection.
    pub fn accepts_updates(&self) -> bool {
        matches!(self.state, State::AcceptUpdates { .. })
    }

    /// Handles `Hello` and returns the `Challenge`. Increments
    /// `state.attempt_counter`; draws 32 bytes (X25519 secret) then 16 bytes (nonce)
    /// from `rng`. `now_ms` is a millisecond timer used for the proof deadline.
    pub fn handle_hello<R: RngCore + CryptoRng>(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        hello: &[u8],
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<u8>, ProtocolError> {
        if !matches!(self.state, State::AwaitHello) {
            self.state = State::Done;
            return Err(ProtocolError::InvalidState);
        }
        self.state = State::Done;
        if hello.len() > MAX_MESSAGE_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        let h = Hello::decode(hello)?;
        state.attempt_counter = state.attempt_counter.wrapping_add(1);
        let (eph, nonce) = crypto::draw_ephemeral(rng);
        let shared = crypto::agree(&eph, &h.eph)?;
        let eph_pub = x25519_dalek::PublicKey::from(&eph).to_bytes();
        let mut challenge = Challenge::encode_unsigned(&eph_pub, &nonce, state.attempt_counter, &config.certificate);
        let mut signed = Vec::with_capacity(hello.len() + challenge.len());
        signed.extend_from_slice(hello);
        signed.extend_from_slice(&challenge);
        let sig = crypto::sign(&config.signing_key, DST_CHALLENGE, &signed);
        challenge.extend_from_slice(&sig);
        let th = crypto::transcript_hash(hello, &challenge);
        let keys = crypto::derive_keys(&shared, &th);
        self.state = State::AwaitProof { keys, th, sent_ms: now_ms };
        Ok(challenge)
    }

    /// Handles `Proof`: decides, updates `state` (carried updates, audit counter) and
    /// returns the outcome with the `Result` message. Framing errors (wrong message
    /// type, oversized, wrong state) return `Err` and the caller should disconnect;
    /// every other failure is a [`Decision::Denied`] reported to the phone.
    ///
    /// `now_unix` is the lock's real-time clock (0 if it has none); `now_ms` is the
    /// same millisecond timer as in [`Self::handle_hello`], read when the *whole* Proof
    /// has arrived (its last fragment): the deadline bounds the complete message, so a relay
    /// cannot start it early with a tiny first fragment and finish it later.
    pub fn handle_proof(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        proof: &[u8],
        now_unix: u64,
        now_ms: u64,
    ) -> Result<LockOutcome, ProtocolError> {
        let State::AwaitProof { keys, th, sent_ms } = core::mem::replace(&mut self.state, State::Done) else {
            return Err(ProtocolError::InvalidState);
        };
        if proof.len() > MAX_PROOF_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        expect_type(proof, MessageType::Proof)?;
        let ev = evaluate(config, state, &keys, &th, sent_ms, &proof[1..], now_unix, now_ms);
        state.audit_counter = state.audit_counter.wrapping_add(1);
        let audit = AuditRecord::sign(
            &config.signing_key,
            config.lock_id(),
            ev.door_id.unwrap_or(0),
            ev.credential_id.unwrap_or([0; 16]),
            state.effective_time(now_unix),
            ev.decision,
            state.audit_counter,
        );
        let pt = ResultPlaintext { audit: audit.clone(), status: state.status() }.encode();
        let ct = crypto::seal(&keys.lock_to_phone, MessageType::Result as u8, &th, &pt);
        let mut response = Vec::with_capacity(1 + ct.len());
        response.push(MessageType::Result as u8);
        response.extend_from_slice(&ct);
        if ev.credential_id.is_some() {
            self.state = State::AcceptUpdates { keys, th, next: 0 };
        }
        Ok(LockOutcome {
            decision: ev.decision,
            door_id: ev.door_id,
            credential_id: ev.credential_id,
            audit,
            time_update: ev.time_update,
            response,
        })
    }

    /// Handles one post-decision `Update` (a revocation delta) from the authenticated phone
    /// and returns the `UpdateAck`. `now_unix` is the lock's real-time clock (0 if none).
    /// A message that does not decrypt as the next update ends the connection (`Err`).
    pub fn handle_update(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        update: &[u8],
        now_unix: u64,
    ) -> Result<UpdateOutcome, ProtocolError> {
        let State::AcceptUpdates { keys, th, next } = core::mem::replace(&mut self.state, State::Done) else {
            return Err(ProtocolError::InvalidState);
        };
        if update.len() > MAX_MESSAGE_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        expect_type(update, MessageType::Update)?;
        let pt = crypto::open_n(&keys.updates, next, MessageType::Update as u8, &th, &update[1..])?;
        let status = match RevocationDelta::from_bytes(&pt) {
            Ok(delta) => state.apply_revocation_delta(config, &delta, state.effective_time(now_unix)),
            Err(_) => DeltaStatus::Invalid,
        };
        let ack = UpdateAckPlaintext { status, lock: state.status() }.encode();
        let ct = crypto::seal_n(&keys.update_acks, next, MessageType::UpdateAck as u8, &th, &ack);
        let mut response = Vec::with_capacity(1 + ct.len());
        response.push(MessageType::UpdateAck as u8);
        response.extend_from_slice(&ct);
        if next + 1 < MAX_UPDATES_PER_CONNECTION {
            self.state = State::AcceptUpdates { keys, th, next: next + 1 };
        }
        Ok(UpdateOutcome { status, response })
    }
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    config: &LockConfig,
    state: &mut LockState,
    keys: &SessionKeys,
    th: &[u8; 32],
    sent_ms: u64,
    ciphertext: &[u8],
    now_unix: u64,
    now_ms: u64,
) -> Evaluation {
    let mut ev = Evaluation {
        decision: Decision::Opened,
        door_id: None,
        credential_id: None,
        time_update: UpdateStatus::NotPresent,
    };
    let deny = |mut ev: Evaluation, r: DenyReason| {
        ev.decision = Decision::Denied(r);
        ev
    };
    if now_ms.saturating_sub(sent_ms) > PROOF_DEADLINE_MS {
        return deny(ev, DenyReason::Timeout);
    }
    // `pt` (zeroized on drop) and the parsed proof hold the credential in clear.
    let Ok(pt) = crypto::open(&keys.phone_to_lock, MessageType::Proof as u8, th, ciphertext) else {
        return deny(ev, DenyReason::DecryptFailed);
    };
    let Ok((proof, signed_len)) = ProofPlaintext::decode(&pt) else {
        return deny(ev, DenyReason::Malformed);
    };
    let cred = &proof.credential;
    if cred.verify(&config.authority).is_err() {
        return deny(ev, DenyReason::BadSignature);
    }
    let mut signed = zeroize::Zeroizing::new(Vec::with_capacity(32 + signed_len));
    signed.extend_from_slice(th);
    signed.extend_from_slice(&pt[..signed_len]);
    if crypto::verify(&cred.body.device_key, DST_PROOF, &signed, &proof.device_signature).is_err() {
        return deny(ev, DenyReason::BadSignature);
    }
    // Only now is it known who is asking: the audit record may name them and the door.
    ev.door_id = Some(proof.door);
    ev.credential_id = Some(cred.body.credential_id);
    // The time update is applied only from an authenticated holder of a valid credential,
    // and before the checks below so that a lagging clock is corrected at once.
    if let Some(tu) = &proof.time_update {
        ev.time_update = state.apply_time_update(config, tu);
    }
    if state.is_revoked(&cred.body.credential_id, &cred.body.device_key) {
        return deny(ev, DenyReason::Revoked);
    }
    if !config.doors().contains(&proof.door) || !cred.covers(proof.door) {
        return deny(ev, DenyReason::WrongDoor);
    }
    let t = state.effective_time(now_unix);
    if t < cred.body.not_before {
        return deny(ev, DenyReason::NotYetValid);
    }
    if t > cred.body.not_after {
        return deny(ev, DenyReason::Expired);
    }
    if let Some(s) = &cred.body.schedule {
        if !s.allows(t) {
            return deny(ev, DenyReason::OutsideSchedule);
        }
    }
    ev
}
