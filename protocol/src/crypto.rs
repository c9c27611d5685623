//! Domain-separated signing, transcript hashing, key schedule and AEAD (private).

use alloc::vec::Vec;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::ProtocolError;

// Signature domain-separation tags. Each ends with ':' and none is a prefix of another.
pub(crate) const DST_CREDENTIAL: &[u8] = b"porta-v1:credential:";
pub(crate) const DST_LOCK_CERT: &[u8] = b"porta-v1:lock-cert:";
pub(crate) const DST_LOCK_REQUEST: &[u8] = b"porta-v1:lock-request:";
pub(crate) const DST_TIME_UPDATE: &[u8] = b"porta-v1:time-update:";
pub(crate) const DST_REVOCATION: &[u8] = b"porta-v1:revocation-delta:";
pub(crate) const DST_AUDIT: &[u8] = b"porta-v1:audit:";
pub(crate) const DST_CHALLENGE: &[u8] = b"porta-v1:challenge:";
pub(crate) const DST_PROOF: &[u8] = b"porta-v1:proof:";
/// Prefix of the transcript hash input.
pub(crate) const DST_TRANSCRIPT: &[u8] = b"porta-v1:transcript:";
/// HKDF info strings.
pub(crate) const INFO_PHONE_TO_LOCK: &[u8] = b"porta-v1 key phone->lock";
pub(crate) const INFO_LOCK_TO_PHONE: &[u8] = b"porta-v1 key lock->phone";
pub(crate) const INFO_UPDATE: &[u8] = b"porta-v1 key phone->lock updates";
pub(crate) const INFO_UPDATE_ACK: &[u8] = b"porta-v1 key lock->phone updates";

/// AEAD tag length.
pub(crate) const TAG_LEN: usize = 16;

pub(crate) fn sign(key: &SigningKey, dst: &[u8], body: &[u8]) -> [u8; 64] {
    let mut m = Zeroizing::new(Vec::with_capacity(dst.len() + body.len()));
    m.extend_from_slice(dst);
    m.extend_from_slice(body);
    key.sign(&m).to_bytes()
}

pub(crate) fn verify(public: &[u8; 32], dst: &[u8], body: &[u8], sig: &[u8; 64]) -> Result<(), ProtocolError> {
    let vk = VerifyingKey::from_bytes(public).map_err(|_| ProtocolError::InvalidSignature)?;
    let mut m = Vec::with_capacity(dst.len() + body.len());
    m.extend_from_slice(dst);
    m.extend_from_slice(body);
    vk.verify_strict(&m, &Signature::from_bytes(sig)).map_err(|_| ProtocolError::InvalidSignature)
}

/// `SHA-256(DST_TRANSCRIPT || hello || challenge)` over the full messages.
pub(crate) fn transcript_hash(hello: &[u8], challenge: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DST_TRANSCRIPT);
    h.update(hello);
    h.update(challenge);
    h.finalize().into()
}

/// Per-session directional keys. Zeroized on drop.
pub(crate) struct SessionKeys {
    pub(crate) phone_to_lock: Zeroizing<[u8; 32]>,
    pub(crate) lock_to_phone: Zeroizing<[u8; 32]>,
    /// Seals the phone's post-decision `Update` messages (nonce = their index).
    pub(crate) updates: Zeroizing<[u8; 32]>,
    /// Seals the lock's `UpdateAck` messages (nonce = the index of the update acknowledged).
    pub(crate) update_acks: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

/// HKDF-SHA256(salt = transcript hash, ikm = X25519 shared secret).
pub(crate) fn derive_keys(shared: &[u8; 32], th: &[u8; 32]) -> SessionKeys {
    let hk = Hkdf::<Sha256>::new(Some(th), shared);
    let mut k = SessionKeys {
        phone_to_lock: Zeroizing::new([0u8; 32]),
        lock_to_phone: Zeroizing::new([0u8; 32]),
        updates: Zeroizing::new([0u8; 32]),
        update_acks: Zeroizing::new([0u8; 32]),
    };
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = hk.expand(INFO_PHONE_TO_LOCK, &mut k.phone_to_lock[..]);
    let _ = hk.expand(INFO_LOCK_TO_PHONE, &mut k.lock_to_phone[..]);
    let _ = hk.expand(INFO_UPDATE, &mut k.updates[..]);
    let _ = hk.expand(INFO_UPDATE_ACK, &mut k.update_acks[..]);
    k
}

fn aad(msg_type: u8, th: &[u8; 32]) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[0] = msg_type;
    a[1..].copy_from_slice(th);
    a
}

/// Proof and Result keys encrypt exactly one message each, so their nonce is all zeros.
pub(crate) fn seal(key: &[u8; 32], msg_type: u8, th: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    seal_n(key, 0, msg_type, th, plaintext)
}

/// The 12-byte nonce for message `index` of a key: the index, big-endian, zero-extended.
fn nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    n
}

/// Seals message `index` under a key that encrypts a numbered series (updates, acks).
pub(crate) fn seal_n(key: &[u8; 32], index: u64, msg_type: u8, th: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let a = aad(msg_type, th);
    cipher
        .encrypt(Nonce::from_slice(&nonce(index)), Payload { msg: plaintext, aad: &a })
        // Encryption only fails for plaintexts longer than 256 GiB.
        .unwrap_or_default()
}

pub(crate) fn open(
    key: &[u8; 32],
    msg_type: u8,
    th: &[u8; 32],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    open_n(key, 0, msg_type, th, ciphertext)
}

/// Opens message `index` of a numbered series.
pub(crate) fn open_n(
    key: &[u8; 32],
    index: u64,
    msg_type: u8,
    th: &[u8; 32],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ProtocolError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let a = aad(msg_type, th);
    cipher
        .decrypt(Nonce::from_slice(&nonce(index)), Payload { msg: ciphertext, aad: &a })
        .map(Zeroizing::new)
        .map_err(|_| ProtocolError::DecryptFailed)
}

/// Draws 32 bytes of X25519 secret then 16 bytes of nonce, in that order.
pub(crate) fn draw_ephemeral<R: rand_core::RngCore + rand_core::CryptoRng>(
    rng: &mut R,
) -> (x25519_dalek::StaticSecret, [u8; 16]) {
    let mut sk = [0u8; 32];
    rng.fill_bytes(&mut sk);
    let secret = x25519_dalek::StaticSecret::from(sk);
    sk.zeroize();
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    (secret, nonce)
}

/// X25519 with a contributory check; the shared secret is zeroized on drop.
pub(crate) fn agree(
    secret: &x25519_dalek::StaticSecret,
    peer: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, ProtocolError> {
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
    if !shared.was_contributory() {
        return Err(ProtocolError::WeakKey);
    }
    Ok(Zeroizing::new(*shared.as_bytes()))
}
