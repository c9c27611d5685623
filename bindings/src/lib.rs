//! # porta-ffi
//!
//! The thin UniFFI layer over `porta-core`: records mirroring the core's types, the
//! foreign traits apps implement (secure storage, logging), one error enum a UI can act on.
//! No logic lives here; anything worth testing is in the core.

use std::sync::Arc;

mod error;
mod logging;
mod secure_store;

pub use error::PortaError;
pub use logging::{set_logger, LogLevel, LogRecord, Logger, LoggerError};
pub use secure_store::{SecureStore, SecureStoreError};

uniffi::setup_scaffolding!("porta");

/// How to reach the backend and where to keep local data.
#[derive(uniffi::Record)]
pub struct ClientConfig {
    /// Base URL of the Porta backend, e.g. `https://porta.example.com`.
    pub server_url: String,
    /// A directory the app owns (Application Support on iOS, `filesDir` on Android).
    pub data_dir: String,
    /// Shown in the user's device list.
    pub device_name: String,
    /// Upper bound for one request, in seconds.
    #[uniffi(default = 15)]
    pub request_timeout_s: u32,
}

#[derive(uniffi::Enum)]
pub enum UnitKind {
    Apartment,
    Office,
}

/// The apartment or office the building assigned; read-only for the resident.
/// (Not `Unit`: that name is taken by Kotlin's `kotlin.Unit`.)
#[derive(uniffi::Record)]
pub struct BuildingUnit {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
}

#[derive(uniffi::Record)]
pub struct Profile {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub unit: Option<BuildingUnit>,
    pub has_picture: bool,
    pub updated_at: i64,
}

/// A correction; `None` leaves a field unchanged.
#[derive(uniffi::Record, Default)]
pub struct ProfileUpdate {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub email: Option<String>,
    #[uniffi(default = None)]
    pub phone: Option<String>,
}

impl From<porta_core::Profile> for Profile {
    fn from(p: porta_core::Profile) -> Self {
        Profile {
            user_id: p.user_id,
            name: p.name,
            email: p.email,
            phone: p.phone,
            unit: p.unit.map(|u| BuildingUnit {
                id: u.id,
                name: u.name,
                kind: match u.kind {
                    porta_core::UnitKind::Apartment => UnitKind::Apartment,
                    porta_core::UnitKind::Office => UnitKind::Office,
                },
            }),
            has_picture: p.has_picture,
            updated_at: p.updated_at,
        }
    }
}

/// The Porta client. Create one per app; every method may be called from any thread.
#[derive(uniffi::Object)]
pub struct PortaClient {
    core: porta_core::Client,
}

#[uniffi::export]
impl PortaClient {
    /// Opens local storage and restores the session from `secure_store`. No network.
    #[uniffi::constructor]
    pub fn new(config: ClientConfig, secure_store: Arc<dyn SecureStore>) -> Result<Arc<Self>, PortaError> {
        let mut core_config = porta_core::ClientConfig::new(config.server_url, config.data_dir);
        core_config.device_name = config.device_name;
        core_config.request_timeout = std::time::Duration::from_secs(config.request_timeout_s.max(1).into());
        let store = Arc::new(secure_store::Adapter(secure_store));
        Ok(Arc::new(Self { core: porta_core::Client::new(core_config, store)? }))
    }

    pub fn is_signed_in(&self) -> bool {
        self.core.is_signed_in()
    }

    /// The signed-in person's random identifier.
    pub fn user_id(&self) -> Option<String> {
        self.core.user_id()
    }

    /// Sends a one-time code to an email address or phone number.
    pub async fn request_code(&self, identifier: String) -> Result<(), PortaError> {
        Ok(self.core.request_code(&identifier).await?)
    }

    pub async fn sign_in(&self, identifier: String, code: String) -> Result<(), PortaError> {
        Ok(self.core.sign_in(&identifier, &code).await?)
    }

    pub async fn sign_out(&self) -> Result<(), PortaError> {
        Ok(self.core.sign_out().await?)
    }

    /// Fresh from the backend; offline, the cached copy.
    pub async fn profile(&self) -> Result<Profile, PortaError> {
        Ok(self.core.profile().await?.into())
    }

    /// The last fetched profile, without the network.
    pub fn cached_profile(&self) -> Result<Option<Profile>, PortaError> {
        Ok(self.core.cached_profile()?.map(Into::into))
    }

    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<Profile, PortaError> {
        let update = porta_core::ProfileUpdate { name: update.name, email: update.email, phone: update.phone };
        Ok(self.core.update_profile(update).await?.into())
    }

    /// PNG or JPEG, at most 2 MB.
    pub async fn set_picture(&self, image: Vec<u8>) -> Result<(), PortaError> {
        Ok(self.core.set_picture(image).await?)
    }

    pub async fn picture(&self) -> Result<Option<Vec<u8>>, PortaError> {
        Ok(self.core.picture().await?)
    }
}
