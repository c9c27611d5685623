//! Guest invitations over HTTP: creating within the tenant's own access and the site's
//! limits, the landing page, accepting with and without an account, the typed errors for
//! unknown, expired, used-up and revoked tokens, guessing limits, and what is left in the
//! database after use, expiry and revocation.

mod common;

use common::*;
use ed25519_dalek::Signer;
use porta_protocol::{Credential, SigningKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400;
/// A Tuesday, 09:00-12:00 in the site's time (the demo site is UTC+1).
const TUESDAY_MORNINGS: u8 = 0b10;

async fn ada(h: &Harness) -> String {
    token(&h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await, "access_token")
}

fn weekly_body(doors: &[u32], not_before: i64, not_after: i64) -> Value {
    json!({
        "doors": doors,
        "not_before": not_before,
        "not_after": not_after,
        "schedule": { "windows": [{ "days": TUESDAY_MORNINGS, "start_minute": 540, "end_minute": 720 }] },
        "label": "cleaner",
    })
}

async fn create(h: &Harness, tenant: &str, body: Value) -> Reply {
    h.post_auth("/v1/me/invitations", tenant, body).await
}

/// The 40-character token at the end of a link.
fn token_of(created: &Reply) -> String {
    created.body["link"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

fn guest_body(code: &str, canonical: &str, key: &SigningKey, time: i64) -> Value {
    let public = key.verifying_key().to_bytes();
    let mut msg = b"porta-guest-v1".to_vec();
    msg.extend_from_slice(&Sha256::digest(canonical.as_bytes()));
    msg.extend_from_slice(&public);
    msg.extend_from_slice(&(time as u64).to_be_bytes());
    json!({
        "code": code,
        "public_key": b64(public),
        "signature": b64(key.sign(&msg).to_bytes()),
        "time": time,
        "device_name": "Guest phone",
    })
}

async fn accept_as_guest(h: &Harness, canonical: &str, key: &SigningKey) -> Reply {
    h.post("/v1/guests", guest_body(canonical, canonical, key, porta_server::clock::Clock::now(&h.clock))).await
}

/// The whole database as text (blobs in hex), to look for a value anywhere in it.
async fn dump(h: &Harness) -> String {
    h.stored_text().await.join(" ")
}

/// Runs the retention purge as the hourly job does.
async fn purge(h: &Harness) {
    h.server.purge().run_once().await;
}

#[tokio::test]
async fn a_tenant_invites_and_an_anonymous_guest_gets_credentials_for_exactly_the_window_and_schedule() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let (start, end) = (START + DAY, START + 8 * DAY);
    let created = create(&h, &ada, weekly_body(&[1], start, end)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let canonical = token_of(&created);
    assert_eq!(canonical.len(), 40);
    assert_eq!(created.body["code"].as_str().unwrap().replace('-', ""), canonical);
    assert!(created.body["link"].as_str().unwrap().starts_with(&format!("{}/i/", h.server.url())));
    let inv = &created.body["invitation"];
    assert_eq!((inv["uses"].as_u64(), inv["uses_left"].as_u64()), (Some(1), Some(1)));
    assert_eq!(inv["doors"], json!([{ "door_id": 1, "name": "Main entrance" }]));
    assert_eq!(inv["schedule"]["utc_offset_minutes"], 60, "the site's standard time");

    // Only a hash is stored.
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM invitations WHERE token_hash = '{hash}'")).await, 1);
    assert!(!dump(&h).await.contains(&canonical));

    // The guest, with no account, accepts with the typed code.
    let key = new_key();
    let code = created.body["code"].as_str().unwrap().to_lowercase();
    let reply =
        h.post("/v1/guests", guest_body(&code, &canonical, &key, porta_server::clock::Clock::now(&h.clock))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["expires_at"], end);
    let guest = token(&reply.body, "access_token");
    let doors = h.doors(&guest).await;
    assert_eq!(doors["doors"].as_array().unwrap().len(), 1);
    assert_eq!(doors["doors"][0]["access"][0]["not_before"], start);
    assert_eq!(doors["doors"][0]["access"][0]["schedule"]["windows"][0]["days"], TUESDAY_MORNINGS);
    let credentials = doors["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1);
    let credential = Credential::from_bytes(&unb64(&credentials[0]["credential"])).unwrap();
    assert_eq!((credential.body.not_before, credential.body.not_after), (start as u64, end as u64));
    assert_eq!(credential.body.doors, vec![1]);
    assert_eq!(credential.body.device_key, key.verifying_key().to_bytes());
    let schedule = credential.body.schedule.expect("the schedule travels in the credential");
    assert_eq!(schedule.utc_offset_minutes, 120, "June in Oslo: summer time");
    assert_eq!(
        (schedule.windows[0].days, schedule.windows[0].start_minute, schedule.windows[0].end_minute),
        (2, 540, 720)
    );

    // The guest's data: no name, email or phone; the access it holds.
    let data = h.get_auth("/v1/me/data", &guest).await.body;
    let category =
        |name: &str| data["categories"].as_array().unwrap().iter().find(|c| c["category"] == name).unwrap().clone();
    assert_eq!(category("profile")["items"]["name"], "");
    assert!(category("contact")["items"]["email"].is_null() && category("contact")["items"]["phone"].is_null());
    assert_eq!(category("guest_access")["items"][0]["doors"], json!([1]));
    assert!(!data.to_string().contains("cleaner"), "the label is the tenant's");
    assert!(!data.to_string().contains("ada@"), "no contact data of the tenant");

    // The tenant sees the guest by label; the used-up invitation is gone, with its hash.
    let mine = h.get_auth("/v1/me/invitations", &ada).await.body;
    assert_eq!(mine["invitations"], json!([]));
    assert_eq!(mine["guests"][0]["label"], "cleaner");
    assert_eq!(mine["guests"][0]["has_account"], false);
    assert_eq!(h.count("SELECT COUNT(*) FROM invitations WHERE tenant_id != ''").await, 0);
    assert!(!dump(&h).await.contains(&hash), "no token hash after the last use");
    let sent = h.get_auth("/v1/me/data", &ada).await.body;
    let sent =
        sent["categories"].as_array().unwrap().iter().find(|c| c["category"] == "invitations_sent").unwrap().clone();
    assert_eq!(sent["items"][0]["label"], "cleaner");
    // The export file holds the same.
    let export: Value = serde_json::from_str(
        &h.client
            .get(format!("{}/v1/me/export", h.server.url()))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(export["categories"]["invitations_sent"]["items"][0]["label"], "cleaner");
    assert_eq!(export["categories"]["invitations_sent"]["items"][0]["has_account"], false);
}

#[tokio::test]
async fn accepting_twice_from_one_device_is_the_same_guest_and_another_device_finds_it_used_up() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let created = create(&h, &ada, weekly_body(&[1], START, START + 2 * DAY)).await;
    let canonical = token_of(&created);
    let key = new_key();
    let first = accept_as_guest(&h, &canonical, &key).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = accept_as_guest(&h, &canonical, &key).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["guest_id"], first.body["guest_id"]);
    assert_eq!(again.body["session_id"], first.body["session_id"]);
    let other = accept_as_guest(&h, &canonical, &new_key()).await;
    assert_eq!((other.status, other.code()), (StatusCode::GONE, "invitation_used_up"));
    assert_eq!(h.get(&format!("/v1/invitations/{canonical}")).await.code(), "invitation_used_up");
}

#[tokio::test]
async fn a_tenant_cannot_invite_to_a_door_they_lack_nor_beyond_the_sites_window() {
    let h = harness_with(|c| c.demo = true).await;
    let bob = h.sign_in("bob@example.com").await;
    h.grant(json!({ "identifier": "bob@example.com", "doors": [1] })).await;
    let bob = token(&bob, "access_token");
    for doors in [vec![2], vec![1, 2], vec![99]] {
        let reply = create(&h, &bob, weekly_body(&doors, START, START + DAY)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "door_not_allowed"), "{doors:?}");
    }
    let ada = ada(&h).await;
    for (from, until) in [(START, START + 30 * DAY + 1), (START, START - 1), (START - 3 * DAY, START - DAY)] {
        let reply = create(&h, &ada, weekly_body(&[1], from, until)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_window"), "{from}..{until}");
    }
    assert_eq!(create(&h, &ada, weekly_body(&[1], START, START + 30 * DAY)).await.status, StatusCode::CREATED);
    let mut bad = weekly_body(&[1], START, START + DAY);
    bad["schedule"]["windows"][0]["end_minute"] = json!(500);
    assert_eq!(create(&h, &ada, bad).await.code(), "invalid_schedule");
    let mut bad = weekly_body(&[1], START, START + DAY);
    bad["label"] = json!("clean\u{202E}er");
    assert_eq!(create(&h, &ada, bad).await.code(), "invalid_label");
    let mut bad = weekly_body(&[1], START, START + DAY);
    bad["uses"] = json!(0);
    assert_eq!(create(&h, &ada, bad).await.code(), "invalid_request");
    // A grant with an end cannot be passed on beyond it.
    h.grant(json!({ "identifier": "cy@example.com", "doors": [2], "not_after": START + DAY })).await;
    let cy = token(&h.sign_in("cy@example.com").await, "access_token");
    assert_eq!(create(&h, &cy, weekly_body(&[2], START, START + 2 * DAY)).await.code(), "door_not_allowed");
    assert_eq!(create(&h, &cy, weekly_body(&[2], START, START + DAY)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_expired_and_revoked_tokens_each_get_their_own_error_on_every_path() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let expiring = token_of(&create(&h, &ada, weekly_body(&[1], START, START + DAY)).await);
    let revoked = create(&h, &ada, weekly_body(&[1], START, START + 3 * DAY)).await;
    let revoked_id = revoked.body["invitation"]["id"].as_str().unwrap().to_owned();
    let revoked = token_of(&revoked);
    let bob = token(&h.sign_in("bob@example.com").await, "access_token");
    // Only the tenant may revoke it.
    let reply = h.call(Method::DELETE, &format!("/v1/me/invitations/{revoked_id}"), Some(&bob), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = h.call(Method::DELETE, &format!("/v1/me/invitations/{revoked_id}"), Some(&ada), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let mut unknown: Vec<u8> = expiring.bytes().collect();
    unknown[0] = if unknown[0] == b'A' { b'B' } else { b'A' };
    let unknown = String::from_utf8(unknown).unwrap();

    h.clock.advance(DAY + 1);
    let bob = token(&h.sign_in("bob@example.com").await, "access_token");
    for (text, status, code) in [
        (&unknown, StatusCode::NOT_FOUND, "invitation_unknown"),
        (&expiring, StatusCode::GONE, "invitation_expired"),
        (&revoked, StatusCode::GONE, "invitation_revoked"),
    ] {
        let preview = h.get(&format!("/v1/invitations/{text}")).await;
        assert_eq!((preview.status, preview.code()), (status, code));
        let guest = accept_as_guest(&h, text, &new_key()).await;
        assert_eq!((guest.status, guest.code()), (status, code));
        let account = h.post_auth("/v1/invitations/accept", &bob, json!({ "code": text })).await;
        assert_eq!((account.status, account.code()), (status, code));
        let page = h.client.get(format!("{}/i/{text}", h.server.url())).send().await.unwrap();
        assert_eq!(page.status(), status);
    }
    // After the purge the expired row is gone, and the token still says "expired".
    purge(&h).await;
    assert_eq!(h.count(&format!("SELECT COUNT(*) FROM invitations WHERE not_after < {}", START + DAY + 1)).await, 0);
    assert!(!dump(&h).await.contains(&hex::encode(Sha256::digest(expiring.as_bytes()))));
    assert_eq!(h.get(&format!("/v1/invitations/{expiring}")).await.code(), "invitation_expired");
}

#[tokio::test]
async fn guessing_tokens_is_limited_per_address() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let real = token_of(&create(&h, &ada, weekly_body(&[1], START, START + DAY)).await);
    for i in 0..20 {
        let guess = format!("{:0>40}", i);
        assert_eq!(h.get(&format!("/v1/invitations/{guess}")).await.code(), "invitation_unknown");
    }
    let limited = h.get(&format!("/v1/invitations/{real}")).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    assert!(limited.headers.get("retry-after").is_some());
    h.clock.advance(601);
    assert_eq!(h.get(&format!("/v1/invitations/{real}")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_landing_page_names_building_doors_and_window_and_nobody_and_runs_nothing() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    // 2025-06-17 is a Tuesday; START is 2025-06-15 15:06:40 UTC.
    let created = create(&h, &ada, weekly_body(&[1, 2], START, START + 7 * DAY)).await;
    let canonical = token_of(&created);
    let resp = h.client.get(created.body["link"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(headers.get("set-cookie").is_none());
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let html = resp.text().await.unwrap();
    for expected in [
        "Demo Building",
        "Main entrance",
        "Bike room",
        "Tuesdays 09:00–12:00",
        "(UTC+02:00)",
        &format!("porta://invite/{canonical}"),
    ] {
        assert!(html.contains(expected), "{expected} missing from the page");
    }
    for absent in ["<script", "ada@", "Ada Resident", "+4790000001", "cleaner", "http://", "https://"] {
        assert!(!html.contains(absent), "{absent} must not be on the page");
    }
}

#[tokio::test]
async fn a_signed_in_resident_accepts_into_their_account_once_and_revoking_takes_it_back() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let created =
        create(&h, &ada, json!({ "doors": [3], "not_before": START, "not_after": START + DAY, "uses": 2 })).await;
    let canonical = token_of(&created);
    // Ada cannot take a use of her own invitation.
    let own = h.post_auth("/v1/invitations/accept", &ada, json!({ "code": canonical })).await;
    assert_eq!((own.status, own.code()), (StatusCode::CONFLICT, "own_invitation"));
    let cy = h.sign_in("cy@example.com").await;
    let (cy, session) = (token(&cy, "access_token"), token(&cy, "session_id"));
    let key = new_key();
    assert_eq!(h.enroll(&cy, &session, &key).await.status, StatusCode::CREATED);
    let link = created.body["link"].as_str().unwrap();
    let first = h.post_auth("/v1/invitations/accept", &cy, json!({ "code": link })).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let again = h.post_auth("/v1/invitations/accept", &cy, json!({ "code": canonical })).await;
    assert_eq!(again.body["guest_id"], first.body["guest_id"]);
    let mine = h.get_auth("/v1/me/invitations", &ada).await.body;
    assert_eq!(mine["invitations"][0]["uses_left"], 1, "a repeat takes no second use");
    assert_eq!(mine["guests"][0]["has_account"], true);
    let doors = h.doors(&cy).await;
    assert_eq!(doors["doors"][0]["door_id"], 3);
    let id = Credential::from_bytes(&unb64(&doors["credentials"][0]["credential"])).unwrap().body.credential_id;
    // Cy cannot pass on what she was given.
    let reply = create(&h, &cy, json!({ "doors": [3], "not_before": START, "not_after": START + 3600 })).await;
    assert_eq!(reply.code(), "door_not_allowed");

    let guest_id = first.body["guest_id"].as_str().unwrap();
    let reply = h.call(Method::DELETE, &format!("/v1/me/guests/{guest_id}"), Some(&ada), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(h.doors(&cy).await["doors"], json!([]));
    assert!(h.revoked(&cy).await.0.contains(&id), "the credential goes on the revocation list");
}

#[tokio::test]
async fn a_guest_ends_with_its_window_and_everything_it_held_is_deleted() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let end = START + DAY;
    let canonical = token_of(&create(&h, &ada, weekly_body(&[1], START, end)).await);
    let key = new_key();
    let reply = accept_as_guest(&h, &canonical, &key).await;
    let (guest, refresh, user_id) =
        (token(&reply.body, "access_token"), token(&reply.body, "refresh_token"), token(&reply.body, "user_id"));
    assert!(reply.body["access_expires_in_s"].as_i64().unwrap() <= DAY);
    h.doors(&guest).await;
    // Guests cannot invite, nor give themselves contact data.
    assert_eq!(create(&h, &guest, weekly_body(&[1], START, end)).await.code(), "guest_account");
    let reply = h.call(Method::PATCH, "/v1/me/profile", Some(&guest), Some(json!({ "email": "g@example.com" }))).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "guest_account"));

    h.clock.advance(DAY + 1);
    assert_eq!(
        h.get_auth("/v1/me/doors", &guest).await.status,
        StatusCode::UNAUTHORIZED,
        "the session ended with the window"
    );
    assert_eq!(h.refresh(&refresh).await.status, StatusCode::UNAUTHORIZED);
    purge(&h).await;
    for table in [
        "users WHERE id",
        "sessions WHERE user_id",
        "device_keys WHERE user_id",
        "credentials WHERE user_id",
        "door_grants WHERE user_id",
        "guest_accesses WHERE user_id",
    ] {
        assert_eq!(h.count(&format!("SELECT COUNT(*) FROM {table} = '{user_id}'")).await, 0, "{table}");
    }
    // Not even the revocation list names the key: its credential has expired.
    assert!(!dump(&h).await.contains(&hex::encode(key.verifying_key().to_bytes())));
    let ada = token(&h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await, "access_token");
    assert_eq!(h.get_auth("/v1/me/invitations", &ada).await.body["guests"], json!([]));
}

#[tokio::test]
async fn deleting_the_tenants_account_revokes_every_guest_they_invited() {
    let h = harness_with(|c| c.demo = true).await;
    let ada_tokens = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let ada = token(&ada_tokens, "access_token");
    let canonical = token_of(&create(&h, &ada, weekly_body(&[1], START, START + 5 * DAY)).await);
    let key = new_key();
    let guest = token(&accept_as_guest(&h, &canonical, &key).await.body, "access_token");
    h.doors(&guest).await;
    let pending = token_of(&create(&h, &ada, weekly_body(&[2], START, START + 5 * DAY)).await);

    let reply = h.post_auth("/v1/me/deletion-code", &ada, json!({})).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let code = h.outbox(porta_server::DEMO_RESIDENT_EMAIL).await;
    let reply = h
        .post_auth("/v1/me/delete", &ada, json!({ "code": code, "request_id": uuid::Uuid::new_v4().to_string() }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    assert_eq!(h.get_auth("/v1/me/doors", &guest).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.get(&format!("/v1/invitations/{pending}")).await.code(), "invitation_used_up");
    let bob = token(&h.sign_in("bob@example.com").await, "access_token");
    h.grant(json!({ "identifier": "bob@example.com", "doors": [1] })).await;
    let (_, devices) = h.revoked(&bob).await;
    assert!(devices.contains(&key.verifying_key().to_bytes()), "the guest's key is revoked at the locks");
}

#[tokio::test]
async fn one_tenant_cannot_flood_the_site_with_guests() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    let body = |uses: u32| json!({ "doors": [1], "not_before": START, "not_after": START + DAY, "uses": uses });
    assert_eq!(create(&h, &ada, body(51)).await.code(), "invalid_request", "at most 50 uses");
    assert_eq!(create(&h, &ada, body(50)).await.status, StatusCode::CREATED);
    assert_eq!(create(&h, &ada, body(50)).await.status, StatusCode::CREATED);
    let full = create(&h, &ada, body(1)).await;
    assert_eq!((full.status, full.code()), (StatusCode::CONFLICT, "too_many_guests"));
    // Revoking frees the open uses; a day allows 20 invitations.
    for inv in h.get_auth("/v1/me/invitations", &ada).await.body["invitations"].as_array().unwrap() {
        let path = format!("/v1/me/invitations/{}", inv["id"].as_str().unwrap());
        assert_eq!(h.call(Method::DELETE, &path, Some(&ada), None).await.status, StatusCode::NO_CONTENT);
    }
    for _ in 2..20 {
        assert_eq!(create(&h, &ada, body(1)).await.status, StatusCode::CREATED);
    }
    let limited = create(&h, &ada, body(1)).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    // Another tenant is not affected.
    h.grant(json!({ "identifier": "bob@example.com", "doors": [1] })).await;
    let bob = token(&h.sign_in("bob@example.com").await, "access_token");
    assert_eq!(create(&h, &bob, body(1)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_schedule_across_the_change_to_summer_time_keeps_its_local_hours() {
    let h = harness_with(|c| c.demo = true).await;
    let ada = ada(&h).await;
    // The demo site keeps Oslo time: summer time starts 2027-03-28 at 01:00 UTC.
    let change = 1_806_195_600;
    let (start, end) = (change - 7 * DAY, change + 14 * DAY);
    let canonical = token_of(&create(&h, &ada, weekly_body(&[1], start, end)).await);
    let guest = token(&accept_as_guest(&h, &canonical, &new_key()).await.body, "access_token");
    let doors = h.doors(&guest).await;
    let pieces: Vec<(u64, u64, i16)> = doors["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let body = Credential::from_bytes(&unb64(&c["credential"])).unwrap().body;
            let schedule = body.schedule.unwrap();
            assert_eq!((schedule.windows[0].start_minute, schedule.windows[0].end_minute), (540, 720));
            (body.not_before, body.not_after, schedule.utc_offset_minutes)
        })
        .collect();
    let mut pieces = pieces;
    pieces.sort();
    let (start, end, change) = (start as u64, end as u64, change as u64);
    assert_eq!(pieces, vec![(start, change - 1, 60), (change, end, 120)], "cut at the change, each with its offset");
    // The guest still sees one window.
    assert_eq!(doors["doors"][0]["access"].as_array().unwrap().len(), 1);
}
