//! Queued access events are neither lost nor doubled when the `porta` process is killed
//! mid-upload: the real binary, SIGKILL while a fault-injecting proxy holds its upload, a
//! restart, and the server's access log holding each opening exactly once.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porta_core::simulated::SimulatedTransport;
use porta_core::{FileSecureStore, MemorySecureStore};
use porta_tests::proxy::{Fault, FaultProxy};
use porta_tests::{client, locks, sign_in, NoProgress, TestServer};

const OPENINGS: usize = 3;

fn porta(home: &std::path::Path, server: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_porta"));
    cmd.env("PORTA_HOME", home).env_remove("DBUS_SESSION_BUS_ADDRESS").env("XDG_RUNTIME_DIR", home).args([
        "--server",
        server,
        "upload-events",
    ]);
    cmd
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `porta upload-events` until the proxy has held its upload (before or after the
/// server saw it, as `fault` says), then kills it with SIGKILL.
async fn kill_mid_upload(proxy: &FaultProxy, home: &std::path::Path, fault: Fault) {
    proxy.reset_counts();
    proxy.always("POST", "/v1/me/access-events", fault.clone());
    let mut child = porta(home, proxy.url()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    match fault {
        Fault::HoldResponse => {
            wait_until("the server got the upload", || proxy.forwarded("POST", "/v1/me/access-events") == 1).await
        }
        _ => wait_until("the proxy holds the upload", || proxy.count("POST", "/v1/me/access-events") == 1).await,
    }
    // The server has had time to store the batch while its answer is held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
    let status = child.wait().unwrap();
    assert!(!status.success());
    proxy.clear();
    proxy.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_events_survive_a_killed_upload_exactly_once() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.url()).await;
    let home = tempfile::tempdir().unwrap();

    // The resident opens doors with the same data the `porta` binary uses ($PORTA_HOME);
    // the uploads fail, so the lock-signed records stay queued.
    {
        let store = Arc::new(FileSecureStore::new(home.path().join("secrets")).unwrap());
        let phone = client(proxy.url(), store, &home.path().join("data"), Duration::from_secs(5));
        sign_in(&phone, &server.url(), porta_server::DEMO_RESIDENT_EMAIL).await;
        phone.doors().await.unwrap();
        proxy.always("POST", "/v1/me/access-events", Fault::Status(503));
        let transport = Arc::new(SimulatedTransport::new(locks(&server.url()).await));
        for door in 1..=OPENINGS as u32 {
            phone.unlock_via(door, transport.clone(), Arc::new(NoProgress)).await.unwrap();
        }
        wait_until("the background uploads failed", || proxy.count("POST", "/v1/me/access-events") >= OPENINGS).await;
        assert_eq!(phone.pending_access_events().unwrap(), OPENINGS);
        proxy.clear();
    }

    let queued = || {
        let store = Arc::new(FileSecureStore::new(home.path().join("secrets")).unwrap());
        let phone = client(proxy.url(), store, &home.path().join("data"), Duration::from_secs(5));
        phone.pending_access_events().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let other = client(&server.url(), Arc::new(MemorySecureStore::new()), dir.path(), Duration::from_secs(5));
    sign_in(&other, &server.url(), porta_server::DEMO_RESIDENT_EMAIL).await;

    // Killed while the upload is held before the server saw it (the proxy delivers it late,
    // as a network may).
    kill_mid_upload(&proxy, home.path(), Fault::HoldRequest).await;
    assert_eq!(queued(), OPENINGS, "nothing lost");
    // Killed after the server stored the batch, before the answer arrived.
    kill_mid_upload(&proxy, home.path(), Fault::HoldResponse).await;
    assert_eq!(queued(), OPENINGS, "still queued: the answer never came");
    assert_eq!(other.access_log().await.unwrap().events.len(), OPENINGS, "the server stored the batch");

    // Restarted, it uploads again; the server recognises the records it already holds.
    let out = porta(home.path(), proxy.url()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("uploaded {OPENINGS} access events; 0 waiting")), "{stdout}");
    let out = porta(home.path(), proxy.url()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("uploaded 0 access events; 0 waiting"));

    // The resident's log, read from another phone, has each opening exactly once.
    assert_eq!(queued(), 0);
    let log = other.access_log().await.unwrap();
    let mut doors: Vec<_> = log.events.iter().map(|e| e.door_id).collect();
    doors.sort();
    assert_eq!(doors, (1..=OPENINGS as u32).map(Some).collect::<Vec<_>>(), "{:?}", log.events);
    porta_tests::report(&format!(
        "faults: porta killed (SIGKILL) twice mid-upload; the server holds {} of {OPENINGS} openings, each once",
        log.events.len()
    ));
}
