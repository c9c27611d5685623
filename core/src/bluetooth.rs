//! [`LockTransport`] over a real Bluetooth LE radio with btleplug (BlueZ on Linux, CoreBluetooth,
//! WinRT, Android's droidplug). Behind the `bluetooth` feature.
//!
//! A connect scans for the Porta service, picks the lock whose advert carries the door's lock
//! id in its service data (protocol/SPEC.md §6.1), connects, discovers the service, subscribes
//! to TX and learns the ATT MTU. Every way out closes the link: [`LockTransport::disconnect`],
//! a failed connect, a cancelled unlock ([`LockTransport::cancel`]) and dropping the transport.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use btleplug::api::{Central as _, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures_util::{FutureExt as _, Stream, StreamExt as _};
use tokio::time::Instant;
use uuid::Uuid;

use crate::unlock::{LockTransport, TransportError, PORTA_SERVICE_UUID};

/// The lock's RX characteristic (the phone writes fragments to it), SPEC §6.1.
pub const PORTA_RX_UUID: &str = "5a1e0002-7c3b-4f2e-9b1d-706f72746121";
/// The lock's TX characteristic (the lock notifies fragments on it), SPEC §6.1.
pub const PORTA_TX_UUID: &str = "5a1e0003-7c3b-4f2e-9b1d-706f72746121";

/// The ATT MTU every BLE link has before any exchange, and what we assume when the platform
/// does not tell.
const DEFAULT_ATT_MTU: u16 = 23;

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("valid UUID constant")
}

/// Bluetooth LE through the platform's stack, via btleplug. Use one per client: it keeps its
/// connection to the platform's Bluetooth service (on Linux a D-Bus connection served by a task
/// on the runtime that made it) from the first unlock on.
pub struct BtleplugTransport {
    scan_timeout: Option<Duration>,
    adapter: tokio::sync::Mutex<Option<Adapter>>,
    link: tokio::sync::Mutex<Option<Link>>,
    /// Locks met before, with their GATT services discovered: the next unlock of the same door
    /// connects at once, with no scan and no second service discovery.
    known: std::sync::Mutex<HashMap<u32, Peripheral>>,
}

/// How long a direct connection to a known lock may take before the phone scans instead (it
/// may have moved out of range, or be busy with another phone).
const KNOWN_LOCK_BUDGET: Duration = Duration::from_secs(3);

impl Default for BtleplugTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl BtleplugTransport {
    pub fn new() -> Self {
        Self {
            scan_timeout: None,
            adapter: tokio::sync::Mutex::new(None),
            link: tokio::sync::Mutex::new(None),
            known: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Gives up the scan after `timeout` even if the caller allows longer (a lock that does not
    /// advertise is then `NotInRange` sooner).
    pub fn with_scan_timeout(mut self, timeout: Duration) -> Self {
        self.scan_timeout = Some(timeout);
        self
    }
}

type Events = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;
type Notifications = Pin<Box<dyn Stream<Item = btleplug::api::ValueNotification> + Send>>;

/// One open connection to a lock.
struct Link {
    peripheral: Peripheral,
    rx: Characteristic,
    tx: Uuid,
    notifications: Notifications,
    /// The adapter's events, watched for this lock's disconnection.
    events: Events,
    lost: bool,
    /// Where to run the disconnect when the link is dropped rather than closed.
    runtime: Option<tokio::runtime::Handle>,
    closed: bool,
}

impl Link {
    fn new(peripheral: Peripheral, rx: Characteristic, notifications: Notifications, events: Events) -> Link {
        Link {
            peripheral,
            rx,
            tx: uuid(PORTA_TX_UUID),
            notifications,
            events,
            lost: false,
            runtime: tokio::runtime::Handle::try_current().ok(),
            closed: false,
        }
    }

    /// Whether the adapter has reported the link gone (without waiting).
    fn check_lost(&mut self) -> bool {
        while let Some(Some(event)) = self.events.next().now_or_never() {
            self.note(&event);
        }
        self.lost
    }

    fn note(&mut self, event: &CentralEvent) {
        if matches!(event, CentralEvent::DeviceDisconnected(id) if *id == self.peripheral.id()) {
            self.lost = true;
        }
    }

    async fn close(mut self) {
        self.closed = true;
        let _ = self.peripheral.disconnect().await;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Dropped without `close` (a cancelled unlock, a dropped transport): free the lock
        // for the next phone in the background.
        if let Some(runtime) = self.runtime.take() {
            let peripheral = self.peripheral.clone();
            runtime.spawn(async move {
                let _ = peripheral.disconnect().await;
            });
        }
    }
}

/// Maps btleplug's errors to what the UI can say. D-Bus error names are BlueZ's.
fn map_error(e: btleplug::Error) -> TransportError {
    use btleplug::Error as E;
    match e {
        E::PermissionDenied => TransportError::NotPermitted,
        E::DeviceNotFound => TransportError::NotInRange,
        E::NotConnected => TransportError::Disconnected,
        E::TimedOut(_) => TransportError::Timeout,
        // droidplug reports the adapter switched off as no adapter at all.
        #[cfg(target_os = "android")]
        E::NoAdapterAvailable => TransportError::BluetoothOff,
        other => {
            let text = other.to_string();
            // btleplug keeps only the D-Bus message; "Rejected send message" is the bus daemon's
            // AccessDenied text.
            // Android: a scan without BLUETOOTH_SCAN is a SecurityException from the framework.
            if [
                "org.freedesktop.DBus.Error.AccessDenied",
                "Rejected send message",
                "org.bluez.Error.NotAuthorized",
                "SecurityException",
            ]
            .iter()
            .any(|t| text.contains(t))
            {
                // The bus policy (Linux: not in the `bluetooth` group, no active seat).
                TransportError::NotPermitted
            } else if text.contains("org.bluez.Error.NotReady") || text.contains("rfkill") {
                TransportError::BluetoothOff
            } else if text.contains("org.freedesktop.DBus.Error.ServiceUnknown") {
                TransportError::Failed("Bluetooth is unavailable: the Bluetooth service is not running".into())
            } else if text.contains("Not connected") || text.contains("NotConnected") {
                TransportError::Disconnected
            } else if text.contains("org.bluez.Error.InProgress") {
                TransportError::Busy
            } else {
                TransportError::Failed(text)
            }
        }
    }
}

/// Whether the advert is the lock `lock_id`'s, and then whether it says it is busy with another
/// phone (SPEC §6.1: lock id u32 BE, then an optional flags byte, bit 0 = busy).
fn advert(service_data: &HashMap<Uuid, Vec<u8>>, lock_id: u32) -> Option<Busy> {
    let data = service_data.get(&uuid(PORTA_SERVICE_UUID))?;
    (data.get(..4) == Some(&lock_id.to_be_bytes()[..])).then(|| Busy(data.get(4).is_some_and(|f| f & 0x01 != 0)))
}

/// The lock says it is serving another phone.
#[derive(Clone, Copy)]
struct Busy(bool);

async fn first_adapter() -> Result<Adapter, TransportError> {
    let manager = Manager::new().await.map_err(|e| match e {
        btleplug::Error::PermissionDenied => map_error(e),
        e => TransportError::Failed(format!("Bluetooth is unavailable: {e}")),
    })?;
    let adapters = manager.adapters().await.map_err(map_error)?;
    adapters.into_iter().next().ok_or_else(|| TransportError::Failed("no Bluetooth adapter".into()))
}

/// The peripheral `id`, if it advertises `lock_id`, and whether it is busy.
async fn the_lock(adapter: &Adapter, id: &PeripheralId, lock_id: u32) -> Option<(Peripheral, Busy)> {
    let peripheral = adapter.peripheral(id).await.ok()?;
    let properties = peripheral.properties().await.ok()??;
    advert(&properties.service_data, lock_id).map(|busy| (peripheral, busy))
}

/// Waits for the lock's advert, one that is not busy: devices the adapter already knows
/// first, then scan events (a busy lock's next advert may say it is free). `saw_busy` tells the
/// caller, if the scan times out, that the lock was there but busy.
async fn find(
    adapter: &Adapter,
    events: &mut Events,
    lock_id: u32,
    saw_busy: &mut bool,
) -> Result<Peripheral, TransportError> {
    for peripheral in adapter.peripherals().await.map_err(map_error)? {
        if let Ok(Some(p)) = peripheral.properties().await {
            match advert(&p.service_data, lock_id) {
                Some(Busy(false)) => return Ok(peripheral),
                Some(Busy(true)) => *saw_busy = true,
                None => {}
            }
        }
    }
    while let Some(event) = events.next().await {
        let id = match &event {
            CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => id,
            CentralEvent::ServiceDataAdvertisement { id, service_data } if advert(service_data, lock_id).is_some() => {
                id
            }
            _ => continue,
        };
        match the_lock(adapter, id, lock_id).await {
            Some((peripheral, Busy(false))) => return Ok(peripheral),
            Some((_, Busy(true))) => *saw_busy = true,
            None => {}
        }
    }
    Err(TransportError::Failed("Bluetooth adapter stopped reporting".into()))
}

/// Connects, discovers the Porta service (unless this peripheral already knows it) and
/// subscribes to TX.
async fn open(peripheral: &Peripheral) -> Result<(Characteristic, Notifications, u16), TransportError> {
    peripheral.connect().await.map_err(map_error)?;
    let has = |u: &str| peripheral.characteristics().iter().any(|c| c.uuid == uuid(u));
    if !(has(PORTA_RX_UUID) && has(PORTA_TX_UUID)) {
        peripheral.discover_services().await.map_err(map_error)?;
    }
    let characteristics = peripheral.characteristics();
    let find =
        |u: &str| characteristics.iter().find(|c| c.uuid == uuid(u) && c.service_uuid == uuid(PORTA_SERVICE_UUID));
    let not_porta = || TransportError::Failed("not a Porta lock (its GATT service is missing)".into());
    let rx = find(PORTA_RX_UUID).ok_or_else(not_porta)?.clone();
    let tx = find(PORTA_TX_UUID).ok_or_else(not_porta)?.clone();
    // Listen before subscribing, so the lock's first notification cannot slip past.
    let notifications = peripheral.notifications().await.map_err(map_error)?;
    peripheral.subscribe(&tx).await.map_err(map_error)?;
    let mtu = att_mtu(peripheral);
    Ok((rx, notifications, mtu))
}

/// The connection's negotiated ATT MTU where the platform tells it (BlueZ: the characteristics'
/// `MTU` property; CoreBluetooth: the maximum write length), else 23.
fn att_mtu(peripheral: &Peripheral) -> u16 {
    let mtu = peripheral.mtu();
    if (DEFAULT_ATT_MTU..=517).contains(&mtu) {
        mtu
    } else {
        DEFAULT_ATT_MTU
    }
}

impl BtleplugTransport {
    async fn adapter(&self) -> Result<Adapter, TransportError> {
        let mut cached = self.adapter.lock().await;
        if let Some(adapter) = &*cached {
            return Ok(adapter.clone());
        }
        let adapter = first_adapter().await?;
        *cached = Some(adapter.clone());
        Ok(adapter)
    }
}

#[async_trait::async_trait]
impl LockTransport for BtleplugTransport {
    async fn connect(&self, lock_id: u32, timeout: Duration) -> Result<u16, TransportError> {
        let mut slot = self.link.lock().await;
        if let Some(old) = slot.take() {
            old.close().await;
        }
        let deadline = Instant::now() + timeout;
        let adapter = self.adapter().await?;

        let known = self.known.lock().ok().and_then(|k| k.get(&lock_id).cloned());
        if let Some(peripheral) = known {
            let budget = (Instant::now() + KNOWN_LOCK_BUDGET).min(deadline);
            let direct = async {
                let events = adapter.events().await.map_err(map_error)?;
                let opened = open(&peripheral).await?;
                Ok::<_, TransportError>((opened, events))
            };
            match tokio::time::timeout_at(budget, direct).await {
                Ok(Ok(((rx, notifications, mtu), events))) => {
                    *slot = Some(Link::new(peripheral, rx, notifications, events));
                    return Ok(mtu);
                }
                // Gone, moved, busy or changed: forget it and find the lock afresh.
                _ => {
                    let _ = peripheral.disconnect().await;
                    if let Ok(mut k) = self.known.lock() {
                        k.remove(&lock_id);
                    }
                }
            }
        }

        let scan_deadline = Instant::now() + self.scan_timeout.map_or(timeout, |s| s.min(timeout));
        let scan = async {
            let mut events = adapter.events().await.map_err(map_error)?;
            adapter.start_scan(ScanFilter { services: vec![uuid(PORTA_SERVICE_UUID)] }).await.map_err(map_error)?;
            let mut saw_busy = false;
            let found =
                tokio::time::timeout_at(scan_deadline, find(&adapter, &mut events, lock_id, &mut saw_busy)).await;
            let _ = adapter.stop_scan().await;
            let gone = if saw_busy { TransportError::Busy } else { TransportError::NotInRange };
            Ok((found.map_err(|_| gone)??, events))
        };
        let (peripheral, events) = match scan.await {
            Ok(found) => found,
            Err(e) => {
                if matches!(e, TransportError::Failed(_)) {
                    // Perhaps the platform's service went away: start afresh next time.
                    self.adapter.lock().await.take();
                }
                return Err(e);
            }
        };

        match tokio::time::timeout_at(deadline, open(&peripheral)).await {
            Ok(Ok((rx, notifications, mtu))) => {
                if let Ok(mut k) = self.known.lock() {
                    k.insert(lock_id, peripheral.clone());
                }
                *slot = Some(Link::new(peripheral, rx, notifications, events));
                Ok(mtu)
            }
            Ok(Err(e)) => {
                let _ = peripheral.disconnect().await;
                Err(e)
            }
            Err(_elapsed) => {
                let _ = peripheral.disconnect().await;
                Err(TransportError::Timeout)
            }
        }
    }

    async fn write(&self, fragment: Vec<u8>) -> Result<(), TransportError> {
        let mut slot = self.link.lock().await;
        let link = slot.as_mut().ok_or(TransportError::Disconnected)?;
        if link.check_lost() {
            return Err(TransportError::Disconnected);
        }
        link.peripheral.write(&link.rx, &fragment, WriteType::WithoutResponse).await.map_err(map_error)
    }

    async fn next_notification(&self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let mut slot = self.link.lock().await;
        let link = slot.as_mut().ok_or(TransportError::Disconnected)?;
        let deadline = Instant::now() + timeout;
        loop {
            // Notifications first: those that arrived before the link dropped still count.
            if let Some(Some(n)) = link.notifications.next().now_or_never() {
                if n.uuid == link.tx {
                    return Ok(n.value);
                }
                continue;
            }
            if link.check_lost() {
                return Err(TransportError::Disconnected);
            }
            tokio::select! {
                biased;
                n = link.notifications.next() => match n {
                    Some(n) if n.uuid == link.tx => return Ok(n.value),
                    Some(_) => {}
                    None => return Err(TransportError::Disconnected),
                },
                event = link.events.next() => match event {
                    Some(event) => link.note(&event),
                    None => return Err(TransportError::Disconnected),
                },
                _ = tokio::time::sleep_until(deadline) => return Err(TransportError::Timeout),
            }
        }
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        if let Some(link) = self.link.lock().await.take() {
            link.close().await;
        }
        Ok(())
    }

    fn cancel(&self) {
        // Dropping the link disconnects it in the background.
        if let Ok(mut slot) = self.link.try_lock() {
            slot.take();
        }
    }
}
