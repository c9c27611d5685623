//! The simulated lock for tests and demos (feature `simulator`; release builds leave it out).
//! It speaks the real protocol bytes over an in-memory link.

use std::sync::Arc;
use std::time::Duration;

use porta_core::simulated::SimulatedTransport;
use porta_core::LockTransport as _;

use crate::unlock::{LockTransport, TransportError};
use crate::PortaError;

/// A simulated lock before installation: its key is born here and never leaves it, as on a
/// real lock. Hand `provisioning_request()` to the building's admin, who submits it for a
/// door (`POST /v1/admin/sites/{site_id}/doors/{door_id}/lock`); `install` the answer.
#[derive(uniffi::Object)]
pub struct NewSimulatedLock {
    inner: porta_lock::NewLock,
}

#[uniffi::export]
impl NewSimulatedLock {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self { inner: porta_core::simulated::new_lock() })
    }

    /// The lock's provisioning request (SPEC §2.6), base64, signed with its own key.
    pub fn provisioning_request(&self) -> String {
        porta_core::simulated::provisioning_request_text(&self.inner)
    }

    /// Installs the server's answer (its JSON) and runs the lock on a simulated link with
    /// this ATT MTU and connection interval. An answer for another lock's key is refused
    /// (`InvalidInput`).
    pub fn install(
        &self,
        answer_json: String,
        att_mtu: u16,
        connection_interval_ms: f64,
    ) -> Result<Arc<SimulatedLock>, PortaError> {
        let inner =
            porta_core::simulated::install_simulated_lock(&self.inner, &answer_json, att_mtu, connection_interval_ms)?;
        Ok(Arc::new(SimulatedLock { inner }))
    }
}

/// An installed simulated lock, speaking the real protocol bytes.
#[derive(uniffi::Object)]
pub struct SimulatedLock {
    inner: porta_lock::SimulatedLock,
}

#[uniffi::export]
impl SimulatedLock {
    pub fn lock_id(&self) -> u32 {
        self.inner.lock_id()
    }

    /// The same lock (its key, certificate and bolt: `opened_count` is shared) advertising
    /// `lock_id` instead, as a lock taken down and re-flashed to answer for another lock's id
    /// would. Lets a test present a replaced lock, or another door's, for a door.
    pub fn answering_as(&self, lock_id: u32) -> Arc<SimulatedLock> {
        let inner = porta_lock::SimulatedLock::new(self.inner.lock().clone(), lock_id, self.inner.params());
        Arc::new(SimulatedLock { inner })
    }

    pub fn set_in_range(&self, in_range: bool) {
        self.inner.set_in_range(in_range)
    }

    pub fn set_busy(&self, busy: bool) {
        self.inner.set_busy(busy)
    }

    /// The lock's wall clock (unix seconds); lets a test make a credential expire.
    pub fn set_clock(&self, unix_seconds: u64) {
        self.inner.set_clock(unix_seconds)
    }

    /// How many times the bolt opened.
    pub fn opened_count(&self) -> u64 {
        self.inner.opened_count()
    }

    /// Every fragment the phone sent over the air so far, in order.
    pub fn phone_fragments(&self) -> Vec<Vec<u8>> {
        self.inner
            .air_log()
            .into_iter()
            .filter(|(d, _)| *d == porta_lock::Direction::PhoneToLock)
            .map(|(_, f)| f)
            .collect()
    }

    /// Every fragment on the air so far, both directions.
    pub fn air_fragments(&self) -> Vec<Vec<u8>> {
        self.inner.air_log().into_iter().map(|(_, f)| f).collect()
    }

    /// Plays `fragments` to the lock as an attacker's phone would, on a fresh connection;
    /// true if the bolt opened.
    pub async fn replay(&self, fragments: Vec<Vec<u8>>) -> bool {
        let before = self.inner.opened_count();
        let _ = self.inner.inject(&fragments).await;
        self.inner.opened_count() > before
    }
}

/// A Bluetooth stand-in over simulated locks, to pass to `PortaClient.unlock`.
pub struct SimulatedTransportHandle {
    inner: SimulatedTransport,
}

/// A Bluetooth stand-in over simulated locks, to pass to `PortaClient.unlock`.
#[uniffi::export]
pub fn simulated_transport(locks: Vec<Arc<SimulatedLock>>) -> Arc<dyn LockTransport> {
    Arc::new(SimulatedTransportHandle {
        inner: SimulatedTransport::new(locks.iter().map(|l| l.inner.clone()).collect()),
    })
}

/// Like `simulated_transport`, with an attacker on the air who flips the last byte of the
/// `fragment_index`-th fragment the phone writes (0 = the first fragment of the Hello).
#[uniffi::export]
pub fn simulated_transport_tampering(locks: Vec<Arc<SimulatedLock>>, fragment_index: u32) -> Arc<dyn LockTransport> {
    Arc::new(SimulatedTransportHandle {
        inner: SimulatedTransport::tampering(locks.iter().map(|l| l.inner.clone()).collect(), fragment_index as usize),
    })
}

#[async_trait::async_trait]
impl LockTransport for SimulatedTransportHandle {
    async fn connect(&self, lock_id: u32, timeout_ms: u64) -> Result<u16, TransportError> {
        self.inner.connect(lock_id, Duration::from_millis(timeout_ms)).await.map_err(from_core)
    }
    async fn write(&self, fragment: Vec<u8>) -> Result<(), TransportError> {
        self.inner.write(fragment).await.map_err(from_core)
    }
    async fn next_notification(&self, timeout_ms: u64) -> Result<Vec<u8>, TransportError> {
        self.inner.next_notification(Duration::from_millis(timeout_ms)).await.map_err(from_core)
    }
    async fn disconnect(&self) -> Result<(), TransportError> {
        self.inner.disconnect().await.map_err(from_core)
    }
}

/// The simulated transport speaks the core's trait; apps see the FFI error.
fn from_core(e: porta_core::TransportError) -> TransportError {
    match e {
        porta_core::TransportError::NotInRange => TransportError::NotInRange,
        porta_core::TransportError::Busy => TransportError::Busy,
        porta_core::TransportError::Disconnected => TransportError::Disconnected,
        porta_core::TransportError::Timeout => TransportError::Timeout,
        porta_core::TransportError::BluetoothOff => TransportError::BluetoothOff,
        porta_core::TransportError::NotPermitted => TransportError::NotPermitted,
        porta_core::TransportError::Failed(reason) => TransportError::Failed { reason },
    }
}
