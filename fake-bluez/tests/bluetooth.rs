//! Ada opens doors through `BtleplugTransport` → D-Bus → the fake BlueZ → a real porta-lock,
//! with her credentials from the real porta-server. Its own test binary: libdbus reads
//! `DBUS_SYSTEM_BUS_ADDRESS` once per process, so every test here shares one private bus and
//! one fake BlueZ, and they take turns.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use porta_core::bluetooth::BtleplugTransport;
use porta_core::{Client, Door, Error, MemorySecureStore, UnlockListener, UnlockProgress};
use porta_fake_bluez::{FakeBluez, FakeLock, Fault, LockTrace};
use porta_lock::SimulatedLock;
use porta_tests::TestServer;

static BLUEZ: OnceLock<FakeBluez> = OnceLock::new();
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The shared fake BlueZ, and this test's turn at it.
async fn bluez() -> (tokio::sync::MutexGuard<'static, ()>, &'static FakeBluez) {
    let turn = TURN.lock().await;
    let bluez = BLUEZ.get_or_init(|| {
        let bluez = FakeBluez::start().expect("start the fake BlueZ (needs dbus-daemon)");
        // Before btleplug first opens the "system" bus: this process only ever sees ours.
        std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bluez.address());
        bluez
    });
    (turn, bluez)
}

#[derive(Default)]
struct Progress(Mutex<Vec<UnlockProgress>>);

impl UnlockListener for Progress {
    fn on_progress(&self, p: UnlockProgress) {
        self.0.lock().unwrap().push(p);
    }
}

/// Ada, signed in on a fresh phone that synced her doors, and the demo building's locks.
struct Building {
    _server: TestServer,
    _dir: tempfile::TempDir,
    ada: Client,
    doors: Vec<Door>,
    locks: Vec<SimulatedLock>,
}

impl Building {
    async fn new() -> Building {
        let server = TestServer::start().await;
        let url = server.url();
        let dir = tempfile::tempdir().unwrap();
        let ada = porta_tests::client(&url, Arc::new(MemorySecureStore::new()), dir.path(), Duration::from_secs(5));
        porta_tests::sign_in(&ada, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
        let doors = ada.doors().await.unwrap();
        let locks = porta_tests::locks(&url).await;
        Building { _server: server, _dir: dir, ada, doors, locks }
    }

    /// The lock of the door called `name`.
    fn lock_of(&self, name: &str) -> (u32, SimulatedLock) {
        let door = self.doors.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("no door {name}"));
        let lock = self.locks.iter().find(|l| Some(l.lock_id()) == door.lock_id).unwrap().clone();
        (door.door_id, lock)
    }

    /// Opens `door_id` over the client's built-in Bluetooth transport (what an app gets with no
    /// `lock_transport`), or over `transport` this once.
    async fn unlock(
        &self,
        door_id: u32,
        transport: Option<BtleplugTransport>,
    ) -> (Result<(), Error>, Vec<UnlockProgress>) {
        let progress = Arc::new(Progress::default());
        let result = match transport {
            None => self.ada.unlock(door_id, progress.clone()).await,
            Some(transport) => self.ada.unlock_via(door_id, Arc::new(transport), progress.clone()).await,
        };
        let seen = progress.0.lock().unwrap().clone();
        (result, seen)
    }
}

fn fake(lock: &SimulatedLock, mtu: u16) -> FakeLock {
    FakeLock::new(lock.lock().clone(), lock.lock_id(), mtu)
}

/// The link is closed and the phone said so to BlueZ.
fn assert_closed(trace: &LockTrace) {
    assert!(!trace.connected, "the link is still up: {trace:?}");
    assert!(trace.disconnect_calls >= 1, "the phone never disconnected: {trace:?}");
}

async fn opens_the_main_entrance_at(mtu: u16) {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(building.locks.iter().map(|l| fake(l, mtu)).collect());

    let started = Instant::now();
    let (result, progress) = building.unlock(door, None).await;
    result.unwrap();
    porta_tests::report(&format!("bluetooth: MTU {mtu}: opened in {:?} (scan, connect, handshake)", started.elapsed()));

    assert_eq!(main.opened_count(), 1);
    assert_eq!(
        progress,
        [UnlockProgress::Searching, UnlockProgress::Connecting, UnlockProgress::Verifying, UnlockProgress::Opened]
    );
    let trace = bluez.trace(main.lock_id());
    assert_eq!(trace.connects, 1, "{trace:?}");
    assert_closed(&trace);
    // The phone fragments for the MTU BlueZ reports, not for the 23 it would otherwise assume:
    // the Proof (273+ bytes) fills a fragment at 23 and 185, and fits in one at 517.
    let capacity = usize::from(mtu - 3).min(512);
    let largest = trace.writes.iter().copied().max().unwrap();
    assert!(trace.writes.iter().all(|&len| len <= capacity), "{trace:?}");
    if mtu < 517 {
        assert_eq!(largest, capacity, "{trace:?}");
    } else {
        assert!(largest > 182, "{trace:?}");
        assert!(trace.writes.len() <= 3, "Hello and Proof in one write each: {trace:?}");
    }
    assert!(trace.notifications >= 2, "{trace:?}");

    let log = building.ada.access_log().await.unwrap();
    assert_eq!(log.events.len(), 1);
    assert!(log.events[0].opened());
}

#[tokio::test]
async fn ada_opens_the_main_entrance_over_bluetooth_at_mtu_23() {
    opens_the_main_entrance_at(23).await;
}

#[tokio::test]
async fn ada_opens_the_main_entrance_over_bluetooth_at_mtu_185() {
    opens_the_main_entrance_at(185).await;
}

#[tokio::test]
async fn ada_opens_the_main_entrance_over_bluetooth_at_mtu_517() {
    opens_the_main_entrance_at(517).await;
}

#[tokio::test]
async fn one_transport_opens_door_after_door() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (main_door, main) = building.lock_of("Main entrance");
    let (bike_door, bike) = building.lock_of("Bike room");
    bluez.set_locks(vec![fake(&main, 185), fake(&bike, 185)]);

    // The client's built-in transport lives as long as the client, its Bluetooth session kept,
    // and the locks it met: the second visit to the main entrance connects with no scan.
    let scans = bluez.scans();
    for door in [main_door, bike_door, main_door] {
        building.ada.unlock(door, Arc::new(Progress::default())).await.unwrap();
    }
    assert_eq!((main.opened_count(), bike.opened_count()), (2, 1));
    assert_eq!(bluez.scans() - scans, 2, "one scan per lock, none for a lock met before");
    assert_eq!(bluez.trace(main.lock_id()).connects, 2);
    assert_closed(&bluez.trace(main.lock_id()));
    assert_closed(&bluez.trace(bike.lock_id()));
}

#[tokio::test]
async fn with_two_locks_in_range_the_phone_connects_to_the_doors_own() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (_, main) = building.lock_of("Main entrance");
    let (bike_door, bike) = building.lock_of("Bike room");
    // The main entrance is heard first.
    bluez.set_locks(vec![fake(&main, 185), fake(&bike, 185)]);

    let (result, _) = building.unlock(bike_door, None).await;
    result.unwrap();
    assert_eq!(bike.opened_count(), 1);
    assert_eq!(main.opened_count(), 0);
    assert_eq!(bluez.trace(main.lock_id()).connects, 0, "the other lock was never touched");
    assert_closed(&bluez.trace(bike.lock_id()));
}

#[tokio::test]
async fn a_lock_that_does_not_advertise_is_not_in_range() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    let others = building.locks.iter().filter(|l| l.lock_id() != main.lock_id()).map(|l| fake(l, 185));
    bluez.set_locks(others.chain([fake(&main, 185).with_fault(Fault::NotAdvertising)]).collect());

    let started = Instant::now();
    let transport = BtleplugTransport::new().with_scan_timeout(Duration::from_secs(2));
    let (result, progress) = building.unlock(door, Some(transport)).await;
    assert!(matches!(result, Err(Error::NotInRange)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "the scan gave up in time");
    assert_eq!(progress, [UnlockProgress::Searching]);
    assert_eq!(bluez.trace(main.lock_id()), LockTrace::default(), "never connected");
    assert!(building.locks.iter().all(|l| bluez.trace(l.lock_id()).connects == 0));
}

#[tokio::test]
async fn a_lock_that_stops_advertising_after_it_was_heard_is_not_in_range() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185)]);
    // One session for both unlocks: btleplug keeps what it heard in the first.
    let transport = Arc::new(BtleplugTransport::new().with_scan_timeout(Duration::from_secs(2)));
    building.ada.unlock_via(door, transport.clone(), Arc::new(Progress::default())).await.unwrap();

    bluez.set_fault(main.lock_id(), Fault::NotAdvertising);
    let result = building.ada.unlock_via(door, transport, Arc::new(Progress::default())).await;
    assert!(matches!(result, Err(Error::NotInRange)), "{result:?}");
    assert_eq!(bluez.opened_count(main.lock_id()), 1);
    assert_eq!(bluez.trace(main.lock_id()).connects, 1, "the second unlock never connected");
}

#[tokio::test]
async fn a_link_lost_mid_handshake_is_a_connection_error_and_the_door_stays_shut() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::DisconnectMidHandshake)]);

    let started = Instant::now();
    let (result, _) = building.unlock(door, None).await;
    match &result {
        Err(Error::ConnectionLost) => {}
        other => panic!("expected a lost connection, got {other:?}"),
    }
    // Noticed as a disconnection, not waited out as a silent lock.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(main.opened_count(), 0);
    let trace = bluez.trace(main.lock_id());
    assert_eq!(trace.connects, 2, "one retry, then the phone gives up: {trace:?}");
    assert_closed(&trace);
}

#[tokio::test]
async fn a_link_lost_once_mid_handshake_is_retried_and_the_door_opens() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::DisconnectMidHandshakeOnce)]);

    let (result, progress) = building.unlock(door, None).await;
    result.unwrap();
    assert_eq!(main.opened_count(), 1);
    assert_eq!(progress.last(), Some(&UnlockProgress::Opened));
    let trace = bluez.trace(main.lock_id());
    assert_eq!(trace.connects, 2, "{trace:?}");
    assert_closed(&trace);
}

#[tokio::test]
async fn a_lock_that_never_answers_times_out_and_the_link_is_closed() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::Silent)]);

    let (result, progress) = building.unlock(door, None).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert_eq!(progress, [UnlockProgress::Searching, UnlockProgress::Connecting]);
    assert_eq!(main.opened_count(), 0);
    let trace = bluez.trace(main.lock_id());
    assert_eq!(trace.notifications, 0);
    assert_closed(&trace);
}

#[tokio::test]
async fn bluetooth_off_says_so() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185)]);
    bluez.set_powered(false);

    let (result, _) = building.unlock(door, None).await;
    bluez.set_powered(true);
    match &result {
        Err(Error::BluetoothOff) => {}
        other => panic!("expected Bluetooth off, got {other:?}"),
    }
    assert_eq!(bluez.trace(main.lock_id()), LockTrace::default());
}

#[tokio::test]
async fn a_link_lost_after_the_proof_is_not_retried_so_the_lock_decides_once() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::DisconnectBeforeResult)]);

    let (result, progress) = building.unlock(door, None).await;
    assert!(matches!(result, Err(Error::ConnectionLost)), "{result:?}");
    // The lock opened but its answer was lost: a second handshake would be a second decision
    // (and a second audit record), so the phone reports the lost link instead.
    assert_eq!(main.opened_count(), 1);
    assert_eq!(progress, [UnlockProgress::Searching, UnlockProgress::Connecting, UnlockProgress::Verifying]);
    let trace = bluez.trace(main.lock_id());
    assert_eq!(trace.connects, 1, "no retry after the Proof: {trace:?}");
    assert_closed(&trace);
}

#[tokio::test]
async fn an_unlock_the_user_cancels_closes_the_link_at_once() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::Silent)]);

    // The app drops the unlock's future (the user tapped Cancel) while the lock is silent.
    let unlock = building.ada.unlock(door, Arc::new(Progress::default()));
    assert!(tokio::time::timeout(Duration::from_millis(1500), unlock).await.is_err(), "still waiting");
    assert!(bluez.trace(main.lock_id()).connects == 1);
    // Well before the 3 s reply timeout would have ended it.
    let deadline = Instant::now() + Duration::from_millis(1000);
    while bluez.trace(main.lock_id()).connected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_closed(&bluez.trace(main.lock_id()));
    assert_eq!(main.opened_count(), 0);
}

#[tokio::test]
async fn a_lock_busy_with_another_phone_is_lock_busy_not_out_of_range() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185).with_fault(Fault::Busy)]);

    let transport = BtleplugTransport::new().with_scan_timeout(Duration::from_secs(2));
    let (result, progress) = building.unlock(door, Some(transport)).await;
    assert!(matches!(result, Err(Error::LockBusy)), "{result:?}");
    assert_eq!(progress, [UnlockProgress::Searching]);
    assert_eq!(bluez.trace(main.lock_id()).connects, 0, "a busy lock is not connected to");
}

#[tokio::test]
async fn bluetooth_not_permitted_says_so() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185)]);
    bluez.set_permitted(false);

    let (result, _) = building.unlock(door, None).await;
    bluez.set_permitted(true);
    assert!(matches!(result, Err(Error::BluetoothNotPermitted)), "{result:?}");
    assert_eq!(bluez.trace(main.lock_id()), LockTrace::default());
}

#[tokio::test]
async fn a_known_lock_that_went_away_is_found_again_by_scanning() {
    let (_turn, bluez) = bluez().await;
    let building = Building::new().await;
    let (door, main) = building.lock_of("Main entrance");
    bluez.set_locks(vec![fake(&main, 185)]);
    building.ada.unlock(door, Arc::new(Progress::default())).await.unwrap();

    // The lock was replaced on the bus (rebooted, or BlueZ forgot it): the direct connection
    // to the remembered device fails, and the phone scans and opens anyway.
    bluez.set_locks(vec![fake(&main, 185)]);
    let scans = bluez.scans();
    let (result, progress) = building.unlock(door, None).await;
    result.unwrap();
    assert_eq!(progress.last(), Some(&UnlockProgress::Opened));
    assert_eq!(bluez.scans() - scans, 1);
    assert_eq!(main.opened_count(), 2);
    assert_closed(&bluez.trace(main.lock_id()));
}
