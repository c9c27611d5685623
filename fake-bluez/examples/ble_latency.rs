//! How long Ada's unlock takes through the real btleplug → D-Bus → fake BlueZ → porta-lock
//! path, beside the same unlock over the in-memory simulated link. Both run the same
//! `Client::unlock`; the difference is what btleplug, libdbus and a `dbus-daemon` hop cost.
//! Neither includes radio airtime (the link-budget example models that).
//!
//! ```sh
//! cargo run --release -p porta-fake-bluez --example ble_latency [RUNS]
//! ```
//! Needs `dbus-daemon` (Debian: `apt-get install dbus-daemon`). Prints a Markdown table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porta_core::simulated::SimulatedTransport;
use porta_core::{Client, ClientConfig, LockTransport, MemorySecureStore, UnlockListener, UnlockProgress};
use porta_fake_bluez::{FakeBluez, FakeLock};

/// When each progress step arrived.
#[derive(Default)]
struct Stamps(Mutex<Vec<(UnlockProgress, Instant)>>);

impl UnlockListener for Stamps {
    fn on_progress(&self, p: UnlockProgress) {
        self.0.lock().unwrap().push((p, Instant::now()));
    }
}

impl Stamps {
    fn at(&self, p: UnlockProgress) -> Instant {
        self.0.lock().unwrap().iter().find(|(q, _)| *q == p).map(|(_, t)| *t).expect("progress step")
    }
}

/// One measured unlock: (tap → connected, connected → decision).
async fn unlock_once(client: &Client, door: u32) -> (Duration, Duration) {
    let stamps = Arc::new(Stamps::default());
    let tapped = Instant::now();
    client.unlock(door, stamps.clone()).await.expect("the door opens");
    let connected = stamps.at(UnlockProgress::Connecting);
    (connected - tapped, stamps.at(UnlockProgress::Opened) - connected)
}

fn millis(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.95))
}

async fn ada(url: &str, dir: &std::path::Path, transport: Option<Arc<dyn LockTransport>>) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.lock_transport = transport;
    let client = Client::new(config, Arc::new(MemorySecureStore::new())).unwrap();
    porta_tests::sign_in(&client, url, porta_server::DEMO_RESIDENT_EMAIL).await;
    client.doors().await.unwrap();
    client
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(30);
    let bluez = FakeBluez::start().expect("start the fake BlueZ (needs dbus-daemon)");
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", bluez.address());
    let server = porta_tests::TestServer::start().await;
    let url = server.url();
    println!("| link | MTU | runs | tap → connected p50 / p95 | connected → decision p50 / p95 |");
    println!("|---|---|---|---|---|");
    for mtu in [23u16, 185, 517] {
        let locks = porta_tests::locks(&url).await;
        let main_door = 1;
        let dir = tempfile::tempdir().unwrap();
        // The in-memory link: the same handshake, no D-Bus (its virtual airtime is not slept).
        let simulated = ada(&url, dir.path(), Some(Arc::new(SimulatedTransport::new(locks.clone())))).await;
        // Bluetooth: the client's built-in btleplug transport.
        let dir2 = tempfile::tempdir().unwrap();
        bluez.set_locks(locks.iter().map(|l| FakeLock::new(l.lock().clone(), l.lock_id(), mtu)).collect());
        let bluetooth = ada(&url, dir2.path(), None).await;
        for (name, client) in [("simulated (in memory)", &simulated), ("btleplug + fake BlueZ", &bluetooth)] {
            unlock_once(client, main_door).await; // warm: the lock learns the time update once
            let mut connect = Vec::new();
            let mut decide = Vec::new();
            for _ in 0..runs {
                let (c, d) = unlock_once(client, main_door).await;
                connect.push(c);
                decide.push(d);
            }
            let ((c50, c95), (d50, d95)) = (millis(connect), millis(decide));
            println!("| {name} | {mtu} | {runs} | {c50:.1} / {c95:.1} ms | {d50:.1} / {d95:.1} ms |");
        }
    }
}
