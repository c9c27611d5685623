//! The signed-in resident's own profile and picture. Every query is scoped to the caller's
//! user id from [`AuthUser`]; there is no way to address another user.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::{normalize_email, normalize_name, normalize_phone};
use crate::AppState;

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
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]*[^\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff][^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]*$"
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

fn load_profile(conn: &Connection, user_id: &str) -> Result<Profile, ApiError> {
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
                })
            },
        )
        .optional()?;
    // A valid token for a deleted user: treat like any other dead credential.
    row.ok_or(ApiError::Unauthorized)
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
    state.db.call(move |conn| load_profile(conn, &auth.user_id)).await.map(ApiJson)
}

/// Update the caller's name, email or phone. The unit cannot be changed here.
#[utoipa::path(
    patch,
    path = "/v1/me/profile",
    tag = "profile",
    security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "Updated profile", body = Profile),
        (status = 400, description = "`invalid_name`, `invalid_email`, `invalid_phone` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 409, description = "`already_in_use`", body = ErrorBody),
    )
)]
pub async fn patch_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> Result<ApiJson<Profile>, ApiError> {
    // Validate everything before touching the database.
    let name = update.name.map(|n| normalize_name(&n).ok_or(ApiError::InvalidName)).transpose()?;
    let email =
        update.email.map(|e| e.map(|e| normalize_email(&e).ok_or(ApiError::InvalidEmail)).transpose()).transpose()?;
    let phone =
        update.phone.map(|p| p.map(|p| normalize_phone(&p).ok_or(ApiError::InvalidPhone)).transpose()).transpose()?;
    let now = state.clock.now();

    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let current = load_profile(&tx, &auth.user_id)?;
            let new_email = email.clone().unwrap_or(current.email);
            let new_phone = phone.clone().unwrap_or(current.phone);
            if new_email.is_none() && new_phone.is_none() {
                // Without either the resident could never sign in again.
                return Err(ApiError::InvalidRequest);
            }
            if let Some(Some(e)) = &email {
                ensure_free(&tx, "SELECT 1 FROM users WHERE email = ?1 AND id != ?2", e, &auth.user_id)?;
            }
            if let Some(Some(p)) = &phone {
                ensure_free(&tx, "SELECT 1 FROM users WHERE phone = ?1 AND id != ?2", p, &auth.user_id)?;
            }
            if name.is_some() || email.is_some() || phone.is_some() {
                tx.execute(
                    "UPDATE users SET name = COALESCE(?1, name), email = ?2, phone = ?3,
                         updated_at = ?4
                     WHERE id = ?5",
                    params![name, new_email, new_phone, now, auth.user_id],
                )?;
            }
            let profile = load_profile(&tx, &auth.user_id)?;
            tx.commit()?;
            Ok(profile)
        })
        .await
        .map(ApiJson)
}

fn ensure_free(conn: &Connection, sql: &str, value: &str, user_id: &str) -> Result<(), ApiError> {
    let taken = conn.query_row(sql, params![value, user_id], |_| Ok(())).optional()?.is_some();
    if taken {
        Err(ApiError::AlreadyInUse)
    } else {
        Ok(())
    }
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
    )
)]
pub async fn put_picture(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
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
