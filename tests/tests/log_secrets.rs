//! No secrets in logs, proven: the whole resident journey runs with the server and the core
//! in this process logging at TRACE (every `tracing` event and span of every crate, and every
//! `log` record, e.g. reqwest's), and no captured line holds a one-time code, an access or
//! refresh token, the device key or its public key, credential bytes, or an email address or
//! phone number used in the run, in any usual encoding.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use porta_core::simulated::SimulatedTransport;
use porta_core::{Client, MemorySecureStore, ProfileUpdate, SecureStore};
use porta_server::clock::Clock as _;
use porta_tests::{dev_code, locks, raw_http, NoProgress, TestServer};

/// Every captured byte, from `tracing` and from `log`.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct CaptureWriter;

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct CaptureLog;

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} (log): {}\n", record.level(), record.target(), record.args());
        CAPTURED.lock().unwrap().extend_from_slice(line.as_bytes());
    }
    fn flush(&self) {}
}

static LOG: CaptureLog = CaptureLog;

fn capture_everything() {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(|| CaptureWriter)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");
    log::set_logger(&LOG).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
}

/// The secrets of the run, each with a name for the failure message.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn text(&mut self, name: &str, value: &str) {
        assert!(value.len() >= 6, "{name} is too short to search for");
        self.0.push((name.to_owned(), value.to_owned()));
    }

    /// Bytes in every encoding a log line might use.
    fn bytes(&mut self, name: &str, value: &[u8]) {
        for (encoding, text) in [
            ("hex", hex::encode(value)),
            ("HEX", hex::encode_upper(value)),
            ("base64", STANDARD.encode(value)),
            ("base64 no pad", STANDARD_NO_PAD.encode(value)),
            ("base64url", URL_SAFE.encode(value)),
            ("base64url no pad", URL_SAFE_NO_PAD.encode(value)),
        ] {
            self.text(&format!("{name} ({encoding})"), &text);
        }
        // A Debug print of the bytes, e.g. `[12, 200, 3, ...]`.
        let debug = format!("{:?}", &value[..8.min(value.len())]);
        self.text(&format!("{name} (debug)"), debug.trim_end_matches(']'));
    }

    /// The tokens, device key and public key the phone holds in its secure store now.
    fn add_stored(&mut self, who: &str, store: &MemorySecureStore) {
        if let Some(session) = store.get("porta.session").unwrap() {
            let session: serde_json::Value = serde_json::from_slice(&session).unwrap();
            for token in ["access_token", "refresh_token"] {
                let value = session[token].as_str().unwrap_or_else(|| panic!("{token} in the session"));
                self.text(&format!("{who} {token}"), value);
            }
        }
        if let Some(key) = store.get("porta.device_key").unwrap() {
            let secret: [u8; 32] = key.as_slice().try_into().unwrap();
            let public = porta_protocol::SigningKey::from_bytes(&secret).verifying_key().to_bytes();
            self.bytes(&format!("{who} device key"), &secret);
            self.bytes(&format!("{who} device public key"), &public);
        }
    }

    /// The credentials cached for offline unlocking, read from the phone's database.
    fn add_credentials(&mut self, data_dir: &std::path::Path) {
        let db = rusqlite::Connection::open(data_dir.join(porta_core::DB_FILE)).unwrap();
        let json: String = db.query_row("SELECT json FROM doors", [], |r| r.get(0)).unwrap();
        let doors: serde_json::Value = serde_json::from_str(&json).unwrap();
        for (i, credential) in doors["credentials"].as_array().unwrap().iter().enumerate() {
            let bytes = STANDARD.decode(credential["credential"].as_str().unwrap()).unwrap();
            self.bytes(&format!("credential {i}"), &bytes);
        }
    }
}

fn phone(url: &str, store: Arc<MemorySecureStore>, dir: &std::path::Path) -> Client {
    porta_tests::client(url, store, dir, std::time::Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_journey_at_trace_logs_no_secret() {
    capture_everything();
    let mut secrets = Secrets::default();
    let email = "kari.nordmann.logtest@example.com";
    let new_email = "kari.changed.logtest@example.com";
    let phone_number = "+4791234567";
    secrets.text("email", email);
    secrets.text("email local part", "kari.nordmann.logtest");
    secrets.text("new email", new_email);
    secrets.text("new email local part", "kari.changed.logtest");
    secrets.text("phone", phone_number);
    secrets.text("phone digits", &phone_number[1..]);

    let server = TestServer::start().await;
    let url = server.url();
    let body = serde_json::json!({ "identifier": email, "doors": [1, 2] }).to_string();
    assert_eq!(raw_http(&url, "POST", "/v1/dev/grants", Some(&body)).await.0, 201);

    // Sign in on a phone and on a tablet.
    let (dir, tablet_dir, export_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Arc::new(MemorySecureStore::new());
    let client = phone(&url, store.clone(), dir.path());
    client.request_code(email).await.unwrap();
    let code = dev_code(&url, email).await;
    secrets.text("sign-in code", &code);
    client.sign_in(email, &code).await.unwrap();
    secrets.add_stored("phone", &store);
    let tablet_store = Arc::new(MemorySecureStore::new());
    let tablet = phone(&url, tablet_store.clone(), tablet_dir.path());
    tablet.request_code(email).await.unwrap();
    let code = dev_code(&url, email).await;
    secrets.text("tablet sign-in code", &code);
    tablet.sign_in(email, &code).await.unwrap();
    secrets.add_stored("tablet", &tablet_store);

    // Profile, including a change of email and phone, and a picture.
    client.profile().await.unwrap();
    // One address per change, each confirmed with the code sent to it.
    let update = ProfileUpdate { name: Some("Kari Nordmann".into()), phone: None, email: Some(new_email.into()) };
    client.update_profile(update).await.unwrap();
    let code = dev_code(&url, new_email).await;
    secrets.text("new email confirmation code", &code);
    client.confirm_contact_change(&code).await.unwrap();
    let update = ProfileUpdate { name: None, phone: Some(phone_number.into()), email: None };
    client.update_profile(update).await.unwrap();
    let code = dev_code(&url, phone_number).await;
    secrets.text("new phone confirmation code", &code);
    client.confirm_contact_change(&code).await.unwrap();
    let profile = client.profile().await.unwrap();
    assert_eq!(profile.email.as_deref(), Some(new_email));
    assert_eq!(profile.phone.as_deref(), Some(phone_number));
    client.set_picture(b"\x89PNG\r\n\x1a\nlog-test".to_vec()).await.unwrap();
    client.picture().await.unwrap();

    // Doors, an unlock on the simulated lock, and the access log.
    let doors = client.doors().await.unwrap();
    secrets.add_stored("phone after enrolment", &store);
    secrets.add_credentials(dir.path());
    let transport = Arc::new(SimulatedTransport::new(locks(&url).await));
    client.unlock_via(doors[0].door_id, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    let log = client.access_log().await.unwrap();
    assert_eq!(log.events.len(), 1);

    // An invitation: its link and code are secrets; a guest accepts it on a phone of its own,
    // looking at it first, and opens the door.
    let now = porta_server::clock::Clock::now(server.clock.as_ref());
    let created =
        client.create_invitation(porta_core::NewInvitation::new(vec![1], now - 60, now + 86_400)).await.unwrap();
    let token = created.link.expose().rsplit('/').next().unwrap().to_owned();
    secrets.text("invitation token", &token);
    secrets.text("invitation code", created.code.expose());
    secrets.text("invitation token, first half", &token[..20]);
    let (guest_dir, guest_store) = (tempfile::tempdir().unwrap(), Arc::new(MemorySecureStore::new()));
    let guest = phone(&url, guest_store.clone(), guest_dir.path());
    guest.invitation_preview(created.link.expose()).await.unwrap();
    guest.accept_invitation(created.code.expose()).await.unwrap();
    secrets.add_stored("guest phone", &guest_store);
    secrets.add_credentials(guest_dir.path());
    guest.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    client.invitations().await.unwrap();

    // Devices: the tablet is signed out from the phone.
    let devices = client.devices().await.unwrap();
    let tablet_id = devices.iter().find(|d| !d.current).unwrap().device_id.clone();
    client.sign_out_device(&tablet_id).await.unwrap();

    // My data, export, consents.
    client.my_data().await.unwrap();
    client.export_my_data(export_dir.path().join("export.json")).await.unwrap();
    client.consents().await.unwrap();
    client.set_consent("marketing", true).await.unwrap();

    // A guest invitation: created, previewed, accepted on a guest phone with no account,
    // which syncs and opens the door; then the guest is revoked.
    let now = server.clock.now();
    let mut invitation = porta_core::NewInvitation::new(vec![1], now, now + 2 * 24 * 3600);
    invitation.label = Some("cleaner".into());
    let created = client.create_invitation(invitation).await.unwrap();
    let token: String = created.code.expose().chars().filter(|c| *c != '-').collect();
    secrets.text("invitation token", &token);
    secrets.text("invitation token (lower case)", &token.to_lowercase());
    secrets.text("invitation code", created.code.expose());
    secrets.text("invitation link", created.link.expose());
    let guest_dir = tempfile::tempdir().unwrap();
    let guest_store = Arc::new(MemorySecureStore::new());
    let guest = phone(&url, guest_store.clone(), guest_dir.path());
    guest.invitation_preview(created.link.expose()).await.unwrap();
    let accepted = guest.accept_invitation(created.code.expose()).await.unwrap();
    secrets.add_stored("guest", &guest_store);
    guest.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    guest.access_log().await.unwrap();
    assert!(client.invitations().await.unwrap().guests.iter().any(|g| g.id == accepted.guest_id));
    client.revoke_guest(&accepted.guest_id).await.unwrap();

    // The access token expires on the server: a silent refresh rotates the tokens.
    server.clock.advance(16 * 60);
    client.devices().await.unwrap();
    secrets.add_stored("phone after refresh", &store);

    // Account deletion, confirmed by a fresh code.
    client.request_deletion_code().await.unwrap();
    let identifier = if client.cached_profile().unwrap().and_then(|p| p.email).as_deref() == Some(new_email) {
        new_email
    } else {
        email
    };
    let code = dev_code(&url, identifier).await;
    secrets.text("deletion code", &code);
    client.delete_account(&code).await.unwrap();
    server.server.shutdown().await;

    let captured = String::from_utf8_lossy(&CAPTURED.lock().unwrap()).into_owned();
    let lines: Vec<&str> = captured.lines().collect();
    if let Some(path) = std::env::var_os("PORTA_LOG_DUMP") {
        std::fs::write(path, &captured).unwrap();
    }
    for target in ["porta_server", "porta_core"] {
        assert!(lines.iter().any(|l| l.contains(target)), "nothing captured from {target}");
    }
    let mut leaks = Vec::new();
    for line in &lines {
        for (name, value) in &secrets.0 {
            if line.contains(value.as_str()) {
                leaks.push(format!("{name} in: {line}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in the log:\n{}", leaks.join("\n"));
    porta_tests::report(&format!(
        "log secrets: {} lines captured at TRACE from server and core; {} secret forms searched; none found",
        lines.len(),
        secrets.0.len()
    ));
}
