//! The doors a resident may open and the credentials to open them, synced from the backend
//! and cached so unlocking works with no network.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A door the signed-in person may open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Door {
    pub door_id: u32,
    pub name: String,
    /// The lock that controls it (what the phone looks for over Bluetooth).
    pub lock_id: u32,
    /// How long the building keeps the access log of this door.
    pub log_retention_days: u32,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct IssuedCredential {
    pub credential: String,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
}

/// `GET /v1/me/doors`, kept whole in the local database.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DoorsResponse {
    pub authority_public_key: String,
    pub site_name: String,
    pub doors: Vec<Door>,
    pub credentials: Vec<IssuedCredential>,
    pub time_update: String,
    pub revocation_list: String,
    #[serde(default)]
    pub revocation_version: u64,
    #[serde(default)]
    pub server_time: i64,
}

/// Everything one unlock attempt needs, decoded from the cache.
pub(crate) struct DoorAccess {
    pub door: Door,
    pub credential: porta_protocol::Credential,
    pub authority: porta_protocol::VerifyingKey,
    pub updates: porta_protocol::Updates,
}

fn decode(field: &str, b64: &str) -> Result<Vec<u8>> {
    B64.decode(b64).map_err(|_| Error::InvalidResponse(format!("{field} is not base64")))
}

impl DoorsResponse {
    /// Checks everything decodes, so a garbage answer never replaces a good cache.
    pub fn validate(&self) -> Result<()> {
        let key = decode("authority_public_key", &self.authority_public_key)?;
        let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidResponse("authority key length".into()))?;
        let authority = porta_protocol::VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::InvalidResponse("authority key invalid".into()))?;
        for c in &self.credentials {
            let credential = porta_protocol::Credential::from_bytes(&decode("credential", &c.credential)?)
                .map_err(|_| Error::InvalidResponse("credential malformed".into()))?;
            credential
                .verify(&authority)
                .map_err(|_| Error::InvalidResponse("credential not signed by the site".into()))?;
        }
        if !self.time_update.is_empty() {
            porta_protocol::TimeUpdate::from_bytes(&decode("time_update", &self.time_update)?)
                .map_err(|_| Error::InvalidResponse("time update malformed".into()))?;
        }
        if !self.revocation_list.is_empty() {
            porta_protocol::RevocationList::from_bytes(&decode("revocation_list", &self.revocation_list)?)
                .map_err(|_| Error::InvalidResponse("revocation list malformed".into()))?;
        }
        Ok(())
    }

    /// The door and a credential covering it that is valid around `now`, if any.
    pub fn access(&self, door_id: u32, now: i64) -> Result<DoorAccess> {
        let door = self.doors.iter().find(|d| d.door_id == door_id).cloned().ok_or(Error::NoAccess)?;
        let key: [u8; 32] = decode("authority_public_key", &self.authority_public_key)?
            .try_into()
            .map_err(|_| Error::InvalidResponse("authority key length".into()))?;
        let authority = porta_protocol::VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::InvalidResponse("authority key invalid".into()))?;
        let covering: Vec<_> = self.credentials.iter().filter(|c| c.doors.contains(&door_id)).collect();
        if covering.is_empty() {
            return Err(Error::NoAccess);
        }
        // Prefer one valid now; else the latest, so the lock (not the phone) decides and the
        // user hears its reason (expired, outside schedule).
        let chosen = covering
            .iter()
            .find(|c| c.not_before <= now && now <= c.not_after)
            .or_else(|| covering.iter().max_by_key(|c| c.not_after))
            .ok_or(Error::NoAccess)?;
        if chosen.not_after < now {
            return Err(Error::Denied(crate::DenialReason::Expired));
        }
        let credential = porta_protocol::Credential::from_bytes(&decode("credential", &chosen.credential)?)
            .map_err(|_| Error::Storage("cached credential malformed".into()))?;
        let time = if self.time_update.is_empty() {
            None
        } else {
            porta_protocol::TimeUpdate::from_bytes(&decode("time_update", &self.time_update)?).ok()
        };
        let revocations = if self.revocation_list.is_empty() {
            None
        } else {
            porta_protocol::RevocationList::from_bytes(&decode("revocation_list", &self.revocation_list)?).ok()
        };
        Ok(DoorAccess { door, credential, authority, updates: porta_protocol::Updates { time, revocations } })
    }
}
