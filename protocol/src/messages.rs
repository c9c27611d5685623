//! Handshake message encodings (see `SPEC.md` for byte layouts).

use alloc::vec::Vec;

use crate::credential::{Credential, LockCertificate};
use crate::error::ProtocolError;
use crate::updates::{AuditRecord, LockStatus, RevocationList, TimeUpdate, AUDIT_RECORD_LEN};
use crate::wire::{Reader, Writer};
use crate::{DoorId, PROTOCOL_VERSION};

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
    pub(crate) revocations: Option<RevocationList>,
    pub(crate) device_signature: [u8; 64],
}

impl ProofPlaintext {
    /// Encodes the signed part (everything before the device signature).
    pub(crate) fn encode_signed_part(
        door: DoorId,
        credential: &Credential,
        time_update: Option<&TimeUpdate>,
        revocations: Option<&RevocationList>,
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(door);
        w.bytes16(&credential.to_bytes());
        w.bytes16(&time_update.map(TimeUpdate::to_bytes).unwrap_or_default());
        w.bytes16(&revocations.map(RevocationList::to_bytes).unwrap_or_default());
        w.into_vec()
    }

    /// Appends the device signature and zero padding.
    pub(crate) fn finish(mut signed_part: Vec<u8>, device_signature: &[u8; 64]) -> Vec<u8> {
        signed_part.extend_from_slice(device_signature);
        let padded = signed_part.len().div_ceil(PROOF_PADDING) * PROOF_PADDING;
        signed_part.resize(padded, 0);
        signed_part
    }

    /// Returns the plaintext and the length of the signed part.
    pub(crate) fn decode(pt: &[u8]) -> Result<(Self, usize), ProtocolError> {
        let mut r = Reader::new(pt);
        let door = r.u32()?;
        let credential = Credential::from_bytes(r.bytes16()?)?;
        let tu = r.bytes16()?;
        let time_update = if tu.is_empty() { None } else { Some(TimeUpdate::from_bytes(tu)?) };
        let rl = r.bytes16()?;
        let revocations = if rl.is_empty() { None } else { Some(RevocationList::from_bytes(rl)?) };
        let signed_len = r.pos();
        let device_signature = r.array()?;
        let pad = r.rest();
        if pad.len() >= PROOF_PADDING || pad.iter().any(|&b| b != 0) {
            return Err(ProtocolError::InvalidField("proof padding"));
        }
        Ok((Self { door, credential, time_update, revocations, device_signature }, signed_len))
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
