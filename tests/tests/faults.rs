//! Fault injection between porta-core and the real porta-server: a proxy drops, delays,
//! truncates and resets connections, answers 5xx, and returns garbage or wrong-shaped JSON.
//! Every core call must end in a typed error (or its documented offline answer) within its
//! time budget, keep what the phone stored, and only idempotent requests may be sent again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use porta_core::simulated::SimulatedTransport;
use porta_core::{Client, Error, MemorySecureStore, ProfileUpdate, SecureStore};
use porta_tests::proxy::{Fault, FaultProxy};
use porta_tests::{client, dev_code, locks, report, sign_in, NoProgress, TestServer};

/// The clients' request timeout: also the budget of one exchange with its retries.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Slack on top of the budget for local work (SQLite, scheduling on a loaded machine).
const SLACK: Duration = Duration::from_millis(1500);
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nfault-test-picture";

/// What the phone keeps, compared before and after each faulted call.
#[derive(Debug, PartialEq)]
struct Stored {
    session: Option<Vec<u8>>,
    device_key: Option<Vec<u8>>,
    profile: Option<porta_core::Profile>,
    doors: Vec<porta_core::Door>,
    pending_events: usize,
}

fn stored(client: &Client, store: &MemorySecureStore) -> Stored {
    Stored {
        session: store.get("porta.session").unwrap().map(|s| s.to_vec()),
        device_key: store.get("porta.device_key").unwrap().map(|s| s.to_vec()),
        profile: client.cached_profile().unwrap(),
        doors: client.cached_doors().unwrap(),
        pending_events: client.pending_access_events().unwrap(),
    }
}

/// How a fault shows at the client.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Effect {
    /// The connection failed: `Network`, or the cached copy where the call has one.
    Network,
    /// A 5xx answer: `Server` with that status.
    Server(u16),
    /// A well-formed answer with a body that is not the API's: `InvalidResponse` where the
    /// call reads the body; success where it does not.
    BadBody,
}

fn effect(fault: &Fault) -> Effect {
    match fault {
        Fault::Status(s) => Effect::Server(*s),
        Fault::Garbage | Fault::WrongShape => Effect::BadBody,
        _ => Effect::Network,
    }
}

/// Whether the core may send this request again after this fault.
fn retried(method: &str, fault: &Fault) -> bool {
    let idempotent = matches!(method, "GET" | "PUT" | "DELETE");
    idempotent
        && matches!(
            fault,
            Fault::DropRequest | Fault::DropResponse | Fault::Truncate | Fault::ResetMidBody | Fault::Status(503)
        )
}

/// One core call with the requests it makes, and whether it has an offline answer or
/// ignores the body of a successful answer.
struct Call {
    name: &'static str,
    /// Faulted requests: method and path prefix. The first one is the one counted.
    requests: &'static [(&'static str, &'static str)],
    offline_answer: bool,
    reads_body: bool,
}

const CALLS: &[Call] = &[
    Call { name: "request_code", requests: &[("POST", "/v1/auth/code")], offline_answer: false, reads_body: false },
    Call { name: "sign_in", requests: &[("POST", "/v1/auth/sign-in")], offline_answer: false, reads_body: true },
    Call { name: "profile", requests: &[("GET", "/v1/me/profile")], offline_answer: true, reads_body: true },
    Call { name: "update_profile", requests: &[("PATCH", "/v1/me/profile")], offline_answer: false, reads_body: true },
    Call { name: "set_picture", requests: &[("PUT", "/v1/me/picture")], offline_answer: false, reads_body: false },
    Call { name: "picture", requests: &[("GET", "/v1/me/picture")], offline_answer: true, reads_body: true },
    Call { name: "doors", requests: &[("GET", "/v1/me/doors")], offline_answer: true, reads_body: true },
    Call {
        name: "upload_access_events",
        requests: &[("POST", "/v1/me/access-events")],
        offline_answer: false,
        reads_body: true,
    },
    Call {
        name: "access_log",
        requests: &[("POST", "/v1/me/access-events"), ("GET", "/v1/me/access-log")],
        offline_answer: true,
        reads_body: true,
    },
    Call { name: "devices", requests: &[("GET", "/v1/me/devices")], offline_answer: false, reads_body: true },
    Call {
        name: "sign_out_device",
        requests: &[("DELETE", "/v1/me/devices/")],
        offline_answer: false,
        reads_body: false,
    },
    Call { name: "my_data", requests: &[("GET", "/v1/me/data")], offline_answer: false, reads_body: true },
    Call { name: "export_my_data", requests: &[("GET", "/v1/me/export")], offline_answer: false, reads_body: true },
    Call { name: "consents", requests: &[("GET", "/v1/me/consents")], offline_answer: false, reads_body: true },
    Call { name: "set_consent", requests: &[("PUT", "/v1/me/consents/")], offline_answer: false, reads_body: true },
    Call {
        name: "request_deletion_code",
        requests: &[("POST", "/v1/me/deletion-code")],
        offline_answer: false,
        reads_body: false,
    },
];

/// Ada, the demo resident, on a phone behind the proxy: profile, picture, doors and access
/// log cached, one access event waiting for upload, and a second signed-in device.
struct Phone {
    server: TestServer,
    proxy: FaultProxy,
    store: Arc<MemorySecureStore>,
    client: Client,
    _dir: tempfile::TempDir,
    tablet: Client,
    _tablet_dir: tempfile::TempDir,
    transport: Arc<SimulatedTransport>,
}

async fn phone() -> Phone {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.url()).await;
    let (dir, tablet_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = Arc::new(MemorySecureStore::new());
    let client = client(proxy.url(), store.clone(), dir.path(), TIMEOUT);
    sign_in(&client, &server.url(), porta_server::DEMO_RESIDENT_EMAIL).await;
    client.profile().await.unwrap();
    client.set_picture(PNG.to_vec()).await.unwrap();
    client.doors().await.unwrap();
    let transport = Arc::new(SimulatedTransport::new(locks(&server.url()).await));
    client.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    client.access_log().await.unwrap();
    // Let the first opening's background upload finish before counting the next one's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next opening stays queued: its background upload is refused.
    proxy.reset_counts();
    proxy.always("POST", "/v1/me/access-events", Fault::Status(503));
    client.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    wait_until(|| proxy.count("POST", "/v1/me/access-events") >= 1).await;
    proxy.clear();
    assert_eq!(client.pending_access_events().unwrap(), 1);
    let tablet = porta_tests::client(&server.url(), Arc::new(MemorySecureStore::new()), tablet_dir.path(), TIMEOUT);
    sign_in(&tablet, &server.url(), porta_server::DEMO_RESIDENT_EMAIL).await;
    Phone { server, proxy, store, client, _dir: dir, tablet, _tablet_dir: tablet_dir, transport }
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a call returned, reduced to what the assertions look at.
#[derive(Debug)]
enum Outcome {
    Ok,
    /// Succeeded with a value equal to the cached one.
    Cached,
    Err(Error),
}

async fn run(phone: &Phone, call: &Call, export_to: &std::path::Path) -> Outcome {
    let c = &phone.client;
    let before = stored(c, &phone.store);
    let result: Result<bool, Error> = match call.name {
        "request_code" => c.request_code(porta_server::DEMO_RESIDENT_EMAIL).await.map(|_| false),
        "sign_in" => {
            // A real code, so that only the fault can make it fail.
            phone.tablet.request_code(porta_server::DEMO_RESIDENT_EMAIL).await.unwrap();
            let code = dev_code(&phone.server.url(), porta_server::DEMO_RESIDENT_EMAIL).await;
            phone.proxy.reset_counts();
            c.sign_in(porta_server::DEMO_RESIDENT_EMAIL, &code).await.map(|_| false)
        }
        "profile" => c.profile().await.map(|p| Some(p) == before.profile),
        "update_profile" => {
            let update = ProfileUpdate { name: Some("Ada Resident".into()), ..Default::default() };
            c.update_profile(update).await.map(|_| false)
        }
        "set_picture" => c.set_picture(PNG.to_vec()).await.map(|_| false),
        "picture" => c.picture().await.map(|p| p.as_deref() == Some(PNG)),
        "doors" => c.doors().await.map(|d| d == before.doors),
        "upload_access_events" => c.upload_access_events().await.map(|_| false),
        "access_log" => c.access_log().await.map(|_| true),
        "devices" => c.devices().await.map(|_| false),
        "sign_out_device" => {
            let devices = phone.tablet.devices().await.unwrap();
            let tablet = devices.iter().find(|d| d.current).unwrap().device_id.clone();
            phone.proxy.reset_counts();
            c.sign_out_device(&tablet).await.map(|_| false)
        }
        "my_data" => c.my_data().await.map(|_| false),
        "export_my_data" => c.export_my_data(export_to.to_path_buf()).await.map(|_| false),
        "consents" => c.consents().await.map(|_| false),
        "set_consent" => c.set_consent("marketing", false).await.map(|_| false),
        "request_deletion_code" => c.request_deletion_code().await.map(|_| false),
        other => unreachable!("{other}"),
    };
    match result {
        Ok(true) => Outcome::Cached,
        Ok(false) => Outcome::Ok,
        Err(e) => Outcome::Err(e),
    }
}

/// Runs every call under `fault` and checks outcome, time, retries and what stayed stored.
async fn every_call_under(fault: Fault) {
    let phone = phone().await;
    let export_dir = tempfile::tempdir().unwrap();
    let (mut failed, mut offline, mut ignored_body, mut resent) = (0, 0, 0, 0);
    for call in CALLS {
        let export_to = export_dir.path().join(format!("{}.json", call.name));
        let before = stored(&phone.client, &phone.store);
        phone.proxy.reset_counts();
        for (method, path) in call.requests {
            phone.proxy.always(method, path, fault.clone());
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(TIMEOUT * 3, run(&phone, call, &export_to))
            .await
            .unwrap_or_else(|_| panic!("{} under {fault:?} hung", call.name));
        let took = started.elapsed();
        phone.proxy.clear();
        let (method, path) = call.requests[0];
        let sent = phone.proxy.count(method, path);
        let context = format!(
            "{} under {fault:?}: {outcome:?} after {took:?}, sent {sent}x, {} events queued",
            call.name, before.pending_events
        );
        println!("{context}");

        let expected_ok = match effect(&fault) {
            Effect::Network => call.offline_answer && matches!(outcome, Outcome::Cached),
            Effect::BadBody => !call.reads_body && matches!(outcome, Outcome::Ok),
            Effect::Server(_) => false,
        };
        if !expected_ok {
            match (effect(&fault), &outcome) {
                (Effect::Network, Outcome::Err(Error::Network(_))) => {}
                (Effect::Server(s), Outcome::Err(Error::Server { status, .. })) if *status == s => {}
                (Effect::BadBody, Outcome::Err(Error::InvalidResponse(_))) => {}
                _ => panic!("unexpected outcome: {context}"),
            }
        }
        assert!(took < TIMEOUT + SLACK, "over the time budget: {context}");
        let attempts = if retried(method, &fault) { 3 } else { 1 };
        assert_eq!(sent, attempts, "retries: {context}");
        match outcome {
            Outcome::Err(_) => failed += 1,
            Outcome::Cached => offline += 1,
            Outcome::Ok => ignored_body += 1,
        }
        resent += sent - 1;
        assert_eq!(stored(&phone.client, &phone.store), before, "stored data changed: {context}");
        if call.name == "export_my_data" && !matches!(outcome, Outcome::Ok) {
            assert!(!export_to.exists(), "a failed export leaves no file: {context}");
        }
    }

    // With the faults gone everything works again, and the queued event arrives once.
    assert_eq!(phone.client.upload_access_events().await.unwrap(), 1, "the queued event survived");
    let log = phone.client.access_log().await.unwrap();
    assert_eq!(log.events.len(), 2, "each opening stored exactly once: {:?}", log.events);
    assert!(phone.client.profile().await.is_ok());
    phone.client.unlock_via(1, phone.transport.clone(), Arc::new(NoProgress)).await.unwrap();
    report(&format!(
        "faults: {fault:?}: {} calls: {failed} typed errors, {offline} offline answers, {ignored_body} unaffected \
         (body not read); {resent} idempotent retries; stored data intact; queued event delivered once",
        CALLS.len()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_when_the_request_is_dropped() {
    every_call_under(Fault::DropRequest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_when_the_response_is_dropped() {
    every_call_under(Fault::DropResponse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_within_its_budget_when_the_server_is_slow() {
    every_call_under(Fault::Delay(TIMEOUT + Duration::from_secs(1))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_when_the_response_is_truncated() {
    every_call_under(Fault::Truncate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_when_the_connection_resets_mid_body() {
    every_call_under(Fault::ResetMidBody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_on_503() {
    every_call_under(Fault::Status(503)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_on_500() {
    every_call_under(Fault::Status(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_on_garbage() {
    every_call_under(Fault::Garbage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_ends_in_a_typed_error_on_json_of_the_wrong_shape() {
    every_call_under(Fault::WrongShape).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_requests_are_sent_again() {
    let phone = phone().await;
    let (proxy, client) = (&phone.proxy, &phone.client);

    // A GET whose answers are lost twice is retried and succeeds on the third attempt.
    proxy.reset_counts();
    proxy.times("GET", "/v1/me/profile", Fault::DropResponse, 2);
    assert_eq!(client.profile().await.unwrap().email.as_deref(), Some(porta_server::DEMO_RESIDENT_EMAIL));
    assert_eq!(proxy.count("GET", "/v1/me/profile"), 3);

    // A body cut short is a failed attempt too.
    proxy.reset_counts();
    proxy.times("GET", "/v1/me/devices", Fault::Truncate, 1);
    assert_eq!(client.devices().await.unwrap().len(), 2);
    assert_eq!(proxy.count("GET", "/v1/me/devices"), 2);

    // A PATCH the server applied but whose answer was lost is not sent again.
    proxy.reset_counts();
    proxy.times("PATCH", "/v1/me/profile", Fault::DropResponse, 1);
    let update = ProfileUpdate { name: Some("Ada Applied Once".into()), ..Default::default() };
    assert!(matches!(client.update_profile(update).await, Err(Error::Network(_))));
    assert_eq!((proxy.count("PATCH", "/v1/me/profile"), proxy.forwarded("PATCH", "/v1/me/profile")), (1, 1));
    assert_eq!(phone.tablet.profile().await.unwrap().name, "Ada Applied Once", "the server did apply it");

    // An upload the server stored but whose answer was lost: sent once, kept queued, and
    // stored once when sent again later.
    proxy.reset_counts();
    proxy.times("POST", "/v1/me/access-events", Fault::ResetMidBody, 1);
    assert!(matches!(client.upload_access_events().await, Err(Error::Network(_))));
    assert_eq!(proxy.forwarded("POST", "/v1/me/access-events"), 1);
    assert_eq!(client.pending_access_events().unwrap(), 1);
    assert_eq!(client.upload_access_events().await.unwrap(), 1);
    assert_eq!(client.access_log().await.unwrap().events.len(), 2);

    // A DELETE whose answer was lost is retried; the retry finding the device gone is success.
    proxy.reset_counts();
    proxy.times("DELETE", "/v1/me/devices/", Fault::DropResponse, 1);
    let devices = phone.tablet.devices().await.unwrap();
    let tablet = devices.iter().find(|d| d.current).unwrap().device_id.clone();
    client.sign_out_device(&tablet).await.unwrap();
    assert_eq!(proxy.forwarded("DELETE", "/v1/me/devices/"), 2);
    assert!(matches!(phone.tablet.devices().await, Err(Error::NotSignedIn)), "the tablet is signed out");
    assert!(matches!(client.sign_out_device(&tablet).await, Err(Error::NotFound)), "without a lost answer, 404");

    // A 503 on a GET is retried; a 500 is not (the server is broken, not busy).
    proxy.reset_counts();
    proxy.times("GET", "/v1/me/consents", Fault::Status(503), 1);
    client.consents().await.unwrap();
    proxy.times("GET", "/v1/me/data", Fault::Status(500), 1);
    assert!(matches!(client.my_data().await, Err(Error::Server { status: 500, .. })));
    assert_eq!((proxy.count("GET", "/v1/me/consents"), proxy.count("GET", "/v1/me/data")), (2, 1));
    report(
        "faults: retries: GET after 2 lost answers sent 3x and succeeded, after a cut body 2x; PATCH and POST \
         the server applied sent once; DELETE retried after a lost answer succeeds; 503 retried, 500 not",
    );
}

/// The refresh request reaches the server, which rotates the token, and the answer is lost
/// in one of several ways. The user ends up signed in or cleanly signed out, never stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_interrupted_after_rotation_never_leaves_the_user_stuck() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.url()).await;
    let faults = [
        Fault::DropResponse,
        Fault::Truncate,
        Fault::ResetMidBody,
        Fault::Garbage,
        Fault::WrongShape,
        Fault::Delay(TIMEOUT + Duration::from_secs(1)),
        Fault::DropRequest,
        Fault::Status(503),
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let identifier = format!("refresh-{i}@example.com");
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemorySecureStore::new());
        let client = client(proxy.url(), store.clone(), dir.path(), TIMEOUT);
        sign_in(&client, &server.url(), &identifier).await;
        client.profile().await.unwrap();
        // The server's clock passes the access token's lifetime.
        server.clock.advance(16 * 60);

        proxy.reset_counts();
        proxy.times("POST", "/v1/auth/refresh", fault.clone(), 1);
        let first = tokio::time::timeout(TIMEOUT * 3, client.devices()).await.expect("no hang");
        assert!(first.is_err(), "{fault:?}: {first:?}");
        assert_eq!(proxy.count("POST", "/v1/auth/refresh"), 1, "{fault:?}: a refresh is never re-sent");
        if let Fault::Delay(d) = fault {
            // Let the late refresh reach the server and rotate the token.
            tokio::time::sleep(d.saturating_sub(TIMEOUT) + Duration::from_millis(500)).await;
        }

        // The next call either works or says NotSignedIn: never the same failure forever.
        let rotated = proxy.forwarded("POST", "/v1/auth/refresh") == 1;
        let next = tokio::time::timeout(TIMEOUT * 3, client.devices()).await.expect("no hang");
        match &next {
            Ok(devices) => {
                assert!(!rotated, "{fault:?}: a rotated refresh token cannot work again");
                assert_eq!(devices.len(), 1);
                assert!(client.is_signed_in());
            }
            Err(Error::NotSignedIn) => {
                assert!(!client.is_signed_in(), "{fault:?}");
                assert!(store.get("porta.session").unwrap().is_none(), "{fault:?}: dead tokens are not kept");
            }
            Err(e) => panic!("{fault:?}: stuck with {e:?}"),
        }
        if !rotated {
            assert!(next.is_ok(), "{fault:?}: nothing was rotated, so the session still works: {next:?}");
        }
        let after = if next.is_ok() { "still signed in" } else { "cleanly signed out" };
        report(&format!("faults: refresh interrupted by {fault:?}: {after}; sign-in works again"));

        // Signing in again always works, and the person's cache is theirs again.
        sign_in(&client, &server.url(), &identifier).await;
        assert_eq!(client.profile().await.unwrap().email.as_deref(), Some(identifier.as_str()));
        assert_eq!(client.devices().await.unwrap().iter().filter(|d| d.current).count(), 1);
    }
}

/// Account deletion under each fault: a typed error, nothing wiped while the server still
/// holds the account, and a retry finishes it (with the same receipt if it had happened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_account_under_faults_is_finished_by_a_retry() {
    let server = TestServer::start().await;
    let proxy = FaultProxy::start(&server.url()).await;
    let faults = [
        Fault::DropRequest,
        Fault::DropResponse,
        Fault::Truncate,
        Fault::ResetMidBody,
        Fault::Status(503),
        Fault::Garbage,
        Fault::WrongShape,
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let identifier = format!("delete-{i}@example.com");
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemorySecureStore::new());
        let client = client(proxy.url(), store.clone(), dir.path(), TIMEOUT);
        sign_in(&client, &server.url(), &identifier).await;
        client.profile().await.unwrap();
        client.request_deletion_code().await.unwrap();
        let code = dev_code(&server.url(), &identifier).await;

        proxy.reset_counts();
        proxy.always("POST", "/v1/me/delete", fault.clone());
        let started = Instant::now();
        let failed = client.delete_account(&code).await;
        assert!(started.elapsed() < TIMEOUT + SLACK, "{fault:?}");
        match (&fault, &failed) {
            (Fault::Status(503), Err(Error::Server { status: 503, .. })) => {}
            (Fault::Garbage | Fault::WrongShape, Err(Error::InvalidResponse(_))) => {}
            (_, Err(Error::Network(_))) => {}
            _ => panic!("{fault:?}: {failed:?}"),
        }
        assert_eq!(proxy.count("POST", "/v1/me/delete"), 1, "{fault:?}: never re-sent on its own");
        let forwarded = proxy.forwarded("POST", "/v1/me/delete") == 1;
        if !forwarded {
            assert!(client.is_signed_in(), "{fault:?}");
            assert!(client.cached_profile().unwrap().is_some(), "{fault:?}: nothing wiped before the server acted");
        }
        proxy.clear();
        let receipt = client.delete_account(&code).await.unwrap_or_else(|e| panic!("{fault:?}: retry: {e:?}"));
        assert!(receipt.backups_purged_by > 0);
        assert!(!client.is_signed_in());
        assert!(client.cached_profile().unwrap().is_none());
        assert!(store.keys().is_empty(), "{fault:?}: every secret wiped: {:?}", store.keys());
        report(&format!("faults: delete_account under {fault:?}: {:?}; a retry finished it", failed.unwrap_err()));
    }
}

/// An upload asked for while the one after an unlock is still on its way waits for it, and
/// finds the outbox settled: the records go out once, not once per caller.
#[tokio::test]
async fn an_upload_asked_for_during_the_background_one_waits_for_it() {
    let phone = phone().await;
    let (proxy, client) = (&phone.proxy, &phone.client);
    proxy.reset_counts();
    proxy.times("POST", "/v1/me/access-events", Fault::Delay(Duration::from_millis(800)), 1);
    client.unlock_via(1, phone.transport.clone(), Arc::new(NoProgress)).await.unwrap();
    wait_until(|| proxy.count("POST", "/v1/me/access-events") >= 1).await;
    assert_eq!(client.upload_access_events().await.unwrap(), 0, "the background upload sent them");
    assert_eq!(client.pending_access_events().unwrap(), 0);
    assert_eq!(proxy.count("POST", "/v1/me/access-events"), 1, "the batch went out once");
    assert_eq!(client.access_log().await.unwrap().events.len(), 3);
}
