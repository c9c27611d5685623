//! Provisioning a lock from bytes.

use porta_protocol::{CryptoRng, DoorId, LockCertificate, LockConfig, LockId, RngCore, SigningKey, VerifyingKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::LockError;

/// Everything a lock needs at installation, as plain bytes (what a server hands to
/// the installer). The secret key is zeroized on drop and redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct LockProvision {
    /// The lock id (≠ 0), as in the certificate.
    pub lock_id: u32,
    /// Doors the lock controls, as in the certificate.
    pub doors: Vec<u32>,
    /// The lock's Ed25519 secret key (seed).
    pub lock_secret_key: [u8; 32],
    /// The site-signed lock certificate (SPEC §2.2).
    pub certificate: Vec<u8>,
    /// The site authority's Ed25519 public key.
    pub authority_public_key: [u8; 32],
}

impl std::fmt::Debug for LockProvision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockProvision")
            .field("lock_id", &self.lock_id)
            .field("doors", &self.doors)
            .field("lock_secret_key", &"<redacted>")
            .field("certificate_len", &self.certificate.len())
            .field("authority_public_key", &self.authority_public_key)
            .finish()
    }
}

impl LockProvision {
    /// Builds the [`LockConfig`]: parses the certificate, checks it is signed by the
    /// authority, certifies this secret key, and matches `lock_id` and `doors`.
    pub fn into_config(self) -> Result<LockConfig, LockError> {
        self.to_config()
    }

    /// Like [`Self::into_config`] without consuming the provision.
    pub fn to_config(&self) -> Result<LockConfig, LockError> {
        let cert = LockCertificate::from_bytes(&self.certificate).map_err(LockError::Provision)?;
        if cert.lock_id != self.lock_id || cert.doors != self.doors {
            return Err(LockError::Provision(porta_protocol::ProtocolError::InvalidField(
                "certificate does not match provision",
            )));
        }
        let authority = VerifyingKey::from_bytes(&self.authority_public_key)
            .map_err(|_| LockError::Provision(porta_protocol::ProtocolError::InvalidField("authority public key")))?;
        let key = SigningKey::from_bytes(&self.lock_secret_key);
        LockConfig::new(key, cert, authority).map_err(LockError::Provision)
    }

    /// The lock's public key.
    pub fn lock_public_key(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.lock_secret_key).verifying_key().to_bytes()
    }
}

/// Provisions a new lock: generates its key pair with `rng` and has the site
/// `authority` sign its certificate for `lock_id` (≠ 0) and `doors` (1..=32).
pub fn provision_new_lock<R: RngCore + CryptoRng>(
    authority: &SigningKey,
    lock_id: LockId,
    doors: Vec<DoorId>,
    rng: &mut R,
) -> Result<LockProvision, LockError> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let cert = LockCertificate::issue(authority, lock_id, key.verifying_key().to_bytes(), doors.clone())
        .map_err(LockError::Provision)?;
    let p = LockProvision {
        lock_id,
        doors,
        lock_secret_key: seed,
        certificate: cert.to_bytes(),
        authority_public_key: authority.verifying_key().to_bytes(),
    };
    seed.zeroize();
    Ok(p)
}
