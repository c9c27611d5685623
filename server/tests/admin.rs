//! The building's administration over HTTP, on a real server and real SQLite: what each role
//! may do, that nothing of site B is reachable by an admin of site A (every endpoint, with
//! B's site in the path and with B's ids inside A's paths), that an admin's grant reaches the
//! resident's doors and its revocation the revocation list, that lowered retention is
//! applied by the next purge, and that the security-event log records what it should and
//! holds no one's email, phone or name.

mod common;

use common::*;
use porta_protocol::Credential;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OPERATOR: &str = "op@porta.example";
const B_ADMIN: &str = "bea-admin@b.example";
const B_RESIDENT: &str = "dora@b.example";
const DAY: i64 = 86_400;

/// A demo server (site A = the demo building, admin `DEMO_ADMIN_EMAIL`) with an operator.
async fn server() -> Harness {
    harness_with(|c| {
        c.demo = true;
        c.bootstrap_operators = vec![OPERATOR.into()];
    })
    .await
}

async fn sign_in(h: &Harness, who: &str) -> String {
    token(&h.sign_in(who).await, "access_token")
}

async fn call(h: &Harness, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    h.call(method, path, Some(token), body).await
}

fn ok(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
}

/// Ids of one site's records.
#[derive(Debug, Clone)]
struct SiteIds {
    site: String,
    unit: String,
    door: u32,
    resident: String,
    grant: String,
    admin: String,
}

async fn demo_site(h: &Harness, admin: &str) -> String {
    let sites = h.get_auth("/v1/admin/sites", admin).await;
    ok(&sites, StatusCode::OK);
    sites.body[0]["id"].as_str().unwrap().to_owned()
}

/// Builds site B through the API as the operator: its admin, a unit with a resident, a door,
/// and a grant of the door to the unit.
async fn build_site_b(h: &Harness, op: &str) -> SiteIds {
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
    let role = h.post_auth(&format!("{base}/roles"), op, json!({ "identifier": B_ADMIN })).await;
    ok(&role, StatusCode::CREATED);
    let unit = h.post_auth(&format!("{base}/units"), op, json!({ "name": "Flat 1", "kind": "apartment" })).await;
    ok(&unit, StatusCode::CREATED);
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let door = h.post_auth(&format!("{base}/doors"), op, json!({ "name": "B gate" })).await;
    ok(&door, StatusCode::CREATED);
    let door = door.body["door_id"].as_u64().unwrap() as u32;
    let added = h.post_auth(&format!("{base}/units/{unit}/residents"), op, json!({ "identifier": B_RESIDENT })).await;
    ok(&added, StatusCode::ACCEPTED);
    let residents = h.get_auth(&format!("{base}/units/{unit}/residents"), op).await;
    let resident = residents.body[0]["user_id"].as_str().unwrap().to_owned();
    let grant = h.post_auth(&format!("{base}/grants"), op, json!({ "unit_id": unit, "doors": [door] })).await;
    ok(&grant, StatusCode::CREATED);
    h.provision_lock(op, &site, door).await;
    SiteIds {
        site,
        unit,
        door,
        resident,
        grant: grant.body["id"].as_str().unwrap().to_owned(),
        admin: role.body["user_id"].as_str().unwrap().to_owned(),
    }
}

/// Every site-scoped admin endpoint, with the ids filled in from `ids` (the path's site from
/// `site`).
fn endpoints(site: &str, ids: &SiteIds, door_for_grant: u32) -> Vec<(Method, String, Option<Value>)> {
    let s = format!("/v1/admin/sites/{site}");
    let (u, d, r, g, a) = (&ids.unit, ids.door, &ids.resident, &ids.grant, &ids.admin);
    vec![
        (Method::GET, s.clone(), None),
        (Method::PATCH, s.clone(), Some(json!({ "name": "Taken over", "tenants_may_invite": false }))),
        (Method::GET, format!("{s}/units"), None),
        (Method::POST, format!("{s}/units"), Some(json!({ "name": "Intruder", "kind": "office" }))),
        (Method::DELETE, format!("{s}/units/{u}"), None),
        (Method::GET, format!("{s}/doors"), None),
        (Method::POST, format!("{s}/doors"), Some(json!({ "name": "Back door" }))),
        (Method::PATCH, format!("{s}/doors/{d}"), Some(json!({ "name": "Mine", "log_retention_days": 1 }))),
        (Method::DELETE, format!("{s}/doors/{d}"), None),
        (Method::GET, format!("{s}/doors/{d}/lock"), None),
        (Method::POST, format!("{s}/doors/{d}/lock"), Some(json!({ "request": lock_request() }))),
        (Method::DELETE, format!("{s}/doors/{d}/lock"), None),
        (Method::GET, format!("{s}/units/{u}/residents"), None),
        (Method::POST, format!("{s}/units/{u}/residents"), Some(json!({ "identifier": "mallory@example.com" }))),
        (Method::DELETE, format!("{s}/units/{u}/residents/{r}"), None),
        (Method::GET, format!("{s}/grants"), None),
        (Method::POST, format!("{s}/grants"), Some(json!({ "unit_id": u, "doors": [door_for_grant] }))),
        (Method::POST, format!("{s}/grants"), Some(json!({ "user_id": r, "doors": [door_for_grant] }))),
        (Method::DELETE, format!("{s}/grants/{g}"), None),
        (Method::GET, format!("{s}/roles"), None),
        (Method::POST, format!("{s}/roles"), Some(json!({ "identifier": "mallory@example.com" }))),
        (Method::DELETE, format!("{s}/roles/{a}"), None),
        (Method::GET, format!("{s}/security-events"), None),
    ]
}

/// A genuine provisioning request of a fresh lock key, base64.
fn lock_request() -> String {
    b64(porta_protocol::ProvisioningRequest::sign(&new_key(), &mut rand::rngs::OsRng).to_bytes())
}

/// Everything the operator can read about a site.
async fn snapshot(h: &Harness, op: &str, ids: &SiteIds) -> Value {
    let s = format!("/v1/admin/sites/{}", ids.site);
    let mut out = serde_json::Map::new();
    for path in [
        s.clone(),
        format!("{s}/units"),
        format!("{s}/doors"),
        format!("{s}/doors/{}/lock", ids.door),
        format!("{s}/units/{}/residents", ids.unit),
        format!("{s}/grants"),
        format!("{s}/roles"),
    ] {
        let reply = h.get_auth(&path, op).await;
        ok(&reply, StatusCode::OK);
        out.insert(path, reply.body);
    }
    Value::Object(out)
}

#[tokio::test]
async fn a_resident_without_a_role_is_refused_every_admin_endpoint() {
    let h = server().await;
    let op = sign_in(&h, OPERATOR).await;
    let b = build_site_b(&h, &op).await;
    let ada = sign_in(&h, porta_server::DEMO_RESIDENT_EMAIL).await;
    let a_site = demo_site(&h, &op).await;
    let before = snapshot(&h, &op, &b).await;
    let mut all = endpoints(&a_site, &b, b.door);
    all.extend(endpoints(&b.site, &b, b.door));
    all.push((Method::GET, "/v1/admin/sites".into(), None));
    all.push((Method::POST, "/v1/admin/sites".into(), Some(json!({ "name": "Mine" }))));
    all.push((Method::GET, "/v1/admin/security-events".into(), None));
    for (method, path, body) in all {
        let reply = call(&h, method.clone(), &path, &ada, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}");
    }
    assert_eq!(snapshot(&h, &op, &b).await, before);
}

#[tokio::test]
async fn a_site_admin_manages_their_site_and_cannot_create_sites_or_grant_operator() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let sites = h.get_auth("/v1/admin/sites", &admin).await;
    ok(&sites, StatusCode::OK);
    assert_eq!(sites.body.as_array().unwrap().len(), 1);
    let site = demo_site(&h, &admin).await;
    let s = format!("/v1/admin/sites/{site}");

    let patched =
        call(&h, Method::PATCH, &s, &admin, Some(json!({ "max_invitation_days": 7, "dst_rule": "none" }))).await;
    ok(&patched, StatusCode::OK);
    assert_eq!(
        (patched.body["max_invitation_days"].as_i64(), patched.body["dst_rule"].as_str()),
        (Some(7), Some("none"))
    );
    let unit = h.post_auth(&format!("{s}/units"), &admin, json!({ "name": "Office 9", "kind": "office" })).await;
    ok(&unit, StatusCode::CREATED);
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let door = h.post_auth(&format!("{s}/doors"), &admin, json!({ "name": "Garage", "log_retention_days": 14 })).await;
    ok(&door, StatusCode::CREATED);
    let door = door.body["door_id"].as_u64().unwrap();
    let renamed =
        call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "name": "Car park" }))).await;
    assert_eq!(
        (renamed.body["name"].as_str(), renamed.body["log_retention_days"].as_i64()),
        (Some("Car park"), Some(14))
    );
    // JSON Schema's integers include whole numbers written with a fraction.
    let whole =
        call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "log_retention_days": 21.0 })))
            .await;
    assert_eq!(whole.body["log_retention_days"], 21, "{:?}", whole.body);
    let fraction =
        call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "log_retention_days": 2.5 }))).await;
    assert_eq!(fraction.code(), "invalid_request");
    ok(
        &call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "log_retention_days": 14 }))).await,
        StatusCode::OK,
    );
    // At most 100 characters as sent, surrounding spaces included (as the document counts).
    let padded = format!(" {} ", "x".repeat(99));
    let long = call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "name": padded }))).await;
    assert_eq!(long.code(), "invalid_request");
    for days in [0, 366] {
        let reply =
            call(&h, Method::PATCH, &format!("{s}/doors/{door}"), &admin, Some(json!({ "log_retention_days": days })))
                .await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{days} days");
    }
    let added =
        h.post_auth(&format!("{s}/units/{unit}/residents"), &admin, json!({ "identifier": "+47 900 00 077" })).await;
    ok(&added, StatusCode::ACCEPTED);
    let residents = h.get_auth(&format!("{s}/units/{unit}/residents"), &admin).await;
    assert_eq!(residents.body[0]["phone"], "+4790000077");
    let grant = h.post_auth(&format!("{s}/grants"), &admin, json!({ "unit_id": unit, "doors": [door] })).await;
    ok(&grant, StatusCode::CREATED);
    assert_eq!(h.get_auth(&format!("{s}/grants"), &admin).await.body.as_array().unwrap().len(), 1);
    let role = h.post_auth(&format!("{s}/roles"), &admin, json!({ "identifier": "deputy@demo.porta.app" })).await;
    ok(&role, StatusCode::CREATED);
    let deputy = role.body["user_id"].as_str().unwrap().to_owned();
    ok(&call(&h, Method::DELETE, &format!("{s}/roles/{deputy}"), &admin, None).await, StatusCode::NO_CONTENT);
    let gone = call(&h, Method::DELETE, &format!("{s}/units/{unit}"), &admin, None).await;
    ok(&gone, StatusCode::NO_CONTENT);
    assert!(h.get_auth(&format!("{s}/grants"), &admin).await.body.as_array().unwrap().is_empty());

    // What only an operator may do.
    let create = h.post_auth("/v1/admin/sites", &admin, json!({ "name": "Own site" })).await;
    assert_eq!((create.status, create.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let operator =
        h.post_auth(&format!("{s}/roles"), &admin, json!({ "identifier": "x@example.com", "role": "operator" })).await;
    assert_eq!((operator.status, operator.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let log = h.get_auth("/v1/admin/security-events", &admin).await;
    assert_eq!((log.status, log.code()), (StatusCode::FORBIDDEN, "forbidden"));
    ok(&h.get_auth(&format!("{s}/security-events"), &admin).await, StatusCode::OK);
}

#[tokio::test]
async fn an_operator_manages_every_site_and_creates_them() {
    let h = server().await;
    let op = sign_in(&h, OPERATOR).await;
    let b = build_site_b(&h, &op).await;
    let sites = h.get_auth("/v1/admin/sites", &op).await;
    assert_eq!(sites.body.as_array().unwrap().len(), 2);
    let a_site = demo_site(&h, &sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await).await;
    let doors = h.get_auth(&format!("/v1/admin/sites/{a_site}/doors"), &op).await;
    assert_eq!(doors.body.as_array().unwrap().len(), 3);
    // B's admin manages B, and only B.
    let bea = sign_in(&h, B_ADMIN).await;
    let listed = h.get_auth("/v1/admin/sites", &bea).await;
    assert_eq!(
        listed.body.as_array().unwrap().iter().map(|s| s["id"].clone()).collect::<Vec<_>>(),
        vec![json!(b.site)]
    );
    ok(&h.get_auth(&format!("/v1/admin/sites/{}/units", b.site), &bea).await, StatusCode::OK);
    let a = h.get_auth(&format!("/v1/admin/sites/{a_site}/units"), &bea).await;
    assert_eq!((a.status, a.code()), (StatusCode::NOT_FOUND, "not_found"));
    // Operators come only from configuration: not even an operator hands the role out.
    let operator = h
        .post_auth(
            &format!("/v1/admin/sites/{}/roles", b.site),
            &op,
            json!({ "identifier": B_ADMIN, "role": "operator" }),
        )
        .await;
    assert_eq!(operator.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_site_admin_of_a_reaches_nothing_of_site_b_on_any_endpoint() {
    let h = server().await;
    let op = sign_in(&h, OPERATOR).await;
    let b = build_site_b(&h, &op).await;
    let admin_a = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let a_site = demo_site(&h, &admin_a).await;
    let before = snapshot(&h, &op, &b).await;

    // B's site in the path: as if it did not exist.
    for (method, path, body) in endpoints(&b.site, &b, b.door) {
        let reply = call(&h, method.clone(), &path, &admin_a, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"), "{method} {path}");
    }
    // B's unit, door, resident, grant and admin inside A's paths and bodies: not found at A
    // (a door of B in a grant is an unknown door of A).
    // (Grants name A's door 1 here, so the refusal is for B's unit or resident.)
    let mut smuggled = 0;
    for (method, path, body) in endpoints(&a_site, &b, 1) {
        let names_b = path.contains(&b.unit)
            || path.contains(&format!("/doors/{}", b.door))
            || path.contains(&b.grant)
            || path.contains(&b.admin)
            || body.as_ref().is_some_and(|v| v.to_string().contains(&b.unit) || v.to_string().contains(&b.resident));
        if !names_b {
            continue;
        }
        smuggled += 1;
        let reply = call(&h, method.clone(), &path, &admin_a, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"), "{method} {path}");
    }
    assert_eq!(smuggled, 13, "every endpoint that takes an id was tried with B's");
    let units_a = h.get_auth(&format!("/v1/admin/sites/{a_site}/units"), &admin_a).await;
    let unit_a = units_a.body[0]["id"].as_str().unwrap().to_owned();
    let door_b = h
        .post_auth(
            &format!("/v1/admin/sites/{a_site}/grants"),
            &admin_a,
            json!({ "unit_id": unit_a, "doors": [b.door] }),
        )
        .await;
    assert_eq!((door_b.status, door_b.code()), (StatusCode::BAD_REQUEST, "unknown_door"));
    for (method, path) in [(Method::POST, "/v1/admin/sites"), (Method::GET, "/v1/admin/security-events")] {
        let reply = call(&h, method, path, &admin_a, Some(json!({ "name": "C" }))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }

    assert_eq!(snapshot(&h, &op, &b).await, before, "site B is unchanged");
}

#[tokio::test]
async fn an_admins_grant_reaches_the_residents_doors_and_its_revocation_the_revocation_list() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let s = format!("/v1/admin/sites/{site}");
    let unit = h.post_auth(&format!("{s}/units"), &admin, json!({ "name": "Flat 7", "kind": "apartment" })).await;
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let cy = "cy@example.com";
    ok(
        &h.post_auth(&format!("{s}/units/{unit}/residents"), &admin, json!({ "identifier": cy })).await,
        StatusCode::ACCEPTED,
    );

    // The code the admin's invitation sent signs the new resident in.
    let code = h.outbox(cy).await;
    let tokens = h.sign_in_with(cy, &code).await;
    ok(&tokens, StatusCode::OK);
    let (access, session) = (token(&tokens.body, "access_token"), token(&tokens.body, "session_id"));
    ok(&h.enroll(&access, &session, &new_key()).await, StatusCode::CREATED);
    assert!(h.doors(&access).await["doors"].as_array().unwrap().is_empty());

    let grant = h.post_auth(&format!("{s}/grants"), &admin, json!({ "unit_id": unit, "doors": [2] })).await;
    ok(&grant, StatusCode::CREATED);
    let doors = h.doors(&access).await;
    assert_eq!(doors["doors"][0]["door_id"], 2);
    let credential = Credential::from_bytes(&unb64(&doors["credentials"][0]["credential"])).unwrap();
    assert_eq!(credential.body.doors, vec![2]);

    let grant_id = grant.body["id"].as_str().unwrap();
    ok(&call(&h, Method::DELETE, &format!("{s}/grants/{grant_id}"), &admin, None).await, StatusCode::NO_CONTENT);
    let doors = h.doors(&access).await;
    assert!(doors["doors"].as_array().unwrap().is_empty());
    assert!(doors["credentials"].as_array().unwrap().is_empty());
    let (revoked, _) = h.revoked(&access).await;
    assert!(revoked.contains(&credential.body.credential_id), "the credential is on the revocation list");
    let again = call(&h, Method::DELETE, &format!("{s}/grants/{grant_id}"), &admin, None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_resident_added_to_a_unit_gets_its_grants_and_loses_them_when_removed() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let s = format!("/v1/admin/sites/{site}");
    let unit = h.post_auth(&format!("{s}/units"), &admin, json!({ "name": "Flat 8", "kind": "apartment" })).await;
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    ok(
        &h.post_auth(&format!("{s}/grants"), &admin, json!({ "unit_id": unit, "doors": [3] })).await,
        StatusCode::CREATED,
    );
    let eve = "eve@example.com";
    ok(
        &h.post_auth(&format!("{s}/units/{unit}/residents"), &admin, json!({ "identifier": eve })).await,
        StatusCode::ACCEPTED,
    );
    let tokens = h.sign_in(eve).await;
    let (access, session) = (token(&tokens, "access_token"), token(&tokens, "session_id"));
    ok(&h.enroll(&access, &session, &new_key()).await, StatusCode::CREATED);
    let doors = h.doors(&access).await;
    assert_eq!(doors["doors"][0]["door_id"], 3);
    let credential = Credential::from_bytes(&unb64(&doors["credentials"][0]["credential"])).unwrap();
    let user_id = token(&tokens, "user_id");
    ok(
        &call(&h, Method::DELETE, &format!("{s}/units/{unit}/residents/{user_id}"), &admin, None).await,
        StatusCode::NO_CONTENT,
    );
    assert!(h.doors(&access).await["doors"].as_array().unwrap().is_empty());
    assert!(h.revoked(&access).await.0.contains(&credential.body.credential_id));
}

#[tokio::test]
async fn adding_a_resident_answers_the_same_whether_or_not_the_person_had_an_account() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let s = format!("/v1/admin/sites/{site}");
    let unit = h.post_auth(&format!("{s}/units"), &admin, json!({ "name": "Flat 9", "kind": "apartment" })).await;
    let unit = unit.body["id"].as_str().unwrap().to_owned();
    let path = format!("{s}/units/{unit}/residents");
    let new = h.post_auth(&path, &admin, json!({ "identifier": "fresh@example.com" })).await;
    let known = h.post_auth(&path, &admin, json!({ "identifier": porta_server::DEMO_RESIDENT_EMAIL })).await;
    assert_eq!((new.status, &new.body), (known.status, &known.body));
    let bad = h.post_auth(&path, &admin, json!({ "identifier": "not an address" })).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "invalid_identifier"));
}

#[tokio::test]
async fn a_site_that_does_not_let_tenants_invite_refuses_their_invitations() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let ada = sign_in(&h, porta_server::DEMO_RESIDENT_EMAIL).await;
    let body = json!({ "doors": [1], "not_before": START, "not_after": START + DAY });
    ok(&h.post_auth("/v1/me/invitations", &ada, body.clone()).await, StatusCode::CREATED);
    let patched = call(
        &h,
        Method::PATCH,
        &format!("/v1/admin/sites/{site}"),
        &admin,
        Some(json!({ "tenants_may_invite": false })),
    )
    .await;
    ok(&patched, StatusCode::OK);
    let refused = h.post_auth("/v1/me/invitations", &ada, body).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::FORBIDDEN, "invitations_not_allowed"));
}

#[tokio::test]
async fn admin_writes_are_rate_limited_per_admin() {
    let h = harness_with(|c| {
        c.demo = true;
        c.limits.admin_writes_per_window = 3;
    })
    .await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    let path = format!("/v1/admin/sites/{site}/units");
    for i in 0..3 {
        ok(
            &h.post_auth(&path, &admin, json!({ "name": format!("U{i}"), "kind": "office" })).await,
            StatusCode::CREATED,
        );
    }
    let limited = h.post_auth(&path, &admin, json!({ "name": "U4", "kind": "office" })).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    assert!(limited.headers.contains_key("retry-after"));
    ok(&h.get_auth(&path, &admin).await, StatusCode::OK);
}

async fn insert_access_event(h: &Harness, counter: i64, door: u32, at: i64) {
    let credential = h.blob(&"00".repeat(16));
    let record = h.blob("");
    h.execute(&format!(
        "INSERT INTO access_events (lock_id, counter, door_number, credential_id, decision, at, received_at, record)
         VALUES ({door}, {counter}, {door}, {credential}, 0, {at}, {at}, {record})"
    ))
    .await;
}

#[tokio::test]
async fn after_retention_is_lowered_the_next_purge_removes_older_events() {
    let h = server().await;
    let admin = sign_in(&h, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = demo_site(&h, &admin).await;
    // Door 2 keeps its log 90 days: events of 10 days and 1 day ago are both kept.
    insert_access_event(&h, 1, 2, START - 10 * DAY).await;
    insert_access_event(&h, 2, 2, START - DAY).await;
    h.run_purge(365).await;
    assert_eq!(h.count("SELECT COUNT(*) FROM access_events").await, 2);

    let lowered = call(
        &h,
        Method::PATCH,
        &format!("/v1/admin/sites/{site}/doors/2"),
        &admin,
        Some(json!({ "log_retention_days": 5 })),
    )
    .await;
    ok(&lowered, StatusCode::OK);
    h.run_purge(365).await;
    let left: Vec<i64> = h.query("SELECT at FROM access_events").await.iter().map(|r| r[0].integer()).collect();
    assert_eq!(left, vec![START - DAY], "only the event within 5 days is left");

    // The security log has its own retention.
    h.execute(&format!("INSERT INTO security_events (at, kind) VALUES ({}, 'sign_in')", START - 40 * DAY)).await;
    let old_events = format!("SELECT COUNT(*) FROM security_events WHERE at < {}", START - 30 * DAY);
    h.run_purge(60).await;
    assert_eq!(h.count(&old_events).await, 1);
    h.run_purge(30).await;
    assert_eq!(h.count(&old_events).await, 0);
    let retention = h.get_auth(&format!("/v1/admin/sites/{site}/security-events?kind=retention_changed"), &admin).await;
    assert_eq!(retention.body["events"][0]["subject"], "2");
}

#[tokio::test]
async fn the_security_log_records_sign_ins_failed_codes_grants_and_role_changes_and_no_personal_data() {
    let h = server().await;
    let op = sign_in(&h, OPERATOR).await;
    let b = build_site_b(&h, &op).await;
    // A failed code, for an account and for nobody.
    h.request_code(B_RESIDENT).await;
    let code = h.outbox(B_RESIDENT).await;
    let wrong = h.sign_in_with(B_RESIDENT, &wrong_code(&code)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    // A wrong code for an address with no account: logged, naming no one.
    h.request_code("+4799999999").await;
    let nobody_code = h.outbox("+4799999999").await;
    let nobody = h.sign_in_with("+4799999999", &wrong_code(&nobody_code)).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
    // Guesses with no code pending are not: anyone could fill the log with them.
    for _ in 0..5 {
        assert_eq!(h.sign_in_with("flood@example.com", "000000").await.status, StatusCode::UNAUTHORIZED);
    }
    let dora = h.sign_in_with(B_RESIDENT, &code).await;
    ok(&dora, StatusCode::OK);
    let bea = sign_in(&h, B_ADMIN).await;
    let roles = format!("/v1/admin/sites/{}/roles", b.site);
    ok(&call(&h, Method::DELETE, &format!("{roles}/{}", b.admin), &op, None).await, StatusCode::NO_CONTENT);
    ok(
        &call(&h, Method::DELETE, &format!("/v1/admin/sites/{}/grants/{}", b.site, b.grant), &op, None).await,
        StatusCode::NO_CONTENT,
    );
    // A former admin is refused at once.
    assert_eq!(h.get_auth(&format!("/v1/admin/sites/{}", b.site), &bea).await.status, StatusCode::FORBIDDEN);

    let log = h.get_auth("/v1/admin/security-events?limit=200", &op).await;
    ok(&log, StatusCode::OK);
    let events = log.body["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "sign_in",
        "code_failed",
        "grant_created",
        "grant_revoked",
        "role_granted",
        "role_revoked",
        "resident_added",
        "site_changed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let dora_id = token(&dora.body, "user_id");
    assert!(events.iter().any(|e| e["kind"] == "sign_in" && e["actor"] == json!(dora_id)));
    assert!(events.iter().any(|e| e["kind"] == "code_failed" && e["subject"] == json!(dora_id)));
    assert!(events.iter().any(|e| e["kind"] == "role_revoked" && e["subject"] == json!(b.admin)));
    for bad in ["since=-1", "before=-1", "limit=0", "limit=201", "kind=nonsense"] {
        let reply = h.get_auth(&format!("/v1/admin/security-events?{bad}"), &op).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{bad}");
    }
    let failed = h.get_auth("/v1/admin/security-events?kind=code_failed", &op).await;
    assert_eq!(failed.body["events"].as_array().unwrap().len(), 2);
    // Paging: one at a time, newest first, each page older than the last.
    let first = h.get_auth("/v1/admin/security-events?limit=1", &op).await;
    let before = first.body["next_before"].as_i64().unwrap();
    let second = h.get_auth(&format!("/v1/admin/security-events?limit=1&before={before}"), &op).await;
    assert!(second.body["events"][0]["id"].as_i64().unwrap() < before);
    // The site's own view: only what happened at B.
    let site_log = h.get_auth(&format!("/v1/admin/sites/{}/security-events", b.site), &op).await;
    assert!(site_log.body["events"].as_array().unwrap().iter().all(|e| e["site_id"] == json!(b.site)));

    // No one's email, phone or name, anywhere in the log's rows.
    let rows: String = h
        .query("SELECT * FROM security_events")
        .await
        .into_iter()
        .flatten()
        .filter_map(|value| value.text())
        .map(|value| value + " ")
        .collect();
    assert!(rows.contains(&dora_id), "the log names people by their random id");
    for personal in
        [OPERATOR, B_ADMIN, B_RESIDENT, "dora", "bea-admin", "4799999999", "+47", "@", "Ada Resident", "mallory"]
    {
        assert!(!rows.contains(personal), "the security log holds {personal}");
    }
}

#[tokio::test]
async fn a_deleted_account_stays_in_the_security_log_under_a_pseudonym_only() {
    let h = server().await;
    let op = sign_in(&h, OPERATOR).await;
    let b = build_site_b(&h, &op).await;
    let dora = h.sign_in(B_RESIDENT).await;
    let access = token(&dora, "access_token");
    let user_id = token(&dora, "user_id");
    ok(&call(&h, Method::POST, "/v1/me/deletion-code", &access, None).await, StatusCode::ACCEPTED);
    let code = h.outbox(B_RESIDENT).await;
    let deleted = h
        .post_auth(
            "/v1/me/delete",
            &access,
            json!({ "code": code, "request_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427" }),
        )
        .await;
    ok(&deleted, StatusCode::OK);

    let log = h.get_auth("/v1/admin/security-events?limit=200", &op).await.body;
    let events = log["events"].as_array().unwrap();
    let deletion = events.iter().find(|e| e["kind"] == "account_deleted").expect("the deletion is logged");
    let pseudonym = deletion["subject"].as_str().unwrap();
    assert_ne!(pseudonym, user_id);
    assert!(!log.to_string().contains(&user_id), "the deleted account's id is gone from the log");
    // Its earlier events (added to B, signed in) now carry the same pseudonym.
    for kind in ["resident_added", "sign_in"] {
        assert!(
            events.iter().any(|e| e["kind"] == kind && (e["subject"] == pseudonym || e["actor"] == pseudonym)),
            "{kind} under the pseudonym"
        );
    }
    let _ = b;
}

/// The documented name pattern refuses exactly what the server refuses, for every character
/// of the Basic Multilingual Plane alone, after a letter, and around one.
#[tokio::test]
async fn the_documented_name_pattern_is_what_the_server_accepts() {
    let h = harness().await;
    let doc = h.get("/openapi.json").await.body;
    let mut patterns = Vec::new();
    for (schema, field) in [
        ("NewUnit", "name"),
        ("NewDoor", "name"),
        ("NewSite", "name"),
        ("SiteFields", "address"),
        ("ProfileUpdate", "name"),
    ] {
        let pattern = doc["components"]["schemas"][schema]["properties"][field]["pattern"].as_str().expect(schema);
        patterns.push(pattern.to_owned());
    }
    patterns.dedup();
    assert_eq!(patterns.len(), 1, "one rule for every name");
    let pattern = regex::Regex::new(&patterns[0]).unwrap();
    for c in (0..=0xFFFFu32).filter_map(char::from_u32) {
        for text in [c.to_string(), format!("a{c}"), format!("{c}a"), format!("a{c}a")] {
            let server = porta_server::identity::check_name(&text, 100).is_ok();
            assert_eq!(pattern.is_match(&text), server, "U+{:04X} in {text:?}", c as u32);
        }
    }
}
