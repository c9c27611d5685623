//! # porta-fake-bluez
//!
//! A fake BlueZ for tests: a **private** `dbus-daemon` (never the system bus) on which this
//! crate owns `org.bluez` and serves what btleplug's Linux backend (bluez-async) talks to —
//! the `ObjectManager` at `/`, an `Adapter1` (`hci0`), and per lock a `Device1` advertising the
//! Porta service with its lock id in the service data (protocol/SPEC.md §6.1), one
//! `GattService1` and its RX / TX `GattCharacteristic1`s.
//!
//! Writes to RX go into a real [`porta_lock::LockConnection`]; its reply fragments come back
//! as `PropertiesChanged(Value)` on TX, which is what BlueZ sends for a notification. So the
//! real protocol bytes cross btleplug and D-Bus, and nothing in the phone's code knows it is a
//! test. Faults ([`Fault`]) make a lock stay silent, drop the link, or not advertise.
//!
//! A process talks to the fake by pointing `DBUS_SYSTEM_BUS_ADDRESS` at [`FakeBluez::address`]
//! before anything in it opens the system bus (libdbus reads the variable once).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dbus::arg::{PropMap, RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::PropertiesPropertiesChanged;
use dbus::blocking::SyncConnection;
use dbus::channel::{Channel, MatchingReceiver, Sender};
use dbus::message::{MatchRule, SignalArgs};
use dbus::{Message, Path};
use dbus_crossroads::{Crossroads, IfaceBuilder, IfaceToken, MethodErr};
use porta_lock::{Lock, LockConnection};

/// The Porta GATT service (protocol/SPEC.md §6.1).
pub const SERVICE_UUID: &str = "5a1e0001-7c3b-4f2e-9b1d-706f72746121";
/// The lock's RX characteristic: the phone writes fragments here.
pub const RX_UUID: &str = "5a1e0002-7c3b-4f2e-9b1d-706f72746121";
/// The lock's TX characteristic: the lock notifies fragments here.
pub const TX_UUID: &str = "5a1e0003-7c3b-4f2e-9b1d-706f72746121";

const ADAPTER_PATH: &str = "/org/bluez/hci0";
const DEVICE1: &str = "org.bluez.Device1";
const CHARACTERISTIC1: &str = "org.bluez.GattCharacteristic1";

/// How a fake lock misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Behaves like a working lock.
    None,
    /// Does not advertise: a scan never finds it.
    NotAdvertising,
    /// Drops the link at the moment it would send its first reply (mid-handshake), on every
    /// connection.
    DisconnectMidHandshake,
    /// Like [`Fault::DisconnectMidHandshake`], on the first connection only.
    DisconnectMidHandshakeOnce,
    /// Decides (and opens, if the phone may), then drops the link instead of sending the
    /// Result: the phone cannot know what happened.
    DisconnectBeforeResult,
    /// Advertises that it is busy with another phone (SPEC §6.1 flags), and never stops.
    Busy,
    /// Takes every write but never sends a notification.
    Silent,
}

/// A lock to put in range of the fake adapter.
pub struct FakeLock {
    lock: Lock,
    lock_id: u32,
    att_mtu: u16,
    fault: Fault,
}

impl FakeLock {
    /// `lock` advertising `lock_id`, on connections with this ATT MTU (23..=517).
    pub fn new(lock: Lock, lock_id: u32, att_mtu: u16) -> Self {
        Self { lock, lock_id, att_mtu, fault: Fault::None }
    }

    /// The same lock, misbehaving.
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }
}

/// What a lock saw of the phone, for the tests' assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockTrace {
    /// `Device1.Connect` calls that opened a link.
    pub connects: u32,
    /// `Device1.Disconnect` calls (whether or not the link was still up).
    pub disconnect_calls: u32,
    /// Whether a link is up now.
    pub connected: bool,
    /// Whether the phone is subscribed to TX now.
    pub notifying: bool,
    /// Length of every fragment written to RX, in order.
    pub writes: Vec<usize>,
    /// Notifications sent on TX.
    pub notifications: usize,
}

struct Device {
    lock: Lock,
    lock_id: u32,
    att_mtu: u16,
    fault: Fault,
    address: String,
    path: String,
    /// The device object is on the bus (it was seen in a scan).
    exported: bool,
    link: Option<LockConnection>,
    /// Messages the lock answered on the current link (1 = Challenge, 2 = Result).
    answers: u32,
    trace: LockTrace,
}

impl Device {
    fn service_path(&self) -> String {
        format!("{}/service0010", self.path)
    }
    fn rx_path(&self) -> String {
        format!("{}/service0010/char0011", self.path)
    }
    fn tx_path(&self) -> String {
        format!("{}/service0010/char0013", self.path)
    }
    fn paths(&self) -> [String; 4] {
        [self.path.clone(), self.service_path(), self.rx_path(), self.tx_path()]
    }
}

struct World {
    powered: bool,
    /// The bus policy lets the phone's process use Bluetooth.
    permitted: bool,
    discovering: bool,
    /// `StartDiscovery` calls that succeeded, over the bus's life.
    scans: u32,
    devices: HashMap<u32, Device>,
    next_key: u32,
    started: Instant,
}

type Shared = Arc<Mutex<World>>;

fn world(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

fn unknown() -> MethodErr {
    MethodErr::from(("org.freedesktop.DBus.Error.UnknownObject", "no such object"))
}

fn changed(path: &str, interface: &str, props: PropMap) -> Message {
    let signal = PropertiesPropertiesChanged {
        interface_name: interface.into(),
        changed_properties: props,
        invalidated_properties: Vec::new(),
    };
    signal.to_emit_message(&Path::from(path.to_owned()))
}

fn prop<T: RefArg + 'static>(name: &str, value: T) -> (String, Variant<Box<dyn RefArg>>) {
    (name.to_owned(), Variant(Box::new(value) as Box<dyn RefArg>))
}

fn link_state(d: &Device) -> Message {
    let up = d.trace.connected;
    changed(&d.path, DEVICE1, [prop("Connected", up), prop("ServicesResolved", up)].into_iter().collect())
}

/// Closes the device's link as the lock side would (drops the handshake state).
fn drop_link(d: &mut Device) -> Option<Message> {
    let was_up = d.trace.connected;
    d.link = None;
    d.trace.connected = false;
    d.trace.notifying = false;
    was_up.then(|| link_state(d))
}

#[derive(Clone, Copy)]
struct Ifaces {
    device: IfaceToken<u32>,
    service: IfaceToken<u32>,
    characteristic: IfaceToken<u32>,
}

/// The running fake: its bus, its objects and the thread serving them. Dropping it stops
/// the thread and the bus.
pub struct FakeBluez {
    address: String,
    world: Shared,
    cr: Arc<Mutex<Crossroads>>,
    conn: Arc<SyncConnection>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The bus's keeper: closing its stdin (here, or when this process dies) stops the bus.
    keeper: Child,
    keeper_stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

fn io_error(what: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what}: {e}"))
}

impl FakeBluez {
    /// Starts a private `dbus-daemon` and the fake `org.bluez` on it, with the adapter
    /// powered and no locks in range. Needs `dbus-daemon` on PATH (Debian: `dbus-daemon`).
    pub fn start() -> std::io::Result<FakeBluez> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("system_bus_socket");
        let conf = dir.path().join("bus.conf");
        let socket = socket.to_str().ok_or_else(|| io_error("temp dir", "not UTF-8"))?;
        std::fs::write(&conf, include_str!("bus.conf").replace("@SOCKET@", socket))?;
        // The shell keeps the daemon only as long as our end of its stdin is open, so the bus
        // never outlives the test process, even when it is killed.
        let mut keeper = Command::new("sh")
            .arg("-c")
            .arg(r#"dbus-daemon --config-file="$1" --nofork --print-address=1 & pid=$!; read _ignored; kill $pid; wait $pid"#)
            .arg("sh")
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let keeper_stdin = keeper.stdin.take();
        let mut address = String::new();
        BufReader::new(keeper.stdout.take().expect("piped")).read_line(&mut address)?;
        let address = address.trim().to_owned();
        if address.is_empty() {
            return Err(io_error(
                "dbus-daemon",
                "did not start (is it installed? Debian: apt-get install dbus-daemon)",
            ));
        }

        let mut channel = Channel::open_private(&address).map_err(|e| io_error("private bus", e))?;
        channel.register().map_err(|e| io_error("private bus", e))?;
        let conn = Arc::new(SyncConnection::from(channel));
        conn.request_name("org.bluez", false, true, true).map_err(|e| io_error("org.bluez", e))?;

        let world: Shared = Arc::new(Mutex::new(World {
            powered: true,
            permitted: true,
            discovering: false,
            scans: 0,
            devices: HashMap::new(),
            next_key: 1,
            started: Instant::now(),
        }));
        let mut cr = Crossroads::new();
        // Crossroads then emits InterfacesAdded / InterfacesRemoved, which btleplug waits for.
        cr.set_object_manager_support(Some(conn.clone()));
        let ifaces = Ifaces {
            device: register_device(&mut cr, &world, &conn),
            service: register_service(&mut cr, &world),
            characteristic: register_characteristic(&mut cr, &world, &conn),
        };
        let adapter = register_adapter(&mut cr, &world, &conn, ifaces);
        let om = cr.object_manager();
        cr.insert("/", &[om], ());
        cr.insert("/org", &[], ());
        cr.insert("/org/bluez", &[], ());
        cr.insert(ADAPTER_PATH, &[adapter], ());

        let cr = Arc::new(Mutex::new(cr));
        let serving = cr.clone();
        conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg, conn| {
                let _ = serving.lock().unwrap_or_else(|p| p.into_inner()).handle_message(msg, conn);
                true
            }),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (conn, stop) = (conn.clone(), stop.clone());
            std::thread::Builder::new().name("fake-bluez".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if conn.process(Duration::from_millis(50)).is_err() {
                        break;
                    }
                }
            })?
        };
        Ok(FakeBluez { address, world, cr, conn, stop, thread: Some(thread), keeper, keeper_stdin, _dir: dir })
    }

    /// The private bus's address, for `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Replaces the locks in range: earlier ones vanish from the bus; the new ones show up
    /// at the next scan (as BlueZ adds a device when it first hears its advert).
    pub fn set_locks(&self, locks: Vec<FakeLock>) {
        let mut cr = self.cr.lock().unwrap_or_else(|p| p.into_inner());
        let old: Vec<(bool, [String; 4])> = {
            let mut w = world(&self.world);
            w.discovering = false;
            w.powered = true;
            w.devices.drain().map(|(_, d)| (d.exported, d.paths())).collect()
        };
        for (exported, paths) in old {
            if exported {
                for path in paths.iter().rev() {
                    cr.remove::<u32>(&Path::from(path.clone()));
                }
            }
        }
        let mut w = world(&self.world);
        for lock in locks {
            let key = w.next_key;
            w.next_key += 1;
            let address = format!("AA:BB:CC:00:{:02X}:{:02X}", (key >> 8) & 0xff, key & 0xff);
            let path = format!("{ADAPTER_PATH}/dev_{}", address.replace(':', "_"));
            w.devices.insert(
                key,
                Device {
                    lock: lock.lock,
                    lock_id: lock.lock_id,
                    att_mtu: lock.att_mtu,
                    fault: lock.fault,
                    address,
                    path,
                    exported: false,
                    link: None,
                    answers: 0,
                    trace: LockTrace::default(),
                },
            );
        }
    }

    /// Turns the adapter on or off. Off is an rfkill block: powering on and discovery fail.
    pub fn set_powered(&self, powered: bool) {
        world(&self.world).powered = powered;
        let msg = changed(ADAPTER_PATH, "org.bluez.Adapter1", [prop("Powered", powered)].into_iter().collect());
        let _ = self.conn.send(msg);
    }

    /// Makes the locks advertising `lock_id` misbehave from now on. A lock that stops
    /// advertising also leaves the bus (as BlueZ forgets a device it no longer hears), so even
    /// a phone that saw it before cannot find it; its link, if up, is dropped.
    pub fn set_fault(&self, lock_id: u32, fault: Fault) {
        let mut cr = self.cr.lock().unwrap_or_else(|p| p.into_inner());
        let (gone, signals): (Vec<[String; 4]>, Vec<Message>) = {
            let mut w = world(&self.world);
            let (mut gone, mut signals) = (Vec::new(), Vec::new());
            for d in w.devices.values_mut().filter(|d| d.lock_id == lock_id) {
                d.fault = fault;
                if fault == Fault::NotAdvertising && d.exported {
                    signals.extend(drop_link(d));
                    d.exported = false;
                    gone.push(d.paths());
                }
            }
            (gone, signals)
        };
        for msg in signals {
            let _ = self.conn.send(msg);
        }
        for paths in gone {
            for path in paths.iter().rev() {
                cr.remove::<u32>(&Path::from(path.clone()));
            }
        }
    }

    /// Doors opened by the lock advertising `lock_id` (the first such lock), 0 if none.
    pub fn opened_count(&self, lock_id: u32) -> u64 {
        let w = world(&self.world);
        w.devices
            .iter()
            .filter(|(_, d)| d.lock_id == lock_id)
            .min_by_key(|(k, _)| **k)
            .map_or(0, |(_, d)| d.lock.opened_count())
    }

    /// Lets the phone's process use Bluetooth or not (the bus policy a user outside the
    /// `bluetooth` group meets): refused, discovery fails with `AccessDenied`.
    pub fn set_permitted(&self, permitted: bool) {
        world(&self.world).permitted = permitted;
    }

    /// How many scans (`StartDiscovery`) phones started so far.
    pub fn scans(&self) -> u32 {
        world(&self.world).scans
    }

    /// What the lock advertising `lock_id` saw (the first such lock).
    pub fn trace(&self, lock_id: u32) -> LockTrace {
        let w = world(&self.world);
        let mut devices: Vec<(&u32, &Device)> = w.devices.iter().filter(|(_, d)| d.lock_id == lock_id).collect();
        devices.sort_by_key(|(k, _)| **k);
        devices.first().map(|(_, d)| d.trace.clone()).unwrap_or_default()
    }
}

impl Drop for FakeBluez {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        drop(self.keeper_stdin.take());
        let _ = self.keeper.wait();
    }
}

fn register_adapter(cr: &mut Crossroads, w: &Shared, conn: &Arc<SyncConnection>, ifaces: Ifaces) -> IfaceToken<()> {
    let (w, conn) = (w.clone(), conn.clone());
    cr.register("org.bluez.Adapter1", move |b: &mut IfaceBuilder<()>| {
        b.property("Address").get(|_, _| Ok("00:AA:00:00:00:01".to_owned()));
        b.property("AddressType").get(|_, _| Ok("public".to_owned()));
        b.property("Name").get(|_, _| Ok("fake-bluez".to_owned()));
        b.property("Alias").get(|_, _| Ok("fake-bluez".to_owned()));
        b.property("Class").get(|_, _| Ok(0u32));
        let (w1, w2) = (w.clone(), w.clone());
        // btleplug powers the adapter on before a scan; "off" here is BlueZ's rfkill block,
        // which refuses that.
        b.property("Powered").get(move |_, _| Ok(world(&w1).powered)).set(move |_, _, on: bool| {
            let mut w = world(&w2);
            if on && !w.powered {
                return Err(MethodErr::from(("org.bluez.Error.Failed", "Blocked through rfkill")));
            }
            w.powered = on;
            Ok(Some(on))
        });
        let w1 = w.clone();
        b.property("Discovering").get(move |_, _| Ok(world(&w1).discovering));
        b.property("Discoverable").get(|_, _| Ok(false));
        b.property("Pairable").get(|_, _| Ok(false));
        b.property("DiscoverableTimeout").get(|_, _| Ok(180u32));
        b.property("PairableTimeout").get(|_, _| Ok(0u32));
        b.property("UUIDs").get(|_, _| Ok(Vec::<String>::new()));
        b.property("Modalias").get(|_, _| Ok("usb:v1D6Bp0246d0537".to_owned()));
        b.method("SetDiscoveryFilter", ("properties",), (), |_, _, _: (PropMap,)| Ok(()));
        b.method("GetDiscoveryFilters", (), ("filters",), |_, _, _: ()| {
            Ok((vec!["UUIDs".to_owned(), "RSSI".to_owned(), "Transport".to_owned(), "DuplicateData".to_owned()],))
        });
        let (w1, c1) = (w.clone(), conn.clone());
        b.method_with_cr("StartDiscovery", (), (), move |_, cr, _: ()| {
            let heard: Vec<(u32, [String; 4])> = {
                let mut w = world(&w1);
                if !w.permitted {
                    // What the system bus answers a process its policy keeps from BlueZ.
                    return Err(MethodErr::from(("org.freedesktop.DBus.Error.AccessDenied", "Rejected send message")));
                }
                if !w.powered {
                    return Err(MethodErr::from(("org.bluez.Error.NotReady", "Resource Not Ready")));
                }
                w.discovering = true;
                w.scans += 1;
                w.devices
                    .iter_mut()
                    .filter(|(_, d)| !d.exported && d.fault != Fault::NotAdvertising)
                    .map(|(k, d)| {
                        d.exported = true;
                        (*k, d.paths())
                    })
                    .collect()
            };
            // Inserted with the World unlocked: the ObjectManager reads the new objects' properties.
            for (key, [dev, svc, rx, tx]) in heard {
                cr.insert(dev, &[ifaces.device], key);
                cr.insert(svc, &[ifaces.service], key);
                cr.insert(rx, &[ifaces.characteristic], key);
                cr.insert(tx, &[ifaces.characteristic], key);
            }
            let _ =
                c1.send(changed(ADAPTER_PATH, "org.bluez.Adapter1", [prop("Discovering", true)].into_iter().collect()));
            Ok(())
        });
        let (w1, c1) = (w.clone(), conn.clone());
        b.method("StopDiscovery", (), (), move |_, _, _: ()| {
            world(&w1).discovering = false;
            let _ = c1.send(changed(
                ADAPTER_PATH,
                "org.bluez.Adapter1",
                [prop("Discovering", false)].into_iter().collect(),
            ));
            Ok(())
        });
        b.method("RemoveDevice", ("device",), (), |_, _, _: (Path<'static>,)| Ok(()));
    })
}

/// Reads a property of the device behind `key`.
fn dev<R>(w: &Shared, key: u32, f: impl FnOnce(&Device) -> R) -> Result<R, MethodErr> {
    world(w).devices.get(&key).map(f).ok_or_else(unknown)
}

fn register_device(cr: &mut Crossroads, w: &Shared, conn: &Arc<SyncConnection>) -> IfaceToken<u32> {
    let (w, conn) = (w.clone(), conn.clone());
    cr.register(DEVICE1, move |b: &mut IfaceBuilder<u32>| {
        let w1 = w.clone();
        b.property("Address").get(move |_, k| dev(&w1, *k, |d| d.address.clone()));
        b.property("AddressType").get(|_, _| Ok("random".to_owned()));
        let w1 = w.clone();
        b.property("Name").get(move |_, k| dev(&w1, *k, |d| format!("Porta {}", d.lock_id)));
        let w1 = w.clone();
        b.property("Alias").get(move |_, k| dev(&w1, *k, |d| format!("Porta {}", d.lock_id)));
        b.property("Adapter").get(|_, _| Ok(Path::from(ADAPTER_PATH)));
        b.property("Paired").get(|_, _| Ok(false));
        b.property("Trusted").get(|_, _| Ok(false));
        b.property("Blocked").get(|_, _| Ok(false));
        b.property("LegacyPairing").get(|_, _| Ok(false));
        b.property("RSSI").get(|_, _| Ok(-60i16));
        b.property("TxPower").get(|_, _| Ok(0i16));
        let w1 = w.clone();
        b.property("Connected").get(move |_, k| dev(&w1, *k, |d| d.trace.connected));
        let w1 = w.clone();
        b.property("ServicesResolved").get(move |_, k| dev(&w1, *k, |d| d.trace.connected));
        b.property("UUIDs").get(|_, _| Ok(vec![SERVICE_UUID.to_owned()]));
        b.property("ManufacturerData").get(|_, _| Ok(HashMap::<u16, Variant<Vec<u8>>>::new()));
        let w1 = w.clone();
        b.property("ServiceData").get(move |_, k| {
            dev(&w1, *k, |d| {
                let mut data = d.lock_id.to_be_bytes().to_vec();
                if d.fault == Fault::Busy {
                    data.push(0x01); // SPEC §6.1 flags: busy with another phone
                }
                HashMap::from([(SERVICE_UUID.to_owned(), Variant(data))])
            })
        });
        let (w1, c1) = (w.clone(), conn.clone());
        b.method("Connect", (), (), move |_, k, _: ()| {
            let msg = {
                let mut w = world(&w1);
                let d = w.devices.get_mut(k).ok_or_else(unknown)?;
                if d.trace.connected {
                    return Err(MethodErr::from(("org.bluez.Error.AlreadyConnected", "Already Connected")));
                }
                let link = d
                    .lock
                    .connect_with_mtu(d.att_mtu)
                    .map_err(|e| MethodErr::from(("org.bluez.Error.Failed", e.to_string().as_str())))?;
                d.link = Some(link);
                d.answers = 0;
                d.trace.connected = true;
                d.trace.connects += 1;
                link_state(d)
            };
            let _ = c1.send(msg);
            Ok(())
        });
        let (w1, c1) = (w.clone(), conn.clone());
        b.method("Disconnect", (), (), move |_, k, _: ()| {
            let msg = {
                let mut w = world(&w1);
                let d = w.devices.get_mut(k).ok_or_else(unknown)?;
                d.trace.disconnect_calls += 1;
                drop_link(d)
            };
            if let Some(msg) = msg {
                let _ = c1.send(msg);
            }
            Ok(())
        });
    })
}

fn register_service(cr: &mut Crossroads, w: &Shared) -> IfaceToken<u32> {
    let w = w.clone();
    cr.register("org.bluez.GattService1", move |b: &mut IfaceBuilder<u32>| {
        b.property("UUID").get(|_, _| Ok(SERVICE_UUID.to_owned()));
        b.property("Primary").get(|_, _| Ok(true));
        let w1 = w.clone();
        b.property("Device").get(move |_, k| dev(&w1, *k, |d| Path::from(d.path.clone())));
        b.property("Includes").get(|_, _| Ok(Vec::<Path<'static>>::new()));
        b.property("Handle").get(|_, _| Ok(0x10u16));
    })
}

/// Whether the characteristic at `path` is the device's RX (else TX).
fn is_rx(path: &Path<'_>) -> bool {
    path.ends_with("char0011")
}

fn register_characteristic(cr: &mut Crossroads, w: &Shared, conn: &Arc<SyncConnection>) -> IfaceToken<u32> {
    let (w, conn) = (w.clone(), conn.clone());
    cr.register(CHARACTERISTIC1, move |b: &mut IfaceBuilder<u32>| {
        b.property("UUID").get(|ctx, _| Ok(if is_rx(ctx.path()) { RX_UUID } else { TX_UUID }.to_owned()));
        let w1 = w.clone();
        b.property("Service").get(move |_, k| dev(&w1, *k, |d| Path::from(d.service_path())));
        b.property("Value").get(|_, _| Ok(Vec::<u8>::new()));
        let w1 = w.clone();
        b.property("Notifying").get(move |ctx, k| {
            let rx = is_rx(ctx.path());
            dev(&w1, *k, |d| !rx && d.trace.notifying)
        });
        b.property("Flags").get(|ctx, _| {
            Ok(if is_rx(ctx.path()) { vec!["write-without-response", "write"] } else { vec!["notify"] }
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>())
        });
        b.property("Handle").get(|ctx, _| Ok(if is_rx(ctx.path()) { 0x11u16 } else { 0x13u16 }));
        let w1 = w.clone();
        b.property("MTU").get(move |_, k| dev(&w1, *k, |d| d.att_mtu));
        b.method("ReadValue", ("options",), ("value",), |_, _, _: (PropMap,)| Ok((Vec::<u8>::new(),)));
        let (w1, c1) = (w.clone(), conn.clone());
        b.method("StartNotify", (), (), move |ctx, k, _: ()| {
            if is_rx(ctx.path()) {
                return Err(MethodErr::from(("org.bluez.Error.NotSupported", "Operation is not supported")));
            }
            let path = ctx.path().to_string();
            {
                let mut w = world(&w1);
                let d = w.devices.get_mut(k).ok_or_else(unknown)?;
                if !d.trace.connected {
                    return Err(MethodErr::from(("org.bluez.Error.Failed", "Not connected")));
                }
                d.trace.notifying = true;
            }
            let _ = c1.send(changed(&path, CHARACTERISTIC1, [prop("Notifying", true)].into_iter().collect()));
            Ok(())
        });
        let w1 = w.clone();
        b.method("StopNotify", (), (), move |_, k, _: ()| {
            if let Some(d) = world(&w1).devices.get_mut(k) {
                d.trace.notifying = false;
            }
            Ok(())
        });
        let (w1, c1) = (w.clone(), conn.clone());
        b.method("WriteValue", ("value", "options"), (), move |ctx, k, (value, _): (Vec<u8>, PropMap)| {
            if !is_rx(ctx.path()) {
                return Err(MethodErr::from(("org.bluez.Error.NotPermitted", "Write not permitted")));
            }
            let (result, out) = write(&w1, *k, &value);
            for msg in out {
                let _ = c1.send(msg);
            }
            result
        });
    })
}

/// One GATT write into the lock; returns the reply to the write and the signals to send.
fn write(w: &Shared, key: u32, value: &[u8]) -> (Result<(), MethodErr>, Vec<Message>) {
    let mut w = world(w);
    let now_ms = 1000 + w.started.elapsed().as_millis() as u64;
    let Some(d) = w.devices.get_mut(&key) else { return (Err(unknown()), Vec::new()) };
    let Some(link) = d.link.as_mut() else {
        return (Err(MethodErr::from(("org.bluez.Error.Failed", "Not connected"))), Vec::new());
    };
    d.trace.writes.push(value.len());
    let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or(0);
    match link.on_write(value, now_unix, now_ms, &mut rand::rngs::OsRng) {
        Ok(replies) if replies.is_empty() => (Ok(()), Vec::new()),
        Ok(replies) => {
            d.answers += 1;
            match d.fault {
                Fault::DisconnectBeforeResult if d.answers == 2 => (Ok(()), drop_link(d).into_iter().collect()),
                Fault::DisconnectMidHandshake => (Ok(()), drop_link(d).into_iter().collect()),
                Fault::DisconnectMidHandshakeOnce if d.trace.connects == 1 => {
                    (Ok(()), drop_link(d).into_iter().collect())
                }
                Fault::Silent => (Ok(()), Vec::new()),
                _ => {
                    if !d.trace.notifying {
                        return (Ok(()), Vec::new());
                    }
                    let tx = d.tx_path();
                    d.trace.notifications += replies.len();
                    let out = replies
                        .into_iter()
                        .map(|r| changed(&tx, CHARACTERISTIC1, [prop("Value", r)].into_iter().collect()))
                        .collect();
                    (Ok(()), out)
                }
            }
        }
        Err(e) => {
            // The lock refused what it got and hangs up, as a real one does.
            let out = drop_link(d).into_iter().collect();
            (Err(MethodErr::from(("org.bluez.Error.Failed", e.to_string().as_str()))), out)
        }
    }
}
