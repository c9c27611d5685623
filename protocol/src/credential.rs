//! Credentials (site-signed permission for a device key to open doors) and lock
//! certificates (site-signed binding of a lock key to a lock id and its doors).
//!
//! Both are issued by the site authority (the server) with its Ed25519 key, and
//! verified offline: credentials by the lock, lock certificates by the phone. A lock asks for
//! its certificate with a [`ProvisioningRequest`] signed by its own key.

use alloc::vec::Vec;

use ed25519_dalek::SigningKey;

use crate::crypto::{self, DST_CREDENTIAL, DST_LOCK_CERT, DST_LOCK_REQUEST};
use crate::error::ProtocolError;
use crate::wire::{signed_bytes, Reader, Writer};
use crate::{CredentialId, DoorId, LockId, MAX_DOORS, MAX_SCHEDULE_WINDOWS, PROTOCOL_VERSION};

/// Minutes in a day; schedule windows are within `0..=MINUTES_PER_DAY`.
pub const MINUTES_PER_DAY: u16 = 1440;
/// Bound on the site's UTC offset carried in a schedule (±18 h, in minutes).
pub const MAX_UTC_OFFSET_MINUTES: i16 = 18 * 60;
/// Longest encoded credential: 32 doors and 16 schedule windows (SPEC §2.1).
pub const MAX_CREDENTIAL_LEN: usize = 67 + 4 * MAX_DOORS + 2 + 5 * MAX_SCHEDULE_WINDOWS + 64;

/// One weekly access window in the site's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Days bitmask: bit 0 = Monday … bit 6 = Sunday. Bit 7 must be 0; must be non-zero.
    pub days: u8,
    /// First minute of the day (local) when access is allowed, inclusive.
    pub start_minute: u16,
    /// End minute (local), exclusive; `start_minute < end_minute <= 1440`.
    /// Windows that cross midnight are expressed as two windows.
    pub end_minute: u16,
}

/// Weekly schedule in the site's local time (a fixed UTC offset carried in the credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklySchedule {
    /// Local time = UTC + this many minutes (`-1080..=1080`).
    pub utc_offset_minutes: i16,
    /// Allowed windows (1..=16); access is allowed if any window matches.
    pub windows: Vec<TimeWindow>,
}

impl WeeklySchedule {
    /// Whether `unix_time` (seconds) falls in one of the windows.
    pub fn allows(&self, unix_time: u64) -> bool {
        let local = unix_time as i128 + self.utc_offset_minutes as i128 * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        // 1970-01-01 was a Thursday: index 3 with Monday = 0.
        let weekday = (days + 3).rem_euclid(7) as u8;
        let minute = (secs / 60) as u16;
        self.windows.iter().any(|w| w.days & (1 << weekday) != 0 && w.start_minute <= minute && minute < w.end_minute)
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        if self.windows.is_empty() || self.windows.len() > MAX_SCHEDULE_WINDOWS {
            return Err(ProtocolError::InvalidField("schedule window count"));
        }
        if !(-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(&self.utc_offset_minutes) {
            return Err(ProtocolError::InvalidField("schedule utc offset"));
        }
        for w in &self.windows {
            if w.days == 0 || w.days & 0x80 != 0 {
                return Err(ProtocolError::InvalidField("schedule days"));
            }
            if w.start_minute >= w.end_minute || w.end_minute > MINUTES_PER_DAY {
                return Err(ProtocolError::InvalidField("schedule window"));
            }
        }
        Ok(())
    }
}

/// The signed content of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBody {
    /// Random id chosen by the site authority (used for revocation and audit).
    pub credential_id: CredentialId,
    /// The device's Ed25519 public key (created on the phone).
    pub device_key: [u8; 32],
    /// Doors this credential opens (1..=32).
    pub doors: Vec<DoorId>,
    /// Valid from (unix seconds, inclusive).
    pub not_before: u64,
    /// Valid until (unix seconds, inclusive).
    pub not_after: u64,
    /// Optional weekly schedule; `None` = any time within validity.
    pub schedule: Option<WeeklySchedule>,
}

impl CredentialBody {
    fn validate(&self) -> Result<(), ProtocolError> {
        validate_doors(&self.doors)?;
        if self.not_before > self.not_after {
            return Err(ProtocolError::InvalidField("validity period"));
        }
        if let Some(s) = &self.schedule {
            s.validate()?;
        }
        Ok(())
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(PROTOCOL_VERSION);
        w.bytes(&self.credential_id);
        w.bytes(&self.device_key);
        w.u64(self.not_before);
        w.u64(self.not_after);
        encode_doors(w, &self.doors);
        match &self.schedule {
            None => w.u8(0),
            Some(s) => {
                w.u8(s.windows.len() as u8);
                w.i16(s.utc_offset_minutes);
                for win in &s.windows {
                    w.u8(win.days);
                    w.u16(win.start_minute);
                    w.u16(win.end_minute);
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        r.version(PROTOCOL_VERSION)?;
        let credential_id = r.array()?;
        let device_key = r.array()?;
        let not_before = r.u64()?;
        let not_after = r.u64()?;
        let doors = decode_doors(r)?;
        let n = r.u8()? as usize;
        let schedule = if n == 0 {
            None
        } else {
            if n > MAX_SCHEDULE_WINDOWS {
                return Err(ProtocolError::InvalidField("schedule window count"));
            }
            let utc_offset_minutes = r.i16()?;
            let mut windows = Vec::with_capacity(n);
            for _ in 0..n {
                windows.push(TimeWindow { days: r.u8()?, start_minute: r.u16()?, end_minute: r.u16()? });
            }
            Some(WeeklySchedule { utc_offset_minutes, windows })
        };
        let body = Self { credential_id, device_key, doors, not_before, not_after, schedule };
        body.validate()?;
        Ok(body)
    }
}

/// A credential: [`CredentialBody`] plus the site authority's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Signed content.
    pub body: CredentialBody,
    /// Ed25519 signature by the site authority over `"porta-v1:credential:" || body bytes`.
    pub signature: [u8; 64],
}

impl zeroize::Zeroize for Credential {
    /// Clears every field: a lock wipes the plaintext credential it decrypted from a Proof.
    fn zeroize(&mut self) {
        let b = &mut self.body;
        b.credential_id.zeroize();
        b.device_key.zeroize();
        b.doors.zeroize();
        b.not_before.zeroize();
        b.not_after.zeroize();
        if let Some(s) = &mut b.schedule {
            s.utc_offset_minutes.zeroize();
            for w in &mut s.windows {
                w.days.zeroize();
                w.start_minute.zeroize();
                w.end_minute.zeroize();
            }
        }
        self.signature.zeroize();
    }
}

impl Credential {
    /// Issues (signs) a credential. Used by the server.
    pub fn issue(authority: &SigningKey, body: CredentialBody) -> Result<Self, ProtocolError> {
        body.validate()?;
        let mut w = Writer::new();
        body.encode(&mut w);
        let signature = crypto::sign(authority, DST_CREDENTIAL, w.as_slice());
        Ok(Self { body, signature })
    }

    /// Verifies the authority signature.
    pub fn verify(&self, authority: &ed25519_dalek::VerifyingKey) -> Result<(), ProtocolError> {
        self.body.validate()?;
        let mut w = Writer::new();
        self.body.encode(&mut w);
        crypto::verify(authority.as_bytes(), DST_CREDENTIAL, w.as_slice(), &self.signature)
    }

    /// Canonical encoding (body then signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.body.encode(&mut w);
        w.bytes(&self.signature);
        w.into_vec()
    }

    /// Strict decoding (no trailing bytes). Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        let body = CredentialBody::decode(&mut r)?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self { body, signature })
    }

    /// The credential id.
    pub fn id(&self) -> &CredentialId {
        &self.body.credential_id
    }

    /// Whether the credential lists `door`.
    pub fn covers(&self, door: DoorId) -> bool {
        self.body.doors.contains(&door)
    }
}

/// A lock certificate: the site authority binds a lock key to a lock id and its doors, for
/// a validity period. Issued when an admin submits the lock's own [`ProvisioningRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockCertificate {
    /// Lock id (non-zero).
    pub lock_id: LockId,
    /// The lock's Ed25519 public key.
    pub lock_key: [u8; 32],
    /// Valid from (unix seconds, inclusive; 32 bits on the wire keep a one-door Challenge
    /// in one fragment at ATT MTU 247).
    pub not_before: u32,
    /// Valid until (unix seconds, inclusive).
    pub not_after: u32,
    /// Doors this lock controls (1..=32).
    pub doors: Vec<DoorId>,
    /// Ed25519 signature by the site authority over `"porta-v1:lock-cert:" || body bytes`.
    pub signature: [u8; 64],
}

impl LockCertificate {
    /// Issues (signs) a lock certificate. Used by the server at provisioning.
    pub fn issue(
        authority: &SigningKey,
        lock_id: LockId,
        lock_key: [u8; 32],
        doors: Vec<DoorId>,
        not_before: u32,
        not_after: u32,
    ) -> Result<Self, ProtocolError> {
        let mut c = Self { lock_id, lock_key, not_before, not_after, doors, signature: [0; 64] };
        c.validate()?;
        c.signature = crypto::sign(authority, DST_LOCK_CERT, &c.body_bytes());
        Ok(c)
    }

    fn validate(&self) -> Result<(), ProtocolError> {
        if self.lock_id == 0 {
            return Err(ProtocolError::InvalidField("lock id"));
        }
        if self.not_before > self.not_after {
            return Err(ProtocolError::InvalidField("validity period"));
        }
        validate_doors(&self.doors)
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.u32(self.lock_id);
        w.bytes(&self.lock_key);
        w.u32(self.not_before);
        w.u32(self.not_after);
        encode_doors(&mut w, &self.doors);
        w.into_vec()
    }

    /// Verifies the authority signature.
    pub fn verify(&self, authority: &ed25519_dalek::VerifyingKey) -> Result<(), ProtocolError> {
        self.validate()?;
        crypto::verify(authority.as_bytes(), DST_LOCK_CERT, &self.body_bytes(), &self.signature)
    }

    /// Whether `unix_time` is inside the validity period, widened by `skew_s` on both sides.
    pub fn valid_at(&self, unix_time: u64, skew_s: u64) -> bool {
        unix_time.saturating_add(skew_s) >= u64::from(self.not_before)
            && unix_time <= u64::from(self.not_after).saturating_add(skew_s)
    }

    /// Canonical encoding (body then signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding. Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let lock_id = r.u32()?;
        let lock_key = r.array()?;
        let not_before = r.u32()?;
        let not_after = r.u32()?;
        let doors = decode_doors(&mut r)?;
        let signature = r.array()?;
        r.finish()?;
        let c = Self { lock_id, lock_key, not_before, not_after, doors, signature };
        c.validate()?;
        Ok(c)
    }
}

/// Encoded length of a [`ProvisioningRequest`] (SPEC §2.6).
pub const PROVISIONING_REQUEST_LEN: usize = 1 + 32 + 16 + 64;

/// What a new lock emits to be installed: its own public key, signed with the private key
/// that never leaves it (proof of possession). An admin submits it for a door; the site
/// answers with a [`LockCertificate`] for that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningRequest {
    /// The lock's Ed25519 public key.
    pub lock_key: [u8; 32],
    /// Random id the lock chose, so an installer can match request and answer.
    pub request_id: [u8; 16],
    /// Ed25519 signature by the lock key over `"porta-v1:lock-request:" || body bytes`.
    pub signature: [u8; 64],
}

impl ProvisioningRequest {
    /// Signs a request for `lock_key` with a fresh request id from `rng`.
    pub fn sign<R: rand_core::RngCore + rand_core::CryptoRng>(lock_key: &SigningKey, rng: &mut R) -> Self {
        let mut request_id = [0u8; 16];
        rng.fill_bytes(&mut request_id);
        let mut r = Self { lock_key: lock_key.verifying_key().to_bytes(), request_id, signature: [0; 64] };
        r.signature = crypto::sign(lock_key, DST_LOCK_REQUEST, &r.body_bytes());
        r
    }

    fn body_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.bytes(&self.lock_key);
        w.bytes(&self.request_id);
        w.into_vec()
    }

    /// Verifies the signature with the key the request carries: whoever made it holds the
    /// private key.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        crypto::verify(&self.lock_key, DST_LOCK_REQUEST, &self.body_bytes(), &self.signature)
    }

    /// Canonical encoding (body then signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        signed_bytes(self.body_bytes(), &self.signature)
    }

    /// Strict decoding. Does not verify the signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(bytes);
        r.version(PROTOCOL_VERSION)?;
        let lock_key = r.array()?;
        let request_id = r.array()?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Self { lock_key, request_id, signature })
    }
}

fn validate_doors(doors: &[DoorId]) -> Result<(), ProtocolError> {
    if doors.is_empty() || doors.len() > MAX_DOORS {
        return Err(ProtocolError::InvalidField("door count"));
    }
    Ok(())
}

fn encode_doors(w: &mut Writer, doors: &[DoorId]) {
    w.u8(doors.len() as u8);
    for d in doors {
        w.u32(*d);
    }
}

fn decode_doors(r: &mut Reader<'_>) -> Result<Vec<DoorId>, ProtocolError> {
    let n = r.u8()? as usize;
    if n == 0 || n > MAX_DOORS {
        return Err(ProtocolError::InvalidField("door count"));
    }
    let mut doors = Vec::with_capacity(n);
    for _ in 0..n {
        doors.push(r.u32()?);
    }
    Ok(doors)
}
