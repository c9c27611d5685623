//! Two server instances on one PostgreSQL database, as a deployment behind a load balancer
//! runs them: each its own pool and port, one authority secret, one clock. What a user
//! relies on holds whichever instance a request reaches: tokens minted on one work on the
//! other, a reused refresh token is caught across them, the code and per-address limits are
//! shared, a revocation made on one is served by the other, and both sign as the same site.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use porta_protocol::{TimeUpdate, VerifyingKey};
use porta_server::authority::keys::AuthoritySecret;
use porta_server::clock::{Clock, ManualClock};
use porta_server::{Config, Database, DEMO_RESIDENT_EMAIL};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Says which backend a test ran on, past libtest's capture so that it shows for passing
/// tests too.
fn report(test: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "instances: {test}: postgres, 2 instances");
}

/// Instances A and B on one fresh database, started at once, with the same authority secret,
/// limits and clock (`tweak` changes the configuration both get).
async fn two_instances(tweak: impl FnOnce(&mut Config)) -> (Harness, Harness) {
    let clock = ManualClock::new(START);
    // Panics, saying to run `cargo xtask test`, without PORTA_TEST_POSTGRES_URL.
    let url = porta_server::pg::testing::fresh_database_url().await;
    let mut config = Config::new("unused.db", SocketAddr::from(([127, 0, 0, 1], 0)));
    config.database = Database::Postgres { url: url.clone(), max_connections: 4 };
    config.authority_secret = Some(AuthoritySecret::generate());
    config.dev_outbox = true;
    config.clock = Arc::new(clock.clone());
    tweak(&mut config);
    tokio::join!(harness_on(config.clone(), clock.clone(), Some(url.clone())), harness_on(config, clock, Some(url)))
}

/// Asks `h` for a sign-in code, as the client at `forwarded_for` behind a proxy when given.
async fn request_code_as(h: &Harness, identifier: &str, forwarded_for: Option<&str>) -> StatusCode {
    let mut request =
        h.client.post(format!("{}/v1/auth/code", h.server.url())).json(&json!({ "identifier": identifier }));
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.expect("request").status()
}

/// A signed-in, enrolled phone: its access token, session and device key.
struct Phone {
    token: String,
    session_id: String,
    key: porta_protocol::SigningKey,
}

async fn phone(h: &Harness, identifier: &str) -> Phone {
    let tokens = h.sign_in(identifier).await;
    let (token, session_id) = (token(&tokens, "access_token"), token(&tokens, "session_id"));
    let key = new_key();
    let reply = h.enroll(&token, &session_id, &key).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    Phone { token, session_id, key }
}

fn verifying_key(value: &serde_json::Value) -> VerifyingKey {
    let bytes: [u8; 32] = unb64(value).try_into().unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

#[tokio::test]
async fn tokens_from_one_instance_work_on_the_other() {
    let (a, b) = two_instances(|_| {}).await;
    let first = a.sign_in("ada@example.com").await;
    let reply = b.refresh(&token(&first, "refresh_token")).await;
    assert_eq!(reply.status, StatusCode::OK, "refreshed on B: {:?}", reply.body);
    let second = reply.body;
    assert_eq!(second["session_id"], first["session_id"]);
    let access = token(&second, "access_token");
    let profile = a.get_auth("/v1/me/profile", &access).await;
    assert_eq!(profile.status, StatusCode::OK, "B's access token on A: {:?}", profile.body);
    assert_eq!(profile.body["email"], "ada@example.com");
    // The access token A minted at sign-in still works on B until it expires.
    assert_eq!(b.get_auth("/v1/me/profile", &token(&first, "access_token")).await.status, StatusCode::OK);
    report("tokens_from_one_instance_work_on_the_other");
}

#[tokio::test]
async fn a_refresh_token_replayed_on_the_other_instance_revokes_the_family_on_both() {
    let (a, b) = two_instances(|_| {}).await;
    let first = a.sign_in("ada@example.com").await;
    let old_refresh = token(&first, "refresh_token");
    let reply = a.refresh(&old_refresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let rotated = reply.body;
    let access = token(&rotated, "access_token");
    assert_eq!(b.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);

    // The token rotated on A, replayed on B.
    let reply = b.refresh(&old_refresh).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "refresh_token_reused");
    for (name, h) in [("A", &a), ("B", &b)] {
        let reply = h.get_auth("/v1/me/profile", &access).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "the family's access token on {name}");
        let reply = h.refresh(&token(&rotated, "refresh_token")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "the family's newest refresh token on {name}");
    }
    report("a_refresh_token_replayed_on_the_other_instance_revokes_the_family_on_both");
}

#[tokio::test]
async fn wrong_guesses_on_both_instances_use_up_one_code() {
    let (a, b) = two_instances(|c| c.limits.code_max_attempts = 5).await;
    assert_eq!(a.request_code("ada@example.com").await.status, StatusCode::ACCEPTED);
    let code = a.outbox("ada@example.com").await;
    for (i, h) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let reply = h.sign_in_with("ada@example.com", &wrong_code(&code)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "invalid_code"), "guess {}", i + 1);
    }
    for (name, h) in [("B", &b), ("A", &a)] {
        let reply = h.sign_in_with("ada@example.com", &code).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "the right code on {name}: {:?}", reply.body);
        assert_eq!(reply.code(), "too_many_attempts");
    }
    report("wrong_guesses_on_both_instances_use_up_one_code");
}

/// The per-address code budget counts requests to either instance together; an address
/// in `X-Forwarded-For` from a peer that is not a trusted proxy changes nothing.
#[tokio::test]
async fn the_per_address_code_limit_spans_instances_and_ignores_untrusted_forwarding() {
    let (a, b) = two_instances(|c| {
        c.limits.code_requests_per_ip = 3;
        // A proxy elsewhere: the test's loopback connections are not it.
        c.trusted_proxies = vec!["10.0.0.2".parse().unwrap()];
    })
    .await;
    let spoofed = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];
    for (i, (h, forwarded)) in [&a, &b, &a].into_iter().zip(spoofed).enumerate() {
        let status = request_code_as(h, &format!("user{i}@example.com"), Some(forwarded)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "request {}", i + 1);
    }
    assert_eq!(request_code_as(&b, "user3@example.com", Some(spoofed[3])).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(request_code_as(&a, "user4@example.com", None).await, StatusCode::TOO_MANY_REQUESTS);
    // The session records the peer, not what it claimed.
    let tokens = a.sign_in_with("user0@example.com", &a.outbox("user0@example.com").await).await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.body);
    let devices = b.get_auth("/v1/me/devices", &token(&tokens.body, "access_token")).await;
    assert_eq!(devices.body[0]["ip"], "127.0.0.1", "{:?}", devices.body);
    // The window passes for both.
    a.clock.advance(601);
    assert_eq!(request_code_as(&b, "user5@example.com", None).await, StatusCode::ACCEPTED);
    report("the_per_address_code_limit_spans_instances_and_ignores_untrusted_forwarding");
}

/// Behind a trusted proxy each client has its own budget, and one client's requests over
/// both instances share one.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_one_budget_over_both_instances() {
    let (a, b) = two_instances(|c| {
        c.limits.code_requests_per_ip = 2;
        // The test's own loopback connections play the balancer.
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // What the balancer appends is what counts; what the client wrote to its left does not.
    let (ann, bob) = ("192.0.2.66, 203.0.113.1", "203.0.113.2");
    assert_eq!(request_code_as(&a, "ann0@example.com", Some(ann)).await, StatusCode::ACCEPTED);
    assert_eq!(request_code_as(&b, "ann1@example.com", Some(ann)).await, StatusCode::ACCEPTED);
    assert_eq!(request_code_as(&a, "ann2@example.com", Some(ann)).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(request_code_as(&b, "ann3@example.com", Some("203.0.113.1")).await, StatusCode::TOO_MANY_REQUESTS);
    // Another client is not held back by the first, nor is the balancer's own address.
    assert_eq!(request_code_as(&b, "bob0@example.com", Some(bob)).await, StatusCode::ACCEPTED);
    assert_eq!(request_code_as(&a, "bob1@example.com", Some(bob)).await, StatusCode::ACCEPTED);
    assert_eq!(request_code_as(&a, "bob2@example.com", Some(bob)).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(request_code_as(&a, "direct@example.com", None).await, StatusCode::ACCEPTED);

    // The session records the client the balancer named.
    let code = b.outbox("bob0@example.com").await;
    let reply = b
        .client
        .post(format!("{}/v1/auth/sign-in", a.server.url()))
        .header("x-forwarded-for", bob)
        .json(&json!({ "identifier": "bob0@example.com", "code": code, "device_name": "Bob's phone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let tokens: serde_json::Value = reply.json().await.unwrap();
    let devices = b.get_auth("/v1/me/devices", &token(&tokens, "access_token")).await;
    assert_eq!(devices.body[0]["ip"], "203.0.113.2", "{:?}", devices.body);
    report("behind_a_trusted_proxy_each_client_has_one_budget_over_both_instances");
}

#[tokio::test]
async fn a_device_signed_out_on_one_instance_is_revoked_on_the_other() {
    let (a, b) = two_instances(|c| c.demo = true).await;
    a.demo_locks().await;
    let lost = phone(&a, DEMO_RESIDENT_EMAIL).await;
    // The lost phone had synced its credentials (through A); revoking it revokes them.
    a.doors(&lost.token).await;
    let mine = phone(&b, DEMO_RESIDENT_EMAIL).await;
    let before = b.doors(&mine.token).await["revocation_version"].as_u64().unwrap();

    let path = format!("/v1/me/devices/{}", lost.session_id);
    let reply = a.call(Method::DELETE, &path, Some(&mine.token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);

    let (on_a, on_b) = (a.doors(&mine.token).await, b.doors(&mine.token).await);
    let version = on_b["revocation_version"].as_u64().unwrap();
    assert!(version > before, "{version} > {before}");
    assert_eq!(on_a["revocation_version"], on_b["revocation_version"], "both serve the same version");
    let authority = verifying_key(&on_b["authority_public_key"]);
    let deltas = b.revocation_deltas(&mine.token, before).await;
    for delta in &deltas {
        delta.verify(&authority).expect("signed by the site authority");
    }
    assert_eq!(deltas.last().unwrap().to_version, version);
    let lost_key = lost.key.verifying_key().to_bytes();
    assert!(deltas.iter().flat_map(|d| &d.devices).any(|d| d.key == lost_key), "B lists the key A revoked");
    assert_eq!(b.get_auth("/v1/me/doors", &lost.token).await.status, StatusCode::UNAUTHORIZED);
    report("a_device_signed_out_on_one_instance_is_revoked_on_the_other");
}

#[tokio::test]
async fn time_updates_from_both_instances_have_increasing_sequence_numbers() {
    let (a, b) = two_instances(|c| c.demo = true).await;
    a.demo_locks().await;
    let phone = phone(&a, DEMO_RESIDENT_EMAIL).await;
    let mut sequences = Vec::new();
    for h in [&a, &b, &a, &b, &b, &a] {
        a.clock.advance(1);
        let doors = h.doors(&phone.token).await;
        let update = TimeUpdate::from_bytes(&unb64(&doors["time_update"])).unwrap();
        update.verify(&verifying_key(&doors["authority_public_key"])).unwrap();
        assert_eq!(update.unix_time as i64, a.clock.now());
        sequences.push(update.sequence);
    }
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    report("time_updates_from_both_instances_have_increasing_sequence_numbers");
}

#[tokio::test]
async fn both_instances_sign_as_the_site_and_the_database_holds_no_authority_key() {
    let (a, b) = two_instances(|c| c.demo = true).await;
    let locks = a.demo_locks().await;
    let phone = phone(&b, DEMO_RESIDENT_EMAIL).await;
    let (on_a, on_b) = (a.doors(&phone.token).await, b.doors(&phone.token).await);
    assert_eq!(on_a["authority_public_key"], on_b["authority_public_key"]);
    let authority = verifying_key(&on_b["authority_public_key"]);
    assert_eq!(locks[0].authority, authority, "locks provisioned on A trust what B signs");
    for credential in on_b["credentials"].as_array().unwrap() {
        let credential = porta_protocol::Credential::from_bytes(&unb64(&credential["credential"])).unwrap();
        credential.verify(&authority).expect("B's credentials verify under the key A's locks hold");
    }
    assert!(a.count("SELECT COUNT(*) FROM sites").await >= 1);
    assert_eq!(a.count("SELECT COUNT(*) FROM sites WHERE authority_key IS NOT NULL").await, 0);
    report("both_instances_sign_as_the_site_and_the_database_holds_no_authority_key");
}
