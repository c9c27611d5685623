//! Door grants and the caller's doors: `GET /v1/me/doors` issues short-lived, site-signed
//! credentials for the caller's enrolled device key, one per group of active grants with the
//! same validity and schedule, together with a fresh time update for the phone to carry to
//! offline locks; `GET /v1/me/revocations` gives the signed revocation deltas it delivers
//! to them after each unlock.
//!
//! Storage is behind [`store::DoorStore`] (SQLite: [`sqlite`]); keys, time updates and
//! revocations behind [`crate::authority::store::AuthorityStore`].

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use ed25519_dalek::SigningKey;
use porta_protocol::{Credential, CredentialBody, TimeWindow, WeeklySchedule};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::store::{ActiveGrant, Issuance, Issued, NewCredential, StoredCredential};
use crate::auth::AuthUser;
use crate::authority::{self, b64};
use crate::client_ip::ClientIp;
use crate::demo::FOREVER;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
use crate::site_time::SiteTime;
use crate::AppState;

/// Longest validity of an issued credential; phones renew on every sync.
pub const CREDENTIAL_TTL_S: i64 = 24 * 3600;
/// Credentials start this much before issuance, for clock skew between server and lock.
pub const CREDENTIAL_BACKDATE_S: i64 = 60;

/// One weekly window in the site's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleWindow {
    /// Days bitmask: bit 0 = Monday … bit 6 = Sunday.
    #[schema(example = 31, minimum = 1, maximum = 127)]
    pub days: u8,
    /// First allowed minute of the day (inclusive).
    #[schema(example = 420, maximum = 1439)]
    pub start_minute: u16,
    /// End minute (exclusive), at most 1440.
    #[schema(example = 1320, minimum = 1, maximum = 1440)]
    pub end_minute: u16,
}

/// A weekly schedule: access is allowed if any window matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Local time = UTC + this many minutes (-1080..=1080).
    #[schema(example = 60, minimum = -1080, maximum = 1080)]
    pub utc_offset_minutes: i16,
    /// 1 to 16 windows.
    #[schema(min_items = 1, max_items = 16)]
    #[serde(deserialize_with = "crate::error::nested_objects")]
    pub windows: Vec<ScheduleWindow>,
}

impl Schedule {
    pub fn to_protocol(&self) -> WeeklySchedule {
        WeeklySchedule {
            utc_offset_minutes: self.utc_offset_minutes,
            windows: self
                .windows
                .iter()
                .map(|w| TimeWindow { days: w.days, start_minute: w.start_minute, end_minute: w.end_minute })
                .collect(),
        }
    }

    /// Same rules as the protocol's credential encoding.
    pub fn validate(&self) -> Result<(), ApiError> {
        let ok = (1..=porta_protocol::MAX_SCHEDULE_WINDOWS).contains(&self.windows.len())
            && (-1080..=1080).contains(&self.utc_offset_minutes)
            && self
                .windows
                .iter()
                .all(|w| w.days != 0 && w.days & 0x80 == 0 && w.start_minute < w.end_minute && w.end_minute <= 1440);
        if ok {
            Ok(())
        } else {
            Err(ApiError::InvalidSchedule)
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DoorInfo {
    /// The door id used in credentials and by locks.
    pub door_id: u32,
    #[schema(example = "Main entrance")]
    pub name: String,
    /// The lock controlling the door, if one is installed.
    pub lock_id: Option<u32>,
    /// That lock's Ed25519 public key, base64. Phones refuse any other lock for this door, so
    /// a replaced or decommissioned lock (its certificate revoked) stops working for them at
    /// their next sync.
    pub lock_public_key: Option<String>,
    /// Access events at this door are kept this many days.
    pub log_retention_days: i64,
    /// When the caller may open it: one entry per grant. A resident's usually has no end
    /// (`not_after` 4102444800, 2100-01-01); a guest's is the invitation's window and schedule.
    pub access: Vec<AccessWindow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessWindow {
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds, inclusive.
    pub not_after: i64,
    /// In the site's local time; none = any time in the window.
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    /// The site-signed credential (protocol encoding), base64.
    pub credential: String,
    pub doors: Vec<u32>,
    /// Unix seconds, inclusive.
    pub not_before: i64,
    /// Unix seconds, inclusive.
    pub not_after: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyDoors {
    /// The site authority's Ed25519 public key, base64.
    pub authority_public_key: String,
    #[schema(example = "Demo Building")]
    pub site_name: String,
    /// Doors the caller holds a grant for that has not ended.
    pub doors: Vec<DoorInfo>,
    /// Credentials for the caller's device key (valid at most 24 h, renew on sync; one from an
    /// invitation spans its whole window). A sync
    /// returns the same credential again while it stays valid for at least half as long as a
    /// new one would.
    pub credentials: Vec<IssuedCredential>,
    /// Site-signed time update for every lock (protocol encoding), base64.
    pub time_update: String,
    /// The site's current revocation version; fetch `GET /v1/me/revocations?since=` the
    /// oldest version a lock of yours reported when this is newer.
    pub revocation_version: u64,
    /// Unix seconds.
    pub server_time: i64,
}

/// A credential carries one UTC offset. A whole-window grant on a schedule (a guest's) that
/// spans a daylight-saving change becomes one grant per stretch of constant offset, each
/// with the offset in force then, so "Tuesdays 09-12" stays 09-12 local time all along.
fn split_at_offset_changes(grants: Vec<ActiveGrant>, time: &SiteTime) -> Result<Vec<ActiveGrant>, ApiError> {
    let mut out = Vec::with_capacity(grants.len());
    for g in grants {
        let Some(json) = g.schedule_json.as_deref().filter(|_| g.whole_window) else {
            out.push(g);
            continue;
        };
        let schedule: Schedule =
            serde_json::from_str(json).map_err(|e| ApiError::Internal(format!("stored schedule: {e}")))?;
        for (not_before, not_after, utc_offset_minutes) in time.segments(g.not_before, g.not_after) {
            let piece = Schedule { utc_offset_minutes, ..schedule.clone() };
            out.push(ActiveGrant {
                door_number: g.door_number,
                not_before,
                not_after,
                schedule_json: Some(serde_json::to_string(&piece).map_err(|e| ApiError::Internal(e.to_string()))?),
                whole_window: true,
            });
        }
    }
    Ok(out)
}

fn stored_schedule(json: &str) -> Result<Schedule, ApiError> {
    serde_json::from_str(json).map_err(|e| ApiError::Internal(format!("stored schedule: {e}")))
}

/// Grants with the same effective window and schedule, which share credentials.
struct GrantGroup {
    doors: Vec<u32>,
    /// Latest start and earliest end of the group's grants: a reused credential must lie
    /// within every one of them.
    grants_start: i64,
    grants_end: i64,
}

/// What one credential must say to be handed out now.
struct Wanted<'a> {
    doors: &'a [u32],
    schedule: Option<&'a WeeklySchedule>,
    /// The window a credential issued now would get.
    not_before: i64,
    not_after: i64,
    grants_start: i64,
    grants_end: i64,
}

/// The credentials a sync hands out, and the newly signed ones among them, which must be
/// recorded before they are handed out.
struct Credentials {
    handed_out: Vec<IssuedCredential>,
    new: Vec<NewCredential>,
}

/// Chooses and signs the credentials of one caller's device key at one site.
struct Issuer<'a> {
    key: &'a SigningKey,
    device_key: [u8; 32],
    now: i64,
}

impl Issuer<'_> {
    /// Per group of grants: a still-good credential issued before for exactly the same key,
    /// doors and schedule, else a new one.
    ///
    /// Reuse keeps the revocation list short: every unexpired credential of a device goes on
    /// it when the device signs out, so minting one per sync would put hundreds there after a
    /// day of quick syncs. New credentials are further capped per device and hour (`429`).
    fn credentials(&self, grants: &[ActiveGrant], stored: &[StoredCredential]) -> Result<Credentials, ApiError> {
        let now = self.now;
        let mut groups: BTreeMap<(i64, i64, Option<String>), GrantGroup> = BTreeMap::new();
        for g in grants {
            let (not_before, not_after) = if g.whole_window {
                (g.not_before.max(0), g.not_after)
            } else {
                (g.not_before.max(now - CREDENTIAL_BACKDATE_S).max(0), g.not_after.min(now + CREDENTIAL_TTL_S))
            };
            if not_before > not_after {
                continue; // starts more than a day from now
            }
            let group = groups.entry((not_before, not_after, g.schedule_json.clone())).or_insert(GrantGroup {
                doors: Vec::new(),
                grants_start: g.not_before,
                grants_end: g.not_after,
            });
            group.grants_start = group.grants_start.max(g.not_before);
            group.grants_end = group.grants_end.min(g.not_after);
            if !group.doors.contains(&g.door_number) {
                group.doors.push(g.door_number);
            }
        }
        let mut out = Credentials { handed_out: Vec::new(), new: Vec::new() };
        for ((not_before, not_after, schedule_json), group) in groups {
            let schedule = schedule_json.as_deref().map(stored_schedule).transpose()?.map(|s| s.to_protocol());
            for chunk in group.doors.chunks(porta_protocol::MAX_DOORS) {
                let wanted = Wanted {
                    doors: chunk,
                    schedule: schedule.as_ref(),
                    not_before,
                    not_after,
                    grants_start: group.grants_start,
                    grants_end: group.grants_end,
                };
                let credential = match self.reusable(stored, &wanted) {
                    Some(credential) => credential,
                    None => {
                        let credential = self.issue(&wanted)?;
                        out.new.push(NewCredential {
                            id: credential.body.credential_id,
                            doors: chunk.to_vec(),
                            not_before,
                            not_after,
                            signed: credential.to_bytes(),
                        });
                        credential
                    }
                };
                out.handed_out.push(IssuedCredential {
                    credential: b64(credential.to_bytes()),
                    doors: chunk.to_vec(),
                    not_before: credential.body.not_before as i64,
                    not_after: credential.body.not_after as i64,
                });
            }
        }
        Ok(out)
    }

    /// A credential issued before to this session (`stored`, the latest ending first) that
    /// says exactly what `wanted` asks for, lies within its grants, and stays valid for at
    /// least half as long as a new one would.
    fn reusable(&self, stored: &[StoredCredential], wanted: &Wanted<'_>) -> Option<Credential> {
        stored
            .iter()
            .filter(|c| {
                (wanted.grants_start..=wanted.not_before).contains(&c.not_before)
                    && c.not_after <= wanted.grants_end
                    && 2 * c.not_after >= wanted.not_after + self.now
            })
            .filter_map(|c| Credential::from_bytes(&c.signed).ok())
            .find(|credential| {
                let body = &credential.body;
                body.device_key == self.device_key
                    && body.doors == wanted.doors
                    && body.schedule.as_ref() == wanted.schedule
            })
    }

    /// Signs a new credential for `wanted`.
    fn issue(&self, wanted: &Wanted<'_>) -> Result<Credential, ApiError> {
        let mut credential_id = [0u8; 16];
        OsRng.fill_bytes(&mut credential_id);
        Credential::issue(
            self.key,
            CredentialBody {
                credential_id,
                device_key: self.device_key,
                doors: wanted.doors.to_vec(),
                not_before: wanted.not_before as u64,
                not_after: wanted.not_after as u64,
                schedule: wanted.schedule.cloned(),
            },
        )
        .map_err(|e| ApiError::Internal(format!("credential: {e:?}")))
    }
}

/// New credentials are minted for a session in at most `credential_issues_per_hour`
/// different requests within this window. With reuse, a phone needs a new one only about
/// twice a day per group of grants, or when its grants change.
const ISSUANCE_WINDOW_S: i64 = 3600;
/// How often a sync reads the grants again when they changed while it signed.
const SYNC_ATTEMPTS: usize = 3;

/// The caller's doors, credentials for their device key (reused while still good for long
/// enough), a time update and the revocation list.
#[utoipa::path(
    get,
    path = "/v1/me/doors",
    tag = "doors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Doors, credentials and updates for locks", body = MyDoors),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: the server has no site", body = ErrorBody),
        (status = 409, description = "`device_not_enrolled`: enroll a device key first", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many new credentials for this device; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn my_doors(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<MyDoors>, ApiError> {
    let now = state.clock.now();
    let device_key = state.doors.device_key(&auth.session_id).await?.ok_or(ApiError::DeviceNotEnrolled)?;
    let site = state.doors.site_of(&auth.user_id).await?.ok_or(ApiError::NotFound)?;
    let key = state.authority.site_key(&site.id).await?.ok_or(ApiError::NotFound)?;
    let issuer = Issuer { key: &key, device_key, now };

    // New credentials are recorded only if the grants they were made from still stand;
    // when they changed meanwhile, the sync starts over from the new grants.
    let mut attempt = 0;
    let (snapshot, credentials) = loop {
        attempt += 1;
        let snapshot = state.doors.doors_snapshot(&auth.user_id, &auth.session_id, &site.id, now).await?;
        let grants = split_at_offset_changes(snapshot.grants.clone(), &snapshot.site_time)?;
        let Credentials { handed_out, new } = issuer.credentials(&grants, &snapshot.credentials)?;
        if new.is_empty() {
            break (snapshot, handed_out);
        }
        let issuance = Issuance {
            site_id: site.id.clone(),
            user_id: auth.user_id.clone(),
            session_id: auth.session_id.clone(),
            device_key,
            grants: snapshot.grants.clone(),
            credentials: new,
            limit: state.limits.credential_issues_per_hour,
            window_s: ISSUANCE_WINDOW_S,
            now,
        };
        match state.doors.record_issuance(issuance).await? {
            Issued::Recorded => break (snapshot, handed_out),
            Issued::DeviceGone => return Err(ApiError::DeviceNotEnrolled),
            Issued::RateLimited { oldest_at } => {
                tracing::info!("credential issuance rate limited");
                return Err(ApiError::RateLimited { retry_after_s: (oldest_at + ISSUANCE_WINDOW_S - now).max(1) });
            }
            Issued::GrantsChanged if attempt < SYNC_ATTEMPTS => continue,
            Issued::GrantsChanged => return Err(ApiError::Internal("grants kept changing during a sync".into())),
        }
    };

    let mut doors = Vec::with_capacity(snapshot.doors.len());
    for door in snapshot.doors {
        let mut access = Vec::new();
        for g in snapshot.grants.iter().filter(|g| g.door_number == door.number) {
            let schedule = g.schedule_json.as_deref().map(stored_schedule).transpose()?;
            access.push(AccessWindow { not_before: g.not_before, not_after: g.not_after, schedule });
        }
        let (lock_id, lock_public_key) = match door.lock {
            Some((id, key)) => (Some(id), Some(b64(key))),
            None => (None, None),
        };
        doors.push(DoorInfo {
            door_id: door.number,
            name: door.name,
            lock_id,
            lock_public_key,
            log_retention_days: door.log_retention_days,
            access,
        });
    }

    let time_update = authority::time_update(&key, now, state.authority.next_time_sequence(&site.id).await?);
    let revocation_version = state.authority.revocation_version(&site.id).await?;
    Ok(ApiJson(MyDoors {
        authority_public_key: b64(key.verifying_key().to_bytes()),
        site_name: site.name,
        doors,
        credentials,
        time_update: b64(time_update.to_bytes()),
        revocation_version,
        server_time: now,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevocationsQuery {
    /// The revocation version a lock reported (0 for a lock never seen). Versions are
    /// stored as signed 64-bit integers, so larger values are refused.
    #[param(minimum = 0)]
    pub since: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revocations {
    /// The site's current revocation version.
    pub version: u64,
    /// Site-signed revocation deltas (protocol encoding), base64, in order: the first starts
    /// at or before `since`, each starts where the previous ended, the last ends at `version`.
    /// Empty if `since` is current. A phone delivers them to a lock after its decision.
    pub deltas: Vec<String>,
}

/// Revocation deltas from `since` to the site's current version, for the phone to carry.
#[utoipa::path(
    get,
    path = "/v1/me/revocations",
    tag = "doors",
    security(("bearer" = [])),
    params(RevocationsQuery),
    responses(
        (status = 200, description = "Deltas from `since` to the current version", body = Revocations),
        (status = 400, description = "`invalid_request`: `since` missing or not a number", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: the server has no site", body = ErrorBody),
    )
)]
pub async fn my_revocations(
    State(state): State<AppState>,
    auth: AuthUser,
    query: Result<Query<RevocationsQuery>, QueryRejection>,
) -> Result<ApiJson<Revocations>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::InvalidRequest)?;
    let since = u64::try_from(query.since).map_err(|_| ApiError::InvalidRequest)?;
    let now = state.clock.now();
    let site = state.doors.site_of(&auth.user_id).await?.ok_or(ApiError::NotFound)?;
    let key = state.authority.site_key(&site.id).await?.ok_or(ApiError::NotFound)?;
    let list = state.authority.revocations_since(&site.id, since, now).await?;
    let version = list.version;
    let deltas = authority::revocation_deltas(&key, since, list)?;
    Ok(ApiJson(Revocations { version, deltas: deltas.iter().map(|d| b64(d.to_bytes())).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevGrantRequest {
    /// Email or phone number; the account is created if needed.
    #[schema(
        example = "guest@example.com",
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
    /// Door ids to grant (1 or more).
    #[schema(min_items = 1)]
    pub doors: Vec<u32>,
    /// Unix seconds; default now.
    #[schema(minimum = 0)]
    pub not_before: Option<i64>,
    /// Unix seconds; default 2100-01-01 (no end).
    #[schema(minimum = 0)]
    pub not_after: Option<i64>,
    #[serde(default, deserialize_with = "crate::error::nested_objects")]
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevGrantResponse {
    pub user_id: String,
    /// One grant id per door.
    pub grant_ids: Vec<String>,
}

/// Grant doors to a user (development only; loopback peers only).
#[utoipa::path(
    post,
    path = "/v1/dev/grants",
    tag = "dev",
    request_body = DevGrantRequest,
    responses(
        (status = 201, description = "Granted", body = DevGrantResponse),
        (status = 400, description = "`invalid_identifier`, `unknown_door`, `invalid_schedule` or `invalid_request`", body = ErrorBody),
        (status = 403, description = "Peer is not loopback", body = ErrorBody),
    )
)]
pub async fn dev_grant(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<DevGrantRequest>,
) -> Result<(StatusCode, ApiJson<DevGrantResponse>), ApiError> {
    if !client.is_loopback() {
        return Err(ApiError::Forbidden);
    }
    let identifier = Identifier::parse(&body.identifier).ok_or(ApiError::InvalidIdentifier)?;
    let now = state.clock.now();
    let not_before = body.not_before.unwrap_or(now);
    let not_after = body.not_after.unwrap_or(FOREVER);
    if body.doors.is_empty() || not_before < 0 || not_before > not_after {
        return Err(ApiError::InvalidRequest);
    }
    let schedule_json = match &body.schedule {
        None => None,
        Some(s) => {
            s.validate()?;
            Some(serde_json::to_string(s).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
    };
    let grants: Vec<(String, u32)> = body.doors.iter().map(|&door| (uuid::Uuid::new_v4().to_string(), door)).collect();
    let user_id = state
        .doors
        .add_dev_grants(&identifier, &grants, not_before, not_after, schedule_json, now)
        .await?
        .ok_or(ApiError::UnknownDoor)?;
    let grant_ids = grants.into_iter().map(|(id, _)| id).collect();
    Ok((StatusCode::CREATED, ApiJson(DevGrantResponse { user_id, grant_ids })))
}
