//! Site-signed updates carried by phones to offline locks ([`TimeUpdate`],
//! [`RevocationList`]), and the lock-signed [`AuditRecord`] returned to phones.

use alloc::vec::Vec;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::crypto::{self, DST_AUDIT, DST_REVOCATION, DST_TIME_UPDATE};
use crate::error::ProtocolError;
use crate::wire::{signed_bytes, Reader, Writer};
use crate::{CredentialId, LockId, PROTOCOL_VERSION};

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

/// Site-signed full revocation list (replaces the lock's list when newer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// Monotonic version; a lock applies only a version greater than its current one.
    pub version: u64,
    /// Revoked credential ids.
    pub credential_ids: Vec<CredentialId>,
    /// Revoked device public keys (all credentials of the device).
    pub device_keys: Vec<[u8; 32]>,
    /// Authority signature over `"porta-v1:revocation:" || body`.
    pub signature: [u8; 64],
}

impl RevocationList {
    /// Issues (signs) a revocation list. Fails if the encoding would not fit in a
    /// [`crate::wire::MAX_MESSAGE_LEN`]-bounded proof.
    pub fn issue(
        authority: &SigningKey,
        version: u64,
        credential_ids: Vec<CredentialId>,
        device_keys: Vec<[u8; 32]>,
    ) -> Result<Self, ProtocolError> {
        let mut l = Self { version, credential_ids, device_keys, signature: [0; 64] };
        if 16 * l.credential_ids.len() + 32 * l.device_keys.len() > crate::wire::MAX_MESSAGE_LEN {
            return Err(ProtocolError::MessageTooLarge);
        }
        l.signature = crypto::sign(authority, DST_REVOCATION, &l.body_bytes());
        Ok(l)
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u64(self.version);
        w.u16(self.credential_ids.len() as u16);
        for c in &self.credential_ids {
            w.bytes(c);
        }
        w.u16(self.device_keys.len() as u16);
        for d in &self.device_keys {
            w.bytes(d);
        }
        w.into_vec()
    }

    /// Verifies the authority signature.
    pub fn verify(&self, authority: &VerifyingKey) -> Result<(), ProtocolError> {
        if self.credential_ids.len() > u16::MAX as usize || self.device_keys.len() > u16::MAX as usize {
            return Err(ProtocolError::MessageTooLarge);
        }
        crypto::verify(authority.as_bytes(), DST_REVOCATION, &self.body_bytes(), &self.signature)
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding. Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let version = r.u64()?;
        let n = r.u16()? as usize;
        let credential_ids = r.arrays(n)?;
        let m = r.u16()? as usize;
        let device_keys = r.arrays(m)?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self { version, credential_ids, device_keys, signature })
    }
}

/// Lock-signed record of one attempt, returned to the phone for later upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The lock that decided.
    pub lock_id: LockId,
    /// The presented credential's id, or all zeros if it could not be read.
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
pub const AUDIT_RECORD_LEN: usize = 1 + 4 + 16 + 8 + 1 + 8 + 64;

impl AuditRecord {
    /// Creates and signs an audit record with the lock key.
    pub fn sign(
        lock_key: &SigningKey,
        lock_id: LockId,
        credential_id: CredentialId,
        time: u64,
        decision: Decision,
        counter: u64,
    ) -> Self {
        let mut a = Self { lock_id, credential_id, time, decision, counter, signature: [0; 64] };
        a.signature = crypto::sign(lock_key, DST_AUDIT, &a.body_bytes());
        a
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u32(self.lock_id);
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
