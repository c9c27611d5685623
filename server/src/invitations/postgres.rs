//! The PostgreSQL backend of [`InvitationStore`] (feature `postgres`): the same tables and
//! semantics as [`super::sqlite`], and revoking what a tenant issued, for account deletion.
//!
//! An acceptance locks the invitation's row, so its uses are taken one at a time whichever
//! instance each acceptance reaches, and a repeated acceptance is recognised after the lock.
//! A tenant's creations take turns under an advisory lock on the tenant, so the caps count
//! every creation before them; the purge runs on one instance at a time.

use async_trait::async_trait;
use tokio_postgres::{GenericClient, Row};

use super::store::{
    AcceptOutcome, Acceptor, GuestRecord, Insert, InvitationRecord, InvitationStore, Purged, SiteSettings, TenantCaps,
    TenantGrant,
};
use crate::doors::postgres::{site_for_user, site_time};
use crate::doors::Schedule;
use crate::error::ApiError;
use crate::pg::PgPool;
use crate::site_time::SiteTime;

const TOKEN_KEY_NAME: &str = "invitation_token_key";
/// The `rate_events` bucket of token lookups per client address.
const LOOKUP_BUCKET: &str = "invitation_ip";

const INVITATION_COLUMNS: &str = "id, site_id, tenant_id, label, doors, not_before, not_after, schedule_json,
     uses, uses_left, created_at, revoked_at";

const GUEST_COLUMNS: &str = "g.id, g.invitation_id, g.tenant_id, g.user_id, g.site_id, g.label, g.doors,
     g.not_before, g.not_after, g.schedule_json, g.accepted_at, u.kind = 'resident'";

fn json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("json: {e}")))
}

fn parse_doors(text: &str) -> Result<Vec<u32>, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Internal(format!("stored doors: {e}")))
}

fn parse_schedule(text: Option<String>) -> Result<Option<Schedule>, ApiError> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| ApiError::Internal(format!("stored schedule: {e}")))).transpose()
}

fn count(stored: i64) -> Result<u32, ApiError> {
    u32::try_from(stored).map_err(|_| ApiError::Internal("count out of range".into()))
}

fn invitation(r: &Row) -> Result<InvitationRecord, ApiError> {
    Ok(InvitationRecord {
        id: r.get(0),
        site_id: r.get(1),
        tenant_id: r.get(2),
        label: r.get(3),
        doors: parse_doors(r.get(4))?,
        not_before: r.get(5),
        not_after: r.get(6),
        schedule: parse_schedule(r.get(7))?,
        uses: count(r.get(8))?,
        uses_left: count(r.get(9))?,
        created_at: r.get(10),
        revoked_at: r.get(11),
    })
}

fn guest(r: &Row) -> Result<GuestRecord, ApiError> {
    Ok(GuestRecord {
        id: r.get(0),
        invitation_id: r.get(1),
        tenant_id: r.get(2),
        user_id: r.get(3),
        site_id: r.get(4),
        label: r.get(5),
        doors: parse_doors(r.get(6))?,
        not_before: r.get(7),
        not_after: r.get(8),
        schedule: parse_schedule(r.get(9))?,
        accepted_at: r.get(10),
        has_account: r.get(11),
    })
}

async fn guests_where(
    client: &impl GenericClient,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<GuestRecord>, ApiError> {
    let rows = client
        .query(
            &format!("SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id WHERE {filter}"),
            params,
        )
        .await?;
    rows.iter().map(guest).collect()
}

async fn find_guest(client: &impl GenericClient, filter: &str, param: &str) -> Result<Option<GuestRecord>, ApiError> {
    Ok(guests_where(client, filter, &[&param]).await?.into_iter().next())
}

fn access(g: &GuestRecord) -> GuestAccess {
    GuestAccess {
        id: g.id.clone(),
        user_id: g.user_id.clone(),
        site_id: g.site_id.clone(),
        doors: g.doors.clone(),
        has_account: g.has_account,
    }
}

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

/// For "my data": what `user_id` sent (invitations and their guests), and the guest access
/// it holds if it is a guest principal, as the SQLite backend's `data_of`.
pub(crate) async fn data_of(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<(serde_json::Value, Option<serde_json::Value>), ApiError> {
    use serde_json::json;
    let schedule = |s: &Option<Schedule>| serde_json::to_value(s).unwrap_or_default();
    let mut sent = Vec::new();
    let invitations = client
        .query(
            &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE tenant_id = $1 ORDER BY created_at, id"),
            &[&user_id],
        )
        .await?;
    for row in &invitations {
        let inv = invitation(row)?;
        sent.push(json!({
            "invitation_id": inv.id, "label": inv.label, "doors": inv.doors, "not_before": inv.not_before,
            "not_after": inv.not_after, "schedule": schedule(&inv.schedule), "uses": inv.uses,
            "uses_left": inv.uses_left, "created_at": inv.created_at, "revoked": inv.revoked_at.is_some(),
        }));
    }
    let guests =
        guests_where(client, "g.tenant_id = $1 OR g.user_id = $1 ORDER BY g.accepted_at, g.id", &[&user_id]).await?;
    for g in guests.iter().filter(|g| g.tenant_id == user_id) {
        sent.push(json!({
            "guest_id": g.id, "invitation_id": g.invitation_id, "label": g.label, "doors": g.doors,
            "not_before": g.not_before, "not_after": g.not_after, "schedule": schedule(&g.schedule),
            "accepted_at": g.accepted_at, "has_account": g.has_account,
        }));
    }
    let held: Vec<serde_json::Value> = guests
        .iter()
        .filter(|g| g.user_id == user_id)
        .map(|g| {
            json!({
                "guest_id": g.id, "doors": g.doors, "not_before": g.not_before, "not_after": g.not_after,
                "schedule": schedule(&g.schedule), "accepted_at": g.accepted_at, "ends_at": g.not_after,
            })
        })
        .collect();
    Ok((serde_json::Value::Array(sent), (!held.is_empty()).then_some(serde_json::Value::Array(held))))
}

/// The session of a guest principal (it has exactly one).
async fn guest_session(client: &impl GenericClient, user_id: &str) -> Result<Option<String>, ApiError> {
    Ok(client
        .query_opt("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id])
        .await?
        .map(|r| r.get(0)))
}

async fn accept_in(
    client: &impl GenericClient,
    token_hash: &str,
    accept_tag: &str,
    acceptor: Acceptor,
    now: i64,
) -> Result<AcceptOutcome, ApiError> {
    // Locked first: a second acceptance of the same token waits here, then sees the first.
    let row = client
        .query_opt(
            &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1 FOR UPDATE"),
            &[&token_hash],
        )
        .await?;
    if let Some(guest) = find_guest(client, "g.accept_tag = $1", accept_tag).await? {
        if guest.not_after >= now {
            let session_id = if guest.has_account { None } else { guest_session(client, &guest.user_id).await? };
            return Ok(AcceptOutcome::Accepted { guest, session_id, repeated: true });
        }
    }
    let Some(row) = row else {
        return Ok(AcceptOutcome::Gone);
    };
    let inv = invitation(&row)?;
    if inv.revoked_at.is_some() {
        return Ok(AcceptOutcome::Revoked);
    }
    if inv.not_after < now {
        return Ok(AcceptOutcome::Expired);
    }
    if inv.uses_left == 0 {
        return Ok(AcceptOutcome::Gone);
    }
    let (user_id, session_id) = match &acceptor {
        // Their own doors already: a guest access over them would only confuse revocation.
        Acceptor::Account { user_id } if *user_id == inv.tenant_id => return Err(ApiError::OwnInvitation),
        Acceptor::Account { user_id } => (user_id.clone(), None),
        Acceptor::NewGuest { device_key, device_name, ip } => {
            let taken = client
                .query_opt("SELECT 1 FROM device_keys WHERE public_key = $1", &[&device_key.as_slice()])
                .await?
                .is_some();
            if taken {
                return Err(ApiError::KeyInUse);
            }
            let user_id = uuid::Uuid::new_v4().to_string();
            let session_id = uuid::Uuid::new_v4().to_string();
            client
                .execute(
                    "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at, kind, expires_at)
                     VALUES ($1, '', NULL, NULL, NULL, $2, $2, 'guest', $3)",
                    &[&user_id, &now, &inv.not_after],
                )
                .await?;
            client
                .execute(
                    "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    &[&session_id, &user_id, device_name, ip, &now],
                )
                .await?;
            let inserted = client
                .execute(
                    "INSERT INTO device_keys (session_id, user_id, public_key, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&session_id, &user_id, &device_key.as_slice(), &now],
                )
                .await?;
            if inserted == 0 {
                return Err(ApiError::KeyInUse);
            }
            (user_id, Some(session_id))
        }
    };
    let guest_id = uuid::Uuid::new_v4().to_string();
    let schedule = inv.schedule.as_ref().map(json).transpose()?;
    client
        .execute(
            "INSERT INTO guest_accesses (id, invitation_id, tenant_id, user_id, site_id, label, doors, not_before,
                                         not_after, schedule_json, accept_tag, accepted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &guest_id,
                &inv.id,
                &inv.tenant_id,
                &user_id,
                &inv.site_id,
                &inv.label,
                &json(&inv.doors)?,
                &inv.not_before,
                &inv.not_after,
                &schedule,
                &accept_tag,
                &now,
            ],
        )
        .await?;
    for door in &inv.doors {
        client
            .execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json,
                                          created_at, guest_access_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &uuid::Uuid::new_v4().to_string(),
                    &user_id,
                    &i64::from(*door),
                    &inv.not_before,
                    &inv.not_after,
                    &schedule,
                    &now,
                    &guest_id,
                ],
            )
            .await?;
    }
    if inv.uses_left <= 1 {
        // The last use: the token hash must not outlive it.
        client.execute("DELETE FROM invitations WHERE id = $1", &[&inv.id]).await?;
    } else {
        client.execute("UPDATE invitations SET uses_left = uses_left - 1 WHERE id = $1", &[&inv.id]).await?;
    }
    let guest = find_guest(client, "g.id = $1", &guest_id)
        .await?
        .ok_or_else(|| ApiError::Internal("guest row vanished".into()))?;
    Ok(AcceptOutcome::Accepted { guest, session_id, repeated: false })
}

/// Whether `inv` would take its tenant past `caps` (see [`InvitationStore::insert`]), read
/// inside the inserting transaction, after its lock.
async fn over_caps(
    client: &impl GenericClient,
    inv: &InvitationRecord,
    caps: TenantCaps,
) -> Result<Option<Insert>, ApiError> {
    let (tenant_id, now) = (&inv.tenant_id, inv.created_at);
    // Counted apart from the invitations: a used-up one leaves no row behind.
    let row = client
        .query_one(
            "SELECT COUNT(*) FROM invitation_events WHERE tenant_id = $1 AND at > $2",
            &[tenant_id, &(now - 86400)],
        )
        .await?;
    if count(row.get(0))? >= caps.per_day {
        return Ok(Some(Insert::DailyCapReached));
    }
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(SUM(uses_left), 0)::BIGINT FROM invitations
                     WHERE tenant_id = $1 AND revoked_at IS NULL AND not_after >= $2)
                  + (SELECT COUNT(*) FROM guest_accesses WHERE tenant_id = $1 AND not_after >= $2)",
            &[tenant_id, &now],
        )
        .await?;
    Ok((count(row.get(0))? + inv.uses > caps.guests).then_some(Insert::GuestCapReached))
}

pub struct PgInvitationStore {
    pool: PgPool,
}

impl PgInvitationStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl InvitationStore for PgInvitationStore {
    async fn token_key(&self) -> Result<[u8; 32], ApiError> {
        let client = self.pool.get().await?;
        crate::pg::server_secret(&client, TOKEN_KEY_NAME).await
    }

    async fn site_for(&self, user_id: &str) -> Result<Option<SiteSettings>, ApiError> {
        let client = self.pool.get().await?;
        let (site_id, site_name) = match site_for_user(&*client, user_id).await {
            Ok(site) => site,
            Err(ApiError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let row = client
            .query_one("SELECT max_invitation_days, tenants_may_invite FROM sites WHERE id = $1", &[&site_id])
            .await?;
        let (max_invitation_days, tenants_may_invite): (i64, i64) = (row.get(0), row.get(1));
        let time = site_time(&*client, &site_id).await?;
        Ok(Some(SiteSettings {
            site_id,
            site_name,
            time,
            max_invitation_days,
            tenants_may_invite: tenants_may_invite != 0,
        }))
    }

    async fn is_guest(&self, user_id: &str) -> Result<bool, ApiError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_opt("SELECT kind = 'guest' FROM users WHERE id = $1", &[&user_id])
            .await?
            .is_some_and(|r| r.get(0)))
    }

    async fn tenant_grants(&self, user_id: &str, site_id: &str) -> Result<Vec<TenantGrant>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT g.door_number, g.not_before, g.not_after, g.schedule_json IS NOT NULL
                 FROM door_grants g JOIN doors d ON d.number = g.door_number
                 WHERE g.user_id = $1 AND d.site_id = $2 AND g.guest_access_id IS NULL",
                &[&user_id, &site_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TenantGrant {
                    door_number: count(r.get(0))?,
                    not_before: r.get(1),
                    not_after: r.get(2),
                    scheduled: r.get(3),
                })
            })
            .collect()
    }

    async fn site(&self, site_id: &str) -> Result<(String, SiteTime), ApiError> {
        let client = self.pool.get().await?;
        let name: String = client.query_one("SELECT name FROM sites WHERE id = $1", &[&site_id]).await?.get(0);
        Ok((name, site_time(&*client, site_id).await?))
    }

    async fn take_lookup_slot(&self, ip_key: &str, now: i64, limit: u32, window: i64) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        crate::pg::take_rate_slot(&tx, LOOKUP_BUCKET, ip_key, limit, now, window).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_lookup_slot(&self, ip_key: &str, at: i64) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM rate_events WHERE ctid = (SELECT ctid FROM rate_events
                     WHERE bucket = $1 AND key = $2 AND at = $3 LIMIT 1)",
                &[&LOOKUP_BUCKET, &ip_key, &at],
            )
            .await?;
        Ok(())
    }

    async fn door_names(&self, site_id: &str, doors: &[u32]) -> Result<Vec<(u32, String)>, ApiError> {
        let client = self.pool.get().await?;
        let stmt = client.prepare("SELECT name FROM doors WHERE site_id = $1 AND number = $2").await?;
        let mut out = Vec::with_capacity(doors.len());
        for &door in doors {
            if let Some(row) = client.query_opt(&stmt, &[&site_id, &i64::from(door)]).await? {
                out.push((door, row.get(0)));
            }
        }
        Ok(out)
    }

    async fn insert(&self, inv: &InvitationRecord, token_hash: &str, caps: TenantCaps) -> Result<Insert, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Creations by one tenant take turns from here to the commit, whichever instance
        // each reached, so each counts the ones before it.
        crate::pg::lock_key(&tx, "invitation_caps", &inv.tenant_id).await?;
        if let Some(refused) = over_caps(&tx, inv, caps).await? {
            return Ok(refused);
        }
        tx.execute(
            &format!(
                "INSERT INTO invitations ({INVITATION_COLUMNS}, token_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            &[
                &inv.id,
                &inv.site_id,
                &inv.tenant_id,
                &inv.label,
                &json(&inv.doors)?,
                &inv.not_before,
                &inv.not_after,
                &inv.schedule.as_ref().map(json).transpose()?,
                &i64::from(inv.uses),
                &i64::from(inv.uses_left),
                &inv.created_at,
                &inv.revoked_at,
                &token_hash,
            ],
        )
        .await?;
        tx.execute("INSERT INTO invitation_events (tenant_id, at) VALUES ($1, $2)", &[&inv.tenant_id, &inv.created_at])
            .await?;
        tx.commit().await?;
        Ok(Insert::Inserted)
    }

    async fn find(&self, token_hash: &str) -> Result<Option<InvitationRecord>, ApiError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1"), &[&token_hash])
            .await?;
        row.as_ref().map(invitation).transpose()
    }

    async fn list(&self, tenant_id: &str) -> Result<(Vec<InvitationRecord>, Vec<GuestRecord>), ApiError> {
        let client = self.pool.get().await?;
        let invitations = client
            .query(
                &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE tenant_id = $1 ORDER BY created_at, id"),
                &[&tenant_id],
            )
            .await?
            .iter()
            .map(invitation)
            .collect::<Result<Vec<_>, _>>()?;
        let guests = guests_where(&*client, "g.tenant_id = $1 ORDER BY g.accepted_at, g.id", &[&tenant_id]).await?;
        Ok((invitations, guests))
    }

    async fn guest_access_of(&self, user_id: &str) -> Result<Option<GuestRecord>, ApiError> {
        let client = self.pool.get().await?;
        find_guest(&*client, "g.user_id = $1 AND u.kind = 'guest'", user_id).await
    }

    async fn accept(
        &self,
        token_hash: &str,
        accept_tag: &str,
        acceptor: Acceptor,
        now: i64,
    ) -> Result<AcceptOutcome, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let outcome = accept_in(&tx, token_hash, accept_tag, acceptor, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn revoke_invitation(&self, tenant_id: &str, invitation_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Kept (revoked) until its window ends, so the link can say it was revoked.
        let invitation = tx
            .execute(
                "UPDATE invitations SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND tenant_id = $3",
                &[&now, &invitation_id, &tenant_id],
            )
            .await?;
        let guests = guests_where(
            &tx,
            "g.invitation_id = $1 AND g.tenant_id = $2 FOR UPDATE OF g",
            &[&invitation_id, &tenant_id],
        )
        .await?;
        for g in &guests {
            revoke_guest_access(&tx, &access(g), now).await?;
        }
        tx.commit().await?;
        Ok(invitation > 0 || !guests.is_empty())
    }

    async fn revoke_guest(&self, tenant_id: &str, guest_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Locked: a second revocation (or the purge) on another instance waits, then finds it gone.
        let Some(g) =
            find_guest(&tx, "g.id = $1 FOR UPDATE OF g", guest_id).await?.filter(|g| g.tenant_id == tenant_id)
        else {
            return Ok(false);
        };
        revoke_guest_access(&tx, &access(&g), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn purge(&self, now: i64) -> Result<Purged, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Every instance runs the purge: one at a time does the work, the others skip it, so
        // each ended guest is revoked (and its log rows anonymised) once.
        if !crate::pg::try_lock_job(&tx, "invitations_purge").await? {
            return Ok(Purged::default());
        }
        let invitations = tx.execute("DELETE FROM invitations WHERE not_after < $1", &[&now]).await?;
        tx.execute("DELETE FROM rate_events WHERE bucket = $1 AND at < $2::BIGINT - 86400", &[&LOOKUP_BUCKET, &now])
            .await?;
        tx.execute("DELETE FROM invitation_events WHERE at < $1::BIGINT - 86400", &[&now]).await?;
        // Locked too: a tenant revoking one of them at the same moment waits, then finds it gone.
        let ended = guests_where(&tx, "g.not_after < $1 FOR UPDATE OF g", &[&now]).await?;
        for g in &ended {
            revoke_guest_access(&tx, &access(g), now).await?;
        }
        // A guest principal whose access went some other way still ends with its window.
        let orphans: Vec<String> = tx
            .query("SELECT id FROM users WHERE kind = 'guest' AND expires_at < $1 FOR UPDATE", &[&now])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for user_id in &orphans {
            crate::privacy::postgres::delete_account(&tx, user_id, now).await?;
        }
        tx.commit().await?;
        Ok(Purged {
            invitations: usize::try_from(invitations).unwrap_or(usize::MAX),
            guests: ended.len() + orphans.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invitations::store_tests::Fixture;

    /// A fresh database with the demo site as the SQLite backend's tests seed it: Ada (tenant,
    /// doors 1-3), Bob (another tenant, door 1) and Cy (a resident who may accept).
    async fn get_store() -> Fixture {
        seeded().await.0
    }

    /// [`get_store`]'s fixture, and its database's pool for a second instance.
    async fn seeded() -> (Fixture, PgPool) {
        let pool = crate::pg::test_support::fresh_database().await;
        let now: i64 = 1_800_000_000;
        let site_id = crate::DEMO_SITE_ID.to_owned();
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO sites (id, name, address, utc_offset_minutes, dst_rule) VALUES ($1, 'Demo Building', 'Storgata 1', 60, 'eu')",
            &[&site_id],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO units (id, site_id, name, kind) VALUES ('unit-4b', $1, 'Apartment 4B', 'apartment')",
            &[&site_id],
        )
        .await
        .unwrap();
        for (number, name, retention) in [(1i64, "Main entrance", 30i64), (2, "Bike room", 90), (3, "Roof terrace", 7)]
        {
            tx.execute(
                "INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ($1, $2, $3, $4, $5)",
                &[&format!("door-{number}"), &site_id, &name, &number, &retention],
            )
            .await
            .unwrap();
        }
        let mut ids = Vec::new();
        for (email, name, unit) in [
            (crate::DEMO_RESIDENT_EMAIL, "Ada Lovelace", Some("unit-4b")),
            ("bob@example.com", "", None),
            ("cy@example.com", "", None),
        ] {
            let id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO users (id, name, email, unit_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
                &[&id, &name, &email, &unit, &now],
            )
            .await
            .unwrap();
            ids.push(id);
        }
        for (user, door) in [(&ids[0], 1i64), (&ids[0], 2), (&ids[0], 3), (&ids[1], 1)] {
            tx.execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
                 VALUES ($1, $2, $3, 0, $4, 0)",
                &[&uuid::Uuid::new_v4().to_string(), user, &door, &crate::demo::FOREVER],
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        drop(client);
        let fixture = Fixture {
            store: Box::new(PgInvitationStore::new(pool.clone())),
            _dir: Box::new(()),
            site_id,
            tenant: ids[0].clone(),
            other_tenant: ids[1].clone(),
            resident: ids[2].clone(),
            now,
        };
        (fixture, pool)
    }

    /// `attempts` creations by one tenant at once, alternating between two instances, each
    /// with one use; what each got.
    async fn create_at_once(attempts: usize, caps: TenantCaps) -> (Fixture, Vec<Insert>) {
        let (f, pool) = seeded().await;
        let instances: [std::sync::Arc<dyn InvitationStore>; 2] = [
            std::sync::Arc::new(PgInvitationStore::new(pool.clone())),
            std::sync::Arc::new(PgInvitationStore::new(crate::pg::test_support::another_instance(&pool).await)),
        ];
        let creations: Vec<_> = (0..attempts)
            .map(|n| {
                let store = instances[n % 2].clone();
                let invitation = f.invitation(&format!("inv-{n}"), 1);
                tokio::spawn(async move { store.insert(&invitation, &format!("hash-{n}"), caps).await.unwrap() })
            })
            .collect();
        let mut outcomes = Vec::new();
        for creation in creations {
            outcomes.push(creation.await.unwrap());
        }
        (f, outcomes)
    }

    /// Thirty invitations created at once through two instances: exactly the daily cap of
    /// them is stored, however the creations interleave.
    #[tokio::test]
    async fn creations_at_once_through_two_instances_get_exactly_the_daily_cap() {
        let (f, outcomes) = create_at_once(30, TenantCaps { per_day: 20, guests: 1000 }).await;
        let inserted = outcomes.iter().filter(|o| **o == Insert::Inserted).count();
        assert_eq!(inserted, 20, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Insert::Inserted | Insert::DailyCapReached)));
        assert_eq!(f.store.list(&f.tenant).await.unwrap().0.len(), 20);
    }

    /// The same for the cap on guests and open uses.
    #[tokio::test]
    async fn creations_at_once_through_two_instances_get_exactly_the_guest_cap() {
        let (f, outcomes) = create_at_once(30, TenantCaps { per_day: 1000, guests: 12 }).await;
        let inserted = outcomes.iter().filter(|o| **o == Insert::Inserted).count();
        assert_eq!(inserted, 12, "{outcomes:?}");
        assert!(outcomes.iter().all(|o| matches!(o, Insert::Inserted | Insert::GuestCapReached)));
        assert_eq!(f.store.list(&f.tenant).await.unwrap().0.len(), 12);
    }

    /// Unknown tokens looked up at once from one address, through two instances, are checked
    /// at most the limit's number of times; the rest are refused before being checked.
    #[tokio::test]
    async fn lookups_at_once_through_two_instances_take_exactly_the_limit() {
        let (f, pool) = seeded().await;
        let instances: [std::sync::Arc<dyn InvitationStore>; 2] = [
            std::sync::Arc::new(PgInvitationStore::new(pool.clone())),
            std::sync::Arc::new(PgInvitationStore::new(crate::pg::test_support::another_instance(&pool).await)),
        ];
        let now = f.now;
        let takers: Vec<_> = (0..24)
            .map(|n| {
                let store = instances[n % 2].clone();
                tokio::spawn(async move { store.take_lookup_slot("ip-1", now, 10, 600).await })
            })
            .collect();
        let mut taken = 0;
        for taker in takers {
            match taker.await.unwrap() {
                Ok(()) => taken += 1,
                Err(e) => assert_eq!(e.code(), "rate_limited"),
            }
        }
        assert_eq!(taken, 10);
        // A lookup that found a token of ours gives its slot back.
        instances[1].release_lookup_slot("ip-1", f.now).await.unwrap();
        instances[0].take_lookup_slot("ip-1", f.now + 1, 10, 600).await.unwrap();
        assert!(instances[0].take_lookup_slot("ip-1", f.now + 1, 10, 600).await.is_err());
    }

    crate::invitation_store_tests!(get_store);

    /// The last use of an invitation, taken by two people at the same moment (through two
    /// connections, as through two instances): one gets it, the other finds it gone.
    #[tokio::test]
    async fn the_last_use_taken_twice_at_once_goes_to_one() {
        let f = get_store().await;
        f.insert(&f.invitation("inv-1", 1), "hash-1").await;
        let store: std::sync::Arc<dyn InvitationStore> = f.store.into();
        let takers = [("tag-bob", f.other_tenant.clone()), ("tag-cy", f.resident.clone())].map(|(tag, user_id)| {
            let store = store.clone();
            tokio::spawn(
                async move { store.accept("hash-1", tag, Acceptor::Account { user_id }, f.now).await.unwrap() },
            )
        });
        let mut accepted = 0;
        for taker in takers {
            match taker.await.unwrap() {
                AcceptOutcome::Accepted { repeated: false, .. } => accepted += 1,
                AcceptOutcome::Gone => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(accepted, 1);
        assert_eq!(store.list(&f.tenant).await.unwrap().1.len(), 1, "one guest access");
    }
}
