//! PostgreSQL (feature `postgres`): the account, code-limit and identifier helpers other
//! PostgreSQL stores run inside their own transactions. The `AuthStore` backend itself is not on PostgreSQL yet.

use std::net::IpAddr;

use tokio_postgres::GenericClient;

use super::store::CodeLimits;
use super::{code_key, identifier_key, sha256_hex, CodePurpose};
use crate::error::ApiError;
use crate::identity::Identifier;

/// The account whose email or phone is `identifier`.
pub(crate) async fn find_user(
    client: &impl GenericClient,
    identifier: &Identifier,
) -> Result<Option<String>, tokio_postgres::Error> {
    let sql = match identifier {
        Identifier::Email(_) => "SELECT id FROM users WHERE email = $1",
        Identifier::Phone(_) => "SELECT id FROM users WHERE phone = $1",
    };
    Ok(client.query_opt(sql, &[&identifier.as_str()]).await?.map(|r| r.get(0)))
}

/// The account of `identifier`, created (with a random id) if there is none. Two instances
/// creating it at once make one: the unique address decides, and both read back its row.
pub(crate) async fn find_or_create_user(
    client: &impl GenericClient,
    identifier: &Identifier,
    now: i64,
) -> Result<String, ApiError> {
    if let Some(id) = find_user(client, identifier).await? {
        return Ok(id);
    }
    let (email, phone) = match identifier {
        Identifier::Email(e) => (Some(e.as_str()), None),
        Identifier::Phone(p) => (None, Some(p.as_str())),
    };
    // Random, so the id reveals nothing about the person.
    let id = uuid::Uuid::new_v4().to_string();
    let created = client
        .execute(
            "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at)
             VALUES ($1, '', $2, $3, NULL, $4, $4) ON CONFLICT DO NOTHING",
            &[&id, &email, &phone, &now],
        )
        .await?;
    if created == 1 {
        tracing::info!(user_id = %id, "created account");
        return Ok(id);
    }
    find_user(client, identifier).await?.ok_or_else(|| ApiError::Internal("account neither found nor created".into()))
}

/// Seconds to wait if `key` already used up `limit` events in the window, else `None`.
async fn rate_wait(
    client: &impl GenericClient,
    bucket: &str,
    key: &str,
    limit: u32,
    now: i64,
    window: i64,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT COUNT(*), MIN(at) FROM rate_events WHERE bucket = $1 AND key = $2 AND at > $3",
            &[&bucket, &key, &(now - window)],
        )
        .await?;
    let (count, oldest): (i64, Option<i64>) = (row.get(0), row.get(1));
    Ok(match oldest {
        Some(oldest) if count >= i64::from(limit) => Some((oldest + window - now).max(1)),
        None if limit == 0 => Some(window.max(1)),
        _ => None,
    })
}

/// Applies the per-identifier and per-IP limits on sending codes and, within them, counts this
/// request, as the SQLite backend's `count_code_request`. Advisory locks on both keys (always
/// the identifier's first, so two requests never wait on each other in a circle) make
/// requests reaching several instances at once count one after another. Run it in a
/// transaction.
pub(crate) async fn count_code_request(
    client: &impl GenericClient,
    identifier: &Identifier,
    ip: IpAddr,
    now: i64,
    limits: CodeLimits,
) -> Result<Result<(), ApiError>, tokio_postgres::Error> {
    let id_key = identifier_key(identifier);
    let ip_key = sha256_hex(format!("ip:{ip}"));
    let window = limits.window_s;
    for (bucket, key) in [("code_identifier", &id_key), ("code_ip", &ip_key)] {
        client.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))", &[&bucket, key]).await?;
    }
    client.execute("DELETE FROM rate_events WHERE at <= $1", &[&(now - window)]).await?;
    let waits = [
        rate_wait(client, "code_identifier", &id_key, limits.per_identifier, now, window).await?,
        rate_wait(client, "code_ip", &ip_key, limits.per_ip, now, window).await?,
    ];
    if let Some(retry_after_s) = waits.into_iter().flatten().max() {
        tracing::info!("code request rate limited");
        return Ok(Err(ApiError::RateLimited { retry_after_s }));
    }
    for (bucket, key) in [("code_identifier", &id_key), ("code_ip", &ip_key)] {
        client.execute("INSERT INTO rate_events (bucket, key, at) VALUES ($1, $2, $3)", &[&bucket, key, &now]).await?;
    }
    Ok(Ok(()))
}

/// Drops what is kept under hashes of `identifier`: its pending codes of every purpose and
/// its code-request rate events.
pub(crate) async fn forget_identifier(
    client: &impl GenericClient,
    identifier: &Identifier,
) -> Result<(), tokio_postgres::Error> {
    for purpose in [CodePurpose::SignIn, CodePurpose::DeleteAccount] {
        client
            .execute("DELETE FROM one_time_codes WHERE identifier_hash = $1", &[&code_key(identifier, purpose)])
            .await?;
    }
    client
        .execute(
            "DELETE FROM rate_events WHERE bucket = 'code_identifier' AND key = $1",
            &[&identifier_key(identifier)],
        )
        .await?;
    Ok(())
}
