//! [`Client`]: the one object an app holds. It owns the core's tokio runtime, so callers on
//! any executor (Swift's, Kotlin coroutines, a plain thread) can await its methods.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::access_log::{AccessLog, IngestResult, UPLOAD_BATCH};
use crate::api::Api;
use crate::auth::{self, Auth};
use crate::clock::{Clock, SystemClock};
use crate::device;
use crate::doors::{Door, DoorsResponse};
use crate::error::{Error, Result};
use crate::invitations::{
    self, AcceptedInvitation, CreatedInvitation, GuestSession, InvitationPreview, Invitations, NewInvitation,
};
use crate::privacy::{self, Consent, DeletionReceipt, MyData, PendingDeletion, PENDING_DELETION_KEY};
use crate::profile::{self, Profile, ProfileUpdate};
use crate::secret::Secret;
use crate::secure_store::SecureStore;
use crate::store::{Document, LocalStore};
use crate::unlock::{self, LockTransport, UnlockListener};

/// How to reach the backend, where to keep local data, and how to reach the locks.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL of the Porta backend, e.g. `https://porta.example.com`.
    pub server_url: String,
    /// A directory the app owns; the local database lives here.
    pub data_dir: PathBuf,
    /// Shown to the user in their device list ("Ada's iPhone").
    pub device_name: String,
    /// Upper bound for one exchange with the backend: connection, answer and body, and any
    /// retries of an idempotent request all fit in it.
    pub request_timeout: Duration,
    /// The phone's clock: which credential is valid now, and the time in a guest's proof.
    /// The system clock unless a test or demo sets another.
    pub clock: Arc<dyn Clock>,
    /// How [`Client::unlock`] reaches the locks. `None`: Bluetooth LE through btleplug
    /// ([`crate::bluetooth::BtleplugTransport`], feature `bluetooth`, on in the app and CLI
    /// builds). Apps with their own BLE code, and the simulated lock, come in here.
    pub lock_transport: Option<Arc<dyn LockTransport>>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("server_url", &self.server_url)
            .field("data_dir", &self.data_dir)
            .field("device_name", &self.device_name)
            .field("request_timeout", &self.request_timeout)
            .field("clock", &self.clock)
            .field("lock_transport", &self.lock_transport.as_ref().map_or("bluetooth (built in)", |_| "the app's"))
            .finish()
    }
}

impl ClientConfig {
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server_url: server_url.into(),
            data_dir: data_dir.into(),
            device_name: "Unknown device".into(),
            request_timeout: Duration::from_secs(15),
            clock: Arc::new(SystemClock),
            lock_transport: None,
        }
    }

    /// The same configuration, reaching the locks through `transport`.
    pub fn with_lock_transport(mut self, transport: Arc<dyn LockTransport>) -> Self {
        self.lock_transport = Some(transport);
        self
    }
}

/// The transport the client was built with, or the built-in Bluetooth one, made on first use
/// (inside the client's runtime: btleplug's D-Bus connection lives on it).
enum LockLink {
    Given(Arc<dyn LockTransport>),
    #[cfg(feature = "bluetooth")]
    Bluetooth(tokio::sync::OnceCell<Arc<dyn LockTransport>>),
    #[cfg(not(feature = "bluetooth"))]
    None,
}

impl LockLink {
    fn new(given: Option<Arc<dyn LockTransport>>) -> Self {
        match given {
            Some(t) => LockLink::Given(t),
            #[cfg(feature = "bluetooth")]
            None => LockLink::Bluetooth(tokio::sync::OnceCell::new()),
            #[cfg(not(feature = "bluetooth"))]
            None => LockLink::None,
        }
    }

    async fn get(&self) -> Result<Arc<dyn LockTransport>> {
        match self {
            LockLink::Given(t) => Ok(t.clone()),
            #[cfg(feature = "bluetooth")]
            LockLink::Bluetooth(cell) => Ok(cell
                .get_or_init(|| async {
                    Arc::new(crate::bluetooth::BtleplugTransport::new()) as Arc<dyn LockTransport>
                })
                .await
                .clone()),
            #[cfg(not(feature = "bluetooth"))]
            LockLink::None => Err(Error::NoRadio),
        }
    }
}

/// Aborts a spawned call when the caller stops waiting for it (drops its future).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    auth: Auth,
    store: LocalStore,
    clock: Arc<dyn Clock>,
    lock_link: LockLink,
    /// One upload at a time: the background upload after an unlock and an explicit one
    /// would otherwise send the same batch twice, and a caller that asks to upload must
    /// find the outbox settled when it returns.
    uploading: tokio::sync::Mutex<()>,
}

/// Shuts the runtime down without blocking, so dropping the client is safe anywhere,
/// including inside another async runtime.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The Porta client. Cheap to share behind an `Arc`; every method may be called concurrently.
pub struct Client {
    runtime: Runtime,
    inner: Arc<Inner>,
}

impl Client {
    /// Opens (or creates) the local database in `config.data_dir` and restores the session
    /// kept in `secure_store`, if any. Makes no network request.
    pub fn new(config: ClientConfig, secure_store: Arc<dyn SecureStore>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("porta-core")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("runtime: {e}")))?;
        let api = Api::new(&config.server_url, config.request_timeout)?;
        let store = LocalStore::open(&config.data_dir)?;
        let pending = read_pending_deletion(secure_store.as_ref())?;
        if let Some(PendingDeletion { receipt: Some(_), .. }) = pending {
            // The server confirmed a deletion the last run did not finish wiping: finish now,
            // before anything can read what should be gone.
            wipe_everything(&store, secure_store.as_ref())?;
            tracing::info!("finished an interrupted account deletion");
        }
        let auth = Auth::restore(api, secure_store, config.device_name.clone())?;
        let client = Self {
            runtime: Runtime(Some(runtime)),
            inner: Arc::new(Inner {
                auth,
                store,
                clock: config.clock.clone(),
                lock_link: LockLink::new(config.lock_transport.clone()),
                uploading: tokio::sync::Mutex::new(()),
            }),
        };
        if let Some(PendingDeletion { request_id, receipt: None }) = pending {
            // Interrupted before the answer arrived: ask the server whether it happened.
            let inner = client.inner.clone();
            if let Some(rt) = client.runtime.0.as_ref() {
                rt.spawn(async move {
                    if let Err(e) = inner.resume_deletion(&request_id).await {
                        tracing::debug!(error = %e, "pending deletion not resolved yet");
                    }
                });
            }
        }
        Ok(client)
    }

    /// Runs `f` on the core's runtime and awaits it from whatever executor the caller uses.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.spawn_call(f, false).await
    }

    /// Like [`Client::run`], but the call stops when the caller stops waiting (an unlock the
    /// user cancelled closes its Bluetooth link at once instead of finishing unseen).
    async fn run_cancellable<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.spawn_call(f, true).await
    }

    async fn spawn_call<T, F, Fut>(&self, f: F, abort_on_drop: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let rt = self.runtime.0.as_ref().ok_or_else(|| Error::Internal("runtime stopped".into()))?;
        let inner = self.inner.clone();
        let call = f(inner.clone());
        let task = rt.spawn(async move {
            let result = call.await;
            if inner.auth.take_guest_ended() {
                // A guest's session ends with its window: forget the guest as at sign-out.
                inner.store.clear_user_data()?;
                tracing::info!("guest access ended; local data cleared");
            }
            result
        });
        let _abort = abort_on_drop.then(|| AbortOnDrop(task.abort_handle()));
        task.await.map_err(|e| Error::Internal(format!("task failed: {e}")))?
    }

    /// Whether a session is held: a resident's (from a sign-in) or a guest's (from
    /// [`Client::accept_invitation`] without an account). [`Client::is_guest`] tells which.
    pub fn is_signed_in(&self) -> bool {
        self.inner.auth.user_id().is_some()
    }

    /// Whether the session is a guest's: no account, only the doors of the invitation, and
    /// only until its window ends (then the session and this phone's cache of it are gone).
    /// Guests have no profile and cannot invite ([`Error::GuestAccount`]).
    pub fn is_guest(&self) -> bool {
        self.inner.auth.is_guest()
    }

    /// The signed-in person's random identifier.
    pub fn user_id(&self) -> Option<String> {
        self.inner.auth.user_id()
    }

    /// Asks the backend to send a one-time code to an email address or phone number.
    pub async fn request_code(&self, identifier: &str) -> Result<()> {
        let identifier = identifier.trim().to_owned();
        self.run(move |inner| async move { inner.auth.request_code(&identifier).await }).await
    }

    /// Signs in with the code; the session is kept in the secure store until sign-out.
    pub async fn sign_in(&self, identifier: &str, code: &str) -> Result<()> {
        let (identifier, code) = (identifier.trim().to_owned(), zeroize::Zeroizing::new(code.to_owned()));
        self.run(move |inner| async move {
            let previous = inner.store.load_profile()?.map(|(user, _)| user);
            let was_guest = inner.auth.is_guest();
            let session = inner.auth.sign_in(&identifier, &code).await?;
            if was_guest || previous.is_some_and(|p| p != session.user_id) {
                // Someone else signed in on this phone: nothing of the previous person stays.
                inner.store.clear_user_data()?;
            }
            // A new session gets a new device key, so two sessions are never linkable by it.
            device::delete(inner.auth.secure_store())?;
            if let Err(e) = inner.enroll_device().await {
                // Not fatal: enrolment is retried at the next door sync.
                tracing::warn!(error = %e, "device key enrolment deferred");
            }
            Ok(())
        })
        .await
    }

    /// Ends the session and forgets the tokens and the cached profile.
    pub async fn sign_out(&self) -> Result<()> {
        self.run(|inner| async move {
            // Hand the building the doors' audit records before forgetting them.
            if let Err(e) = inner.upload_access_events().await {
                tracing::warn!(error = %e, "access events not uploaded before sign-out");
            }
            // Ending the session also deletes the device key enrolled for it (see Auth).
            inner.auth.sign_out().await?;
            inner.auth.secure_store().delete(PENDING_DELETION_KEY).map_err(|e| Error::SecureStore(e.0))?;
            inner.store.clear_user_data()
        })
        .await
    }

    /// The profile from the backend, cached for offline use. With no network, the cached
    /// copy is returned if there is one; otherwise the network error.
    pub async fn profile(&self) -> Result<Profile> {
        if self.is_guest() {
            return Err(Error::GuestAccount);
        }
        self.run(|inner| async move {
            match inner.fetch_profile().await {
                Ok(profile) => Ok(profile),
                Err(Error::Network(reason)) => inner.cached_profile()?.ok_or(Error::Network(reason)),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The profile as last fetched, without touching the network.
    pub fn cached_profile(&self) -> Result<Option<Profile>> {
        self.inner.cached_profile()
    }

    /// Corrects name, email or phone. The unit is set by the building and cannot be changed.
    ///
    /// A new name applies at once. A new email or phone (one at a time) does not: the backend
    /// sends a code to the new address and the returned profile shows the change in
    /// [`Profile::pending_contact`] until [`Client::confirm_contact_change`] applies it.
    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<Profile> {
        self.run(move |inner| async move {
            let resp = inner.auth.send(Method::PATCH, "/v1/me/profile", |r| r.json(&update)).await?;
            let body = resp.text().await?;
            inner.profile_from_json(&body)
        })
        .await
    }

    /// Applies the pending change of email or phone with the code sent to the new address.
    /// A wrong code, no pending change and an address that turns out to be unavailable all
    /// give [`Error::InvalidCode`]; too many wrong codes [`Error::TooManyAttempts`] (ask for
    /// the change again to get a new code).
    pub async fn confirm_contact_change(&self, code: &str) -> Result<Profile> {
        let code = zeroize::Zeroizing::new(code.trim().to_owned());
        self.run(move |inner| async move {
            let body = serde_json::json!({ "code": code.as_str() });
            let resp = inner.auth.send(Method::POST, "/v1/me/profile/contact/confirm", |r| r.json(&body)).await?;
            let body = resp.text().await?;
            inner.profile_from_json(&body)
        })
        .await
    }

    /// Uploads a new profile picture (PNG or JPEG, at most 2 MB).
    pub async fn set_picture(&self, image: Vec<u8>) -> Result<()> {
        profile::check_picture(&image)?;
        self.run(move |inner| async move {
            inner.auth.send(Method::PUT, "/v1/me/picture", |r| r.body(image.clone())).await?;
            inner.store.save_picture(Some(&image))?;
            Ok(())
        })
        .await
    }

    /// The profile picture, or `None` if none is set. Offline, the cached copy.
    pub async fn picture(&self) -> Result<Option<Vec<u8>>> {
        self.run(|inner| async move {
            match inner.auth.send(Method::GET, "/v1/me/picture", |r| r).await {
                Ok(resp) => {
                    let bytes = resp.bytes().await?;
                    // Whatever the server sent replaces the cached picture only if it is one.
                    profile::check_picture(&bytes)
                        .map_err(|_| Error::InvalidResponse("picture is not a PNG or JPEG image".into()))?;
                    inner.store.save_picture(Some(&bytes))?;
                    Ok(Some(bytes))
                }
                Err(Error::NotFound) => {
                    inner.store.save_picture(None)?;
                    Ok(None)
                }
                Err(Error::Network(reason)) => inner.store.load_picture()?.map(Some).ok_or(Error::Network(reason)),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

impl Client {
    /// The doors the signed-in person may open, refreshed from the backend with fresh
    /// credentials; with no network, the cached list (unlocking works from it).
    pub async fn doors(&self) -> Result<Vec<Door>> {
        self.run(|inner| async move {
            match inner.sync_doors().await {
                Ok(doors) => Ok(doors.doors),
                Err(Error::Network(reason)) => inner.cached_doors()?.map(|d| d.doors).ok_or(Error::Network(reason)),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// The doors as last synced, without the network.
    pub fn cached_doors(&self) -> Result<Vec<Door>> {
        Ok(self.inner.cached_doors()?.map(|d| d.doors).unwrap_or_default())
    }

    /// Opens `door_id` over the client's lock transport ([`ClientConfig::lock_transport`];
    /// Bluetooth unless the app brought its own), reporting progress to `listener`. Needs no
    /// network: the credential and the updates for the lock come from the last sync. A
    /// refusal is [`Error::Denied`] with the lock's reason; Bluetooth trouble is
    /// [`Error::BluetoothOff`], [`Error::BluetoothNotPermitted`], [`Error::NotInRange`],
    /// [`Error::LockBusy`], [`Error::ConnectionLost`] or [`Error::Timeout`]. The lock's signed
    /// audit record is queued and uploaded in the background. Dropping the returned future
    /// cancels the unlock and closes the link.
    pub async fn unlock(&self, door_id: u32, listener: Arc<dyn UnlockListener>) -> Result<()> {
        let inner = self.inner.clone();
        let transport = self.run(move |_| async move { inner.lock_link.get().await }).await?;
        self.unlock_via(door_id, transport, listener).await
    }

    /// [`Client::unlock`] over `transport` this once, instead of the client's own (a second
    /// radio; tests that put an attacker on the air).
    pub async fn unlock_via(
        &self,
        door_id: u32,
        transport: Arc<dyn LockTransport>,
        listener: Arc<dyn UnlockListener>,
    ) -> Result<()> {
        self.run_cancellable(move |inner| async move {
            let doors = match inner.cached_doors()? {
                Some(d) => d,
                None => inner.sync_doors().await?,
            };
            let mut access = doors.access(door_id, inner.clock.now())?;
            // Carry the time update only to a lock that lacks it: the Proof stays small.
            if let Some((_, time_sequence)) = inner.store.lock_status(access.lock_id)? {
                if access.updates.time.as_ref().is_some_and(|t| t.sequence <= time_sequence) {
                    access.updates.time = None;
                }
            }
            let device_key = device::load(inner.auth.secure_store())?.ok_or(Error::NoAccess)?;
            let params = porta_protocol::PhoneParams {
                credential: access.credential,
                device_key,
                authority: access.authority,
                door_id,
                now: inner.clock.now().max(0) as u64,
                lock_key: access.lock_key,
                updates: access.updates,
            };
            let store = &inner.store;
            let on_decision = |outcome: &porta_protocol::PhoneOutcome| -> Result<()> {
                // Durable before the revocations go out: the record and what the lock holds.
                store.queue_audit(&outcome.audit.to_bytes(), inner.clock.now())?;
                let status = &outcome.lock_status;
                store.save_lock_status(
                    outcome.lock_id,
                    status.revocation_version,
                    status.time_sequence,
                    inner.clock.now(),
                )
            };
            let next_delta = |version: u64| store.next_revocation_delta(version).ok().flatten();
            let outcome =
                unlock::run(transport.as_ref(), listener.as_ref(), access.lock_id, params, &on_decision, &next_delta)
                    .await?;
            let status = &outcome.lock_status;
            inner.store.save_lock_status(
                outcome.lock_id,
                status.revocation_version,
                status.time_sequence,
                inner.clock.now(),
            )?;
            let uploader = inner.clone();
            tokio::spawn(async move {
                if let Err(e) = uploader.upload_access_events().await {
                    tracing::debug!(error = %e, "access events stay queued");
                }
            });
            match unlock::decision(&outcome) {
                Ok(()) => {
                    tracing::info!("door opened");
                    Ok(())
                }
                Err(reason) => {
                    tracing::info!(?reason, "door refused");
                    Err(Error::Denied(reason))
                }
            }
        })
        .await
    }

    /// My signed-in devices, this one marked `current`.
    pub async fn devices(&self) -> Result<Vec<crate::Device>> {
        self.run(|inner| async move {
            let resp = inner.auth.send(Method::GET, "/v1/me/devices", |r| r).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// Signs a device out remotely: its session ends and its key and credentials are put on
    /// the revocation list that phones carry to the locks.
    pub async fn sign_out_device(&self, device_id: &str) -> Result<()> {
        // Path segment: the server's ids are UUIDs; refuse anything else rather than escape it.
        if device_id.is_empty() || !device_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::InvalidInput { field: "device_id", reason: "not a device id" });
        }
        let path = format!("/v1/me/devices/{device_id}");
        self.run(move |inner| async move {
            inner.auth.send(Method::DELETE, &path, |r| r).await?;
            Ok(())
        })
        .await
    }

    /// Every piece of personal data the backend holds about me, by category, with its
    /// purpose, legal basis, retention and who can see it.
    pub async fn my_data(&self) -> Result<MyData> {
        self.run(|inner| async move {
            let resp = inner.auth.send(Method::GET, "/v1/me/data", |r| r).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// Writes my data as one machine-readable JSON file (format `porta-export`, versioned;
    /// schema in `server/schema/`) to `path`, readable only by me. Returns its size.
    pub async fn export_my_data(&self, path: PathBuf) -> Result<u64> {
        self.run(move |inner| async move {
            let resp = inner.auth.send(Method::GET, "/v1/me/export", |r| r).await?;
            let bytes = resp.bytes().await?;
            // Refuse to save anything that is not the documented document.
            let doc: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::InvalidResponse(crate::error::json_error("export", &e)))?;
            if doc.get("format").and_then(|f| f.as_str()) != Some("porta-export") {
                return Err(Error::InvalidResponse("export: not a porta-export document".into()));
            }
            privacy::write_private_file(&path, &bytes)?;
            Ok(bytes.len() as u64)
        })
        .await
    }

    /// My consents; marketing is off until I give it.
    pub async fn consents(&self) -> Result<Vec<Consent>> {
        self.run(|inner| async move {
            let resp = inner.auth.send(Method::GET, "/v1/me/consents", |r| r).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// Gives or withdraws a consent (`purpose`: "marketing").
    pub async fn set_consent(&self, purpose: &str, granted: bool) -> Result<Consent> {
        if purpose.is_empty() || !purpose.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(Error::InvalidInput { field: "purpose", reason: "unknown purpose" });
        }
        let path = format!("/v1/me/consents/{purpose}");
        self.run(move |inner| async move {
            let body = serde_json::json!({ "granted": granted });
            let resp = inner.auth.send(Method::PUT, &path, |r| r.json(&body)).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// Sends a fresh one-time code to confirm account deletion.
    pub async fn request_deletion_code(&self) -> Result<()> {
        self.run(|inner| async move {
            inner.auth.send(Method::POST, "/v1/me/deletion-code", |r| r).await?;
            Ok(())
        })
        .await
    }

    /// Deletes my account, confirmed by the code from [`Client::request_deletion_code`].
    /// The backend erases my data at once and revokes my keys; this phone then wipes its
    /// database files and every secret it stored. Safe to retry after a network failure;
    /// an interruption is finished at the next start.
    pub async fn delete_account(&self, code: &str) -> Result<DeletionReceipt> {
        let code = zeroize::Zeroizing::new(code.trim().to_owned());
        self.run(move |inner| async move {
            let store = inner.auth.secure_store();
            // Reuse the request id of an interrupted attempt, so the server answers a retry
            // with the same receipt.
            let pending = match read_pending_deletion(store)? {
                Some(p) => p,
                None => {
                    let p = PendingDeletion { request_id: random_request_id(), receipt: None };
                    write_pending_deletion(store, &p)?;
                    p
                }
            };
            let receipt = inner.confirm_deletion(&pending.request_id, &code).await?;
            inner.finish_deletion(&pending.request_id, receipt).await?;
            Ok(receipt)
        })
        .await
    }

    /// Uploads queued audit records; returns how many were uploaded. Waits for an upload
    /// already under way (the one after an unlock), so the outbox is settled on return.
    pub async fn upload_access_events(&self) -> Result<usize> {
        self.run(|inner| async move { inner.upload_access_events().await }).await
    }

    /// Audit records waiting for upload.
    pub fn pending_access_events(&self) -> Result<usize> {
        self.inner.store.pending_audit_count()
    }

    /// Which doors I opened and when, and how long each door's log is kept. Uploads queued
    /// records first; offline, the cached copy.
    pub async fn access_log(&self) -> Result<AccessLog> {
        self.run(|inner| async move {
            let fetched = async {
                inner.upload_access_events().await?;
                let resp = inner.auth.send(Method::GET, "/v1/me/access-log", |r| r).await?;
                let body = resp.text().await?;
                let log: AccessLog = serde_json::from_str(&body)
                    .map_err(|e| Error::InvalidResponse(crate::error::json_error("access log", &e)))?;
                let user = inner.auth.user_id().ok_or(Error::NotSignedIn)?;
                inner.store.save_document(Document::AccessLog, &user, &body, inner.clock.now())?;
                Ok(log)
            }
            .await;
            match fetched {
                Err(Error::Network(reason)) => inner.cached_access_log()?.ok_or(Error::Network(reason)),
                other => other,
            }
        })
        .await
    }
}

/// Guest invitations (see [`crate::invitations`]).
impl Client {
    /// Invites a guest to some of my doors for a window, optionally on a weekly schedule.
    /// Hand the guest the returned `link` or `code`; both are secrets until used.
    /// Doors I cannot open for the whole window are [`Error::NoAccess`]; a bad window,
    /// schedule or label is [`Error::InvalidInput`] naming it; guests get [`Error::GuestAccount`].
    pub async fn create_invitation(&self, invitation: NewInvitation) -> Result<CreatedInvitation> {
        if self.is_guest() {
            return Err(Error::GuestAccount);
        }
        self.run(move |inner| async move {
            let body = invitation.request_body();
            let resp = inner.auth.send(Method::POST, "/v1/me/invitations", |r| r.json(&body)).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// The invitations I sent that can still be accepted, and the guests who accepted one.
    pub async fn invitations(&self) -> Result<Invitations> {
        self.run(|inner| async move {
            let resp = inner.auth.send(Method::GET, "/v1/me/invitations", |r| r).await?;
            crate::api::json(resp).await
        })
        .await
    }

    /// Withdraws an invitation and the access of every guest who accepted it: their
    /// credentials go on the revocation list that phones carry to the locks.
    pub async fn revoke_invitation(&self, invitation_id: &str) -> Result<()> {
        invitations::check_id("invitation_id", invitation_id)?;
        let path = format!("/v1/me/invitations/{invitation_id}");
        self.run(move |inner| async move {
            inner.auth.send(Method::DELETE, &path, |r| r).await?;
            Ok(())
        })
        .await
    }

    /// Withdraws one guest's access (see [`Client::revoke_invitation`]).
    pub async fn revoke_guest(&self, guest_id: &str) -> Result<()> {
        invitations::check_id("guest_id", guest_id)?;
        let path = format!("/v1/me/guests/{guest_id}");
        self.run(move |inner| async move {
            inner.auth.send(Method::DELETE, &path, |r| r).await?;
            Ok(())
        })
        .await
    }

    /// What an invitation link or code offers (building, doors, window, schedule), without
    /// accepting it and without an account. A link or code that cannot be used is
    /// [`Error::Invitation`] with the reason.
    pub async fn invitation_preview(&self, link_or_code: &str) -> Result<InvitationPreview> {
        let token = invitations::normalize(link_or_code)?;
        self.run(move |inner| async move {
            let api = inner.auth.api();
            let path = format!("/v1/invitations/{}", token.expose());
            let resp = api.send(Method::GET, || api.request(Method::GET, &path)).await?;
            crate::api::json(crate::api::check(resp).await?).await
        })
        .await
    }

    /// Accepts an invitation link or code, then syncs the doors so they open at once.
    ///
    /// Signed in, the access is attached to my account. Not signed in, this phone becomes a
    /// guest: a new device key in the secure store, enrolled by proof of possession, and a
    /// guest session kept like a sign-in's, until the invitation's window ends. Accepting the
    /// same invitation again on this phone gives the same guest; a guest accepting another one gets
    /// [`Error::GuestAccount`] (one guest access per phone without an account) and keeps the first.
    pub async fn accept_invitation(&self, link_or_code: &str) -> Result<AcceptedInvitation> {
        let token = invitations::normalize(link_or_code)?;
        self.run(move |inner| async move {
            let accepted = if inner.auth.user_id().is_some() && !inner.auth.is_guest() {
                let body = serde_json::json!({ "code": token.expose() });
                let resp = inner.auth.send(Method::POST, "/v1/invitations/accept", |r| r.json(&body)).await?;
                crate::api::json(resp).await?
            } else {
                inner.become_guest(&token).await?
            };
            // The access is granted either way; a failed sync is retried by the next doors().
            if let Err(e) = inner.sync_doors().await {
                tracing::warn!(error = %e, "doors not synced after accepting an invitation");
            }
            Ok(accepted)
        })
        .await
    }
}

fn read_pending_deletion(store: &dyn SecureStore) -> Result<Option<PendingDeletion>> {
    match store.get(PENDING_DELETION_KEY).map_err(|e| Error::SecureStore(e.0))? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        None => Ok(None),
    }
}

fn write_pending_deletion(store: &dyn SecureStore, p: &PendingDeletion) -> Result<()> {
    let bytes = serde_json::to_vec(p).map_err(|e| Error::Internal(format!("encode: {e}")))?;
    store.set(PENDING_DELETION_KEY, &bytes).map_err(|e| Error::SecureStore(e.0))
}

fn random_request_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // UUID v4
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Deletes the local database files and every secret this library stored; the pending
/// deletion marker goes last, so a crash midway repeats the wipe at the next start.
fn wipe_everything(store: &LocalStore, secure_store: &dyn SecureStore) -> Result<()> {
    store.wipe()?;
    for key in [auth::SESSION_KEY, device::DEVICE_KEY, PENDING_DELETION_KEY] {
        secure_store.delete(key).map_err(|e| Error::SecureStore(e.0))?;
    }
    Ok(())
}

impl Inner {
    async fn confirm_deletion(&self, request_id: &str, code: &str) -> Result<DeletionReceipt> {
        let body = serde_json::json!({ "code": code, "request_id": request_id });
        let resp = self.auth.send(Method::POST, "/v1/me/delete", |r| r.json(&body)).await;
        match resp {
            Ok(resp) => crate::api::json(resp).await,
            // Our token may already be dead if the server deleted us and the answer was lost.
            Err(Error::NotSignedIn) => self.fetch_receipt(request_id).await?.ok_or(Error::NotSignedIn),
            Err(e) => Err(e),
        }
    }

    async fn fetch_receipt(&self, request_id: &str) -> Result<Option<DeletionReceipt>> {
        let path = format!("/v1/deletion-receipts/{request_id}");
        let resp = self.auth.api().send(Method::GET, || self.auth.api().request(Method::GET, &path)).await?;
        match crate::api::check(resp).await {
            Ok(resp) => Ok(Some(crate::api::json(resp).await?)),
            Err(Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn finish_deletion(&self, request_id: &str, receipt: DeletionReceipt) -> Result<()> {
        let store = self.auth.secure_store();
        write_pending_deletion(store, &PendingDeletion { request_id: request_id.to_owned(), receipt: Some(receipt) })?;
        self.auth.forget_session().await?;
        wipe_everything(&self.store, store)?;
        tracing::info!("account deleted; local data wiped");
        Ok(())
    }

    async fn resume_deletion(&self, request_id: &str) -> Result<()> {
        if let Some(receipt) = self.fetch_receipt(request_id).await? {
            self.finish_deletion(request_id, receipt).await?;
        }
        Ok(())
    }

    /// `POST /v1/guests` with this phone's device key: the guest's own when accepting again,
    /// else a new one. A refused key is deleted again, so a failed accept leaves nothing; after a
    /// lost answer it is kept, so trying again is the same guest (the server may hold it already).
    async fn become_guest(&self, token: &Secret) -> Result<AcceptedInvitation> {
        let store = self.auth.secure_store();
        let was_guest = self.auth.is_guest();
        if !was_guest {
            // Nothing of an earlier person may reach the guest's session (their outbox, cache).
            // With no session, a device key left here is from an accept whose answer was lost.
            self.store.clear_user_data()?;
        }
        let mut fresh_key_tried = false;
        loop {
            let key = device::load_or_create(store)?;
            let session = match self.post_guest(token, &key).await {
                Ok(session) => session,
                // The answer may have been lost after the server created the guest.
                Err(e @ Error::Network(_)) => return Err(e),
                // The left-over key belongs to another guest: start over with a new one, once.
                Err(Error::Server { code, .. }) if code == "key_in_use" && !was_guest && !fresh_key_tried => {
                    device::delete(store)?;
                    fresh_key_tried = true;
                    continue;
                }
                Err(e) => {
                    if !was_guest {
                        device::delete(store)?;
                    }
                    return Err(match e {
                        Error::Server { code, .. } if code == "invalid_proof" => Error::InvalidInput {
                            field: "clock",
                            reason: "this device's clock is off by over 10 minutes",
                        },
                        // A guest's key holds one invitation; a second one needs an account.
                        Error::Server { code, .. } if code == "key_in_use" => Error::GuestAccount,
                        e => e,
                    });
                }
            };
            self.auth.start_guest_session(session.tokens, session.expires_at).await?;
            return Ok(session.invitation);
        }
    }

    async fn post_guest(&self, token: &Secret, key: &porta_protocol::SigningKey) -> Result<GuestSession> {
        let time = self.clock.now();
        let body = serde_json::json!({
            "code": token.expose(),
            "public_key": B64.encode(key.verifying_key().to_bytes()),
            "signature": B64.encode(invitations::guest_proof(key, token, time)),
            "time": time,
            "device_name": self.auth.device_name(),
        });
        let api = self.auth.api();
        let resp = api.send(Method::POST, || api.request(Method::POST, "/v1/guests").json(&body)).await?;
        crate::api::json::<GuestSession>(crate::api::check(resp).await?).await
    }

    async fn enroll_device(&self) -> Result<()> {
        let key = device::load_or_create(self.auth.secure_store())?;
        let session_id = self.auth.session_id().await.ok_or(Error::NotSignedIn)?;
        let body = serde_json::json!({
            "public_key": B64.encode(key.verifying_key().to_bytes()),
            "signature": B64.encode(device::enrollment_signature(&key, &session_id)),
        });
        self.auth.send(Method::POST, "/v1/me/device-key", |r| r.json(&body)).await?;
        Ok(())
    }

    async fn sync_doors(&self) -> Result<DoorsResponse> {
        let resp = match self.auth.send(Method::GET, "/v1/me/doors", |r| r).await {
            // A guest's key was enrolled when the guest was created, never by this call.
            Err(Error::Server { code, .. }) if code == "device_not_enrolled" && !self.auth.is_guest() => {
                self.enroll_device().await?;
                self.auth.send(Method::GET, "/v1/me/doors", |r| r).await?
            }
            other => other?,
        };
        let body = resp.text().await?;
        let doors: DoorsResponse =
            serde_json::from_str(&body).map_err(|e| Error::InvalidResponse(crate::error::json_error("doors", &e)))?;
        // Only a complete, verifiable answer replaces what unlocking relies on offline.
        doors.validate()?;
        let user = self.auth.user_id().ok_or(Error::NotSignedIn)?;
        self.store.save_document(Document::Doors, &user, &body, self.clock.now())?;
        // Revocations are for other people's phones; failing to fetch them must not cost
        // this person their doors. The next sync tries again.
        if let Err(e) = self.sync_revocations(&doors).await {
            tracing::debug!(error = %e, "revocation deltas not refreshed");
        }
        Ok(doors)
    }

    /// Fetches the revocation deltas my locks lack, from the oldest version one of them
    /// reported, unless the cache already covers them.
    async fn sync_revocations(&self, doors: &DoorsResponse) -> Result<()> {
        let since = self.store.oldest_lock_revocation(&doors.lock_ids())?;
        if since >= doors.revocation_version {
            return Ok(());
        }
        if let Some((from, to)) = self.store.revocation_delta_range()? {
            if from <= since && to >= doors.revocation_version {
                return Ok(());
            }
        }
        let path = format!("/v1/me/revocations?since={since}");
        let resp = self.auth.send(Method::GET, &path, |r| r).await?;
        let body = resp.text().await?;
        let revocations: crate::doors::RevocationsResponse = serde_json::from_str(&body)
            .map_err(|e| Error::InvalidResponse(crate::error::json_error("revocations", &e)))?;
        let deltas = revocations.verified(&doors.authority()?, since)?;
        self.store.save_revocation_deltas(&deltas)
    }

    fn cached_doors(&self) -> Result<Option<DoorsResponse>> {
        let Some((user_id, json)) = self.store.load_document(Document::Doors)? else { return Ok(None) };
        if self.auth.user_id().as_deref() != Some(user_id.as_str()) {
            return Ok(None);
        }
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::Storage(crate::error::json_error("cached doors unreadable", &e)))
    }

    fn cached_access_log(&self) -> Result<Option<AccessLog>> {
        let Some((user_id, json)) = self.store.load_document(Document::AccessLog)? else { return Ok(None) };
        if self.auth.user_id().as_deref() != Some(user_id.as_str()) {
            return Ok(None);
        }
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::Storage(crate::error::json_error("cached log unreadable", &e)))
    }

    /// Uploads the outbox in batches. A record is removed only after the server accepted
    /// it; a crash in between re-sends it, and the server stores it once (idempotent on the
    /// lock's audit counter): exactly once end to end.
    async fn upload_access_events(&self) -> Result<usize> {
        let _one_at_a_time = self.uploading.lock().await;
        let mut uploaded = 0;
        loop {
            let batch = self.store.pending_audits(UPLOAD_BATCH)?;
            if batch.is_empty() {
                return Ok(uploaded);
            }
            let events: Vec<_> =
                batch.iter().map(|(_, record)| serde_json::json!({ "audit_record": B64.encode(record) })).collect();
            let body = serde_json::json!({ "events": events });
            let resp = self.auth.send(Method::POST, "/v1/me/access-events", |r| r.json(&body)).await?;
            // Forget records only once the server has said it holds every one of them.
            let stored: IngestResult = crate::api::json(resp).await?;
            if stored.settled() != batch.len() {
                return Err(Error::InvalidResponse("access events: not every record was acknowledged".into()));
            }
            let seqs: Vec<i64> = batch.iter().map(|(seq, _)| *seq).collect();
            self.store.remove_audits(&seqs)?;
            uploaded += seqs.len();
        }
    }

    async fn fetch_profile(&self) -> Result<Profile> {
        let resp = self.auth.send(Method::GET, "/v1/me/profile", |r| r).await?;
        let body = resp.text().await?;
        self.profile_from_json(&body)
    }

    fn profile_from_json(&self, body: &str) -> Result<Profile> {
        let profile: Profile =
            serde_json::from_str(body).map_err(|e| Error::InvalidResponse(crate::error::json_error("profile", &e)))?;
        self.store.save_profile(&profile.user_id, body, self.clock.now())?;
        Ok(profile)
    }

    fn cached_profile(&self) -> Result<Option<Profile>> {
        let Some((user_id, json)) = self.store.load_profile()? else { return Ok(None) };
        // Only the signed-in person's own cache is ever shown.
        if self.auth.user_id().as_deref() != Some(user_id.as_str()) {
            return Ok(None);
        }
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::Storage(crate::error::json_error("cached profile unreadable", &e)))
    }
}
