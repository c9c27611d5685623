//! A typed async client of the Porta server's admin API (`/v1/admin`), as the `porta-admin`
//! tool, the tests and the demo runner use it: sign-in with a one-time code, sites, units,
//! doors, residents, grants, roles, security events, partner keys and lock provisioning.
//!
//! ```no_run
//! # async fn run() -> Result<(), porta_admin::AdminError> {
//! let admin = porta_admin::AdminClient::sign_in_with_code("http://127.0.0.1:8080", "admin@demo.porta.app", "123456")
//!     .await?;
//! let site = &admin.sites().await?[0];
//! let request = std::fs::read_to_string("lock.req").unwrap();
//! let answer = admin.provision_lock(&site.id, 1, &request, None).await?;
//! std::fs::write("lock.answer", serde_json::to_string_pretty(&answer).unwrap()).unwrap();
//! # Ok(()) }
//! ```
//!
//! The access token lives 15 minutes; on `401 token_expired` the client refreshes it once
//! with the (single-use) refresh token and retries. A caller that keeps sessions on disk
//! registers [`AdminClient::on_session_change`] so a rotated refresh token is never lost.

mod error;
mod types;

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

pub use error::AdminError;
pub use types::*;

type SessionListener = Arc<dyn Fn(&Session) + Send + Sync>;

/// A signed-in admin of one server.
pub struct AdminClient {
    http: reqwest::Client,
    session: Mutex<Session>,
    on_change: Option<SessionListener>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient").field("session", &*self.session.lock().unwrap()).finish()
    }
}

/// The answer to a code request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CodeSent {
    /// Seconds the code stays valid.
    pub expires_in_s: i64,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    user_id: String,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("porta-admin/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

fn base(server_url: &str) -> String {
    server_url.trim().trim_end_matches('/').to_owned()
}

/// The body of a success, or the error the answer means.
async fn read_answer(response: reqwest::Response) -> Result<Vec<u8>, AdminError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = response.bytes().await.map_err(AdminError::network)?;
    if status.is_success() {
        Ok(body.to_vec())
    } else {
        Err(AdminError::from_response(status.as_u16(), retry_after, &body))
    }
}

fn parse<T: DeserializeOwned>(body: Vec<u8>) -> Result<T, AdminError> {
    // A success the tool cannot read is the server's fault (or a newer, incompatible one).
    serde_json::from_slice(&body).map_err(|_| AdminError::Server { status: 200, code: "unreadable_answer".into() })
}

async fn post_unauthenticated<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: String,
    body: Value,
) -> Result<T, AdminError> {
    let response = http.post(url).json(&body).send().await.map_err(AdminError::network)?;
    parse(read_answer(response).await?)
}

impl AdminClient {
    /// Asks the server to send a one-time sign-in code to `identifier` (email or phone).
    pub async fn request_code(server_url: &str, identifier: &str) -> Result<CodeSent, AdminError> {
        let url = format!("{}/v1/auth/code", base(server_url));
        post_unauthenticated(&http_client(), url, json!({ "identifier": identifier })).await
    }

    /// Signs in with the code that was sent to `identifier`.
    pub async fn sign_in_with_code(server_url: &str, identifier: &str, code: &str) -> Result<AdminClient, AdminError> {
        let http = http_client();
        let server = base(server_url);
        let body = json!({ "identifier": identifier, "code": code.trim(), "device_name": "porta-admin" });
        let tokens: Tokens = post_unauthenticated(&http, format!("{server}/v1/auth/sign-in"), body).await?;
        let session = Session {
            server,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            user_id: tokens.user_id,
        };
        Ok(AdminClient { http, session: Mutex::new(session), on_change: None })
    }

    /// A client continuing a saved session.
    pub fn from_session(session: Session) -> AdminClient {
        let session = Session { server: base(&session.server), ..session };
        AdminClient { http: http_client(), session: Mutex::new(session), on_change: None }
    }

    /// Calls `listener` with the session each time its tokens rotate (after a refresh).
    pub fn on_session_change(mut self, listener: impl Fn(&Session) + Send + Sync + 'static) -> AdminClient {
        self.on_change = Some(Arc::new(listener));
        self
    }

    /// The session as it is now (tokens included: keep it private).
    pub fn session(&self) -> Session {
        self.session.lock().unwrap().clone()
    }

    pub fn server_url(&self) -> String {
        self.session.lock().unwrap().server.clone()
    }

    /// Ends the session at the server (its tokens stop working).
    pub async fn sign_out(&self) -> Result<(), AdminError> {
        self.send(Method::POST, "/v1/auth/sign-out", None).await.map(drop)
    }

    /// Swaps the refresh token for new tokens. A refused refresh ends the session.
    async fn refresh(&self) -> Result<(), AdminError> {
        let (server, refresh_token) = {
            let session = self.session.lock().unwrap();
            (session.server.clone(), session.refresh_token.clone())
        };
        let url = format!("{server}/v1/auth/refresh");
        let tokens: Tokens = post_unauthenticated(&self.http, url, json!({ "refresh_token": refresh_token }))
            .await
            .map_err(|e| match e {
                AdminError::Invalid { .. } => AdminError::NotSignedIn,
                other => other,
            })?;
        let session = {
            let mut session = self.session.lock().unwrap();
            session.access_token = tokens.access_token;
            session.refresh_token = tokens.refresh_token;
            session.user_id = tokens.user_id;
            session.clone()
        };
        if let Some(listener) = &self.on_change {
            listener(&session);
        }
        Ok(())
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, AdminError> {
        let (server, token) = {
            let session = self.session.lock().unwrap();
            (session.server.clone(), session.access_token.clone())
        };
        let mut request = self.http.request(method.clone(), format!("{server}{path}")).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(AdminError::network)
    }

    /// One authenticated call; an expired access token is refreshed once and the call retried.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Vec<u8>, AdminError> {
        let response = self.send_once(&method, path, body.as_ref()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let status = response.status().as_u16();
            let answer = response.bytes().await.map_err(AdminError::network)?;
            let code = serde_json::from_slice::<Value>(&answer).ok().and_then(|v| v["code"].as_str().map(String::from));
            if code.as_deref() != Some("token_expired") {
                return Err(AdminError::from_response(status, None, &answer));
            }
            self.refresh().await?;
            return read_answer(self.send_once(&method, path, body.as_ref()).await?).await;
        }
        read_answer(response).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        parse(self.send(Method::GET, path, None).await?)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, AdminError> {
        parse(self.send(Method::POST, path, Some(body)).await?)
    }

    async fn patch<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, AdminError> {
        parse(self.send(Method::PATCH, path, Some(body)).await?)
    }

    async fn delete(&self, path: &str) -> Result<(), AdminError> {
        self.send(Method::DELETE, path, None).await.map(drop)
    }

    // ---- sites ----

    /// The sites you administer (an operator: every site).
    pub async fn sites(&self) -> Result<Vec<Site>, AdminError> {
        self.get("/v1/admin/sites").await
    }

    /// Creates a site (operators only).
    pub async fn create_site(&self, site: &NewSite) -> Result<Site, AdminError> {
        self.post("/v1/admin/sites", to_value(site)).await
    }

    pub async fn site(&self, site_id: &str) -> Result<Site, AdminError> {
        self.get(&site_path(site_id, "")).await
    }

    pub async fn update_site(&self, site_id: &str, changes: &SiteChanges) -> Result<Site, AdminError> {
        self.patch(&site_path(site_id, ""), to_value(changes)).await
    }

    // ---- units ----

    pub async fn units(&self, site_id: &str) -> Result<Vec<Unit>, AdminError> {
        self.get(&site_path(site_id, "/units")).await
    }

    pub async fn create_unit(&self, site_id: &str, name: &str, kind: UnitKind) -> Result<Unit, AdminError> {
        self.post(&site_path(site_id, "/units"), json!({ "name": name, "kind": kind })).await
    }

    /// Deletes a unit: its grants are revoked; its residents keep their accounts.
    pub async fn delete_unit(&self, site_id: &str, unit_id: &str) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/units/{}", segment(unit_id)))).await
    }

    // ---- doors ----

    pub async fn doors(&self, site_id: &str) -> Result<Vec<Door>, AdminError> {
        self.get(&site_path(site_id, "/doors")).await
    }

    /// Adds a door (it gets the next free number); `retention_days` `None`: the server's 90.
    pub async fn create_door(
        &self,
        site_id: &str,
        name: &str,
        retention_days: Option<i64>,
    ) -> Result<Door, AdminError> {
        let mut body = json!({ "name": name });
        if let Some(days) = retention_days {
            body["log_retention_days"] = json!(days);
        }
        self.post(&site_path(site_id, "/doors"), body).await
    }

    pub async fn update_door(&self, site_id: &str, door: u32, changes: &DoorChanges) -> Result<Door, AdminError> {
        self.patch(&site_path(site_id, &format!("/doors/{door}")), to_value(changes)).await
    }

    /// Sets how many days (1 to 365) the door's access events are kept.
    pub async fn set_retention(&self, site_id: &str, door: u32, days: i64) -> Result<Door, AdminError> {
        self.update_door(site_id, door, &DoorChanges { name: None, log_retention_days: Some(days) }).await
    }

    /// Deletes a door: credentials that open it go on the revocation list.
    pub async fn delete_door(&self, site_id: &str, door: u32) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/doors/{door}"))).await
    }

    // ---- residents ----

    pub async fn residents(&self, site_id: &str, unit_id: &str) -> Result<Vec<Resident>, AdminError> {
        self.get(&site_path(site_id, &format!("/units/{}/residents", segment(unit_id)))).await
    }

    /// Adds a resident by email or phone; the server sends them a sign-in code.
    pub async fn add_resident(
        &self,
        site_id: &str,
        unit_id: &str,
        identifier: &str,
    ) -> Result<ResidentInvited, AdminError> {
        let path = site_path(site_id, &format!("/units/{}/residents", segment(unit_id)));
        self.post(&path, json!({ "identifier": identifier })).await
    }

    pub async fn remove_resident(&self, site_id: &str, unit_id: &str, user_id: &str) -> Result<(), AdminError> {
        let path = site_path(site_id, &format!("/units/{}/residents/{}", segment(unit_id), segment(user_id)));
        self.delete(&path).await
    }

    // ---- grants ----

    pub async fn grants(&self, site_id: &str) -> Result<Vec<Grant>, AdminError> {
        self.get(&site_path(site_id, "/grants")).await
    }

    pub async fn create_grant(&self, site_id: &str, grant: &NewGrant) -> Result<Grant, AdminError> {
        let mut body = json!({ "doors": grant.doors });
        match &grant.to {
            Grantee::Unit(unit) => body["unit_id"] = json!(unit),
            Grantee::Person(user) => body["user_id"] = json!(user),
        }
        if let Some(at) = grant.not_before {
            body["not_before"] = json!(at);
        }
        if let Some(at) = grant.not_after {
            body["not_after"] = json!(at);
        }
        if let Some(windows) = &grant.hours {
            body["schedule"] = json!({ "windows": windows });
        }
        self.post(&site_path(site_id, "/grants"), body).await
    }

    /// Revokes a grant; its credentials go on the site's revocation list.
    pub async fn revoke_grant(&self, site_id: &str, grant_id: &str) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/grants/{}", segment(grant_id)))).await
    }

    // ---- roles ----

    pub async fn roles(&self, site_id: &str) -> Result<Vec<SiteRole>, AdminError> {
        self.get(&site_path(site_id, "/roles")).await
    }

    /// Makes the account of `identifier` (created if needed) site admin of the site.
    pub async fn grant_site_admin(&self, site_id: &str, identifier: &str) -> Result<SiteRole, AdminError> {
        self.post(&site_path(site_id, "/roles"), json!({ "identifier": identifier, "role": "site_admin" })).await
    }

    pub async fn revoke_site_admin(&self, site_id: &str, user_id: &str) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/roles/{}", segment(user_id)))).await
    }

    // ---- security events ----

    /// One page of the site's security events, newest first.
    pub async fn site_security_events(&self, site_id: &str, query: &EventQuery) -> Result<SecurityEvents, AdminError> {
        self.get(&format!("{}{}", site_path(site_id, "/security-events"), query_string(query))).await
    }

    /// One page of every security event (operators only).
    pub async fn security_events(&self, query: &EventQuery) -> Result<SecurityEvents, AdminError> {
        self.get(&format!("/v1/admin/security-events{}", query_string(query))).await
    }

    // ---- partner keys ----

    pub async fn partner_keys(&self, site_id: &str) -> Result<Vec<PartnerKey>, AdminError> {
        self.get(&site_path(site_id, "/partner-keys")).await
    }

    /// Makes a partner API key; the answer is the only time its secret is shown.
    pub async fn create_partner_key(&self, site_id: &str, label: &str) -> Result<CreatedPartnerKey, AdminError> {
        self.post(&site_path(site_id, "/partner-keys"), json!({ "label": label })).await
    }

    pub async fn revoke_partner_key(&self, site_id: &str, key_id: &str) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/partner-keys/{}", segment(key_id)))).await
    }

    // ---- locks ----

    /// Certifies the lock that made `request_text` (a request file's text: base64 of the
    /// lock's provisioning request) for `door`, valid `valid_days` (server default 1825).
    /// A lock already on the door is replaced and its certificate revoked.
    pub async fn provision_lock(
        &self,
        site_id: &str,
        door: u32,
        request_text: &str,
        valid_days: Option<u32>,
    ) -> Result<LockInstalled, AdminError> {
        let mut body = json!({ "request": request_text.trim() });
        if let Some(days) = valid_days {
            body["valid_days"] = json!(days);
        }
        self.post(&site_path(site_id, &format!("/doors/{door}/lock")), body).await
    }

    /// The door's current lock (`NotFound` if it has none).
    pub async fn lock(&self, site_id: &str, door: u32) -> Result<LockInstalled, AdminError> {
        self.get(&site_path(site_id, &format!("/doors/{door}/lock"))).await
    }

    /// Decommissions the door's lock: its certificate is revoked and the door has no lock.
    pub async fn decommission_lock(&self, site_id: &str, door: u32) -> Result<(), AdminError> {
        self.delete(&site_path(site_id, &format!("/doors/{door}/lock"))).await
    }
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("admin request bodies serialize")
}

fn site_path(site_id: &str, rest: &str) -> String {
    format!("/v1/admin/sites/{}{rest}", segment(site_id))
}

/// An id as one path segment: ids are UUIDs, but nothing typed may turn into another path.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn query_string(query: &EventQuery) -> String {
    let mut pairs = Vec::new();
    if let Some(kind) = &query.kind {
        pairs.push(format!("kind={}", segment(kind)));
    }
    for (name, value) in [("since", query.since), ("before", query.before), ("limit", query.limit.map(i64::from))] {
        if let Some(value) = value {
            pairs.push(format!("{name}={value}"));
        }
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ids_stay_one_path_segment() {
        assert_eq!(segment("3f2c-11aa"), "3f2c-11aa");
        assert_eq!(segment("../sites"), "..%2Fsites");
        assert_eq!(site_path("a b", "/doors"), "/v1/admin/sites/a%20b/doors");
    }

    #[test]
    fn event_queries() {
        assert_eq!(query_string(&EventQuery::default()), "");
        let query = EventQuery { kind: Some("grant_created".into()), limit: Some(10), ..Default::default() };
        assert_eq!(query_string(&query), "?kind=grant_created&limit=10");
    }

    #[test]
    fn debug_never_shows_tokens() {
        let session = Session {
            server: "http://x".into(),
            access_token: "secret-access".into(),
            refresh_token: "secret-refresh".into(),
            user_id: "u".into(),
        };
        let shown = format!("{:?}", AdminClient::from_session(session));
        assert!(!shown.contains("secret-"), "{shown}");
    }
}
