//! Device keys, door credentials, revocation, access-event ingest and the access log,
//! checked with the real protocol: credentials from the server are presented to simulated
//! locks provisioned from their own requests (keys born in the test, never sent), and their
//! audit records uploaded back; and the provisioning itself.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use porta_protocol::{
    AuditRecord, Credential, Decision, DenyReason, LockConfig, LockHandshake, LockState, PhoneHandshake, PhoneParams,
    ProtocolError, RevocationDelta, SigningKey, TimeUpdate, Updates, VerifyingKey,
};
use porta_server::clock::Clock;
use rand::rngs::OsRng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn demo() -> Harness {
    let h = harness_with(|c| c.demo = true).await;
    // The doors get their locks before any phone syncs.
    h.demo_locks().await;
    h
}

/// A signed-in phone: tokens plus the device key it enrolled.
struct Phone {
    token: String,
    session_id: String,
    key: SigningKey,
}

impl Harness {
    /// Signs in and enrolls a fresh device key.
    async fn phone(&self, identifier: &str) -> Phone {
        let tokens = self.sign_in(identifier).await;
        let session_id = token(&tokens, "session_id");
        let token = token(&tokens, "access_token");
        let key = new_key();
        let reply = self.enroll(&token, &session_id, &key).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["device_id"], session_id.as_str());
        Phone { token, session_id, key }
    }

    async fn locks(&self) -> BTreeMap<u32, SimLock> {
        self.demo_locks()
            .await
            .into_iter()
            .map(|l| (l.lock_id, SimLock { config: l.config(), state: LockState::new(), deltas: Vec::new() }))
            .collect()
    }

    async fn upload(&self, token: &str, records: &[Vec<u8>]) -> Reply {
        let events: Vec<Value> = records.iter().map(|r| json!({ "audit_record": b64(r) })).collect();
        self.post_auth("/v1/me/access-events", token, json!({ "events": events })).await
    }

    async fn access_log(&self, token: &str) -> Value {
        let reply = self.get_auth("/v1/me/access-log", token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }
}

fn verifying_key(value: &Value) -> VerifyingKey {
    let bytes: [u8; 32] = unb64(value).try_into().unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

struct SimLock {
    config: LockConfig,
    state: LockState,
    /// Revocation deltas the next phone delivers after its decision, as phones do.
    deltas: Vec<RevocationDelta>,
}

/// An access-event upload's answer with only stored and duplicate records.
fn ingested(accepted: usize, duplicates: usize) -> Value {
    json!({ "accepted": accepted, "duplicates": duplicates, "expired": 0, "implausible_time": 0 })
}

/// The credentials in a `/v1/me/doors` answer, verified against its authority key and
/// checked against the JSON summary next to each.
fn credentials(doors: &Value) -> Vec<Credential> {
    let authority = verifying_key(&doors["authority_public_key"]);
    doors["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let cred = Credential::from_bytes(&unb64(&c["credential"])).unwrap();
            cred.verify(&authority).expect("signed by the site authority");
            let listed: Vec<u32> = serde_json::from_value(c["doors"].clone()).unwrap();
            assert_eq!(cred.body.doors, listed);
            assert_eq!(cred.body.not_before as i64, c["not_before"].as_i64().unwrap());
            assert_eq!(cred.body.not_after as i64, c["not_after"].as_i64().unwrap());
            cred
        })
        .collect()
}

fn credential_for(doors: &Value, door: u32) -> Credential {
    credentials(doors).into_iter().find(|c| c.covers(door)).unwrap_or_else(|| panic!("no credential for door {door}"))
}

fn updates(doors: &Value) -> Updates {
    Updates { time: Some(TimeUpdate::from_bytes(&unb64(&doors["time_update"])).unwrap()) }
}

/// One full handshake between a phone and a simulated lock; returns the lock's decision
/// and the audit record bytes the phone got.
fn open(
    lock: &mut SimLock,
    doors: &Value,
    credential: Credential,
    device_key: &SigningKey,
    door_id: u32,
    now: i64,
    check: bool,
) -> Result<(Decision, Vec<u8>), ProtocolError> {
    let params = PhoneParams {
        credential,
        device_key: device_key.clone(),
        authority: verifying_key(&doors["authority_public_key"]),
        door_id,
        // The phone's clock is the server's at its last sync; `now` is the lock's.
        now: doors["server_time"].as_u64().unwrap(),
        // The door's lock on record, as the phone keeps it from its sync.
        lock_key: doors["doors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["door_id"] == door_id)
            .and_then(|d| d["lock_public_key"].as_str())
            .map(|k| unb64(&Value::from(k)).try_into().unwrap()),
        updates: updates(doors),
    };
    let (mut phone, hello) = if check {
        PhoneHandshake::start(params, &mut OsRng)?
    } else {
        PhoneHandshake::start_unchecked(params, &mut OsRng)?
    };
    let mut hs = LockHandshake::new();
    let challenge = hs.handle_hello(&lock.config, &mut lock.state, &hello, 0, &mut OsRng)?;
    let proof = phone.handle_challenge(&challenge)?;
    let out = hs.handle_proof(&lock.config, &mut lock.state, &proof, now as u64, 10)?;
    let outcome = phone.handle_result(&out.response)?;
    assert_eq!(outcome.decision, out.decision);
    if phone.accepts_updates() {
        for delta in std::mem::take(&mut lock.deltas) {
            let update = phone.update(&delta)?;
            let reply = hs.handle_update(&lock.config, &mut lock.state, &update, now as u64)?;
            phone.handle_update_ack(&reply.response)?;
        }
    }
    Ok((outcome.decision, outcome.audit.to_bytes()))
}

/// The usual case of [`open`]: the phone presents its credential for `door` at the lock of
/// the same id, checking it first, and the handshake must complete.
fn open_door(
    locks: &mut BTreeMap<u32, SimLock>,
    doors: &Value,
    key: &SigningKey,
    door: u32,
    now: i64,
) -> (Decision, Vec<u8>) {
    let lock = locks.get_mut(&door).expect("lock for door");
    open(lock, doors, credential_for(doors, door), key, door, now, true).expect("handshake")
}

#[tokio::test]
async fn enrollment_requires_proof_of_possession() {
    let h = demo().await;
    let tokens = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let access = token(&tokens, "access_token");
    let session_id = token(&tokens, "session_id");
    let key = new_key();
    let public = key.verifying_key().to_bytes();

    // Signed for another session: a replayed enrollment does not verify.
    let reply = h
        .post_auth(
            "/v1/me/device-key",
            &access,
            json!({
                "public_key": b64(public),
                "signature": b64(enroll_signature(&key, "another-session", &public)),
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_proof");

    // Signed by a different key than the one enrolled.
    let other = new_key();
    let reply = h
        .post_auth(
            "/v1/me/device-key",
            &access,
            json!({
                "public_key": b64(public),
                "signature": b64(enroll_signature(&other, &session_id, &public)),
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_proof");

    // Wrong lengths and bad base64 are malformed requests.
    let reply = h
        .post_auth("/v1/me/device-key", &access, json!({ "public_key": b64([1u8; 31]), "signature": b64([0u8; 64]) }))
        .await;
    assert_eq!(reply.code(), "invalid_request");
    let reply =
        h.post_auth("/v1/me/device-key", &access, json!({ "public_key": "***", "signature": b64([0u8; 64]) })).await;
    assert_eq!(reply.code(), "invalid_request");

    // Nothing was enrolled by the failures.
    let reply = h.get_auth("/v1/me/doors", &access).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);

    let reply = h.enroll(&access, &session_id, &key).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["device_id"], session_id.as_str());
    // Idempotent for the same key.
    let reply = h.enroll(&access, &session_id, &key).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["device_id"], session_id.as_str());
    // One key per session.
    let reply = h.enroll(&access, &session_id, &other).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "already_enrolled");
    // A key belongs to one session.
    let second = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let reply = h.enroll(&token(&second, "access_token"), &token(&second, "session_id"), &key).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "key_in_use");

    // Requires a session.
    let reply = h.post("/v1/me/device-key", json!({ "public_key": b64(public), "signature": b64([0u8; 64]) })).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn doors_need_an_enrolled_device_key() {
    let h = demo().await;
    let tokens = h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await;
    let reply = h.get_auth("/v1/me/doors", &token(&tokens, "access_token")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "device_not_enrolled");
    assert!(reply.body["message"].is_string());
}

#[tokio::test]
async fn credentials_bind_the_enrolled_key_and_only_granted_doors() {
    let h = demo().await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let doors = h.doors(&phone.token).await;

    assert_eq!(doors["site_name"], "Demo Building");
    assert_eq!(doors["server_time"], START);
    let listed: Vec<(u64, &str, u64, u64)> = doors["doors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["door_id"].as_u64().unwrap(),
                d["name"].as_str().unwrap(),
                d["lock_id"].as_u64().unwrap(),
                d["log_retention_days"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(1, "Main entrance", 1, 30), (2, "Bike room", 2, 90), (3, "Roof terrace", 3, 7)]);

    let creds = credentials(&doors);
    assert!(!creds.is_empty());
    let mut covered = BTreeSet::new();
    for c in &creds {
        assert_eq!(c.body.device_key, phone.key.verifying_key().to_bytes());
        assert_eq!(c.body.not_before as i64, START - 60);
        assert_eq!(c.body.not_after as i64, START + DAY, "short-lived");
        assert!(c.body.schedule.is_none());
        covered.extend(c.body.doors.iter().copied());
    }
    assert_eq!(covered, BTreeSet::from([1, 2, 3]));
    // The same authority certified the locks, and a credential really opens a door.
    let mut locks = h.locks().await;
    let authority = verifying_key(&doors["authority_public_key"]);
    for lock in locks.values() {
        assert_eq!(lock.config.authority(), &authority);
    }
    let (decision, _) = open_door(&mut locks, &doors, &phone.key, 1, START);
    assert_eq!(decision, Decision::Opened);
    // Another phone's key is not in the credential.
    let err =
        open(locks.get_mut(&1).unwrap(), &doors, credential_for(&doors, 1), &new_key(), 1, START, true).unwrap_err();
    assert_eq!(err, ProtocolError::DeviceKeyMismatch);

    // The signed updates verify too.
    let upd = updates(&doors);
    upd.time.unwrap().verify(&authority).unwrap();
    for delta in h.revocation_deltas(&phone.token, 0).await {
        delta.verify(&authority).unwrap();
        assert!(delta.to_version <= doors["revocation_version"].as_u64().unwrap());
    }
}

#[tokio::test]
async fn a_grant_for_one_door_covers_no_other() {
    let h = demo().await;
    h.grant(json!({ "identifier": "guest@example.com", "doors": [1] })).await;
    let phone = h.phone("guest@example.com").await;
    let doors = h.doors(&phone.token).await;
    let creds = credentials(&doors);
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].body.doors, vec![1]);
    assert_eq!(doors["doors"].as_array().unwrap().len(), 1);
    assert_eq!(doors["doors"][0]["door_id"], 1);

    let mut locks = h.locks().await;
    // The phone refuses locally, and a misbehaving phone is refused by the lock.
    let err = open(locks.get_mut(&2).unwrap(), &doors, creds[0].clone(), &phone.key, 2, START, true).unwrap_err();
    assert_eq!(err, ProtocolError::CredentialNotUsable(DenyReason::WrongDoor));
    let (decision, _) =
        open(locks.get_mut(&2).unwrap(), &doors, creds[0].clone(), &phone.key, 2, START, false).unwrap();
    assert_eq!(decision, Decision::Denied(DenyReason::WrongDoor));
    let (decision, _) = open(locks.get_mut(&1).unwrap(), &doors, creds[0].clone(), &phone.key, 1, START, true).unwrap();
    assert_eq!(decision, Decision::Opened);

    // Unknown doors cannot be granted.
    let reply = h.post("/v1/dev/grants", json!({ "identifier": "guest@example.com", "doors": [99] })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "unknown_door");
}

#[tokio::test]
async fn ended_and_distant_grants_give_no_credential() {
    let h = demo().await;
    let guest = "+4790000077";
    // Ended a second ago.
    h.grant(json!({ "identifier": guest, "doors": [1], "not_before": START - DAY, "not_after": START - 1 })).await;
    // Starts in two days.
    h.grant(json!({ "identifier": guest, "doors": [2], "not_before": START + 2 * DAY })).await;
    // Ends in ten minutes, weekdays 08:00-17:00 in UTC+1.
    let schedule = json!({ "utc_offset_minutes": 60, "windows": [
        { "days": 0b0011111, "start_minute": 480, "end_minute": 1020 } ] });
    h.grant(json!({ "identifier": guest, "doors": [3], "not_after": START + 600, "schedule": schedule })).await;

    let phone = h.phone(guest).await;
    let doors = h.doors(&phone.token).await;
    let creds = credentials(&doors);
    assert_eq!(creds.len(), 1, "{doors}");
    assert_eq!(creds[0].body.doors, vec![3]);
    assert_eq!(creds[0].body.not_after as i64, START + 600, "capped by the grant");
    let schedule = creds[0].body.schedule.as_ref().expect("schedule carried");
    assert_eq!(schedule.utc_offset_minutes, 60);
    assert_eq!(schedule.windows[0].days, 0b0011111);
    assert_eq!(schedule.windows[0].start_minute, 480);
    let listed: Vec<u64> = doors["doors"].as_array().unwrap().iter().map(|d| d["door_id"].as_u64().unwrap()).collect();
    assert_eq!(listed, [2, 3], "ended grants are left out");

    // Once the last grant ends, no credential at all.
    h.clock.advance(601);
    let doors = h.doors(&phone.token).await;
    assert!(credentials(&doors).is_empty(), "{doors}");

    // Invalid schedules are refused.
    let reply = h
        .post(
            "/v1/dev/grants",
            json!({ "identifier": guest, "doors": [1], "schedule": {
                "utc_offset_minutes": 0, "windows": [{ "days": 1, "start_minute": 600, "end_minute": 500 }] } }),
        )
        .await;
    assert_eq!(reply.code(), "invalid_schedule");
}

#[tokio::test]
async fn revoking_a_device_revokes_its_key_and_credentials() {
    let h = demo().await;
    let email = porta_server::DEMO_RESIDENT_EMAIL;
    let lost = h.phone(email).await;
    let lost_doors = h.doors(&lost.token).await;
    let lost_ids: BTreeSet<[u8; 16]> = credentials(&lost_doors).iter().map(|c| *c.id()).collect();
    let v1 = lost_doors["revocation_version"].as_u64().unwrap();

    let mine = h.phone(email).await;
    let reply = h.get_auth("/v1/me/devices", &mine.token).await;
    assert_eq!(reply.status, StatusCode::OK);
    let devices = reply.body.as_array().unwrap().clone();
    assert_eq!(devices.len(), 2);
    for d in &devices {
        assert_eq!(d["device_name"], "Test phone");
        assert!(d["created_at"].is_i64() && d["last_seen_at"].is_i64());
        assert_eq!(d["ip"], "127.0.0.1");
        assert_eq!(d["current"].as_bool().unwrap(), d["device_id"] == mine.session_id.as_str());
    }

    // Someone else cannot revoke my devices.
    let stranger = h.sign_in("stranger@example.com").await;
    let reply = h
        .call(
            Method::DELETE,
            &format!("/v1/me/devices/{}", lost.session_id),
            Some(&token(&stranger, "access_token")),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "not_found");

    let reply = h.call(Method::DELETE, &format!("/v1/me/devices/{}", lost.session_id), Some(&mine.token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    // The lost phone's session is dead.
    let reply = h.get_auth("/v1/me/doors", &lost.token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.get_auth("/v1/me/devices", &mine.token).await;
    assert_eq!(reply.body.as_array().unwrap().len(), 1);
    // Already gone.
    let reply = h.call(Method::DELETE, &format!("/v1/me/devices/{}", lost.session_id), Some(&mine.token), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // A newer delta carries the key: one entry for all its credentials.
    let doors = h.doors(&mine.token).await;
    let authority = verifying_key(&doors["authority_public_key"]);
    let deltas = h.revocation_deltas(&mine.token, v1).await;
    let v2 = doors["revocation_version"].as_u64().unwrap();
    assert!(v2 > v1, "{v2} > {v1}");
    assert_eq!(deltas.first().unwrap().from_version, v1);
    assert_eq!(deltas.last().unwrap().to_version, v2);
    let lost_key = lost.key.verifying_key().to_bytes();
    let revoked = deltas.iter().flat_map(|d| d.devices.iter()).find(|d| d.key == lost_key).expect("key revoked");
    let last_expiry = credentials(&lost_doors).iter().map(|c| c.body.not_after).max().unwrap();
    assert_eq!(revoked.expires, last_expiry, "listed until its last credential expires");
    for d in &deltas {
        d.verify(&authority).unwrap();
        assert!(d.credentials.is_empty(), "no per-credential entries for a revoked device");
    }
    assert!(!lost_ids.is_empty());

    // Delivered to a lock by my phone, after my own unlock, it locks the lost phone out.
    let mut locks = h.locks().await;
    locks.get_mut(&1).unwrap().deltas = h.revocation_deltas(&mine.token, 0).await;
    let (decision, _) = open_door(&mut locks, &doors, &mine.key, 1, START);
    assert_eq!(decision, Decision::Opened);
    assert_eq!(locks[&1].state.revocation_version, v2);
    let (decision, _) = open_door(&mut locks, &lost_doors, &lost.key, 1, START);
    assert_eq!(decision, Decision::Denied(DenyReason::Revoked));

    // Signing out does the same for that device.
    let reply = h.call(Method::POST, "/v1/auth/sign-out", Some(&mine.token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let third = h.phone(email).await;
    let doors = h.doors(&third.token).await;
    let v3 = doors["revocation_version"].as_u64().unwrap();
    assert!(v3 > v2);
    let (_, keys) = h.revoked(&third.token).await;
    assert!(keys.contains(&mine.key.verifying_key().to_bytes()));

    // Once the revoked credentials have expired the deltas no longer carry them.
    h.clock.advance(DAY + 1);
    let tokens = h.sign_in(email).await;
    let session_id = token(&tokens, "session_id");
    let access = token(&tokens, "access_token");
    h.enroll(&access, &session_id, &new_key()).await;
    let (ids, keys) = h.revoked(&access).await;
    assert!(ids.is_empty() && keys.is_empty());
}

#[tokio::test]
async fn access_event_ingest_is_idempotent_and_verified() {
    let h = demo().await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let doors = h.doors(&phone.token).await;
    let mut locks = h.locks().await;
    let (_, opened) = open_door(&mut locks, &doors, &phone.key, 1, START);
    // Presented two days later (the phone skips its own check): the lock refuses.
    let (decision, denied) =
        open(locks.get_mut(&2).unwrap(), &doors, credential_for(&doors, 2), &phone.key, 2, START + 2 * DAY, false)
            .unwrap();
    assert_eq!(decision, Decision::Denied(DenyReason::Expired));

    // Uploaded once the phone is back, two days on (a record from the future is refused).
    h.clock.advance(2 * DAY);
    let phone = Phone { token: token(&h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await, "access_token"), ..phone };
    let reply = h.upload(&phone.token, &[opened.clone(), denied.clone()]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, ingested(2, 0));
    let reply = h.upload(&phone.token, &[opened.clone(), denied.clone()]).await;
    assert_eq!(reply.body, ingested(0, 2));
    let log = h.access_log(&phone.token).await;
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{log}");
    // Newest first, at the lock's time.
    assert_eq!(events[0]["door_id"], 2);
    assert_eq!(events[0]["door_name"], "Bike room");
    assert_eq!(events[0]["decision"], "denied");
    assert_eq!(events[0]["reason"], "expired");
    assert_eq!(events[0]["at"], START + 2 * DAY);
    assert_eq!(events[1]["door_id"], 1);
    assert_eq!(events[1]["decision"], "opened");
    assert!(events[1].get("reason").is_none());
    assert_eq!(events[1]["at"], START);

    // A record signed by a key other than the lock's certified key is refused, and the
    // whole batch with it.
    let (_, fresh) = open_door(&mut locks, &doors, &phone.key, 1, START + 5);
    let fresh_record = AuditRecord::from_bytes(&fresh).unwrap();
    let forged = AuditRecord::sign(
        &new_key(),
        1,
        1,
        fresh_record.credential_id,
        (START + 6) as u64,
        Decision::Opened,
        fresh_record.counter + 1,
    );
    let reply = h.upload(&phone.token, &[fresh.clone(), forged.to_bytes()]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "invalid_record");
    // Tampering with a genuine record breaks its signature too.
    let mut tampered = fresh.clone();
    tampered[33] = 0; // decision byte
    tampered[25] ^= 1; // time
    let reply = h.upload(&phone.token, &[tampered]).await;
    assert_eq!(reply.code(), "invalid_record");
    for junk in [vec![1u8; 10], Vec::new()] {
        let reply = h.upload(&phone.token, &[junk]).await;
        assert_eq!(reply.code(), "invalid_record");
    }
    let reply = h
        .post_auth("/v1/me/access-events", &phone.token, json!({ "events": [{ "audit_record": "not base64!" }] }))
        .await;
    assert_eq!(reply.code(), "invalid_record");
    assert_eq!(h.access_log(&phone.token).await["events"].as_array().unwrap().len(), 2);

    // The genuine record alone goes through; within one batch a repeat is a duplicate.
    let reply = h.upload(&phone.token, &[fresh.clone(), fresh.clone()]).await;
    assert_eq!(reply.body, ingested(1, 1));

    // At most 500 per batch; a full batch fits the body limit.
    let reply = h.upload(&phone.token, &vec![fresh.clone(); 501]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "too_many_events");
    let reply = h.upload(&phone.token, &vec![fresh; 500]).await;
    assert_eq!(reply.body, ingested(0, 500));

    // Requires a session.
    let reply = h.post("/v1/me/access-events", json!({ "events": [] })).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn access_log_shows_only_the_callers_own_events() {
    let h = demo().await;
    let ada = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    h.grant(json!({ "identifier": "bob@example.com", "doors": [2] })).await;
    let bob = h.phone("bob@example.com").await;
    let ada_doors = h.doors(&ada.token).await;
    let bob_doors = h.doors(&bob.token).await;
    let mut locks = h.locks().await;
    let (_, ada_record) = open_door(&mut locks, &ada_doors, &ada.key, 1, START);
    let (_, bob_record) = open_door(&mut locks, &bob_doors, &bob.key, 2, START);

    // Ada's phone carries both records (Bob's audit went through her phone somehow):
    // each is attributed to its credential's owner, not the uploader.
    let reply = h.upload(&ada.token, &[ada_record, bob_record]).await;
    assert_eq!(reply.body, ingested(2, 0));

    let ada_log = h.access_log(&ada.token).await;
    let events = ada_log["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{ada_log}");
    assert_eq!(events[0]["door_id"], 1);
    let bob_log = h.access_log(&bob.token).await;
    let events = bob_log["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{bob_log}");
    assert_eq!(events[0]["door_id"], 2);
    assert_eq!(events[0]["decision"], "opened");
    assert_eq!(bob_log["retention"], json!([{ "door_id": 2, "door_name": "Bike room", "retention_days": 90 }]));

    // A third user sees nothing.
    let carol = h.sign_in("carol@example.com").await;
    let log = h.access_log(&token(&carol, "access_token")).await;
    assert_eq!(log, json!({ "events": [], "retention": [] }));
}

#[tokio::test]
async fn events_past_their_doors_retention_are_purged() {
    let h = demo().await;
    let email = porta_server::DEMO_RESIDENT_EMAIL;
    let tokens = h.sign_in(email).await;
    let access = token(&tokens, "access_token");
    let key = new_key();
    h.enroll(&access, &token(&tokens, "session_id"), &key).await;
    let doors = h.doors(&access).await;
    let mut locks = h.locks().await;
    let mut records = Vec::new();
    for door in [1u32, 3] {
        let (_, r) = open_door(&mut locks, &doors, &key, door, START);
        records.push(r);
    }
    let reply = h.upload(&access, &records).await;
    assert_eq!(reply.body["accepted"], 2);
    let log = h.access_log(&access).await;
    assert_eq!(log["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        log["retention"],
        json!([
            { "door_id": 1, "door_name": "Main entrance", "retention_days": 30 },
            { "door_id": 2, "door_name": "Bike room", "retention_days": 90 },
            { "door_id": 3, "door_name": "Roof terrace", "retention_days": 7 },
        ])
    );

    // The purge the hourly task runs: 8 days on, the roof terrace (7 days) event is gone.
    let access_store = &h.server.purge().access;
    assert_eq!(access_store.purge_expired(START + 7 * DAY).await.unwrap(), 0);
    assert_eq!(access_store.purge_expired(START + 8 * DAY).await.unwrap(), 1);
    let log = h.access_log(&access).await;
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{log}");
    assert_eq!(events[0]["door_id"], 1);

    // Reading the log (and ingesting) purges too: 31 days on, nothing is left.
    h.clock.advance(31 * DAY);
    let access = token(&h.sign_in(email).await, "access_token");
    let log = h.access_log(&access).await;
    assert_eq!(log["events"], json!([]), "{log}");
    // An old record uploaded late is dropped as expired: it would not outlive its retention.
    let reply = h.upload(&access, &records).await;
    assert_eq!(reply.body, json!({ "accepted": 0, "duplicates": 0, "expired": 2, "implausible_time": 0 }));
    assert_eq!(h.access_log(&access).await["events"], json!([]));
}

#[tokio::test]
async fn time_update_sequence_increases() {
    let h = demo().await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let first = h.doors(&phone.token).await;
    h.clock.advance(30);
    let second = h.doors(&phone.token).await;
    let authority = verifying_key(&first["authority_public_key"]);
    let a = TimeUpdate::from_bytes(&unb64(&first["time_update"])).unwrap();
    let b = TimeUpdate::from_bytes(&unb64(&second["time_update"])).unwrap();
    a.verify(&authority).unwrap();
    b.verify(&authority).unwrap();
    assert_eq!((a.lock_id, b.lock_id), (0, 0), "for every lock");
    assert_eq!(a.unix_time as i64, START);
    assert_eq!(b.unix_time as i64, START + 30);
    assert!(b.sequence > a.sequence, "{} > {}", b.sequence, a.sequence);
    // The credentials, still good for long, are the same ones again.
    assert_eq!(first["credentials"], second["credentials"]);

    // A lock applies it: its trusted time moves forward.
    let mut locks = h.locks().await;
    let lock = locks.get_mut(&1).unwrap();
    // A lock without a real-time clock (0) relies on the carried time alone.
    let (decision, _) = open(lock, &second, credential_for(&second, 1), &phone.key, 1, 0, false).unwrap();
    assert_eq!(decision, Decision::Opened);
    assert_eq!(lock.state.trusted_time as i64, START + 30);
    assert_eq!(lock.state.time_sequence, b.sequence);
}

#[tokio::test]
async fn dev_unlock_helpers_are_absent_without_dev_mode() {
    let h = harness_with(|c| {
        c.demo = true;
        c.dev_outbox = false;
    })
    .await;
    let reply = h.post("/v1/dev/grants", json!({ "identifier": "x@example.com", "doors": [1] })).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

/// A demo harness whose access tokens outlive the test, so one phone can sync for hours.
async fn demo_long_sessions(tweak: impl FnOnce(&mut porta_server::Config)) -> Harness {
    let h = harness_with(|c| {
        c.demo = true;
        c.limits.access_ttl_s = 7 * DAY;
        tweak(c);
    })
    .await;
    h.demo_locks().await;
    h
}

async fn revoked_credential_rows(h: &Harness) -> i64 {
    h.count("SELECT COUNT(*) FROM revoked_credentials").await
}

#[tokio::test]
async fn quick_syncs_reuse_the_credential_and_sign_out_revokes_only_its_key() {
    let h = demo_long_sessions(|_| {}).await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let first = h.doors(&phone.token).await;
    let mut ids = BTreeSet::new();
    for _ in 0..270 {
        h.clock.advance(10);
        let doors = h.doors(&phone.token).await;
        // The very same credentials: same ids, same bytes, same window.
        assert_eq!(doors["credentials"], first["credentials"]);
        ids.extend(credentials(&doors).iter().map(|c| *c.id()));
    }
    assert_eq!(ids.len(), credentials(&first).len(), "{} distinct credentials", ids.len());
    // Still opens the door 45 minutes on.
    let mut locks = h.locks().await;
    let (decision, _) = open_door(&mut locks, &first, &phone.key, 1, START + 2700);
    assert_eq!(decision, Decision::Opened);

    let reply = h.call(Method::POST, "/v1/auth/sign-out", Some(&phone.token), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    // One entry for the device key covers every credential it synced.
    assert_eq!(revoked_credential_rows(&h).await, 0, "no per-credential entries for a signed-out device");
    let (_, keys) = h.revoked(&h.phone(porta_server::DEMO_RESIDENT_EMAIL).await.token).await;
    assert_eq!(keys, vec![phone.key.verifying_key().to_bytes()]);
}

#[tokio::test]
async fn a_credential_is_renewed_once_half_its_life_is_used() {
    let h = demo_long_sessions(|_| {}).await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let first = credential_for(&h.doors(&phone.token).await, 1);
    h.clock.advance(DAY / 2 - 60);
    assert_eq!(credential_for(&h.doors(&phone.token).await, 1), first, "more than half its life left");
    h.clock.advance(120);
    let renewed = credential_for(&h.doors(&phone.token).await, 1);
    assert_ne!(renewed.id(), first.id());
    assert_eq!(renewed.body.not_after as i64, h.clock.now() + DAY);
    assert_eq!(renewed.body.device_key, phone.key.verifying_key().to_bytes());

    // A grant ending soon: a new credential could not last longer, so the one issued stays.
    let guest = "+4790000088";
    h.grant(json!({ "identifier": guest, "doors": [2], "not_after": h.clock.now() + 600 })).await;
    let guest_phone = h.phone(guest).await;
    let short = credential_for(&h.doors(&guest_phone.token).await, 2);
    h.clock.advance(500);
    assert_eq!(credential_for(&h.doors(&guest_phone.token).await, 2), short);
}

#[tokio::test]
async fn new_credentials_are_rate_limited_per_device() {
    let h = demo_long_sessions(|c| c.limits.credential_issues_per_hour = 3).await;
    let guest = "guest@example.com";
    // Every grant with its own schedule needs a credential of its own.
    let grant = |start_minute: u16| {
        json!({ "identifier": guest, "doors": [1], "schedule": { "utc_offset_minutes": 0, "windows": [
            { "days": 0b1111111, "start_minute": start_minute, "end_minute": 1440 } ] } })
    };
    h.grant(grant(0)).await;
    let phone = h.phone(guest).await;
    assert_eq!(credentials(&h.doors(&phone.token).await).len(), 1);
    for minute in [1, 2] {
        h.clock.advance(60);
        h.grant(grant(minute)).await;
        assert_eq!(credentials(&h.doors(&phone.token).await).len(), minute as usize + 1);
    }
    h.clock.advance(60);
    h.grant(grant(3)).await;
    let reply = h.get_auth("/v1/me/doors", &phone.token).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", reply.body);
    assert_eq!(reply.code(), "rate_limited");
    // The first issuance (3 minutes ago) leaves the hour in 57 minutes.
    assert_eq!(reply.body["retry_after_s"], 3600 - 180);
    assert_eq!(reply.headers["retry-after"], "3420");

    // An hour after the first issuance the new grant's credential comes.
    h.clock.advance(3600 - 180);
    let doors = h.doors(&phone.token).await;
    assert_eq!(credentials(&doors).len(), 4);
}

#[tokio::test]
async fn a_record_dated_in_the_future_is_refused_and_never_listed() {
    let h = demo().await;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let doors = h.doors(&phone.token).await;
    let mut locks = h.locks().await;
    let (_, genuine) = open_door(&mut locks, &doors, &phone.key, 1, START);
    let counter = AuditRecord::from_bytes(&genuine).unwrap().counter;
    let credential_id = *credential_for(&doors, 1).id();

    // Properly signed by lock 1's own key, but dated 2100 or just too far ahead.
    let lock_key = h.demo_locks().await[0].key.clone();
    let sign = |time: i64, counter: u64| {
        AuditRecord::sign(&lock_key, 1, 1, credential_id, time as u64, Decision::Opened, counter).to_bytes()
    };
    let in_2100 = sign(4_102_444_800, counter + 1);
    let six_minutes_ahead = sign(START + 360, counter + 2);
    let slightly_ahead = sign(START + 240, counter + 3);

    let reply = h.upload(&phone.token, &[genuine, in_2100, six_minutes_ahead, slightly_ahead]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({ "accepted": 2, "duplicates": 0, "expired": 0, "implausible_time": 2 }));
    let log = h.access_log(&phone.token).await;
    let times: Vec<i64> = log["events"].as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert_eq!(times, [START + 240, START], "{log}");

    // Not stored at all: uploading it later again is refused again, not a duplicate.
    h.clock.advance(600);
    let reply = h.upload(&phone.token, &[sign(4_102_444_800, counter + 1)]).await;
    assert_eq!(reply.body["implausible_time"], 1, "{:?}", reply.body);

    // One stored before uploads were bounded would never have expired: migration 11 removed
    // those (server/src/db.rs tests), so the purge need not look for them.
}

/// The door's lock id and lock public key (base64) from a sync.
fn synced_lock(doors: &Value, door: u32) -> (Value, Value) {
    let d = doors["doors"].as_array().unwrap().iter().find(|d| d["door_id"] == door).expect("door").clone();
    (d["lock_id"].clone(), d["lock_public_key"].clone())
}

fn sim(lock: &TestLock) -> SimLock {
    SimLock { config: lock.config(), state: LockState::new(), deltas: Vec::new() }
}

/// A lock whose key was born in it, provisioned from its own request, opens for a granted
/// resident; once the door's lock is replaced, the phone refuses the old one (its certificate
/// revoked) at its next sync, and it refuses a lock presenting another door's certificate. A
/// decommissioned door has no lock at all.
#[tokio::test]
async fn a_lock_provisioned_from_its_own_request_opens_and_is_refused_once_replaced() {
    let h = harness_with(|c| c.demo = true).await;
    let admin = token(&h.sign_in(porta_server::DEMO_ADMIN_EMAIL).await, "access_token");
    let site = porta_server::DEMO_SITE_ID;
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let before = h.doors(&phone.token).await;
    assert_eq!(synced_lock(&before, 1), (Value::Null, Value::Null), "no lock yet, nothing to open");

    let first = h.provision_lock(&admin, site, 1).await;
    let shown = h.get_auth(&format!("/v1/admin/sites/{site}/doors/1/lock"), &admin).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.body["lock_id"], first.lock_id);
    assert_eq!(shown.body["lock_public_key"], b64(first.key.verifying_key().to_bytes()));
    let listed = h.get_auth(&format!("/v1/admin/sites/{site}/doors"), &admin).await;
    assert_eq!(listed.body[0]["lock_id"], first.lock_id);
    let cert = porta_protocol::LockCertificate::from_bytes(&first.certificate).unwrap();
    assert_eq!(cert.not_after - cert.not_before, 1825 * DAY as u32, "five years by default");

    let doors = h.doors(&phone.token).await;
    assert_eq!(synced_lock(&doors, 1), (json!(first.lock_id), json!(b64(first.key.verifying_key().to_bytes()))));
    let mut old = sim(&first);
    let (decision, _) = open(&mut old, &doors, credential_for(&doors, 1), &phone.key, 1, START, true).unwrap();
    assert_eq!(decision, Decision::Opened);

    // The lock is replaced: the old certificate is revoked with it.
    let replacement = h.provision_lock(&admin, site, 1).await;
    assert_ne!(replacement.lock_id, first.lock_id);
    let shown = h.get_auth(&format!("/v1/admin/sites/{site}/doors/1/lock"), &admin).await;
    assert_eq!(shown.body["lock_id"], replacement.lock_id);
    let doors = h.doors(&phone.token).await;
    // Still validly signed by the site, but not the door's lock any more.
    let refused = open(&mut old, &doors, credential_for(&doors, 1), &phone.key, 1, START, true);
    assert_eq!(refused.unwrap_err(), ProtocolError::LockNotCurrent);
    let (decision, _) =
        open(&mut sim(&replacement), &doors, credential_for(&doors, 1), &phone.key, 1, START, true).unwrap();
    assert_eq!(decision, Decision::Opened);

    // What the old lock signs from now on is not taken: it may be in anyone's hands. What it
    // signed before its revocation still is, from phones that met it then.
    let record = |at: i64, counter: u64| {
        AuditRecord::sign(
            &first.key,
            first.lock_id,
            1,
            [0; 16],
            at as u64,
            Decision::Denied(DenyReason::Revoked),
            counter,
        )
        .to_bytes()
    };
    h.clock.advance(120);
    let reply = h.upload(&phone.token, &[record(START + 60, 7)]).await;
    assert_eq!(reply.body["implausible_time"], 1, "{:?}", reply.body);
    assert_eq!(reply.body["accepted"], 0);
    let reply = h.upload(&phone.token, &[record(START - 60, 8)]).await;
    assert_eq!(reply.body["accepted"], 1, "{:?}", reply.body);

    // A lock certified for door 2, answering for door 1.
    let other = h.provision_lock(&admin, site, 2).await;
    let doors = h.doors(&phone.token).await;
    let refused = open(&mut sim(&other), &doors, credential_for(&doors, 1), &phone.key, 1, START, true);
    assert_eq!(refused.unwrap_err(), ProtocolError::DoorNotControlled);

    // Decommissioned: the door has no lock; the lock is refused like a replaced one.
    let path = format!("/v1/admin/sites/{site}/doors/1/lock");
    assert_eq!(h.call(Method::DELETE, &path, Some(&admin), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.call(Method::DELETE, &path, Some(&admin), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(h.get_auth(&path, &admin).await.status, StatusCode::NOT_FOUND);
    let doors = h.doors(&phone.token).await;
    assert_eq!(synced_lock(&doors, 1), (Value::Null, Value::Null));

    let log = h.get_auth(&format!("/v1/admin/sites/{site}/security-events"), &admin).await;
    let events: Vec<(&str, &str, &str)> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("lock_"))
        .map(|e| (e["kind"].as_str().unwrap(), e["subject"].as_str().unwrap(), e["detail"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        events,
        [
            ("lock_revoked", "1", "decommissioned"),
            ("lock_provisioned", "2", ""),
            ("lock_provisioned", "1", ""),
            ("lock_revoked", "1", "replaced"),
            ("lock_provisioned", "1", ""),
        ],
        "newest first"
    );
}

/// The request must be the lock's own (signed by the key it names), the key new to the site,
/// and the validity within bounds; nobody but the site's admin may submit it.
#[tokio::test]
async fn a_provisioning_request_must_be_signed_by_its_key_and_a_key_is_certified_once() {
    let h = harness_with(|c| c.demo = true).await;
    let admin = token(&h.sign_in(porta_server::DEMO_ADMIN_EMAIL).await, "access_token");
    let site = porta_server::DEMO_SITE_ID;
    let post = |door: u32, body: Value| {
        let h = &h;
        let admin = admin.clone();
        async move { h.post_auth(&format!("/v1/admin/sites/{site}/doors/{door}/lock"), &admin, body).await }
    };
    let key = new_key();
    let request = porta_protocol::ProvisioningRequest::sign(&key, &mut OsRng);
    let bytes = request.to_bytes();

    for bad in ["not base64!", "AAAA", &b64(&bytes[..100])] {
        let reply = post(1, json!({ "request": bad })).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{bad}");
    }
    let mut tampered = bytes.clone();
    tampered[60] ^= 1;
    let reply = post(1, json!({ "request": b64(&tampered) })).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_lock_request"));
    // Someone else's key in a request signed by another: not proof of holding it.
    let mut swapped = request.clone();
    swapped.lock_key = new_key().verifying_key().to_bytes();
    let reply = post(1, json!({ "request": b64(swapped.to_bytes()) })).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_lock_request"));
    for days in [0, 3651] {
        let reply = post(1, json!({ "request": b64(&bytes), "valid_days": days })).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_request"), "{days} days");
    }
    assert_eq!(post(99, json!({ "request": b64(&bytes) })).await.status, StatusCode::NOT_FOUND);
    let resident = token(&h.sign_in(porta_server::DEMO_RESIDENT_EMAIL).await, "access_token");
    let reply = h
        .post_auth(&format!("/v1/admin/sites/{site}/doors/1/lock"), &resident, json!({ "request": b64(&bytes) }))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let listed = h.get_auth(&format!("/v1/admin/sites/{site}/doors"), &admin).await;
    assert!(listed.body.as_array().unwrap().iter().all(|d| d["lock_id"].is_null()), "nothing refused was installed");

    // Accepted once, with the validity asked for (the whitespace of a pasted file is fine).
    let reply = post(1, json!({ "request": format!("{}\n", b64(&bytes)), "valid_days": 30 })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["not_after"].as_u64().unwrap() - reply.body["not_before"].as_u64().unwrap(), 30 * 86_400);
    assert_eq!(reply.body["not_before"], START);
    assert_eq!(reply.body["replaced_lock_id"], Value::Null);
    // The same key again, for this door or another, even in a fresh request: refused.
    let again = porta_protocol::ProvisioningRequest::sign(&key, &mut OsRng);
    for door in [1, 2] {
        let reply = post(door, json!({ "request": b64(again.to_bytes()) })).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::CONFLICT, "lock_key_in_use"), "door {door}");
    }
}

/// The server never holds a lock's private key: after provisioning and replacing locks, no
/// byte sequence of any of their keys is anywhere in the database files, while their public
/// keys are (so the scan does see what is stored).
#[tokio::test]
async fn no_lock_private_key_is_in_the_server_database() {
    let h = demo().await;
    let admin = token(&h.sign_in(porta_server::DEMO_ADMIN_EMAIL).await, "access_token");
    let mut locks = h.demo_locks().await;
    locks.push(h.provision_lock(&admin, porta_server::DEMO_SITE_ID, 1).await);
    let phone = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    h.doors(&phone.token).await;

    // On SQLite, the raw files (free pages and the WAL too); on PostgreSQL, every stored value.
    let mut files = Vec::new();
    match backend() {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm"] {
                let path = format!("{}{suffix}", h.db_path.display());
                if let Ok(bytes) = std::fs::read(&path) {
                    files.push((path, bytes));
                }
            }
        }
        Backend::Postgres => {
            for table in h.tables().await {
                for value in h.query(&format!("SELECT * FROM \"{table}\"")).await.into_iter().flatten() {
                    match value {
                        Stored::Blob(b) => files.push((table.clone(), b)),
                        Stored::Text(t) => files.push((table.clone(), t.into_bytes())),
                        _ => {}
                    }
                }
            }
        }
    }
    assert!(!files.is_empty());
    let contains = |needle: &[u8]| files.iter().any(|(_, b)| b.windows(needle.len()).any(|w| w == needle));
    for lock in &locks {
        assert!(contains(&lock.key.verifying_key().to_bytes()), "the public key is stored");
        let secret = lock.key.to_bytes();
        assert!(!contains(&secret), "lock {}'s private key is in the database", lock.lock_id);
        // Nor any 16-byte run of it.
        for run in secret.windows(16) {
            assert!(!contains(run), "part of lock {}'s private key is in the database", lock.lock_id);
        }
    }
    let columns = h.columns("locks").await;
    assert!(!columns.is_empty());
    assert!(!columns.iter().any(|c| c.contains("secret") || c.contains("private")), "{columns:?}");
}
