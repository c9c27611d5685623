//! The building's administration: sites, units, doors, residents, grants, door-log retention,
//! admin roles and the security-event log, under `/v1/admin`.
//!
//! Admins sign in like everyone (`/v1/auth`). A role is scoped: `site_admin` of one site, or
//! `operator` of every site (only from the server's configuration, `Config::bootstrap_operators`).
//! Every request is checked in one place, the [`SiteAdmin`] (or [`Operator`]) extractor, before
//! the handler runs; the store then looks every unit, door, grant and person up *within* that
//! site. Refusals are consistent:
//! - no admin role at all: `403 forbidden` on every admin endpoint;
//! - an operator-only action (creating a site, the whole log) by a site admin: `403 forbidden`;
//! - a site the caller does not administer, or an id of another site inside the caller's
//!   site's path: `404 not_found`, exactly as for an id that does not exist, so nothing tells
//!   an admin which other sites or records exist.
//!
//! Admin writes are rate limited per admin (`Limits::admin_writes_per_window`).
//!
//! Policy lives here; storage is behind [`store::AdminStore`] (SQLite: [`sqlite`]).

pub mod locks;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::store::{
    DoorChange, DoorRecord, GrantRecord, GrantRefused, Grantee, ResidentAdded, Role, SiteRecord, UnitRecord,
};
use crate::auth::{AuthUser, CodePurpose};
use crate::client_ip::ClientIp;
use crate::doors::{Schedule, ScheduleWindow};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::identity::Identifier;
use crate::security_log::{EventFilter, EventKind, NewEvent, SecurityEvent};
use crate::site_time::{DstRule, SiteTime};
use crate::AppState;

/// Bounds of a door's access-log retention, in days.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=365;
/// Longest site, unit and door name, and address.
pub const MAX_NAME_CHARS: usize = 100;
/// Most security events per page.
pub const MAX_EVENTS_PER_PAGE: u32 = 200;

/// A signed-in account with at least one admin role.
pub struct Admin {
    pub user_id: String,
    pub roles: Vec<Role>,
}

impl Admin {
    pub fn is_operator(&self) -> bool {
        self.roles.contains(&Role::Operator)
    }

    fn administers(&self, site_id: &str) -> bool {
        self.roles.iter().any(|r| match r {
            Role::Operator => true,
            Role::SiteAdmin { site_id: s } => s == site_id,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        if auth.guest {
            return Err(ApiError::Forbidden);
        }
        let roles = state.admin.roles_of(&auth.user_id).await?;
        if roles.is_empty() {
            return Err(ApiError::Forbidden);
        }
        // Every write by an admin counts, refused or not; reads are free.
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let limits = &state.limits;
            let now = state.clock.now();
            state.admin.count_write(&auth.user_id, now, limits.rate_window_s, limits.admin_writes_per_window).await?;
        }
        Ok(Admin { user_id: auth.user_id, roles })
    }
}

/// An operator (every site).
pub struct Operator {
    pub user_id: String,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = Admin::from_request_parts(parts, state).await?;
        if !admin.is_operator() {
            return Err(ApiError::Forbidden);
        }
        Ok(Operator { user_id: admin.user_id })
    }
}

/// An admin of the site named by the path's `{site_id}`: its site admin, or an operator. The
/// one place where admin access to a site is decided.
pub struct SiteAdmin {
    pub user_id: String,
    pub site: SiteRecord,
    pub operator: bool,
}

impl SiteAdmin {
    pub fn site_id(&self) -> &str {
        &self.site.id
    }

    fn event(&self, kind: EventKind, now: i64) -> NewEvent {
        NewEvent::new(kind, now).site(self.site_id()).actor(&self.user_id)
    }
}

impl FromRequestParts<AppState> for SiteAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        let site_id = params.iter().find(|(name, _)| *name == "site_id").map(|(_, v)| v.to_owned());
        let site_id = site_id.ok_or_else(|| ApiError::Internal("an admin route without {site_id}".into()))?;
        if !admin.administers(&site_id) {
            return Err(ApiError::NotFound);
        }
        let site = state.admin.site(&site_id).await?.ok_or(ApiError::NotFound)?;
        Ok(SiteAdmin { operator: admin.is_operator(), user_id: admin.user_id, site })
    }
}

pub(crate) async fn log(state: &AppState, event: NewEvent) -> Result<(), ApiError> {
    state.security.record(event).await
}

/// A name as documented: at most 100 characters as sent, 1 to 100 visible ones once trimmed.
fn checked_name(raw: &str, field: &str) -> Result<String, ApiError> {
    crate::identity::check_name(raw, MAX_NAME_CHARS)
        .map_err(|_| ApiError::InvalidField { problem: "1 to 100 visible characters in", field: field.into() })
}

fn identifier(raw: &str) -> Result<Identifier, ApiError> {
    Identifier::parse(raw).ok_or(ApiError::InvalidIdentifier)
}

/// `deserialize_with` for optional integers: JSON Schema's `integer` includes `187.0`, so a
/// number with no fractional part is taken as the integer it is.
pub(crate) fn whole<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let Some(value) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let int =
        value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64));
    int.and_then(|i| T::try_from(i).ok()).map(Some).ok_or_else(|| D::Error::custom("expected an integer in range"))
}

// ---- sites ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DstRuleName {
    /// No daylight-saving time.
    None,
    /// Summer time (+1 h) from the last Sunday of March to the last Sunday of October.
    Eu,
}

impl From<DstRuleName> for DstRule {
    fn from(rule: DstRuleName) -> Self {
        match rule {
            DstRuleName::None => DstRule::None,
            DstRuleName::Eu => DstRule::Eu,
        }
    }
}

impl From<DstRule> for DstRuleName {
    fn from(rule: DstRule) -> Self {
        match rule {
            DstRule::None => DstRuleName::None,
            DstRule::Eu => DstRuleName::Eu,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Site {
    pub id: String,
    #[schema(example = "Demo Building")]
    pub name: String,
    pub address: String,
    /// Standard local time = UTC + this many minutes.
    pub utc_offset_minutes: i16,
    pub dst_rule: DstRuleName,
    /// Longest invitation window tenants may give.
    pub max_invitation_days: i64,
    /// Whether tenants may invite guests.
    pub tenants_may_invite: bool,
}

fn site_view(s: &SiteRecord) -> Site {
    Site {
        id: s.id.clone(),
        name: s.name.clone(),
        address: s.address.clone(),
        utc_offset_minutes: s.time.standard_offset_minutes,
        dst_rule: s.time.dst.into(),
        max_invitation_days: s.max_invitation_days,
        tenants_may_invite: s.tenants_may_invite,
    }
}

/// A change to a site; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteFields {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// Same rules as the name.
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub address: Option<String>,
    #[schema(minimum = -1080, maximum = 1080)]
    #[serde(default, deserialize_with = "whole")]
    pub utc_offset_minutes: Option<i16>,
    pub dst_rule: Option<DstRuleName>,
    #[schema(minimum = 1, maximum = 366)]
    #[serde(default, deserialize_with = "whole")]
    pub max_invitation_days: Option<i64>,
    pub tenants_may_invite: Option<bool>,
}

/// A new site. Absent fields take the defaults: no address, UTC, no summer time, 30 days,
/// tenants may invite.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(
        example = "Elm Court",
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Same rules as the name.
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub address: Option<String>,
    #[schema(minimum = -1080, maximum = 1080)]
    #[serde(default, deserialize_with = "whole")]
    pub utc_offset_minutes: Option<i16>,
    pub dst_rule: Option<DstRuleName>,
    #[schema(minimum = 1, maximum = 366)]
    #[serde(default, deserialize_with = "whole")]
    pub max_invitation_days: Option<i64>,
    pub tenants_may_invite: Option<bool>,
}

impl SiteFields {
    fn apply(self, site: &mut SiteRecord) -> Result<(), ApiError> {
        if let Some(name) = self.name {
            site.name = checked_name(&name, "name")?;
        }
        if let Some(address) = self.address {
            site.address = checked_name(&address, "address")?;
        }
        if let Some(offset) = self.utc_offset_minutes {
            if !(-1080..=1080).contains(&offset) {
                return Err(ApiError::InvalidField { problem: "-1080 to 1080 in", field: "utc_offset_minutes".into() });
            }
            site.time.standard_offset_minutes = offset;
        }
        if let Some(rule) = self.dst_rule {
            site.time.dst = rule.into();
        }
        if let Some(days) = self.max_invitation_days {
            if !(1..=366).contains(&days) {
                return Err(ApiError::InvalidField { problem: "1 to 366 in", field: "max_invitation_days".into() });
            }
            site.max_invitation_days = days;
        }
        if let Some(may) = self.tenants_may_invite {
            site.tenants_may_invite = may;
        }
        Ok(())
    }
}

/// The sites the caller administers (an operator: every site).
#[utoipa::path(
    get, path = "/v1/admin/sites", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Sites", body = Vec<Site>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
    )
)]
pub async fn list_sites(State(state): State<AppState>, admin: Admin) -> Result<ApiJson<Vec<Site>>, ApiError> {
    let only: Option<Vec<String>> = (!admin.is_operator()).then(|| {
        admin
            .roles
            .iter()
            .filter_map(|r| match r {
                Role::SiteAdmin { site_id } => Some(site_id.clone()),
                Role::Operator => None,
            })
            .collect()
    });
    let sites = state.admin.sites(only.as_deref()).await?;
    Ok(ApiJson(sites.iter().map(site_view).collect()))
}

/// Create a site (operators only), with its own authority key.
#[utoipa::path(
    post, path = "/v1/admin/sites", tag = "admin", security(("bearer" = [])),
    request_body = NewSite,
    responses(
        (status = 201, description = "Created", body = Site),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create_site(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(body): ApiJson<NewSite>,
) -> Result<(StatusCode, ApiJson<Site>), ApiError> {
    let body = SiteFields {
        name: Some(body.name),
        address: body.address,
        utc_offset_minutes: body.utc_offset_minutes,
        dst_rule: body.dst_rule,
        max_invitation_days: body.max_invitation_days,
        tenants_may_invite: body.tenants_may_invite,
    };
    let mut site = SiteRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: String::new(),
        address: String::new(),
        time: SiteTime::fixed(0),
        max_invitation_days: 30,
        tenants_may_invite: true,
    };
    body.apply(&mut site)?;
    state.admin.create_site(&site).await?;
    let now = state.clock.now();
    log(
        &state,
        NewEvent::new(EventKind::SiteChanged, now).site(&site.id).actor(&operator.user_id).detail("site_created"),
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(site_view(&site))))
}

/// One site.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "The site", body = Site),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn get_site(admin: SiteAdmin) -> ApiJson<Site> {
    ApiJson(site_view(&admin.site))
}

/// Change a site's name, address, time zone or invitation rules.
#[utoipa::path(
    patch, path = "/v1/admin/sites/{site_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = SiteFields,
    responses(
        (status = 200, description = "The site as changed", body = Site),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn patch_site(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<SiteFields>,
) -> Result<ApiJson<Site>, ApiError> {
    let mut site = admin.site.clone();
    body.apply(&mut site)?;
    state.admin.update_site(&site).await?;
    log(&state, admin.event(EventKind::SiteChanged, state.clock.now()).detail("site_updated")).await?;
    Ok(ApiJson(site_view(&site)))
}

// ---- units ----

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    Apartment,
    Office,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unit {
    pub id: String,
    #[schema(example = "Apartment 4B")]
    pub name: String,
    /// `apartment` or `office`.
    pub kind: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(
        example = "Apartment 4B",
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    pub kind: UnitKind,
}

fn unit_view(u: &UnitRecord) -> Unit {
    Unit { id: u.id.clone(), name: u.name.clone(), kind: u.kind.clone() }
}

/// The site's units.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/units", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "Units", body = Vec<Unit>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn list_units(State(state): State<AppState>, admin: SiteAdmin) -> Result<ApiJson<Vec<Unit>>, ApiError> {
    Ok(ApiJson(state.admin.units(admin.site_id()).await?.iter().map(unit_view).collect()))
}

/// Add a unit.
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/units", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = NewUnit,
    responses(
        (status = 201, description = "Created", body = Unit),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create_unit(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<NewUnit>,
) -> Result<(StatusCode, ApiJson<Unit>), ApiError> {
    let kind = match body.kind {
        UnitKind::Apartment => "apartment",
        UnitKind::Office => "office",
    };
    let unit = UnitRecord {
        id: uuid::Uuid::new_v4().to_string(),
        site_id: admin.site_id().to_owned(),
        name: checked_name(&body.name, "name")?,
        kind: kind.into(),
    };
    state.admin.create_unit(&unit).await?;
    log(&state, admin.event(EventKind::SiteChanged, state.clock.now()).subject(&unit.id).detail("unit_created"))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(unit_view(&unit))))
}

/// Delete a unit: its grants are revoked (their credentials go on the revocation list) and
/// its residents keep their accounts, without a unit.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/units/{unit_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("unit_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unit at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn delete_unit(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, unit_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    if !state.admin.delete_unit(admin.site_id(), &unit_id, now).await? {
        return Err(ApiError::NotFound);
    }
    log(&state, admin.event(EventKind::SiteChanged, now).subject(&unit_id).detail("unit_deleted")).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- doors ----

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminDoor {
    /// The door id used in credentials and by locks.
    pub door_id: u32,
    pub name: String,
    /// Access events at this door are kept this many days (1 to 365).
    pub log_retention_days: i64,
    /// The door's lock, once one is provisioned (`POST …/doors/{door_id}/lock`).
    pub lock_id: Option<u32>,
}

fn door_view(d: &DoorRecord) -> AdminDoor {
    AdminDoor { door_id: d.number, name: d.name.clone(), log_retention_days: d.log_retention_days, lock_id: d.lock_id }
}

/// A new door.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDoor {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(
        example = "Bike room",
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Days the door's access events are kept: 1 to 365 (default 90).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "whole")]
    pub log_retention_days: Option<i64>,
}

/// A change to a door; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorFields {
    /// 1 to 100 characters, no control or invisible formatting characters.
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]*[^\x00-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// Days the door's access events are kept: 1 to 365 (default 90). Lowering it applies
    /// at the next hourly purge.
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "whole")]
    pub log_retention_days: Option<i64>,
}

impl DoorFields {
    fn check(self) -> Result<DoorChange, ApiError> {
        let name = self.name.as_deref().map(|n| checked_name(n, "name")).transpose()?;
        if let Some(days) = self.log_retention_days {
            if !RETENTION_DAYS.contains(&days) {
                return Err(ApiError::InvalidField { problem: "1 to 365 in", field: "log_retention_days".into() });
            }
        }
        Ok(DoorChange { name, log_retention_days: self.log_retention_days })
    }
}

pub(crate) fn door_number(raw: &str) -> Result<u32, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// The site's doors.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/doors", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "Doors", body = Vec<AdminDoor>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn list_doors(State(state): State<AppState>, admin: SiteAdmin) -> Result<ApiJson<Vec<AdminDoor>>, ApiError> {
    Ok(ApiJson(state.admin.doors(admin.site_id()).await?.iter().map(door_view).collect()))
}

/// Add a door; it gets the next free door id.
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/doors", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = NewDoor,
    responses(
        (status = 201, description = "Created", body = AdminDoor),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create_door(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<NewDoor>,
) -> Result<(StatusCode, ApiJson<AdminDoor>), ApiError> {
    let change = DoorFields { name: Some(body.name), log_retention_days: body.log_retention_days }.check()?;
    let name = change.name.ok_or(ApiError::InvalidField { problem: "a value for", field: "name".into() })?;
    let door = state.admin.create_door(admin.site_id(), &name, change.log_retention_days.unwrap_or(90)).await?;
    let subject = door.number.to_string();
    log(&state, admin.event(EventKind::SiteChanged, state.clock.now()).subject(&subject).detail("door_created"))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(door_view(&door))))
}

/// Rename a door or set its access-log retention.
#[utoipa::path(
    patch, path = "/v1/admin/sites/{site_id}/doors/{door_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("door_id" = u32, Path)),
    request_body = DoorFields,
    responses(
        (status = 200, description = "The door as changed", body = AdminDoor),
        (status = 400, description = "`invalid_request`: e.g. a retention outside 1 to 365 days", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such door at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn patch_door(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, door)): Path<(String, String)>,
    ApiJson(body): ApiJson<DoorFields>,
) -> Result<ApiJson<AdminDoor>, ApiError> {
    let number = door_number(&door)?;
    let change = body.check()?;
    let door = state.admin.update_door(admin.site_id(), number, &change).await?.ok_or(ApiError::NotFound)?;
    let now = state.clock.now();
    let subject = door.number.to_string();
    if change.name.is_some() {
        log(&state, admin.event(EventKind::SiteChanged, now).subject(&subject).detail("door_renamed")).await?;
    }
    if change.log_retention_days.is_some() {
        log(&state, admin.event(EventKind::RetentionChanged, now).subject(&subject)).await?;
    }
    Ok(ApiJson(door_view(&door)))
}

/// Delete a door: credentials that open it go on the revocation list.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/doors/{door_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("door_id" = u32, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such door at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn delete_door(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, door)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let number = door_number(&door)?;
    let now = state.clock.now();
    if !state.admin.delete_door(admin.site_id(), number, now).await? {
        return Err(ApiError::NotFound);
    }
    log(&state, admin.event(EventKind::SiteChanged, now).subject(&number.to_string()).detail("door_deleted")).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- residents ----

#[derive(Debug, Serialize, ToSchema)]
pub struct Resident {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResident {
    /// Email or phone number; the account is created if needed and a sign-in code is sent.
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResidentInvited {
    /// Seconds the sign-in code sent to the person stays valid.
    pub code_expires_in_s: i64,
}

/// A unit's residents.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/units/{unit_id}/residents", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("unit_id" = String, Path)),
    responses(
        (status = 200, description = "Residents", body = Vec<Resident>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unit at a site you administer", body = ErrorBody),
    )
)]
pub async fn list_residents(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, unit_id)): Path<(String, String)>,
) -> Result<ApiJson<Vec<Resident>>, ApiError> {
    let residents = state.admin.residents(admin.site_id(), &unit_id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(
        residents
            .into_iter()
            .map(|r| Resident { user_id: r.user_id, name: r.name, email: r.email, phone: r.phone })
            .collect(),
    ))
}

/// Add a resident to a unit by email or phone. The account is found or created, gets the
/// unit's grants, and a sign-in code is sent to it. The answer is the same whether or not the
/// person had an account (someone living at another site stays there).
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/units/{unit_id}/residents", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("unit_id" = String, Path)),
    request_body = NewResident,
    responses(
        (status = 202, description = "Added; a code is on its way", body = ResidentInvited),
        (status = 400, description = "`invalid_identifier` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unit at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
        (status = 503, description = "`delivery_failed`: added, but the code could not be sent; add again to resend", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn add_resident(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    admin: SiteAdmin,
    Path((_, unit_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewResident>,
) -> Result<(StatusCode, ApiJson<ResidentInvited>), ApiError> {
    let who = identifier(&body.identifier)?;
    let now = state.clock.now();
    let added = state.admin.add_resident(admin.site_id(), &unit_id, &who, now).await?.ok_or(ApiError::NotFound)?;
    if let ResidentAdded::Added { user_id } = &added {
        log(&state, admin.event(EventKind::ResidentAdded, now).subject(user_id).detail("unit")).await?;
    }
    // The invitation is a sign-in code, under the same limits as one the person asks for. A
    // limited request still answers alike: the person can ask for a code themselves.
    let code = crate::auth::new_code();
    let code = match state
        .auth
        .issue_code(&who, CodePurpose::SignIn, client, Some(&code), now, (&state.limits).into())
        .await
    {
        Ok(()) => Some(code),
        Err(ApiError::RateLimited { .. }) => None,
        Err(other) => return Err(other),
    };
    // A provider that fails is the admin's retryable 503; the resident stays added.
    let (_, ApiJson(sent)) = crate::auth::code_sent(&state, &who, code).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(ResidentInvited { code_expires_in_s: sent.expires_in_s })))
}

/// Take a resident out of a unit: the unit's grants leave them and their credentials for
/// those doors go on the revocation list. The account stays.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/units/{unit_id}/residents/{user_id}", tag = "admin",
    security(("bearer" = [])),
    params(("site_id" = String, Path), ("unit_id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such resident of that unit at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn remove_resident(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, unit_id, user_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    if !state.admin.remove_resident(admin.site_id(), &unit_id, &user_id, now).await? {
        return Err(ApiError::NotFound);
    }
    log(&state, admin.event(EventKind::ResidentRemoved, now).subject(&user_id).detail("unit")).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- grants ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    /// 1 to 16 windows, in the site's local time.
    #[schema(min_items = 1, max_items = 16)]
    #[serde(deserialize_with = "crate::error::nested_objects")]
    pub windows: Vec<ScheduleWindow>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    /// Grant to every resident of this unit (now and later)…
    pub unit_id: Option<String>,
    /// …or to this resident of the site. Exactly one of the two.
    pub user_id: Option<String>,
    /// Door ids of the site.
    #[schema(min_items = 1, max_items = 32)]
    pub doors: Vec<u32>,
    /// Unix seconds; default now.
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    #[serde(default, deserialize_with = "whole")]
    pub not_before: Option<i64>,
    /// Unix seconds, inclusive; default 2100-01-01 (no end).
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    #[serde(default, deserialize_with = "whole")]
    pub not_after: Option<i64>,
    /// Weekly hours; none = any time in the window.
    #[serde(default, deserialize_with = "crate::error::nested_objects")]
    pub schedule: Option<WeeklyHours>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminGrant {
    pub id: String,
    pub unit_id: Option<String>,
    pub user_id: Option<String>,
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    /// In the site's local time.
    pub schedule: Option<Schedule>,
    pub created_at: i64,
}

fn grant_view(g: &GrantRecord) -> AdminGrant {
    let (unit_id, user_id) = match &g.grantee {
        Grantee::Unit(u) => (Some(u.clone()), None),
        Grantee::Person(p) => (None, Some(p.clone())),
    };
    AdminGrant {
        id: g.id.clone(),
        unit_id,
        user_id,
        doors: g.doors.clone(),
        not_before: g.not_before,
        not_after: g.not_after,
        schedule: g.schedule.clone(),
        created_at: g.created_at,
    }
}

/// The grants made at the site.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/grants", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "Grants", body = Vec<AdminGrant>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn list_grants(
    State(state): State<AppState>,
    admin: SiteAdmin,
) -> Result<ApiJson<Vec<AdminGrant>>, ApiError> {
    Ok(ApiJson(state.admin.grants(admin.site_id()).await?.iter().map(grant_view).collect()))
}

/// Grant doors to a unit or a resident, for a window and optionally weekly hours. The
/// residents' next sync (`GET /v1/me/doors`) carries them.
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/grants", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = NewGrant,
    responses(
        (status = 201, description = "Granted", body = AdminGrant),
        (status = 400, description = "`unknown_door` (not a door of the site), `invalid_window`, `invalid_schedule` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer, or no such unit or resident there", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create_grant(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<NewGrant>,
) -> Result<(StatusCode, ApiJson<AdminGrant>), ApiError> {
    let now = state.clock.now();
    let grantee = match (body.unit_id, body.user_id) {
        (Some(unit), None) => Grantee::Unit(unit),
        (None, Some(user)) => Grantee::Person(user),
        _ => return Err(ApiError::InvalidField { problem: "exactly one of `unit_id` and", field: "user_id".into() }),
    };
    let mut doors = body.doors;
    doors.sort_unstable();
    doors.dedup();
    if doors.is_empty() || doors.len() > porta_protocol::MAX_DOORS {
        return Err(ApiError::InvalidField { problem: "1 to 32 entries in", field: "doors".into() });
    }
    let not_before = body.not_before.unwrap_or(now);
    let not_after = body.not_after.unwrap_or(crate::demo::FOREVER);
    if not_before < 0 || not_after < not_before || not_after > i64::from(u32::MAX) {
        return Err(ApiError::InvalidWindow);
    }
    let schedule = match body.schedule {
        None => None,
        Some(hours) => {
            let schedule =
                Schedule { utc_offset_minutes: admin.site.time.standard_offset_minutes, windows: hours.windows };
            schedule.validate()?;
            Some(schedule)
        }
    };
    let grant = GrantRecord {
        id: uuid::Uuid::new_v4().to_string(),
        site_id: admin.site_id().to_owned(),
        grantee,
        doors,
        not_before,
        not_after,
        schedule,
        created_at: now,
    };
    match state.admin.create_grant(&grant).await? {
        Ok(()) => {}
        Err(GrantRefused::UnknownDoor) => return Err(ApiError::UnknownDoor),
        Err(GrantRefused::GranteeNotFound) => return Err(ApiError::NotFound),
    }
    let detail = if matches!(grant.grantee, Grantee::Unit(_)) { "unit" } else { "person" };
    log(&state, admin.event(EventKind::GrantCreated, now).subject(&grant.id).detail(detail)).await?;
    Ok((StatusCode::CREATED, ApiJson(grant_view(&grant))))
}

/// Revoke a grant: it leaves everyone who held it, and the credentials that carried its
/// doors go on the site's revocation list, which phones carry to the locks.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/grants/{grant_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("grant_id" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: no such grant at a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn revoke_grant(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, grant_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    if !state.admin.revoke_grant(admin.site_id(), &grant_id, now).await? {
        return Err(ApiError::NotFound);
    }
    log(&state, admin.event(EventKind::GrantRevoked, now).subject(&grant_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- roles ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    SiteAdmin,
    /// Refused here (`forbidden`): operators come only from the server's configuration.
    Operator,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SiteRole {
    pub user_id: String,
    pub role: RoleName,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Email or phone number; the account is created if needed.
    #[schema(
        example = "admin@example.com",
        max_length = 254,
        pattern = r#"^([ ()-]{0,4}\+[ ()-]{0,4}([0-9][ ()-]{0,4}){8,15}|[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$"#
    )]
    pub identifier: String,
    /// Default `site_admin`.
    pub role: Option<RoleName>,
}

/// The site's admins.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/roles", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    responses(
        (status = 200, description = "Site admins", body = Vec<SiteRole>),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn list_roles(State(state): State<AppState>, admin: SiteAdmin) -> Result<ApiJson<Vec<SiteRole>>, ApiError> {
    let holders = state.admin.site_admins(admin.site_id()).await?;
    Ok(ApiJson(
        holders
            .into_iter()
            .map(|h| SiteRole { user_id: h.user_id, role: RoleName::SiteAdmin, email: h.email, phone: h.phone })
            .collect(),
    ))
}

/// Make someone site admin of this site (an operator, or a site admin of this site, may).
#[utoipa::path(
    post, path = "/v1/admin/sites/{site_id}/roles", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path)),
    request_body = NewRole,
    responses(
        (status = 201, description = "Granted", body = SiteRole),
        (status = 400, description = "`invalid_identifier` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role, or the `operator` role was asked for", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn grant_role(
    State(state): State<AppState>,
    admin: SiteAdmin,
    ApiJson(body): ApiJson<NewRole>,
) -> Result<(StatusCode, ApiJson<SiteRole>), ApiError> {
    if body.role == Some(RoleName::Operator) {
        return Err(ApiError::Forbidden);
    }
    let who = identifier(&body.identifier)?;
    let now = state.clock.now();
    let user_id = state.admin.grant_site_admin(admin.site_id(), &who, now).await?;
    log(&state, admin.event(EventKind::RoleGranted, now).subject(&user_id).detail("site_admin")).await?;
    let (email, phone) = match &who {
        Identifier::Email(e) => (Some(e.clone()), None),
        Identifier::Phone(p) => (None, Some(p.clone())),
    };
    Ok((StatusCode::CREATED, ApiJson(SiteRole { user_id, role: RoleName::SiteAdmin, email, phone })))
}

/// Take the site-admin role away.
#[utoipa::path(
    delete, path = "/v1/admin/sites/{site_id}/roles/{user_id}", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), ("user_id" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site admin of a site you administer", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many admin changes", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn revoke_role(
    State(state): State<AppState>,
    admin: SiteAdmin,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !state.admin.revoke_site_admin(admin.site_id(), &user_id).await? {
        return Err(ApiError::NotFound);
    }
    log(&state, admin.event(EventKind::RoleRevoked, state.clock.now()).subject(&user_id).detail("site_admin")).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- security events ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// Only events at or after this Unix time.
    #[param(minimum = 0)]
    pub since: Option<i64>,
    /// Only events with a smaller id: pass the previous page's `next_before`.
    #[param(minimum = 0)]
    pub before: Option<i64>,
    /// Events per page: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecurityEvents {
    /// Newest first.
    pub events: Vec<SecurityEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

async fn read_events(
    state: &AppState,
    site_id: Option<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<ApiJson<SecurityEvents>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::InvalidRequest)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_EVENTS_PER_PAGE).contains(&limit) {
        return Err(ApiError::InvalidField { problem: "1 to 200 in", field: "limit".into() });
    }
    for (value, field) in [(query.since, "since"), (query.before, "before")] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::InvalidField { problem: "0 or more in", field: field.into() });
        }
    }
    let filter = EventFilter { site_id, kind: query.kind, since: query.since, before: query.before, limit };
    let events = state.security.list(&filter).await?;
    let next_before = (events.len() == limit as usize).then(|| events.last().map(|e| e.id)).flatten();
    Ok(ApiJson(SecurityEvents { events, next_before }))
}

/// The site's security events: grant, role, resident, site and retention changes made there.
#[utoipa::path(
    get, path = "/v1/admin/sites/{site_id}/security-events", tag = "admin", security(("bearer" = [])),
    params(("site_id" = String, Path), EventsQuery),
    responses(
        (status = 200, description = "Events, newest first", body = SecurityEvents),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: no admin role", body = ErrorBody),
        (status = 404, description = "`not_found`: not a site you administer", body = ErrorBody),
    )
)]
pub async fn site_events(
    State(state): State<AppState>,
    admin: SiteAdmin,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<ApiJson<SecurityEvents>, ApiError> {
    read_events(&state, Some(admin.site.id.clone()), query).await
}

/// Every security event, sign-ins, failed codes and account deletions included (operators
/// only). Actors and subjects are random ids: the log holds no names, emails or phones.
#[utoipa::path(
    get, path = "/v1/admin/security-events", tag = "admin", security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "Events, newest first", body = SecurityEvents),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator", body = ErrorBody),
    )
)]
pub async fn all_events(
    State(state): State<AppState>,
    _operator: Operator,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<ApiJson<SecurityEvents>, ApiError> {
    read_events(&state, None, query).await
}
