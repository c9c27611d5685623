//! The PostgreSQL backend of [`ProfileStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`]. A profile update and a contact confirmation lock the
//! account's row, so two instances never apply one half-read change each.

use std::net::IpAddr;

use async_trait::async_trait;
use subtle::ConstantTimeEq;
use tokio_postgres::GenericClient;

use super::store::{
    ContactRequest, PendingContactRecord, PictureRecord, PlanChange, ProfileRecord, ProfileStore, RequestedContact,
    UnitRecord, UpdatedProfile,
};
use super::ContactField;
use crate::auth::postgres::{count_code_request, forget_identifier};
use crate::auth::store::CodeLimits;
use crate::auth::{code_hash, random_hex};
use crate::error::ApiError;
use crate::pg::PgPool;

pub struct PgProfileStore {
    pool: PgPool,
}

impl PgProfileStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Locks the account's row until the caller's transaction ends.
async fn lock_user(client: &impl GenericClient, user_id: &str) -> Result<(), tokio_postgres::Error> {
    client.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await?;
    Ok(())
}

#[async_trait]
impl ProfileStore for PgProfileStore {
    async fn profile(&self, user_id: &str, now: i64) -> Result<Option<ProfileRecord>, ApiError> {
        let client = self.pool.get().await?;
        Ok(load_profile(&*client, user_id, now).await?)
    }

    async fn update_profile(
        &self,
        user_id: &str,
        plan: PlanChange,
        ip: IpAddr,
        now: i64,
        limits: CodeLimits,
    ) -> Result<Option<UpdatedProfile>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_user(&tx, user_id).await?;
        crate::pg::delete_expired(&tx, "contact_changes", "expires_at <= $1", &[&now]).await?;
        let Some(current) = load_profile(&tx, user_id, now).await? else {
            return Ok(None);
        };
        // An error (a refused plan, a rate limit) drops the transaction: nothing changes.
        let change = plan(&current)?;
        let mut requested = None;
        if let Some(request) = &change.request {
            let code_sendable = request_contact_change(&tx, user_id, request, ip, now, limits).await??;
            requested = Some(RequestedContact { field: request.field, value: request.value.clone(), code_sendable });
        }
        for field in &change.drop_pending {
            tx.execute("DELETE FROM contact_changes WHERE user_id = $1 AND field = $2", &[&user_id, &field.as_str()])
                .await?;
        }
        if change.name.is_some() || !change.clear.is_empty() {
            tx.execute(
                "UPDATE users SET name = COALESCE($1, name),
                     email = CASE WHEN $2 THEN NULL ELSE email END,
                     phone = CASE WHEN $3 THEN NULL ELSE phone END, updated_at = $4
                 WHERE id = $5",
                &[
                    &change.name,
                    &change.clear.contains(&ContactField::Email),
                    &change.clear.contains(&ContactField::Phone),
                    &now,
                    &user_id,
                ],
            )
            .await?;
        }
        let profile = load_profile(&tx, user_id, now).await?.ok_or(ApiError::Unauthorized)?;
        tx.commit().await?;
        Ok(Some(UpdatedProfile { profile, requested }))
    }

    async fn confirm_contact(
        &self,
        user_id: &str,
        code: &str,
        now: i64,
        max_attempts: u32,
    ) -> Result<Option<ProfileRecord>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Guesses at one code take turns, so the attempt limit holds across instances.
        lock_user(&tx, user_id).await?;
        let outcome = confirm_contact_change(&tx, user_id, code, now, max_attempts).await?;
        // A wrong guess is counted even though the answer is an error.
        let profile = match outcome {
            Ok(()) => load_profile(&tx, user_id, now).await?,
            Err(_) => None,
        };
        tx.commit().await?;
        outcome.map(|()| profile)
    }

    async fn put_picture(&self, user_id: &str, picture: PictureRecord, now: i64) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO pictures (user_id, content_type, bytes, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type,
                 bytes = excluded.bytes, updated_at = excluded.updated_at",
            &[&user_id, &picture.content_type, &picture.bytes, &now],
        )
        .await?;
        picture_changed(&tx, user_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn picture(&self, user_id: &str) -> Result<Option<PictureRecord>, ApiError> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT content_type, bytes FROM pictures WHERE user_id = $1", &[&user_id]).await?;
        Ok(row.map(|r| PictureRecord { content_type: r.get(0), bytes: r.get(1) }))
    }

    async fn delete_picture(&self, user_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let removed = tx.execute("DELETE FROM pictures WHERE user_id = $1", &[&user_id]).await?;
        if removed > 0 {
            picture_changed(&tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(removed > 0)
    }
}

/// The account's pending change of email or phone, unless it has expired.
async fn pending_contact(
    client: &impl GenericClient,
    user_id: &str,
    now: i64,
) -> Result<Option<PendingContactRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT field, value, expires_at FROM contact_changes WHERE user_id = $1 AND expires_at > $2",
            &[&user_id, &now],
        )
        .await?;
    Ok(row.and_then(|r| {
        Some(PendingContactRecord { field: ContactField::parse(r.get(0))?, value: r.get(1), expires_at: r.get(2) })
    }))
}

async fn load_profile(
    client: &impl GenericClient,
    user_id: &str,
    now: i64,
) -> Result<Option<ProfileRecord>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT u.name, u.email, u.phone, u.updated_at, n.id, n.name, n.kind,
                    EXISTS (SELECT 1 FROM pictures p WHERE p.user_id = u.id)
             FROM users u LEFT JOIN units n ON n.id = u.unit_id
             WHERE u.id = $1",
            &[&user_id],
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let unit = match (r.get(4), r.get(5), r.get(6)) {
        (Some(id), Some(name), Some(kind)) => Some(UnitRecord { id, name, kind }),
        _ => None,
    };
    Ok(Some(ProfileRecord {
        user_id: user_id.to_owned(),
        name: r.get(0),
        email: r.get(1),
        phone: r.get(2),
        unit,
        has_picture: r.get(7),
        updated_at: r.get(3),
        pending_contact: pending_contact(client, user_id, now).await?,
    }))
}

/// Records a pending change of `user_id`'s `field` to `value`, within the code-sending rate
/// limits, and tells whether its code may be sent. If another account already uses the
/// address the change is recorded all the same, with a code that can never match.
async fn request_contact_change(
    client: &impl GenericClient,
    user_id: &str,
    request: &ContactRequest,
    ip: IpAddr,
    now: i64,
    limits: CodeLimits,
) -> Result<Result<bool, ApiError>, tokio_postgres::Error> {
    let ContactRequest { field, value, code } = request;
    if let Err(err) = count_code_request(client, &field.identifier(value), ip, now, limits).await? {
        return Ok(Err(err));
    }
    let taken = address_taken(client, *field, value, user_id).await?;
    let salt = random_hex(16);
    // Not six digits, so no code typed can ever match it.
    let stored = if taken { code_hash(&salt, &random_hex(16)) } else { code_hash(&salt, code) };
    client
        .execute(
            "INSERT INTO contact_changes (user_id, field, value, salt, code_hash, expires_at, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, 0)
             ON CONFLICT (user_id) DO UPDATE SET field = excluded.field, value = excluded.value,
                 salt = excluded.salt, code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0",
            &[&user_id, &field.as_str(), value, &salt, &stored, &(now + limits.ttl_s)],
        )
        .await?;
    Ok(Ok(!taken))
}

/// Whether an account other than `user_id` has `value` as its email (or phone).
async fn address_taken(
    client: &impl GenericClient,
    field: ContactField,
    value: &str,
    user_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let sql = match field {
        ContactField::Email => "SELECT 1 FROM users WHERE email = $1 AND id != $2",
        ContactField::Phone => "SELECT 1 FROM users WHERE phone = $1 AND id != $2",
    };
    Ok(client.query_opt(sql, &[&value, &user_id]).await?.is_some())
}

/// Checks `code` against `user_id`'s pending contact change and, if it matches, applies it,
/// as the SQLite backend's `confirm_contact_change`.
async fn confirm_contact_change(
    client: &impl GenericClient,
    user_id: &str,
    code: &str,
    now: i64,
    max_attempts: u32,
) -> Result<Result<(), ApiError>, ApiError> {
    let row = client
        .query_opt(
            "SELECT field, value, salt, code_hash, expires_at, attempts FROM contact_changes WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
    let Some(r) = row else {
        return Ok(Err(ApiError::InvalidCode));
    };
    let (value, salt, stored, expires_at, attempts): (String, String, String, i64, i64) =
        (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
    let Some(field) = ContactField::parse(r.get(0)) else {
        return Ok(Err(ApiError::InvalidCode));
    };
    if attempts >= i64::from(max_attempts) {
        return Ok(Err(ApiError::TooManyAttempts));
    }
    if expires_at <= now {
        return Ok(Err(ApiError::CodeExpired));
    }
    let given = code_hash(&salt, code.trim());
    if !bool::from(given.as_bytes().ct_eq(stored.as_bytes())) {
        client.execute("UPDATE contact_changes SET attempts = attempts + 1 WHERE user_id = $1", &[&user_id]).await?;
        return Ok(Err(ApiError::InvalidCode));
    }
    client.execute("DELETE FROM contact_changes WHERE user_id = $1", &[&user_id]).await?;
    if address_taken(client, field, &value, user_id).await? {
        return Ok(Err(ApiError::InvalidCode));
    }
    let (select, update) = match field {
        ContactField::Email => {
            ("SELECT email FROM users WHERE id = $1", "UPDATE users SET email = $1, updated_at = $2 WHERE id = $3")
        }
        ContactField::Phone => {
            ("SELECT phone FROM users WHERE id = $1", "UPDATE users SET phone = $1, updated_at = $2 WHERE id = $3")
        }
    };
    let old: Option<String> = client.query_one(select, &[&user_id]).await?.get(0);
    // A failed statement would abort the whole transaction and with it the used-up code's
    // deletion; the savepoint keeps that, as SQLite does.
    client.batch_execute("SAVEPOINT apply_contact").await?;
    match client.execute(update, &[&value, &now, &user_id]).await {
        Ok(_) => client.batch_execute("RELEASE SAVEPOINT apply_contact").await?,
        // Another account took the address between the check and now (another instance
        // confirming it for them at the same moment).
        Err(e) if crate::pg::is_unique_violation(&e) => {
            client.batch_execute("ROLLBACK TO SAVEPOINT apply_contact").await?;
            return Ok(Err(ApiError::InvalidCode));
        }
        Err(e) => return Err(e.into()),
    }
    // The old address is no longer this person's way in; nothing keyed by it need stay.
    if let Some(old) = old {
        forget_identifier(client, &field.identifier(&old)).await?;
    }
    tracing::info!(field = field.as_str(), "contact change confirmed");
    Ok(Ok(()))
}

/// A new or removed picture moves the profile's `updated_at` like any other profile edit.
async fn picture_changed(client: &impl GenericClient, user_id: &str, now: i64) -> Result<(), tokio_postgres::Error> {
    client.execute("UPDATE users SET updated_at = $1 WHERE id = $2", &[&now, &user_id]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::store_tests::Fixture;

    /// A fresh database with the fixture the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        let other_instance = Box::new(PgProfileStore::new(crate::pg::test_support::another_instance(&pool).await));
        pool.get()
            .await
            .unwrap()
            .batch_execute(
                "INSERT INTO sites (id, name, address) VALUES ('site-1', 'Site', '');
                 INSERT INTO units (id, site_id, name, kind) VALUES ('unit-1', 'site-1', 'Apartment 4B', 'apartment');
                 INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at) VALUES
                     ('ann', 'Ann', 'ann@example.com', '+4790000001', 'unit-1', 1, 1),
                     ('bob', 'Bob', 'bob@example.com', NULL, NULL, 1, 1);",
            )
            .await
            .unwrap();
        Fixture { store: Box::new(PgProfileStore::new(pool)), other_instance, _dir: Box::new(()), now: 1_750_000_000 }
    }

    crate::profile_store_tests!(get_store);
}
