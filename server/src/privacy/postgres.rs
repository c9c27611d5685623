//! PostgreSQL (feature `postgres`): deleting an account, for the stores that end one (a
//! guest's end, account deletion). The `PrivacyStore` backend itself is not on PostgreSQL yet.

use tokio_postgres::GenericClient;

use crate::auth::postgres::forget_identifier;
use crate::devices::postgres::revoke_device;
use crate::error::ApiError;
use crate::identity::Identifier;

/// Deletes the account and what it holds, as the SQLite backend's `delete_account`: its
/// devices are revoked, what it issued is revoked, its access-log rows stay anonymised and
/// its security events under a pseudonym. Run it in a transaction.
pub(crate) async fn delete_account(client: &impl GenericClient, user_id: &str, now: i64) -> Result<(), ApiError> {
    let row = client.query_one("SELECT email, phone FROM users WHERE id = $1", &[&user_id]).await?;
    let (email, phone): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    let live = client.query("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id]).await?;
    for session in live {
        let session_id: String = session.get(0);
        revoke_device(client, &session_id, now).await?;
    }
    // What a tenant issued ends with them: invitations, and every guest who accepted one.
    crate::invitations::postgres::revoke_everything_issued_by(client, user_id, now).await?;
    // The security log keeps what happened, but no longer who.
    crate::security_log::postgres::forget_user(client, user_id).await?;
    client
        .execute(
            "UPDATE access_events SET user_id = NULL, credential_id = $2, record = ''::BYTEA
             WHERE user_id = $1 OR credential_id IN (SELECT id FROM credentials WHERE user_id = $1)",
            &[&user_id, &[0u8; 16].as_slice()],
        )
        .await?;
    // A pending new address counts too: codes were requested for it.
    let pending: Option<String> =
        client.query_opt("SELECT value FROM contact_changes WHERE user_id = $1", &[&user_id]).await?.map(|r| r.get(0));
    for raw in [email, phone, pending].into_iter().flatten() {
        if let Some(identifier) = Identifier::parse(&raw) {
            forget_identifier(client, &identifier).await?;
        }
    }
    for sql in [
        "DELETE FROM contact_changes WHERE user_id = $1",
        "DELETE FROM consent_events WHERE user_id = $1",
        "DELETE FROM pictures WHERE user_id = $1",
        "DELETE FROM credentials WHERE user_id = $1",
        "DELETE FROM device_keys WHERE user_id = $1",
        "DELETE FROM door_grants WHERE user_id = $1",
        "DELETE FROM access_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        client.execute(sql, &[&user_id]).await?;
    }
    Ok(())
}
