//! Shared harness: an in-process server on a temp database with a manual clock and the dev
//! outbox enabled, plus small request helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use porta_server::clock::ManualClock;
use porta_server::{start, Config, RunningServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const START: i64 = 1_750_000_000;

pub struct Harness {
    pub server: RunningServer,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    _dir: tempfile::TempDir,
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
    tweak(&mut config);
    let server = start(config).await.expect("server starts");
    Harness {
        server,
        clock,
        client: reqwest::Client::new(),
        db_path,
        _dir: dir,
    }
}

impl Harness {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.server.url(), path));
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
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn request_code(&self, identifier: &str) -> Reply {
        self.post("/v1/auth/code", json!({ "identifier": identifier }))
            .await
    }

    /// Latest code from the dev outbox.
    pub async fn outbox(&self, identifier: &str) -> String {
        let reply = self
            .call(
                Method::GET,
                &format!("/v1/dev/outbox/{identifier}"),
                None,
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "outbox: {:?}", reply.body);
        reply.body["code"].as_str().expect("code").to_owned()
    }

    pub async fn sign_in_with(&self, identifier: &str, code: &str) -> Reply {
        self.post(
            "/v1/auth/sign-in",
            json!({ "identifier": identifier, "code": code, "device_name": "Test phone" }),
        )
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
}

pub fn token(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().expect(name).to_owned()
}

/// A code guaranteed to differ from `code`.
pub fn wrong_code(code: &str) -> String {
    let n: u32 = code.parse().expect("numeric code");
    format!("{:06}", (n + 1) % 1_000_000)
}
