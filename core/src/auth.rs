//! Sign-in with a one-time code, the session's tokens in the secure store, silent refresh
//! (one refresh however many calls notice the expiry at once), and sign-out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::api::{self, Api, Reply};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::secure_store::SecureStore;

/// Secure-store key of the session tokens.
pub(crate) const SESSION_KEY: &str = "porta.session";

/// Refresh this many seconds before the server's expiry, so a request never races it.
const EXPIRY_MARGIN_S: i64 = 30;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub user_id: String,
    pub session_id: String,
    access_token: Secret,
    refresh_token: Secret,
    /// Local unix time after which the access token is treated as expired.
    access_expires_at: i64,
    /// A guest's session (from an invitation, no account) ends at this server time, the end
    /// of the invitation's window; `None` for a resident. Absent in sessions stored before.
    #[serde(default)]
    guest_until: Option<i64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_expires_at", &self.access_expires_at)
            .field("guest_until", &self.guest_until)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    access_token: Secret,
    refresh_token: Secret,
    access_expires_in_s: i64,
    user_id: String,
    session_id: String,
}

impl TokenResponse {
    pub(crate) fn into_session(self) -> Session {
        Session {
            user_id: self.user_id,
            session_id: self.session_id,
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            // Saturating: the lifetime is the server's to choose, and the largest would overflow.
            access_expires_at: now().saturating_add(self.access_expires_in_s.max(0)),
            guest_until: None,
        }
    }
}

struct State {
    session: Option<Session>,
    /// Bumped on every change, so a caller that saw an old token knows someone refreshed.
    generation: u64,
}

pub(crate) struct Auth {
    api: Api,
    secure_store: Arc<dyn SecureStore>,
    state: Mutex<State>,
    /// The signed-in user, readable without waiting for a refresh in flight.
    user_id: std::sync::RwLock<Option<String>>,
    /// Whether the session held is a guest's, readable like `user_id`.
    guest: AtomicBool,
    /// Set when a guest's session ended (the server refused it, e.g. after its window):
    /// the client then forgets the guest's cache too, as at sign-out.
    guest_ended: AtomicBool,
    device_name: String,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Auth {
    /// Restores the session kept in the secure store, if any.
    pub fn restore(api: Api, secure_store: Arc<dyn SecureStore>, device_name: String) -> Result<Self> {
        let session = match secure_store.get(SESSION_KEY).map_err(|e| Error::SecureStore(e.0))? {
            Some(bytes) => match serde_json::from_slice::<Session>(&bytes) {
                Ok(session) => Some(session),
                Err(_) => {
                    // A corrupt entry cannot be used; signing in again is the only way out.
                    tracing::warn!("stored session is unreadable; starting signed out");
                    None
                }
            },
            None => None,
        };
        let user_id = std::sync::RwLock::new(session.as_ref().map(|s| s.user_id.clone()));
        let guest = AtomicBool::new(session.as_ref().is_some_and(|s| s.guest_until.is_some()));
        Ok(Self {
            api,
            secure_store,
            state: Mutex::new(State { session, generation: 0 }),
            user_id,
            guest,
            guest_ended: AtomicBool::new(false),
            device_name,
        })
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Drops the session here without telling the server (the account is gone).
    pub async fn forget_session(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        self.replace_session(&mut state, None)
    }

    pub fn secure_store(&self) -> &dyn SecureStore {
        self.secure_store.as_ref()
    }

    pub async fn session_id(&self) -> Option<String> {
        self.state.lock().await.session.as_ref().map(|s| s.session_id.clone())
    }

    pub fn user_id(&self) -> Option<String> {
        self.user_id.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the session held is a guest's (see [`Session::guest_until`]).
    pub fn is_guest(&self) -> bool {
        self.guest.load(Ordering::SeqCst)
    }

    /// True once after a guest's session ended.
    pub fn take_guest_ended(&self) -> bool {
        self.guest_ended.swap(false, Ordering::SeqCst)
    }

    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Keeps the session `POST /v1/guests` created, exactly as a sign-in keeps its own. Its
    /// device key is already enrolled (by that call).
    pub async fn start_guest_session(&self, tokens: TokenResponse, expires_at: i64) -> Result<()> {
        let mut session = tokens.into_session();
        session.guest_until = Some(expires_at);
        let mut state = self.state.lock().await;
        // Replacing a session must not delete the device key the new one was created with.
        self.persist(Some(&session))?;
        self.set_session(&mut state, Some(session));
        tracing::info!("guest session started");
        Ok(())
    }

    /// The one way the session changes: secure store first, so memory never claims a
    /// session that a restart would not find.
    fn replace_session(&self, state: &mut State, session: Option<Session>) -> Result<()> {
        self.persist(session.as_ref())?;
        if session.is_none() {
            // The device key is enrolled for this session only; the server revoked it with it.
            crate::device::delete(self.secure_store.as_ref())?;
            if state.session.as_ref().is_some_and(|s| s.guest_until.is_some()) {
                self.guest_ended.store(true, Ordering::SeqCst);
            }
        }
        self.set_session(state, session);
        Ok(())
    }

    fn set_session(&self, state: &mut State, session: Option<Session>) {
        *self.user_id.write().unwrap_or_else(|e| e.into_inner()) = session.as_ref().map(|s| s.user_id.clone());
        self.guest.store(session.as_ref().is_some_and(|s| s.guest_until.is_some()), Ordering::SeqCst);
        state.session = session;
        state.generation += 1;
    }

    pub async fn request_code(&self, identifier: &str) -> Result<()> {
        let body = serde_json::json!({ "identifier": identifier });
        let resp = self.api.send(Method::POST, || self.api.request(Method::POST, "/v1/auth/code").json(&body)).await?;
        api::check(resp).await?;
        Ok(())
    }

    pub async fn sign_in(&self, identifier: &str, code: &str) -> Result<Session> {
        let code = Secret::new(code.trim());
        let body = serde_json::json!({
            "identifier": identifier, "code": code.expose(), "device_name": self.device_name,
        });
        let resp =
            self.api.send(Method::POST, || self.api.request(Method::POST, "/v1/auth/sign-in").json(&body)).await?;
        let tokens: TokenResponse = api::json(api::check(resp).await?).await?;
        let session = tokens.into_session();
        let mut state = self.state.lock().await;
        self.replace_session(&mut state, Some(session.clone()))?;
        tracing::info!("signed in");
        Ok(session)
    }

    /// Ends the session on the server (best effort) and wipes the tokens here in any case.
    pub async fn sign_out(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        if let Some(session) = state.session.as_ref() {
            let access = session.access_token.clone();
            let sent = self
                .api
                .send(Method::POST, || self.api.request(Method::POST, "/v1/auth/sign-out").bearer_auth(access.expose()))
                .await;
            if sent.is_err() {
                tracing::warn!("server not reached at sign-out; the session expires there on its own");
            }
        }
        self.replace_session(&mut state, None)?;
        tracing::info!("signed out");
        Ok(())
    }

    /// Forgets the session locally without telling the server (it already refused it).
    async fn drop_session(&self, seen_generation: u64) -> Result<()> {
        let mut state = self.state.lock().await;
        if state.generation == seen_generation {
            self.replace_session(&mut state, None)?;
            tracing::warn!("the server refused the session; signed out");
        }
        Ok(())
    }

    fn persist(&self, session: Option<&Session>) -> Result<()> {
        match session {
            Some(s) => {
                let bytes = zeroize::Zeroizing::new(
                    serde_json::to_vec(s).map_err(|e| Error::Internal(format!("encode session: {e}")))?,
                );
                self.secure_store.set(SESSION_KEY, &bytes)
            }
            None => self.secure_store.delete(SESSION_KEY),
        }
        .map_err(|e| Error::SecureStore(e.0))
    }

    /// A usable access token and the generation it belongs to, refreshing first if it expired.
    async fn access_token(&self) -> Result<(Secret, u64)> {
        let (session, generation) = {
            let state = self.state.lock().await;
            (state.session.clone().ok_or(Error::NotSignedIn)?, state.generation)
        };
        if session.access_expires_at - EXPIRY_MARGIN_S > now() {
            return Ok((session.access_token, generation));
        }
        self.refresh(generation).await
    }

    /// Refreshes unless another caller already did since `seen_generation`. The state lock is
    /// held across the request so concurrent callers wait for this one refresh instead of
    /// spending the same refresh token twice (which the server treats as theft).
    async fn refresh(&self, seen_generation: u64) -> Result<(Secret, u64)> {
        let mut state = self.state.lock().await;
        let session = state.session.clone().ok_or(Error::NotSignedIn)?;
        if state.generation != seen_generation {
            return Ok((session.access_token, state.generation));
        }
        let body = serde_json::json!({ "refresh_token": session.refresh_token.expose() });
        let resp =
            self.api.send(Method::POST, || self.api.request(Method::POST, "/v1/auth/refresh").json(&body)).await?;
        match api::check(resp).await {
            Ok(resp) => {
                let mut fresh = api::json::<TokenResponse>(resp).await?.into_session();
                // Still the same guest: the server never refreshes past the window's end.
                fresh.guest_until = session.guest_until;
                let token = fresh.access_token.clone();
                self.replace_session(&mut state, Some(fresh))?;
                tracing::debug!("access token refreshed");
                Ok((token, state.generation))
            }
            Err(Error::NotSignedIn) => {
                self.replace_session(&mut state, None)?;
                tracing::warn!("refresh refused; signed out");
                Err(Error::NotSignedIn)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends an authenticated request; on 401 refreshes once and retries. Returns the
    /// response after [`api::check`], so callers only see success or a typed error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply> {
        let (token, generation) = self.access_token().await?;
        let resp = self.send_with(&method, path, &token, &build).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return api::check(resp).await;
        }
        let refused = api::ErrorResponse::read(resp).await;
        if !refused.is_auth_failure() {
            // A 401 about something else (a wrong one-time code) is that error, not a reason
            // to refresh.
            return Err(refused.into_error());
        }
        let (token, new_generation) = self.refresh(generation).await?;
        let resp = self.send_with(&method, path, &token, &build).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return api::check(resp).await;
        }
        let refused = api::ErrorResponse::read(resp).await;
        if refused.is_auth_failure() {
            self.drop_session(new_generation).await?;
            return Err(Error::NotSignedIn);
        }
        Err(refused.into_error())
    }

    async fn send_with(
        &self,
        method: &Method,
        path: &str,
        token: &Secret,
        build: &impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply> {
        self.api
            .send(method.clone(), || build(self.api.request(method.clone(), path).bearer_auth(token.expose())))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `core_json` fuzz target: the largest lifetime a server can send overflowed
    /// the expiry (a panic in debug builds, an already-expired session in release ones).
    #[test]
    fn a_huge_token_lifetime_gives_a_session_that_is_not_already_expired() {
        let json = r#"{"access_token": "at", "refresh_token": "rt", "access_expires_in_s": 9223372036854775807,
                       "user_id": "u", "session_id": "s"}"#;
        let session = serde_json::from_str::<TokenResponse>(json).unwrap().into_session();
        assert!(session.access_expires_at > now());
    }
}
