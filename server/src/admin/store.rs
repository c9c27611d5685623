//! What the admin domain needs from storage, as one trait. Handlers and policy in [`super`]
//! hold an `Arc<dyn AdminStore>` and never see SQL; each backend implements it and runs the
//! shared suite in [`super::store_tests`].
//!
//! Every method that names a unit, door, grant or person also takes the site: a record of
//! another site is "not found", so an id smuggled into another site's path reaches nothing.

use async_trait::async_trait;
use ed25519_dalek::SigningKey;

use crate::doors::Schedule;
use crate::error::ApiError;
use crate::identity::Identifier;
use crate::site_time::SiteTime;

/// A role of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Every site; only from the server's configuration.
    Operator,
    SiteAdmin {
        site_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRecord {
    pub id: String,
    pub name: String,
    pub address: String,
    pub time: SiteTime,
    pub max_invitation_days: i64,
    pub tenants_may_invite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    pub id: String,
    pub site_id: String,
    pub name: String,
    /// `apartment` or `office`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorRecord {
    /// The door number used by credentials and locks.
    pub number: u32,
    pub site_id: String,
    pub name: String,
    pub log_retention_days: i64,
    /// The door's current lock.
    pub lock_id: Option<u32>,
}

/// A change to a door; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoorChange {
    pub name: Option<String>,
    pub log_retention_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentRecord {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// Every resident of the unit, including those added later.
    Unit(String),
    /// One resident of the site.
    Person(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub site_id: String,
    pub grantee: Grantee,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub created_at: i64,
}

/// Why a grant could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRefused {
    /// The unit, or the person as a resident, is not at the site.
    GranteeNotFound,
    /// A door is not the site's.
    UnknownDoor,
}

/// What adding a resident did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResidentAdded {
    /// The account (found or created) now lives in the unit.
    Added { user_id: String },
    /// The person lives in a unit of another site and stays there: nothing changed.
    Elsewhere,
}

/// A lock certified for a door (the door's current lock unless revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub lock_id: u32,
    pub door: u32,
    pub public_key: [u8; 32],
    /// The signed certificate (SPEC §2.2).
    pub certificate: Vec<u8>,
    pub not_before: u32,
    pub not_after: u32,
    pub provisioned_at: i64,
    /// The lock this one replaced at the door, whose certificate was revoked.
    pub replaced_lock_id: Option<u32>,
}

/// Why a lock could not be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRefused {
    /// The site has no such door.
    NoSuchDoor,
    /// The site certified this key before (for any door): a key is installed once.
    KeyInUse,
}

/// One holder of an admin role at a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHolder {
    pub user_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn roles_of(&self, user_id: &str) -> Result<Vec<Role>, ApiError>;
    /// Makes the account of `identifier` (created if needed) an operator.
    async fn ensure_operator(&self, identifier: &Identifier, now: i64) -> Result<String, ApiError>;
    /// Counts one admin write by `user_id` unless `limit` were made in the `window` seconds
    /// before `now`; then errs with `rate_limited`.
    async fn count_write(&self, user_id: &str, now: i64, window: i64, limit: u32) -> Result<(), ApiError>;

    /// The sites `only` names (all with `None`), by name.
    async fn sites(&self, only: Option<&[String]>) -> Result<Vec<SiteRecord>, ApiError>;
    async fn site(&self, site_id: &str) -> Result<Option<SiteRecord>, ApiError>;
    /// A new site, with its authority key.
    async fn create_site(&self, site: &SiteRecord) -> Result<(), ApiError>;
    async fn update_site(&self, site: &SiteRecord) -> Result<(), ApiError>;

    async fn units(&self, site_id: &str) -> Result<Vec<UnitRecord>, ApiError>;
    async fn create_unit(&self, unit: &UnitRecord) -> Result<(), ApiError>;
    /// Deletes the unit: its grants are revoked (their credentials listed), its residents
    /// stay as accounts without a unit. `false` if the site has no such unit.
    async fn delete_unit(&self, site_id: &str, unit_id: &str, now: i64) -> Result<bool, ApiError>;

    async fn doors(&self, site_id: &str) -> Result<Vec<DoorRecord>, ApiError>;
    /// A new door with the next free number.
    async fn create_door(&self, site_id: &str, name: &str, log_retention_days: i64) -> Result<DoorRecord, ApiError>;
    async fn update_door(
        &self,
        site_id: &str,
        number: u32,
        change: &DoorChange,
    ) -> Result<Option<DoorRecord>, ApiError>;
    /// Deletes the door; credentials that open it are revoked, and so is its lock. `false` if
    /// not the site's.
    async fn delete_door(&self, site_id: &str, number: u32, now: i64) -> Result<bool, ApiError>;

    /// The door's current lock; `None` if it has none or the site has no such door.
    async fn door_lock(&self, site_id: &str, door: u32) -> Result<Option<LockRecord>, ApiError>;
    /// Certifies `lock_key` (whose holder the caller has checked) as the door's lock for
    /// `valid_days` from `now`, with the next free lock id, signed by `authority` (the site's
    /// key: the store keeps no key of its own for this). A lock the door had is revoked in the
    /// same transaction.
    async fn install_lock(
        &self,
        site_id: &str,
        door: u32,
        lock_key: [u8; 32],
        authority: &SigningKey,
        valid_days: u32,
        now: i64,
    ) -> Result<Result<LockRecord, LockRefused>, ApiError>;
    /// Revokes the door's current lock (decommissioned); its id, or `None` if it had none.
    async fn decommission_lock(&self, site_id: &str, door: u32, now: i64) -> Result<Option<u32>, ApiError>;

    /// The unit's residents; `None` if the site has no such unit.
    async fn residents(&self, site_id: &str, unit_id: &str) -> Result<Option<Vec<ResidentRecord>>, ApiError>;
    /// Puts the account of `identifier` (created if needed) in the unit, and gives it the
    /// unit's grants. `None` if the site has no such unit.
    async fn add_resident(
        &self,
        site_id: &str,
        unit_id: &str,
        identifier: &Identifier,
        now: i64,
    ) -> Result<Option<ResidentAdded>, ApiError>;
    /// Takes the person out of the unit: the unit's grants leave them (credentials listed).
    async fn remove_resident(&self, site_id: &str, unit_id: &str, user_id: &str, now: i64) -> Result<bool, ApiError>;

    async fn grants(&self, site_id: &str) -> Result<Vec<GrantRecord>, ApiError>;
    async fn create_grant(&self, grant: &GrantRecord) -> Result<Result<(), GrantRefused>, ApiError>;
    /// Revokes the grant: it leaves every holder and the credentials that carried its doors
    /// go on the site's revocation list. `false` if the site has no such grant.
    async fn revoke_grant(&self, site_id: &str, grant_id: &str, now: i64) -> Result<bool, ApiError>;

    async fn site_admins(&self, site_id: &str) -> Result<Vec<RoleHolder>, ApiError>;
    /// Makes the account of `identifier` (created if needed) a site admin; its user id.
    async fn grant_site_admin(&self, site_id: &str, identifier: &Identifier, now: i64) -> Result<String, ApiError>;
    async fn revoke_site_admin(&self, site_id: &str, user_id: &str) -> Result<bool, ApiError>;
}
