//! The PostgreSQL backend of [`AdminStore`] (feature `postgres`): the same tables and semantics
//! as [`super::sqlite`].
//!
//! Door numbers and lock ids are the next free number, taken under an advisory lock so two
//! instances never hand out the same one; a lock is installed with its door's row locked.

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use tokio_postgres::{GenericClient, Row};

use super::store::{
    AdminStore, DoorChange, DoorRecord, GrantRecord, GrantRefused, Grantee, LockRecord, LockRefused, ResidentAdded,
    ResidentRecord, Role, RoleHolder, SiteRecord, UnitRecord,
};
use crate::auth::postgres::find_or_create_user;
use crate::authority::postgres::revoke_credential;
use crate::doors::Schedule;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::pg::PgPool;
use crate::site_time::{DstRule, SiteTime};

/// Keys of the advisory locks that serialise numbering across instances.
const DOOR_NUMBER_LOCK: i64 = 0x706f_7274_615f_646e; // "porta_dn"
const LOCK_ID_LOCK: i64 = 0x706f_7274_615f_6c69; // "porta_li"

pub struct PgAdminStore {
    pool: PgPool,
}

impl PgAdminStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn small<T: TryFrom<i64>>(stored: i64) -> Result<T, ApiError> {
    T::try_from(stored).map_err(|_| ApiError::Internal("stored number out of range".into()))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::Internal(format!("json: {e}")))
}

fn parse_doors(text: &str) -> Result<Vec<u32>, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Internal(format!("stored doors: {e}")))
}

const SITE_COLUMNS: &str = "id, name, address, utc_offset_minutes, dst_rule, max_invitation_days, tenants_may_invite";

fn site_row(r: &Row) -> Result<SiteRecord, ApiError> {
    let dst = DstRule::parse(r.get(4)).ok_or_else(|| ApiError::Internal("unknown dst rule".into()))?;
    Ok(SiteRecord {
        id: r.get(0),
        name: r.get(1),
        address: r.get(2),
        time: SiteTime { standard_offset_minutes: small(r.get(3))?, dst },
        max_invitation_days: r.get(5),
        tenants_may_invite: r.get::<_, i64>(6) != 0,
    })
}

/// A door's columns and its current lock (the one whose certificate is not revoked).
const DOOR_COLUMNS: &str = "number, site_id, name, log_retention_days,
    (SELECT l.lock_id FROM locks l JOIN lock_doors ld ON ld.lock_id = l.lock_id
     WHERE ld.door_number = doors.number AND l.revoked_at IS NULL)";

fn door_row(r: &Row) -> Result<DoorRecord, ApiError> {
    Ok(DoorRecord {
        number: small(r.get(0))?,
        site_id: r.get(1),
        name: r.get(2),
        log_retention_days: r.get(3),
        lock_id: r.get::<_, Option<i64>>(4).map(small).transpose()?,
    })
}

/// The door's lock whose certificate is not revoked.
async fn current_lock(client: &impl GenericClient, site_id: &str, door: u32) -> Result<Option<LockRecord>, ApiError> {
    let row = client
        .query_opt(
            "SELECT l.lock_id, l.public_key, l.certificate, l.not_before, l.not_after, l.created_at
             FROM locks l JOIN lock_doors d ON d.lock_id = l.lock_id
             WHERE d.door_number = $1 AND l.site_id = $2 AND l.revoked_at IS NULL",
            &[&i64::from(door), &site_id],
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let public_key: Vec<u8> = r.get(1);
    let public_key =
        public_key.try_into().map_err(|_| ApiError::Internal("stored lock public key is malformed".into()))?;
    Ok(Some(LockRecord {
        lock_id: small(r.get(0))?,
        door,
        public_key,
        certificate: r.get(2),
        not_before: small(r.get(3))?,
        not_after: small(r.get(4))?,
        provisioned_at: r.get(5),
        replaced_lock_id: None,
    }))
}

/// Revokes the door's current lock, if any; its id.
async fn revoke_door_lock(client: &impl GenericClient, door: u32, now: i64) -> Result<Option<u32>, ApiError> {
    let current: Option<i64> = client
        .query_opt(
            "SELECT l.lock_id FROM locks l JOIN lock_doors d ON d.lock_id = l.lock_id
             WHERE d.door_number = $1 AND l.revoked_at IS NULL",
            &[&i64::from(door)],
        )
        .await?
        .map(|r| r.get(0));
    if let Some(lock_id) = current {
        client.execute("UPDATE locks SET revoked_at = $2 WHERE lock_id = $1", &[&lock_id, &now]).await?;
    }
    current.map(small).transpose()
}

/// The site's door; with `lock`, its row stays locked until the caller's transaction ends.
async fn find_door(
    client: &impl GenericClient,
    site_id: &str,
    number: u32,
    lock: bool,
) -> Result<Option<DoorRecord>, ApiError> {
    let suffix = if lock { " FOR UPDATE" } else { "" };
    let row = client
        .query_opt(
            &format!("SELECT {DOOR_COLUMNS} FROM doors WHERE site_id = $1 AND number = $2{suffix}"),
            &[&site_id, &i64::from(number)],
        )
        .await?;
    row.as_ref().map(door_row).transpose()
}

async fn unit_at_site(client: &impl GenericClient, site_id: &str, unit_id: &str) -> Result<bool, ApiError> {
    Ok(client.query_opt("SELECT 1 FROM units WHERE id = $1 AND site_id = $2", &[&unit_id, &site_id]).await?.is_some())
}

/// Whether `user_id` lives in a unit of `site_id`.
async fn resident_at_site(client: &impl GenericClient, site_id: &str, user_id: &str) -> Result<bool, ApiError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = $1 AND n.site_id = $2",
            &[&user_id, &site_id],
        )
        .await?
        .is_some())
}

/// Puts the credentials of `user_id` (everyone's, with `None`) at the site that open any of
/// `doors` on the site's revocation list.
async fn revoke_credentials_for_doors(
    client: &impl GenericClient,
    site_id: &str,
    user_id: Option<&str>,
    doors: &[u32],
    now: i64,
) -> Result<(), ApiError> {
    let rows = client
        .query(
            "SELECT id, not_after, doors FROM credentials
             WHERE site_id = $1 AND ($2::TEXT IS NULL OR user_id = $2) AND not_after >= $3",
            &[&site_id, &user_id, &now],
        )
        .await?;
    for r in rows {
        let (id, not_after, carried): (Vec<u8>, i64, Option<String>) = (r.get(0), r.get(1), r.get(2));
        let carried: Vec<u32> = carried.as_deref().map(parse_doors).transpose()?.unwrap_or_default();
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else { continue };
        if carried.iter().any(|d| doors.contains(d)) {
            revoke_credential(client, site_id, &id, not_after, now).await?;
        }
    }
    Ok(())
}

struct StoredGrant {
    doors: Vec<u32>,
    not_before: i64,
    not_after: i64,
    schedule_json: Option<String>,
}

/// Gives `user_id` the doors of grant `grant_id`.
async fn hand_out(
    client: &impl GenericClient,
    grant_id: &str,
    user_id: &str,
    g: &StoredGrant,
    now: i64,
) -> Result<(), ApiError> {
    for door in &g.doors {
        client
            .execute(
                "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json,
                                          created_at, site_grant_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &uuid::Uuid::new_v4().to_string(),
                    &user_id,
                    &i64::from(*door),
                    &g.not_before,
                    &g.not_after,
                    &g.schedule_json,
                    &now,
                    &grant_id,
                ],
            )
            .await?;
    }
    Ok(())
}

async fn unit_grants(client: &impl GenericClient, unit_id: &str) -> Result<Vec<(String, StoredGrant)>, ApiError> {
    let rows = client
        .query(
            "SELECT id, doors, not_before, not_after, schedule_json FROM site_grants WHERE unit_id = $1",
            &[&unit_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.get(0),
                StoredGrant {
                    doors: parse_doors(r.get(1))?,
                    not_before: r.get(2),
                    not_after: r.get(3),
                    schedule_json: r.get(4),
                },
            ))
        })
        .collect()
}

/// Takes grant `grant_id` away from `user_id` only (left a unit), or from everyone (revoked).
async fn withdraw(
    client: &impl GenericClient,
    site_id: &str,
    grant_id: &str,
    doors: &[u32],
    user_id: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    let holders: Vec<String> = client
        .query(
            "SELECT DISTINCT user_id FROM door_grants WHERE site_grant_id = $1 AND ($2::TEXT IS NULL OR user_id = $2)",
            &[&grant_id, &user_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for holder in &holders {
        revoke_credentials_for_doors(client, site_id, Some(holder), doors, now).await?;
    }
    client
        .execute(
            "DELETE FROM door_grants WHERE site_grant_id = $1 AND ($2::TEXT IS NULL OR user_id = $2)",
            &[&grant_id, &user_id],
        )
        .await?;
    Ok(())
}

async fn revoke_grant_in(
    client: &impl GenericClient,
    site_id: &str,
    grant_id: &str,
    now: i64,
) -> Result<bool, ApiError> {
    let doors: Option<String> = client
        .query_opt("SELECT doors FROM site_grants WHERE id = $1 AND site_id = $2 FOR UPDATE", &[&grant_id, &site_id])
        .await?
        .map(|r| r.get(0));
    let Some(doors) = doors else { return Ok(false) };
    withdraw(client, site_id, grant_id, &parse_doors(&doors)?, None, now).await?;
    client.execute("DELETE FROM site_grants WHERE id = $1", &[&grant_id]).await?;
    Ok(true)
}

async fn insert_role(
    client: &impl GenericClient,
    user_id: &str,
    role: &str,
    site_id: Option<&str>,
    now: i64,
) -> Result<(), ApiError> {
    client
        .execute(
            "INSERT INTO roles (user_id, role, site_id, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&user_id, &role, &site_id, &now],
        )
        .await?;
    Ok(())
}

/// Makes the account of `identifier` site admin of `site_id`.
pub(crate) async fn make_site_admin(
    client: &impl GenericClient,
    site_id: &str,
    identifier: &Identifier,
    now: i64,
) -> Result<String, ApiError> {
    let user_id = find_or_create_user(client, identifier, now).await?;
    insert_role(client, &user_id, "site_admin", Some(site_id), now).await?;
    Ok(user_id)
}

#[async_trait]
impl AdminStore for PgAdminStore {
    async fn roles_of(&self, user_id: &str) -> Result<Vec<Role>, ApiError> {
        let client = self.pool.get().await?;
        let rows =
            client.query("SELECT role, site_id FROM roles WHERE user_id = $1 ORDER BY site_id", &[&user_id]).await?;
        let mut roles = Vec::new();
        for r in rows {
            match (r.get::<_, String>(0), r.get::<_, Option<String>>(1)) {
                (role, None) if role == "operator" => roles.push(Role::Operator),
                (role, Some(site_id)) if role == "site_admin" => roles.push(Role::SiteAdmin { site_id }),
                _ => {}
            }
        }
        Ok(roles)
    }

    async fn ensure_operator(&self, identifier: &Identifier, now: i64) -> Result<String, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let user_id = find_or_create_user(&tx, identifier, now).await?;
        insert_role(&tx, &user_id, "operator", None, now).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    async fn count_write(&self, user_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError> {
        let key = crate::auth::sha256_hex(format!("admin:{user_id}"));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        crate::pg::take_rate_slot(&tx, "admin_write", &key, limit, now, window).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sites(&self, only: Option<&[String]>) -> Result<Vec<SiteRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY name, id"), &[]).await?;
        let mut sites = Vec::new();
        for r in &rows {
            let site = site_row(r)?;
            if only.is_none_or(|only| only.contains(&site.id)) {
                sites.push(site);
            }
        }
        Ok(sites)
    }

    async fn site(&self, site_id: &str) -> Result<Option<SiteRecord>, ApiError> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"), &[&site_id]).await?;
        row.as_ref().map(site_row).transpose()
    }

    async fn create_site(&self, site: &SiteRecord) -> Result<(), ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO sites (id, name, address, utc_offset_minutes, dst_rule, max_invitation_days, tenants_may_invite)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &site.id,
                &site.name,
                &site.address,
                &i64::from(site.time.standard_offset_minutes),
                &crate::admin::sqlite::dst_name(site.time.dst),
                &site.max_invitation_days,
                &i64::from(site.tenants_may_invite),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_site(&self, site: &SiteRecord) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE sites SET name = $2, address = $3, utc_offset_minutes = $4, dst_rule = $5,
                                  max_invitation_days = $6, tenants_may_invite = $7
                 WHERE id = $1",
                &[
                    &site.id,
                    &site.name,
                    &site.address,
                    &i64::from(site.time.standard_offset_minutes),
                    &crate::admin::sqlite::dst_name(site.time.dst),
                    &site.max_invitation_days,
                    &i64::from(site.tenants_may_invite),
                ],
            )
            .await?;
        Ok(())
    }

    async fn units(&self, site_id: &str) -> Result<Vec<UnitRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT id, site_id, name, kind FROM units WHERE site_id = $1 ORDER BY name, id", &[&site_id])
            .await?;
        Ok(rows
            .iter()
            .map(|r| UnitRecord { id: r.get(0), site_id: r.get(1), name: r.get(2), kind: r.get(3) })
            .collect())
    }

    async fn create_unit(&self, unit: &UnitRecord) -> Result<(), ApiError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO units (id, site_id, name, kind) VALUES ($1, $2, $3, $4)",
                &[&unit.id, &unit.site_id, &unit.name, &unit.kind],
            )
            .await?;
        Ok(())
    }

    async fn delete_unit(&self, site_id: &str, unit_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !unit_at_site(&tx, site_id, unit_id).await? {
            return Ok(false);
        }
        for (grant_id, _) in unit_grants(&tx, unit_id).await? {
            revoke_grant_in(&tx, site_id, &grant_id, now).await?;
        }
        tx.execute("UPDATE users SET unit_id = NULL WHERE unit_id = $1", &[&unit_id]).await?;
        tx.execute("DELETE FROM units WHERE id = $1", &[&unit_id]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn doors(&self, site_id: &str) -> Result<Vec<DoorRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {DOOR_COLUMNS} FROM doors WHERE site_id = $1 AND number IS NOT NULL ORDER BY number"),
                &[&site_id],
            )
            .await?;
        rows.iter().map(door_row).collect()
    }

    async fn create_door(&self, site_id: &str, name: &str, log_retention_days: i64) -> Result<DoorRecord, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // Door numbers are unique across the server: credentials and locks name them.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&DOOR_NUMBER_LOCK]).await?;
        let number: i64 = tx.query_one("SELECT COALESCE(MAX(number), 0) + 1 FROM doors", &[]).await?.get(0);
        tx.execute(
            "INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES ($1, $2, $3, $4, $5)",
            &[&uuid::Uuid::new_v4().to_string(), &site_id, &name, &number, &log_retention_days],
        )
        .await?;
        tx.commit().await?;
        Ok(DoorRecord {
            number: small(number)?,
            site_id: site_id.to_owned(),
            name: name.to_owned(),
            log_retention_days,
            lock_id: None,
        })
    }

    async fn update_door(
        &self,
        site_id: &str,
        number: u32,
        change: &DoorChange,
    ) -> Result<Option<DoorRecord>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if find_door(&tx, site_id, number, true).await?.is_none() {
            return Ok(None);
        }
        tx.execute(
            "UPDATE doors SET name = COALESCE($3, name), log_retention_days = COALESCE($4, log_retention_days)
             WHERE site_id = $1 AND number = $2",
            &[&site_id, &i64::from(number), &change.name, &change.log_retention_days],
        )
        .await?;
        let door = find_door(&tx, site_id, number, false).await?;
        tx.commit().await?;
        Ok(door)
    }

    async fn delete_door(&self, site_id: &str, number: u32, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if find_door(&tx, site_id, number, true).await?.is_none() {
            return Ok(false);
        }
        revoke_credentials_for_doors(&tx, site_id, None, &[number], now).await?;
        // Grants no longer name it (a later door may get its number); one left with no door
        // is gone.
        let grants = tx.query("SELECT id, doors FROM site_grants WHERE site_id = $1 FOR UPDATE", &[&site_id]).await?;
        for r in grants {
            let (grant_id, doors): (String, String) = (r.get(0), r.get(1));
            let doors = parse_doors(&doors)?;
            if !doors.contains(&number) {
                continue;
            }
            let left: Vec<u32> = doors.into_iter().filter(|d| *d != number).collect();
            if left.is_empty() {
                tx.execute("DELETE FROM site_grants WHERE id = $1", &[&grant_id]).await?;
            } else {
                tx.execute("UPDATE site_grants SET doors = $2 WHERE id = $1", &[&grant_id, &json(&left)?]).await?;
            }
        }
        revoke_door_lock(&tx, number, now).await?;
        tx.execute("DELETE FROM doors WHERE site_id = $1 AND number = $2", &[&site_id, &i64::from(number)]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn door_lock(&self, site_id: &str, door: u32) -> Result<Option<LockRecord>, ApiError> {
        let client = self.pool.get().await?;
        if find_door(&*client, site_id, door, false).await?.is_none() {
            return Ok(None);
        }
        current_lock(&*client, site_id, door).await
    }

    async fn install_lock(
        &self,
        site_id: &str,
        door: u32,
        lock_key: [u8; 32],
        authority: &SigningKey,
        valid_days: u32,
        now: i64,
    ) -> Result<Result<LockRecord, LockRefused>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The door's row locked: one installation per door at a time.
        if find_door(&tx, site_id, door, true).await?.is_none() {
            return Ok(Err(LockRefused::NoSuchDoor));
        }
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_ID_LOCK]).await?;
        if tx.query_opt("SELECT 1 FROM locks WHERE public_key = $1", &[&lock_key.as_slice()]).await?.is_some() {
            return Ok(Err(LockRefused::KeyInUse));
        }
        let replaced = revoke_door_lock(&tx, door, now).await?;
        let lock_id: u32 = small(tx.query_one("SELECT COALESCE(MAX(lock_id), 0) + 1 FROM locks", &[]).await?.get(0))?;
        // 32-bit certificate times (SPEC §2.2): clamp rather than wrap.
        let not_before = now.clamp(0, u32::MAX as i64) as u32;
        let not_after = not_before.saturating_add(valid_days.saturating_mul(86_400));
        let cert =
            porta_protocol::LockCertificate::issue(authority, lock_id, lock_key, vec![door], not_before, not_after)
                .map_err(|e| ApiError::Internal(format!("lock certificate: {e:?}")))?;
        tx.execute(
            "INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at, not_before, not_after)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &i64::from(lock_id),
                &site_id,
                &lock_key.as_slice(),
                &cert.to_bytes(),
                &now,
                &i64::from(not_before),
                &i64::from(not_after),
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO lock_doors (lock_id, door_number) VALUES ($1, $2)",
            &[&i64::from(lock_id), &i64::from(door)],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(LockRecord {
            lock_id,
            door,
            public_key: lock_key,
            certificate: cert.to_bytes(),
            not_before,
            not_after,
            provisioned_at: now,
            replaced_lock_id: replaced,
        }))
    }

    async fn decommission_lock(&self, site_id: &str, door: u32, now: i64) -> Result<Option<u32>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if find_door(&tx, site_id, door, true).await?.is_none() {
            return Ok(None);
        }
        let revoked = revoke_door_lock(&tx, door, now).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn residents(&self, site_id: &str, unit_id: &str) -> Result<Option<Vec<ResidentRecord>>, ApiError> {
        let client = self.pool.get().await?;
        if !unit_at_site(&*client, site_id, unit_id).await? {
            return Ok(None);
        }
        let rows = client
            .query(
                "SELECT id, name, email, phone FROM users WHERE unit_id = $1 AND kind = 'resident' ORDER BY created_at, id",
                &[&unit_id],
            )
            .await?;
        Ok(Some(
            rows.iter()
                .map(|r| ResidentRecord { user_id: r.get(0), name: r.get(1), email: r.get(2), phone: r.get(3) })
                .collect(),
        ))
    }

    async fn add_resident(
        &self,
        site_id: &str,
        unit_id: &str,
        identifier: &Identifier,
        now: i64,
    ) -> Result<Option<ResidentAdded>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !unit_at_site(&tx, site_id, unit_id).await? {
            return Ok(None);
        }
        let user_id = find_or_create_user(&tx, identifier, now).await?;
        // The account's row locked: a move and a grant hand-out for it take turns.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await?;
        let current: Option<(String, String)> = tx
            .query_opt(
                "SELECT n.id, n.site_id FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = $1",
                &[&user_id],
            )
            .await?
            .map(|r| (r.get(0), r.get(1)));
        match current {
            Some((_, other_site)) if other_site != site_id => return Ok(Some(ResidentAdded::Elsewhere)),
            Some((current_unit, _)) if current_unit == unit_id => {}
            Some((current_unit, _)) => {
                // Moving within the site: the old unit's grants leave with them.
                for (grant_id, g) in unit_grants(&tx, &current_unit).await? {
                    withdraw(&tx, site_id, &grant_id, &g.doors, Some(&user_id), now).await?;
                }
                tx.execute("UPDATE users SET unit_id = $2, updated_at = $3 WHERE id = $1", &[&user_id, &unit_id, &now])
                    .await?;
            }
            None => {
                tx.execute("UPDATE users SET unit_id = $2, updated_at = $3 WHERE id = $1", &[&user_id, &unit_id, &now])
                    .await?;
            }
        }
        let held: Vec<String> = tx
            .query(
                "SELECT DISTINCT site_grant_id FROM door_grants WHERE user_id = $1 AND site_grant_id IS NOT NULL",
                &[&user_id],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for (grant_id, g) in unit_grants(&tx, unit_id).await? {
            if !held.contains(&grant_id) {
                hand_out(&tx, &grant_id, &user_id, &g, now).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(ResidentAdded::Added { user_id }))
    }

    async fn remove_resident(&self, site_id: &str, unit_id: &str, user_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let lives_there = unit_at_site(&tx, site_id, unit_id).await?
            && tx
                .query_opt("SELECT 1 FROM users WHERE id = $1 AND unit_id = $2 FOR UPDATE", &[&user_id, &unit_id])
                .await?
                .is_some();
        if !lives_there {
            return Ok(false);
        }
        for (grant_id, g) in unit_grants(&tx, unit_id).await? {
            withdraw(&tx, site_id, &grant_id, &g.doors, Some(user_id), now).await?;
        }
        tx.execute("UPDATE users SET unit_id = NULL, updated_at = $2 WHERE id = $1", &[&user_id, &now]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn grants(&self, site_id: &str) -> Result<Vec<GrantRecord>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, site_id, unit_id, user_id, doors, not_before, not_after, schedule_json, created_at
                 FROM site_grants WHERE site_id = $1 ORDER BY created_at, id",
                &[&site_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let grantee = match (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3)) {
                    (Some(unit), _) => Grantee::Unit(unit),
                    (None, Some(user)) => Grantee::Person(user),
                    (None, None) => return Err(ApiError::Internal("grant without grantee".into())),
                };
                let schedule: Option<Schedule> = r
                    .get::<_, Option<String>>(7)
                    .map(|t| serde_json::from_str(&t).map_err(|e| ApiError::Internal(format!("stored schedule: {e}"))))
                    .transpose()?;
                Ok(GrantRecord {
                    id: r.get(0),
                    site_id: r.get(1),
                    grantee,
                    doors: parse_doors(r.get(4))?,
                    not_before: r.get(5),
                    not_after: r.get(6),
                    schedule,
                    created_at: r.get(8),
                })
            })
            .collect()
    }

    async fn create_grant(&self, grant: &GrantRecord) -> Result<Result<(), GrantRefused>, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let site_id = &grant.site_id;
        for door in &grant.doors {
            if find_door(&tx, site_id, *door, false).await?.is_none() {
                return Ok(Err(GrantRefused::UnknownDoor));
            }
        }
        let (unit_id, user_id, holders) = match &grant.grantee {
            Grantee::Unit(unit_id) => {
                if !unit_at_site(&tx, site_id, unit_id).await? {
                    return Ok(Err(GrantRefused::GranteeNotFound));
                }
                let holders: Vec<String> = tx
                    .query("SELECT id FROM users WHERE unit_id = $1 AND kind = 'resident'", &[unit_id])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                (Some(unit_id.as_str()), None, holders)
            }
            Grantee::Person(user_id) => {
                if !resident_at_site(&tx, site_id, user_id).await? {
                    return Ok(Err(GrantRefused::GranteeNotFound));
                }
                (None, Some(user_id.as_str()), vec![user_id.clone()])
            }
        };
        let stored = StoredGrant {
            doors: grant.doors.clone(),
            not_before: grant.not_before,
            not_after: grant.not_after,
            schedule_json: grant.schedule.as_ref().map(json).transpose()?,
        };
        tx.execute(
            "INSERT INTO site_grants (id, site_id, unit_id, user_id, doors, not_before, not_after, schedule_json,
                                      created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &grant.id,
                site_id,
                &unit_id,
                &user_id,
                &json(&grant.doors)?,
                &grant.not_before,
                &grant.not_after,
                &stored.schedule_json,
                &grant.created_at,
            ],
        )
        .await?;
        for holder in &holders {
            hand_out(&tx, &grant.id, holder, &stored, grant.created_at).await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn revoke_grant(&self, site_id: &str, grant_id: &str, now: i64) -> Result<bool, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let found = revoke_grant_in(&tx, site_id, grant_id, now).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn site_admins(&self, site_id: &str) -> Result<Vec<RoleHolder>, ApiError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT u.id, u.email, u.phone FROM roles r JOIN users u ON u.id = r.user_id
                 WHERE r.role = 'site_admin' AND r.site_id = $1 ORDER BY r.granted_at, u.id",
                &[&site_id],
            )
            .await?;
        Ok(rows.iter().map(|r| RoleHolder { user_id: r.get(0), email: r.get(1), phone: r.get(2) }).collect())
    }

    async fn grant_site_admin(&self, site_id: &str, identifier: &Identifier, now: i64) -> Result<String, ApiError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let user_id = make_site_admin(&tx, site_id, identifier, now).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    async fn revoke_site_admin(&self, site_id: &str, user_id: &str) -> Result<bool, ApiError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM roles WHERE role = 'site_admin' AND site_id = $1 AND user_id = $2",
                &[&site_id, &user_id],
            )
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::store_tests::Fixture;

    /// A fresh database with the two sites the SQLite backend's tests seed.
    async fn get_store() -> Fixture {
        let pool = crate::pg::test_support::fresh_database().await;
        pool.get()
            .await
            .unwrap()
            .batch_execute("INSERT INTO sites (id, name, address) VALUES ('site-a', 'A', ''), ('site-b', 'B', '');")
            .await
            .unwrap();
        Fixture {
            store: Box::new(PgAdminStore::new(pool)),
            _dir: Box::new(()),
            site_a: "site-a".into(),
            site_b: "site-b".into(),
            now: 1_750_000_000,
        }
    }

    crate::admin_store_tests!(get_store);

    /// Doors created at once through several connections (as through several instances) get
    /// distinct numbers: none is refused, none is handed out twice.
    #[tokio::test]
    async fn doors_created_at_once_get_distinct_numbers() {
        let f = get_store().await;
        let store: std::sync::Arc<dyn AdminStore> = f.store.into();
        let creators = (0..8).map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.create_door("site-a", &format!("Door {n}"), 30).await.unwrap().number })
        });
        let mut numbers = Vec::new();
        for creator in creators {
            numbers.push(creator.await.unwrap());
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=8).collect::<Vec<u32>>());
    }
}
