//! PostgreSQL (feature `postgres`): the account helpers other PostgreSQL stores run inside
//! their own transactions. The `AuthStore` backend itself is not on PostgreSQL yet.

use tokio_postgres::GenericClient;

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
