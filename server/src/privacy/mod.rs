//! The privacy policy's promises as API: every category of personal data stored about the
//! caller (`/v1/me/data`), a portable export, consents (marketing, off until given), and
//! account deletion confirmed with a fresh one-time code, with an idempotent receipt.
//!
//! Deletion removes every row holding the person's data in one transaction. Access events
//! the building must keep are anonymised (only lock/door, time and decision remain), and
//! the person's device keys and unexpired credential ids go on the site's revocation list,
//! which drops them once those credentials have expired (at most 24 h).
//!
//! Storage is behind [`store::PrivacyStore`] (SQLite: [`sqlite`]); this module turns its
//! records into the API's data categories and chooses the answers.

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use porta_protocol::Decision;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

pub use self::store::Who;
use self::store::{ConsentChange, Deletion, PersonalData};
use crate::access::reason_name;
use crate::auth::{code_sent, new_code, sha256_hex, AuthUser, CodePurpose, CodeResponse};
use crate::authority::b64;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
use crate::AppState;

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

/// The current choice per purpose, from the history (oldest first): the last change wins.
fn current_consents(history: &[ConsentChange]) -> Vec<Consent> {
    PURPOSES
        .iter()
        .map(|purpose| {
            let latest = history.iter().rev().find(|c| c.purpose == *purpose);
            Consent {
                purpose: (*purpose).into(),
                granted: latest.is_some_and(|c| c.granted),
                updated_at: latest.map(|c| c.at),
            }
        })
        .collect()
}

fn stored_json(text: Option<String>) -> Option<Value> {
    text.and_then(|s| serde_json::from_str::<Value>(&s).ok())
}

/// Every category of data stored about the person, as the API shows it. `session_id` marks
/// the caller's own device.
pub fn categories(data: PersonalData, session_id: Option<&str>) -> Vec<DataCategory> {
    let PersonalData {
        profile,
        contact,
        pending_contact_change,
        unit,
        picture,
        sessions,
        device_keys,
        grants,
        credentials,
        invitations_sent,
        guest_access,
        access_retention,
        access_events,
        consent_history,
        pending_codes,
        code_requests,
    } = data;
    let mut out = Vec::new();

    out.push(category(
        "profile",
        "",
        json!({ "name": profile.name, "created_at": profile.created_at, "updated_at": profile.updated_at }),
    ));
    let pending =
        pending_contact_change.map(|c| json!({ "field": c.field, "value": c.value, "expires_at": c.expires_at }));
    out.push(category(
        "contact",
        "",
        json!({ "email": contact.email, "phone": contact.phone, "pending_change": pending }),
    ));

    let unit = unit.map_or(Value::Null, |u| {
        json!({ "id": u.id, "name": u.name, "kind": u.kind, "site_name": u.site_name, "site_address": u.site_address })
    });
    out.push(category("unit", "", unit));

    out.push(category(
        "picture",
        "",
        match picture {
            Some(p) => json!({
                "has_picture": true, "content_type": p.content_type, "size_bytes": p.size_bytes,
                "updated_at": p.updated_at }),
            None => json!({ "has_picture": false, "content_type": null, "size_bytes": null,
                "updated_at": null }),
        },
    ));

    let sessions = sessions
        .into_iter()
        .map(|s| {
            json!({
                "device_id": s.session_id,
                "device_name": s.device_name,
                "created_at": s.created_at,
                "last_sign_in_at": s.created_at,
                "last_seen_at": s.last_seen_at,
                "ip": s.ip,
                "signed_out_at": s.revoked_at,
                "current": session_id == Some(s.session_id.as_str()),
            })
        })
        .collect();
    out.push(category("devices_and_sessions", "", Value::Array(sessions)));

    let keys = device_keys
        .into_iter()
        .map(|k| {
            json!({
                "device_id": k.session_id,
                "public_key": b64(k.public_key),
                "enrolled_at": k.created_at,
                "revoked": k.revoked_at.is_some(),
                "revoked_at": k.revoked_at,
            })
        })
        .collect();
    out.push(category("device_keys", "", Value::Array(keys)));

    let grants = grants
        .into_iter()
        .map(|g| {
            json!({
                "grant_id": g.grant_id,
                "door_id": g.door_id,
                "door_name": g.door_name,
                "not_before": g.not_before,
                "not_after": g.not_after,
                "schedule": stored_json(g.schedule_json),
                "created_at": g.created_at,
            })
        })
        .collect();
    out.push(category("door_grants", "", Value::Array(grants)));

    let credentials = credentials
        .into_iter()
        .map(|c| {
            json!({
                "credential_id": b64(c.credential_id),
                "device_id": c.session_id,
                "doors": stored_json(c.doors_json),
                "not_before": c.not_before,
                "not_after": c.not_after,
                "issued_at": c.issued_at,
                "revoked": c.revoked,
            })
        })
        .collect();
    out.push(category("credentials", "", Value::Array(credentials)));

    out.push(category("invitations_sent", "", invitations_sent));
    out.push(category("guest_access", "", guest_access.unwrap_or_else(|| json!([]))));

    let retention: Vec<String> =
        access_retention.iter().map(|r| format!("{}: {} days", r.door_name, r.retention_days)).collect();
    let retention = if retention.is_empty() { "per door".to_owned() } else { retention.join("; ") };
    let events = access_events
        .into_iter()
        .map(|e| {
            let (decision, reason) = match Decision::from_code(e.decision) {
                Ok(Decision::Opened) => ("opened", None),
                Ok(Decision::Denied(reason)) => ("denied", Some(reason_name(reason))),
                Err(_) => ("denied", None),
            };
            json!({
                "door_id": e.door_id,
                "door_name": e.door_name,
                "lock_id": e.lock_id,
                "at": e.at,
                "decision": decision,
                "reason": reason,
                "credential_id": b64(e.credential_id),
                "received_at": e.received_at,
                "audit_record": b64(e.record),
            })
        })
        .collect();
    out.push(category("access_log", &retention, Value::Array(events)));

    let current = current_consents(&consent_history);
    let history: Vec<Value> = consent_history
        .into_iter()
        .map(|c| json!({ "purpose": c.purpose, "granted": c.granted, "at": c.at }))
        .collect();
    out.push(category("consents", "", json!({ "current": current, "history": history })));

    let codes: Vec<Value> = pending_codes
        .into_iter()
        .map(|c| json!({ "purpose": c.purpose, "expires_at": c.expires_at, "attempts": c.attempts }))
        .collect();
    let requests: Vec<Value> = code_requests.into_iter().map(|at| json!({ "code_requested_at": at })).collect();
    out.push(category("security_records", "", json!({ "pending_codes": codes, "code_requests": requests })));
    debug_assert_eq!(out.iter().map(|c| c.category.as_str()).collect::<Vec<_>>(), CATEGORIES);
    out
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
    // No account behind a live token: it is gone, like any other dead credential.
    let data = state.privacy.personal_data(&auth.user_id).await?.ok_or(ApiError::Unauthorized)?;
    let categories = categories(data, Some(&auth.session_id));
    Ok(ApiJson(MyData { user_id: auth.user_id, categories }))
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
    let (data, picture) = state.privacy.export(&auth.user_id).await?.ok_or(ApiError::Unauthorized)?;
    let doc = PortaExport {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        exported_at: now,
        categories: categories(data, Some(&auth.session_id)).into_iter().map(|c| (c.category.clone(), c)).collect(),
        user_id: auth.user_id,
        picture: picture.map(|p| ExportPicture { content_type: p.content_type, base64: b64(p.bytes) }),
    };
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
    let history = state.privacy.consent_history(&auth.user_id).await?;
    Ok(ApiJson(current_consents(&history)))
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
    let current = state.privacy.record_consent(&auth.user_id, &purpose, body.granted, now).await?;
    Ok(ApiJson(Consent { purpose: current.purpose, granted: current.granted, updated_at: Some(current.at) }))
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
    ClientIp(client): ClientIp,
    auth: AuthUser,
) -> Result<(StatusCode, ApiJson<CodeResponse>), ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let now = state.clock.now();
    // A missing account means it is gone while a token still names it: `Unauthorized`, like
    // any other dead credential.
    let contact = state.privacy.contact(&auth.user_id).await?.ok_or(ApiError::Unauthorized)?;
    let identifier = contact
        .email
        .or(contact.phone)
        .and_then(|raw| Identifier::parse(&raw))
        .ok_or_else(|| ApiError::Internal("account without identifier".into()))?;
    let code = new_code();
    state
        .auth
        .issue_code(&identifier, CodePurpose::DeleteAccount, client, Some(&code), now, (&state.limits).into())
        .await?;
    code_sent(&state, &identifier, Some(code)).await
}

/// SHA-256 of a canonical request id, or `None` if it is not a UUID.
pub fn request_hash(request_id: &str) -> Option<String> {
    let id = uuid::Uuid::parse_str(request_id.trim()).ok()?;
    Some(sha256_hex(format!("deletion-request:{}", id.hyphenated())))
}

/// Checks the deletion code and deletes the account (see [`store::PrivacyStore::confirm_deletion`]),
/// and says with which error it did not.
pub async fn confirm_deletion(
    state: &AppState,
    who: &Who,
    code: &str,
    request_hash: &str,
) -> Result<DeletionReceipt, ApiError> {
    let now = state.clock.now();
    let deletion = state
        .privacy
        .confirm_deletion(who, code, request_hash, now, (&state.limits).into(), BACKUP_RETENTION_S)
        .await?;
    match deletion {
        Deletion::Deleted(receipt) | Deletion::AlreadyDeleted(receipt) => Ok(receipt),
        Deletion::AccountGone => Err(ApiError::Unauthorized),
        Deletion::CodeRejected(err) => Err(err),
        Deletion::NoAccount => Err(ApiError::InvalidCode),
        // Someone else's request id (a retry of one's own comes without a live account, see
        // `delete_me`): answered like a malformed one, showing nothing of theirs.
        Deletion::RequestIdTaken => Err(ApiError::InvalidRequest),
    }
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
            return match state.privacy.receipt(&hash).await? {
                Some(receipt) => Ok(ApiJson(receipt)),
                None => Err(err),
            };
        }
    };
    confirm_deletion(&state, &Who::User(auth.user_id), &body.code, &hash).await.map(ApiJson)
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
    state.privacy.receipt(&hash).await?.ok_or(ApiError::NotFound).map(ApiJson)
}
