//! The partner API on a real server and real SQLite: a partner key of site A reads A's
//! people and the access log of A's doors (an event made by the real door protocol and
//! uploaded through the public ingest) and nothing of site B; its answers hold no email,
//! phone or internal id; revoked, unknown and garbled keys and user tokens are refused alike;
//! B's admin reaches none of A's keys; reads are rate limited per key; and every read, key
//! made and key revoked is in the security log under the key's id, never its secret.

mod common;

use common::*;
use porta_protocol::{
    Credential, Decision, LockHandshake, LockState, PhoneHandshake, PhoneParams, TimeUpdate, Updates, VerifyingKey,
};
use rand::rngs::OsRng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OPERATOR: &str = "op@porta.example";
const B_ADMIN: &str = "bea-admin@b.example";
const B_RESIDENT: &str = "dora@b.example";

fn ok(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
}

async fn server_with(tweak: impl FnOnce(&mut porta_server::Config)) -> Harness {
    harness_with(|c| {
        c.demo = true;
        c.bootstrap_operators = vec![OPERATOR.into()];
        tweak(c);
    })
    .await
}

async fn sign_in(h: &Harness, who: &str) -> String {
    token(&h.sign_in(who).await, "access_token")
}

async fn demo_site(h: &Harness, admin: &str) -> String {
    let sites = h.get_auth("/v1/admin/sites", admin).await;
    ok(&sites, StatusCode::OK);
    sites.body[0]["id"].as_str().unwrap().to_owned()
}

/// Site B, made by the operator: an admin, a unit with a resident, a door granted to the unit.
/// Returns (site id, door number, resident's user id).
async fn build_site_b(h: &Harness, op: &str) -> (String, u32, String) {
    let site = h
        .post_auth(
            "/v1/admin/sites",
            op,
            json!({ "name": "B House", "address": "Elm Street 2", "utc_offset_minutes": 0, "dst_rule": "none" }),
        )
        .await;
    ok(&site, StatusCode::CREATED);
    let site = site.body["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/admin/sites/{site}");
    ok(&h.post_auth(&format!("{base}/roles"), op, json!({ "identifier": B_ADMIN })).await, StatusCode::CREATED);
    let unit = h.post_auth(&format!("{base}/units"), op, json!({ "name": "Flat 1", "kind": "apartment" })).await;
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let door = h.post_auth(&format!("{base}/doors"), op, json!({ "name": "B gate" })).await;
    let door = door.body["door_id"].as_u64().unwrap() as u32;
    let added = h.post_auth(&format!("{base}/units/{unit}/residents"), op, json!({ "identifier": B_RESIDENT })).await;
    ok(&added, StatusCode::ACCEPTED);
    let residents = h.get_auth(&format!("{base}/units/{unit}/residents"), op).await;
    let resident = residents.body[0]["user_id"].as_str().unwrap().to_owned();
    let grant = h.post_auth(&format!("{base}/grants"), op, json!({ "unit_id": unit, "doors": [door] })).await;
    ok(&grant, StatusCode::CREATED);
    (site, door, resident)
}

/// Makes a partner key of `site` as `admin`; returns (key id, secret).
async fn new_key(h: &Harness, admin: &str, site: &str, label: &str) -> (String, String) {
    let made = h.post_auth(&format!("/v1/admin/sites/{site}/partner-keys"), admin, json!({ "label": label })).await;
    ok(&made, StatusCode::CREATED);
    let secret = made.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("porta_pk_"), "{secret}");
    (made.body["id"].as_str().unwrap().to_owned(), secret)
}

fn verifying_key(value: &Value) -> VerifyingKey {
    let bytes: [u8; 32] = unb64(value).try_into().unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

/// The demo resident signs in, enrolls a device key, opens door 1 at its simulated lock with
/// the server's credential, and uploads the lock's audit record.
async fn resident_opens_door_1(h: &Harness) {
    let tokens = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let (session_id, access) = (token(&tokens, "session_id"), token(&tokens, "access_token"));
    let device_key = common::new_key();
    ok(&h.enroll(&access, &session_id, &device_key).await, StatusCode::CREATED);
    let doors = h.doors(&access).await;
    let authority = verifying_key(&doors["authority_public_key"]);
    let credential = doors["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Credential::from_bytes(&unb64(&c["credential"])).unwrap())
        .find(|c| c.covers(1))
        .expect("a credential for door 1");
    let config = h.demo_locks().await[0].config();
    let mut state = LockState::new();
    let updates = Updates { time: Some(TimeUpdate::from_bytes(&unb64(&doors["time_update"])).unwrap()) };
    let params =
        PhoneParams { credential, device_key, authority, door_id: 1, now: START as u64, lock_key: None, updates };
    let (mut phone, hello) = PhoneHandshake::start(params, &mut OsRng).unwrap();
    let mut hs = LockHandshake::new();
    let challenge = hs.handle_hello(&config, &mut state, &hello, 0, &mut OsRng).unwrap();
    let proof = phone.handle_challenge(&challenge).unwrap();
    let out = hs.handle_proof(&config, &mut state, &proof, START as u64, 10).unwrap();
    let outcome = phone.handle_result(&out.response).unwrap();
    assert_eq!(outcome.decision, Decision::Opened);
    let upload = h
        .post_auth(
            "/v1/me/access-events",
            &access,
            json!({ "events": [{ "audit_record": b64(outcome.audit.to_bytes()) }] }),
        )
        .await;
    ok(&upload, StatusCode::OK);
    assert_eq!(upload.body["accepted"], 1);
}

/// Every user's id, email and phone in the database: none may reach a partner.
async fn personal_data(h: &Harness) -> Vec<String> {
    h.query("SELECT id, email, phone FROM users").await.into_iter().flatten().filter_map(|v| v.text()).collect()
}

#[tokio::test]
async fn a_key_of_site_a_reads_as_people_and_access_log_and_nothing_of_site_b() {
    let h = server_with(|_| {}).await;
    let op = sign_in(&h, OPERATOR).await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site_a = demo_site(&h, &admin).await;
    let (site_b, door_b, dora) = build_site_b(&h, &op).await;
    resident_opens_door_1(&h).await;
    // B has no simulated lock: its event is stored as the ingest stores one.
    let (credential, record) = (h.blob(&"00".repeat(16)), h.blob(""));
    h.execute(&format!(
        "INSERT INTO access_events (lock_id, counter, door_number, credential_id, user_id, decision, at,
             received_at, record) VALUES ({door_b}, 1, {door_b}, {credential}, '{dora}', 0, {START}, {START}, {record})"
    ))
    .await;

    let (_, key_a) = new_key(&h, &admin, &site_a, "Caretaker AS").await;
    let (_, key_b) = new_key(&h, &op, &site_b, "B partner").await;

    let people = h.get_auth("/v1/partner/people", &key_a).await;
    ok(&people, StatusCode::OK);
    let people = people.body["people"].as_array().unwrap().clone();
    let ada = people.iter().find(|p| p["name"] == "Ada Resident").expect("the demo resident is listed");
    let ada_id = ada["pseudonymous_id"].as_str().unwrap().to_owned();
    assert!(people.iter().all(|p| p.as_object().unwrap().len() == 2), "only a name and an id: {people:?}");
    assert_eq!(people.len(), 1, "B's resident and A's admin (no unit, no grant) are not A's people: {people:?}");

    let log = h.get_auth("/v1/partner/access-log", &key_a).await;
    ok(&log, StatusCode::OK);
    let events = log.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{:?}", log.body);
    assert_eq!(events[0]["door_id"], 1);
    assert_eq!(events[0]["decision"], "opened");
    assert_eq!(events[0]["at"], START);
    assert_eq!(events[0]["pseudonymous_id"], ada_id.as_str());
    assert!(events[0]["door_name"].is_string());

    // B's key sees B's event and person, under B's own pseudonym.
    let b_log = h.get_auth("/v1/partner/access-log", &key_b).await;
    let b_events = b_log.body["events"].as_array().unwrap();
    assert_eq!(b_events.len(), 1);
    assert_eq!(b_events[0]["door_id"], door_b);
    let b_people = h.get_auth("/v1/partner/people", &key_b).await;
    assert_eq!(b_people.body["people"][0]["pseudonymous_id"], b_events[0]["pseudonymous_id"]);
    assert_ne!(b_events[0]["pseudonymous_id"], ada_id.as_str());

    // No parameter reaches another site: the log refuses unknown ones, the people list
    // ignores them.
    let b_ids = [b_events[0]["pseudonymous_id"].as_str().unwrap().to_owned(), "B gate".to_owned()];
    for (path, plain) in [
        (format!("/v1/partner/access-log?site_id={site_b}"), None),
        (format!("/v1/partner/access-log?door_id={door_b}"), None),
        (format!("/v1/partner/people?site_id={site_b}"), Some("/v1/partner/people")),
    ] {
        let reply = h.get_auth(&path, &key_a).await;
        match plain {
            None => assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{path}"),
            Some(plain) => assert_eq!(reply.body, h.get_auth(plain, &key_a).await.body, "{path}"),
        }
        let text = reply.body.to_string();
        assert!(b_ids.iter().all(|b| !text.contains(b.as_str())), "{path}: {text}");
    }

    // The id is the site's, not the key's: a second key of A sees the same one.
    let (_, key_a2) = new_key(&h, &admin, &site_a, "Second partner").await;
    let again = h.get_auth("/v1/partner/people", &key_a2).await;
    assert_eq!(again.body["people"][0]["pseudonymous_id"], ada_id.as_str());

    // No answer carries an email, a phone or an internal id.
    let secrets = personal_data(&h).await;
    assert!(secrets.len() >= 4);
    for path in ["/v1/partner/people", "/v1/partner/access-log"] {
        for key in [&key_a, &key_b] {
            let text = h.get_auth(path, key).await.body.to_string();
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{path} leaks {secret}: {text}");
            }
            assert!(!text.contains('@'), "{text}");
        }
    }
}

#[tokio::test]
async fn revoked_unknown_and_garbled_keys_and_user_tokens_are_refused_alike() {
    let h = server_with(|_| {}).await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let resident = sign_in(&h, porta_server::DEMO_RESIDENT_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let (key_id, key) = new_key(&h, &admin, &site, "Caretaker AS").await;
    ok(&h.get_auth("/v1/partner/people", &key).await, StatusCode::OK);

    // The key's list shows when it was used, and never its secret.
    let keys = h.get_auth(&format!("/v1/admin/sites/{site}/partner-keys"), &admin).await;
    ok(&keys, StatusCode::OK);
    assert_eq!(keys.body[0]["id"], key_id.as_str());
    assert_eq!(keys.body[0]["last_used_at"], START);
    assert!(keys.body[0]["revoked_at"].is_null());
    assert!(!keys.body.to_string().contains(&key[9..]), "the list never shows the secret");

    // A partner key is no user token, and a user token is no partner key.
    for path in ["/v1/me/profile", "/v1/admin/sites"] {
        let reply = h.get_auth(path, &key).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{path}");
    }
    let unknown = format!("porta_pk_{}", "A".repeat(43));
    let mut garbled = key.clone();
    garbled.pop();
    let refused: Vec<(&str, String)> = vec![
        ("a user's token", resident.clone()),
        ("an admin's token", admin.clone()),
        ("an unknown key", unknown),
        ("a garbled key", garbled),
        ("the bare prefix", "porta_pk_".into()),
        ("the key without its prefix", key[9..].to_owned()),
    ];
    for (what, credential) in &refused {
        for path in ["/v1/partner/people", "/v1/partner/access-log"] {
            let reply = h.get_auth(path, credential).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{what} at {path}");
        }
    }
    assert_eq!(h.get("/v1/partner/people").await.status, StatusCode::UNAUTHORIZED);

    let revoked =
        h.call(Method::DELETE, &format!("/v1/admin/sites/{site}/partner-keys/{key_id}"), Some(&admin), None).await;
    ok(&revoked, StatusCode::NO_CONTENT);
    for path in ["/v1/partner/people", "/v1/partner/access-log"] {
        let reply = h.get_auth(path, &key).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "revoked at {path}");
    }
    let keys = h.get_auth(&format!("/v1/admin/sites/{site}/partner-keys"), &admin).await;
    assert_eq!(keys.body[0]["revoked_at"], START);

    // Partner keys are an admin's: a resident without a role cannot make one.
    let made =
        h.post_auth(&format!("/v1/admin/sites/{site}/partner-keys"), &resident, json!({ "label": "Mine" })).await;
    assert_eq!(made.status, StatusCode::FORBIDDEN);
    let bad = h.post_auth(&format!("/v1/admin/sites/{site}/partner-keys"), &admin, json!({ "label": " " })).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "invalid_request"));
}

#[tokio::test]
async fn a_site_admin_of_b_reaches_none_of_as_keys() {
    let h = server_with(|_| {}).await;
    let op = sign_in(&h, OPERATOR).await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site_a = demo_site(&h, &admin).await;
    let (site_b, _, _) = build_site_b(&h, &op).await;
    let b_admin = sign_in(&h, B_ADMIN).await;
    let (key_id, key) = new_key(&h, &admin, &site_a, "Caretaker AS").await;

    let a_keys = format!("/v1/admin/sites/{site_a}/partner-keys");
    for (method, path, body) in [
        (Method::GET, a_keys.clone(), None),
        (Method::POST, a_keys.clone(), Some(json!({ "label": "Intruder" }))),
        (Method::DELETE, format!("{a_keys}/{key_id}"), None),
        // A's key id inside B's own path is not found either.
        (Method::DELETE, format!("/v1/admin/sites/{site_b}/partner-keys/{key_id}"), None),
    ] {
        let reply = h.call(method.clone(), &path, Some(&b_admin), body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"), "{method} {path}");
    }
    let keys = h.get_auth(&a_keys, &op).await;
    assert_eq!(keys.body.as_array().unwrap().len(), 1, "B's admin made no key at A");
    assert!(keys.body[0]["revoked_at"].is_null());
    ok(&h.get_auth("/v1/partner/people", &key).await, StatusCode::OK);
    let b_keys = h.get_auth(&format!("/v1/admin/sites/{site_b}/partner-keys"), &b_admin).await;
    assert_eq!(b_keys.body, json!([]));
}

#[tokio::test]
async fn reads_are_rate_limited_per_key_and_every_call_is_in_the_security_log_without_the_secret() {
    let h = server_with(|c| c.limits.partner_reads_per_window = 3).await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let (key_id, key) = new_key(&h, &admin, &site, "Caretaker AS").await;
    let (other_id, other) = new_key(&h, &admin, &site, "Booking tool").await;

    ok(&h.get_auth("/v1/partner/people", &key).await, StatusCode::OK);
    ok(&h.get_auth("/v1/partner/access-log", &key).await, StatusCode::OK);
    ok(&h.get_auth("/v1/partner/access-log?limit=1", &key).await, StatusCode::OK);
    let limited = h.get_auth("/v1/partner/people", &key).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    let retry: i64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another key of the same site has its own budget; the window passes.
    ok(&h.get_auth("/v1/partner/people", &other).await, StatusCode::OK);
    h.clock.advance(61);
    ok(&h.get_auth("/v1/partner/people", &key).await, StatusCode::OK);

    let revoked =
        h.call(Method::DELETE, &format!("/v1/admin/sites/{site}/partner-keys/{other_id}"), Some(&admin), None).await;
    ok(&revoked, StatusCode::NO_CONTENT);

    let log = h.get_auth(&format!("/v1/admin/sites/{site}/security-events?limit=200"), &admin).await;
    ok(&log, StatusCode::OK);
    let events = log.body["events"].as_array().unwrap();
    let of = |kind: &str| events.iter().filter(|e| e["kind"] == kind).cloned().collect::<Vec<_>>();
    let reads = of("partner_read");
    let by = |id: &str| reads.iter().filter(|e| e["subject"] == id).count();
    assert_eq!((by(&key_id), by(&other_id)), (5, 1), "every call with a live key, by key: {reads:?}");
    let mut what: Vec<&str> = reads.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    what.sort_unstable();
    assert_eq!(what, ["access_log", "access_log", "people", "people", "people", "rate_limited"]);
    let created = of("partner_key_created");
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|e| e["actor"].is_string() && e["site_id"] == site.as_str()));
    let revoked = of("partner_key_revoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["subject"], other_id.as_str());

    // The log, and the whole database, never hold a key's secret.
    let text = log.body.to_string();
    let dump: Vec<String> = h
        .query("SELECT secret_hash || label || id FROM partner_keys")
        .await
        .into_iter()
        .flatten()
        .filter_map(|v| v.text())
        .collect();
    for secret in [&key, &other] {
        let random = &secret["porta_pk_".len()..];
        assert!(!text.contains(random));
        assert!(dump.iter().all(|row| !row.contains(random)), "only the secret's hash is stored");
    }
}
