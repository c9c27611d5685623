//! The SQLite backend of [`AdminStore`]. Tables: `roles`, `site_grants` (with the
//! `door_grants` rows each holder gets, by `site_grant_id`), and the building's own `sites`,
//! `units`, `doors`. Schema: migration 8 in `db.rs`.

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::store::{
    AdminStore, DoorChange, DoorRecord, GrantRecord, GrantRefused, Grantee, LockRecord, LockRefused, ResidentAdded,
    ResidentRecord, Role, RoleHolder, SiteRecord, UnitRecord,
};
use crate::auth::sqlite::find_or_create_user;
use crate::authority;
use crate::db::Db;
use crate::doors::Schedule;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::site_time::{DstRule, SiteTime};

pub struct SqliteAdminStore {
    db: Db,
}

impl SqliteAdminStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

pub(crate) fn dst_name(rule: DstRule) -> &'static str {
    match rule {
        DstRule::None => "none",
        DstRule::Eu => "eu",
    }
}

fn conversion<E: std::error::Error + Send + Sync + 'static>(e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

const SITE_COLUMNS: &str = "id, name, address, utc_offset_minutes, dst_rule, max_invitation_days, tenants_may_invite";

fn site_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SiteRecord> {
    let rule: String = r.get(4)?;
    let dst = DstRule::parse(&rule).ok_or_else(|| conversion(std::fmt::Error))?;
    Ok(SiteRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        address: r.get(2)?,
        time: SiteTime { standard_offset_minutes: r.get(3)?, dst },
        max_invitation_days: r.get(5)?,
        tenants_may_invite: r.get(6)?,
    })
}

/// A door's columns and its current lock (the one whose certificate is not revoked).
const DOOR_COLUMNS: &str = "number, site_id, name, log_retention_days,
    (SELECT l.lock_id FROM locks l JOIN lock_doors ld ON ld.lock_id = l.lock_id
     WHERE ld.door_number = doors.number AND l.revoked_at IS NULL)";

fn door_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DoorRecord> {
    Ok(DoorRecord {
        number: r.get(0)?,
        site_id: r.get(1)?,
        name: r.get(2)?,
        log_retention_days: r.get(3)?,
        lock_id: r.get(4)?,
    })
}

/// The door's lock whose certificate is not revoked.
fn current_lock(conn: &Connection, site_id: &str, door: u32) -> Result<Option<LockRecord>, ApiError> {
    struct Row {
        lock_id: u32,
        public_key: Vec<u8>,
        certificate: Vec<u8>,
        not_before: u32,
        not_after: u32,
        provisioned_at: i64,
    }
    let row = conn
        .query_row(
            "SELECT l.lock_id, l.public_key, l.certificate, l.not_before, l.not_after, l.created_at
             FROM locks l JOIN lock_doors d ON d.lock_id = l.lock_id
             WHERE d.door_number = ?1 AND l.site_id = ?2 AND l.revoked_at IS NULL",
            params![door, site_id],
            |r| {
                Ok(Row {
                    lock_id: r.get(0)?,
                    public_key: r.get(1)?,
                    certificate: r.get(2)?,
                    not_before: r.get(3)?,
                    not_after: r.get(4)?,
                    provisioned_at: r.get(5)?,
                })
            },
        )
        .optional()?;
    let Some(Row { lock_id, public_key, certificate, not_before, not_after, provisioned_at }) = row else {
        return Ok(None);
    };
    let public_key =
        public_key.try_into().map_err(|_| ApiError::Internal("stored lock public key is malformed".into()))?;
    Ok(Some(LockRecord {
        lock_id,
        door,
        public_key,
        certificate,
        not_before,
        not_after,
        provisioned_at,
        replaced_lock_id: None,
    }))
}

/// Revokes the door's current lock, if any; its id.
fn revoke_door_lock(conn: &Connection, door: u32, now: i64) -> rusqlite::Result<Option<u32>> {
    let current: Option<u32> = conn
        .query_row(
            "SELECT l.lock_id FROM locks l JOIN lock_doors d ON d.lock_id = l.lock_id
             WHERE d.door_number = ?1 AND l.revoked_at IS NULL",
            [door],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(lock_id) = current {
        conn.execute("UPDATE locks SET revoked_at = ?2 WHERE lock_id = ?1", params![lock_id, now])?;
    }
    Ok(current)
}

fn find_door(conn: &Connection, site_id: &str, number: u32) -> rusqlite::Result<Option<DoorRecord>> {
    conn.query_row(
        &format!("SELECT {DOOR_COLUMNS} FROM doors WHERE site_id = ?1 AND number = ?2"),
        params![site_id, number],
        door_row,
    )
    .optional()
}

fn unit_at_site(conn: &Connection, site_id: &str, unit_id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM units WHERE id = ?1 AND site_id = ?2", params![unit_id, site_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `user_id` lives in a unit of `site_id`.
fn resident_at_site(conn: &Connection, site_id: &str, user_id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = ?1 AND n.site_id = ?2",
            params![user_id, site_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn parse_doors(text: &str) -> rusqlite::Result<Vec<u32>> {
    serde_json::from_str(text).map_err(conversion)
}

/// Puts the credentials of `user_id` at the site that open any of `doors` on the site's
/// revocation list, as revoking a guest does. A door the person still holds otherwise is
/// simply in the next credential they sync.
fn revoke_credentials_for_doors(
    tx: &Transaction<'_>,
    site_id: &str,
    user_id: Option<&str>,
    doors: &[u32],
    now: i64,
) -> rusqlite::Result<()> {
    let credentials: Vec<(Vec<u8>, i64, Option<String>)> = {
        let mut stmt = tx.prepare(
            "SELECT id, not_after, doors FROM credentials
             WHERE site_id = ?1 AND (?2 IS NULL OR user_id = ?2) AND not_after >= ?3",
        )?;
        let rows = stmt.query_map(params![site_id, user_id, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, not_after, carried) in credentials {
        let carried: Vec<u32> = carried.as_deref().map(parse_doors).transpose()?.unwrap_or_default();
        let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else { continue };
        if carried.iter().any(|d| doors.contains(d)) {
            authority::revoke_credential(tx, site_id, &id, not_after, now)?;
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
fn hand_out(tx: &Transaction<'_>, grant_id: &str, user_id: &str, g: &StoredGrant, now: i64) -> rusqlite::Result<()> {
    for door in &g.doors {
        tx.execute(
            "INSERT INTO door_grants (id, user_id, door_number, not_before, not_after, schedule_json,
                                      created_at, site_grant_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                uuid::Uuid::new_v4().to_string(),
                user_id,
                door,
                g.not_before,
                g.not_after,
                g.schedule_json,
                now,
                grant_id
            ],
        )?;
    }
    Ok(())
}

fn unit_grants(tx: &Transaction<'_>, unit_id: &str) -> rusqlite::Result<Vec<(String, StoredGrant)>> {
    let mut stmt =
        tx.prepare("SELECT id, doors, not_before, not_after, schedule_json FROM site_grants WHERE unit_id = ?1")?;
    let rows = stmt.query_map([unit_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            StoredGrant {
                doors: parse_doors(&r.get::<_, String>(1)?)?,
                not_before: r.get(2)?,
                not_after: r.get(3)?,
                schedule_json: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// Takes grant `grant_id` away from `user_id` only (left a unit), or from everyone (revoked).
fn withdraw(
    tx: &Transaction<'_>,
    site_id: &str,
    grant_id: &str,
    doors: &[u32],
    user_id: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    let holders: Vec<String> = {
        let mut stmt = tx.prepare(
            "SELECT DISTINCT user_id FROM door_grants WHERE site_grant_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        )?;
        let rows = stmt.query_map(params![grant_id, user_id], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for holder in &holders {
        revoke_credentials_for_doors(tx, site_id, Some(holder), doors, now)?;
    }
    tx.execute(
        "DELETE FROM door_grants WHERE site_grant_id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![grant_id, user_id],
    )?;
    Ok(())
}

fn revoke_grant_in(tx: &Transaction<'_>, site_id: &str, grant_id: &str, now: i64) -> rusqlite::Result<bool> {
    let doors: Option<String> = tx
        .query_row("SELECT doors FROM site_grants WHERE id = ?1 AND site_id = ?2", params![grant_id, site_id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(doors) = doors else { return Ok(false) };
    withdraw(tx, site_id, grant_id, &parse_doors(&doors)?, None, now)?;
    tx.execute("DELETE FROM site_grants WHERE id = ?1", [grant_id])?;
    Ok(true)
}

fn insert_role(
    tx: &Transaction<'_>,
    user_id: &str,
    role: &str,
    site_id: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO roles (user_id, role, site_id, granted_at) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, role, site_id, now],
    )?;
    Ok(())
}

/// Makes the account of `identifier` site admin of `site_id` (the demo seed uses it).
pub(crate) fn make_site_admin(
    tx: &Transaction<'_>,
    site_id: &str,
    identifier: &Identifier,
    now: i64,
) -> rusqlite::Result<String> {
    let user_id = find_or_create_user(tx, identifier, now)?;
    insert_role(tx, &user_id, "site_admin", Some(site_id), now)?;
    Ok(user_id)
}

#[async_trait]
impl AdminStore for SqliteAdminStore {
    async fn roles_of(&self, user_id: &str) -> Result<Vec<Role>, ApiError> {
        let user_id = user_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare("SELECT role, site_id FROM roles WHERE user_id = ?1 ORDER BY site_id")?;
                let rows =
                    stmt.query_map([&user_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
                let mut roles = Vec::new();
                for row in rows {
                    match row? {
                        (role, None) if role == "operator" => roles.push(Role::Operator),
                        (role, Some(site_id)) if role == "site_admin" => roles.push(Role::SiteAdmin { site_id }),
                        _ => {}
                    }
                }
                Ok(roles)
            })
            .await
    }

    async fn ensure_operator(&self, identifier: &Identifier, now: i64) -> Result<String, ApiError> {
        let identifier = identifier.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let user_id = find_or_create_user(&tx, &identifier, now)?;
                insert_role(&tx, &user_id, "operator", None, now)?;
                tx.commit()?;
                Ok(user_id)
            })
            .await
    }

    async fn count_write(&self, user_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError> {
        let key = crate::auth::sha256_hex(format!("admin:{user_id}"));
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                crate::auth::sqlite::take_rate_slot(&tx, "admin_write", &key, limit, now, window)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn sites(&self, only: Option<&[String]>) -> Result<Vec<SiteRecord>, ApiError> {
        let only = only.map(<[String]>::to_vec);
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY name, id"))?;
                let rows = stmt.query_map([], site_row)?;
                let mut sites = Vec::new();
                for site in rows {
                    let site = site?;
                    if only.as_ref().is_none_or(|only| only.contains(&site.id)) {
                        sites.push(site);
                    }
                }
                Ok(sites)
            })
            .await
    }

    async fn site(&self, site_id: &str) -> Result<Option<SiteRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                Ok(conn
                    .query_row(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = ?1"), [&site_id], site_row)
                    .optional()?)
            })
            .await
    }

    async fn create_site(&self, site: &SiteRecord) -> Result<(), ApiError> {
        let site = site.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                tx.execute(
                    "INSERT INTO sites (id, name, address, utc_offset_minutes, dst_rule, max_invitation_days,
                                        tenants_may_invite)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        site.id,
                        site.name,
                        site.address,
                        site.time.standard_offset_minutes,
                        dst_name(site.time.dst),
                        site.max_invitation_days,
                        site.tenants_may_invite
                    ],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn update_site(&self, site: &SiteRecord) -> Result<(), ApiError> {
        let site = site.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "UPDATE sites SET name = ?2, address = ?3, utc_offset_minutes = ?4, dst_rule = ?5,
                                      max_invitation_days = ?6, tenants_may_invite = ?7
                     WHERE id = ?1",
                    params![
                        site.id,
                        site.name,
                        site.address,
                        site.time.standard_offset_minutes,
                        dst_name(site.time.dst),
                        site.max_invitation_days,
                        site.tenants_may_invite
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn units(&self, site_id: &str) -> Result<Vec<UnitRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt =
                    conn.prepare("SELECT id, site_id, name, kind FROM units WHERE site_id = ?1 ORDER BY name, id")?;
                let rows = stmt.query_map([&site_id], |r| {
                    Ok(UnitRecord { id: r.get(0)?, site_id: r.get(1)?, name: r.get(2)?, kind: r.get(3)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn create_unit(&self, unit: &UnitRecord) -> Result<(), ApiError> {
        let unit = unit.clone();
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO units (id, site_id, name, kind) VALUES (?1, ?2, ?3, ?4)",
                    params![unit.id, unit.site_id, unit.name, unit.kind],
                )?;
                Ok(())
            })
            .await
    }

    async fn delete_unit(&self, site_id: &str, unit_id: &str, now: i64) -> Result<bool, ApiError> {
        let (site_id, unit_id) = (site_id.to_owned(), unit_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if !unit_at_site(&tx, &site_id, &unit_id)? {
                    return Ok(false);
                }
                for (grant_id, _) in unit_grants(&tx, &unit_id)? {
                    revoke_grant_in(&tx, &site_id, &grant_id, now)?;
                }
                tx.execute("UPDATE users SET unit_id = NULL WHERE unit_id = ?1", [&unit_id])?;
                tx.execute("DELETE FROM units WHERE id = ?1", [&unit_id])?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn doors(&self, site_id: &str) -> Result<Vec<DoorRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {DOOR_COLUMNS} FROM doors WHERE site_id = ?1 AND number IS NOT NULL ORDER BY number"
                ))?;
                let rows = stmt.query_map([&site_id], door_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn create_door(&self, site_id: &str, name: &str, log_retention_days: i64) -> Result<DoorRecord, ApiError> {
        let (site_id, name) = (site_id.to_owned(), name.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                // Door numbers are unique across the server: credentials and locks name them.
                let number: u32 = tx.query_row("SELECT COALESCE(MAX(number), 0) + 1 FROM doors", [], |r| r.get(0))?;
                tx.execute(
                    "INSERT INTO doors (id, site_id, name, number, log_retention_days) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![uuid::Uuid::new_v4().to_string(), site_id, name, number, log_retention_days],
                )?;
                tx.commit()?;
                Ok(DoorRecord { number, site_id, name, log_retention_days, lock_id: None })
            })
            .await
    }

    async fn update_door(
        &self,
        site_id: &str,
        number: u32,
        change: &DoorChange,
    ) -> Result<Option<DoorRecord>, ApiError> {
        let (site_id, change) = (site_id.to_owned(), change.clone());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if find_door(&tx, &site_id, number)?.is_none() {
                    return Ok(None);
                }
                tx.execute(
                    "UPDATE doors SET name = COALESCE(?3, name), log_retention_days = COALESCE(?4, log_retention_days)
                     WHERE site_id = ?1 AND number = ?2",
                    params![site_id, number, change.name, change.log_retention_days],
                )?;
                let door = find_door(&tx, &site_id, number)?;
                tx.commit()?;
                Ok(door)
            })
            .await
    }

    async fn delete_door(&self, site_id: &str, number: u32, now: i64) -> Result<bool, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if find_door(&tx, &site_id, number)?.is_none() {
                    return Ok(false);
                }
                revoke_credentials_for_doors(&tx, &site_id, None, &[number], now)?;
                // Grants no longer name it (a later door may get its number); one left with no
                // door is gone.
                let grants: Vec<(String, String)> = {
                    let mut stmt = tx.prepare("SELECT id, doors FROM site_grants WHERE site_id = ?1")?;
                    let rows = stmt.query_map([&site_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for (grant_id, doors) in grants {
                    let doors = parse_doors(&doors)?;
                    if !doors.contains(&number) {
                        continue;
                    }
                    let left: Vec<u32> = doors.into_iter().filter(|d| *d != number).collect();
                    if left.is_empty() {
                        tx.execute("DELETE FROM site_grants WHERE id = ?1", [&grant_id])?;
                    } else {
                        let left =
                            serde_json::to_string(&left).map_err(|e| ApiError::Internal(format!("json: {e}")))?;
                        tx.execute("UPDATE site_grants SET doors = ?2 WHERE id = ?1", params![grant_id, left])?;
                    }
                }
                revoke_door_lock(&tx, number, now)?;
                tx.execute("DELETE FROM doors WHERE site_id = ?1 AND number = ?2", params![site_id, number])?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn door_lock(&self, site_id: &str, door: u32) -> Result<Option<LockRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                if find_door(conn, &site_id, door)?.is_none() {
                    return Ok(None);
                }
                current_lock(conn, &site_id, door)
            })
            .await
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
        let site_id = site_id.to_owned();
        let authority_key = authority.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if find_door(&tx, &site_id, door)?.is_none() {
                    return Ok(Err(LockRefused::NoSuchDoor));
                }
                let known = tx
                    .query_row("SELECT 1 FROM locks WHERE public_key = ?1", [lock_key.to_vec()], |_| Ok(()))
                    .optional()?;
                if known.is_some() {
                    return Ok(Err(LockRefused::KeyInUse));
                }
                let replaced = revoke_door_lock(&tx, door, now)?;
                let lock_id: u32 = tx.query_row("SELECT COALESCE(MAX(lock_id), 0) + 1 FROM locks", [], |r| r.get(0))?;
                // 32-bit certificate times (SPEC §2.2): clamp rather than wrap.
                let not_before = now.clamp(0, u32::MAX as i64) as u32;
                let not_after = not_before.saturating_add(valid_days.saturating_mul(86_400));
                let cert = porta_protocol::LockCertificate::issue(
                    &authority_key,
                    lock_id,
                    lock_key,
                    vec![door],
                    not_before,
                    not_after,
                )
                .map_err(|e| ApiError::Internal(format!("lock certificate: {e:?}")))?;
                tx.execute(
                    "INSERT INTO locks (lock_id, site_id, public_key, certificate, created_at, not_before, not_after)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![lock_id, site_id, lock_key.to_vec(), cert.to_bytes(), now, not_before, not_after],
                )?;
                tx.execute("INSERT INTO lock_doors (lock_id, door_number) VALUES (?1, ?2)", params![lock_id, door])?;
                tx.commit()?;
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
            })
            .await
    }

    async fn decommission_lock(&self, site_id: &str, door: u32, now: i64) -> Result<Option<u32>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if find_door(&tx, &site_id, door)?.is_none() {
                    return Ok(None);
                }
                let revoked = revoke_door_lock(&tx, door, now)?;
                tx.commit()?;
                Ok(revoked)
            })
            .await
    }

    async fn residents(&self, site_id: &str, unit_id: &str) -> Result<Option<Vec<ResidentRecord>>, ApiError> {
        let (site_id, unit_id) = (site_id.to_owned(), unit_id.to_owned());
        self.db
            .call(move |conn| {
                if !unit_at_site(conn, &site_id, &unit_id)? {
                    return Ok(None);
                }
                let mut stmt = conn.prepare(
                    "SELECT id, name, email, phone FROM users WHERE unit_id = ?1 AND kind = 'resident'
                     ORDER BY created_at, id",
                )?;
                let rows = stmt.query_map([&unit_id], |r| {
                    Ok(ResidentRecord { user_id: r.get(0)?, name: r.get(1)?, email: r.get(2)?, phone: r.get(3)? })
                })?;
                Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
            })
            .await
    }

    async fn add_resident(
        &self,
        site_id: &str,
        unit_id: &str,
        identifier: &Identifier,
        now: i64,
    ) -> Result<Option<ResidentAdded>, ApiError> {
        let (site_id, unit_id, identifier) = (site_id.to_owned(), unit_id.to_owned(), identifier.clone());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                if !unit_at_site(&tx, &site_id, &unit_id)? {
                    return Ok(None);
                }
                let user_id = find_or_create_user(&tx, &identifier, now)?;
                let current: Option<(String, String)> = tx
                    .query_row(
                        "SELECT n.id, n.site_id FROM users u JOIN units n ON n.id = u.unit_id WHERE u.id = ?1",
                        [&user_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match current {
                    Some((_, other_site)) if other_site != site_id => return Ok(Some(ResidentAdded::Elsewhere)),
                    Some((current_unit, _)) if current_unit == unit_id => {}
                    Some((current_unit, _)) => {
                        // Moving within the site: the old unit's grants leave with them.
                        for (grant_id, g) in unit_grants(&tx, &current_unit)? {
                            withdraw(&tx, &site_id, &grant_id, &g.doors, Some(&user_id), now)?;
                        }
                        tx.execute("UPDATE users SET unit_id = ?2, updated_at = ?3 WHERE id = ?1", params![user_id, unit_id, now])?;
                    }
                    None => {
                        tx.execute("UPDATE users SET unit_id = ?2, updated_at = ?3 WHERE id = ?1", params![user_id, unit_id, now])?;
                    }
                }
                let held: Vec<String> = {
                    let mut stmt = tx.prepare(
                        "SELECT DISTINCT site_grant_id FROM door_grants WHERE user_id = ?1 AND site_grant_id IS NOT NULL",
                    )?;
                    let rows = stmt.query_map([&user_id], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for (grant_id, g) in unit_grants(&tx, &unit_id)? {
                    if !held.contains(&grant_id) {
                        hand_out(&tx, &grant_id, &user_id, &g, now)?;
                    }
                }
                tx.commit()?;
                Ok(Some(ResidentAdded::Added { user_id }))
            })
            .await
    }

    async fn remove_resident(&self, site_id: &str, unit_id: &str, user_id: &str, now: i64) -> Result<bool, ApiError> {
        let (site_id, unit_id, user_id) = (site_id.to_owned(), unit_id.to_owned(), user_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let lives_there = unit_at_site(&tx, &site_id, &unit_id)?
                    && tx
                        .query_row(
                            "SELECT 1 FROM users WHERE id = ?1 AND unit_id = ?2",
                            params![user_id, unit_id],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                if !lives_there {
                    return Ok(false);
                }
                for (grant_id, g) in unit_grants(&tx, &unit_id)? {
                    withdraw(&tx, &site_id, &grant_id, &g.doors, Some(&user_id), now)?;
                }
                tx.execute("UPDATE users SET unit_id = NULL, updated_at = ?2 WHERE id = ?1", params![user_id, now])?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn grants(&self, site_id: &str) -> Result<Vec<GrantRecord>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT id, site_id, unit_id, user_id, doors, not_before, not_after, schedule_json, created_at
                     FROM site_grants WHERE site_id = ?1 ORDER BY created_at, id",
                )?;
                let rows = stmt.query_map([&site_id], |r| {
                    let grantee = match (r.get::<_, Option<String>>(2)?, r.get::<_, Option<String>>(3)?) {
                        (Some(unit), _) => Grantee::Unit(unit),
                        (None, Some(user)) => Grantee::Person(user),
                        (None, None) => return Err(conversion(std::fmt::Error)),
                    };
                    let schedule: Option<Schedule> = r
                        .get::<_, Option<String>>(7)?
                        .map(|t| serde_json::from_str(&t).map_err(conversion))
                        .transpose()?;
                    Ok(GrantRecord {
                        id: r.get(0)?,
                        site_id: r.get(1)?,
                        grantee,
                        doors: parse_doors(&r.get::<_, String>(4)?)?,
                        not_before: r.get(5)?,
                        not_after: r.get(6)?,
                        schedule,
                        created_at: r.get(8)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn create_grant(&self, grant: &GrantRecord) -> Result<Result<(), GrantRefused>, ApiError> {
        let grant = grant.clone();
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let site_id = &grant.site_id;
                for door in &grant.doors {
                    if find_door(&tx, site_id, *door)?.is_none() {
                        return Ok(Err(GrantRefused::UnknownDoor));
                    }
                }
                let (unit_id, user_id, holders) = match &grant.grantee {
                    Grantee::Unit(unit_id) => {
                        if !unit_at_site(&tx, site_id, unit_id)? {
                            return Ok(Err(GrantRefused::GranteeNotFound));
                        }
                        let holders: Vec<String> = {
                            let mut stmt =
                                tx.prepare("SELECT id FROM users WHERE unit_id = ?1 AND kind = 'resident'")?;
                            let rows = stmt.query_map([unit_id], |r| r.get(0))?;
                            rows.collect::<rusqlite::Result<_>>()?
                        };
                        (Some(unit_id.as_str()), None, holders)
                    }
                    Grantee::Person(user_id) => {
                        if !resident_at_site(&tx, site_id, user_id)? {
                            return Ok(Err(GrantRefused::GranteeNotFound));
                        }
                        (None, Some(user_id.as_str()), vec![user_id.clone()])
                    }
                };
                let stored = StoredGrant {
                    doors: grant.doors.clone(),
                    not_before: grant.not_before,
                    not_after: grant.not_after,
                    schedule_json: grant
                        .schedule
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(|e| ApiError::Internal(format!("json: {e}")))?,
                };
                let doors =
                    serde_json::to_string(&grant.doors).map_err(|e| ApiError::Internal(format!("json: {e}")))?;
                tx.execute(
                    "INSERT INTO site_grants (id, site_id, unit_id, user_id, doors, not_before, not_after,
                                              schedule_json, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        grant.id,
                        site_id,
                        unit_id,
                        user_id,
                        doors,
                        grant.not_before,
                        grant.not_after,
                        stored.schedule_json,
                        grant.created_at
                    ],
                )?;
                for holder in &holders {
                    hand_out(&tx, &grant.id, holder, &stored, grant.created_at)?;
                }
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }

    async fn revoke_grant(&self, site_id: &str, grant_id: &str, now: i64) -> Result<bool, ApiError> {
        let (site_id, grant_id) = (site_id.to_owned(), grant_id.to_owned());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let found = revoke_grant_in(&tx, &site_id, &grant_id, now)?;
                tx.commit()?;
                Ok(found)
            })
            .await
    }

    async fn site_admins(&self, site_id: &str) -> Result<Vec<RoleHolder>, ApiError> {
        let site_id = site_id.to_owned();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT u.id, u.email, u.phone FROM roles r JOIN users u ON u.id = r.user_id
                     WHERE r.role = 'site_admin' AND r.site_id = ?1 ORDER BY r.granted_at, u.id",
                )?;
                let rows = stmt.query_map([&site_id], |r| {
                    Ok(RoleHolder { user_id: r.get(0)?, email: r.get(1)?, phone: r.get(2)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn grant_site_admin(&self, site_id: &str, identifier: &Identifier, now: i64) -> Result<String, ApiError> {
        let (site_id, identifier) = (site_id.to_owned(), identifier.clone());
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                let user_id = make_site_admin(&tx, &site_id, &identifier, now)?;
                tx.commit()?;
                Ok(user_id)
            })
            .await
    }

    async fn revoke_site_admin(&self, site_id: &str, user_id: &str) -> Result<bool, ApiError> {
        let (site_id, user_id) = (site_id.to_owned(), user_id.to_owned());
        self.db
            .call(move |conn| {
                let n = conn.execute(
                    "DELETE FROM roles WHERE role = 'site_admin' AND site_id = ?1 AND user_id = ?2",
                    params![site_id, user_id],
                )?;
                Ok(n > 0)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::store_tests::Fixture;

    async fn get_store() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("porta.db")).unwrap();
        let now = 1_750_000_000;
        let tx = conn.transaction().unwrap();
        for (site, name) in [("site-a", "A"), ("site-b", "B")] {
            tx.execute("INSERT INTO sites (id, name, address) VALUES (?1, ?2, '')", params![site, name]).unwrap();
        }
        tx.commit().unwrap();
        let store = SqliteAdminStore::new(Db::new(conn));
        Fixture { store: Box::new(store), _dir: Box::new(dir), site_a: "site-a".into(), site_b: "site-b".into(), now }
    }

    crate::admin_store_tests!(get_store);
}
