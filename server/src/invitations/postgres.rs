//! PostgreSQL (feature `postgres`): revoking what a tenant issued, for account deletion. The
//! `InvitationStore` backend itself is not on PostgreSQL yet.

use tokio_postgres::GenericClient;

use crate::error::ApiError;

/// What revoking one guest access needs to know of it.
struct GuestAccess {
    id: String,
    user_id: String,
    site_id: String,
    doors: Vec<u32>,
    /// A resident who accepted (keeps the account), not a guest principal.
    has_account: bool,
}

/// Revokes one guest access, as the SQLite backend's `revoke_guest_access`: a guest principal
/// is deleted with everything it holds; an account loses the invited doors, and the
/// credentials that carried them are revoked. Run it in a transaction.
async fn revoke_guest_access(client: &impl GenericClient, guest: &GuestAccess, now: i64) -> Result<(), ApiError> {
    if !guest.has_account {
        return Box::pin(crate::privacy::postgres::delete_account(client, &guest.user_id, now)).await;
    }
    let credentials = client
        .query(
            "SELECT id, not_after, doors FROM credentials WHERE user_id = $1 AND site_id = $2 AND not_after >= $3",
            &[&guest.user_id, &guest.site_id, &now],
        )
        .await?;
    for row in credentials {
        let (id, not_after, doors): (Vec<u8>, i64, Option<String>) = (row.get(0), row.get(1), row.get(2));
        let doors: Vec<u32> = doors.as_deref().map(serde_json::from_str).transpose().ok().flatten().unwrap_or_default();
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else { continue };
        if doors.iter().any(|d| guest.doors.contains(d)) {
            crate::authority::postgres::revoke_credential(client, &guest.site_id, &id, not_after, now).await?;
        }
    }
    client.execute("DELETE FROM guest_accesses WHERE id = $1", &[&guest.id]).await?;
    Ok(())
}

/// Everything `tenant_id` issued goes: their invitations, and every guest who accepted one.
/// Part of deleting the tenant's account.
pub(crate) async fn revoke_everything_issued_by(
    client: &impl GenericClient,
    tenant_id: &str,
    now: i64,
) -> Result<(), ApiError> {
    let rows = client
        .query(
            "SELECT g.id, g.user_id, g.site_id, g.doors, u.kind = 'resident' FROM guest_accesses g
             JOIN users u ON u.id = g.user_id WHERE g.tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    for row in rows {
        let doors: String = row.get(3);
        let guest = GuestAccess {
            id: row.get(0),
            user_id: row.get(1),
            site_id: row.get(2),
            doors: serde_json::from_str(&doors).map_err(|e| ApiError::Internal(format!("json: {e}")))?,
            has_account: row.get(4),
        };
        revoke_guest_access(client, &guest, now).await?;
    }
    client.execute("DELETE FROM invitations WHERE tenant_id = $1", &[&tenant_id]).await?;
    Ok(())
}
