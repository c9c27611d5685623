mod common;

use std::net::SocketAddr;

use common::*;
use porta_server::{start, Config, ServerError};
use reqwest::StatusCode;

#[tokio::test]
async fn dev_outbox_is_off_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("p.db"), SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = start(config).await.unwrap();
    let client = reqwest::Client::new();
    let url = server.url();
    let resp = client
        .post(format!("{url}/v1/auth/code"))
        .json(&serde_json::json!({ "identifier": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = client.get(format!("{url}/v1/dev/outbox/ada@example.com")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn dev_outbox_requires_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("p.db"), SocketAddr::from(([0, 0, 0, 0], 0)));
    config.dev_outbox = true;
    match start(config).await {
        Err(e @ ServerError::DevOutboxNotLoopback(_)) => {
            assert!(e.to_string().contains("loopback"));
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("dev outbox on 0.0.0.0 must be refused"),
    }
}

#[tokio::test]
async fn dev_outbox_unknown_identifier_is_404() {
    let h = harness().await;
    let reply = h.call(reqwest::Method::GET, "/v1/dev/outbox/nobody@example.com", None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// The raw database files, in case something lingers in free pages or the WAL.
fn raw_files(db_path: &std::path::Path) -> String {
    let mut all = String::new();
    for suffix in ["", "-wal"] {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(&path) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

#[tokio::test]
async fn tokens_and_codes_are_not_stored_in_clear() {
    let h = harness().await;
    h.request_code("ada@example.com").await;
    let code = h.outbox("ada@example.com").await;
    // While the code is pending.
    let pending = h.stored_text().await;
    assert!(!pending.iter().any(|v| v.contains(&code)), "code stored in clear");
    h.sign_in_with("ada@example.com", &code).await;
    let tokens = {
        h.request_code("ada@example.com").await;
        let code = h.outbox("ada@example.com").await;
        let reply = h.sign_in_with("ada@example.com", &code).await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.body
    };
    let refreshed = h.refresh(&token(&tokens, "refresh_token")).await.body;

    let values = h.stored_text().await;
    assert!(values.iter().any(|v| v.contains("ada@example.com")), "scan should see the email column");
    let secrets = [
        code,
        token(&tokens, "access_token"),
        token(&tokens, "refresh_token"),
        token(&refreshed, "access_token"),
        token(&refreshed, "refresh_token"),
    ];
    for secret in &secrets {
        assert!(!values.iter().any(|v| v.contains(secret.as_str())), "found a secret in clear");
    }
    // Tokens are 64 hex chars, so a chance match in the raw bytes is impossible; a 6-digit
    // code is not checked there for the same reason in reverse.
    sqlite_only!("the raw SQLite file and its WAL");
    let raw = raw_files(&h.db_path);
    assert!(raw.contains("ada@example.com"), "raw scan should see the email");
    for secret in &secrets[1..] {
        assert!(!raw.contains(secret.as_str()), "found a token in the raw database files");
    }
}
