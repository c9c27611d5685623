//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API).
//!
//! The message decoders are crate-private, and the proof, result and update plaintexts sit
//! behind the session AEAD: these functions let a target reach both with arbitrary bytes.
//! Sealing needs the caller's own ephemeral secret, so nothing here helps anyone without it.

use alloc::vec::Vec;

use crate::crypto;
use crate::error::ProtocolError;
use crate::messages::{Challenge, Hello, MessageType, ProofPlaintext, ResultPlaintext, UpdateAckPlaintext};

/// Decodes a `Hello` and returns its canonical re-encoding.
pub fn hello(msg: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    Ok(Hello::decode(msg)?.encode())
}

/// Decodes a `Challenge` (signature not verified) and returns its canonical re-encoding.
pub fn challenge(msg: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let (c, _) = Challenge::decode(msg)?;
    let mut out = Challenge::encode_unsigned(&c.eph, &c.nonce, c.attempt, &c.certificate);
    out.extend_from_slice(&c.signature);
    Ok(out)
}

/// Decodes a decrypted `Proof` plaintext. Returns its canonical re-encoding (padded to
/// [`crate::messages::PROOF_PADDING`]) and the length of the device-signed part.
pub fn proof_plaintext(pt: &[u8]) -> Result<(Vec<u8>, usize), ProtocolError> {
    let (p, signed_len) = ProofPlaintext::decode(pt)?;
    let signed = ProofPlaintext::encode_signed_part(p.door, &p.credential, p.time_update.as_ref());
    Ok((ProofPlaintext::finish(&signed, &p.device_signature).to_vec(), signed_len))
}

/// Decodes a decrypted `Result` plaintext and returns its canonical re-encoding.
pub fn result_plaintext(pt: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    Ok(ResultPlaintext::decode(pt)?.encode())
}

/// Decodes a decrypted `UpdateAck` plaintext and returns its canonical re-encoding.
pub fn update_ack_plaintext(pt: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    Ok(UpdateAckPlaintext::decode(pt)?.encode())
}

/// Encrypts `plaintext` as message `index` of kind `kind` in the session `hello`/`challenge`
/// and returns the whole message, type byte included. `own_secret` is the sender's ephemeral
/// secret: the phone's for `Proof` and `Update`, the lock's for `Result` and `UpdateAck`.
/// `Proof` and `Result` are single messages (index 0).
pub fn seal(
    kind: MessageType,
    index: u64,
    own_secret: [u8; 32],
    hello: &[u8],
    challenge: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    let (key, th) = session_key(kind, own_secret, hello, challenge)?;
    let mut msg = Vec::with_capacity(1 + plaintext.len() + crypto::TAG_LEN);
    msg.push(kind as u8);
    msg.extend_from_slice(&crypto::seal_n(&key, index, kind as u8, &th, plaintext));
    Ok(msg)
}

/// Decrypts message `index` of kind `kind`, sealed by [`seal`] or by a real handshake.
pub fn open(
    kind: MessageType,
    index: u64,
    own_secret: [u8; 32],
    hello: &[u8],
    challenge: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    let (key, th) = session_key(kind, own_secret, hello, challenge)?;
    crate::messages::expect_type(msg, kind)?;
    Ok(crypto::open_n(&key, index, kind as u8, &th, &msg[1..])?.to_vec())
}

fn session_key(
    kind: MessageType,
    own_secret: [u8; 32],
    hello: &[u8],
    challenge: &[u8],
) -> Result<([u8; 32], [u8; 32]), ProtocolError> {
    let secret = x25519_dalek::StaticSecret::from(own_secret);
    let peer = match kind {
        MessageType::Proof | MessageType::Update => Challenge::decode(challenge)?.0.eph,
        MessageType::Result | MessageType::UpdateAck => Hello::decode(hello)?.eph,
        MessageType::Hello | MessageType::Challenge => return Err(ProtocolError::InvalidState),
    };
    let shared = crypto::agree(&secret, &peer)?;
    let th = crypto::transcript_hash(hello, challenge);
    let keys = crypto::derive_keys(&shared, &th);
    let key = match kind {
        MessageType::Proof => *keys.phone_to_lock,
        MessageType::Result => *keys.lock_to_phone,
        MessageType::Update => *keys.updates,
        _ => *keys.update_acks,
    };
    Ok((key, th))
}
