//! Deterministic test vectors in `vectors/*.json`.
//!
//! `cargo test -p porta-protocol --test vectors` checks that the implementation
//! reproduces every vector byte for byte in both directions. To regenerate after an
//! intentional format change:
//!
//! ```sh
//! PORTA_REGEN_VECTORS=1 cargo test -p porta-protocol --test vectors -- --ignored
//! ```

mod common;

use std::path::PathBuf;

use common::BytesRng;
use porta_protocol::wire;
use porta_protocol::*;
use serde_json::{json, Value};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn h(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().expect("length")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

fn decision_json(d: Decision) -> Value {
    match d {
        Decision::Opened => json!("Opened"),
        Decision::Denied(r) => json!({ "Denied": format!("{r:?}") }),
    }
}

/// (from, to, revoked credential ids, revoked device keys) of a delta delivered after the
/// decision; every entry expires at [`DELTA_EXPIRES`].
type Delta = (u64, u64, Vec<[u8; 16]>, Vec<[u8; 32]>);
const DELTA_EXPIRES: u64 = 1_752_000_000;
/// Validity of the vectors' lock certificate (2024-01-01 to 2030-01-01 UTC).
const CERT_NOT_BEFORE: u32 = 1_704_067_200;
const CERT_NOT_AFTER: u32 = 1_893_456_000;

fn issue_delta(authority: &SigningKey, (from, to, ids, keys): &Delta) -> RevocationDelta {
    RevocationDelta::issue(
        authority,
        *from,
        *to,
        ids.iter().map(|&id| RevokedCredential { id, expires: DELTA_EXPIRES }).collect(),
        keys.iter().map(|&key| RevokedDevice { key, expires: DELTA_EXPIRES }).collect(),
    )
    .unwrap()
}

/// The inputs of one handshake vector (everything else is derived).
#[derive(Clone)]
struct Inputs {
    description: String,
    authority_seed: [u8; 32],
    lock_seed: [u8; 32],
    device_seed: [u8; 32],
    lock_id: LockId,
    lock_doors: Vec<DoorId>,
    credential: Value, // credential_id, doors, not_before, not_after, schedule
    door_id: DoorId,
    phone_now: u64,
    time_update: Option<(LockId, u64, u64)>,
    deltas: Vec<Delta>,
    phone_random: Vec<u8>,
    lock_random: Vec<u8>,
    lock_state_before: LockState,
    lock_now_unix: u64,
    hello_received_ms: u64,
    proof_received_ms: u64,
}

fn credential_body(v: &Value, device_key: [u8; 32]) -> CredentialBody {
    let schedule = if v["schedule"].is_null() {
        None
    } else {
        Some(WeeklySchedule {
            utc_offset_minutes: v["schedule"]["utc_offset_minutes"].as_i64().unwrap() as i16,
            windows: v["schedule"]["windows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| TimeWindow {
                    days: u(&w["days"]) as u8,
                    start_minute: u(&w["start_minute"]) as u16,
                    end_minute: u(&w["end_minute"]) as u16,
                })
                .collect(),
        })
    };
    CredentialBody {
        credential_id: arr(&v["credential_id"]),
        device_key,
        doors: v["doors"].as_array().unwrap().iter().map(|d| u(d) as u32).collect(),
        not_before: u(&v["not_before"]),
        not_after: u(&v["not_after"]),
        schedule,
    }
}

fn inputs_to_json(i: &Inputs) -> Value {
    json!({
        "description": i.description,
        "authority_seed": h(&i.authority_seed),
        "lock_seed": h(&i.lock_seed),
        "device_seed": h(&i.device_seed),
        "lock_id": i.lock_id,
        "lock_doors": i.lock_doors,
        "credential": i.credential,
        "door_id": i.door_id,
        "phone_now": i.phone_now,
        "time_update": i.time_update.map(|(l, t, s)| json!({"lock_id": l, "unix_time": t, "sequence": s})),
        "revocation_deltas": i.deltas.iter().map(|(from, to, c, d)| json!({
            "from_version": from,
            "to_version": to,
            "credential_ids": c.iter().map(|x| h(x)).collect::<Vec<_>>(),
            "device_keys": d.iter().map(|x| h(x)).collect::<Vec<_>>(),
            "expires": DELTA_EXPIRES,
        })).collect::<Vec<_>>(),
        "phone_random": h(&i.phone_random),
        "lock_random": h(&i.lock_random),
        "lock_state_before": h(&i.lock_state_before.to_bytes()),
        "lock_now_unix": i.lock_now_unix,
        "hello_received_ms": i.hello_received_ms,
        "proof_received_ms": i.proof_received_ms,
    })
}

fn inputs_from_json(v: &Value) -> Inputs {
    Inputs {
        description: v["description"].as_str().unwrap().to_string(),
        authority_seed: arr(&v["authority_seed"]),
        lock_seed: arr(&v["lock_seed"]),
        device_seed: arr(&v["device_seed"]),
        lock_id: u(&v["lock_id"]) as u32,
        lock_doors: v["lock_doors"].as_array().unwrap().iter().map(|d| u(d) as u32).collect(),
        credential: v["credential"].clone(),
        door_id: u(&v["door_id"]) as u32,
        phone_now: u(&v["phone_now"]),
        time_update: (!v["time_update"].is_null()).then(|| {
            let t = &v["time_update"];
            (u(&t["lock_id"]) as u32, u(&t["unix_time"]), u(&t["sequence"]))
        }),
        deltas: v["revocation_deltas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(u(&r["expires"]), DELTA_EXPIRES);
                (
                    u(&r["from_version"]),
                    u(&r["to_version"]),
                    r["credential_ids"].as_array().unwrap().iter().map(arr).collect(),
                    r["device_keys"].as_array().unwrap().iter().map(arr).collect(),
                )
            })
            .collect(),
        phone_random: unhex(&v["phone_random"]),
        lock_random: unhex(&v["lock_random"]),
        lock_state_before: LockState::from_bytes(&unhex(&v["lock_state_before"])).unwrap(),
        lock_now_unix: u(&v["lock_now_unix"]),
        hello_received_ms: u(&v["hello_received_ms"]),
        proof_received_ms: u(&v["proof_received_ms"]),
    }
}

struct Derived {
    config: LockConfig,
    params: PhoneParams,
    credential: Credential,
    deltas: Vec<RevocationDelta>,
}

fn derive(i: &Inputs) -> Derived {
    let authority = SigningKey::from_bytes(&i.authority_seed);
    let lock_key = SigningKey::from_bytes(&i.lock_seed);
    let device = SigningKey::from_bytes(&i.device_seed);
    let cert = LockCertificate::issue(
        &authority,
        i.lock_id,
        lock_key.verifying_key().to_bytes(),
        i.lock_doors.clone(),
        CERT_NOT_BEFORE,
        CERT_NOT_AFTER,
    )
    .unwrap();
    let lock_public = lock_key.verifying_key().to_bytes();
    let config = LockConfig::new(lock_key, cert, authority.verifying_key()).unwrap();
    let credential =
        Credential::issue(&authority, credential_body(&i.credential, device.verifying_key().to_bytes())).unwrap();
    let updates = Updates { time: i.time_update.map(|(l, t, s)| TimeUpdate::issue(&authority, l, t, s)) };
    let deltas = i.deltas.iter().map(|d| issue_delta(&authority, d)).collect();
    let params = PhoneParams {
        credential: credential.clone(),
        device_key: device,
        authority: authority.verifying_key(),
        door_id: i.door_id,
        now: i.phone_now,
        lock_key: Some(lock_public),
        updates,
    };
    Derived { config, params, credential, deltas }
}

/// Runs the handshake from the inputs and returns the complete vector.
fn build(i: &Inputs) -> Value {
    let d = derive(i);
    let (mut phone, hello) = PhoneHandshake::start(d.params.clone(), &mut BytesRng(i.phone_random.clone())).unwrap();
    let mut state = i.lock_state_before.clone();
    let mut lock = LockHandshake::new();
    let challenge = lock
        .handle_hello(&d.config, &mut state, &hello, i.hello_received_ms, &mut BytesRng(i.lock_random.clone()))
        .unwrap();
    let proof = phone.handle_challenge(&challenge).unwrap();
    let out = lock.handle_proof(&d.config, &mut state, &proof, i.lock_now_unix, i.proof_received_ms).unwrap();
    let phone_out = phone.handle_result(&out.response).unwrap();
    assert_eq!(phone_out.decision, out.decision);
    let (mut updates, mut acks) = (Vec::new(), Vec::new());
    for delta in &d.deltas {
        let update = phone.update(delta).unwrap();
        let ack = lock.handle_update(&d.config, &mut state, &update, i.lock_now_unix).unwrap();
        phone.handle_update_ack(&ack.response).unwrap();
        updates.push(h(&update));
        acks.push(h(&ack.response));
    }
    let frags = |m: &[u8]| -> Vec<Value> { wire::fragment(m, 23).unwrap().iter().map(|f| h(f)).collect() };
    json!({
        "inputs": inputs_to_json(i),
        "derived": {
            "authority_public_key": h(d.config.authority().as_bytes()),
            "lock_public_key": h(&d.config.certificate().lock_key),
            "device_public_key": h(&d.params.device_key.verifying_key().to_bytes()),
            "credential": h(&d.credential.to_bytes()),
            "lock_certificate": h(&d.config.certificate().to_bytes()),
            "time_update": d.params.updates.time.as_ref().map(|t| h(&t.to_bytes())),
            "revocation_deltas": d.deltas.iter().map(|r| h(&r.to_bytes())).collect::<Vec<_>>(),
        },
        "messages": {
            "hello": h(&hello),
            "challenge": h(&challenge),
            "proof": h(&proof),
            "result": h(&out.response),
            "updates": updates,
            "update_acks": acks,
        },
        "fragments_mtu23": {
            "hello": frags(&hello),
            "challenge": frags(&challenge),
            "proof": frags(&proof),
            "result": frags(&out.response),
        },
        "decision": decision_json(out.decision),
        "audit_record": h(&out.audit.to_bytes()),
        "lock_state_after": h(&state.to_bytes()),
    })
}

fn base_inputs() -> Inputs {
    Inputs {
        description: String::new(),
        authority_seed: [0xA1; 32],
        lock_seed: [0xB2; 32],
        device_seed: [0xC3; 32],
        lock_id: 7,
        lock_doors: vec![100, 101],
        credential: json!({
            "credential_id": "00112233445566778899aabbccddeeff",
            "doors": [100, 102],
            "not_before": 1_749_000_000u64,
            "not_after": 1_752_000_000u64,
            "schedule": {
                "utc_offset_minutes": 120,
                "windows": [
                    {"days": 0b0001_1111, "start_minute": 420, "end_minute": 1320},
                    {"days": 0b0110_0000, "start_minute": 600, "end_minute": 1200},
                ],
            },
        }),
        door_id: 100,
        phone_now: 1_750_000_000,
        time_update: Some((0, 1_749_999_000, 42)),
        deltas: Vec::new(),
        phone_random: (0u8..48).collect(),
        lock_random: (0u8..48).map(|b| 0x80 | b).collect(),
        lock_state_before: LockState {
            trusted_time: 1_749_990_000,
            time_sequence: 41,
            revocation_version: 3,
            attempt_counter: 99,
            audit_counter: 1234,
            ..LockState::new()
        },
        lock_now_unix: 1_750_000_000,
        hello_received_ms: 10_000,
        proof_received_ms: 10_180,
    }
}

fn cases() -> Vec<(&'static str, Inputs)> {
    let mut opened = base_inputs();
    opened.description = "Successful handshake: door 100, Sunday 17:06 local (UTC+2) within the weekend window, carrying a time update (sequence 42); then, the door open, the phone delivers revocation delta 3 -> 5 (one credential, one device key), which the lock applies and acknowledges.".into();
    opened.deltas = vec![(3, 5, vec![[0x55; 16]], vec![[0x66; 32]])];
    let mut revoked = base_inputs();
    revoked.description = "Denial: the lock holds revocation version 4 naming this credential (delivered earlier by another phone); Denied(Revoked).".into();
    revoked.lock_state_before.revocation_version = 4;
    revoked
        .lock_state_before
        .revoked_credentials
        .insert(arr(&json!("00112233445566778899aabbccddeeff")), DELTA_EXPIRES);
    let mut expired = base_inputs();
    expired.description = "Denial: lock clock is after the credential's not_after; Denied(Expired).".into();
    expired.time_update = None;
    expired.lock_now_unix = 1_752_000_001;
    expired.proof_received_ms = 10_900;
    let mut late = base_inputs();
    late.description = "Denial: the Proof's last fragment arrived 2001 ms after the Challenge (a relay); Denied(Timeout), and the record names nobody.".into();
    late.proof_received_ms = late.hello_received_ms + 2_001;
    vec![
        ("handshake_opened.json", opened),
        ("handshake_denied_revoked.json", revoked),
        ("handshake_denied_expired.json", expired),
        ("handshake_denied_timeout.json", late),
    ]
}

/// Encodings of the signed structures on their own.
fn encodings() -> Value {
    let authority = SigningKey::from_bytes(&[0xA1; 32]);
    let lock_key = SigningKey::from_bytes(&[0xB2; 32]);
    let device = SigningKey::from_bytes(&[0xC3; 32]);
    let body = CredentialBody {
        credential_id: [0x11; 16],
        device_key: device.verifying_key().to_bytes(),
        doors: vec![100],
        not_before: 1_700_000_000,
        not_after: 1_800_000_000,
        schedule: None,
    };
    let simple = Credential::issue(&authority, body.clone()).unwrap();
    let scheduled = Credential::issue(
        &authority,
        CredentialBody {
            doors: vec![100, 101, 0xDEAD_BEEF],
            schedule: Some(WeeklySchedule {
                utc_offset_minutes: -300,
                windows: vec![TimeWindow { days: 0b0111_1111, start_minute: 0, end_minute: 1440 }],
            }),
            ..body
        },
    )
    .unwrap();
    let cert = LockCertificate::issue(
        &authority,
        7,
        lock_key.verifying_key().to_bytes(),
        vec![100, 101],
        CERT_NOT_BEFORE,
        CERT_NOT_AFTER,
    )
    .unwrap();
    let tu = TimeUpdate::issue(&authority, 0, 1_750_000_000, 1);
    let rd = issue_delta(&authority, &(2, 4, vec![[0x11; 16]], vec![[0x22; 32]]));
    let audit =
        AuditRecord::sign(&lock_key, 7, 100, [0x11; 16], 1_750_000_000, Decision::Denied(DenyReason::Expired), 5);
    // Ed25519 is deterministic, and the request id comes from these fixed bytes.
    let request = ProvisioningRequest::sign(&lock_key, &mut BytesRng(vec![0x5A; 16]));
    json!({
        "description": "Encodings of signed structures. Keys: Ed25519 seeds authority=a1*32, lock=b2*32, device=c3*32.",
        "authority_public_key": h(authority.verifying_key().as_bytes()),
        "lock_public_key": h(lock_key.verifying_key().as_bytes()),
        "device_public_key": h(device.verifying_key().as_bytes()),
        "credential_simple": {"credential_id": h(&[0x11; 16]), "doors": [100], "not_before": 1_700_000_000u64, "not_after": 1_800_000_000u64, "schedule": null, "encoded": h(&simple.to_bytes())},
        "credential_scheduled": {"doors": [100, 101, 0xDEAD_BEEFu32], "schedule": {"utc_offset_minutes": -300, "windows": [{"days": 127, "start_minute": 0, "end_minute": 1440}]}, "encoded": h(&scheduled.to_bytes())},
        "lock_certificate": {"lock_id": 7, "doors": [100, 101], "not_before": CERT_NOT_BEFORE, "not_after": CERT_NOT_AFTER, "encoded": h(&cert.to_bytes())},
        "provisioning_request": {"lock_public_key": h(lock_key.verifying_key().as_bytes()), "request_id": h(&[0x5A; 16]), "encoded": h(&request.to_bytes())},
        "time_update": {"lock_id": 0, "unix_time": 1_750_000_000u64, "sequence": 1, "encoded": h(&tu.to_bytes())},
        "revocation_delta": {"from_version": 2, "to_version": 4, "credential_ids": [h(&[0x11; 16])], "device_keys": [h(&[0x22; 32])], "expires": DELTA_EXPIRES, "encoded": h(&rd.to_bytes())},
        "audit_record": {"lock_id": 7, "door_id": 100, "credential_id": h(&[0x11; 16]), "time": 1_750_000_000u64, "decision": "Denied(Expired) = 1", "counter": 5, "encoded": h(&audit.to_bytes())},
    })
}

fn read(name: &str) -> Value {
    let p = dir().join(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with PORTA_REGEN_VECTORS=1 cargo test -p porta-protocol --test vectors -- --ignored",
            p.display()
        )
    });
    serde_json::from_str(&s).unwrap()
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
#[ignore = "writes vectors/*.json; run with PORTA_REGEN_VECTORS=1"]
fn regenerate_vectors() {
    if std::env::var_os("PORTA_REGEN_VECTORS").is_none() {
        eprintln!("set PORTA_REGEN_VECTORS=1 to write the vector files");
        return;
    }
    std::fs::create_dir_all(dir()).unwrap();
    for (name, inputs) in cases() {
        std::fs::write(dir().join(name), pretty(&build(&inputs))).unwrap();
    }
    std::fs::write(dir().join("encodings.json"), pretty(&encodings())).unwrap();
}

#[test]
fn handshake_vectors_reproduce_byte_for_byte() {
    for (name, canonical) in cases() {
        let file = read(name);
        let inputs = inputs_from_json(&file["inputs"]);
        assert_eq!(
            inputs_to_json(&inputs),
            inputs_to_json(&canonical),
            "{name}: inputs differ from the canonical ones"
        );
        let d = derive(&inputs);
        let m = |k: &str| unhex(&file["messages"][k]);

        // Phone direction: its outputs equal the vector, given the vector's lock messages.
        let (mut phone, hello) =
            PhoneHandshake::start(d.params.clone(), &mut BytesRng(inputs.phone_random.clone())).unwrap();
        assert_eq!(hex::encode(&hello), hex::encode(m("hello")), "{name}: hello");
        let proof = phone.handle_challenge(&m("challenge")).unwrap();
        assert_eq!(hex::encode(&proof), hex::encode(m("proof")), "{name}: proof");
        let po = phone.handle_result(&m("result")).unwrap();
        assert_eq!(decision_json(po.decision), file["decision"], "{name}: phone decision");
        assert_eq!(h(&po.audit.to_bytes()), file["audit_record"]);

        // Lock direction: given the vector's phone messages, it produces the vector's.
        let mut state = inputs.lock_state_before.clone();
        let mut lock = LockHandshake::new();
        let ch = lock
            .handle_hello(
                &d.config,
                &mut state,
                &m("hello"),
                inputs.hello_received_ms,
                &mut BytesRng(inputs.lock_random.clone()),
            )
            .unwrap();
        assert_eq!(hex::encode(&ch), hex::encode(m("challenge")), "{name}: challenge");
        let out = lock
            .handle_proof(&d.config, &mut state, &m("proof"), inputs.lock_now_unix, inputs.proof_received_ms)
            .unwrap();
        assert_eq!(hex::encode(&out.response), hex::encode(m("result")), "{name}: result");
        assert_eq!(decision_json(out.decision), file["decision"]);
        // Post-decision updates, both directions.
        for (i, delta) in d.deltas.iter().enumerate() {
            let update = unhex(&file["messages"]["updates"][i]);
            let ack = lock.handle_update(&d.config, &mut state, &update, inputs.lock_now_unix).unwrap();
            assert_eq!(h(&ack.response), file["messages"]["update_acks"][i], "{name}: update ack {i}");
            assert_eq!(hex::encode(phone.update(delta).unwrap()), hex::encode(&update), "{name}: update {i}");
            assert_eq!(phone.handle_update_ack(&ack.response).unwrap().status, DeltaStatus::Applied);
        }
        assert_eq!(h(&state.to_bytes()), file["lock_state_after"], "{name}: lock state");

        // Everything else (derived encodings, fragments) too.
        assert_eq!(build(&inputs), file, "{name}: full vector");
    }
}

#[test]
fn vectors_cover_success_and_denial() {
    assert_eq!(read("handshake_opened.json")["decision"], json!("Opened"));
    assert_eq!(read("handshake_denied_revoked.json")["decision"], json!({"Denied": "Revoked"}));
    assert_eq!(read("handshake_denied_expired.json")["decision"], json!({"Denied": "Expired"}));
    let late = read("handshake_denied_timeout.json");
    assert_eq!(late["decision"], json!({"Denied": "Timeout"}));
    let audit = AuditRecord::from_bytes(&unhex(&late["audit_record"])).unwrap();
    assert_eq!((audit.credential_id, audit.door_id), ([0; 16], 0), "no one is named before authentication");
    let opened = read("handshake_opened.json");
    assert_eq!(opened["messages"]["updates"].as_array().unwrap().len(), 1);
}

#[test]
fn encoding_vectors_reproduce_byte_for_byte() {
    let file = read("encodings.json");
    assert_eq!(encodings(), file);
    let authority = VerifyingKey::from_bytes(&arr(&file["authority_public_key"])).unwrap();
    let c = Credential::from_bytes(&unhex(&file["credential_scheduled"]["encoded"])).unwrap();
    c.verify(&authority).unwrap();
    assert_eq!(c.body.schedule.unwrap().utc_offset_minutes, -300);
    let cert = LockCertificate::from_bytes(&unhex(&file["lock_certificate"]["encoded"])).unwrap();
    cert.verify(&authority).unwrap();
    assert_eq!((cert.not_before, cert.not_after), (CERT_NOT_BEFORE, CERT_NOT_AFTER));
    let request = ProvisioningRequest::from_bytes(&unhex(&file["provisioning_request"]["encoded"])).unwrap();
    request.verify().unwrap();
    assert_eq!(request.lock_key, arr(&file["lock_public_key"]));
}
