//! The platform's secure storage (Keychain, Android Keystore) as a foreign trait.

use std::sync::Arc;

/// Why the platform's secure storage failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SecureStoreError {
    #[error("secure storage unavailable: {reason}")]
    Unavailable { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SecureStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SecureStoreError::Unavailable { reason: e.reason }
    }
}

/// Implemented by the app: Keychain on iOS, Keystore-encrypted preferences on Android.
/// Values are secrets (session tokens, later the device key); never log them.
#[uniffi::export(foreign)]
pub trait SecureStore: Send + Sync {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, SecureStoreError>;
    fn set(&self, key: String, value: Vec<u8>) -> Result<(), SecureStoreError>;
    /// Deleting a missing key succeeds.
    fn delete(&self, key: String) -> Result<(), SecureStoreError>;
}

/// Presents the foreign store to the core, zeroizing the copies that cross the boundary.
pub(crate) struct Adapter(pub Arc<dyn SecureStore>);

fn to_core(e: SecureStoreError) -> porta_core::SecureStoreError {
    porta_core::SecureStoreError(e.to_string())
}

impl porta_core::SecureStore for Adapter {
    fn get(&self, key: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, porta_core::SecureStoreError> {
        Ok(self.0.get(key.to_owned()).map_err(to_core)?.map(zeroize::Zeroizing::new))
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), porta_core::SecureStoreError> {
        self.0.set(key.to_owned(), value.to_vec()).map_err(to_core)
    }
    fn delete(&self, key: &str) -> Result<(), porta_core::SecureStoreError> {
        self.0.delete(key.to_owned()).map_err(to_core)
    }
}
