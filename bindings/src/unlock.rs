//! Unlocking: the Bluetooth transport and the progress listener as foreign traits, adapted
//! to the core's traits.

use std::sync::Arc;
use std::time::Duration;

/// Why a Bluetooth operation failed; the app's transport maps its platform errors here.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum TransportError {
    #[error("lock not in range")]
    NotInRange,
    #[error("lock busy")]
    Busy,
    #[error("disconnected")]
    Disconnected,
    #[error("timed out")]
    Timeout,
    /// The radio is off.
    #[error("bluetooth is off")]
    BluetoothOff,
    /// The platform refuses the app the use of Bluetooth.
    #[error("bluetooth not permitted")]
    NotPermitted,
    #[error("bluetooth failure: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Failed { reason: e.reason }
    }
}

/// A Bluetooth LE link to Porta locks, implemented by the app with CoreBluetooth or
/// Android's BluetoothGatt: scan for the Porta service (`portaServiceUuid()`), connect to the
/// lock advertising `lock_id`, write fragments to its RX characteristic, deliver its TX
/// notifications in order. The simulated lock implements it too (tests, demos).
#[uniffi::export(rust, foreign)]
#[async_trait::async_trait]
pub trait LockTransport: Send + Sync {
    /// Connects to the lock; returns the negotiated ATT MTU (23..=517).
    async fn connect(&self, lock_id: u32, timeout_ms: u64) -> Result<u16, TransportError>;
    async fn write(&self, fragment: Vec<u8>) -> Result<(), TransportError>;
    async fn next_notification(&self, timeout_ms: u64) -> Result<Vec<u8>, TransportError>;
    async fn disconnect(&self) -> Result<(), TransportError>;
}

/// The GATT service UUID Porta locks advertise.
#[uniffi::export]
pub fn porta_service_uuid() -> String {
    porta_core::unlock::PORTA_SERVICE_UUID.to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UnlockProgress {
    Searching,
    Connecting,
    Verifying,
    Opened,
    Denied,
}

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ListenerError {
    #[error("listener failed: {reason}")]
    Failed { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ListenerError::Failed { reason: e.reason }
    }
}

/// Receives progress while a door opens (update the UI from it).
#[uniffi::export(foreign)]
pub trait UnlockListener: Send + Sync {
    fn on_progress(&self, progress: UnlockProgress) -> Result<(), ListenerError>;
}

pub(crate) struct TransportAdapter(pub Arc<dyn LockTransport>);

fn to_core(e: TransportError) -> porta_core::TransportError {
    match e {
        TransportError::NotInRange => porta_core::TransportError::NotInRange,
        TransportError::Busy => porta_core::TransportError::Busy,
        TransportError::Disconnected => porta_core::TransportError::Disconnected,
        TransportError::Timeout => porta_core::TransportError::Timeout,
        TransportError::BluetoothOff => porta_core::TransportError::BluetoothOff,
        TransportError::NotPermitted => porta_core::TransportError::NotPermitted,
        TransportError::Failed { reason } => porta_core::TransportError::Failed(reason),
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

#[async_trait::async_trait]
impl porta_core::LockTransport for TransportAdapter {
    async fn connect(&self, lock_id: u32, timeout: Duration) -> Result<u16, porta_core::TransportError> {
        self.0.connect(lock_id, millis(timeout)).await.map_err(to_core)
    }
    async fn write(&self, fragment: Vec<u8>) -> Result<(), porta_core::TransportError> {
        self.0.write(fragment).await.map_err(to_core)
    }
    async fn next_notification(&self, timeout: Duration) -> Result<Vec<u8>, porta_core::TransportError> {
        self.0.next_notification(millis(timeout)).await.map_err(to_core)
    }
    async fn disconnect(&self) -> Result<(), porta_core::TransportError> {
        self.0.disconnect().await.map_err(to_core)
    }
}

pub(crate) struct ListenerAdapter(pub Arc<dyn UnlockListener>);

impl porta_core::UnlockListener for ListenerAdapter {
    fn on_progress(&self, progress: porta_core::UnlockProgress) {
        let progress = match progress {
            porta_core::UnlockProgress::Searching => UnlockProgress::Searching,
            porta_core::UnlockProgress::Connecting => UnlockProgress::Connecting,
            porta_core::UnlockProgress::Verifying => UnlockProgress::Verifying,
            porta_core::UnlockProgress::Opened => UnlockProgress::Opened,
            porta_core::UnlockProgress::Denied => UnlockProgress::Denied,
        };
        // A failing UI callback must not break the unlock.
        let _ = self.0.on_progress(progress);
    }
}
