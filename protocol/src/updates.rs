//! Site-signed updates carried by phones to offline locks ([`TimeUpdate`],
//! [`RevocationDelta`]), and the lock-signed [`AuditRecord`] returned to phones.

use alloc::vec::Vec;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::crypto::{self, DST_AUDIT, DST_REVOCATION, DST_TIME_UPDATE};
use crate::error::ProtocolError;
use crate::wire::{signed_bytes, Reader, Writer};
use crate::{CredentialId, DoorId, LockId, PROTOCOL_VERSION};

/// Why a lock refused to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DenyReason {
    /// Lock time is after the credential's `not_after`.
    Expired = 1,
    /// Lock time is before the credential's `not_before`.
    NotYetValid = 2,
    /// Valid, but outside the credential's weekly schedule.
    OutsideSchedule = 3,
    /// Credential id or device key is on the lock's revocation list.
    Revoked = 4,
    /// The credential does not cover the requested door, or the lock does not control it.
    WrongDoor = 5,
    /// Credential not signed by the site authority, or device signature invalid.
    BadSignature = 6,
    /// The decrypted proof could not be parsed.
    Malformed = 7,
    /// The proof arrived after [`crate::PROOF_DEADLINE_MS`].
    Timeout = 8,
    /// The proof did not decrypt (tampered, replayed, or wrong session).
    DecryptFailed = 9,
}

impl DenyReason {
    /// Wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Decodes a wire code.
    pub fn from_code(code: u8) -> Result<Self, ProtocolError> {
        Ok(match code {
            1 => Self::Expired,
            2 => Self::NotYetValid,
            3 => Self::OutsideSchedule,
            4 => Self::Revoked,
            5 => Self::WrongDoor,
            6 => Self::BadSignature,
            7 => Self::Malformed,
            8 => Self::Timeout,
            9 => Self::DecryptFailed,
            _ => return Err(ProtocolError::InvalidField("decision")),
        })
    }
}

/// The lock's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The door was opened.
    Opened,
    /// The door stays closed.
    Denied(DenyReason),
}

impl Decision {
    /// Wire code: 0 = opened, otherwise the [`DenyReason`] code.
    pub fn code(self) -> u8 {
        match self {
            Self::Opened => 0,
            Self::Denied(r) => r.code(),
        }
    }

    /// Decodes a wire code.
    pub fn from_code(code: u8) -> Result<Self, ProtocolError> {
        if code == 0 {
            Ok(Self::Opened)
        } else {
            DenyReason::from_code(code).map(Self::Denied)
        }
    }

    /// `true` for [`Decision::Opened`].
    pub fn is_opened(self) -> bool {
        self == Self::Opened
    }
}

/// Site-signed trusted time for offline locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeUpdate {
    /// Target lock, or 0 for every lock of the site.
    pub lock_id: LockId,
    /// Authority's time (unix seconds).
    pub unix_time: u64,
    /// Monotonic sequence; a lock applies only a sequence greater than the last applied.
    pub sequence: u64,
    /// Authority signature over `"porta-v1:time-update:" || body`.
    pub signature: [u8; 64],
}

/// Encoded length of a [`TimeUpdate`].
pub const TIME_UPDATE_LEN: usize = 1 + 4 + 8 + 8 + 64;

impl TimeUpdate {
    /// Issues (signs) a time update.
    pub fn issue(authority: &SigningKey, lock_id: LockId, unix_time: u64, sequence: u64) -> Self {
        let mut t = Self { lock_id, unix_time, sequence, signature: [0; 64] };
        t.signature = crypto::sign(authority, DST_TIME_UPDATE, &t.body_bytes());
        t
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u32(self.lock_id);
        w.u64(self.unix_time);
        w.u64(self.sequence);
        w.into_vec()
    }

    /// Verifies the authority signature.
    pub fn verify(&self, authority: &VerifyingKey) -> Result<(), ProtocolError> {
        crypto::verify(authority.as_bytes(), DST_TIME_UPDATE, &self.body_bytes(), &self.signature)
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding. Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let t = Self { lock_id: r.u32()?, unix_time: r.u64()?, sequence: r.u64()?, signature: r.array()? };
        r.finish()?;
        Ok(t)
    }
}

/// A revoked credential id, listed until the credential expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevokedCredential {
    /// The credential id.
    pub id: CredentialId,
    /// The credential's `not_after`: after it the entry can be forgotten.
    pub expires: u64,
}

/// A revoked device key, listed until every credential issued for it has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevokedDevice {
    /// The device's Ed25519 public key.
    pub key: [u8; 32],
    /// The latest `not_after` of any credential issued for the key.
    pub expires: u64,
}

/// Encoded size of one revoked-credential entry.
pub const REVOKED_CREDENTIAL_LEN: usize = 16 + 8;
/// Encoded size of one revoked-device entry.
pub const REVOKED_DEVICE_LEN: usize = 32 + 8;
/// Fixed part of an encoded [`RevocationDelta`]: version, from, to, both counts, signature.
pub const REVOCATION_DELTA_OVERHEAD: usize = 1 + 8 + 8 + 2 + 2 + 64;
/// Largest encoded [`RevocationDelta`]: one fits an `Update` message
/// (type byte + AEAD tag + delta ≤ [`crate::wire::MAX_MESSAGE_LEN`]).
pub const MAX_REVOCATION_DELTA_LEN: usize = crate::wire::MAX_MESSAGE_LEN - 1 - 16;
/// Room for entries in one delta, in bytes.
pub const MAX_REVOCATION_ENTRY_BYTES: usize = MAX_REVOCATION_DELTA_LEN - REVOCATION_DELTA_OVERHEAD;

/// Site-signed revocations with a sequence number in `(from_version, to_version]`
/// (SPEC §2.4). A site's revocations form one sequence; a lock at version `v` applies a
/// delta iff `from_version ≤ v < to_version` and then holds version `to_version`. Entries
/// are set additions, so overlapping deltas are harmless, and a large backlog travels as
/// many deltas, one per `Update` message after the door's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationDelta {
    /// The version this delta starts from (exclusive).
    pub from_version: u64,
    /// The version a lock holds after applying it (inclusive).
    pub to_version: u64,
    /// Credentials revoked in the range (not yet expired when signed).
    pub credentials: Vec<RevokedCredential>,
    /// Device keys revoked in the range (not yet expired when signed).
    pub devices: Vec<RevokedDevice>,
    /// Authority signature over `"porta-v1:revocation-delta:" || body`.
    pub signature: [u8; 64],
}

impl RevocationDelta {
    /// Issues (signs) a delta. Fails if `from_version ≥ to_version` or the encoding would
    /// not fit one `Update` message (see [`MAX_REVOCATION_ENTRY_BYTES`]).
    pub fn issue(
        authority: &SigningKey,
        from_version: u64,
        to_version: u64,
        credentials: Vec<RevokedCredential>,
        devices: Vec<RevokedDevice>,
    ) -> Result<Self, ProtocolError> {
        let mut d = Self { from_version, to_version, credentials, devices, signature: [0; 64] };
        d.check()?;
        d.signature = crypto::sign(authority, DST_REVOCATION, &d.body_bytes());
        Ok(d)
    }

    /// Bytes the entries of a delta take.
    pub fn entry_bytes(credentials: usize, devices: usize) -> usize {
        credentials * REVOKED_CREDENTIAL_LEN + devices * REVOKED_DEVICE_LEN
    }

    fn check(&self) -> Result<(), ProtocolError> {
        if self.from_version >= self.to_version {
            return Err(ProtocolError::InvalidField("revocation delta range"));
        }
        if Self::entry_bytes(self.credentials.len(), self.devices.len()) > MAX_REVOCATION_ENTRY_BYTES {
            return Err(ProtocolError::MessageTooLarge);
        }
        Ok(())
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u64(self.from_version);
        w.u64(self.to_version);
        w.u16(self.credentials.len() as u16);
        for c in &self.credentials {
            w.bytes(&c.id);
            w.u64(c.expires);
        }
        w.u16(self.devices.len() as u16);
        for d in &self.devices {
            w.bytes(&d.key);
            w.u64(d.expires);
        }
        w.into_vec()
    }

    /// Verifies the authority signature.
    pub fn verify(&self, authority: &VerifyingKey) -> Result<(), ProtocolError> {
        self.check()?;
        crypto::verify(authority.as_bytes(), DST_REVOCATION, &self.body_bytes(), &self.signature)
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding (range and size checked). Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_REVOCATION_DELTA_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let from_version = r.u64()?;
        let to_version = r.u64()?;
        let n = r.u16()? as usize;
        let mut credentials = Vec::with_capacity(n.min(r.remaining() / REVOKED_CREDENTIAL_LEN));
        for _ in 0..n {
            credentials.push(RevokedCredential { id: r.array()?, expires: r.u64()? });
        }
        let m = r.u16()? as usize;
        let mut devices = Vec::with_capacity(m.min(r.remaining() / REVOKED_DEVICE_LEN));
        for _ in 0..m {
            devices.push(RevokedDevice { key: r.array()?, expires: r.u64()? });
        }
        let signature = r.array()?;
        r.finish()?;
        let d = Self { from_version, to_version, credentials, devices, signature };
        d.check()?;
        Ok(d)
    }
}

/// Lock-signed record of one attempt, returned to the phone for later upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The lock that decided.
    pub lock_id: LockId,
    /// The door the phone asked for, or 0 unless the proof was authenticated (credential
    /// signed by the authority and proof signed by its device key).
    pub door_id: DoorId,
    /// The presented credential's id, or all zeros unless the proof was authenticated:
    /// an unverified id would let anyone write another person's id into a signed record.
    pub credential_id: CredentialId,
    /// Lock's effective time (unix seconds) at the decision.
    pub time: u64,
    /// The decision.
    pub decision: Decision,
    /// Lock's audit counter (strictly increasing per lock, starting at 1).
    pub counter: u64,
    /// Lock-key signature over `"porta-v1:audit:" || body`.
    pub signature: [u8; 64],
}

/// Encoded length of an [`AuditRecord`].
pub const AUDIT_RECORD_LEN: usize = 1 + 4 + 4 + 16 + 8 + 1 + 8 + 64;

impl AuditRecord {
    /// Creates and signs an audit record with the lock key.
    pub fn sign(
        lock_key: &SigningKey,
        lock_id: LockId,
        door_id: DoorId,
        credential_id: CredentialId,
        time: u64,
        decision: Decision,
        counter: u64,
    ) -> Self {
        let mut a = Self { lock_id, door_id, credential_id, time, decision, counter, signature: [0; 64] };
        a.signature = crypto::sign(lock_key, DST_AUDIT, &a.body_bytes());
        a
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u32(self.lock_id);
        w.u32(self.door_id);
        w.bytes(&self.credential_id);
        w.u64(self.time);
        w.u8(self.decision.code());
        w.u64(self.counter);
        w.into_vec()
    }

    /// Verifies the lock signature (the server uses the key from the lock's certificate).
    pub fn verify(&self, lock_key: &[u8; 32]) -> Result<(), ProtocolError> {
        crypto::verify(lock_key, DST_AUDIT, &self.body_bytes(), &self.signature)
    }

    /// Canonical encoding (what the phone uploads).
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding. Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let a = Self {
            lock_id: r.u32()?,
            door_id: r.u32()?,
            credential_id: r.array()?,
            time: r.u64()?,
            decision: Decision::from_code(r.u8()?)?,
            counter: r.u64()?,
            signature: r.array()?,
        };
        r.finish()?;
        Ok(a)
    }
}

/// The lock's update state as reported (encrypted) in `Result`, so the phone and
/// server know which updates the lock still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockStatus {
    /// Highest trusted time (unix seconds) from applied time updates.
    pub trusted_time: u64,
    /// Sequence of the last applied time update.
    pub time_sequence: u64,
    /// Version of the applied revocation list.
    pub revocation_version: u64,
}
