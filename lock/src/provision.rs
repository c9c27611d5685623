//! Provisioning: the lock creates its own key, asks for a certificate with a request signed
//! by that key, and installs the site's answer. The private key exists only here.

use porta_protocol::{
    CryptoRng, DoorId, LockCertificate, LockConfig, LockId, ProvisioningRequest, RngCore, SigningKey, VerifyingKey,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::LockError;

/// A lock that has its key but no certificate yet: what a lock is between power-on and
/// installation. The secret key is zeroized on drop and redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct NewLock {
    lock_secret_key: [u8; 32],
}

impl std::fmt::Debug for NewLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLock").field("lock_public_key", &self.lock_public_key()).finish_non_exhaustive()
    }
}

impl NewLock {
    /// Generates the lock's Ed25519 key with `rng` (the lock's own randomness).
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut lock_secret_key = [0u8; 32];
        rng.fill_bytes(&mut lock_secret_key);
        Self { lock_secret_key }
    }

    /// Restores a lock from the secret key it saved before installation.
    pub fn from_secret_key(mut lock_secret_key: [u8; 32]) -> Self {
        let lock = Self { lock_secret_key };
        lock_secret_key.zeroize();
        lock
    }

    /// The secret key, for the lock's own storage only.
    pub fn secret_key(&self) -> &[u8; 32] {
        &self.lock_secret_key
    }

    /// The lock's public key.
    pub fn lock_public_key(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.lock_secret_key).verifying_key().to_bytes()
    }

    /// The request an admin submits for a door (SPEC §2.6), signed with this lock's key.
    pub fn provisioning_request<R: RngCore + CryptoRng>(&self, rng: &mut R) -> ProvisioningRequest {
        ProvisioningRequest::sign(&SigningKey::from_bytes(&self.lock_secret_key), rng)
    }

    /// Installs the site's answer: `certificate` must be signed by `authority_public_key`
    /// and certify this lock's key. A certificate for another key (another lock's answer)
    /// is refused and the lock stays uninstalled.
    pub fn install(&self, certificate: &[u8], authority_public_key: [u8; 32]) -> Result<LockProvision, LockError> {
        let cert = LockCertificate::from_bytes(certificate).map_err(LockError::Provision)?;
        let authority = VerifyingKey::from_bytes(&authority_public_key)
            .map_err(|_| LockError::Provision(porta_protocol::ProtocolError::InvalidField("authority public key")))?;
        cert.verify(&authority).map_err(LockError::Provision)?;
        if cert.lock_key != self.lock_public_key() {
            return Err(LockError::CertificateForAnotherKey);
        }
        Ok(LockProvision {
            lock_id: cert.lock_id,
            doors: cert.doors.clone(),
            lock_secret_key: self.lock_secret_key,
            certificate: certificate.to_vec(),
            authority_public_key,
        })
    }
}

/// An installed lock's identity, as plain bytes (what the lock keeps in its state
/// directory). The secret key is zeroized on drop and redacted from `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct LockProvision {
    /// The lock id (≠ 0), as in the certificate.
    pub lock_id: u32,
    /// Doors the lock controls, as in the certificate.
    pub doors: Vec<u32>,
    /// The lock's Ed25519 secret key (seed), created by the lock itself.
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

/// One process playing both roles, for the lock's own tests and benchmarks where no site
/// runs: a new lock makes its request, `authority` checks it and certifies the key for
/// `lock_id` (≠ 0) and `doors` (1..=32) for all time, and the lock installs the answer.
pub fn provision_new_lock<R: RngCore + CryptoRng>(
    authority: &SigningKey,
    lock_id: LockId,
    doors: Vec<DoorId>,
    rng: &mut R,
) -> Result<LockProvision, LockError> {
    let lock = NewLock::generate(rng);
    let request = lock.provisioning_request(rng);
    request.verify().map_err(LockError::Provision)?;
    let cert = LockCertificate::issue(authority, lock_id, request.lock_key, doors, 0, u32::MAX)
        .map_err(LockError::Provision)?;
    lock.install(&cert.to_bytes(), authority.verifying_key().to_bytes())
}
