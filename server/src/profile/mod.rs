//! The signed-in resident's own profile and picture. Every query is scoped to the caller's
//! user id from [`AuthUser`]; there is no way to address another user.
//!
//! A new email or phone only becomes the account's once a code sent to it is confirmed.
//! Otherwise anyone could put someone else's address on their own account, and that person's
//! first sign-in would land in it (account pre-hijacking). The answers never tell whether
//! another account already uses the address: a change to a taken address is recorded like any
//! other, but its code is never sent, so confirming it fails exactly like a wrong code.
//!
//! Profiles, pending changes and pictures are kept by a [`store::ProfileStore`]; what a
//! `PATCH` may change is decided here (`plan_update`), inside the store's transaction.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::{new_code, AuthUser};
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::{normalize_email, normalize_name, normalize_phone, Identifier};
use crate::AppState;
use store::{ContactRequest, PictureRecord, ProfileChange, ProfileRecord};

#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

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

impl From<ProfileRecord> for Profile {
    fn from(record: ProfileRecord) -> Self {
        Profile {
            user_id: record.user_id,
            name: record.name,
            email: record.email,
            phone: record.phone,
            unit: record.unit.map(|unit| Unit {
                id: unit.id,
                name: unit.name,
                kind: if unit.kind == "office" { UnitKind::Office } else { UnitKind::Apartment },
            }),
            has_picture: record.has_picture,
            updated_at: record.updated_at,
            pending_contact: record.pending_contact.map(|pending| PendingContact {
                field: pending.field,
                value: pending.value,
                expires_at: pending.expires_at,
            }),
        }
    }
}

/// A valid token of a deleted account: treated like any other dead credential.
fn found(profile: Option<ProfileRecord>) -> Result<ApiJson<Profile>, ApiError> {
    profile.map(|p| ApiJson(p.into())).ok_or(ApiError::Unauthorized)
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
    found(state.profiles.profile(&auth.user_id, state.clock.now()).await?)
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
    ClientIp(client): ClientIp,
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
    let code = new_code();
    let plan = plan_update(name, email, phone, code.clone());
    let updated = state.profiles.update_profile(&auth.user_id, Box::new(plan), client, now, (&state.limits).into());
    let updated = updated.await?.ok_or(ApiError::Unauthorized)?;
    if let Some(requested) = &updated.requested {
        // With no code (the address is someone else's), the channel is still checked. The
        // change stays pending if delivery fails: the same PATCH again sends a new code.
        let identifier = requested.field.identifier(&requested.value);
        crate::auth::deliver(&state, &identifier, requested.code_sendable.then_some(code)).await?;
    }
    Ok(ApiJson(updated.profile.into()))
}

/// What a `PATCH` writes, decided against the profile as it is in the update's transaction.
fn plan_update(
    name: Option<String>,
    email: Option<Option<String>>,
    phone: Option<Option<String>>,
    code: String,
) -> impl FnOnce(&ProfileRecord) -> Result<ProfileChange, ApiError> + Send {
    move |current| {
        let edits = [
            (ContactField::Email, ContactEdit::new(email, &current.email)),
            (ContactField::Phone, ContactEdit::new(phone, &current.phone)),
        ];
        let mut requested = edits.iter().filter_map(|(field, edit)| match edit {
            ContactEdit::Change(value) => {
                Some(ContactRequest { field: *field, value: value.clone(), code: code.clone() })
            }
            _ => None,
        });
        let request = requested.next();
        if requested.next().is_some() {
            // One code, one address: a code must say which address it proves.
            return Err(ApiError::ContactChangeConflict);
        }
        let [(_, email), (_, phone)] = &edits;
        if email.remaining(&current.email).is_none() && phone.remaining(&current.phone).is_none() {
            // Without either the resident could never sign in again.
            return Err(ApiError::ContactChangeConflict);
        }
        let fields = |wanted: fn(&ContactEdit) -> bool| {
            edits.iter().filter(|(_, edit)| wanted(edit)).map(|(field, _)| *field).collect::<Vec<_>>()
        };
        Ok(ProfileChange {
            name,
            clear: fields(|edit| matches!(edit, ContactEdit::Clear)),
            // Clearing the field, or setting it back to what it is, drops a pending change.
            drop_pending: fields(|edit| matches!(edit, ContactEdit::Clear | ContactEdit::Keep)),
            request,
        })
    }
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
    fn remaining<'a>(&self, current: &'a Option<String>) -> Option<&'a str> {
        match self {
            ContactEdit::Clear => None,
            _ => current.as_deref(),
        }
    }
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
    found(state.profiles.confirm_contact(&auth.user_id, &body.code, now, state.limits.code_max_attempts).await?)
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
    let picture = PictureRecord { content_type: content_type.to_owned(), bytes: bytes.to_vec() };
    state.profiles.put_picture(&auth.user_id, picture, state.clock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
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
    let PictureRecord { content_type, bytes } =
        state.profiles.picture(&auth.user_id).await?.ok_or(ApiError::NotFound)?;
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
    state.profiles.delete_picture(&auth.user_id, state.clock.now()).await?;
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
