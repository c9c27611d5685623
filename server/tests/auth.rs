mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn code_request_and_sign_in_create_account() {
    let h = harness().await;
    let reply = h.request_code("  Ada@Example.com ").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body["expires_in_s"], 600);
    let code = h.outbox("ada@example.com").await;
    assert_eq!(code.len(), 6);
    let reply = h.sign_in_with("ADA@example.com", &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["access_expires_in_s"], 900);
    let user_id = reply.body["user_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(user_id).is_ok());

    // The code is consumed.
    let again = h.sign_in_with("ada@example.com", &code).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.code(), "invalid_code");

    // Signing in again finds the same account.
    let second = h.sign_in("ada@example.com").await;
    assert_eq!(second["user_id"], user_id);
    assert_ne!(second["session_id"], reply.body["session_id"]);
}

#[tokio::test]
async fn bad_identifiers_are_rejected() {
    let h = harness().await;
    for bad in ["ada", "ada@example", "12345678", "+47 12", ""] {
        let reply = h.request_code(bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.code(), "invalid_identifier");
    }
    let reply = h.request_code("+47 (123) 45-678").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(h.outbox("+4712345678").await.len(), 6);
    // Malformed JSON gets our error shape, not axum's plain text.
    let reply = h.post("/v1/auth/code", json!({ "nope": 1 })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_request");
}

#[tokio::test]
async fn expired_code_is_refused() {
    let h = harness().await;
    h.request_code("ada@example.com").await;
    let code = h.outbox("ada@example.com").await;
    h.clock.advance(601);
    let reply = h.sign_in_with("ada@example.com", &code).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "code_expired");

    // No code at all is a different error.
    let reply = h.sign_in_with("bob@example.com", "123456").await;
    assert_eq!(reply.code(), "invalid_code");
}

#[tokio::test]
async fn sixth_attempt_is_refused_even_with_the_right_code() {
    let h = harness().await;
    h.request_code("ada@example.com").await;
    let code = h.outbox("ada@example.com").await;
    for _ in 0..5 {
        let reply = h.sign_in_with("ada@example.com", &wrong_code(&code)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.code(), "invalid_code");
    }
    let reply = h.sign_in_with("ada@example.com", &code).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "too_many_attempts");

    // A new code starts over.
    h.request_code("ada@example.com").await;
    let code = h.outbox("ada@example.com").await;
    assert_eq!(h.sign_in_with("ada@example.com", &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn code_requests_are_rate_limited_per_identifier() {
    let h = harness().await;
    for _ in 0..5 {
        assert_eq!(h.request_code("ada@example.com").await.status, StatusCode::ACCEPTED);
        h.clock.advance(10);
    }
    let reply = h.request_code("ada@example.com").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
    let retry: i64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 600, "{retry}");
    // Oldest request was 50 s ago.
    assert_eq!(retry, 550);
    assert_eq!(reply.body["retry_after_s"], retry);

    // Other identifiers are unaffected.
    assert_eq!(h.request_code("bob@example.com").await.status, StatusCode::ACCEPTED);

    h.clock.advance(retry);
    assert_eq!(h.request_code("ada@example.com").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn code_requests_are_rate_limited_per_ip() {
    let h = harness_with(|c| c.limits.code_requests_per_ip = 3).await;
    for i in 0..3 {
        let reply = h.request_code(&format!("user{i}@example.com")).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let reply = h.request_code("user9@example.com").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
    let retry: i64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 600);
    h.clock.advance(601);
    assert_eq!(h.request_code("user9@example.com").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let h = harness().await;
    let first = h.sign_in("ada@example.com").await;
    let old_refresh = token(&first, "refresh_token");

    let reply = h.refresh(&old_refresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let second = reply.body;
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_eq!(second["user_id"], first["user_id"]);
    let access = token(&second, "access_token");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);

    // Replaying the used refresh token kills the whole session.
    let reply = h.refresh(&old_refresh).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "refresh_token_reused");
    let reply = h.get_auth("/v1/me/profile", &access).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    let reply = h.refresh(&token(&second, "refresh_token")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let reply = h.refresh("nonsense").await;
    assert_eq!(reply.code(), "invalid_token");
}

#[tokio::test]
async fn expired_refresh_token_is_invalid() {
    let h = harness().await;
    let tokens = h.sign_in("ada@example.com").await;
    h.clock.advance(30 * 24 * 3600 + 1);
    let reply = h.refresh(&token(&tokens, "refresh_token")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_token");
}

#[tokio::test]
async fn access_token_expires() {
    let h = harness().await;
    let tokens = h.sign_in("ada@example.com").await;
    let access = token(&tokens, "access_token");
    h.clock.advance(899);
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);
    h.clock.advance(2);
    let reply = h.get_auth("/v1/me/profile", &access).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "token_expired");

    // Refreshing recovers.
    let reply = h.refresh(&token(&tokens, "refresh_token")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let access = token(&reply.body, "access_token");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn missing_or_unknown_token_is_unauthorized() {
    let h = harness().await;
    let reply = h.get("/v1/me/profile").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    let reply = h.get_auth("/v1/me/profile", "deadbeef").await;
    assert_eq!(reply.code(), "unauthorized");
}

#[tokio::test]
async fn sign_out_revokes_the_session() {
    let h = harness().await;
    let tokens = h.sign_in("ada@example.com").await;
    let other = h.sign_in("ada@example.com").await;
    let access = token(&tokens, "access_token");

    let reply = h.call(Method::POST, "/v1/auth/sign-out", Some(&access), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = h.get_auth("/v1/me/profile", &access).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    let reply = h.refresh(&token(&tokens, "refresh_token")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_token");

    // Only that session: the other device stays signed in.
    let reply = h.get_auth("/v1/me/profile", &token(&other, "access_token")).await;
    assert_eq!(reply.status, StatusCode::OK);
}
