//! A lock on an in-memory BLE link with a virtual-time model of connection events.
//!
//! Timing model (see the crate README): connection events happen every
//! `connection_interval_ms` after the link is established (t = 0). Each event has a
//! phone → lock slot followed by a lock → phone slot, and each fragment (one ATT write
//! or notification) needs one event in its direction:
//!
//! * a phone write leaves at the first event strictly after the phone's clock (the
//!   phone's clock is the time it last sent or received something), the next fragment
//!   of a burst at the following event;
//! * it reaches the lock `latency_ms` later; the lock's reply fragments use the
//!   lock → phone slots of the first event at or after that arrival and the following
//!   events, and reach the phone `latency_ms` after their event.
//!
//! A round trip (write burst + notifications) therefore costs about
//! `(fragments up + fragments down − 1)` connection intervals plus `2 × latency_ms`.
//! Computation time is not modelled. With `realtime` the link also sleeps until the
//! modelled time of each fragment, so a demo feels like a real lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::LinkError;
use crate::lock::{Lock, LockConnection, UnlockOutcome};

/// Parameters of the simulated BLE link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Negotiated ATT MTU, 23..=517 (connect fails with `LockError::InvalidMtu` otherwise).
    pub att_mtu: u16,
    /// BLE connection interval in ms (7.5 … 4000 on real radios; e.g. 7.5, 30, 50).
    /// A non-finite or non-positive value is replaced by 30.
    pub connection_interval_ms: f64,
    /// Extra one-way latency in ms added to every fragment (radio, stack, relay…).
    /// A non-finite or negative value is replaced by 0.
    pub latency_ms: f64,
    /// Also sleep (tokio) for the modelled time, so a demo feels real.
    pub realtime: bool,
}

impl Default for LinkParams {
    /// MTU 185 (typical iOS), 30 ms interval, no extra latency, virtual time only.
    fn default() -> Self {
        Self { att_mtu: 185, connection_interval_ms: 30.0, latency_ms: 0.0, realtime: false }
    }
}

impl LinkParams {
    /// Virtual-time link with the given MTU and connection interval, no extra latency.
    pub fn new(att_mtu: u16, connection_interval_ms: f64) -> Self {
        Self { att_mtu, connection_interval_ms, ..Self::default() }
    }

    /// With an extra one-way latency.
    pub fn with_latency(mut self, latency_ms: f64) -> Self {
        self.latency_ms = latency_ms;
        self
    }

    /// With real-time sleeping.
    pub fn with_realtime(mut self, realtime: bool) -> Self {
        self.realtime = realtime;
        self
    }

    fn sanitized(mut self) -> Self {
        if !(self.connection_interval_ms.is_finite() && self.connection_interval_ms > 0.0) {
            self.connection_interval_ms = 30.0;
        }
        if !(self.latency_ms.is_finite() && self.latency_ms >= 0.0) {
            self.latency_ms = 0.0;
        }
        self
    }
}

/// Direction of a fragment on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// GATT write, phone → lock.
    PhoneToLock,
    /// GATT notification, lock → phone.
    LockToPhone,
}

/// Traffic and virtual time of the last connection.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkStats {
    /// Fragment bytes written by the phone (ATT payloads, fragment headers included,
    /// ATT opcode/handle not included).
    pub bytes_up: u64,
    /// Fragment bytes notified by the lock (same convention).
    pub bytes_down: u64,
    /// GATT writes.
    pub fragments_up: u64,
    /// GATT notifications.
    pub fragments_down: u64,
    /// Phone write bursts answered by lock notifications.
    pub round_trips: u64,
    /// The phone's virtual clock (ms since the link was established): the time it
    /// last sent a fragment, received one, or gave up waiting.
    pub virtual_ms: f64,
}

struct Ctl {
    in_range: bool,
    busy: bool,
    clock: Option<u64>,
    rng: StdRng,
    active: Option<(u64, Arc<LinkShared>)>,
    next_link: u64,
    stats_link: u64,
    stats: LinkStats,
    air: Vec<(Direction, Vec<u8>)>,
    /// Highest value of the lock's millisecond timer handed out so far.
    lock_ms_high: u64,
}

impl Ctl {
    fn release(&mut self, id: u64) {
        if matches!(&self.active, Some((a, _)) if *a == id) {
            self.active = None;
        }
    }
}

struct SimInner {
    lock: Lock,
    lock_id: u32,
    params: LinkParams,
    ctl: Mutex<Ctl>,
}

impl SimInner {
    fn ctl(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A [`Lock`] reachable over a simulated BLE link. Cheap to clone (shared inside).
///
/// One phone at a time: while a [`SimulatedLink`] is connected (until it disconnects,
/// is dropped, or the lock finishes the handshake and hangs up) other connects fail
/// with [`LinkError::Busy`].
#[derive(Clone)]
pub struct SimulatedLock {
    inner: Arc<SimInner>,
}

impl std::fmt::Debug for SimulatedLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedLock")
            .field("lock_id", &self.inner.lock_id)
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}

fn system_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// First connection event strictly after `t` (phone → lock slot comes first in an event).
fn event_after(t: f64, interval: f64) -> u64 {
    ((t / interval) + 1e-9).floor().max(0.0) as u64 + 1
}

/// First connection event at or after `t` (lock → phone slot follows the phone's).
fn event_at_or_after(t: f64, interval: f64) -> u64 {
    (((t / interval) - 1e-9).ceil().max(1.0)) as u64
}

impl SimulatedLock {
    /// Puts `lock` (advertising as `lock_id`) on a simulated link. In range, not busy,
    /// wall clock = system time, lock RNG seeded from the OS.
    pub fn new(lock: Lock, lock_id: u32, params: LinkParams) -> Self {
        Self {
            inner: Arc::new(SimInner {
                lock,
                lock_id,
                params: params.sanitized(),
                ctl: Mutex::new(Ctl {
                    in_range: true,
                    busy: false,
                    clock: None,
                    rng: StdRng::from_entropy(),
                    active: None,
                    next_link: 1,
                    stats_link: 0,
                    stats: LinkStats::default(),
                    air: Vec::new(),
                    lock_ms_high: 0,
                }),
            }),
        }
    }

    /// The id the lock advertises.
    pub fn lock_id(&self) -> u32 {
        self.inner.lock_id
    }

    /// The link parameters.
    pub fn params(&self) -> LinkParams {
        self.inner.params
    }

    /// The lock behind the link.
    pub fn lock(&self) -> &Lock {
        &self.inner.lock
    }

    /// Moves the lock in or out of radio range. Going out of range drops an open link
    /// (its pending notifications are lost; later calls return `Disconnected`).
    pub fn set_in_range(&self, in_range: bool) {
        let mut ctl = self.inner.ctl();
        ctl.in_range = in_range;
        if !in_range {
            if let Some((_, link)) = ctl.active.take() {
                let mut st = link.state();
                st.open = false;
                st.queue.clear();
                drop(st);
                link.notify.notify_one();
            }
        }
    }

    /// Sets the lock's wall clock (unix seconds). Without it the lock uses system time.
    pub fn set_clock(&self, unix_seconds: u64) {
        self.inner.ctl().clock = Some(unix_seconds);
    }

    /// Back to system time for the lock's wall clock.
    pub fn clear_clock(&self) {
        self.inner.ctl().clock = None;
    }

    /// Simulates another phone holding the connection: connects fail with `Busy`.
    pub fn set_busy(&self, busy: bool) {
        self.inner.ctl().busy = busy;
    }

    /// Makes the lock's randomness deterministic (for reproducible air logs).
    pub fn set_rng_seed(&self, seed: u64) {
        self.inner.ctl().rng = StdRng::seed_from_u64(seed);
    }

    /// Connects a phone. Fails with `NotInRange`, `Busy`, or `Lock(InvalidMtu)`.
    pub async fn connect(&self) -> Result<SimulatedLink, LinkError> {
        let mut ctl = self.inner.ctl();
        if !ctl.in_range {
            return Err(LinkError::NotInRange);
        }
        if ctl.busy || ctl.active.is_some() {
            return Err(LinkError::Busy);
        }
        let conn = self.inner.lock.connect_with_mtu(self.inner.params.att_mtu)?;
        let id = ctl.next_link;
        ctl.next_link += 1;
        // The lock's ms timer keeps running between connections.
        let ms_base = ctl.lock_ms_high.saturating_add(1000);
        ctl.lock_ms_high = ms_base;
        let shared = Arc::new(LinkShared {
            state: Mutex::new(LinkState {
                conn,
                clock: 0.0,
                last_up: 0,
                last_down: 0,
                queue: VecDeque::new(),
                open: true,
                lock_closed: false,
                in_burst: false,
                burst_answered: false,
                ms_base,
            }),
            notify: Notify::new(),
        });
        ctl.active = Some((id, shared.clone()));
        ctl.stats_link = id;
        ctl.stats = LinkStats::default();
        Ok(SimulatedLink { sim: self.inner.clone(), id, shared, anchor: Instant::now() })
    }

    /// Times the bolt was opened (monotonic).
    pub fn opened_count(&self) -> u64 {
        self.inner.lock.opened_count()
    }

    /// Outcome of the last completed handshake.
    pub fn last_outcome(&self) -> Option<UnlockOutcome> {
        self.inner.lock.last_outcome()
    }

    /// Traffic and virtual time of the last connection.
    pub fn stats(&self) -> LinkStats {
        self.inner.ctl().stats
    }

    /// Signed audit records produced by the lock (encoded, oldest first).
    pub fn audit_log(&self) -> Vec<Vec<u8>> {
        self.inner.lock.audit_log()
    }

    /// Tap: every fragment that went over the air, in order, both directions, all
    /// connections since creation (or since [`Self::clear_air_log`]).
    pub fn air_log(&self) -> Vec<(Direction, Vec<u8>)> {
        self.inner.ctl().air.clone()
    }

    /// Empties the air log.
    pub fn clear_air_log(&self) {
        self.inner.ctl().air.clear();
    }

    /// Injects raw fragments as a phone would (replay / fuzz tests): connects, writes
    /// each fragment, collects the notifications the lock queued, and disconnects.
    /// Stops at the first write the lock rejects and returns that error.
    pub async fn inject(&self, fragments: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, LinkError> {
        let link = self.connect().await?;
        let mut out = Vec::new();
        for f in fragments {
            let r = link.write(f.clone()).await;
            out.extend(link.drain());
            r?;
        }
        link.disconnect().await;
        Ok(out)
    }
}

struct LinkState {
    conn: LockConnection,
    /// The phone's virtual clock (ms since the link was established).
    clock: f64,
    last_up: u64,
    last_down: u64,
    /// Notifications in flight: (delivery time, fragment).
    queue: VecDeque<(f64, Vec<u8>)>,
    /// Neither the phone disconnected nor the link dropped.
    open: bool,
    /// The lock hung up after its last message (queued notifications still arrive).
    lock_closed: bool,
    in_burst: bool,
    burst_answered: bool,
    ms_base: u64,
}

struct LinkShared {
    state: Mutex<LinkState>,
    notify: Notify,
}

impl LinkShared {
    fn state(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A phone's connection to a [`SimulatedLock`].
pub struct SimulatedLink {
    sim: Arc<SimInner>,
    id: u64,
    shared: Arc<LinkShared>,
    anchor: Instant,
}

impl std::fmt::Debug for SimulatedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedLink")
            .field("lock_id", &self.sim.lock_id)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl SimulatedLink {
    /// The link's ATT MTU.
    pub fn att_mtu(&self) -> u16 {
        self.sim.params.att_mtu
    }

    /// The phone's virtual clock: ms since the link was established.
    pub fn virtual_ms(&self) -> f64 {
        self.shared.state().clock
    }

    fn update_stats(&self, ctl: &mut Ctl, f: impl FnOnce(&mut LinkStats)) {
        if ctl.stats_link == self.id {
            f(&mut ctl.stats);
        }
    }

    async fn sleep_to(&self, t_ms: f64) {
        if self.sim.params.realtime {
            tokio::time::sleep_until(self.anchor + Duration::from_secs_f64(t_ms / 1000.0)).await;
        }
    }

    /// Writes one fragment (GATT write without response, phone → lock). The lock
    /// processes it on arrival; if it rejects it, this returns `Lock(err)` and the
    /// link is closed.
    pub async fn write(&self, fragment: Vec<u8>) -> Result<(), LinkError> {
        let p = self.sim.params;
        let sent_at = {
            let mut ctl = self.sim.ctl();
            let mut st = self.shared.state();
            if !st.open || st.lock_closed {
                return Err(LinkError::Disconnected);
            }
            let i = p.connection_interval_ms;
            let k = (st.last_up + 1).max(event_after(st.clock, i));
            st.last_up = k;
            let sent = k as f64 * i;
            st.clock = sent;
            let arrive = sent + p.latency_ms;
            if !st.in_burst {
                st.in_burst = true;
                st.burst_answered = false;
            }
            ctl.air.push((Direction::PhoneToLock, fragment.clone()));
            let clock = st.clock;
            self.update_stats(&mut ctl, |s| {
                s.fragments_up += 1;
                s.bytes_up += fragment.len() as u64;
                s.virtual_ms = clock;
            });

            let now_unix = ctl.clock.unwrap_or_else(system_unix);
            let now_ms = st.ms_base.saturating_add(arrive.round() as u64);
            ctl.lock_ms_high = ctl.lock_ms_high.max(now_ms);
            let st = &mut *st;
            match st.conn.on_write(&fragment, now_unix, now_ms, &mut ctl.rng) {
                Err(e) => {
                    st.open = false;
                    st.queue.clear();
                    ctl.release(self.id);
                    return Err(LinkError::Lock(e));
                }
                Ok(replies) if !replies.is_empty() => {
                    if !st.burst_answered {
                        st.burst_answered = true;
                        self.update_stats(&mut ctl, |s| s.round_trips += 1);
                    }
                    for r in replies {
                        let kd = (st.last_down + 1).max(event_at_or_after(arrive, i));
                        st.last_down = kd;
                        let deliver = kd as f64 * i + p.latency_ms;
                        ctl.lock_ms_high = ctl.lock_ms_high.max(st.ms_base.saturating_add(deliver.round() as u64));
                        ctl.air.push((Direction::LockToPhone, r.clone()));
                        self.update_stats(&mut ctl, |s| {
                            s.fragments_down += 1;
                            s.bytes_down += r.len() as u64;
                        });
                        st.queue.push_back((deliver, r));
                    }
                    if st.conn.is_finished() && !st.conn.accepts_updates() {
                        // The lock hangs up after its Result (or the last update it takes)
                        // and is free for the next phone; an authenticated phone may first
                        // deliver revocation deltas, and hangs up itself.
                        st.lock_closed = true;
                        ctl.release(self.id);
                    }
                    self.shared.notify.notify_one();
                }
                Ok(_) => {}
            }
            sent
        };
        self.sleep_to(sent_at).await;
        Ok(())
    }

    /// Waits for the next notification (lock → phone). In virtual time a notification
    /// due more than `timeout` after the phone's clock times out (the clock advances by
    /// `timeout`); with `realtime` the call sleeps until the notification's time.
    /// Queued notifications are delivered even after the lock hung up; then
    /// `Disconnected`.
    pub async fn notification(&self, timeout: Duration) -> Result<Vec<u8>, LinkError> {
        let p = self.sim.params;
        let timeout_ms = timeout.as_secs_f64() * 1000.0;
        let real_deadline = Instant::now() + timeout;
        enum Step {
            Deliver(f64, Vec<u8>),
            RealTimeout,
            Wait,
        }
        loop {
            let notified = self.shared.notify.notified();
            let step = {
                let mut ctl = self.sim.ctl();
                let mut st = self.shared.state();
                match st.queue.front() {
                    Some(&(t, _))
                        if p.realtime && self.anchor + Duration::from_secs_f64(t / 1000.0) > real_deadline =>
                    {
                        Step::RealTimeout
                    }
                    Some(&(t, _)) if !p.realtime && t - st.clock > timeout_ms => {
                        st.clock += timeout_ms;
                        let clock = st.clock;
                        self.update_stats(&mut ctl, |s| s.virtual_ms = clock);
                        return Err(LinkError::Timeout);
                    }
                    Some(_) => {
                        let (t, frag) = st.queue.pop_front().expect("front exists");
                        st.clock = st.clock.max(t);
                        st.in_burst = false;
                        let clock = st.clock;
                        self.update_stats(&mut ctl, |s| s.virtual_ms = s.virtual_ms.max(clock));
                        Step::Deliver(t, frag)
                    }
                    None if !st.open || st.lock_closed => return Err(LinkError::Disconnected),
                    None => Step::Wait,
                }
            };
            match step {
                Step::Deliver(t, frag) => {
                    self.sleep_to(t).await;
                    return Ok(frag);
                }
                Step::RealTimeout => {
                    tokio::time::sleep_until(real_deadline).await;
                    return Err(LinkError::Timeout);
                }
                Step::Wait => {}
            }
            if tokio::time::timeout_at(real_deadline, notified).await.is_err() {
                let mut ctl = self.sim.ctl();
                let mut st = self.shared.state();
                if st.queue.is_empty() {
                    st.clock += timeout_ms;
                    let clock = st.clock;
                    self.update_stats(&mut ctl, |s| s.virtual_ms = clock);
                    return Err(LinkError::Timeout);
                }
            }
        }
    }

    /// Lets `d` of virtual time pass on the phone side (a slow phone, a user
    /// hesitating, a relay); sleeps too with `realtime`.
    pub async fn pause(&self, d: Duration) {
        let t = {
            let mut ctl = self.sim.ctl();
            let mut st = self.shared.state();
            st.clock += d.as_secs_f64() * 1000.0;
            let clock = st.clock;
            self.update_stats(&mut ctl, |s| s.virtual_ms = clock);
            clock
        };
        self.sleep_to(t).await;
    }

    /// Takes every queued notification at once (advancing the clock), without waiting.
    fn drain(&self) -> Vec<Vec<u8>> {
        let mut st = self.shared.state();
        let mut out = Vec::new();
        while let Some((t, f)) = st.queue.pop_front() {
            st.clock = st.clock.max(t);
            out.push(f);
        }
        st.in_burst = false;
        out
    }

    /// Whether the link is still usable for writes.
    pub fn is_connected(&self) -> bool {
        let st = self.shared.state();
        st.open && !st.lock_closed
    }

    /// Closes the link (pending notifications are dropped) and frees the lock.
    pub async fn disconnect(&self) {
        self.close();
    }

    fn close(&self) {
        let mut ctl = self.sim.ctl();
        {
            let mut st = self.shared.state();
            st.open = false;
            st.queue.clear();
        }
        ctl.release(self.id);
        self.shared.notify.notify_one();
    }
}

impl Drop for SimulatedLink {
    fn drop(&mut self) {
        self.close();
    }
}
