//! Unlocking end to end: porta-core with its device key and cached credentials, the real
//! porta-server issuing them, and simulated locks speaking the real protocol bytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use porta_core::simulated::SimulatedTransport;
use porta_core::{Client, ClientConfig, DenialReason, Error, MemorySecureStore, UnlockListener, UnlockProgress};
use porta_tests::{locks, sign_in};

struct Env {
    server: porta_server::RunningServer,
    dir: tempfile::TempDir,
}

async fn server() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().unwrap());
    config.demo = true;
    config.dev_outbox = true;
    config.limits.code_requests_per_ip = 10_000;
    let server = porta_server::start(config).await.unwrap();
    // The doors get their locks before any phone syncs.
    locks(&server.url()).await;
    Env { server, dir }
}

fn new_client(url: &str, store: Arc<MemorySecureStore>, dir: &std::path::Path) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.request_timeout = Duration::from_secs(5);
    Client::new(config, store).unwrap()
}

async fn grant(url: &str, identifier: &str, body: serde_json::Value) {
    let mut body = body;
    body["identifier"] = identifier.into();
    let resp = reqwest::Client::new().post(format!("{url}/v1/dev/grants")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
}

/// The demo resident, signed in on a fresh phone that has synced its doors.
async fn ada_with_doors(url: &str) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = new_client(url, Arc::new(MemorySecureStore::new()), dir.path());
    sign_in(&client, url, porta_server::DEMO_RESIDENT_EMAIL).await;
    client.doors().await.unwrap();
    (client, dir)
}

#[derive(Default)]
struct Progress(Mutex<Vec<UnlockProgress>>);

impl UnlockListener for Progress {
    fn on_progress(&self, p: UnlockProgress) {
        self.0.lock().unwrap().push(p);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn resident_opens_a_door_with_progress_in_order_and_sees_it_in_the_access_log() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let locks = locks(&url).await;
    // The transport is the client's, chosen when it is built; `unlock` takes only the door.
    let mut config = ClientConfig::new(&url, dir.path());
    config.request_timeout = Duration::from_secs(5);
    let config = config.with_lock_transport(Arc::new(SimulatedTransport::new(locks.clone())));
    let client = Client::new(config, Arc::new(MemorySecureStore::new())).unwrap();
    sign_in(&client, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    let doors = client.doors().await.unwrap();
    assert_eq!(
        doors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["Main entrance", "Bike room", "Roof terrace"]
    );

    let main = locks.iter().find(|l| Some(l.lock_id()) == doors[0].lock_id).unwrap().clone();
    let progress = Arc::new(Progress::default());
    client.unlock(doors[0].door_id, progress.clone()).await.unwrap();
    assert_eq!(main.opened_count(), 1);
    assert_eq!(
        *progress.0.lock().unwrap(),
        [UnlockProgress::Searching, UnlockProgress::Connecting, UnlockProgress::Verifying, UnlockProgress::Opened]
    );
    assert!(main.stats().round_trips <= 2, "{:?}", main.stats());

    // The lock reported holding this phone's time update and revocations, so the next
    // unlock does not carry them again.
    let first = main.stats();
    client
        .unlock_via(doors[0].door_id, Arc::new(SimulatedTransport::new(locks.clone())), Arc::new(Progress::default()))
        .await
        .unwrap();
    let second = main.stats();
    assert!(second.bytes_up < first.bytes_up, "{first:?} then {second:?}");
    assert!(second.virtual_ms <= first.virtual_ms);

    let log = client.access_log().await.unwrap();
    assert_eq!(log.events.len(), 2);
    assert!(log.events.iter().all(|e| e.opened()));
    assert_eq!(log.events[0].door_id, Some(doors[0].door_id));
    assert_eq!(client.pending_access_events().unwrap(), 0);
    let main_retention = log.retention.iter().find(|r| r.door_id == doors[0].door_id).unwrap();
    assert_eq!(main_retention.retention_days, 30);
}

#[tokio::test]
async fn unlock_works_with_the_server_down_and_the_receipt_is_synced_exactly_once_after_a_crash() {
    let env = server().await;
    let url = env.server.url();
    let app = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    let locks = locks(&url).await;
    {
        let client = new_client(&url, store.clone(), app.path());
        sign_in(&client, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
        client.doors().await.unwrap();
    }
    let db = env.dir.path().join("server.db");
    env.server.shutdown().await;

    // No network: the door still opens, from the cached credential.
    let client = new_client(&url, store.clone(), app.path());
    client
        .unlock_via(1, Arc::new(SimulatedTransport::new(locks.clone())), Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!(client.pending_access_events().unwrap(), 1);
    assert!(matches!(client.upload_access_events().await, Err(Error::Network(_))));
    assert_eq!(client.pending_access_events().unwrap(), 1, "nothing lost while offline");
    drop(client);

    // The server comes back (same database, new address).
    let mut config = porta_server::Config::new(db, "127.0.0.1:0".parse().unwrap());
    config.dev_outbox = true;
    let server = porta_server::start(config).await.unwrap();
    let url = server.url();

    // A crash after the server accepted the upload but before the phone forgot the record:
    // play that upload by hand, then let the restarted client sync.
    let session: serde_json::Value =
        serde_json::from_slice(&porta_core::SecureStore::get(store.as_ref(), "porta.session").unwrap().unwrap())
            .unwrap();
    let record = locks[0].audit_log().pop().unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &record);
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/me/access-events"))
        .bearer_auth(session["access_token"].as_str().unwrap())
        .json(&serde_json::json!({ "events": [{ "audit_record": b64 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let client = new_client(&url, store, app.path());
    assert_eq!(client.pending_access_events().unwrap(), 1, "the queue survived the restart");
    assert_eq!(client.upload_access_events().await.unwrap(), 1);
    assert_eq!(client.pending_access_events().unwrap(), 0);
    let log = client.access_log().await.unwrap();
    assert_eq!(log.events.len(), 1, "stored exactly once: {:?}", log.events);
}

#[tokio::test]
async fn expired_credential_is_refused_by_the_lock_with_the_reason() {
    let env = server().await;
    let url = env.server.url();
    let (client, _dir) = ada_with_doors(&url).await;
    let locks = locks(&url).await;
    // Credentials live at most 24 h; the lock's clock is two days ahead.
    locks[0].set_clock(now() + 2 * 24 * 3600);
    let progress = Arc::new(Progress::default());
    let result = client.unlock_via(1, Arc::new(SimulatedTransport::new(locks.clone())), progress.clone()).await;
    assert!(matches!(result, Err(Error::Denied(DenialReason::Expired))), "{result:?}");
    assert_eq!(locks[0].opened_count(), 0);
    assert_eq!(progress.0.lock().unwrap().last(), Some(&UnlockProgress::Denied));
}

#[tokio::test]
async fn a_device_signed_out_remotely_is_refused_once_the_lock_learns_the_revocation() {
    let env = server().await;
    let url = env.server.url();
    let locks = locks(&url).await;
    let transport = Arc::new(SimulatedTransport::new(locks.clone()));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lost_phone = new_client(&url, Arc::new(MemorySecureStore::new()), dir_a.path());
    let tablet = new_client(&url, Arc::new(MemorySecureStore::new()), dir_b.path());
    sign_in(&lost_phone, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    lost_phone.doors().await.unwrap();
    sign_in(&tablet, &url, porta_server::DEMO_RESIDENT_EMAIL).await;

    let devices = tablet.devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    let lost = devices.iter().find(|d| !d.current).unwrap();
    tablet.sign_out_device(&lost.device_id).await.unwrap();

    // The tablet syncs and, after opening the door, delivers the new revocation delta.
    tablet.doors().await.unwrap();
    tablet.unlock_via(1, transport.clone(), Arc::new(Progress::default())).await.unwrap();
    // The lost phone still holds a credential that has not expired, but the lock knows.
    let result = lost_phone.unlock_via(1, transport, Arc::new(Progress::default())).await;
    assert!(matches!(result, Err(Error::Denied(DenialReason::Revoked))), "{result:?}");
    assert_eq!(locks[0].opened_count(), 1);
}

#[tokio::test]
async fn schedules_doors_and_radio_conditions_give_typed_errors() {
    let env = server().await;
    let url = env.server.url();
    let locks = locks(&url).await;
    let transport = Arc::new(SimulatedTransport::new(locks.clone()));
    let dir = tempfile::tempdir().unwrap();
    let guest = new_client(&url, Arc::new(MemorySecureStore::new()), dir.path());
    // A cleaner may use the bike room, on a weekly window that is not now.
    let minute = ((now() % 86_400) / 60) as u16;
    let start = (minute + 120) % 1380;
    grant(
        &url,
        "cleaner@example.com",
        serde_json::json!({ "doors": [2], "schedule": { "utc_offset_minutes": 0,
            "windows": [{ "days": 127, "start_minute": start, "end_minute": start + 30 }] } }),
    )
    .await;
    sign_in(&guest, &url, "cleaner@example.com").await;
    let doors = guest.doors().await.unwrap();
    assert_eq!(doors.iter().map(|d| d.door_id).collect::<Vec<_>>(), [2]);

    let r = guest.unlock_via(2, transport.clone(), Arc::new(Progress::default())).await;
    assert!(matches!(r, Err(Error::Denied(DenialReason::OutsideSchedule))), "{r:?}");
    let r = guest.unlock_via(1, transport.clone(), Arc::new(Progress::default())).await;
    assert!(matches!(r, Err(Error::NoAccess)), "a door without a credential: {r:?}");

    let ada_dir = tempfile::tempdir().unwrap();
    let ada = new_client(&url, Arc::new(MemorySecureStore::new()), ada_dir.path());
    sign_in(&ada, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    ada.doors().await.unwrap();
    locks[2].set_in_range(false);
    let r = ada.unlock_via(3, transport.clone(), Arc::new(Progress::default())).await;
    assert!(matches!(r, Err(Error::NotInRange)), "{r:?}");
    locks[2].set_in_range(true);
    locks[2].set_busy(true);
    let r = ada.unlock_via(3, transport.clone(), Arc::new(Progress::default())).await;
    assert!(matches!(r, Err(Error::LockBusy)), "{r:?}");
    locks[2].set_busy(false);
    ada.unlock_via(3, transport, Arc::new(Progress::default())).await.unwrap();
}

#[tokio::test]
async fn a_recorded_unlock_replayed_later_never_opens_the_door() {
    let env = server().await;
    let url = env.server.url();
    let (client, _dir) = ada_with_doors(&url).await;
    let locks = locks(&url).await;
    client
        .unlock_via(1, Arc::new(SimulatedTransport::new(locks.clone())), Arc::new(Progress::default()))
        .await
        .unwrap();
    let recorded: Vec<Vec<u8>> = locks[0]
        .air_log()
        .into_iter()
        .filter(|(d, _)| *d == porta_lock::Direction::PhoneToLock)
        .map(|(_, f)| f)
        .collect();
    let _ = locks[0].inject(&recorded).await;
    assert_eq!(locks[0].opened_count(), 1, "the replay did not open the door");
}

#[tokio::test]
async fn a_byte_flipped_on_the_air_is_refused_and_the_credential_still_works() {
    let env = server().await;
    let url = env.server.url();
    let (client, _dir) = ada_with_doors(&url).await;
    let locks = locks(&url).await;
    // Fragment 0 is the Hello; fragment 1 starts the encrypted Proof (MTU 185).
    let attacked = Arc::new(SimulatedTransport::tampering(locks.clone(), 1));
    let result = client.unlock_via(1, attacked, Arc::new(Progress::default())).await;
    assert!(matches!(result, Err(Error::Denied(DenialReason::Rejected))), "{result:?}");
    assert_eq!(locks[0].opened_count(), 0);
    client
        .unlock_via(1, Arc::new(SimulatedTransport::new(locks.clone())), Arc::new(Progress::default()))
        .await
        .unwrap();
    assert_eq!(locks[0].opened_count(), 1);
}

/// A large site: 10,000 revoked credentials and 2,000 revoked devices, written with the
/// server's own revocation functions into its database. A resident's phone still syncs and
/// opens at once; after the decision it delivers every delta, so a lock that knew nothing
/// holds them all, and a revoked phone is refused there.
#[tokio::test]
async fn a_site_with_twelve_thousand_revocations_still_opens_and_delivers_them_all() {
    let env = server().await;
    let url = env.server.url();
    let locks = locks(&url).await;
    let transport = Arc::new(SimulatedTransport::new(locks.clone()));
    let (lost_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lost_phone = new_client(&url, Arc::new(MemorySecureStore::new()), lost_dir.path());
    sign_in(&lost_phone, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    lost_phone.doors().await.unwrap();

    let (t, expires) = (now() as i64, now() as i64 + 3600);
    {
        let conn = rusqlite::Connection::open(env.dir.path().join("server.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let site: String = conn.query_row("SELECT id FROM sites LIMIT 1", [], |r| r.get(0)).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0u32..10_000 {
            let mut id = [0x5A; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            porta_server::authority::revoke_credential(&tx, &site, &id, expires, t).unwrap();
        }
        for i in 0u32..1_999 {
            let mut key = [0x6B; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            porta_server::authority::revoke_device_key(&tx, &site, &key, expires, t).unwrap();
        }
        tx.commit().unwrap();
    }
    // The 2,000th: a phone the resident signs out (its key, listed until its credential ends).
    let tablet = new_client(&url, Arc::new(MemorySecureStore::new()), dir.path());
    sign_in(&tablet, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    let lost = tablet.devices().await.unwrap().into_iter().find(|d| !d.current).unwrap();
    tablet.sign_out_device(&lost.device_id).await.unwrap();

    tablet.doors().await.unwrap();
    let progress = Arc::new(Progress::default());
    tablet.unlock_via(1, transport.clone(), progress.clone()).await.unwrap();
    assert!(progress.0.lock().unwrap().contains(&UnlockProgress::Opened));
    let state = locks[0].lock().state();
    assert_eq!(state.revoked_credentials.len(), 10_000);
    assert_eq!(state.revoked_devices.len(), 2_000);

    let result = lost_phone.unlock_via(1, transport.clone(), Arc::new(Progress::default())).await;
    assert!(matches!(result, Err(Error::Denied(DenialReason::Revoked))), "{result:?}");
    // Everyone else still opens, and a second unlock has nothing left to deliver.
    tablet.unlock_via(1, transport, Arc::new(Progress::default())).await.unwrap();
    assert_eq!(locks[0].opened_count(), 2);
}

/// The building replaces the main entrance's lock (the new one provisioned from its own
/// request): once Ada's phone has synced, the old lock is refused before anything of hers is
/// sent, even though the site once certified it, and so is a lock certified for another door
/// answering for this one. The new lock opens.
#[tokio::test]
async fn a_replaced_lock_and_another_doors_lock_are_refused_by_the_phone() {
    let env = server().await;
    let url = env.server.url();
    let old = locks(&url).await;
    let (client, _dir) = ada_with_doors(&url).await;
    let via = |locks: Vec<porta_lock::SimulatedLock>| Arc::new(SimulatedTransport::new(locks));
    client.unlock_via(1, via(old.clone()), Arc::new(Progress::default())).await.unwrap();
    assert_eq!(old[0].opened_count(), 1);

    let admin = porta_tests::demo_admin_token(&url).await;
    let replacement = porta_core::simulated::new_lock();
    let answer = porta_tests::provision(&url, &admin, 1, &replacement).await;
    let new = porta_core::simulated::install_simulated_lock(&replacement, &answer, 185, 30.0).unwrap();
    assert_ne!(new.lock_id(), old[0].lock_id());
    client.doors().await.unwrap();

    // The old lock, still in place (or taken and re-flashed to answer under the new id).
    let link = porta_lock::LinkParams::new(185, 30.0);
    for id in [old[0].lock_id(), new.lock_id()] {
        let impostor = porta_lock::SimulatedLock::new(old[0].lock().clone(), id, link);
        let progress = Arc::new(Progress::default());
        let result = client.unlock_via(1, via(vec![impostor]), progress.clone()).await;
        if id == old[0].lock_id() {
            // The phone looks for the new lock's id: the old one does not answer for the door.
            assert!(matches!(result, Err(Error::NotInRange)), "{result:?}");
        } else {
            assert!(matches!(result, Err(Error::UntrustedLock)), "{result:?}");
        }
    }
    // Door 2's lock, answering for door 1.
    let other = porta_lock::SimulatedLock::new(old[1].lock().clone(), new.lock_id(), link);
    let result = client.unlock_via(1, via(vec![other]), Arc::new(Progress::default())).await;
    assert!(matches!(result, Err(Error::UntrustedLock)), "{result:?}");
    assert_eq!(old[0].opened_count(), 1, "the old lock never opened again");
    assert_eq!(old[1].opened_count(), 0);

    client.unlock_via(1, via(vec![new.clone()]), Arc::new(Progress::default())).await.unwrap();
    assert_eq!(new.opened_count(), 1);
}
