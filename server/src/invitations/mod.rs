//! Guest invitations: a resident (the tenant) invites a guest to some of their doors for a
//! window, optionally on a weekly schedule, for a number of uses. The guest accepts with an
//! account, or with none: then an anonymous guest principal is made, holding only a random id
//! and the device key it proved. Its credentials span exactly the window and carry the
//! schedule, so an offline lock enforces both. Everything a guest holds ends with the window.
//!
//! Policy lives here; storage is behind [`store::InvitationStore`] (SQLite: [`sqlite`]).

pub mod page;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;
pub mod store;
#[cfg(test)]
pub mod store_tests;
pub mod token;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use self::store::{
    AcceptOutcome, Acceptor, GuestRecord, Insert, InvitationRecord, InvitationStore, SiteSettings, TenantCaps,
};
use self::token::{Checked, Token, TokenKey};
use crate::auth::{sha256_hex, AuthUser, TokenResponse};
use crate::authority::unb64;
use crate::client_ip::ClientIp;
use crate::doors::{Schedule, ScheduleWindow};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

/// Domain-separation prefix of a guest's proof of possession.
pub const GUEST_PROOF_CONTEXT: &[u8] = b"porta-guest-v1";
/// How far the phone's clock in a guest proof may be from the server's.
pub const PROOF_TIME_TOLERANCE_S: i64 = 600;
/// Most uses one invitation may have.
pub const MAX_USES: u32 = 50;
/// Most guests one tenant may have at once, counting the uses still open on their
/// invitations. Each revoked guest with a synced credential is an entry on the site's
/// revocation list until its window ends, so this (with [`INVITATIONS_PER_DAY`]) bounds what
/// one tenant can put on every lock of the site.
pub const MAX_GUESTS_PER_TENANT: u32 = 100;
/// Longest label.
pub const MAX_LABEL_CHARS: usize = 64;
/// Invitations one tenant may create per day.
pub const INVITATIONS_PER_DAY: u32 = 20;
/// What [`create`] holds every tenant to.
const TENANT_CAPS: TenantCaps = TenantCaps { per_day: INVITATIONS_PER_DAY, guests: MAX_GUESTS_PER_TENANT };

/// The domain's state: its store and the key invitation tokens are tagged with.
pub struct Invitations {
    store: Arc<dyn InvitationStore>,
    key: TokenKey,
}

impl Invitations {
    pub async fn new(store: Arc<dyn InvitationStore>) -> Result<Self, ApiError> {
        let key = TokenKey::from_bytes(store.token_key().await?);
        Ok(Self { store, key })
    }

    pub fn store(&self) -> &dyn InvitationStore {
        self.store.as_ref()
    }

    /// Recognises a repeated acceptance by the same device or account without storing the
    /// token: a keyed hash of both.
    fn accept_tag(&self, token: &Token, acceptor: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_bytes()).expect("any key length");
        mac.update(b"porta-accept-v1");
        mac.update(token.as_str().as_bytes());
        mac.update(acceptor.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// What a token leads to now. Guesses (tokens this server never made) count against
    /// the caller's address; past the limit every lookup is `rate_limited`.
    async fn resolve(
        &self,
        text: &str,
        client: IpAddr,
        now: i64,
        limits: &crate::Limits,
    ) -> Result<Resolved, ApiError> {
        let (per_ip, window) = (limits.invitation_lookups_per_ip, limits.rate_window_s);
        let ip_key = sha256_hex(format!("invitation-ip:{}", crate::serve::client_of(client)));
        // Taken before the token is checked and given back if it is ours: guesses sent at
        // once cannot all be checked before any of them counts.
        if let Err(limited) = self.store.take_lookup_slot(&ip_key, now, per_ip, window).await {
            if matches!(limited, ApiError::RateLimited { .. }) {
                tracing::info!("invitation lookups rate limited");
            }
            return Err(limited);
        }
        let ours = Token::parse(text).and_then(|token| match token.check(&self.key) {
            Checked::Ours { not_after } => Some((token, not_after)),
            Checked::Foreign => None,
        });
        let Some((token, not_after)) = ours else {
            return Err(ApiError::InvitationUnknown);
        };
        self.store.release_lookup_slot(&ip_key, now).await?;
        if not_after < now {
            return Err(ApiError::InvitationExpired);
        }
        let invitation = match self.store.find(&token.hash()).await? {
            None => None,
            Some(inv) if inv.revoked_at.is_some() => return Err(ApiError::InvitationRevoked),
            Some(inv) if inv.not_after < now => return Err(ApiError::InvitationExpired),
            Some(inv) if inv.uses_left == 0 => None,
            Some(inv) => Some(inv),
        };
        Ok(Resolved { token, invitation })
    }
}

/// A token made by this server whose window has not ended, and its row if a use is left
/// (`None`: used up, unless the caller took a use before).
struct Resolved {
    token: Token,
    invitation: Option<InvitationRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestScheduleRequest {
    /// 1 to 16 windows, in the site's local time.
    #[schema(min_items = 1, max_items = 16)]
    #[serde(deserialize_with = "crate::error::nested_objects")]
    pub windows: Vec<ScheduleWindow>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// Door ids: a subset of the doors you may open yourself, for the whole window.
    #[schema(min_items = 1, max_items = 32)]
    pub doors: Vec<u32>,
    /// Unix seconds: the guest's access starts.
    #[schema(minimum = 0)]
    pub not_before: i64,
    /// Unix seconds: it ends (inclusive). At most the site's maximum (default 30 days) after
    /// `not_before`.
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    pub not_after: i64,
    /// Weekly hours in the site's time zone; none = any time in the window.
    #[serde(default, deserialize_with = "crate::error::nested_objects")]
    pub schedule: Option<GuestScheduleRequest>,
    /// Guest devices that may accept (default 1).
    #[schema(minimum = 1, maximum = 50)]
    pub uses: Option<u32>,
    /// Only you see it ("cleaner"). At most 64 characters; control, invisible and
    /// text-direction characters are refused (`invalid_label`).
    #[schema(example = "cleaner")]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitedDoor {
    pub door_id: u32,
    #[schema(example = "Main entrance")]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    pub id: String,
    pub label: Option<String>,
    #[schema(example = "Demo Building")]
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds, inclusive.
    pub not_after: i64,
    /// In the site's local time (UTC + `utc_offset_minutes`).
    pub schedule: Option<Schedule>,
    pub uses: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub revoked: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvitation {
    pub invitation: Invitation,
    /// `<server>/i/<token>`: the landing page. Shown only now: the server keeps only a hash.
    pub link: String,
    /// The same token to type in, in groups of four.
    #[schema(example = "7K2M-Q9XR-...")]
    pub code: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Guest {
    pub id: String,
    /// `null` once the invitation is used up or has ended.
    pub invitation_id: Option<String>,
    /// The invitation's label.
    pub label: Option<String>,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub accepted_at: i64,
    /// Accepted by a signed-in account rather than an anonymous guest device.
    pub has_account: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyInvitations {
    /// Invitations with a use left or revoked, until their window ends.
    pub invitations: Vec<Invitation>,
    /// Everyone who accepted one, until their window ends or you revoke them.
    pub guests: Vec<Guest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationPreview {
    pub site_name: String,
    /// The site's local time is UTC plus this many minutes when the window starts.
    pub utc_offset_minutes: i16,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
    pub uses_left: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// The link or the code.
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedInvitation {
    pub guest_id: String,
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestRequest {
    /// The link or the code.
    pub code: String,
    /// The device's Ed25519 public key (32 bytes), base64.
    #[schema(pattern = r"^[A-Za-z0-9+/]{43}=$")]
    pub public_key: String,
    /// Ed25519 signature (64 bytes), base64, by the device key over `"porta-guest-v1" ||
    /// SHA-256(token as its 40 canonical characters) || public_key || time (u64 big-endian)`.
    #[schema(pattern = r"^[A-Za-z0-9+/]{86}==$")]
    pub signature: String,
    /// The phone's Unix time when it signed; within 10 minutes of the server's.
    pub time: i64,
    /// Shown to nobody but the guest; same rules as at sign-in.
    pub device_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GuestSession {
    #[serde(flatten)]
    pub tokens: TokenResponse,
    pub guest_id: String,
    /// Unix seconds: the window's end. The session, and everything held about the guest,
    /// ends then.
    pub expires_at: i64,
    pub invitation: AcceptedInvitation,
}

fn door_list(names: &[(u32, String)], doors: &[u32]) -> Vec<InvitedDoor> {
    doors
        .iter()
        .filter_map(|d| {
            names.iter().find(|(n, _)| n == d).map(|(n, name)| InvitedDoor { door_id: *n, name: name.clone() })
        })
        .collect()
}

fn invitation_view(inv: &InvitationRecord, site_name: &str, names: &[(u32, String)]) -> Invitation {
    Invitation {
        id: inv.id.clone(),
        label: inv.label.clone(),
        site_name: site_name.to_owned(),
        doors: door_list(names, &inv.doors),
        not_before: inv.not_before,
        not_after: inv.not_after,
        schedule: inv.schedule.clone(),
        uses: inv.uses,
        uses_left: inv.uses_left,
        created_at: inv.created_at,
        revoked: inv.revoked_at.is_some(),
    }
}

fn guest_view(g: &GuestRecord, names: &[(u32, String)]) -> Guest {
    Guest {
        id: g.id.clone(),
        invitation_id: g.invitation_id.clone(),
        label: g.label.clone(),
        doors: door_list(names, &g.doors),
        not_before: g.not_before,
        not_after: g.not_after,
        schedule: g.schedule.clone(),
        accepted_at: g.accepted_at,
        has_account: g.has_account,
    }
}

/// What an acceptance gave, with the site's and the doors' names.
async fn accepted_view(store: &dyn InvitationStore, g: &GuestRecord) -> Result<AcceptedInvitation, ApiError> {
    let names = store.door_names(&g.site_id, &g.doors).await?;
    let (site_name, _) = store.site(&g.site_id).await?;
    Ok(AcceptedInvitation {
        guest_id: g.id.clone(),
        site_name,
        doors: door_list(&names, &g.doors),
        not_before: g.not_before,
        not_after: g.not_after,
        schedule: g.schedule.clone(),
    })
}

/// `204` when something was revoked, else `404`: another tenant's ids are not found.
fn revoked(found: bool) -> Result<StatusCode, ApiError> {
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Where links point: the configured public URL, else the address the tenant reached us at.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// Checks a new invitation against the site's rules and the tenant's own access.
async fn validate(
    store: &dyn InvitationStore,
    tenant_id: &str,
    site: &SiteSettings,
    body: NewInvitation,
    now: i64,
) -> Result<InvitationRecord, ApiError> {
    let mut doors = body.doors;
    doors.sort_unstable();
    doors.dedup();
    if doors.is_empty() || doors.len() > porta_protocol::MAX_DOORS {
        return Err(ApiError::InvalidField { problem: "1 to 32 entries in", field: "doors".into() });
    }
    let (not_before, not_after) = (body.not_before, body.not_after);
    let longest = site.max_invitation_days * 86400;
    if not_before < 0
        || not_after <= not_before
        || not_after < now
        || not_after - not_before > longest
        || not_after > i64::from(u32::MAX)
    {
        return Err(ApiError::InvalidWindow);
    }
    let schedule = match body.schedule {
        None => None,
        Some(s) => {
            // Hours in local time; the offset stored is the standard one, and credentials
            // get the one in force over each stretch of the window (see `site_time`).
            let schedule = Schedule { utc_offset_minutes: site.time.standard_offset_minutes, windows: s.windows };
            schedule.validate()?;
            Some(schedule)
        }
    };
    let uses = body.uses.unwrap_or(1);
    if !(1..=MAX_USES).contains(&uses) {
        return Err(ApiError::InvalidField { problem: "1 to 50 in", field: "uses".into() });
    }
    let label = match body.label.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(crate::identity::check_name(raw, MAX_LABEL_CHARS).map_err(ApiError::InvalidLabel)?),
    };
    // Only doors the tenant may open now, unscheduled, until the guest's window ends.
    let grants = store.tenant_grants(tenant_id, &site.site_id).await?;
    for door in &doors {
        let covered = grants
            .iter()
            .any(|g| g.door_number == *door && !g.scheduled && g.not_before <= now && g.not_after >= not_after);
        if !covered {
            return Err(ApiError::DoorNotAllowed);
        }
    }
    Ok(InvitationRecord {
        id: uuid::Uuid::new_v4().to_string(),
        site_id: site.site_id.clone(),
        tenant_id: tenant_id.to_owned(),
        label,
        doors,
        not_before,
        not_after,
        schedule,
        uses,
        uses_left: uses,
        created_at: now,
        revoked_at: None,
    })
}

/// Invite a guest to some of your doors.
#[utoipa::path(
    post,
    path = "/v1/me/invitations",
    tag = "invitations",
    security(("bearer" = [])),
    request_body = NewInvitation,
    responses(
        (status = 201, description = "Created; the link and code are shown only now", body = CreatedInvitation),
        (status = 400, description = "`invalid_window`, `invalid_schedule`, `invalid_label` or `invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`door_not_allowed`: a door you cannot open yourself for the whole window; `guest_account`: guests cannot invite; `invitations_not_allowed`: the building does not let tenants invite", body = ErrorBody),
        (status = 404, description = "`not_found`: the server has no site", body = ErrorBody),
        (status = 409, description = "`too_many_guests`: at most 100 guests and open uses at once; revoke some first", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many invitations today (20)", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: AuthUser,
    ApiJson(body): ApiJson<NewInvitation>,
) -> Result<(StatusCode, ApiJson<CreatedInvitation>), ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let now = state.clock.now();
    let domain = &state.invitations;
    let store = domain.store();
    let site = store.site_for(&auth.user_id).await?.ok_or(ApiError::NotFound)?;
    if !site.tenants_may_invite {
        return Err(ApiError::InvitationsNotAllowed);
    }
    let invitation = validate(store, &auth.user_id, &site, body, now).await?;
    let token = Token::new(&domain.key, invitation.not_after);
    match store.insert(&invitation, &token.hash(), TENANT_CAPS).await? {
        Insert::Inserted => {}
        Insert::DailyCapReached => return Err(ApiError::RateLimited { retry_after_s: 3600 }),
        Insert::GuestCapReached => return Err(ApiError::TooManyGuests),
    }
    let names = store.door_names(&site.site_id, &invitation.doors).await?;
    tracing::info!(invitation_id = %invitation.id, uses = invitation.uses, "invitation created");
    let link = format!("{}{}{}", base_url(&state, &headers), token::LINK_PREFIX, token.as_str());
    Ok((
        StatusCode::CREATED,
        ApiJson(CreatedInvitation {
            invitation: invitation_view(&invitation, &site.site_name, &names),
            link,
            code: token.code(),
        }),
    ))
}

/// The invitations you sent and the guests who accepted them.
#[utoipa::path(
    get,
    path = "/v1/me/invitations",
    tag = "invitations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Your invitations and guests", body = MyInvitations),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<ApiJson<MyInvitations>, ApiError> {
    let store = state.invitations.store();
    let (invitations, guests) = store.list(&auth.user_id).await?;
    let site = store.site_for(&auth.user_id).await?;
    let (site_id, site_name) = site.map(|s| (s.site_id, s.site_name)).unwrap_or_default();
    let mut doors: Vec<u32> = invitations
        .iter()
        .flat_map(|i| i.doors.iter())
        .chain(guests.iter().flat_map(|g| g.doors.iter()))
        .copied()
        .collect();
    doors.sort_unstable();
    doors.dedup();
    let names = store.door_names(&site_id, &doors).await?;
    Ok(ApiJson(MyInvitations {
        invitations: invitations.iter().map(|i| invitation_view(i, &site_name, &names)).collect(),
        guests: guests.iter().map(|g| guest_view(g, &names)).collect(),
    }))
}

/// Revoke an invitation: nobody can accept it any more, and everyone who did loses the
/// access (their credentials go on the revocation list that phones carry to the locks).
#[utoipa::path(
    delete,
    path = "/v1/me/invitations/{id}",
    tag = "invitations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: not an invitation of yours", body = ErrorBody),
    )
)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = state.invitations.store().revoke_invitation(&auth.user_id, &id, state.clock.now()).await?;
    if found {
        tracing::info!(invitation_id = %id, "invitation revoked");
    }
    revoked(found)
}

/// Revoke one guest's access.
#[utoipa::path(
    delete,
    path = "/v1/me/guests/{id}",
    tag = "invitations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The guest id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: not a guest of yours", body = ErrorBody),
    )
)]
pub async fn revoke_guest(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let found = state.invitations.store().revoke_guest(&auth.user_id, &id, state.clock.now()).await?;
    if found {
        tracing::info!(guest_id = %id, "guest revoked");
    }
    revoked(found)
}

/// The public facts of an invitation: building, doors, window. No one's contact data.
async fn preview_of(
    state: &AppState,
    inv: &InvitationRecord,
) -> Result<(InvitationPreview, crate::site_time::SiteTime), ApiError> {
    let store = state.invitations.store();
    let names = store.door_names(&inv.site_id, &inv.doors).await?;
    let (site_name, time) = store.site(&inv.site_id).await?;
    let preview = InvitationPreview {
        site_name,
        utc_offset_minutes: time.offset_at(inv.not_before),
        doors: door_list(&names, &inv.doors),
        not_before: inv.not_before,
        not_after: inv.not_after,
        schedule: inv.schedule.clone(),
        uses_left: inv.uses_left,
    };
    Ok((preview, time))
}

/// What an invitation link or code gives, before accepting it. No authentication.
pub(crate) async fn lookup(
    state: &AppState,
    text: &str,
    client: IpAddr,
) -> Result<(InvitationPreview, crate::site_time::SiteTime), ApiError> {
    let now = state.clock.now();
    let limits = &state.limits;
    let resolved = state.invitations.resolve(text, client, now, limits).await?;
    let inv = resolved.invitation.ok_or(ApiError::InvitationUsedUp)?;
    preview_of(state, &inv).await
}

/// What an invitation gives, before accepting it.
#[utoipa::path(
    get,
    path = "/v1/invitations/{token}",
    tag = "invitations",
    params(("token" = String, Path, description = "The token of the link, or the code")),
    responses(
        (status = 200, description = "The building, doors and window", body = InvitationPreview),
        (status = 404, description = "`invitation_unknown`", body = ErrorBody),
        (status = 410, description = "`invitation_expired`, `invitation_used_up` or `invitation_revoked`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many unknown tokens from this address", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn preview(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Path(text): Path<String>,
) -> Result<ApiJson<InvitationPreview>, ApiError> {
    lookup(&state, &text, client).await.map(|(preview, _)| ApiJson(preview))
}

fn outcome(outcome: AcceptOutcome) -> Result<(GuestRecord, Option<String>, bool), ApiError> {
    match outcome {
        AcceptOutcome::Accepted { guest, session_id, repeated } => Ok((guest, session_id, repeated)),
        AcceptOutcome::Gone => Err(ApiError::InvitationUsedUp),
        AcceptOutcome::Revoked => Err(ApiError::InvitationRevoked),
        AcceptOutcome::Expired => Err(ApiError::InvitationExpired),
    }
}

/// Accept an invitation into your account. Accepting it again is answered the same way and
/// takes no second use.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "invitations",
    security(("bearer" = [])),
    request_body = AcceptRequest,
    responses(
        (status = 200, description = "Accepted (now or before)", body = AcceptedInvitation),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 401, description = "`unauthorized` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`guest_account`: a guest cannot accept into its guest access", body = ErrorBody),
        (status = 409, description = "`own_invitation`: the caller sent it", body = ErrorBody),
        (status = 404, description = "`invitation_unknown`", body = ErrorBody),
        (status = 410, description = "`invitation_expired`, `invitation_used_up` or `invitation_revoked`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    auth: AuthUser,
    ApiJson(body): ApiJson<AcceptRequest>,
) -> Result<ApiJson<AcceptedInvitation>, ApiError> {
    if auth.guest {
        return Err(ApiError::GuestAccount);
    }
    let now = state.clock.now();
    let limits = &state.limits;
    let domain = &state.invitations;
    let resolved = domain.resolve(&body.code, client, now, limits).await?;
    let tag = domain.accept_tag(&resolved.token, &format!("account:{}", auth.user_id));
    let acceptor = Acceptor::Account { user_id: auth.user_id.clone() };
    let (guest, _, repeated) = outcome(domain.store().accept(&resolved.token.hash(), &tag, acceptor, now).await?)?;
    if !repeated {
        tracing::info!(guest_id = %guest.id, "invitation accepted into an account");
    }
    Ok(ApiJson(accepted_view(domain.store(), &guest).await?))
}

/// Checks the guest's proof that it holds the device key, bound to this token and a time.
fn verify_guest_proof(token: &Token, body: &GuestRequest, now: i64) -> Result<[u8; 32], ApiError> {
    let public_key: [u8; 32] =
        unb64(&body.public_key).and_then(|k| k.try_into().ok()).ok_or(ApiError::InvalidRequest)?;
    let signature: [u8; 64] = unb64(&body.signature).and_then(|s| s.try_into().ok()).ok_or(ApiError::InvalidRequest)?;
    if (body.time - now).abs() > PROOF_TIME_TOLERANCE_S || body.time < 0 {
        return Err(ApiError::InvalidProof);
    }
    let key = VerifyingKey::from_bytes(&public_key).map_err(|_| ApiError::InvalidProof)?;
    if key.is_weak() {
        return Err(ApiError::InvalidProof);
    }
    let mut message = Vec::with_capacity(GUEST_PROOF_CONTEXT.len() + 72);
    message.extend_from_slice(GUEST_PROOF_CONTEXT);
    message.extend_from_slice(&token.digest());
    message.extend_from_slice(&public_key);
    message.extend_from_slice(&(body.time as u64).to_be_bytes());
    key.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(|_| ApiError::InvalidProof)?;
    Ok(public_key)
}

/// Accept an invitation with no account: an anonymous guest is made, holding only a random
/// id and this device key, and signed in until the window ends. The same device accepting
/// again gets the same guest (`200`) and takes no second use.
#[utoipa::path(
    post,
    path = "/v1/guests",
    tag = "invitations",
    request_body = GuestRequest,
    responses(
        (status = 201, description = "A new guest, signed in; its device key is enrolled", body = GuestSession),
        (status = 200, description = "This device had accepted already: the same guest, fresh tokens", body = GuestSession),
        (status = 400, description = "`invalid_proof`, `invalid_device_name` or `invalid_request`", body = ErrorBody),
        (status = 404, description = "`invitation_unknown`", body = ErrorBody),
        (status = 409, description = "`key_in_use`: the key belongs to another session", body = ErrorBody),
        (status = 410, description = "`invitation_expired`, `invitation_used_up` or `invitation_revoked`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = i64, description = "Seconds until a request may succeed"))),
    )
)]
pub async fn accept_as_guest(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<GuestRequest>,
) -> Result<(StatusCode, ApiJson<GuestSession>), ApiError> {
    let now = state.clock.now();
    let limits = state.limits.clone();
    let device_name = crate::auth::device_name(body.device_name.as_deref())?;
    let domain = &state.invitations;
    let resolved = domain.resolve(&body.code, client, now, &limits).await?;
    let device_key = verify_guest_proof(&resolved.token, &body, now)?;
    let tag = domain.accept_tag(&resolved.token, &format!("device:{}", hex::encode(device_key)));
    let acceptor = Acceptor::NewGuest { device_key, device_name, ip: client.to_string() };
    let store = domain.store();
    let (guest, session_id, repeated) = outcome(store.accept(&resolved.token.hash(), &tag, acceptor, now).await?)?;
    let session_id = session_id.ok_or_else(|| ApiError::Internal("a guest without a session".into()))?;
    let tokens = crate::auth::issue_session_tokens(&state, &guest.user_id, &session_id, now).await?;
    if !repeated {
        tracing::info!(guest_id = %guest.id, "guest accepted an invitation");
    }
    let invitation = accepted_view(store, &guest).await?;
    let status = if repeated { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, ApiJson(GuestSession { tokens, guest_id: guest.id.clone(), expires_at: guest.not_after, invitation })))
}
