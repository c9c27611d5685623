//! Handshake message encodings (see `SPEC.md` for byte layouts).

use alloc::vec::Vec;

use crate::credential::{Credential, LockCertificate};
use crate::error::ProtocolError;
use crate::updates::{AuditRecord, LockStatus, TimeUpdate, AUDIT_RECORD_LEN, TIME_UPDATE_LEN};
use crate::wire::{Reader, Writer};
use crate::{DoorId, PROTOCOL_VERSION};
use zeroize::Zeroizing;

/// First byte of every handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// Phone → lock, round trip 1.
    Hello = 0x01,
    /// Lock → phone, round trip 1.
    Challenge = 0x02,
    /// Phone → lock, round trip 2 (encrypted).
    Proof = 0x03,
    /// Lock → phone, round trip 2 (encrypted).
    Result = 0x04,
    /// Phone → lock after the decision: one signed revocation delta (encrypted).
    Update = 0x05,
    /// Lock → phone: what the lock did with an `Update`, and its new status (encrypted).
    UpdateAck = 0x06,
}

impl MessageType {
    /// Reads the message type of a complete message.
    pub fn of(message: &[u8]) -> Result<Self, ProtocolError> {
        match message.first() {
            None => Err(ProtocolError::Truncated),
            Some(0x01) => Ok(Self::Hello),
            Some(0x02) => Ok(Self::Challenge),
            Some(0x03) => Ok(Self::Proof),
            Some(0x04) => Ok(Self::Result),
            Some(0x05) => Ok(Self::Update),
            Some(0x06) => Ok(Self::UpdateAck),
            Some(&t) => Err(ProtocolError::UnknownMessageType(t)),
        }
    }
}

/// Checks the message type byte.
pub(crate) fn expect_type(message: &[u8], expected: MessageType) -> Result<(), ProtocolError> {
    let t = MessageType::of(message)?;
    if t != expected {
        return Err(ProtocolError::UnexpectedMessage { expected: expected as u8, got: t as u8 });
    }
    Ok(())
}

/// Length of a `Hello` message.
pub const HELLO_LEN: usize = 1 + 1 + 32 + 16;
/// Length of a `Result` message (type + AEAD(audit record + status) + tag).
pub const RESULT_LEN: usize = 1 + RESULT_PLAINTEXT_LEN + 16;
const RESULT_PLAINTEXT_LEN: usize = AUDIT_RECORD_LEN + 24;
/// Length of an `UpdateAck` message (type + AEAD(status code + lock status) + tag).
pub const UPDATE_ACK_LEN: usize = 1 + UPDATE_ACK_PLAINTEXT_LEN + 16;
pub(crate) const UPDATE_ACK_PLAINTEXT_LEN: usize = 1 + 24;
/// Largest `Proof` either role produces or accepts: a 32-door, 16-window credential and a
/// time update, padded. Small enough to arrive well inside the deadline at ATT MTU 23.
pub const MAX_PROOF_LEN: usize = 1 + (PROOF_SIGNED_MAX + 64).div_ceil(PROOF_PADDING) * PROOF_PADDING + 16;
const PROOF_SIGNED_MAX: usize = 4 + 2 + crate::credential::MAX_CREDENTIAL_LEN + 2 + TIME_UPDATE_LEN;
/// The proof plaintext is zero-padded to a multiple of this many bytes so its length
/// reveals little about the credential (number of doors / schedule windows).
pub const PROOF_PADDING: usize = 64;

pub(crate) struct Hello {
    pub(crate) eph: [u8; 32],
    pub(crate) nonce: [u8; 16],
}

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(MessageType::Hello as u8);
        w.u8(PROTOCOL_VERSION);
        w.bytes(&self.eph);
        w.bytes(&self.nonce);
        w.into_vec()
    }

    pub(crate) fn decode(msg: &[u8]) -> Result<Self, ProtocolError> {
        expect_type(msg, MessageType::Hello)?;
        let mut r = Reader::new(&msg[1..]);
        r.version(PROTOCOL_VERSION)?;
        let h = Self { eph: r.array()?, nonce: r.array()? };
        r.finish()?;
        Ok(h)
    }
}

#[allow(dead_code)] // `nonce` and `attempt` are bound by the transcript, not read.
pub(crate) struct Challenge {
    pub(crate) eph: [u8; 32],
    pub(crate) nonce: [u8; 16],
    pub(crate) attempt: u64,
    pub(crate) certificate: LockCertificate,
    pub(crate) signature: [u8; 64],
}

impl Challenge {
    /// Everything but the signature.
    pub(crate) fn encode_unsigned(
        eph: &[u8; 32],
        nonce: &[u8; 16],
        attempt: u64,
        certificate: &LockCertificate,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(MessageType::Challenge as u8);
        w.u8(PROTOCOL_VERSION);
        w.bytes(eph);
        w.bytes(nonce);
        w.u64(attempt);
        w.bytes16(&certificate.to_bytes());
        w.into_vec()
    }

    /// Returns the challenge and the length of its unsigned prefix.
    pub(crate) fn decode(msg: &[u8]) -> Result<(Self, usize), ProtocolError> {
        expect_type(msg, MessageType::Challenge)?;
        let mut r = Reader::new(msg);
        r.u8()?;
        r.version(PROTOCOL_VERSION)?;
        let eph = r.array()?;
        let nonce = r.array()?;
        let attempt = r.u64()?;
        let certificate = LockCertificate::from_bytes(r.bytes16()?)?;
        let unsigned_len = r.pos();
        let signature = r.array()?;
        r.finish()?;
        Ok((Self { eph, nonce, attempt, certificate, signature }, unsigned_len))
    }
}

/// Decrypted content of `Proof`.
pub(crate) struct ProofPlaintext {
    pub(crate) door: DoorId,
    pub(crate) credential: Credential,
    pub(crate) time_update: Option<TimeUpdate>,
    pub(crate) device_signature: [u8; 64],
}

impl ProofPlaintext {
    /// Encodes the signed part (everything before the device signature).
    /// Encodes the signed part (everything before the device signature), with room for the
    /// signature and padding so that [`Self::finish`] never reallocates (a reallocation would
    /// leave an unzeroized copy of the credential behind).
    pub(crate) fn encode_signed_part(
        door: DoorId,
        credential: &Credential,
        time_update: Option<&TimeUpdate>,
    ) -> Zeroizing<Vec<u8>> {
        let credential = Zeroizing::new(credential.to_bytes());
        let time_update = time_update.map(TimeUpdate::to_bytes).unwrap_or_default();
        let signed_len = 4 + 2 + credential.len() + 2 + time_update.len();
        let mut w = Zeroizing::new(Vec::with_capacity(Self::padded_len(signed_len)));
        w.extend_from_slice(&door.to_be_bytes());
        w.extend_from_slice(&(credential.len() as u16).to_be_bytes());
        w.extend_from_slice(&credential);
        w.extend_from_slice(&(time_update.len() as u16).to_be_bytes());
        w.extend_from_slice(&time_update);
        w
    }

    /// Plaintext length for a signed part of `signed_len` bytes: signature, then padding.
    pub(crate) fn padded_len(signed_len: usize) -> usize {
        (signed_len + 64).div_ceil(PROOF_PADDING) * PROOF_PADDING
    }

    /// The plaintext: the signed part, the device signature and zero padding.
    pub(crate) fn finish(signed_part: &[u8], device_signature: &[u8; 64]) -> Zeroizing<Vec<u8>> {
        let mut pt = Zeroizing::new(Vec::with_capacity(Self::padded_len(signed_part.len())));
        pt.extend_from_slice(signed_part);
        pt.extend_from_slice(device_signature);
        pt.resize(Self::padded_len(signed_part.len()), 0);
        pt
    }

    /// Returns the plaintext and the length of the signed part.
    pub(crate) fn decode(pt: &[u8]) -> Result<(Self, usize), ProtocolError> {
        let mut r = Reader::new(pt);
        let door = r.u32()?;
        let credential = Credential::from_bytes(r.bytes16()?)?;
        let tu = r.bytes16()?;
        let time_update = if tu.is_empty() { None } else { Some(TimeUpdate::from_bytes(tu)?) };
        let signed_len = r.pos();
        let device_signature = r.array()?;
        let pad = r.rest();
        if pad.len() >= PROOF_PADDING || pad.iter().any(|&b| b != 0) {
            return Err(ProtocolError::InvalidField("proof padding"));
        }
        Ok((Self { door, credential, time_update, device_signature }, signed_len))
    }
}

/// Decrypted content of `Result`.
pub(crate) struct ResultPlaintext {
    pub(crate) audit: AuditRecord,
    pub(crate) status: LockStatus,
}

impl ResultPlaintext {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(&self.audit.to_bytes());
        w.u64(self.status.trusted_time);
        w.u64(self.status.time_sequence);
        w.u64(self.status.revocation_version);
        debug_assert_eq!(w.len(), RESULT_PLAINTEXT_LEN);
        w.into_vec()
    }

    pub(crate) fn decode(pt: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(pt);
        let audit = AuditRecord::from_bytes(r.take(AUDIT_RECORD_LEN)?)?;
        let status = LockStatus { trusted_time: r.u64()?, time_sequence: r.u64()?, revocation_version: r.u64()? };
        r.finish()?;
        Ok(Self { audit, status })
    }
}

/// What a lock did with one `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DeltaStatus {
    /// Applied: the lock now holds the delta's `to_version`.
    Applied = 0,
    /// Valid but the lock already holds `to_version` or later; ignored.
    Stale = 1,
    /// Starts after the lock's version (`from_version` > lock version): send the earlier
    /// deltas first.
    Gap = 2,
    /// Not signed by the site authority, or undecodable; ignored.
    Invalid = 3,
    /// The lock's revocation store is full; ignored (the lock stays at its version).
    Full = 4,
}

impl DeltaStatus {
    pub(crate) fn from_code(code: u8) -> Result<Self, crate::ProtocolError> {
        Ok(match code {
            0 => Self::Applied,
            1 => Self::Stale,
            2 => Self::Gap,
            3 => Self::Invalid,
            4 => Self::Full,
            _ => return Err(crate::ProtocolError::InvalidField("update status")),
        })
    }
}

/// Decrypted content of `UpdateAck`.
pub(crate) struct UpdateAckPlaintext {
    pub(crate) status: DeltaStatus,
    pub(crate) lock: LockStatus,
}

impl UpdateAckPlaintext {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.status as u8);
        w.u64(self.lock.trusted_time);
        w.u64(self.lock.time_sequence);
        w.u64(self.lock.revocation_version);
        debug_assert_eq!(w.len(), UPDATE_ACK_PLAINTEXT_LEN);
        w.into_vec()
    }

    pub(crate) fn decode(pt: &[u8]) -> Result<Self, crate::ProtocolError> {
        let mut r = Reader::new(pt);
        let status = DeltaStatus::from_code(r.u8()?)?;
        let lock = LockStatus { trusted_time: r.u64()?, time_sequence: r.u64()?, revocation_version: r.u64()? };
        r.finish()?;
        Ok(Self { status, lock })
    }
}
