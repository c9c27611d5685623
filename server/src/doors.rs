//! Door grants and the caller's doors: `GET /v1/me/doors` issues short-lived, site-signed
//! credentials for the caller's enrolled device key, one per group of active grants with the
//! same validity and schedule, together with a fresh time update for the phone to carry to
//! offline locks; `GET /v1/me/revocations` gives the signed revocation deltas it delivers
//! to them after each unlock.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use porta_protocol::{Credential, CredentialBody, TimeWindow, WeeklySchedule};
use rand::rngs::OsRng;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{find_or_create_user, AuthUser};
use crate::authority::{self, b64};
use crate::demo::FOREVER;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
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
    #[schema(example = 31)]
    pub days: u8,
    /// First allowed minute of the day (inclusive).
    #[schema(example = 420)]
    pub start_minute: u16,
    /// End minute (exclusive), at most 1440.
    #[schema(example = 1320)]
    pub end_minute: u16,
}

/// A weekly schedule: access is allowed if any window matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Local time = UTC + this many minutes (-1080..=1080).
    #[schema(example = 60)]
    pub utc_offset_minutes: i16,
    /// 1 to 16 windows.
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
    /// Access events at this door are kept this many days.
    pub log_retention_days: i64,
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
    /// Credentials for the caller's device key (valid at most 24 h; renew on sync).
    pub credentials: Vec<IssuedCredential>,
    /// Site-signed time update for every lock (protocol encoding), base64.
    pub time_update: String,
    /// The site's current revocation version; fetch `GET /v1/me/revocations?since=` the
    /// oldest version a lock of yours reported when this is newer.
    pub revocation_version: u64,
    /// Unix seconds.
    pub server_time: i64,
}

struct Grant {
    door_number: u32,
    not_before: i64,
    not_after: i64,
    schedule_json: Option<String>,
}

/// The site whose doors the caller sees: that of their grants, else their unit's, else
/// the first site. (The reference backend serves one site per user.)
fn site_for_user(conn: &Connection, user_id: &str) -> Result<(String, String), ApiError> {
    let queries = [
        "SELECT s.id, s.name FROM door_grants g JOIN doors d ON d.number = g.door_number
         JOIN sites s ON s.id = d.site_id WHERE g.user_id = ?1 ORDER BY g.created_at, g.id LIMIT 1",
        "SELECT s.id, s.name FROM users u JOIN units n ON n.id = u.unit_id
         JOIN sites s ON s.id = n.site_id WHERE u.id = ?1",
        "SELECT id, name FROM sites WHERE ?1 IS NOT NULL ORDER BY id LIMIT 1",
    ];
    for sql in queries {
        if let Some(site) = conn.query_row(sql, [user_id], |r| Ok((r.get(0)?, r.get(1)?))).optional()? {
            return Ok(site);
        }
    }
    Err(ApiError::NotFound)
}

/// The caller's doors, fresh credentials for their device key, a time update and the
/// revocation list.
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
    )
)]
pub async fn my_doors(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<MyDoors>, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let device_key: [u8; 32] = tx
                .query_row(
                    "SELECT public_key FROM device_keys WHERE session_id = ?1 AND revoked_at IS NULL",
                    [&auth.session_id],
                    |r| r.get::<_, Vec<u8>>(0),
                )
                .optional()?
                .and_then(|k| k.try_into().ok())
                .ok_or(ApiError::DeviceNotEnrolled)?;
            let (site_id, site_name) = site_for_user(&tx, &auth.user_id)?;
            let key = authority::site_key(&tx, &site_id)?;

            let grants: Vec<Grant> = {
                let mut stmt = tx.prepare(
                    "SELECT g.door_number, g.not_before, g.not_after, g.schedule_json
                     FROM door_grants g JOIN doors d ON d.number = g.door_number
                     WHERE g.user_id = ?1 AND d.site_id = ?2 AND g.not_after >= ?3
                     ORDER BY g.door_number",
                )?;
                let rows = stmt.query_map(params![auth.user_id, site_id, now], |r| {
                    Ok(Grant {
                        door_number: r.get(0)?,
                        not_before: r.get(1)?,
                        not_after: r.get(2)?,
                        schedule_json: r.get(3)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };

            let mut doors: Vec<DoorInfo> = Vec::new();
            {
                let mut stmt = tx.prepare(
                    "SELECT d.number, d.name, l.lock_id, d.log_retention_days FROM doors d
                     LEFT JOIN lock_doors l ON l.door_number = d.number WHERE d.number = ?1",
                )?;
                let mut numbers: Vec<u32> = grants.iter().map(|g| g.door_number).collect();
                numbers.dedup();
                for n in numbers {
                    doors.push(stmt.query_row([n], |r| {
                        Ok(DoorInfo {
                            door_id: r.get(0)?,
                            name: r.get(1)?,
                            lock_id: r.get(2)?,
                            log_retention_days: r.get(3)?,
                        })
                    })?);
                }
            }

            // Grants with the same effective window and schedule share a credential.
            let mut groups: BTreeMap<(i64, i64, Option<String>), Vec<u32>> = BTreeMap::new();
            for g in &grants {
                let not_before = g.not_before.max(now - CREDENTIAL_BACKDATE_S).max(0);
                let not_after = g.not_after.min(now + CREDENTIAL_TTL_S);
                if not_before > not_after {
                    continue; // starts more than a day from now
                }
                let doors = groups.entry((not_before, not_after, g.schedule_json.clone())).or_default();
                if !doors.contains(&g.door_number) {
                    doors.push(g.door_number);
                }
            }
            let mut credentials = Vec::new();
            for ((not_before, not_after, schedule_json), door_numbers) in groups {
                let schedule = match &schedule_json {
                    None => None,
                    Some(json) => Some(
                        serde_json::from_str::<Schedule>(json)
                            .map_err(|e| ApiError::Internal(format!("stored schedule: {e}")))?
                            .to_protocol(),
                    ),
                };
                for chunk in door_numbers.chunks(porta_protocol::MAX_DOORS) {
                    let mut credential_id = [0u8; 16];
                    OsRng.fill_bytes(&mut credential_id);
                    let credential = Credential::issue(
                        &key,
                        CredentialBody {
                            credential_id,
                            device_key,
                            doors: chunk.to_vec(),
                            not_before: not_before as u64,
                            not_after: not_after as u64,
                            schedule: schedule.clone(),
                        },
                    )
                    .map_err(|e| ApiError::Internal(format!("credential: {e:?}")))?;
                    tx.execute(
                        "INSERT INTO credentials (id, site_id, user_id, session_id, device_key,
                                                  not_before, not_after, issued_at, doors)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            credential_id.to_vec(),
                            site_id,
                            auth.user_id,
                            auth.session_id,
                            device_key.to_vec(),
                            not_before,
                            not_after,
                            now,
                            serde_json::to_string(chunk).map_err(|e| ApiError::Internal(e.to_string()))?
                        ],
                    )?;
                    credentials.push(IssuedCredential {
                        credential: b64(credential.to_bytes()),
                        doors: chunk.to_vec(),
                        not_before,
                        not_after,
                    });
                }
            }

            let time_update = authority::next_time_update(&tx, &site_id, &key, now)?;
            let revocation_version = authority::revocation_version(&tx, &site_id)?;
            tx.commit()?;
            Ok(MyDoors {
                authority_public_key: b64(key.verifying_key().to_bytes()),
                site_name,
                doors,
                credentials,
                time_update: b64(time_update.to_bytes()),
                revocation_version,
                server_time: now,
            })
        })
        .await
        .map(ApiJson)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevocationsQuery {
    /// The revocation version a lock reported (0 for a lock never seen).
    #[param(minimum = 0)]
    pub since: u64,
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
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let (site_id, _) = site_for_user(conn, &auth.user_id)?;
            let key = authority::site_key(conn, &site_id)?;
            authority::prune_revocations(conn, now)?;
            let deltas = authority::revocation_deltas(conn, &site_id, &key, query.since)?;
            Ok(Revocations {
                version: authority::revocation_version(conn, &site_id)?,
                deltas: deltas.iter().map(|d| b64(d.to_bytes())).collect(),
            })
        })
        .await
        .map(ApiJson)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevGrantRequest {
    /// Email or phone number; the account is created if needed.
    #[schema(example = "guest@example.com")]
    pub identifier: String,
    /// Door ids to grant (1 or more).
    pub doors: Vec<u32>,
    /// Unix seconds; default now.
    pub not_before: Option<i64>,
    /// Unix seconds; default 2100-01-01 (no end).
    pub not_after: Option<i64>,
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<DevGrantRequest>,
) -> Result<(StatusCode, ApiJson<DevGrantResponse>), ApiError> {
    if !peer.ip().is_loopback() {
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
    let doors = body.doors;
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            for door in &doors {
                let exists =
                    tx.query_row("SELECT 1 FROM doors WHERE number = ?1", [door], |_| Ok(())).optional()?.is_some();
                if !exists {
                    return Err(ApiError::UnknownDoor);
                }
            }
            let user_id = find_or_create_user(&tx, &identifier, now)?;
            let mut grant_ids = Vec::new();
            for door in &doors {
                let id = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after,
                                              schedule_json, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![id, user_id, door, not_before, not_after, schedule_json, now],
                )?;
                grant_ids.push(id);
            }
            tx.commit()?;
            Ok(DevGrantResponse { user_id, grant_ids })
        })
        .await
        .map(|r| (StatusCode::CREATED, ApiJson(r)))
}
