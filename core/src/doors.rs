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
    /// The lock that controls it (what the phone looks for over Bluetooth); `None` while
    /// the building has not installed one, and then the door cannot be opened by phone.
    pub lock_id: Option<u32>,
    /// That lock's public key (base64), as the site has it on record: the phone refuses any
    /// other lock, so a replaced or decommissioned lock stops working at the next sync.
    /// `None` from a server that does not publish it.
    #[serde(default)]
    pub lock_public_key: Option<String>,
    /// How long the building keeps the access log of this door.
    pub log_retention_days: u32,
    /// When I may open it: one entry per grant. A guest's says e.g. "Tuesdays 09-12 until
    /// 31 March"; a resident's usually has no end. Empty in caches from older versions.
    #[serde(default)]
    pub access: Vec<crate::AccessWindow>,
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
    #[serde(default)]
    pub revocation_version: u64,
    #[serde(default)]
    pub server_time: i64,
}

/// Everything one unlock attempt needs, decoded from the cache.
pub(crate) struct DoorAccess {
    pub lock_id: u32,
    /// The lock the site has on record for the door.
    pub lock_key: Option<[u8; 32]>,
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
        for d in &self.doors {
            if let Some(k) = &d.lock_public_key {
                if decode("lock_public_key", k)?.len() != 32 {
                    return Err(Error::InvalidResponse("lock public key length".into()));
                }
            }
        }
        if !self.time_update.is_empty() {
            porta_protocol::TimeUpdate::from_bytes(&decode("time_update", &self.time_update)?)
                .map_err(|_| Error::InvalidResponse("time update malformed".into()))?;
        }
        Ok(())
    }

    /// The site authority's key.
    pub fn authority(&self) -> Result<porta_protocol::VerifyingKey> {
        let key: [u8; 32] = decode("authority_public_key", &self.authority_public_key)?
            .try_into()
            .map_err(|_| Error::InvalidResponse("authority key length".into()))?;
        porta_protocol::VerifyingKey::from_bytes(&key)
            .map_err(|_| Error::InvalidResponse("authority key invalid".into()))
    }

    /// The locks of my doors.
    pub fn lock_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.doors.iter().filter_map(|d| d.lock_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The door and a credential covering it that is valid around `now`, if any.
    pub fn access(&self, door_id: u32, now: i64) -> Result<DoorAccess> {
        let door = self.doors.iter().find(|d| d.door_id == door_id).ok_or(Error::NoAccess)?;
        let lock_id = door.lock_id.ok_or(Error::NoAccess)?;
        let lock_key = match &door.lock_public_key {
            None => None,
            Some(k) => Some(
                decode("lock_public_key", k)?
                    .try_into()
                    .map_err(|_| Error::InvalidResponse("lock public key length".into()))?,
            ),
        };
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
        Ok(DoorAccess { lock_id, lock_key, credential, authority, updates: porta_protocol::Updates { time } })
    }
}

/// `GET /v1/me/revocations`.
#[derive(Deserialize)]
pub(crate) struct RevocationsResponse {
    pub version: u64,
    pub deltas: Vec<String>,
}

impl RevocationsResponse {
    /// Decodes and verifies every delta against the site's key, and checks they form one
    /// chain from at most `since` to `version`; returns them as (from, to, bytes).
    pub fn verified(&self, authority: &porta_protocol::VerifyingKey, since: u64) -> Result<Vec<(u64, u64, Vec<u8>)>> {
        let mut out = Vec::with_capacity(self.deltas.len());
        let mut at = since;
        for d in &self.deltas {
            let bytes = decode("delta", d)?;
            let delta = porta_protocol::RevocationDelta::from_bytes(&bytes)
                .map_err(|_| Error::InvalidResponse("revocation delta malformed".into()))?;
            delta
                .verify(authority)
                .map_err(|_| Error::InvalidResponse("revocation delta not signed by the site".into()))?;
            if delta.from_version > at || delta.to_version <= at {
                return Err(Error::InvalidResponse("revocation deltas do not chain".into()));
            }
            at = delta.to_version;
            out.push((delta.from_version, delta.to_version, bytes));
        }
        if !out.is_empty() && at != self.version {
            return Err(Error::InvalidResponse("revocation deltas end before the current version".into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The backend lists a door before its lock is installed (`lock_id: null`). That door
    /// cannot be opened by phone, but it must not make the whole list unreadable.
    #[test]
    fn a_door_without_a_lock_is_listed_and_refused_without_breaking_the_others() {
        let json = r#"{
            "authority_public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "site_name": "Demo Building",
            "doors": [
                {"door_id": 1, "name": "Main entrance", "lock_id": 1, "log_retention_days": 30},
                {"door_id": 4, "name": "New gate", "lock_id": null, "log_retention_days": 90}
            ],
            "credentials": [], "time_update": ""
        }"#;
        let doors: DoorsResponse = serde_json::from_str(json).unwrap();
        assert_eq!(doors.doors[1].lock_id, None);
        assert!(doors.doors[0].access.is_empty(), "a cache from before access windows still parses");
        assert!(matches!(doors.access(4, 0), Err(Error::NoAccess)));
        assert!(matches!(doors.access(9, 0), Err(Error::NoAccess)));
    }

    /// What a UI needs to say "Tuesdays 09:00-12:00 until 31 March" for a guest's door.
    #[test]
    fn a_guest_door_carries_its_window_and_schedule() {
        let json = r#"{"door_id": 1, "name": "Main entrance", "lock_id": 1, "log_retention_days": 30,
            "access": [{"not_before": 1774224000, "not_after": 1774915200,
                        "schedule": {"utc_offset_minutes": 60,
                                     "windows": [{"days": 2, "start_minute": 540, "end_minute": 720}]}}]}"#;
        let door: Door = serde_json::from_str(json).unwrap();
        let access = &door.access[0];
        assert_eq!(access.not_after, 1774915200);
        assert_eq!(access.schedule.as_ref().unwrap().to_string(), "Tu 09:00-12:00");
    }

    #[test]
    fn access_log_events_of_removed_doors_still_parse() {
        let json = r#"{"events": [{"door_id": null, "door_name": null, "at": 5, "decision": "opened"}],
                       "retention": []}"#;
        let log: crate::AccessLog = serde_json::from_str(json).unwrap();
        assert!(log.events[0].opened() && log.events[0].door_name.is_none());
    }
}
