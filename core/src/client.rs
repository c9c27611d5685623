//! [`Client`]: the one object an app holds. It owns the core's tokio runtime, so callers on
//! any executor (Swift's, Kotlin coroutines, a plain thread) can await its methods.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;

use crate::api::Api;
use crate::auth::{self, Auth};
use crate::error::{Error, Result};
use crate::profile::{self, Profile, ProfileUpdate};
use crate::secure_store::SecureStore;
use crate::store::LocalStore;

/// How to reach the backend and where to keep local data.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the Porta backend, e.g. `https://porta.example.com`.
    pub server_url: String,
    /// A directory the app owns; the local database lives here.
    pub data_dir: PathBuf,
    /// Shown to the user in their device list ("Ada's iPhone").
    pub device_name: String,
    /// Upper bound for one HTTP request, connection included.
    pub request_timeout: Duration,
}

impl ClientConfig {
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server_url: server_url.into(),
            data_dir: data_dir.into(),
            device_name: "Unknown device".into(),
            request_timeout: Duration::from_secs(15),
        }
    }
}

struct Inner {
    auth: Auth,
    store: LocalStore,
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
        let auth = Auth::restore(api, secure_store, config.device_name.clone())?;
        Ok(Self { runtime: Runtime(Some(runtime)), inner: Arc::new(Inner { auth, store }) })
    }

    /// Runs `f` on the core's runtime and awaits it from whatever executor the caller uses.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let rt = self.runtime.0.as_ref().ok_or_else(|| Error::Internal("runtime stopped".into()))?;
        rt.spawn(f(self.inner.clone())).await.map_err(|e| Error::Internal(format!("task failed: {e}")))?
    }

    /// Whether a session is held (restored at start or from a sign-in).
    pub fn is_signed_in(&self) -> bool {
        self.inner.auth.user_id().is_some()
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
            let session = inner.auth.sign_in(&identifier, &code).await?;
            if previous.is_some_and(|p| p != session.user_id) {
                // Someone else signed in on this phone: nothing of the previous person stays.
                inner.store.clear_user_data()?;
            }
            Ok(())
        })
        .await
    }

    /// Ends the session and forgets the tokens and the cached profile.
    pub async fn sign_out(&self) -> Result<()> {
        self.run(|inner| async move {
            inner.auth.sign_out().await?;
            inner.store.clear_user_data()
        })
        .await
    }

    /// The profile from the backend, cached for offline use. With no network, the cached
    /// copy is returned if there is one; otherwise the network error.
    pub async fn profile(&self) -> Result<Profile> {
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
    pub async fn update_profile(&self, update: ProfileUpdate) -> Result<Profile> {
        self.run(move |inner| async move {
            let resp = inner.auth.send(Method::PATCH, "/v1/me/profile", |r| r.json(&update)).await?;
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
                    let bytes = resp.bytes().await?.to_vec();
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

impl Inner {
    async fn fetch_profile(&self) -> Result<Profile> {
        let resp = self.auth.send(Method::GET, "/v1/me/profile", |r| r).await?;
        let body = resp.text().await?;
        self.profile_from_json(&body)
    }

    fn profile_from_json(&self, body: &str) -> Result<Profile> {
        let profile: Profile =
            serde_json::from_str(body).map_err(|e| Error::InvalidResponse(format!("profile: {e}")))?;
        self.store.save_profile(&profile.user_id, body, auth::now())?;
        Ok(profile)
    }

    fn cached_profile(&self) -> Result<Option<Profile>> {
        let Some((user_id, json)) = self.store.load_profile()? else { return Ok(None) };
        // Only the signed-in person's own cache is ever shown.
        if self.auth.user_id().as_deref() != Some(user_id.as_str()) {
            return Ok(None);
        }
        serde_json::from_str(&json).map(Some).map_err(|e| Error::Storage(format!("cached profile unreadable: {e}")))
    }
}
