//! The SQLite backend of [`ProfileStore`] (tables `users`, `units`, `contact_changes`,
//! `pictures`).

use std::net::IpAddr;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use subtle::ConstantTimeEq;

use super::store::{
    ContactRequest, PendingContactRecord, PictureRecord, PlanChange, ProfileRecord, ProfileStore, RequestedContact,
    UnitRecord, UpdatedProfile,
};
use super::ContactField;
use crate::auth::sqlite::{count_code_request, forget_identifier};
use crate::auth::store::CodeLimits;
use crate::auth::{code_hash, random_hex};
use crate::db::Db;
use crate::error::ApiError;

pub struct SqliteProfileStore {
    db: Db,
}

impl SqliteProfileStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ProfileStore for SqliteProfileStore {
    async fn profile(&self, user_id: &str, now: i64) -> Result<Option<ProfileRecord>, ApiError> {
        let user_id = user_id.to_owned();
        self.db.call(move |conn| Ok(load_profile(conn, &user_id, now)?)).await
    }

    async fn update_profile(
        &self,
        user_id: &str,
        plan: PlanChange,
        ip: IpAddr,
        now: i64,
        limits: CodeLimits,
    ) -> Result<Option<UpdatedProfile>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute("DELETE FROM contact_changes WHERE expires_at <= ?1", [now])?;
                let Some(current) = load_profile(&tx, &user_id, now)? else {
                    return Ok(None);
                };
                // An error (a refused plan, a rate limit) drops the transaction: nothing changes.
                let change = plan(&current)?;
                let mut requested = None;
                if let Some(request) = &change.request {
                    let code_sendable = request_contact_change(&tx, &user_id, request, ip, now, limits)??;
                    requested =
                        Some(RequestedContact { field: request.field, value: request.value.clone(), code_sendable });
                }
                for field in &change.drop_pending {
                    tx.execute(
                        "DELETE FROM contact_changes WHERE user_id = ?1 AND field = ?2",
                        params![user_id, field.as_str()],
                    )?;
                }
                if change.name.is_some() || !change.clear.is_empty() {
                    tx.execute(
                        "UPDATE users SET name = COALESCE(?1, name),
                             email = CASE WHEN ?2 THEN NULL ELSE email END,
                             phone = CASE WHEN ?3 THEN NULL ELSE phone END, updated_at = ?4
                         WHERE id = ?5",
                        params![
                            change.name,
                            change.clear.contains(&ContactField::Email),
                            change.clear.contains(&ContactField::Phone),
                            now,
                            user_id
                        ],
                    )?;
                }
                let profile = load_profile(&tx, &user_id, now)?.ok_or(ApiError::Unauthorized)?;
                tx.commit()?;
                Ok(Some(UpdatedProfile { profile, requested }))
            })
            .await
    }

    async fn confirm_contact(
        &self,
        user_id: &str,
        code: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<Option<ProfileRecord>, ApiError> {
        let (user_id, code) = (user_id.to_owned(), code.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let outcome = confirm_contact_change(&tx, &user_id, &code, now, max_attempts)?;
                // A wrong guess is counted even though the answer is an error.
                let profile = match outcome {
                    Ok(()) => load_profile(&tx, &user_id, now)?,
                    Err(_) => None,
                };
                tx.commit()?;
                outcome.map(|()| profile)
            })
            .await
    }

    async fn put_picture(&self, user_id: &str, picture: PictureRecord, now: i64) -> Result<(), ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO pictures (user_id, content_type, bytes, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type,
                         bytes = excluded.bytes, updated_at = excluded.updated_at",
                    params![user_id, picture.content_type, picture.bytes, now],
                )?;
                picture_changed(&tx, &user_id, now)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn picture(&self, user_id: &str) -> Result<Option<PictureRecord>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let picture = conn
                    .query_row("SELECT content_type, bytes FROM pictures WHERE user_id = ?1", [&user_id], |r| {
                        Ok(PictureRecord { content_type: r.get(0)?, bytes: r.get(1)? })
                    })
                    .optional()?;
                Ok(picture)
            })
            .await
    }

    async fn delete_picture(&self, user_id: &str, now: i64) -> Result<bool, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let removed = tx.execute("DELETE FROM pictures WHERE user_id = ?1", [&user_id])?;
                if removed > 0 {
                    picture_changed(&tx, &user_id, now)?;
                }
                tx.commit()?;
                Ok(removed > 0)
            })
            .await
    }
}

/// The account's pending change of email or phone, unless it has expired.
fn pending_contact(conn: &Connection, user_id: &str, now: i64) -> rusqlite::Result<Option<PendingContactRecord>> {
    let row: Option<(String, String, i64)> = conn
        .query_row(
            "SELECT field, value, expires_at FROM contact_changes WHERE user_id = ?1 AND expires_at > ?2",
            params![user_id, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(field, value, expires_at)| {
        Some(PendingContactRecord { field: ContactField::parse(&field)?, value, expires_at })
    }))
}

fn load_profile(conn: &Connection, user_id: &str, now: i64) -> rusqlite::Result<Option<ProfileRecord>> {
    let row = conn
        .query_row(
            "SELECT u.name, u.email, u.phone, u.updated_at, n.id, n.name, n.kind,
                    EXISTS (SELECT 1 FROM pictures p WHERE p.user_id = u.id)
             FROM users u LEFT JOIN units n ON n.id = u.unit_id
             WHERE u.id = ?1",
            [user_id],
            |r| {
                let unit = match (r.get(4)?, r.get(5)?, r.get(6)?) {
                    (Some(id), Some(name), Some(kind)) => Some(UnitRecord { id, name, kind }),
                    _ => None,
                };
                Ok(ProfileRecord {
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
    let Some(mut profile) = row else {
        return Ok(None);
    };
    profile.pending_contact = pending_contact(conn, user_id, now)?;
    Ok(Some(profile))
}

/// Records a pending change of `user_id`'s `field` to `value`, within the code-sending rate
/// limits, and tells whether its code may be sent. If another account already uses the
/// address the change is recorded all the same, with a code that can never match.
fn request_contact_change(
    tx: &Transaction<'_>,
    user_id: &str,
    request: &ContactRequest,
    ip: IpAddr,
    now: i64,
    limits: CodeLimits,
) -> rusqlite::Result<Result<bool, ApiError>> {
    let ContactRequest { field, value, code } = request;
    if let Err(err) = count_code_request(tx, &field.identifier(value), ip, now, limits)? {
        return Ok(Err(err));
    }
    let taken = address_taken(tx, *field, value, user_id)?;
    let salt = random_hex(16);
    // Not six digits, so no code typed can ever match it.
    let stored = if taken { code_hash(&salt, &random_hex(16)) } else { code_hash(&salt, code) };
    tx.execute(
        "INSERT OR REPLACE INTO contact_changes (user_id, field, value, salt, code_hash, expires_at, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
        params![user_id, field.as_str(), value, salt, stored, now + limits.ttl_s],
    )?;
    Ok(Ok(!taken))
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
    max_attempts: u32,
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
    if attempts >= max_attempts {
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

/// A new or removed picture changes the profile (`has_picture`), so it moves the profile's
/// `updated_at` like any other profile edit.
fn picture_changed(tx: &Transaction<'_>, user_id: &str, now: i64) -> rusqlite::Result<()> {
    tx.execute("UPDATE users SET updated_at = ?1 WHERE id = ?2", params![now, user_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        conn.execute_batch(
            "INSERT INTO sites (id, name, address) VALUES ('site-1', 'Site', '');
             INSERT INTO units (id, site_id, name, kind) VALUES ('unit-1', 'site-1', 'Apartment 4B', 'apartment');
             INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at) VALUES
                 ('ann', 'Ann', 'ann@example.com', '+4790000001', 'unit-1', 1, 1),
                 ('bob', 'Bob', 'bob@example.com', NULL, NULL, 1, 1);",
        )
        .unwrap();
        let db = Db::new(conn);
        Fixture {
            store: Box::new(SqliteProfileStore::new(db.clone())),
            other_instance: Box::new(SqliteProfileStore::new(db)),
            _dir: Box::new(dir),
            now: 1_750_000_000,
        }
    }

    crate::profile_store_tests!(get_store);
}
