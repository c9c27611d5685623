//! Shared harness: an in-process server on a temp database with a manual clock and the dev
//! outbox enabled, plus small request helpers.
//!
//! The backend is SQLite unless `PORTA_TEST_SERVER_BACKEND=postgres` (with the `postgres`
//! feature and `PORTA_TEST_POSTGRES_URL`): then every test gets a fresh PostgreSQL database
//! and the server runs with a configured authority key, as instances at scale do. `cargo
//! xtask test` runs this suite both ways.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use porta_protocol::{RevocationDelta, SigningKey};
use porta_server::clock::ManualClock;
use porta_server::{start, Config, RunningServer};
use rand::rngs::OsRng;
use rand::RngCore;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const START: i64 = 1_750_000_000;

/// Which backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("PORTA_TEST_SERVER_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Ok("") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("PORTA_TEST_SERVER_BACKEND: sqlite or postgres, not {other}"),
    }
}

/// Skips the rest of a test that looks into the SQLite file itself (its pages, its WAL) when
/// the suite runs on PostgreSQL, saying so in the output.
#[macro_export]
macro_rules! sqlite_only {
    ($why:literal) => {
        if $crate::common::backend() != $crate::common::Backend::Sqlite {
            println!("sqlite only: {}", $why);
            return;
        }
    };
}

pub struct Harness {
    pub server: RunningServer,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    /// The SQLite file (on SQLite).
    pub db_path: PathBuf,
    /// The database's URL (on PostgreSQL).
    pub database_url: Option<String>,
    demo_locks: tokio::sync::OnceCell<Vec<TestLock>>,
    _dir: tempfile::TempDir,
}

/// A lock the test runs itself: its key was born here and never sent anywhere; the site's
/// admin provisioned it from its request, and `certificate` is the server's answer.
#[derive(Clone)]
pub struct TestLock {
    pub lock_id: u32,
    pub door: u32,
    pub key: SigningKey,
    pub certificate: Vec<u8>,
    pub authority: porta_protocol::VerifyingKey,
}

impl TestLock {
    pub fn config(&self) -> porta_protocol::LockConfig {
        let cert = porta_protocol::LockCertificate::from_bytes(&self.certificate).expect("certificate");
        porta_protocol::LockConfig::new(self.key.clone(), cert, self.authority).expect("lock config")
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

pub async fn harness() -> Harness {
    harness_with(|_| {}).await
}

pub async fn harness_with(tweak: impl FnOnce(&mut Config)) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("porta.db");
    let clock = ManualClock::new(START);
    let mut config = Config::new(db_path.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.dev_outbox = true;
    config.clock = Arc::new(clock.clone());
    let database_url = use_backend(&mut config).await;
    tweak(&mut config);
    let server = start(config).await.expect("server starts");
    Harness {
        server,
        clock,
        client: reqwest::Client::new(),
        db_path,
        database_url,
        demo_locks: tokio::sync::OnceCell::new(),
        _dir: dir,
    }
}

/// A harness for a server started from `config` (which names `clock` and, on PostgreSQL,
/// `database_url`): tests that run several instances on one database start each this way.
pub async fn harness_on(config: Config, clock: ManualClock, database_url: Option<String>) -> Harness {
    let server = start(config).await.expect("server starts");
    Harness {
        server,
        clock,
        client: reqwest::Client::new(),
        db_path: PathBuf::new(),
        database_url,
        demo_locks: tokio::sync::OnceCell::new(),
        _dir: tempfile::tempdir().expect("tempdir"),
    }
}

/// Points `config` at the suite's backend: on PostgreSQL a fresh database (its URL) and a
/// configured authority key.
pub async fn use_backend(config: &mut Config) -> Option<String> {
    match backend() {
        Backend::Sqlite => None,
        Backend::Postgres => postgres_backend(config).await,
    }
}

#[cfg(feature = "postgres")]
async fn postgres_backend(config: &mut Config) -> Option<String> {
    let url = porta_server::pg::testing::fresh_database_url().await;
    config.database = porta_server::Database::Postgres { url: url.clone(), max_connections: 8 };
    config.authority_secret = Some(porta_server::authority::keys::AuthoritySecret::generate());
    Some(url)
}

#[cfg(not(feature = "postgres"))]
async fn postgres_backend(_config: &mut Config) -> Option<String> {
    panic!("PORTA_TEST_SERVER_BACKEND=postgres needs `--features postgres`")
}

/// A value read back from either backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Stored {
    /// As text: numbers in decimal, blobs in hex; `None` for NULL.
    pub fn text(&self) -> Option<String> {
        match self {
            Stored::Null => None,
            Stored::Integer(n) => Some(n.to_string()),
            Stored::Real(x) => Some(x.to_string()),
            Stored::Text(t) => Some(t.clone()),
            Stored::Blob(b) => Some(hex::encode(b)),
        }
    }

    pub fn integer(&self) -> i64 {
        match self {
            Stored::Integer(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }
}

impl Harness {
    /// Runs a read query on the server's database, whichever the backend; each row's columns
    /// as text. Write it in SQL both dialects accept (no `?1`/`$1`: format values in).
    pub async fn query(&self, sql: &str) -> Vec<Vec<Stored>> {
        match &self.database_url {
            None => {
                let conn = rusqlite::Connection::open(&self.db_path).expect("the SQLite file");
                let mut stmt = conn.prepare(sql).expect("query");
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| {
                        (0..columns)
                            .map(|i| {
                                Ok(match r.get_ref(i)? {
                                    rusqlite::types::ValueRef::Null => Stored::Null,
                                    rusqlite::types::ValueRef::Integer(n) => Stored::Integer(n),
                                    rusqlite::types::ValueRef::Real(x) => Stored::Real(x),
                                    rusqlite::types::ValueRef::Text(t) => {
                                        Stored::Text(String::from_utf8_lossy(t).into_owned())
                                    }
                                    rusqlite::types::ValueRef::Blob(b) => Stored::Blob(b.to_vec()),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<Stored>>>()
                    })
                    .expect("query runs");
                rows.map(|r| r.expect("row")).collect()
            }
            Some(url) => pg_query(url, sql).await,
        }
    }

    /// A blob literal for SQL on this backend, from hex (`""` for an empty one).
    pub fn blob(&self, hex: &str) -> String {
        match self.database_url {
            None => format!("x'{hex}'"),
            Some(_) => format!("'\\x{hex}'::bytea"),
        }
    }

    /// Runs the server's retention purge now, as its hourly job does, keeping security
    /// events `security_retention_days`.
    pub async fn run_purge(&self, security_retention_days: i64) {
        let mut purge = self.server.purge().clone();
        purge.security_retention_days = security_retention_days;
        purge.run_once().await;
    }

    /// A query's single integer (`SELECT COUNT(*) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        self.query(sql).await[0][0].integer()
    }

    /// Runs statements on the server's database (a test setting up what no API can).
    pub async fn execute(&self, sql: &str) {
        match &self.database_url {
            None => rusqlite::Connection::open(&self.db_path).unwrap().execute_batch(sql).expect("statements run"),
            Some(url) => pg_execute(url, sql).await,
        }
    }

    /// Every table's name, on either backend.
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.database_url {
            None => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            Some(_) => "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
        };
        self.query(sql).await.into_iter().filter_map(|r| r[0].text()).collect()
    }

    /// A table's column names, on either backend.
    pub async fn columns(&self, table: &str) -> Vec<String> {
        let sql = match self.database_url {
            None => format!("SELECT name FROM pragma_table_info('{table}')"),
            Some(_) => format!("SELECT column_name::text FROM information_schema.columns WHERE table_name = '{table}'"),
        };
        self.query(&sql).await.into_iter().filter_map(|r| r[0].text()).collect()
    }

    /// Every text and blob stored in every table, for scanning the database for what must
    /// not be in it: texts as they are, blobs both as (lossy) UTF-8 and in hex.
    pub async fn stored_text(&self) -> Vec<String> {
        let tables = self.tables().await;
        assert!(tables.len() >= 10, "{tables:?}");
        let mut values = Vec::new();
        for table in tables {
            for value in self.query(&format!("SELECT * FROM \"{table}\"")).await.into_iter().flatten() {
                match value {
                    Stored::Text(t) => values.push(t),
                    Stored::Blob(b) => {
                        values.push(String::from_utf8_lossy(&b).into_owned());
                        values.push(hex::encode(&b));
                    }
                    _ => {}
                }
            }
        }
        values
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{}", self.server.url(), path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Reply { status, headers, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    /// Unauthenticated GET.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Rotates `refresh_token`; the reply is the raw answer so tests can check failures.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post("/v1/auth/refresh", json!({ "refresh_token": refresh_token })).await
    }

    /// Enrolls `key` as the device key of `session_id`, signed as the server expects.
    pub async fn enroll(&self, token: &str, session_id: &str, key: &SigningKey) -> Reply {
        let public = key.verifying_key().to_bytes();
        self.post_auth(
            "/v1/me/device-key",
            token,
            json!({
                "public_key": b64(public),
                "signature": b64(enroll_signature(key, session_id, &public)),
            }),
        )
        .await
    }

    /// The caller's `/v1/me/doors` answer (credentials and updates); must succeed.
    pub async fn doors(&self, token: &str) -> Value {
        let reply = self.get_auth("/v1/me/doors", token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    /// The signed revocation deltas from `since` (`GET /v1/me/revocations`); must succeed.
    pub async fn revocation_deltas(&self, token: &str, since: u64) -> Vec<RevocationDelta> {
        let reply = self.get_auth(&format!("/v1/me/revocations?since={since}"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["deltas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| RevocationDelta::from_bytes(&unb64(d)).unwrap())
            .collect()
    }

    /// Everything revoked and still live at the site, as a lock starting from nothing
    /// would hold it after every delta: (credential ids, device keys).
    pub async fn revoked(&self, token: &str) -> (Vec<[u8; 16]>, Vec<[u8; 32]>) {
        let deltas = self.revocation_deltas(token, 0).await;
        let credentials = deltas.iter().flat_map(|d| d.credentials.iter().map(|c| c.id)).collect();
        let devices = deltas.iter().flat_map(|d| d.devices.iter().map(|d| d.key)).collect();
        (credentials, devices)
    }

    /// Grants doors through the dev endpoint; must succeed.
    pub async fn grant(&self, body: Value) {
        let reply = self.post("/v1/dev/grants", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }

    pub async fn request_code(&self, identifier: &str) -> Reply {
        self.post("/v1/auth/code", json!({ "identifier": identifier })).await
    }

    /// Latest code from the dev outbox.
    pub async fn outbox(&self, identifier: &str) -> String {
        let reply = self.get(&format!("/v1/dev/outbox/{identifier}")).await;
        assert_eq!(reply.status, StatusCode::OK, "outbox: {:?}", reply.body);
        reply.body["code"].as_str().expect("code").to_owned()
    }

    pub async fn sign_in_with(&self, identifier: &str, code: &str) -> Reply {
        self.post("/v1/auth/sign-in", json!({ "identifier": identifier, "code": code, "device_name": "Test phone" }))
            .await
    }

    /// Full sign-in; returns the token response.
    pub async fn sign_in(&self, identifier: &str) -> Value {
        let reply = self.request_code(identifier).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        let code = self.outbox(identifier).await;
        let reply = self.sign_in_with(identifier, &code).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }

    /// Makes a lock (its key born here) and has `admin_token`'s admin provision it for
    /// `door` at `site_id` from the lock's own request.
    pub async fn provision_lock(&self, admin_token: &str, site_id: &str, door: u32) -> TestLock {
        let key = new_key();
        let request = porta_protocol::ProvisioningRequest::sign(&key, &mut OsRng);
        let path = format!("/v1/admin/sites/{site_id}/doors/{door}/lock");
        let reply = self.post_auth(&path, admin_token, json!({ "request": b64(request.to_bytes()) })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let authority: [u8; 32] = unb64(&reply.body["authority_public_key"]).try_into().unwrap();
        let lock = TestLock {
            lock_id: reply.body["lock_id"].as_u64().unwrap() as u32,
            door,
            key,
            certificate: unb64(&reply.body["certificate"]),
            authority: porta_protocol::VerifyingKey::from_bytes(&authority).unwrap(),
        };
        assert_eq!(lock.config().doors(), [door], "the certificate is for the door it was asked for");
        lock
    }

    /// The demo building's locks at doors 1, 2 and 3 (lock ids 1, 2, 3 on a fresh server),
    /// provisioned by the demo site admin on the first call; the same locks after.
    pub async fn demo_locks(&self) -> Vec<TestLock> {
        self.demo_locks
            .get_or_init(|| async {
                let admin = token(&self.sign_in(porta_server::DEMO_ADMIN_EMAIL).await, "access_token");
                let mut locks = Vec::new();
                for door in 1..=3 {
                    locks.push(self.provision_lock(&admin, porta_server::DEMO_SITE_ID, door).await);
                }
                locks
            })
            .await
            .clone()
    }
}

pub fn token(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().expect(name).to_owned()
}

/// A code guaranteed to differ from `code`.
pub fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("numeric code");
    format!("{:06}", (n + 1) % 1_000_000)
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(value: &Value) -> Vec<u8> {
    STANDARD.decode(value.as_str().expect("base64 string")).expect("valid base64")
}

/// A fresh random device key.
pub fn new_key() -> SigningKey {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// Proof of possession for enrolling `public_key` on `session_id` (see `devices.rs`).
pub fn enroll_signature(key: &SigningKey, session_id: &str, public_key: &[u8; 32]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    let mut msg = b"porta-enroll-v1".to_vec();
    msg.extend_from_slice(session_id.as_bytes());
    msg.extend_from_slice(public_key);
    key.sign(&msg).to_bytes()
}

#[cfg(feature = "postgres")]
async fn pg_query(url: &str, sql: &str) -> Vec<Vec<Stored>> {
    use porta_server::pg::testing::tokio_postgres::types::Type;
    let client = porta_server::pg::testing::connect(url).await;
    let rows = client.query(sql, &[]).await.expect("query runs");
    let value = |row: &porta_server::pg::testing::tokio_postgres::Row, i: usize| -> Stored {
        let ty = row.columns()[i].type_().clone();
        let stored = if ty == Type::INT8 {
            row.get::<_, Option<i64>>(i).map(Stored::Integer)
        } else if ty == Type::INT4 {
            row.get::<_, Option<i32>>(i).map(|n| Stored::Integer(n.into()))
        } else if ty == Type::INT2 {
            row.get::<_, Option<i16>>(i).map(|n| Stored::Integer(n.into()))
        } else if ty == Type::BOOL {
            row.get::<_, Option<bool>>(i).map(|b| Stored::Integer(b.into()))
        } else if ty == Type::FLOAT8 {
            row.get::<_, Option<f64>>(i).map(Stored::Real)
        } else if ty == Type::BYTEA {
            row.get::<_, Option<Vec<u8>>>(i).map(Stored::Blob)
        } else {
            row.get::<_, Option<String>>(i).map(Stored::Text)
        };
        stored.unwrap_or(Stored::Null)
    };
    rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect()).collect()
}

#[cfg(feature = "postgres")]
async fn pg_execute(url: &str, sql: &str) {
    porta_server::pg::testing::connect(url).await.batch_execute(sql).await.expect("statements run");
}

#[cfg(not(feature = "postgres"))]
async fn pg_query(_url: &str, _sql: &str) -> Vec<Vec<Stored>> {
    unreachable!("a PostgreSQL harness needs the postgres feature")
}

#[cfg(not(feature = "postgres"))]
async fn pg_execute(_url: &str, _sql: &str) {
    unreachable!("a PostgreSQL harness needs the postgres feature")
}
