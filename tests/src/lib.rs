//! Shared harness of the end-to-end tests in tests/: the real porta-server in process, a
//! fault-injecting proxy in front of it ([`proxy::FaultProxy`]), and dev-endpoint helpers.

pub mod proxy;

use std::sync::Arc;
use std::time::Duration;

use porta_core::{Client, ClientConfig, SecureStore};
use porta_server::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The reference server on a loopback port with the demo building, its three locks
/// provisioned ([`locks`]), and the dev outbox.
pub struct TestServer {
    pub server: porta_server::RunningServer,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server whose clock is the real time now, moved only by the test.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// [`TestServer::start`], with `configure` changing the configuration first (e.g. to
    /// name operators).
    pub async fn start_with(configure: impl FnOnce(&mut porta_server::Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let clock = Arc::new(ManualClock::new(now));
        let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().unwrap());
        config.demo = true;
        config.dev_outbox = true;
        config.limits.code_requests_per_ip = 100_000;
        config.limits.code_requests_per_identifier = 100_000;
        config.clock = clock.clone();
        configure(&mut config);
        let server = porta_server::start(config).await.expect("start porta-server");
        // Doors have their locks before any phone syncs, as in a building in use.
        locks(&server.url()).await;
        TestServer { server, clock, dir }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A client of `url` keeping its database in `dir`, with a short request timeout.
pub fn client(url: &str, store: Arc<dyn SecureStore>, dir: &std::path::Path, timeout: Duration) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.device_name = "e2e phone".into();
    config.request_timeout = timeout;
    Client::new(config, store).expect("client")
}

/// A plain HTTP/1.1 exchange with the server, bypassing reqwest so that the test's own
/// requests (whose paths may hold an email address) never show up in captured logs.
pub async fn raw_http(url: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    raw_http_as(url, method, path, None, body).await
}

/// [`raw_http`] with a bearer token.
pub async fn raw_http_as(
    url: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let auth = bearer.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.into() };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The last one-time code the server sent to `identifier` (from the dev outbox).
pub async fn dev_code(url: &str, identifier: &str) -> String {
    let path = format!("/v1/dev/outbox/{}", identifier.replace('+', "%2B"));
    let (status, body) = raw_http(url, "GET", &path, None).await;
    assert_eq!(status, 200, "dev outbox: {body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("outbox JSON");
    value["code"].as_str().expect("code").to_owned()
}

/// Requests a code for `identifier` through `client` and signs in with it; returns the code.
pub async fn sign_in(client: &Client, server_url: &str, identifier: &str) -> String {
    client.request_code(identifier).await.expect("request code");
    let code = dev_code(server_url, identifier).await;
    client.sign_in(identifier, &code).await.expect("sign in");
    code
}

/// An access token of the demo building's site admin, signed in with a dev-outbox code.
pub async fn demo_admin_token(url: &str) -> String {
    let who = porta_server::DEMO_ADMIN_EMAIL;
    let (status, body) = raw_http(url, "POST", "/v1/auth/code", Some(&format!(r#"{{"identifier":"{who}"}}"#))).await;
    assert_eq!(status, 202, "admin code: {body}");
    let code = dev_code(url, who).await;
    let sign_in = format!(r#"{{"identifier":"{who}","code":"{code}","device_name":"test harness"}}"#);
    let (status, body) = raw_http(url, "POST", "/v1/auth/sign-in", Some(&sign_in)).await;
    assert_eq!(status, 200, "admin sign-in: {body}");
    let tokens: serde_json::Value = serde_json::from_str(&body).expect("tokens JSON");
    tokens["access_token"].as_str().expect("access token").to_owned()
}

/// Provisions `lock` for the demo door `door` as a building does: the lock's own request,
/// submitted by the site admin. Returns the answer's JSON, for the lock to install.
pub async fn provision(url: &str, admin_token: &str, door: u32, lock: &porta_lock::NewLock) -> String {
    let request = porta_core::simulated::provisioning_request_text(lock);
    let path = format!("/v1/admin/sites/{}/doors/{door}/lock", porta_server::DEMO_SITE_ID);
    let (status, body) =
        raw_http_as(url, "POST", &path, Some(admin_token), Some(&format!(r#"{{"request":"{request}"}}"#))).await;
    assert_eq!(status, 201, "provision door {door}: {body}");
    body
}

/// The demo building's three locks (doors 1, 2, 3), simulated, each with a key born in the
/// lock and provisioned through the admin API. Provisioned once per server: later calls give
/// the same locks while each is still its door's current lock (so a replaced one, or a new
/// server on a reused port, gets fresh locks).
pub async fn locks(url: &str) -> Vec<porta_lock::SimulatedLock> {
    static PROVISIONED: std::sync::Mutex<Vec<(String, Vec<porta_lock::SimulatedLock>)>> =
        std::sync::Mutex::new(Vec::new());
    let token = demo_admin_token(url).await;
    let known = PROVISIONED.lock().unwrap().iter().find(|(u, _)| u == url).map(|(_, l)| l.clone());
    if let Some(locks) = known {
        // Still every door's current lock (not replaced, and not another server's on this port)?
        let mut current = true;
        for (door, lock) in (1..).zip(&locks) {
            use base64::Engine as _;
            let path = format!("/v1/admin/sites/{}/doors/{door}/lock", porta_server::DEMO_SITE_ID);
            let (status, body) = raw_http_as(url, "GET", &path, Some(&token), None).await;
            let key = base64::engine::general_purpose::STANDARD.encode(lock.lock().config().certificate().lock_key);
            let on_record: Option<serde_json::Value> =
                (status == 200).then(|| serde_json::from_str(&body).ok()).flatten();
            current &= on_record.is_some_and(|l| l["lock_public_key"].as_str() == Some(key.as_str()));
        }
        if current {
            return locks;
        }
    }
    let mut locks = Vec::new();
    for door in 1..=3 {
        let lock = porta_core::simulated::new_lock();
        let answer = provision(url, &token, door, &lock).await;
        locks.push(porta_core::simulated::install_simulated_lock(&lock, &answer, 185, 30.0).expect("install"));
    }
    let mut provisioned = PROVISIONED.lock().unwrap();
    provisioned.retain(|(u, _)| u != url);
    provisioned.push((url.to_owned(), locks.clone()));
    locks
}

/// Ignores unlock progress.
pub struct NoProgress;

impl porta_core::UnlockListener for NoProgress {
    fn on_progress(&self, _: porta_core::UnlockProgress) {}
}

/// Prints a result line that stays visible in `cargo test` (and so `cargo xtask test`)
/// output even when the test passes: written to stderr directly, past libtest's capture of
/// `println!`.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
