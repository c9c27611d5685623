//! The privacy policy's promises as API: every category of personal data stored about the
//! caller (`/v1/me/data`), a portable export, consents (marketing, off until given), and
//! account deletion confirmed with a fresh one-time code, with an idempotent receipt.
//!
//! Deletion removes every row holding the person's data in one transaction. Access events
//! the building must keep are anonymised (only lock/door, time and decision remain), and
//! the person's device keys and unexpired credential ids go on the site's revocation list,
//! which drops them once those credentials have expired (at most 24 h).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use porta_protocol::Decision;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::access::reason_name;
use crate::auth::sqlite::{find_user, forget_identifier, issue_code, verify_code};
use crate::auth::{code_key, code_sent, identifier_key, sha256_hex, AuthUser, CodePurpose, CodeResponse};
use crate::authority::b64;
use crate::devices::sqlite::revoke_device;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
use crate::{AppState, Limits};

/// Backups holding a deleted account are gone this long after the deletion.
pub const BACKUP_RETENTION_S: i64 = 90 * 86_400;
/// The only consent purpose. Off until the resident gives it.
pub const MARKETING: &str = "marketing";
const PURPOSES: &[&str] = &[MARKETING];
/// Name and version of the export document (see `server/schema/porta-export-v1.schema.json`).
pub const EXPORT_FORMAT: &str = "porta-export";
pub const EXPORT_VERSION: u32 = 1;

/// Every category, in the order `/v1/me/data` lists them.
pub const CATEGORIES: &[&str] = &[
    "profile",
    "contact",
    "unit",
    "picture",
    "devices_and_sessions",
    "device_keys",
    "door_grants",
    "credentials",
    "invitations_sent",
    "guest_access",
    "access_log",
    "consents",
    "security_records",
];

/// One category of personal data, with why and how long it is kept and who can see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DataCategory {
    #[schema(example = "contact")]
    pub category: String,
    /// What this category is.
    pub description: String,
    /// Why it is stored.
    pub purpose: String,
    /// The legal basis, e.g. `contract`, `legitimate interest (building security)`, `consent`.
    #[schema(example = "contract")]
    pub legal_basis: String,
    /// How long it is kept, in words.
    #[schema(example = "until the account is deleted")]
    pub retention: String,
    /// Who can see it, e.g. `you`, `building administrators`.
    pub visible_to: Vec<String>,
    /// The data itself: an object, a list, or `null` (shape depends on the category).
    #[schema(value_type = Value)]
    pub items: Value,
}

/// Everything stored about the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyData {
    pub user_id: String,
    pub categories: Vec<DataCategory>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportPicture {
    #[schema(example = "image/png")]
    pub content_type: String,
    /// The picture bytes, standard base64.
    pub base64: String,
}

/// The portable export (`porta-export` version 1).
#[derive(Debug, Serialize, ToSchema)]
pub struct PortaExport {
    /// Always `porta-export`.
    #[schema(example = "porta-export")]
    pub format: String,
    /// Always 1 for this shape.
    #[schema(example = 1)]
    pub version: u32,
    /// Unix seconds.
    pub exported_at: i64,
    pub user_id: String,
    /// The same categories as `GET /v1/me/data`, keyed by category name.
    pub categories: BTreeMap<String, DataCategory>,
    /// The picture itself, if one is set.
    pub picture: Option<ExportPicture>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    #[schema(example = "marketing")]
    pub purpose: String,
    pub granted: bool,
    /// Unix seconds of the last change; `null` if never set (then not granted).
    pub updated_at: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentUpdate {
    pub granted: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// The 6-digit code from `POST /v1/me/deletion-code` (a sign-in code does not work).
    #[schema(example = "042917", pattern = r"^[0-9]{6}$")]
    pub code: String,
    /// A UUID the client generates once per deletion attempt; retries reuse it.
    #[schema(example = "1b4e28ba-2fa1-11d2-883f-0016d3cca427", format = Uuid)]
    pub request_id: String,
}

/// Proof of deletion. Holds no personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeletionReceipt {
    /// Unix seconds.
    pub deleted_at: i64,
    /// Unix seconds: `deleted_at` + 90 days, when the last backup holding the account is gone.
    pub backups_purged_by: i64,
}

fn meta(category: &str, retention_detail: &str) -> (String, String, String, String, Vec<&'static str>) {
    let until_deleted = "until the account is deleted";
    let (description, purpose, basis, retention, visible): (&str, &str, &str, String, Vec<&str>) =
        match category {
            "profile" => (
                "Your name and when the account was created and last changed",
                "Identify you in the app and to your building",
                "contract",
                until_deleted.into(),
                vec!["you", "building administrators"],
            ),
            "contact" => (
                "Your email address and phone number",
                "Sign-in codes and messages about your account",
                "contract",
                until_deleted.into(),
                vec!["you", "building administrators"],
            ),
            "unit" => (
                "The apartment or office the building assigned to you",
                "Decide which doors you get access to",
                "contract",
                "until the building changes it or the account is deleted".into(),
                vec!["you", "building administrators"],
            ),
            "picture" => (
                "Whether you set a profile picture, its type and size (the export has the picture itself)",
                "Show your picture in the app",
                "consent",
                "until you remove it or the account is deleted".into(),
                vec!["you"],
            ),
            "devices_and_sessions" => (
                "Each device you signed in on: its name, when you signed in, when it was last seen and the IP address at sign-in",
                "Keep you signed in, and let you see and sign out your devices",
                "contract; legitimate interest (account security) for the IP address",
                "until the account is deleted (signed-out devices included)".into(),
                vec!["you"],
            ),
            "device_keys" => (
                "The public key each phone created to open doors",
                "Bind door credentials to your phone so a copied credential is useless",
                "contract",
                "until the account is deleted; after that a revoked key stays on the building's revocation list until the last credential issued for it has expired (at most 24 hours)".into(),
                vec!["you", "door locks you use"],
            ),
            "door_grants" => (
                "The doors you may open, from when until when, and on which schedule",
                "Issue your door credentials",
                "contract",
                "until the building ends the grant or the account is deleted".into(),
                vec!["you", "building administrators"],
            ),
            "credentials" => (
                "Door credentials issued to your phones: id, doors, validity and whether revoked",
                "Open doors offline, revoke lost phones and attribute access events to you",
                "contract",
                "valid at most 24 hours; the record of issue is kept as long as the longest door log retention, or until the account is deleted; revoked ids stay on the building's revocation list until they expire".into(),
                vec!["you", "door locks you use"],
            ),
            "invitations_sent" => (
                "Invitations you sent and the guests who accepted them: doors, window, schedule, uses, your label",
                "Let guests in on your behalf",
                "contract",
                "an invitation is deleted with its last use or when its window ends; a guest's access when its window ends or you revoke it; all of it with your account".into(),
                vec!["you"],
            ),
            "guest_access" => (
                "The access an invitation gave you: doors, window and schedule. A guest has no name, email or phone here",
                "Open the doors you were invited to",
                "contract",
                "deleted, with your device key and credentials, when the window ends; your door log rows are then kept anonymised for the door's log retention".into(),
                vec!["you", "the person who invited you (that you accepted, not your data)"],
            ),
            "access_log" => (
                "Your door openings and refused attempts as the locks recorded them",
                "Building security, and showing you your own entries",
                "legitimate interest (building security)",
                format!(
                    "N days, set by the building per door ({retention_detail}); when the account is deleted the building keeps them anonymised (door, time and decision only) for the same period"
                ),
                vec!["you", "building administrators"],
            ),
            "consents" => (
                "Your choices about optional uses of your data, with their history",
                "Respect your choices; marketing is off until you turn it on",
                "consent (recording it: legal obligation)",
                until_deleted.into(),
                vec!["you"],
            ),
            "security_records" => (
                "Pending one-time codes (stored hashed) and code requests counted for rate limits, keyed by a hash of your email or phone",
                "Sign you in and confirm deletion, and stop abuse",
                "legitimate interest (security)",
                "10 minutes".into(),
                vec!["nobody (stored hashed)"],
            ),
            _ => ("", "", "", String::new(), vec![]),
        };
    (description.into(), purpose.into(), basis.into(), retention, visible)
}

fn category(name: &str, retention_detail: &str, items: Value) -> DataCategory {
    let (description, purpose, legal_basis, retention, visible) = meta(name, retention_detail);
    DataCategory {
        category: name.into(),
        description,
        purpose,
        legal_basis,
        retention,
        visible_to: visible.into_iter().map(str::to_owned).collect(),
        items,
    }
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let out = stmt.query_map(params, f)?.collect();
    out
}

fn current_consents(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<Consent>> {
    PURPOSES
        .iter()
        .map(|purpose| {
            let latest: Option<(bool, i64)> = conn
                .query_row(
                    "SELECT granted, at FROM consent_events WHERE user_id = ?1 AND purpose = ?2
                     ORDER BY at DESC, id DESC LIMIT 1",
                    params![user_id, purpose],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(Consent {
                purpose: (*purpose).into(),
                granted: latest.is_some_and(|(g, _)| g),
                updated_at: latest.map(|(_, at)| at),
            })
        })
        .collect()
}

/// name, email, phone, unit id, created at, updated at.
type UserRow = (String, Option<String>, Option<String>, Option<String>, i64, i64);

/// Every category of data stored about `user_id`, read in one go.
pub fn collect(conn: &Connection, user_id: &str, session_id: Option<&str>) -> Result<Vec<DataCategory>, ApiError> {
    let user: Option<UserRow> = conn
        .query_row(
            "SELECT name, email, phone, unit_id, created_at, updated_at FROM users WHERE id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let (name, email, phone, unit_id, created_at, updated_at) = user.ok_or(ApiError::Unauthorized)?;
    let mut out = Vec::new();

    out.push(category("profile", "", json!({ "name": name, "created_at": created_at, "updated_at": updated_at })));
    let pending = conn
        .query_row("SELECT field, value, expires_at FROM contact_changes WHERE user_id = ?1", [user_id], |r| {
            Ok(json!({
                "field": r.get::<_, String>(0)?,
                "value": r.get::<_, String>(1)?,
                "expires_at": r.get::<_, i64>(2)?,
            }))
        })
        .optional()?;
    out.push(category("contact", "", json!({ "email": email, "phone": phone, "pending_change": pending })));

    let unit = match &unit_id {
        None => Value::Null,
        Some(id) => conn
            .query_row(
                "SELECT n.id, n.name, n.kind, s.name, s.address FROM units n
                 JOIN sites s ON s.id = n.site_id WHERE n.id = ?1",
                [id],
                |r| {
                    Ok(json!({
                        "id": r.get::<_, String>(0)?,
                        "name": r.get::<_, String>(1)?,
                        "kind": r.get::<_, String>(2)?,
                        "site_name": r.get::<_, String>(3)?,
                        "site_address": r.get::<_, String>(4)?,
                    }))
                },
            )
            .optional()?
            .unwrap_or(Value::Null),
    };
    out.push(category("unit", "", unit));

    let picture: Option<(String, i64, i64)> = conn
        .query_row("SELECT content_type, length(bytes), updated_at FROM pictures WHERE user_id = ?1", [user_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    out.push(category(
        "picture",
        "",
        match picture {
            Some((content_type, size, at)) => json!({
                "has_picture": true, "content_type": content_type, "size_bytes": size,
                "updated_at": at }),
            None => json!({ "has_picture": false, "content_type": null, "size_bytes": null,
                "updated_at": null }),
        },
    ));

    let sessions = rows(
        conn,
        "SELECT id, device_name, created_at, last_seen_at, ip, revoked_at FROM sessions
         WHERE user_id = ?1 ORDER BY created_at, id",
        [user_id],
        |r| {
            let id: String = r.get(0)?;
            let created: i64 = r.get(2)?;
            Ok(json!({
                "device_id": id,
                "device_name": r.get::<_, String>(1)?,
                "created_at": created,
                "last_sign_in_at": created,
                "last_seen_at": r.get::<_, i64>(3)?,
                "ip": r.get::<_, String>(4)?,
                "signed_out_at": r.get::<_, Option<i64>>(5)?,
                "current": session_id == Some(id.as_str()),
            }))
        },
    )?;
    out.push(category("devices_and_sessions", "", Value::Array(sessions)));

    let keys = rows(
        conn,
        "SELECT session_id, public_key, created_at, revoked_at FROM device_keys
         WHERE user_id = ?1 ORDER BY created_at, session_id",
        [user_id],
        |r| {
            let revoked_at: Option<i64> = r.get(3)?;
            Ok(json!({
                "device_id": r.get::<_, String>(0)?,
                "public_key": b64(r.get::<_, Vec<u8>>(1)?),
                "enrolled_at": r.get::<_, i64>(2)?,
                "revoked": revoked_at.is_some(),
                "revoked_at": revoked_at,
            }))
        },
    )?;
    out.push(category("device_keys", "", Value::Array(keys)));

    let grants = rows(
        conn,
        "SELECT g.id, g.door_number, d.name, g.not_before, g.not_after, g.schedule_json,
                g.created_at
         FROM door_grants g LEFT JOIN doors d ON d.number = g.door_number
         WHERE g.user_id = ?1 ORDER BY g.door_number, g.created_at, g.id",
        [user_id],
        |r| {
            let schedule: Option<String> = r.get(5)?;
            Ok(json!({
                "grant_id": r.get::<_, String>(0)?,
                "door_id": r.get::<_, u32>(1)?,
                "door_name": r.get::<_, Option<String>>(2)?,
                "not_before": r.get::<_, i64>(3)?,
                "not_after": r.get::<_, i64>(4)?,
                "schedule": schedule.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
                "created_at": r.get::<_, i64>(6)?,
            }))
        },
    )?;
    out.push(category("door_grants", "", Value::Array(grants)));

    let credentials = rows(
        conn,
        "SELECT c.id, c.session_id, c.doors, c.not_before, c.not_after, c.issued_at,
                EXISTS (SELECT 1 FROM revoked_credentials r WHERE r.credential_id = c.id)
                OR EXISTS (SELECT 1 FROM device_keys k WHERE k.public_key = c.device_key
                           AND k.revoked_at IS NOT NULL)
         FROM credentials c WHERE c.user_id = ?1 ORDER BY c.issued_at, c.id",
        [user_id],
        |r| {
            let doors: Option<String> = r.get(2)?;
            Ok(json!({
                "credential_id": b64(r.get::<_, Vec<u8>>(0)?),
                "device_id": r.get::<_, String>(1)?,
                "doors": doors.and_then(|d| serde_json::from_str::<Value>(&d).ok()),
                "not_before": r.get::<_, i64>(3)?,
                "not_after": r.get::<_, i64>(4)?,
                "issued_at": r.get::<_, i64>(5)?,
                "revoked": r.get::<_, bool>(6)?,
            }))
        },
    )?;
    out.push(category("credentials", "", Value::Array(credentials)));

    let (sent, guest_access) = crate::invitations::sqlite::data_of(conn, user_id)?;
    out.push(category("invitations_sent", "", sent));
    out.push(category("guest_access", "", guest_access.unwrap_or_else(|| json!([]))));

    let retention: Vec<String> = rows(
        conn,
        "SELECT name, log_retention_days FROM doors WHERE number IN (
             SELECT door_number FROM door_grants WHERE user_id = ?1
             UNION SELECT door_number FROM access_events WHERE user_id = ?1)
         ORDER BY number",
        [user_id],
        |r| Ok(format!("{}: {} days", r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let retention = if retention.is_empty() { "per door".to_owned() } else { retention.join("; ") };
    let events = rows(
        conn,
        "SELECT e.door_number, d.name, e.lock_id, e.at, e.decision, e.credential_id,
                e.received_at, e.record
         FROM access_events e LEFT JOIN doors d ON d.number = e.door_number
         WHERE e.user_id = ?1 ORDER BY e.at DESC, e.id DESC",
        [user_id],
        |r| {
            let (decision, reason) = match Decision::from_code(r.get::<_, u8>(4)?) {
                Ok(Decision::Opened) => ("opened", None),
                Ok(Decision::Denied(reason)) => ("denied", Some(reason_name(reason))),
                Err(_) => ("denied", None),
            };
            Ok(json!({
                "door_id": r.get::<_, Option<u32>>(0)?,
                "door_name": r.get::<_, Option<String>>(1)?,
                "lock_id": r.get::<_, u32>(2)?,
                "at": r.get::<_, i64>(3)?,
                "decision": decision,
                "reason": reason,
                "credential_id": b64(r.get::<_, Vec<u8>>(5)?),
                "received_at": r.get::<_, i64>(6)?,
                "audit_record": b64(r.get::<_, Vec<u8>>(7)?),
            }))
        },
    )?;
    out.push(category("access_log", &retention, Value::Array(events)));

    let history = rows(
        conn,
        "SELECT purpose, granted, at FROM consent_events WHERE user_id = ?1 ORDER BY at, id",
        [user_id],
        |r| {
            Ok(json!({
                "purpose": r.get::<_, String>(0)?,
                "granted": r.get::<_, bool>(1)?,
                "at": r.get::<_, i64>(2)?,
            }))
        },
    )?;
    out.push(category("consents", "", json!({ "current": current_consents(conn, user_id)?, "history": history })));

    let mut codes = Vec::new();
    let mut requests = Vec::new();
    for raw in [&email, &phone].into_iter().flatten() {
        let Some(identifier) = Identifier::parse(raw) else {
            continue;
        };
        for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
            codes.extend(rows(
                conn,
                "SELECT purpose, expires_at, attempts FROM one_time_codes WHERE identifier_hash = ?1",
                [code_key(&identifier, purpose)],
                |r| {
                    Ok(json!({
                        "purpose": r.get::<_, String>(0)?,
                        "expires_at": r.get::<_, i64>(1)?,
                        "attempts": r.get::<_, i64>(2)?,
                    }))
                },
            )?);
        }
        requests.extend(rows(
            conn,
            "SELECT at FROM rate_events WHERE key = ?1 ORDER BY at",
            [identifier_key(&identifier)],
            |r| Ok(json!({ "code_requested_at": r.get::<_, i64>(0)? })),
        )?);
    }
    out.push(category("security_records", "", json!({ "pending_codes": codes, "code_requests": requests })));
    debug_assert_eq!(out.iter().map(|c| c.category.as_str()).collect::<Vec<_>>(), CATEGORIES);
    Ok(out)
}

/// All personal data stored about the caller, by category, with purpose, legal basis,
/// retention and who can see it.
#[utoipa::path(
    get,
    path = "/v1/me/data",
    tag = "privacy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every category stored about the caller", body = MyData),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn my_data(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<MyData>, ApiError> {
    state
        .db
        .call(move |conn| {
            let categories = collect(conn, &auth.user_id, Some(&auth.session_id))?;
            Ok(MyData { user_id: auth.user_id, categories })
        })
        .await
        .map(ApiJson)
}

/// Download everything as one versioned JSON document (`porta-export` v1, see
/// `server/schema/porta-export-v1.schema.json`), picture included.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "privacy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export, as an attachment `porta-export.json`", body = PortaExport,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"porta-export.json\"`"))),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn export(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let doc = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let categories = collect(&tx, &auth.user_id, Some(&auth.session_id))?;
            let picture = tx
                .query_row("SELECT content_type, bytes FROM pictures WHERE user_id = ?1", [&auth.user_id], |r| {
                    Ok(ExportPicture { content_type: r.get(0)?, base64: b64(r.get::<_, Vec<u8>>(1)?) })
                })
                .optional()?;
            tx.commit()?;
            Ok(PortaExport {
                format: EXPORT_FORMAT.into(),
                version: EXPORT_VERSION,
                exported_at: now,
                user_id: auth.user_id,
                categories: categories.into_iter().map(|c| (c.category.clone(), c)).collect(),
                picture,
            })
        })
        .await?;
    Ok((
        [
            (header::CONTENT_DISPOSITION, "attachment; filename=\"porta-export.json\""),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        ApiJson(doc),
    )
        .into_response())
}

/// The caller's consents. `marketing` is the only purpose and is off until given.
#[utoipa::path(
    get,
    path = "/v1/me/consents",
    tag = "privacy",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One entry per purpose", body = Vec<Consent>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn list_consents(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<Vec<Consent>>, ApiError> {
    state.db.call(move |conn| Ok(current_consents(conn, &auth.user_id)?)).await.map(ApiJson)
}

/// Give or withdraw a consent. Every change is kept with its time.
#[utoipa::path(
    put,
    path = "/v1/me/consents/{purpose}",
    tag = "privacy",
    security(("bearer" = [])),
    params(("purpose" = String, Path, pattern = "^marketing$", description = "`marketing`")),
    request_body = ConsentUpdate,
    responses(
        (status = 200, description = "The updated consent", body = Consent),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown purpose", body = ErrorBody),
    )
)]
pub async fn put_consent(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(purpose): Path<String>,
    ApiJson(body): ApiJson<ConsentUpdate>,
) -> Result<ApiJson<Consent>, ApiError> {
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::NotFound);
    }
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO consent_events (user_id, purpose, granted, at) VALUES (?1, ?2, ?3, ?4)",
                params![auth.user_id, purpose, body.granted, now],
            )?;
            let consent = current_consents(&tx, &auth.user_id)?
                .into_iter()
                .find(|c| c.purpose == purpose)
                .ok_or_else(|| ApiError::Internal("consent purpose vanished".into()))?;
            tx.commit()?;
            Ok(consent)
        })
        .await
        .map(ApiJson)
}

/// Send a fresh one-time code that confirms deleting the account, to the account's email
/// (else its phone). Separate from sign-in codes; same lifetime, tries and rate limits.
#[utoipa::path(
    post,
    path = "/v1/me/deletion-code",
    tag = "privacy",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Code sent", body = CodeResponse),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 429, description = "`rate_limited`; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
        (status = 403, description = "`guest_account`: guests have no profile, contact data or account to delete", body = ErrorBody),
        (status = 503, description = "`delivery_failed`: the email or SMS provider did not take the code; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn request_deletion_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: AuthUser,
) -> Result<(StatusCode, ApiJson<CodeResponse>), ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let now = state.clock.now();
    let limits = state.limits.clone();
    let ip = peer.ip();
    let (identifier, code) = state
        .db
        .call(move |conn| {
            let (email, phone) = contacts(conn, &auth.user_id)?;
            let identifier = email
                .or(phone)
                .and_then(|raw| Identifier::parse(&raw))
                .ok_or_else(|| ApiError::Internal("account without identifier".into()))?;
            let code = issue_code(conn, &identifier, CodePurpose::DeleteAccount, ip, now, &limits, true)?;
            Ok((identifier, code))
        })
        .await?;
    code_sent(&state, &identifier, code).await
}

/// The signed-in user's email and phone. A missing row means the account is gone while a
/// token still names it: `Unauthorized`, like any other dead credential.
fn contacts(conn: &Connection, user_id: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    conn.query_row("SELECT email, phone FROM users WHERE id = ?1", [user_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(ApiError::Unauthorized)
}

/// SHA-256 of a canonical request id, or `None` if it is not a UUID.
pub fn request_hash(request_id: &str) -> Option<String> {
    let id = uuid::Uuid::parse_str(request_id.trim()).ok()?;
    Some(sha256_hex(format!("deletion-request:{}", id.hyphenated())))
}

pub fn find_receipt(conn: &Connection, hash: &str) -> rusqlite::Result<Option<DeletionReceipt>> {
    conn.query_row("SELECT deleted_at, backups_purged_by FROM deletion_receipts WHERE request_hash = ?1", [hash], |r| {
        Ok(DeletionReceipt { deleted_at: r.get(0)?, backups_purged_by: r.get(1)? })
    })
    .optional()
}

/// Whose account a deletion confirms.
pub enum Who {
    /// The signed-in caller.
    User(String),
    /// Whoever typed this identifier on the deletion page.
    Identifier(Identifier),
}

/// Checks the deletion code and deletes the account. A stored receipt for `request_hash` is
/// returned only to someone without a live account (a retry after success): a live account
/// never owns a receipt, so it must not see or reuse another person's.
pub fn confirm_deletion(
    conn: &mut Connection,
    who: Who,
    code: &str,
    request_hash: &str,
    now: i64,
    limits: &Limits,
) -> Result<DeletionReceipt, ApiError> {
    let tx = conn.transaction()?;
    let (user_id, identifier) = match who {
        Who::User(user_id) => {
            let (email, phone) = contacts(&tx, &user_id)?;
            let candidates: Vec<Identifier> =
                [email, phone].into_iter().flatten().filter_map(|raw| Identifier::parse(&raw)).collect();
            // The code went to the email (else the phone); take whichever has one pending.
            let mut chosen = None;
            for identifier in &candidates {
                let pending = tx
                    .query_row(
                        "SELECT 1 FROM one_time_codes WHERE identifier_hash = ?1",
                        [code_key(identifier, CodePurpose::DeleteAccount)],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if pending {
                    chosen = Some(identifier.clone());
                    break;
                }
            }
            let identifier = chosen.or_else(|| candidates.into_iter().next()).ok_or(ApiError::InvalidCode)?;
            (Some(user_id), identifier)
        }
        Who::Identifier(identifier) => match find_user(&tx, &identifier)? {
            // No account (any more) by that address: a resubmitted form gets its receipt,
            // like `GET /v1/deletion-receipts/{request_id}` would give it.
            None => match find_receipt(&tx, request_hash)? {
                Some(receipt) => return Ok(receipt),
                None => (None, identifier),
            },
            user_id => (user_id, identifier),
        },
    };
    if let Err(err) = verify_code(&tx, &identifier, CodePurpose::DeleteAccount, code, now, limits)? {
        tx.commit()?;
        return Err(err);
    }
    let Some(user_id) = user_id else {
        tx.commit()?;
        return Err(ApiError::InvalidCode);
    };
    if find_receipt(&tx, request_hash)?.is_some() {
        // Someone else's request id (a retry of one's own comes without a live account, see
        // `delete_me`). Nothing of theirs is shown, and the code stays unused (no commit) so
        // the person can retry with a fresh id.
        return Err(ApiError::InvalidRequest);
    }
    // Recorded first, so that deleting the account gives this event the same pseudonym as
    // the account's earlier ones.
    crate::security_log::sqlite::record_in(
        &tx,
        &crate::security_log::NewEvent::new(crate::security_log::EventKind::AccountDeleted, now).subject(&user_id),
    )?;
    delete_account(&tx, &user_id, now)?;
    let receipt = DeletionReceipt { deleted_at: now, backups_purged_by: now + BACKUP_RETENTION_S };
    tx.execute(
        "INSERT INTO deletion_receipts (request_hash, deleted_at, backups_purged_by)
         VALUES (?1, ?2, ?3)",
        params![request_hash, receipt.deleted_at, receipt.backups_purged_by],
    )?;
    tx.commit()?;
    tracing::info!("account deleted");
    checkpoint(conn);
    Ok(receipt)
}

/// Copies the WAL into the database and truncates it, so deleted rows do not linger in old
/// WAL frames. Best effort: a busy reader only delays it to the next checkpoint.
pub fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "WAL checkpoint failed");
    }
}

/// Deletes every row holding the person's data. Their live sessions are revoked first, so
/// their device keys and unexpired credential ids go on the revocation list (unlinked from
/// them, and dropped once expired). Access events are kept for the building, anonymised:
/// no user, no credential id, no signed record; only lock/door, time and decision remain.
pub fn delete_account(tx: &Transaction<'_>, user_id: &str, now: i64) -> rusqlite::Result<()> {
    let (email, phone): (Option<String>, Option<String>) =
        tx.query_row("SELECT email, phone FROM users WHERE id = ?1", [user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let live: Vec<String> =
        rows(tx, "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL", [user_id], |r| r.get(0))?;
    for session_id in live {
        revoke_device(tx, &session_id, now)?;
    }
    // What a tenant issued ends with them: invitations, and every guest who accepted one.
    crate::invitations::sqlite::revoke_everything_issued_by(tx, user_id, now)?;
    // The security log keeps what happened, but no longer who: a fresh random pseudonym.
    crate::security_log::sqlite::forget_user(tx, user_id)?;
    tx.execute(
        "UPDATE access_events SET user_id = NULL, credential_id = zeroblob(16), record = x''
         WHERE user_id = ?1
            OR credential_id IN (SELECT id FROM credentials WHERE user_id = ?1)",
        [user_id],
    )?;
    // A pending new address counts too: codes were requested for it.
    let pending: Option<String> =
        tx.query_row("SELECT value FROM contact_changes WHERE user_id = ?1", [user_id], |r| r.get(0)).optional()?;
    for raw in [email, phone, pending].into_iter().flatten() {
        if let Some(identifier) = Identifier::parse(&raw) {
            forget_identifier(tx, &identifier)?;
        }
    }
    for sql in [
        "DELETE FROM contact_changes WHERE user_id = ?1",
        "DELETE FROM consent_events WHERE user_id = ?1",
        "DELETE FROM pictures WHERE user_id = ?1",
        "DELETE FROM credentials WHERE user_id = ?1",
        "DELETE FROM device_keys WHERE user_id = ?1",
        "DELETE FROM door_grants WHERE user_id = ?1",
        "DELETE FROM access_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM users WHERE id = ?1",
    ] {
        tx.execute(sql, [user_id])?;
    }
    Ok(())
}

/// Receipts hold no personal data but are only needed until the backups are gone.
pub fn purge_receipts(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM deletion_receipts WHERE backups_purged_by < ?1", [now])
}

/// Delete the caller's account, confirmed with a code from `POST /v1/me/deletion-code`.
///
/// Idempotent: a retry with the same `request_id` after success answers 200 with the same
/// receipt, even though the access token no longer works. Without a stored receipt a valid
/// bearer token is required. A live session never gets a stored receipt: someone else's
/// `request_id` is answered like an unknown one (and, with a right code, `invalid_request`
/// without deleting anything).
#[utoipa::path(
    post,
    path = "/v1/me/delete",
    tag = "privacy",
    security(("bearer" = [])),
    request_body = DeleteRequest,
    responses(
        (status = 200, description = "Deleted (or already deleted by this request)", body = DeletionReceipt),
        (status = 400, description = "`invalid_request` (e.g. `request_id` is not a UUID, or already used)", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `token_expired`, `invalid_code` or `code_expired`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: request a new code", body = ErrorBody),
    )
)]
pub async fn delete_me(
    State(state): State<AppState>,
    auth: Result<AuthUser, ApiError>,
    ApiJson(body): ApiJson<DeleteRequest>,
) -> Result<ApiJson<DeletionReceipt>, ApiError> {
    let hash = request_hash(&body.request_id).ok_or(ApiError::InvalidRequest)?;
    let auth = match auth {
        Ok(auth) => auth,
        // Only a caller whose account is gone retries for a receipt: a live session's account
        // exists, so a stored receipt is never its own.
        Err(err) => {
            let lookup = hash.clone();
            return match state.db.call(move |conn| Ok(find_receipt(conn, &lookup)?)).await? {
                Some(receipt) => Ok(ApiJson(receipt)),
                None => Err(err),
            };
        }
    };
    let now = state.clock.now();
    let limits = state.limits.clone();
    state
        .db
        .call(move |conn| confirm_deletion(conn, Who::User(auth.user_id), &body.code, &hash, now, &limits))
        .await
        .map(ApiJson)
}

/// A deletion receipt by the `request_id` the client chose. No authentication: the request
/// id is the capability.
#[utoipa::path(
    get,
    path = "/v1/deletion-receipts/{request_id}",
    tag = "privacy",
    params(("request_id" = String, Path, format = Uuid, description = "The `request_id` of `POST /v1/me/delete`")),
    responses(
        (status = 200, description = "The receipt", body = DeletionReceipt),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub async fn get_receipt(
    State(state): State<AppState>,
    Path(request_id): Path<String>,
) -> Result<ApiJson<DeletionReceipt>, ApiError> {
    let hash = request_hash(&request_id).ok_or(ApiError::NotFound)?;
    state.db.call(move |conn| find_receipt(conn, &hash)?.ok_or(ApiError::NotFound)).await.map(ApiJson)
}
