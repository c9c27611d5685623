//! The SQLite backend of [`InvitationStore`]. Tables: `invitations` (one row while a use is
//! left and the window has not ended), `guest_accesses` (one per accepted use) and the
//! `door_grants` each acceptance adds (`guest_access_id`). Schema: migration 7 in `db.rs`.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::store::{
    AcceptOutcome, Acceptor, GuestRecord, Insert, InvitationRecord, InvitationStore, Purged, SiteSettings, TenantCaps,
    TenantGrant,
};
use crate::authority;
use crate::db::Db;
use crate::doors::Schedule;
use crate::error::ApiError;
use crate::site_time::{DstRule, SiteTime};

const TOKEN_KEY_NAME: &str = "invitation_token_key";
/// The `rate_events` bucket of token lookups per client address.
const LOOKUP_BUCKET: &str = "invitation_ip";

/// The site's local time (standard offset and daylight-saving rule).
pub(crate) fn site_time(conn: &Connection, site_id: &str) -> Result<SiteTime, ApiError> {
    let (offset, rule): (i16, String) =
        conn.query_row("SELECT utc_offset_minutes, dst_rule FROM sites WHERE id = ?1", [site_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let dst = DstRule::parse(&rule).ok_or_else(|| ApiError::Internal("unknown dst rule".into()))?;
    Ok(SiteTime { standard_offset_minutes: offset, dst })
}

/// Whether `inv` would take its tenant past `caps` (see [`InvitationStore::insert`]), read
/// inside the inserting transaction.
fn over_caps(conn: &Connection, inv: &InvitationRecord, caps: TenantCaps) -> rusqlite::Result<Option<Insert>> {
    let (tenant_id, now) = (&inv.tenant_id, inv.created_at);
    // Counted apart from the invitations: a used-up one leaves no row behind.
    let created: u32 = conn.query_row(
        "SELECT COUNT(*) FROM invitation_events WHERE tenant_id = ?1 AND at > ?2",
        params![tenant_id, now - 86400],
        |r| r.get(0),
    )?;
    if created >= caps.per_day {
        return Ok(Some(Insert::DailyCapReached));
    }
    let held: u32 = conn.query_row(
        "SELECT (SELECT COALESCE(SUM(uses_left), 0) FROM invitations
                 WHERE tenant_id = ?1 AND revoked_at IS NULL AND not_after >= ?2)
              + (SELECT COUNT(*) FROM guest_accesses WHERE tenant_id = ?1 AND not_after >= ?2)",
        params![tenant_id, now],
        |r| r.get(0),
    )?;
    Ok((held + inv.uses > caps.guests).then_some(Insert::GuestCapReached))
}

pub struct SqliteInvitationStore {
    db: Db,
}

impl SqliteInvitationStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("json: {e}")))
}

fn schedule_json(schedule: &Option<Schedule>) -> Result<Option<String>, ApiError> {
    schedule.as_ref().map(json).transpose()
}

fn parse_doors(text: &str) -> rusqlite::Result<Vec<u32>> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_schedule(text: Option<String>) -> rusqlite::Result<Option<Schedule>> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

const INVITATION_COLUMNS: &str = "id, site_id, tenant_id, label, doors, not_before, not_after, schedule_json,
     uses, uses_left, created_at, revoked_at";

fn invitation(r: &Row<'_>) -> rusqlite::Result<InvitationRecord> {
    Ok(InvitationRecord {
        id: r.get(0)?,
        site_id: r.get(1)?,
        tenant_id: r.get(2)?,
        label: r.get(3)?,
        doors: parse_doors(&r.get::<_, String>(4)?)?,
        not_before: r.get(5)?,
        not_after: r.get(6)?,
        schedule: parse_schedule(r.get(7)?)?,
        uses: r.get(8)?,
        uses_left: r.get(9)?,
        created_at: r.get(10)?,
        revoked_at: r.get(11)?,
    })
}

const GUEST_COLUMNS: &str = "g.id, g.invitation_id, g.tenant_id, g.user_id, g.site_id, g.label, g.doors,
     g.not_before, g.not_after, g.schedule_json, g.accepted_at, u.kind = 'resident'";

fn guest(r: &Row<'_>) -> rusqlite::Result<GuestRecord> {
    Ok(GuestRecord {
        id: r.get(0)?,
        invitation_id: r.get(1)?,
        tenant_id: r.get(2)?,
        user_id: r.get(3)?,
        site_id: r.get(4)?,
        label: r.get(5)?,
        doors: parse_doors(&r.get::<_, String>(6)?)?,
        not_before: r.get(7)?,
        not_after: r.get(8)?,
        schedule: parse_schedule(r.get(9)?)?,
        accepted_at: r.get(10)?,
        has_account: r.get(11)?,
    })
}

fn find_guest(conn: &Connection, sql_filter: &str, param: &str) -> rusqlite::Result<Option<GuestRecord>> {
    conn.query_row(
        &format!("SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id WHERE {sql_filter}"),
        [param],
        guest,
    )
    .optional()
}

/// Revokes one guest access inside `tx`. A guest principal is deleted with everything it
/// holds (its device key goes on the revocation list until its credentials expire; its log
/// rows stay, anonymised). An account loses the invited doors, and the credentials that
/// carried them are revoked.
pub(crate) fn revoke_guest_access(tx: &Transaction<'_>, guest: &GuestRecord, now: i64) -> rusqlite::Result<()> {
    if !guest.has_account {
        return crate::privacy::sqlite::delete_account(tx, &guest.user_id, now);
    }
    let credentials: Vec<(Vec<u8>, i64, Option<String>)> = {
        let mut stmt = tx.prepare(
            "SELECT id, not_after, doors FROM credentials WHERE user_id = ?1 AND site_id = ?2 AND not_after >= ?3",
        )?;
        let rows =
            stmt.query_map(params![guest.user_id, guest.site_id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, not_after, doors) in credentials {
        let doors: Vec<u32> = doors.as_deref().map(parse_doors).transpose()?.unwrap_or_default();
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else { continue };
        if doors.iter().any(|d| guest.doors.contains(d)) {
            authority::revoke_credential(tx, &guest.site_id, &id, not_after, now)?;
        }
    }
    tx.execute("DELETE FROM guest_accesses WHERE id = ?1", [&guest.id])?;
    Ok(())
}

/// Everything `tenant_id` issued goes: their invitations, and every guest who accepted one
/// (revoked as by [`revoke_guest_access`]). Part of deleting the tenant's account.
pub(crate) fn revoke_everything_issued_by(tx: &Transaction<'_>, tenant_id: &str, now: i64) -> rusqlite::Result<()> {
    let guests: Vec<GuestRecord> = {
        let mut stmt = tx.prepare(&format!(
            "SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id WHERE g.tenant_id = ?1"
        ))?;
        let rows = stmt.query_map([tenant_id], guest)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for g in &guests {
        revoke_guest_access(tx, g, now)?;
    }
    tx.execute("DELETE FROM invitations WHERE tenant_id = ?1", [tenant_id])?;
    Ok(())
}

/// For "my data": what `user_id` sent (invitations and their guests), and the guest access
/// it holds if it is a guest principal. Read in the caller's transaction.
pub(crate) fn data_of(
    conn: &Connection,
    user_id: &str,
) -> rusqlite::Result<(serde_json::Value, Option<serde_json::Value>)> {
    use serde_json::json;
    let schedule = |s: &Option<Schedule>| serde_json::to_value(s).unwrap_or_default();
    let mut sent = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations WHERE tenant_id = ?1 ORDER BY created_at, id"
        ))?;
        for inv in stmt.query_map([user_id], invitation)? {
            let inv = inv?;
            sent.push(json!({
                "invitation_id": inv.id, "label": inv.label, "doors": inv.doors, "not_before": inv.not_before,
                "not_after": inv.not_after, "schedule": schedule(&inv.schedule), "uses": inv.uses,
                "uses_left": inv.uses_left, "created_at": inv.created_at, "revoked": inv.revoked_at.is_some(),
            }));
        }
    }
    let guests: Vec<GuestRecord> = {
        let mut stmt = conn.prepare(&format!(
            "SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id
             WHERE g.tenant_id = ?1 OR g.user_id = ?1 ORDER BY g.accepted_at, g.id"
        ))?;
        let rows = stmt.query_map([user_id], guest)?;
        rows.collect::<rusqlite::Result<_>>()?
    };
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

fn insert_grants(
    tx: &Transaction<'_>,
    guest_access_id: &str,
    user_id: &str,
    inv: &InvitationRecord,
    now: i64,
) -> Result<(), ApiError> {
    let schedule = schedule_json(&inv.schedule)?;
    for door in &inv.doors {
        tx.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json,
                                      created_at, guest_access_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                uuid::Uuid::new_v4().to_string(),
                user_id,
                door,
                inv.not_before,
                inv.not_after,
                schedule,
                now,
                guest_access_id
            ],
        )?;
    }
    Ok(())
}

/// The session of a guest principal (it has exactly one).
fn guest_session(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL", [user_id], |r| r.get(0))
        .optional()
}

fn accept_in(
    tx: &Transaction<'_>,
    token_hash: &str,
    accept_tag: &str,
    acceptor: Acceptor,
    now: i64,
) -> Result<AcceptOutcome, ApiError> {
    if let Some(guest) = find_guest(tx, "g.accept_tag = ?1", accept_tag)? {
        if guest.not_after >= now {
            let session_id = if guest.has_account { None } else { guest_session(tx, &guest.user_id)? };
            return Ok(AcceptOutcome::Accepted { guest, session_id, repeated: true });
        }
    }
    let Some(inv) = tx
        .query_row(
            &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?1"),
            [token_hash],
            invitation,
        )
        .optional()?
    else {
        return Ok(AcceptOutcome::Gone);
    };
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
            let taken = tx
                .query_row("SELECT 1 FROM device_keys WHERE public_key = ?1", [device_key.to_vec()], |_| Ok(()))
                .optional()?
                .is_some();
            if taken {
                return Err(ApiError::KeyInUse);
            }
            let user_id = uuid::Uuid::new_v4().to_string();
            let session_id = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "INSERT INTO users (id, name, email, phone, unit_id, created_at, updated_at, kind, expires_at)
                 VALUES (?1, '', NULL, NULL, NULL, ?2, ?2, 'guest', ?3)",
                params![user_id, now, inv.not_after],
            )?;
            tx.execute(
                "INSERT INTO sessions (id, user_id, device_name, ip, created_at, last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![session_id, user_id, device_name, ip, now],
            )?;
            tx.execute(
                "INSERT INTO device_keys (session_id, user_id, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![session_id, user_id, device_key.to_vec(), now],
            )?;
            (user_id, Some(session_id))
        }
    };
    let guest_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO guest_accesses (id, invitation_id, tenant_id, user_id, site_id, label, doors, not_before,
                                     not_after, schedule_json, accept_tag, accepted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            guest_id,
            inv.id,
            inv.tenant_id,
            user_id,
            inv.site_id,
            inv.label,
            json(&inv.doors)?,
            inv.not_before,
            inv.not_after,
            schedule_json(&inv.schedule)?,
            accept_tag,
            now
        ],
    )?;
    insert_grants(tx, &guest_id, &user_id, &inv, now)?;
    if inv.uses_left <= 1 {
        // The last use: the token hash must not outlive it.
        tx.execute("DELETE FROM invitations WHERE id = ?1", [&inv.id])?;
    } else {
        tx.execute("UPDATE invitations SET uses_left = uses_left - 1 WHERE id = ?1", [&inv.id])?;
    }
    let guest =
        find_guest(tx, "g.id = ?1", &guest_id)?.ok_or_else(|| ApiError::Internal("guest row vanished".into()))?;
    Ok(AcceptOutcome::Accepted { guest, session_id, repeated: false })
}

#[async_trait]
impl InvitationStore for SqliteInvitationStore {
    async fn token_key(&self) -> Result<[u8; 32], ApiError> {
        self.db.call(|conn| crate::db::server_secret(conn, TOKEN_KEY_NAME)).await
    }

    async fn site_for(&self, user_id: &str) -> Result<Option<SiteSettings>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let (site_id, site_name) = match crate::doors::sqlite::site_for_user(conn, &user_id) {
                    Ok(site) => site,
                    Err(ApiError::NotFound) => return Ok(None),
                    Err(e) => return Err(e),
                };
                let (max_invitation_days, tenants_may_invite) = conn.query_row(
                    "SELECT max_invitation_days, tenants_may_invite FROM sites WHERE id = ?1",
                    [&site_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let time = site_time(conn, &site_id)?;
                Ok(Some(SiteSettings { site_id, site_name, time, max_invitation_days, tenants_may_invite }))
            })
            .await
    }

    async fn is_guest(&self, user_id: &str) -> Result<bool, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row("SELECT kind = 'guest' FROM users WHERE id = ?1", [&user_id], |r| r.get(0))
                    .optional()?
                    .unwrap_or(false))
            })
            .await
    }

    async fn tenant_grants(&self, user_id: &str, site_id: &str) -> Result<Vec<TenantGrant>, ApiError> {
        let (user_id, site_id) = (user_id.to_owned(), site_id.to_owned());
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT g.door_number, g.not_before, g.not_after, g.schedule_json IS NOT NULL
                     FROM door_grants g JOIN doors d ON d.number = g.door_number
                     WHERE g.user_id = ?1 AND d.site_id = ?2 AND g.guest_access_id IS NULL",
                )?;
                let rows = stmt.query_map(params![user_id, site_id], |r| {
                    Ok(TenantGrant {
                        door_number: r.get(0)?,
                        not_before: r.get(1)?,
                        not_after: r.get(2)?,
                        scheduled: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn site(&self, site_id: &str) -> Result<(String, SiteTime), ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let name = conn.query_row("SELECT name FROM sites WHERE id = ?1", [&site_id], |r| r.get(0))?;
                Ok((name, site_time(conn, &site_id)?))
            })
            .await
    }

    async fn take_lookup_slot(&self, ip_key: &str, now: i64, limit: u32, window: i64) -> Result<(), ApiError> {
        let ip_key = ip_key.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                crate::auth::sqlite::take_rate_slot(&tx, LOOKUP_BUCKET, &ip_key, limit, now, window)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn release_lookup_slot(&self, ip_key: &str, at: i64) -> Result<(), ApiError> {
        let ip_key = ip_key.to_owned();
        self.db
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM rate_events WHERE rowid = (SELECT rowid FROM rate_events
                         WHERE bucket = ?1 AND key = ?2 AND at = ?3 LIMIT 1)",
                    params![LOOKUP_BUCKET, ip_key, at],
                )?;
                Ok(())
            })
            .await
    }

    async fn door_names(&self, site_id: &str, doors: &[u32]) -> Result<Vec<(u32, String)>, ApiError> {
        let (site_id, doors) = (site_id.to_owned(), doors.to_vec());
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare("SELECT name FROM doors WHERE site_id = ?1 AND number = ?2")?;
                let mut out = Vec::with_capacity(doors.len());
                for door in doors {
                    if let Some(name) = stmt.query_row(params![site_id, door], |r| r.get(0)).optional()? {
                        out.push((door, name));
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn insert(&self, inv: &InvitationRecord, token_hash: &str, caps: TenantCaps) -> Result<Insert, ApiError> {
        let (inv, token_hash) = (inv.clone(), token_hash.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if let Some(refused) = over_caps(&tx, &inv, caps)? {
                    return Ok(refused);
                }
                tx.execute(
                    &format!(
                        "INSERT INTO invitations ({INVITATION_COLUMNS}, token_hash)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                    ),
                    params![
                        inv.id,
                        inv.site_id,
                        inv.tenant_id,
                        inv.label,
                        json(&inv.doors)?,
                        inv.not_before,
                        inv.not_after,
                        schedule_json(&inv.schedule)?,
                        inv.uses,
                        inv.uses_left,
                        inv.created_at,
                        inv.revoked_at,
                        token_hash
                    ],
                )?;
                tx.execute(
                    "INSERT INTO invitation_events (tenant_id, at) VALUES (?1, ?2)",
                    params![inv.tenant_id, inv.created_at],
                )?;
                tx.commit()?;
                Ok(Insert::Inserted)
            })
            .await
    }

    async fn find(&self, token_hash: &str) -> Result<Option<InvitationRecord>, ApiError> {
        let token_hash = token_hash.to_owned();
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row(
                        &format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?1"),
                        [token_hash],
                        invitation,
                    )
                    .optional()?)
            })
            .await
    }

    async fn list(&self, tenant_id: &str) -> Result<(Vec<InvitationRecord>, Vec<GuestRecord>), ApiError> {
        let tenant_id = tenant_id.to_owned();
        self.db
            .call(move |conn| {
                let invitations = {
                    let mut stmt = conn.prepare(&format!(
                        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE tenant_id = ?1 ORDER BY created_at, id"
                    ))?;
                    let rows = stmt.query_map([&tenant_id], invitation)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()?
                };
                let guests = {
                    let mut stmt = conn.prepare(&format!(
                        "SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id
                         WHERE g.tenant_id = ?1 ORDER BY g.accepted_at, g.id"
                    ))?;
                    let rows = stmt.query_map([&tenant_id], guest)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()?
                };
                Ok((invitations, guests))
            })
            .await
    }

    async fn guest_access_of(&self, user_id: &str) -> Result<Option<GuestRecord>, ApiError> {
        let user_id = user_id.to_owned();
        self.db.call(move |conn| Ok(find_guest(conn, "g.user_id = ?1 AND u.kind = 'guest'", &user_id)?)).await
    }

    async fn accept(
        &self,
        token_hash: &str,
        accept_tag: &str,
        acceptor: Acceptor,
        now: i64,
    ) -> Result<AcceptOutcome, ApiError> {
        let (token_hash, accept_tag) = (token_hash.to_owned(), accept_tag.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let outcome = accept_in(&tx, &token_hash, &accept_tag, acceptor, now)?;
                tx.commit()?;
                Ok(outcome)
            })
            .await
    }

    async fn revoke_invitation(&self, tenant_id: &str, invitation_id: &str, now: i64) -> Result<bool, ApiError> {
        let (tenant_id, invitation_id) = (tenant_id.to_owned(), invitation_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                // Kept (revoked) until its window ends, so the link can say it was revoked.
                let invitation = tx.execute(
                    "UPDATE invitations SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2 AND tenant_id = ?3",
                    params![now, invitation_id, tenant_id],
                )?;
                let guests: Vec<GuestRecord> = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id
                         WHERE g.invitation_id = ?1 AND g.tenant_id = ?2"
                    ))?;
                    let rows = stmt.query_map(params![invitation_id, tenant_id], guest)?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for g in &guests {
                    revoke_guest_access(&tx, g, now)?;
                }
                tx.commit()?;
                Ok(invitation > 0 || !guests.is_empty())
            })
            .await
    }

    async fn revoke_guest(&self, tenant_id: &str, guest_id: &str, now: i64) -> Result<bool, ApiError> {
        let (tenant_id, guest_id) = (tenant_id.to_owned(), guest_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let Some(g) = find_guest(&tx, "g.id = ?1", &guest_id)?.filter(|g| g.tenant_id == tenant_id) else {
                    return Ok(false);
                };
                revoke_guest_access(&tx, &g, now)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn purge(&self, now: i64) -> Result<Purged, ApiError> {
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let invitations = tx.execute("DELETE FROM invitations WHERE not_after < ?1", [now])?;
                tx.execute(
                    "DELETE FROM rate_events WHERE bucket = ?1 AND at < ?2 - 86400",
                    params![LOOKUP_BUCKET, now],
                )?;
                tx.execute("DELETE FROM invitation_events WHERE at < ?1 - 86400", [now])?;
                let ended: Vec<GuestRecord> = {
                    let mut stmt = tx.prepare(&format!(
                        "SELECT {GUEST_COLUMNS} FROM guest_accesses g JOIN users u ON u.id = g.user_id
                         WHERE g.not_after < ?1"
                    ))?;
                    let rows = stmt.query_map([now], guest)?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for g in &ended {
                    revoke_guest_access(&tx, g, now)?;
                }
                // A guest principal whose access went some other way still ends with its window.
                let orphans: Vec<String> = {
                    let mut stmt = tx.prepare("SELECT id FROM users WHERE kind = 'guest' AND expires_at < ?1")?;
                    let rows = stmt.query_map([now], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for user_id in &orphans {
                    crate::privacy::sqlite::delete_account(&tx, user_id, now)?;
                }
                tx.commit()?;
                Ok(Purged { invitations, guests: ended.len() + orphans.len() })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invitations::store_tests::Fixture;

    /// A fresh database with the demo site: Ada (tenant, doors 1-3), Bob (another tenant,
    /// door 1) and Cy (a resident who may accept).
    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_800_000_000;
        crate::demo::seed(&mut conn, now).unwrap();
        let ada: String = conn
            .query_row("SELECT id FROM users WHERE email = ?1", [crate::DEMO_RESIDENT_EMAIL], |r| r.get(0))
            .unwrap();
        let site_id: String = conn.query_row("SELECT id FROM sites LIMIT 1", [], |r| r.get(0)).unwrap();
        let mut others = Vec::new();
        for email in ["bob@example.com", "cy@example.com"] {
            let id = uuid::Uuid::new_v4().to_string();
            conn.execute(
                "INSERT INTO users (id, email, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, email, now],
            )
            .unwrap();
            others.push(id);
        }
        conn.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, created_at)
             VALUES ('bob-1', ?1, 1, 0, 4102444800, 0)",
            [&others[0]],
        )
        .unwrap();
        let store = SqliteInvitationStore::new(Db::new(conn));
        Fixture {
            store: Box::new(store),
            _dir: Box::new(dir),
            site_id,
            tenant: ada,
            other_tenant: others[0].clone(),
            resident: others[1].clone(),
            now,
        }
    }

    crate::invitation_store_tests!(get_store);
}
