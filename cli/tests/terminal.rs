//! The `porta` binary as a resident uses it: against the real porta-server, opening the Main
//! entrance through btleplug → D-Bus → the fake BlueZ → a real porta-lock. Each `porta` is a
//! child process whose "system bus" is the fake's private one (DBUS_SYSTEM_BUS_ADDRESS), with
//! no session bus, so no system keyring: the session goes to 0600 files, and `porta` says so.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porta_core::FileSecureStore;
use porta_fake_bluez::{FakeBluez, FakeLock, Fault};
use porta_lock::SimulatedLock;
use porta_tests::TestServer;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

const ADA: &str = porta_server::DEMO_RESIDENT_EMAIL;

/// A `porta` in `home`, on the fake BlueZ, with nothing of the test machine's own session.
fn porta(home: &Path, bluez: &FakeBluez) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_porta"));
    cmd.env("PORTA_HOME", home)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bluez.address())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", home)
        .env_remove("PORTA_SERVER")
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Stdout of a command that must succeed.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "porta failed ({}): {}{}", out.status, text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// Sentences for a person: no Debug output, no Unix seconds.
fn assert_human(out: &str) {
    assert!(!out.contains("Some(") && !out.contains("None"), "Debug output in:\n{out}");
    // Ten digits alone are Unix seconds (2001-2286); after a `+` they are a phone number.
    let words = out.split(|c: char| !c.is_ascii_alphanumeric() && c != '+');
    let unix = words.filter(|w| w.len() == 10 && w.bytes().all(|b| b.is_ascii_digit())).collect::<Vec<_>>();
    assert!(unix.is_empty(), "raw timestamps {unix:?} in:\n{out}");
}

/// Runs `porta args`, waits until it asks for a code (so the server has sent it), answers
/// with the code the server sent `to` (its dev outbox) through the pipe, and returns what it printed.
async fn answering_code(mut cmd: Command, args: &[&str], (url, to): (&str, &str), prompt: &str) -> Output {
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (mut pipe, stderr) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                stderr.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let started = Instant::now();
    while !text(&stderr.lock().unwrap()).contains(prompt) {
        let so_far = text(&stderr.lock().unwrap());
        assert!(started.elapsed() < Duration::from_secs(20), "porta never asked {prompt:?}: {so_far}");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("porta exited ({status}) before asking {prompt:?}: {so_far}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = porta_tests::dev_code(url, to).await;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{code}\n").as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    Output { status, stdout, stderr }
}

fn fakes(locks: &[SimulatedLock], skip: Option<u32>, fault: Fault) -> Vec<FakeLock> {
    let fake = |l: &SimulatedLock| FakeLock::new(l.lock().clone(), l.lock_id(), 185);
    locks.iter().map(|l| if Some(l.lock_id()) == skip { fake(l).with_fault(fault) } else { fake(l) }).collect()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_signs_in_opens_the_main_entrance_over_bluetooth_exports_and_deletes_the_account() {
    let bluez = FakeBluez::start().expect("start the fake BlueZ (needs dbus-daemon)");
    let server = TestServer::start().await;
    let url = server.url();
    let locks = porta_tests::locks(&url).await;
    bluez.set_locks(fakes(&locks, None, Fault::None));
    let home = tempfile::tempdir().unwrap();
    let porta = || porta(home.path(), &bluez);

    // Sign in: the code is typed into a pipe; the server is remembered from here on.
    let out = answering_code(porta(), &["--server", &url, "sign-in", ADA], (&url, ADA), "type it here").await;
    let said = ok(out);
    assert!(said.contains(&format!("signed in to {url}")), "{said}");
    let secrets = home.path().join("secrets");
    assert!(
        said.contains(&format!("session kept in {} (mode 0600; no system keyring found)", secrets.display())),
        "{said}"
    );
    let files: Vec<_> = std::fs::read_dir(&secrets).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!files.is_empty(), "no session files in {}", secrets.display());
    #[cfg(unix)]
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }

    // The doors, by name, without --server.
    let doors = ok(run(porta(), &["doors"]));
    for name in ["Main entrance", "Bike room", "Roof terrace"] {
        assert!(doors.contains(name), "{doors}");
    }
    assert!(doors.contains("no end date"), "{doors}");
    assert_human(&doors);
    let listed: serde_json::Value = serde_json::from_str(&ok(run(porta(), &["--json", "doors"]))).unwrap();
    let main = listed.as_array().unwrap().iter().find(|d| d["name"] == "Main entrance").expect("Main entrance");
    assert!(main["door_id"].is_u64() && main["lock_id"].is_u64(), "{main}");
    assert!(main["access"][0]["not_after"].is_i64(), "{main}");

    // Open it over Bluetooth, by the start of its name in another case.
    let lock = locks.iter().find(|l| Some(u64::from(l.lock_id())) == main["lock_id"].as_u64()).unwrap();
    let out = run(porta(), &["unlock", "main"]);
    let progress = text(&out.stderr);
    assert_eq!(ok(out), "Main entrance: open\n");
    assert_eq!(lock.opened_count(), 1, "the lock itself opened");
    for word in ["searching for the Main entrance lock", "connecting", "verifying", "open"] {
        assert!(progress.contains(word), "{word:?} in {progress}");
    }
    let trace = bluez.trace(lock.lock_id());
    assert!(trace.connects == 1 && !trace.connected, "{trace:?}");

    // The log, in local time.
    let log = ok(run(porta(), &["log"]));
    let opened = log.lines().find(|l| l.contains("Main entrance")).unwrap_or_else(|| panic!("{log}"));
    // (Just now; "yesterday" only if midnight passed in between.)
    assert!(opened.starts_with("today ") || opened.starts_with("yesterday "), "{log}");
    assert!(opened.contains("  opened  "), "{log}");
    assert!(log.contains("the building keeps this log: Main entrance 30 days, Bike room 90 days"), "{log}");
    assert_human(&log);
    let json: serde_json::Value = serde_json::from_str(&ok(run(porta(), &["--json", "log"]))).unwrap();
    let event = &json["events"][0];
    assert_eq!((event["door_name"].as_str(), event["decision"].as_str()), (Some("Main entrance"), Some("opened")));
    assert!(event["at"].is_i64(), "{json}");

    // Profile, devices and my data read as sentences too.
    let profile = ok(run(porta(), &["profile"]));
    assert!(profile.contains(&format!("email:   {ADA}")) && profile.contains("(apartment, set by the building)"));
    // A new phone number counts once the code sent to it is typed.
    let change = ["profile", "set", "--name", "Ada Lovelace", "--phone", "+4790000042"];
    let out = answering_code(porta(), &change, (&url, "+4790000042"), "type it here (or later").await;
    let profile = ok(out);
    assert!(profile.contains("name:    Ada Lovelace") && profile.contains("phone:   +4790000042"), "{profile}");
    assert!(!profile.contains("pending"), "{profile}");
    // Ada's phone signs in too; from the terminal she sees it and signs it out.
    let phone_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(porta_core::MemorySecureStore::new());
    let phone = porta_tests::client(&url, store, phone_dir.path(), Duration::from_secs(5));
    porta_tests::sign_in(&phone, &url, ADA).await;
    let devices = ok(run(porta(), &["devices"]));
    assert!(devices.contains("(this computer)") && devices.contains("e2e phone\n"), "{devices}");
    assert!(devices.contains("signed in today ") || devices.contains("signed in yesterday "), "{devices}");
    assert_human(&devices);
    let listed: serde_json::Value = serde_json::from_str(&ok(run(porta(), &["--json", "devices"]))).unwrap();
    let other = listed.as_array().unwrap().iter().find(|d| d["current"] == false).expect("the phone");
    let other = other["device_id"].as_str().unwrap();
    assert!(ok(run(porta(), &["devices", "sign-out", other])).contains("signed out"));
    assert!(matches!(phone.profile().await, Err(porta_core::Error::NotSignedIn)), "the phone is signed out");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ok(run(porta(), &["--json", "devices"])))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let data = ok(run(porta(), &["my-data"]));
    assert!(data.contains("why: ") && data.contains(ADA), "{data}");
    assert_human(&data);

    // Export: a file only Ada can read, holding her data.
    let file = home.path().join("ada.json");
    let said = ok(run(porta(), &["export", file.to_str().unwrap()]));
    assert!(said.starts_with(&format!("wrote {}", file.display())), "{said}");
    let export: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(export["format"], "porta-export");
    assert!(export.to_string().contains(ADA), "the export holds Ada's email");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    // Delete the account with the code the server sends; then nothing answers for her.
    let out = answering_code(porta(), &["delete-account"], (&url, ADA), "type it to confirm").await;
    let said = ok(out);
    assert!(said.starts_with("account deleted today ") || said.starts_with("account deleted yesterday "), "{said}");
    assert_human(&said);
    let after = run(porta(), &["doors"]);
    assert_eq!(after.status.code(), Some(3), "{}", text(&after.stderr));
    assert!(text(&after.stderr).contains("not signed in: run `porta sign-in`"));
    let left: Vec<_> = std::fs::read_dir(&secrets).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "secrets left after deletion: {left:?}");
}

/// Ada signed in inside `home` (the layout `porta --home` uses), with her doors synced.
async fn signed_in(home: &Path, url: &str) {
    let store = Arc::new(FileSecureStore::new(home.join("secrets")).unwrap());
    let phone = porta_tests::client(url, store, &home.join("data"), Duration::from_secs(5));
    porta_tests::sign_in(&phone, url, ADA).await;
    phone.doors().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_says_when_bluetooth_is_off_or_the_lock_is_out_of_range() {
    let bluez = FakeBluez::start().expect("start the fake BlueZ (needs dbus-daemon)");
    let server = TestServer::start().await;
    let url = server.url();
    let locks = porta_tests::locks(&url).await;
    let home = tempfile::tempdir().unwrap();
    signed_in(home.path(), &url).await;
    let porta = || {
        let mut cmd = porta(home.path(), &bluez);
        cmd.env("PORTA_SERVER", &url);
        cmd
    };
    let doors: serde_json::Value = serde_json::from_str(&ok(run(porta(), &["--json", "doors"]))).unwrap();
    let main_lock = doors.as_array().unwrap().iter().find(|d| d["name"] == "Main entrance").unwrap()["lock_id"].clone();
    let main = locks.iter().find(|l| serde_json::json!(l.lock_id()) == main_lock).unwrap();

    bluez.set_locks(fakes(&locks, None, Fault::None));
    bluez.set_powered(false);
    let off = run(porta(), &["unlock", "Main entrance"]);
    assert_eq!(off.status.code(), Some(8), "{}", text(&off.stderr));
    assert!(text(&off.stderr).contains("porta: Bluetooth is off: turn it on and try again"), "{}", text(&off.stderr));
    assert!(text(&off.stdout).is_empty());
    assert_eq!(bluez.trace(main.lock_id()).connects, 0);

    // Powered again, but the Main entrance's lock is not heard.
    bluez.set_locks(fakes(&locks, Some(main.lock_id()), Fault::NotAdvertising));
    let far = run(porta(), &["unlock", "MAIN ENTRANCE"]);
    assert_eq!(far.status.code(), Some(9), "{}", text(&far.stderr));
    let said = text(&far.stderr);
    assert!(said.contains("porta: the Main entrance lock is not in range: move closer"), "{said}");
    assert!(said.contains("searching for the Main entrance lock") && !said.contains("connecting"), "{said}");
    assert_eq!(main.opened_count(), 0);

    // The building replaces the Main entrance's lock with one this computer simulates from
    // its data directory (the key made there, the admin installing it from its request). The
    // next unlock syncs, opens the new lock, and --json says so.
    let lock_dir = porta_lock::LockDir::new(home.path().join("lock"));
    let request = lock_dir.provisioning_request(&mut rand::rngs::OsRng).unwrap();
    let admin = porta_tests::demo_admin_token(&url).await;
    let path = format!("/v1/admin/sites/{}/doors/1/lock", porta_server::DEMO_SITE_ID);
    let body = serde_json::json!({ "request": b64(request.to_bytes()) }).to_string();
    let (status, answer) = porta_tests::raw_http_as(&url, "POST", &path, Some(&admin), Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let field = |name: &str| unb64(answer[name].as_str().unwrap());
    lock_dir.install(&field("certificate"), field("authority_public_key").try_into().unwrap()).unwrap();
    let dir_arg = lock_dir.path().to_str().unwrap().to_owned();
    let out = ok(run(porta(), &["--json", "unlock", "main", "--lock-dir", &dir_arg]));
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result, serde_json::json!({ "door_id": 1, "door": "Main entrance", "opened": true }));
    // The lock it replaced, re-flashed to answer under the new lock's id, is refused by the
    // phone: its certificate was revoked.
    let new_id = answer["lock_id"].as_u64().unwrap() as u32;
    bluez.set_locks(vec![FakeLock::new(main.lock().clone(), new_id, 185)]);
    let old = run(porta(), &["unlock", "Main entrance"]);
    assert_ne!(old.status.code(), Some(0), "{}", text(&old.stderr));
    assert!(text(&old.stderr).contains("is not the building's lock for this door"), "{}", text(&old.stderr));
    assert_eq!(main.opened_count(), 0);

    // The server down: the doors come from the cache (unlocking needs no network), the devices cannot.
    let down = |args: &[&str]| run(porta(), &[&["--server", "http://127.0.0.1:9"], args].concat());
    assert!(ok(down(&["doors"])).contains("Main entrance"));
    let out = down(&["devices"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach the Porta server at http://127.0.0.1:9"), "{}", text(&out.stderr));

    // A door that is not hers is refused before any radio, naming hers.
    let none = run(porta(), &["unlock", "garage"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("no door called \"garage\"; yours are: Main entrance"));

    // Signed out, every command says how to get back in.
    assert!(ok(run(porta(), &["sign-out"])).starts_with("signed out"));
    let out = run(porta(), &["unlock", "main"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not signed in: run `porta sign-in`"));
}
