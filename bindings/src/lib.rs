//! # porta-ffi
//!
//! The thin UniFFI layer over `porta-core`: records mirroring the core's types, the
//! foreign traits apps implement (secure storage, logging), one error enum a UI can act on.
//! No logic lives here; anything worth testing is in the core.

use std::sync::Arc;

mod android;
mod error;
mod logging;
mod secure_store;
#[cfg(feature = "simulator")]
mod simulator;
mod unlock;

pub use error::PortaError;
pub use logging::{set_logger, LogLevel, LogRecord, Logger, LoggerError};
pub use secure_store::{SecureStore, SecureStoreError};
pub use unlock::{LockTransport, TransportError, UnlockListener, UnlockProgress};

uniffi::setup_scaffolding!("porta");

/// How to reach the backend and where to keep local data.
#[derive(uniffi::Record)]
pub struct ClientConfig {
    /// Base URL of the Porta backend, e.g. `https://porta.example.com`.
    pub server_url: String,
    /// A directory the app owns (Application Support on iOS, `filesDir` on Android).
    pub data_dir: String,
    /// Shown in the user's device list.
    pub device_name: String,
    /// Upper bound for one request, in seconds.
    #[uniffi(default = 15)]
    pub request_timeout_s: u32,
}

#[derive(uniffi::Enum)]
pub enum UnitKind {
    Apartment,
    Office,
}

/// The apartment or office the building assigned; read-only for the resident.
/// (Not `Unit`: that name is taken by Kotlin's `kotlin.Unit`.)
#[derive(uniffi::Record)]
pub struct BuildingUnit {
    pub id: String,
    pub name: String,
    pub kind: UnitKind,
}

#[derive(uniffi::Record)]
pub struct Profile {
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub unit: Option<BuildingUnit>,
    pub has_picture: bool,
    pub updated_at: i64,
    /// A new email or phone waiting for the code sent to it; `confirm_contact_change` applies it.
    pub pending_contact: Option<PendingContact>,
}

/// Email or phone: the two ways to sign in.
#[derive(uniffi::Enum)]
pub enum ContactField {
    Email,
    Phone,
}

/// A change of email or phone that applies only once the code sent to the new address is
/// confirmed.
#[derive(uniffi::Record)]
pub struct PendingContact {
    pub field: ContactField,
    /// The new address, as the server will store it.
    pub value: String,
    /// Unix seconds after which the code no longer confirms it.
    pub expires_at: i64,
}

/// A correction; `None` leaves a field unchanged. A new email or phone comes back as the
/// profile's `pending_contact` until confirmed.
#[derive(uniffi::Record, Default)]
pub struct ProfileUpdate {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub email: Option<String>,
    #[uniffi(default = None)]
    pub phone: Option<String>,
}

impl From<porta_core::Profile> for Profile {
    fn from(p: porta_core::Profile) -> Self {
        Profile {
            user_id: p.user_id,
            name: p.name,
            email: p.email,
            phone: p.phone,
            unit: p.unit.map(|u| BuildingUnit {
                id: u.id,
                name: u.name,
                kind: match u.kind {
                    porta_core::UnitKind::Apartment => UnitKind::Apartment,
                    porta_core::UnitKind::Office => UnitKind::Office,
                },
            }),
            has_picture: p.has_picture,
            updated_at: p.updated_at,
            pending_contact: p.pending_contact.map(|c| PendingContact {
                field: match c.field {
                    porta_core::ContactField::Email => ContactField::Email,
                    porta_core::ContactField::Phone => ContactField::Phone,
                },
                value: c.value,
                expires_at: c.expires_at,
            }),
        }
    }
}

/// A door the signed-in person may open.
#[derive(uniffi::Record)]
pub struct Door {
    pub door_id: u32,
    pub name: String,
    /// `None` while no lock is installed: such a door cannot be opened by phone.
    pub lock_id: Option<u32>,
    /// How long the building keeps this door's access log.
    pub log_retention_days: u32,
    /// When I may open it, one entry per grant: for a guest, e.g. "Tuesdays 09-12 until 31 March".
    pub access: Vec<AccessWindow>,
}

impl From<porta_core::Door> for Door {
    fn from(d: porta_core::Door) -> Self {
        Door {
            door_id: d.door_id,
            name: d.name,
            lock_id: d.lock_id,
            log_retention_days: d.log_retention_days,
            access: d.access.into_iter().map(Into::into).collect(),
        }
    }
}

/// One weekly slot in the site's local time: on `days` (bit 0 = Monday … bit 6 = Sunday),
/// from `start_minute` to `end_minute` (exclusive, at most 1440) after midnight.
#[derive(uniffi::Record)]
pub struct ScheduleWindow {
    pub days: u8,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A weekly schedule in the site's local time (UTC + `utc_offset_minutes`).
#[derive(uniffi::Record)]
pub struct GuestSchedule {
    pub utc_offset_minutes: i16,
    pub windows: Vec<ScheduleWindow>,
}

/// When a grant is valid: the window (unix seconds), and within it the schedule if any.
#[derive(uniffi::Record)]
pub struct AccessWindow {
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
}

#[derive(uniffi::Record)]
pub struct InvitedDoor {
    pub door_id: u32,
    pub name: String,
}

/// A guest invitation to create. `schedule` = weekly slots in the site's local time (`None`:
/// any time in the window); `uses` = how many guest devices may accept it.
#[derive(uniffi::Record)]
pub struct NewInvitation {
    pub doors: Vec<u32>,
    pub not_before: i64,
    pub not_after: i64,
    #[uniffi(default = None)]
    pub schedule: Option<Vec<ScheduleWindow>>,
    #[uniffi(default = 1)]
    pub uses: u32,
    /// Seen only by me ("cleaner").
    #[uniffi(default = None)]
    pub label: Option<String>,
}

#[derive(uniffi::Record)]
pub struct Invitation {
    pub id: String,
    pub label: Option<String>,
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub uses: u32,
    pub uses_left: u32,
    pub created_at: i64,
    pub revoked: bool,
}

/// A new invitation and what to hand the guest: the `link` or the typable `code` (secrets
/// until used: do not log them).
#[derive(uniffi::Record)]
pub struct CreatedInvitation {
    pub invitation: Invitation,
    pub link: String,
    pub code: String,
}

/// Someone who accepted one of my invitations.
#[derive(uniffi::Record)]
pub struct Guest {
    pub id: String,
    pub invitation_id: Option<String>,
    pub label: Option<String>,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub accepted_at: i64,
    pub has_account: bool,
}

/// The invitations I sent that can still be accepted, and the guests who accepted one.
#[derive(uniffi::Record)]
pub struct Invitations {
    pub invitations: Vec<Invitation>,
    pub guests: Vec<Guest>,
}

/// What an invitation offers, before accepting it.
#[derive(uniffi::Record)]
pub struct InvitationPreview {
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
    pub uses_left: u32,
}

/// The access an accepted invitation gave.
#[derive(uniffi::Record)]
pub struct AcceptedInvitation {
    pub guest_id: String,
    pub site_name: String,
    pub doors: Vec<InvitedDoor>,
    pub not_before: i64,
    pub not_after: i64,
    pub schedule: Option<GuestSchedule>,
}

impl From<porta_core::ScheduleWindow> for ScheduleWindow {
    fn from(w: porta_core::ScheduleWindow) -> Self {
        ScheduleWindow { days: w.days, start_minute: w.start_minute, end_minute: w.end_minute }
    }
}

impl From<porta_core::GuestSchedule> for GuestSchedule {
    fn from(s: porta_core::GuestSchedule) -> Self {
        GuestSchedule {
            utc_offset_minutes: s.utc_offset_minutes,
            windows: s.windows.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<porta_core::AccessWindow> for AccessWindow {
    fn from(a: porta_core::AccessWindow) -> Self {
        AccessWindow { not_before: a.not_before, not_after: a.not_after, schedule: a.schedule.map(Into::into) }
    }
}

fn doors(doors: Vec<porta_core::InvitedDoor>) -> Vec<InvitedDoor> {
    doors.into_iter().map(|d| InvitedDoor { door_id: d.door_id, name: d.name }).collect()
}

impl From<porta_core::Invitation> for Invitation {
    fn from(i: porta_core::Invitation) -> Self {
        Invitation {
            id: i.id,
            label: i.label,
            site_name: i.site_name,
            doors: doors(i.doors),
            not_before: i.not_before,
            not_after: i.not_after,
            schedule: i.schedule.map(Into::into),
            uses: i.uses,
            uses_left: i.uses_left,
            created_at: i.created_at,
            revoked: i.revoked,
        }
    }
}

impl From<porta_core::Guest> for Guest {
    fn from(g: porta_core::Guest) -> Self {
        Guest {
            id: g.id,
            invitation_id: g.invitation_id,
            label: g.label,
            doors: doors(g.doors),
            not_before: g.not_before,
            not_after: g.not_after,
            schedule: g.schedule.map(Into::into),
            accepted_at: g.accepted_at,
            has_account: g.has_account,
        }
    }
}

impl From<porta_core::InvitationPreview> for InvitationPreview {
    fn from(p: porta_core::InvitationPreview) -> Self {
        InvitationPreview {
            site_name: p.site_name,
            doors: doors(p.doors),
            not_before: p.not_before,
            not_after: p.not_after,
            schedule: p.schedule.map(Into::into),
            uses_left: p.uses_left,
        }
    }
}

impl From<porta_core::AcceptedInvitation> for AcceptedInvitation {
    fn from(a: porta_core::AcceptedInvitation) -> Self {
        AcceptedInvitation {
            guest_id: a.guest_id,
            site_name: a.site_name,
            doors: doors(a.doors),
            not_before: a.not_before,
            not_after: a.not_after,
            schedule: a.schedule.map(Into::into),
        }
    }
}

#[derive(uniffi::Record)]
pub struct AccessEvent {
    /// `None` if the building has since removed the door.
    pub door_id: Option<u32>,
    pub door_name: Option<String>,
    /// Unix seconds, from the lock's trusted clock.
    pub at: i64,
    pub opened: bool,
    /// Why it was refused, when it was.
    pub reason: Option<String>,
}

#[derive(uniffi::Record)]
pub struct DoorRetention {
    pub door_id: u32,
    pub door_name: String,
    pub retention_days: u32,
}

#[derive(uniffi::Record)]
pub struct AccessLog {
    /// Newest first.
    pub events: Vec<AccessEvent>,
    pub retention: Vec<DoorRetention>,
}

impl From<porta_core::AccessLog> for AccessLog {
    fn from(log: porta_core::AccessLog) -> Self {
        AccessLog {
            events: log
                .events
                .into_iter()
                .map(|e| AccessEvent {
                    opened: e.opened(),
                    door_id: e.door_id,
                    door_name: e.door_name,
                    at: e.at,
                    reason: e.reason,
                })
                .collect(),
            retention: log
                .retention
                .into_iter()
                .map(|r| DoorRetention { door_id: r.door_id, door_name: r.door_name, retention_days: r.retention_days })
                .collect(),
        }
    }
}

#[derive(uniffi::Record)]
pub struct Device {
    pub device_id: String,
    pub device_name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub current: bool,
}

impl From<porta_core::Device> for Device {
    fn from(d: porta_core::Device) -> Self {
        Device {
            device_id: d.device_id,
            device_name: d.device_name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            ip: d.ip,
            current: d.current,
        }
    }
}

/// One category of personal data held about me, with why, on what basis, for how long,
/// and who can see it.
#[derive(uniffi::Record)]
pub struct DataCategory {
    pub category: String,
    pub description: String,
    pub purpose: String,
    pub legal_basis: String,
    pub retention: String,
    pub visible_to: Vec<String>,
    /// The data itself, as JSON text.
    pub items_json: String,
}

#[derive(uniffi::Record)]
pub struct MyData {
    pub user_id: String,
    pub categories: Vec<DataCategory>,
}

impl From<porta_core::MyData> for MyData {
    fn from(d: porta_core::MyData) -> Self {
        MyData {
            user_id: d.user_id,
            categories: d
                .categories
                .into_iter()
                .map(|c| DataCategory {
                    items_json: c.items.to_string(),
                    category: c.category,
                    description: c.description,
                    purpose: c.purpose,
                    legal_basis: c.legal_basis,
                    retention: c.retention,
                    visible_to: c.visible_to,
                })
                .collect(),
        }
    }
}

#[derive(uniffi::Record)]
pub struct Consent {
    pub purpose: String,
    pub granted: bool,
    pub updated_at: Option<i64>,
}

impl From<porta_core::Consent> for Consent {
    fn from(c: porta_core::Consent) -> Self {
        Consent { purpose: c.purpose, granted: c.granted, updated_at: c.updated_at }
    }
}

/// When the account was deleted, and by when backups holding it are purged (≤ 90 days).
#[derive(uniffi::Record)]
pub struct DeletionReceipt {
    pub deleted_at: i64,
    pub backups_purged_by: i64,
}

/// The Porta client. Create one per app; every method may be called from any thread.
#[derive(uniffi::Object)]
pub struct PortaClient {
    core: porta_core::Client,
}

#[uniffi::export]
impl PortaClient {
    /// Opens local storage and restores the session from `secure_store`. No network.
    /// `lock_transport`: how `unlock` reaches the locks; absent, the built-in Bluetooth LE
    /// transport (CoreBluetooth on iOS, Android's BluetoothGatt through btleplug). Apps with
    /// their own BLE code, and the simulated lock, pass one.
    #[uniffi::constructor(default(lock_transport = None))]
    pub fn new(
        config: ClientConfig,
        secure_store: Arc<dyn SecureStore>,
        lock_transport: Option<Arc<dyn LockTransport>>,
    ) -> Result<Arc<Self>, PortaError> {
        let mut core_config = porta_core::ClientConfig::new(config.server_url, config.data_dir);
        core_config.device_name = config.device_name;
        core_config.request_timeout = std::time::Duration::from_secs(config.request_timeout_s.max(1).into());
        core_config.lock_transport =
            lock_transport.map(|t| Arc::new(unlock::TransportAdapter(t)) as Arc<dyn porta_core::LockTransport>);
        let store = Arc::new(secure_store::Adapter(secure_store));
        Ok(Arc::new(Self { core: porta_core::Client::new(core_config, store)? }))
    }

    /// A session is held: a resident's, or a guest's (see `is_guest`).
    pub fn is_signed_in(&self) -> bool {
        self.core.is_signed_in()
    }

    /// The session is a guest's: an invitation accepted without an account, until its window ends.
    pub fn is_guest(&self) -> bool {
        self.core.is_guest()
    }

    /// The signed-in person's random identifier.
    pub fn user_id(&self) -> Option<String> {
        self.core.user_id()
    }

    /// Sends a one-time code to an email address or phone number.
    pub async fn request_code(&self, identifier: String) -> Result<(), PortaError> {
        Ok(self.core.request_code(&identifier).await?)
    }

    pub async fn sign_in(&self, identifier: String, code: String) -> Result<(), PortaError> {
        Ok(self.core.sign_in(&identifier, &code).await?)
    }

    pub async fn sign_out(&self) -> Result<(), PortaError> {
        Ok(self.core.sign_out().await?)
    }

    /// Fresh from the backend; offline, the cached copy.
    pub async fn profile(&self) -> Result<Profile, PortaError> {
        Ok(self.core.profile().await?.into())
    }

    /// The last fetched profile, without the network.
    pub fn cached_profile(&self) -> Result<Option<Profile>, PortaError> {
        Ok(self.core.cached_profile()?.map(Into::into))
    }

    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<Profile, PortaError> {
        let update = porta_core::ProfileUpdate { name: update.name, email: update.email, phone: update.phone };
        Ok(self.core.update_profile(update).await?.into())
    }

    /// Applies the pending change of email or phone with the code sent to the new address.
    pub async fn confirm_contact_change(&self, code: String) -> Result<Profile, PortaError> {
        Ok(self.core.confirm_contact_change(&code).await?.into())
    }

    /// PNG or JPEG, at most 2 MB.
    pub async fn set_picture(&self, image: Vec<u8>) -> Result<(), PortaError> {
        Ok(self.core.set_picture(image).await?)
    }

    pub async fn picture(&self) -> Result<Option<Vec<u8>>, PortaError> {
        Ok(self.core.picture().await?)
    }

    /// The doors I may open, with fresh credentials; offline, the cached list.
    pub async fn doors(&self) -> Result<Vec<Door>, PortaError> {
        Ok(self.core.doors().await?.into_iter().map(Into::into).collect())
    }

    /// The doors as last synced, without the network.
    pub fn cached_doors(&self) -> Result<Vec<Door>, PortaError> {
        Ok(self.core.cached_doors()?.into_iter().map(Into::into).collect())
    }

    /// Opens a door over the client's lock transport (no network needed). Refusals throw
    /// `Expired`, `NotYetValid`, `OutsideSchedule`, `Revoked`, `NoAccess` or `Denied`; the radio
    /// `BluetoothOff`, `BluetoothNotPermitted`, `NotInRange`, `LockBusy`, `ConnectionLost`,
    /// `Timeout` or `Bluetooth`. Cancelling the call (the coroutine or Task) closes the link.
    pub async fn unlock(&self, door_id: u32, listener: Arc<dyn UnlockListener>) -> Result<(), PortaError> {
        let listener = Arc::new(unlock::ListenerAdapter(listener));
        Ok(self.core.unlock(door_id, listener).await?)
    }

    /// Which doors I opened and when, and each door's retention; offline, the cached copy.
    pub async fn access_log(&self) -> Result<AccessLog, PortaError> {
        Ok(self.core.access_log().await?.into())
    }

    /// Uploads the lock receipts waiting on this phone; returns how many went up.
    pub async fn upload_access_events(&self) -> Result<u32, PortaError> {
        Ok(self.core.upload_access_events().await? as u32)
    }

    /// Lock receipts waiting for upload.
    pub fn pending_access_events(&self) -> Result<u32, PortaError> {
        Ok(self.core.pending_access_events()? as u32)
    }

    /// My signed-in devices.
    pub async fn devices(&self) -> Result<Vec<Device>, PortaError> {
        Ok(self.core.devices().await?.into_iter().map(Into::into).collect())
    }

    /// Every piece of personal data held about me, by category.
    pub async fn my_data(&self) -> Result<MyData, PortaError> {
        Ok(self.core.my_data().await?.into())
    }

    /// Writes my data as one JSON file at `path` (owner-only); returns its size in bytes.
    pub async fn export_my_data(&self, path: String) -> Result<u64, PortaError> {
        Ok(self.core.export_my_data(path.into()).await?)
    }

    /// My consents (marketing is off until given).
    pub async fn consents(&self) -> Result<Vec<Consent>, PortaError> {
        Ok(self.core.consents().await?.into_iter().map(Into::into).collect())
    }

    pub async fn set_consent(&self, purpose: String, granted: bool) -> Result<Consent, PortaError> {
        Ok(self.core.set_consent(&purpose, granted).await?.into())
    }

    /// Sends a fresh code that confirms account deletion.
    pub async fn request_deletion_code(&self) -> Result<(), PortaError> {
        Ok(self.core.request_deletion_code().await?)
    }

    /// Deletes my account and wipes this phone's Porta data; afterwards the client answers
    /// `NotSignedIn`.
    pub async fn delete_account(&self, code: String) -> Result<DeletionReceipt, PortaError> {
        let r = self.core.delete_account(&code).await?;
        Ok(DeletionReceipt { deleted_at: r.deleted_at, backups_purged_by: r.backups_purged_by })
    }

    /// Invites a guest to some of my doors; hand them the returned `link` or `code`.
    /// Refusals: `NoAccess` (a door I cannot give), `InvalidInput` (window, schedule, label),
    /// `GuestAccount` (guests cannot invite), `RateLimited`.
    pub async fn create_invitation(&self, invitation: NewInvitation) -> Result<CreatedInvitation, PortaError> {
        let new = porta_core::NewInvitation {
            doors: invitation.doors,
            not_before: invitation.not_before,
            not_after: invitation.not_after,
            schedule: invitation.schedule.map(|windows| {
                windows
                    .into_iter()
                    .map(|w| porta_core::ScheduleWindow {
                        days: w.days,
                        start_minute: w.start_minute,
                        end_minute: w.end_minute,
                    })
                    .collect()
            }),
            uses: invitation.uses,
            label: invitation.label,
        };
        let created = self.core.create_invitation(new).await?;
        Ok(CreatedInvitation {
            link: created.link.expose().to_owned(),
            code: created.code.expose().to_owned(),
            invitation: created.invitation.into(),
        })
    }

    /// The invitations I sent that can still be accepted, and the guests who accepted one.
    pub async fn invitations(&self) -> Result<Invitations, PortaError> {
        let all = self.core.invitations().await?;
        Ok(Invitations {
            invitations: all.invitations.into_iter().map(Into::into).collect(),
            guests: all.guests.into_iter().map(Into::into).collect(),
        })
    }

    /// Withdraws an invitation and every guest who accepted it (locks learn it from phones).
    pub async fn revoke_invitation(&self, invitation_id: String) -> Result<(), PortaError> {
        Ok(self.core.revoke_invitation(&invitation_id).await?)
    }

    /// Withdraws one guest's access.
    pub async fn revoke_guest(&self, guest_id: String) -> Result<(), PortaError> {
        Ok(self.core.revoke_guest(&guest_id).await?)
    }

    /// What a link or code offers, without accepting it. Unusable: `InvalidCode` (unknown),
    /// `Expired`, `UsedUp`, `Revoked`.
    pub async fn invitation_preview(&self, link_or_code: String) -> Result<InvitationPreview, PortaError> {
        Ok(self.core.invitation_preview(&link_or_code).await?.into())
    }

    /// Accepts a link or code: signed in, onto my account; otherwise as a guest with no
    /// account (a new device key in the secure store). Then syncs the doors. Same errors as
    /// `invitation_preview`.
    pub async fn accept_invitation(&self, link_or_code: String) -> Result<AcceptedInvitation, PortaError> {
        Ok(self.core.accept_invitation(&link_or_code).await?.into())
    }

    /// Signs a device out remotely and revokes its key.
    pub async fn sign_out_device(&self, device_id: String) -> Result<(), PortaError> {
        Ok(self.core.sign_out_device(&device_id).await?)
    }
}
