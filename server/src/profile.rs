//! The signed-in resident's own profile and picture. Every query is scoped to the caller's
//! user id from [`AuthUser`]; there is no way to address another user.
//!
//! A new email or phone only becomes the account's once a code sent to it is confirmed.
//! Otherwise anyone could put someone else's address on their own account, and that person's
//! first sign-in would land in it (account pre-hijacking). The answers never tell whether
//! another account already uses the address: a change to a taken address is recorded like any
//! other, but its code is never sent, so confirming it fails exactly like a wrong code.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::auth::sqlite::{count_code_request, forget_identifier};
use crate::auth::{code_hash, new_code, random_hex, AuthUser};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::{normalize_email, normalize_name, normalize_phone, Identifier};
use crate::{AppState, Limits};

/// Largest accepted picture.
pub const MAX_PICTURE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    Apartment,
    Office,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unit {
    pub id: String,
    #[schema(example = "Apartment 4B")]
    pub name: String,
    pub kind: UnitKind,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub user_id: String,
    /// Empty until the resident sets it.
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Assigned by the building, not editable by the resident.
    pub unit: Option<Unit>,
    pub has_picture: bool,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// A new email or phone that waits for its code (see `POST /v1/me/profile/contact/confirm`);
    /// `null` when there is none or it has expired.
    pub pending_contact: Option<PendingContact>,
}

/// The two ways to sign in; changing either needs proof of the new address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContactField {
    Email,
    Phone,
}

impl ContactField {
    fn as_str(self) -> &'static str {
        match self {
            ContactField::Email => "email",
            ContactField::Phone => "phone",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(ContactField::Email),
            "phone" => Some(ContactField::Phone),
            _ => None,
        }
    }

    fn identifier(self, value: &str) -> Identifier {
        match self {
            ContactField::Email => Identifier::Email(value.to_owned()),
            ContactField::Phone => Identifier::Phone(value.to_owned()),
        }
    }
}

/// A change of email or phone waiting for the code sent to the new address.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingContact {
    pub field: ContactField,
    /// The new address, normalised as it will be stored.
    #[schema(example = "ada.new@example.com")]
    pub value: String,
    /// Unix seconds; after this the code no longer confirms the change.
    pub expires_at: i64,
}

/// The code that confirms a pending change of email or phone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactConfirmation {
    /// The 6-digit code sent to the new address.
    #[schema(example = "042917")]
    pub code: String,
}

/// Partial update. Absent fields are left alone; `null` clears `email`/`phone` (one of them
/// must remain).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1-100 characters, no control or invisible formatting characters.
    #[schema(
        example = "Ada Resident",
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 254, pattern = r#"^[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"#)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "+4790000001", pattern = r"^[ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}$")]
    pub phone: Option<Option<String>>,
}

/// Tells "field present with null" (`Some(None)`) from "field absent" (`None`, via default).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The caller's pending change of email or phone, unless it has expired.
pub(crate) fn pending_contact(conn: &Connection, user_id: &str, now: i64) -> rusqlite::Result<Option<PendingContact>> {
    let row: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT field, value, expires_at FROM contact_changes WHERE user_id = ?1 AND expires_at > ?2",
            params![user_id, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(field, value, expires_at)| {
        Some(PendingContact { field: ContactField::parse(&field)?, value, expires_at })
    }))
}

fn load_profile(conn: &Connection, user_id: &str, now: i64) -> Result<Profile, ApiError> {
    let row = conn
        .query_row(
            "SELECT u.name, u.email, u.phone, u.updated_at, n.id, n.name, n.kind,
                    EXISTS (SELECT 1 FROM pictures p WHERE p.user_id = u.id)
             FROM users u LEFT JOIN units n ON n.id = u.unit_id
             WHERE u.id = ?1",
            [user_id],
            |r| {
                let unit = match (
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ) {
                    (Some(id), Some(name), Some(kind)) => Some(Unit {
                        id,
                        name,
                        kind: if kind == "office" { UnitKind::Office } else { UnitKind::Apartment },
                    }),
                    _ => None,
                };
                Ok(Profile {
                    user_id: user_id.to_owned(),
                    name: r.get(0)?,
                    email: r.get(1)?,
                    phone: r.get(2)?,
                    unit,
                    has_picture: r.get(7)?,
                    updated_at: r.get(3)?,
                    pending_contact: None,
                })
            },
        )
        .optional()?;
    // A valid token for a deleted user: treat like any other dead credential.
    let mut profile = row.ok_or(ApiError::Unauthorized)?;
    profile.pending_contact = pending_contact(conn, user_id, now)?;
    Ok(profile)
}

/// The caller's profile.
#[utoipa::path(
    get,
    path = "/v1/me/profile",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Profile", body = Profile),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn get_profile(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<Profile>, ApiError> {
    let now = state.clock.now();
    state.db.call(move |conn| load_profile(conn, &auth.user_id, now)).await.map(ApiJson)
}

/// Update the caller's name, email or phone. The unit cannot be changed here.
///
/// The name, and clearing `email` or `phone` (one must remain), apply at once. A new email or
/// phone does not: the answer shows it as `pending_contact`, a code is sent to the new
/// address, and `POST /v1/me/profile/contact/confirm` with that code applies it. One of
/// them at a time; a new request replaces a pending one. The answer is the same whether or
/// not another account uses the address.
#[utoipa::path(
    patch,
    path = "/v1/me/profile",
    tag = "profile",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile; a new email or phone shows as `pending_contact`", body = Profile),
        (status = 400, description = "`invalid_name`, `invalid_email`, `invalid_phone` or `invalid_request`", body = ErrorBody),
        (status = 409, description = "`contact_change_conflict`: email and phone changed at once, or neither would remain", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many codes sent to this address or from this client; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
        (status = 403, description = "`guest_account`: guests have no profile, contact data or account to delete", body = ErrorBody),
        (status = 503, description = "`delivery_failed`: the email or SMS provider did not take the code; see `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn patch_profile(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    auth: AuthUser,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> Result<ApiJson<Profile>, ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    // Validate everything before touching the database.
    let name = update.name.map(|n| normalize_name(&n).map_err(ApiError::InvalidName)).transpose()?;
    let email =
        update.email.map(|e| e.map(|e| normalize_email(&e).ok_or(ApiError::InvalidEmail)).transpose()).transpose()?;
    let phone =
        update.phone.map(|p| p.map(|p| normalize_phone(&p).ok_or(ApiError::InvalidPhone)).transpose()).transpose()?;
    let now = state.clock.now();
    let limits = state.limits.clone();
    let ip = peer.ip();

    let (profile, to_send) = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM contact_changes WHERE expires_at <= ?1", [now])?;
            let current = load_profile(&tx, &auth.user_id, now)?;
            let email = ContactEdit::new(email, &current.email);
            let phone = ContactEdit::new(phone, &current.phone);
            let requested: Vec<(ContactField, String)> = [(ContactField::Email, &email), (ContactField::Phone, &phone)]
                .into_iter()
                .filter_map(|(field, edit)| match edit {
                    ContactEdit::Change(value) => Some((field, value.clone())),
                    _ => None,
                })
                .collect();
            if requested.len() > 1 {
                // One code, one address: a code must say which address it proves.
                return Err(ApiError::ContactChangeConflict);
            }
            let remaining_email = email.remaining(current.email);
            let remaining_phone = phone.remaining(current.phone);
            if remaining_email.is_none() && remaining_phone.is_none() {
                // Without either the resident could never sign in again.
                return Err(ApiError::ContactChangeConflict);
            }
            let mut to_send = None;
            if let Some((field, value)) = requested.into_iter().next() {
                match request_contact_change(&tx, &auth.user_id, field, &value, ip, now, &limits)? {
                    // With no code (the address is someone else's), the channel is still checked.
                    Ok(code) => to_send = Some((field.identifier(&value), code)),
                    Err(err) => return Err(err),
                }
            }
            for (field, edit) in [(ContactField::Email, &email), (ContactField::Phone, &phone)] {
                if matches!(edit, ContactEdit::Clear | ContactEdit::Keep) {
                    // Clearing the field, or setting it back to what it is, drops a pending change.
                    tx.execute(
                        "DELETE FROM contact_changes WHERE user_id = ?1 AND field = ?2",
                        params![auth.user_id, field.as_str()],
                    )?;
                }
            }
            let cleared = matches!(email, ContactEdit::Clear) || matches!(phone, ContactEdit::Clear);
            if name.is_some() || cleared {
                tx.execute(
                    "UPDATE users SET name = COALESCE(?1, name), email = ?2, phone = ?3, updated_at = ?4
                     WHERE id = ?5",
                    params![name, remaining_email, remaining_phone, now, auth.user_id],
                )?;
            }
            let profile = load_profile(&tx, &auth.user_id, now)?;
            tx.commit()?;
            Ok((profile, to_send))
        })
        .await?;
    if let Some((identifier, code)) = to_send {
        // The change stays pending if delivery fails: the same PATCH again sends a new code.
        crate::auth::deliver(&state, &identifier, code).await?;
    }
    Ok(ApiJson(profile))
}

/// What a `PATCH` asks for one contact field.
enum ContactEdit {
    /// Absent: leave as it is.
    Untouched,
    /// Set to the value it already has.
    Keep,
    Clear,
    /// A new address: pending until confirmed.
    Change(String),
}

impl ContactEdit {
    fn new(asked: Option<Option<String>>, current: &Option<String>) -> Self {
        match asked {
            None => ContactEdit::Untouched,
            Some(None) => ContactEdit::Clear,
            Some(Some(value)) if current.as_deref() == Some(value.as_str()) => ContactEdit::Keep,
            Some(Some(value)) => ContactEdit::Change(value),
        }
    }

    /// The field's value once this edit is applied now (a change applies only later).
    fn remaining(&self, current: Option<String>) -> Option<String> {
        match self {
            ContactEdit::Clear => None,
            _ => current,
        }
    }
}

/// Records a pending change of `user_id`'s `field` to `value`, within the code-sending rate
/// limits, and returns the code to send to `value`. If another account already uses `value`
/// the change is recorded all the same, with a code that can never match, and no code is
/// returned: the caller answers alike and the confirmation fails like a wrong code.
fn request_contact_change(
    tx: &Transaction<'_>,
    user_id: &str,
    field: ContactField,
    value: &str,
    ip: std::net::IpAddr,
    now: i64,
    limits: &Limits,
) -> rusqlite::Result<Result<Option<String>, ApiError>> {
    if let Err(err) = count_code_request(tx, &field.identifier(value), ip, now, limits)? {
        return Ok(Err(err));
    }
    let taken = address_taken(tx, field, value, user_id)?;
    let code = new_code();
    let salt = random_hex(16);
    // Not six digits, so no code typed can ever match it.
    let stored = if taken { code_hash(&salt, &random_hex(16)) } else { code_hash(&salt, &code) };
    tx.execute(
        "INSERT OR REPLACE INTO contact_changes (user_id, field, value, salt, code_hash, expires_at, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
        params![user_id, field.as_str(), value, salt, stored, now + limits.code_ttl_s],
    )?;
    Ok(Ok((!taken).then_some(code)))
}

/// Whether an account other than `user_id` has `value` as its email (or phone).
fn address_taken(conn: &Connection, field: ContactField, value: &str, user_id: &str) -> rusqlite::Result<bool> {
    let sql = match field {
        ContactField::Email => "SELECT 1 FROM users WHERE email = ?1 AND id != ?2",
        ContactField::Phone => "SELECT 1 FROM users WHERE phone = ?1 AND id != ?2",
    };
    Ok(conn.query_row(sql, params![value, user_id], |_| Ok(())).optional()?.is_some())
}

/// Checks `code` against `user_id`'s pending contact change and, if it matches, applies it.
/// Wrong guesses count against the code like sign-in codes do, so on `Ok(Err(_))` the caller
/// must commit before answering. An address another account took meanwhile fails like a
/// wrong code.
fn confirm_contact_change(
    tx: &Transaction<'_>,
    user_id: &str,
    code: &str,
    now: i64,
    limits: &Limits,
) -> rusqlite::Result<Result<(), ApiError>> {
    let row: Option<(String, String, String, String, i64, u32)> = tx
        .query_row(
            "SELECT field, value, salt, code_hash, expires_at, attempts FROM contact_changes WHERE user_id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((field, value, salt, stored, expires_at, attempts)) = row else {
        return Ok(Err(ApiError::InvalidCode));
    };
    let Some(field) = ContactField::parse(&field) else {
        return Ok(Err(ApiError::InvalidCode));
    };
    if attempts >= limits.code_max_attempts {
        return Ok(Err(ApiError::TooManyAttempts));
    }
    if expires_at <= now {
        return Ok(Err(ApiError::CodeExpired));
    }
    let given = code_hash(&salt, code.trim());
    if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
        tx.execute("UPDATE contact_changes SET attempts = attempts + 1 WHERE user_id = ?1", [user_id])?;
        return Ok(Err(ApiError::InvalidCode));
    }
    tx.execute("DELETE FROM contact_changes WHERE user_id = ?1", [user_id])?;
    if address_taken(tx, field, &value, user_id)? {
        return Ok(Err(ApiError::InvalidCode));
    }
    let (select, update) = match field {
        ContactField::Email => {
            ("SELECT email FROM users WHERE id = ?1", "UPDATE users SET email = ?1, updated_at = ?2 WHERE id = ?3")
        }
        ContactField::Phone => {
            ("SELECT phone FROM users WHERE id = ?1", "UPDATE users SET phone = ?1, updated_at = ?2 WHERE id = ?3")
        }
    };
    let old: Option<String> = tx.query_row(select, [user_id], |r| r.get(0))?;
    tx.execute(update, params![value, now, user_id])?;
    // The old address is no longer this person's way in; nothing keyed by it need stay.
    if let Some(old) = old {
        forget_identifier(tx, &field.identifier(&old))?;
    }
    tracing::info!(field = field.as_str(), "contact change confirmed");
    Ok(Ok(()))
}

/// Confirm a pending change of email or phone with the code sent to the new address.
///
/// Fails with `invalid_code` when there is no pending change, when the code is wrong, and
/// when the address belongs to another account: the three cannot be told apart.
#[utoipa::path(
    post,
    path = "/v1/me/profile/contact/confirm",
    tag = "profile",
    security(("bearer" = [])),
    request_body = ContactConfirmation,
    responses(
        (status = 200, description = "Applied; the updated profile", body = Profile),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_code` or `code_expired`; `unauthorized` or `token_expired` for the session", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: change the address again for a new code", body = ErrorBody),
        (status = 403, description = "`guest_account`: guests have no profile, contact data or account to delete", body = ErrorBody),
    )
)]
pub async fn confirm_contact(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<ContactConfirmation>,
) -> Result<ApiJson<Profile>, ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let now = state.clock.now();
    let limits = state.limits.clone();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if let Err(err) = confirm_contact_change(&tx, &auth.user_id, &body.code, now, &limits)? {
                tx.commit()?;
                return Err(err);
            }
            let profile = load_profile(&tx, &auth.user_id, now)?;
            tx.commit()?;
            Ok(profile)
        })
        .await
        .map(ApiJson)
}

/// The picture bodies' OpenAPI type: raw bytes (`string`, `binary`), not a JSON array.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PictureBytes(pub Vec<u8>);

/// Content type judged from the leading bytes; the client's header is not trusted.
fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(JPEG) {
        Some("image/jpeg")
    } else {
        None
    }
}

/// Set the caller's picture (PNG or JPEG, at most 2 MiB), sent as the raw request body.
#[utoipa::path(
    put,
    path = "/v1/me/picture",
    tag = "profile",
    security(("bearer" = [])),
    request_body(
        description = "PNG or JPEG bytes; the type is detected from the content",
        content((inline(PictureBytes) = "image/png"), (inline(PictureBytes) = "image/jpeg"))
    ),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "`invalid_request`: empty body", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 403, description = "`guest_account`: guests have no profile picture", body = ErrorBody),
    )
)]
pub async fn put_picture(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::InvalidRequest
        }
    })?;
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    if bytes.is_empty() {
        return Err(ApiError::InvalidRequest);
    }
    let content_type = sniff_image(&bytes).ok_or(ApiError::UnsupportedMediaType)?;
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO pictures (user_id, content_type, bytes, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type,
                     bytes = excluded.bytes, updated_at = excluded.updated_at",
                params![auth.user_id, content_type, &bytes[..], now],
            )?;
            picture_changed(&tx, &auth.user_id, now)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new or removed picture changes the profile (`has_picture`), so it moves the profile's
/// `updated_at` like any other profile edit.
fn picture_changed(tx: &Transaction<'_>, user_id: &str, now: i64) -> rusqlite::Result<()> {
    tx.execute("UPDATE users SET updated_at = ?1 WHERE id = ?2", params![now, user_id])?;
    Ok(())
}

/// The caller's picture.
#[utoipa::path(
    get,
    path = "/v1/me/picture",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Picture bytes", content((inline(PictureBytes) = "image/png"), (inline(PictureBytes) = "image/jpeg"))),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no picture set", body = ErrorBody),
    )
)]
pub async fn get_picture(State(state): State<AppState>, auth: AuthUser) -> Result<Response, ApiError> {
    let (content_type, bytes): (String, Vec<u8>) = state
        .db
        .call(move |conn| {
            conn.query_row("SELECT content_type, bytes FROM pictures WHERE user_id = ?1", [&auth.user_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or(ApiError::NotFound)
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// Remove the caller's picture. Succeeds even if there was none.
#[utoipa::path(
    delete,
    path = "/v1/me/picture",
    tag = "profile",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn delete_picture(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let removed = tx.execute("DELETE FROM pictures WHERE user_id = ?1", [&auth.user_id])?;
            if removed > 0 {
                picture_changed(&tx, &auth.user_id, now)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"hello"), None);
        assert_eq!(sniff_image(b"\x89PNG"), None);
    }

    #[test]
    fn update_distinguishes_null_from_absent() {
        let u: ProfileUpdate = serde_json::from_str(r#"{"email": null}"#).unwrap();
        assert_eq!(u.email, Some(None));
        assert_eq!(u.phone, None);
        assert!(serde_json::from_str::<ProfileUpdate>(r#"{"unit": "x"}"#).is_err());
    }
}
