//! `porta-lockd` as an installer runs it: request → (the site certifies) → install → status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use porta_lock::porta_protocol::{LockCertificate, ProvisioningRequest, SigningKey};
use porta_lock::{LockDir, LockDirStatus, NewLock, LOCK_KEY_FILE};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

const LOCK_ID: u32 = 17;
const DOOR: u32 = 3;
const NOT_BEFORE: u32 = 1_764_650_000; // 2025-12-02
const NOT_AFTER: u32 = 1_922_330_000; // 2030-12-01

fn lockd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_porta-lockd"))
        .env_remove("PORTA_LOCK_DIR")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stdout: {}\nstderr: {}", stdout(out), stderr(out));
}

fn authority() -> SigningKey {
    SigningKey::from_bytes(&[0xA7; 32])
}

/// The site's side: checks the request as the server does and answers with the
/// contract's `LockInstalled` JSON.
fn answer(request_text: &str, authority: &SigningKey, lock_id: u32, door_id: u32) -> Value {
    let request = ProvisioningRequest::from_bytes(&BASE64.decode(request_text.trim()).unwrap()).unwrap();
    request.verify().unwrap();
    let cert = LockCertificate::issue(authority, lock_id, request.lock_key, vec![door_id], NOT_BEFORE, NOT_AFTER)
        .unwrap()
        .to_bytes();
    json!({
        "lock_id": lock_id,
        "door_id": door_id,
        "lock_public_key": BASE64.encode(request.lock_key),
        "certificate": BASE64.encode(cert),
        "authority_public_key": BASE64.encode(authority.verifying_key().to_bytes()),
        "not_before": NOT_BEFORE,
        "not_after": NOT_AFTER,
        "provisioned_at": NOT_BEFORE,
        "replaced_lock_id": null,
    })
}

fn write_answer(dir: &Path, name: &str, answer: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(answer).unwrap()).unwrap();
    path
}

#[test]
fn request_install_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("lock");

    let status = lockd(&data, &["status"]);
    assert_exit(&status, 0);
    assert!(stdout(&status).contains("No key yet"), "{}", stdout(&status));
    assert_eq!(
        serde_json::from_slice::<Value>(&lockd(&data, &["status", "--json"]).stdout).unwrap()["status"],
        "no_key"
    );

    // The request file: one line of standard base64 of the 113 request bytes.
    let request = lockd(&data, &["provision-request"]);
    assert_exit(&request, 0);
    let text = stdout(&request);
    assert!(text.ends_with('\n') && text.lines().count() == 1, "{text:?}");
    assert_eq!(BASE64.decode(text.trim()).unwrap().len(), 113);
    let lock_key = ProvisioningRequest::from_bytes(&BASE64.decode(text.trim()).unwrap()).unwrap().lock_key;

    let waiting: Value = serde_json::from_slice(&lockd(&data, &["status", "--json"]).stdout).unwrap();
    assert_eq!(waiting, json!({ "status": "awaiting_certificate", "lock_public_key": BASE64.encode(lock_key) }));

    let answer_file = write_answer(tmp.path(), "answer.json", &answer(&text, &authority(), LOCK_ID, DOOR));
    let install = lockd(&data, &["install-certificate", answer_file.to_str().unwrap()]);
    assert_exit(&install, 0);
    let said = stdout(&install);
    for shown in ["lock 17", "door 3", "2025-12-02 to 2030-12-01 (UTC)", &BASE64.encode(lock_key)] {
        assert!(said.contains(shown), "{shown:?} not in {said}");
    }

    let installed: Value = serde_json::from_slice(&lockd(&data, &["status", "--json"]).stdout).unwrap();
    assert_eq!(
        installed,
        json!({
            "status": "installed",
            "lock_id": LOCK_ID,
            "doors": [DOOR],
            "not_before": NOT_BEFORE,
            "not_after": NOT_AFTER,
            "lock_public_key": BASE64.encode(lock_key),
            "authority_public_key": BASE64.encode(authority().verifying_key().to_bytes()),
        })
    );
    let status = lockd(&data, &["status"]);
    assert_exit(&status, 0);
    assert!(stdout(&status).contains("Installed as lock 17"), "{}", stdout(&status));

    // What the binary installed is the lock the library opens.
    let dir = LockDir::new(&data);
    assert!(matches!(dir.status().unwrap(), LockDirStatus::Installed { lock_id: LOCK_ID, .. }));
    assert_eq!(dir.open().unwrap().lock_id(), LOCK_ID);
}

#[test]
fn requests_to_a_file_reuse_the_key_and_the_directory_comes_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("lock");
    let request = |out: &Path| {
        let run = Command::new(env!("CARGO_BIN_EXE_porta-lockd"))
            .env("PORTA_LOCK_DIR", &data)
            .args(["provision-request", "--out"])
            .arg(out)
            .output()
            .unwrap();
        assert_exit(&run, 0);
        assert!(stdout(&run).contains(&out.display().to_string()), "{}", stdout(&run));
        let text = std::fs::read_to_string(out).unwrap();
        assert!(text.ends_with('\n'));
        ProvisioningRequest::from_bytes(&BASE64.decode(text.trim()).unwrap()).unwrap()
    };
    let first = request(&tmp.path().join("first.req"));
    let second = request(&tmp.path().join("second.req"));
    first.verify().unwrap();
    second.verify().unwrap();
    assert_eq!(first.lock_key, second.lock_key);
    assert_ne!(first.request_id, second.request_id);
    assert!(data.join(LOCK_KEY_FILE).exists());
}

#[test]
fn refusals_have_clear_messages_and_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("lock");
    let install = |file: &Path| lockd(&data, &["install-certificate", file.to_str().unwrap()]);

    // Usage: 2.
    let no_dir = Command::new(env!("CARGO_BIN_EXE_porta-lockd")).env_remove("PORTA_LOCK_DIR").arg("status").output();
    assert_exit(&no_dir.unwrap(), 2);
    assert_exit(&lockd(&data, &["open-sesame"]), 2);
    assert_exit(&lockd(&data, &["install-certificate"]), 2);

    // No key yet: no answer can be for this lock.
    let stranger = lockd(&tmp.path().join("stranger"), &["provision-request"]);
    let strangers_answer = write_answer(tmp.path(), "stranger.json", &answer(&stdout(&stranger), &authority(), 5, 1));
    let refused = install(&strangers_answer);
    assert_exit(&refused, 6);
    assert!(stderr(&refused).contains("no key yet"), "{}", stderr(&refused));

    // Another lock's answer: 6, and this lock still waits for its own.
    let request = stdout(&lockd(&data, &["provision-request"]));
    let refused = install(&strangers_answer);
    assert_exit(&refused, 6);
    assert!(stderr(&refused).starts_with("porta-lockd: ") && stderr(&refused).contains("another lock"));
    let status: Value = serde_json::from_slice(&lockd(&data, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "awaiting_certificate");

    // An answer file that is not what the site sent: 5.
    let good = answer(&request, &authority(), LOCK_ID, DOOR);
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut edit = |what: &'static str, field: &str, value: Value| {
        let mut bad = good.clone();
        bad[field] = value;
        cases.push((what, bad));
    };
    edit("says lock 18", "lock_id", json!(18));
    edit("says door 4", "door_id", json!(4));
    edit("certificate not base64", "certificate", json!("not base64!"));
    edit("certificate truncated", "certificate", json!(BASE64.encode([1u8, 0, 0, 0, 17])));
    edit("short authority", "authority_public_key", json!(BASE64.encode([1u8; 31])));
    edit("authority of another site", "authority_public_key", json!(BASE64.encode([0x11u8; 32])));
    let other_key = NewLock::generate(&mut StdRng::seed_from_u64(1)).lock_public_key();
    edit("another lock key", "lock_public_key", json!(BASE64.encode(other_key)));
    edit("no certificate", "certificate", Value::Null);
    edit("lock id a string", "lock_id", json!("17"));
    for (what, bad) in &cases {
        let out = install(&write_answer(tmp.path(), "bad.json", bad));
        assert_eq!(out.status.code(), Some(5), "{what}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("porta-lockd: "), "{what}");
    }
    let not_json = tmp.path().join("not.json");
    std::fs::write(&not_json, request.as_bytes()).unwrap();
    assert_exit(&install(&not_json), 5);
    assert_exit(&install(&tmp.path().join("missing.json")), 7);
    let status: Value = serde_json::from_slice(&lockd(&data, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["status"], "awaiting_certificate", "nothing was installed");

    // Installed: the same answer again is fine; another lock id for the same key is not.
    let good_file = write_answer(tmp.path(), "good.json", &good);
    assert_exit(&install(&good_file), 0);
    assert_exit(&install(&good_file), 0);
    let other_id = write_answer(tmp.path(), "other-id.json", &answer(&request, &authority(), LOCK_ID + 1, DOOR));
    let refused = install(&other_id);
    assert_exit(&refused, 6);
    assert!(stderr(&refused).contains("already installed as lock 17"), "{}", stderr(&refused));

    // A damaged key: 7, naming the file and showing nothing of it.
    let key = std::fs::read(data.join(LOCK_KEY_FILE)).unwrap();
    std::fs::write(data.join(LOCK_KEY_FILE), &key[..20]).unwrap();
    let damaged = lockd(&data, &["status"]);
    assert_exit(&damaged, 7);
    assert!(stderr(&damaged).contains("lock-key") && stderr(&damaged).contains("corrupt"), "{}", stderr(&damaged));
    assert!(!stderr(&damaged).contains(&BASE64.encode(&key[..20])));
    assert_exit(&lockd(&data, &["provision-request"]), 7);
    assert_eq!(std::fs::read(data.join(LOCK_KEY_FILE)).unwrap(), &key[..20], "never replaced");
}
