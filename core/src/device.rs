//! The device key: an Ed25519 key created on the phone at sign-in, kept only in the secure
//! store, enrolled with the backend by proof of possession, and never sent anywhere.

use porta_protocol::SigningKey;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secure_store::SecureStore;

pub(crate) const DEVICE_KEY: &str = "porta.device_key";

/// The enrolment proof's domain separation prefix (the server checks the same bytes).
const ENROLL_CONTEXT: &[u8] = b"porta-enroll-v1";

/// Loads the device key, creating and storing a new one if there is none.
pub(crate) fn load_or_create(store: &dyn SecureStore) -> Result<SigningKey> {
    if let Some(key) = load(store)? {
        return Ok(key);
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
    let key = SigningKey::from_bytes(&secret);
    store.set(DEVICE_KEY, key.as_bytes()).map_err(|e| Error::SecureStore(e.0))?;
    Ok(key)
}

pub(crate) fn load(store: &dyn SecureStore) -> Result<Option<SigningKey>> {
    let Some(bytes) = store.get(DEVICE_KEY).map_err(|e| Error::SecureStore(e.0))? else { return Ok(None) };
    let secret: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes.as_slice().try_into().map_err(|_| Error::SecureStore("stored device key is malformed".into()))?,
    );
    Ok(Some(SigningKey::from_bytes(&secret)))
}

pub(crate) fn delete(store: &dyn SecureStore) -> Result<()> {
    store.delete(DEVICE_KEY).map_err(|e| Error::SecureStore(e.0))
}

/// Signature over `context || session id || public key`: proves this session holds the key.
pub(crate) fn enrollment_signature(key: &SigningKey, session_id: &str) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let public = key.verifying_key().to_bytes();
    let mut message = Vec::with_capacity(ENROLL_CONTEXT.len() + session_id.len() + 32);
    message.extend_from_slice(ENROLL_CONTEXT);
    message.extend_from_slice(session_id.as_bytes());
    message.extend_from_slice(&public);
    key.sign(&message).to_bytes()
}
