mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF fake jpeg";

async fn put_picture(h: &Harness, token: &str, bytes: Vec<u8>) -> reqwest::Response {
    h.client
        .put(format!("{}/v1/me/picture", h.server.url()))
        .bearer_auth(token)
        // A lying header must not matter: the bytes decide.
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("request")
}

/// The raw picture response: the bytes and content type are what is checked, not JSON.
async fn get_picture(h: &Harness, token: &str) -> reqwest::Response {
    h.client.get(format!("{}/v1/me/picture", h.server.url())).bearer_auth(token).send().await.expect("request")
}

async fn patch(h: &Harness, token: &str, body: serde_json::Value) -> Reply {
    h.call(Method::PATCH, "/v1/me/profile", Some(token), Some(body)).await
}

#[tokio::test]
async fn new_account_profile() {
    let h = harness().await;
    let tokens = h.sign_in("+4712345678").await;
    let reply = h.get_auth("/v1/me/profile", &token(&tokens, "access_token")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let p = reply.body;
    assert_eq!(p["user_id"], tokens["user_id"]);
    assert_eq!(p["name"], "");
    assert_eq!(p["email"], serde_json::Value::Null);
    assert_eq!(p["phone"], "+4712345678");
    assert_eq!(p["unit"], serde_json::Value::Null);
    assert_eq!(p["has_picture"], false);
    assert_eq!(p["updated_at"], START);
}

#[tokio::test]
async fn demo_resident_has_a_unit() {
    let h = harness_with(|c| c.demo = true).await;
    let tokens = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let p = h.get_auth("/v1/me/profile", &token(&tokens, "access_token")).await.body;
    assert_eq!(p["name"], "Ada Resident");
    assert_eq!(p["phone"], "+4790000001");
    assert_eq!(p["unit"]["name"], "Apartment 4B");
    assert_eq!(p["unit"]["kind"], "apartment");
}

#[tokio::test]
async fn users_are_isolated() {
    let h = harness().await;
    let a = h.sign_in("a@example.com").await;
    let b = h.sign_in("b@example.com").await;
    let (ta, tb) = (token(&a, "access_token"), token(&b, "access_token"));
    assert_ne!(a["user_id"], b["user_id"]);

    let pa = h.get_auth("/v1/me/profile", &ta).await.body;
    assert_eq!(pa["user_id"], a["user_id"]);
    assert_eq!(pa["email"], "a@example.com");

    // A's edits only touch A.
    let reply = patch(&h, &ta, json!({ "name": "Alice" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "Alice");
    let pb = h.get_auth("/v1/me/profile", &tb).await.body;
    assert_eq!(pb["name"], "");
    assert_eq!(pb["email"], "b@example.com");

    // B's picture is not visible through A's token.
    assert_eq!(put_picture(&h, &tb, PNG.to_vec()).await.status(), StatusCode::NO_CONTENT);
    let reply = h.get_auth("/v1/me/picture", &ta).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");

    // Taking B's email never applies (it would need a code sent to B) and leaves B alone.
    let reply = patch(&h, &ta, json!({ "email": "B@example.com" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["email"], "a@example.com");
    let code_for_b = h.outbox("b@example.com").await;
    let reply = h.post_auth("/v1/me/profile/contact/confirm", &ta, json!({ "code": code_for_b })).await;
    assert_eq!(reply.code(), "invalid_code");
    let pb = h.get_auth("/v1/me/profile", &tb).await.body;
    assert_eq!(pb["email"], "b@example.com");
    assert_eq!(pb["user_id"], b["user_id"]);
    assert_eq!(h.get_auth("/v1/me/profile", &ta).await.body["email"], "a@example.com");

    // There is no field that addresses another user.
    let reply = patch(&h, &ta, json!({ "user_id": b["user_id"], "name": "x" })).await;
    assert_eq!(reply.code(), "invalid_request");
}

#[tokio::test]
async fn profile_validation() {
    let h = harness().await;
    let t = token(&h.sign_in("ada@example.com").await, "access_token");

    let cases = [
        (json!({ "email": "not-an-email" }), "invalid_email"),
        (json!({ "phone": "12345" }), "invalid_phone"),
        (json!({ "phone": "+47abc45678" }), "invalid_phone"),
        (json!({ "name": "Ada\u{0007}" }), "invalid_name"),
        (json!({ "name": "Ada\u{202E}" }), "invalid_name"),
        (json!({ "name": "   " }), "invalid_name"),
        (json!({ "name": "x".repeat(101) }), "invalid_name"),
        (json!({ "unit": "Penthouse" }), "invalid_request"),
    ];
    for (body, code) in cases {
        let reply = patch(&h, &t, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.code(), code, "{body}");
    }
    // Removing the only way to sign in conflicts with the account's state.
    let reply = patch(&h, &t, json!({ "email": null })).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "contact_change_conflict");

    h.clock.advance(5);
    let reply = patch(&h, &t, json!({ "name": "  Ada Lovelace ", "phone": "+47 123 45 678" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["name"], "Ada Lovelace");
    assert_eq!(reply.body["phone"], serde_json::Value::Null, "pending until confirmed");
    assert_eq!(reply.body["pending_contact"]["value"], "+4712345678");
    assert_eq!(reply.body["updated_at"], START + 5);
    // While only pending, the phone does not count as a way to sign in.
    let reply = patch(&h, &t, json!({ "email": null })).await;
    assert_eq!(reply.code(), "contact_change_conflict");
    let code = h.outbox("+4712345678").await;
    let reply = h.post_auth("/v1/me/profile/contact/confirm", &t, json!({ "code": code })).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["phone"], "+4712345678");

    // With a phone on file the email may be cleared.
    let reply = patch(&h, &t, json!({ "email": null })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["email"], serde_json::Value::Null);
    assert_eq!(reply.body["name"], "Ada Lovelace");
}

#[tokio::test]
async fn picture_round_trip_and_limits() {
    let h = harness().await;
    let t = token(&h.sign_in("ada@example.com").await, "access_token");

    assert_eq!(h.get_auth("/v1/me/picture", &t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(put_picture(&h, &t, PNG.to_vec()).await.status(), StatusCode::NO_CONTENT);
    let resp = get_picture(&h, &t).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["has_picture"], true);

    assert_eq!(put_picture(&h, &t, JPEG.to_vec()).await.status(), StatusCode::NO_CONTENT);
    let resp = get_picture(&h, &t).await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");

    let resp = put_picture(&h, &t, b"hello".to_vec()).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");

    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    let resp = put_picture(&h, &t, big).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");

    // Exactly 2 MiB is fine.
    let mut max = PNG.to_vec();
    max.resize(2 * 1024 * 1024, 0);
    assert_eq!(put_picture(&h, &t, max).await.status(), StatusCode::NO_CONTENT);

    let resp = put_picture(&h, &t, Vec::new()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let reply = h.call(Method::DELETE, "/v1/me/picture", Some(&t), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get_auth("/v1/me/picture", &t).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["has_picture"], false);

    // Unauthenticated uploads are refused before anything is stored.
    let resp = h.client.put(format!("{}/v1/me/picture", h.server.url())).body(PNG.to_vec()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn demo_seed_is_idempotent() {
    use std::net::SocketAddr;
    let dir = tempfile::tempdir().unwrap();
    let mut config = porta_server::Config::new(dir.path().join("porta.db"), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.demo = true;
    let mut authority_keys = Vec::new();
    for _ in 0..2 {
        porta_server::start(config.clone()).await.unwrap().shutdown().await;
        let conn = rusqlite::Connection::open(dir.path().join("porta.db")).unwrap();
        // First use makes the site's key (as the first doors sync would); later ones read it.
        let key = porta_server::authority::sqlite::site_key(&conn, porta_server::DEMO_SITE_ID).unwrap();
        authority_keys.push(key.to_bytes());
    }
    // The site's root of trust is made once: a restart and a re-seed keep it.
    assert_eq!(authority_keys[0], authority_keys[1]);
    let conn = rusqlite::Connection::open(dir.path().join("porta.db")).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    // No locks: a lock's key is born in the lock, so locks are provisioned by whoever runs them.
    assert_eq!(count("SELECT COUNT(*) FROM locks"), 0);
    assert_eq!(count("SELECT COUNT(*) FROM door_grants"), 3);
    assert_eq!(count("SELECT COUNT(*) FROM doors WHERE number IN (1, 2, 3)"), 3);
    // The resident and the site's admin.
    assert_eq!(count("SELECT COUNT(*) FROM users"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM roles WHERE role = 'site_admin'"), 1);
    assert_eq!(count("SELECT COUNT(*) FROM sites"), 1);
    assert_eq!(count("SELECT COUNT(*) FROM units"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM doors"), 3);
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 11);
}
