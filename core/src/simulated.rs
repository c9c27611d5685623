//! [`LockTransport`] over `porta-lock`'s simulated locks: what tests and the demo use where a
//! phone would use Bluetooth. Behind the `simulator` feature, which release builds leave out.

use std::time::Duration;

use porta_lock::{LinkError, SimulatedLink, SimulatedLock};
use tokio::sync::Mutex;

use crate::unlock::{LockTransport, TransportError};

/// Simulated locks "in the air" around the phone; `connect` finds one by its lock id.
pub struct SimulatedTransport {
    locks: Vec<SimulatedLock>,
    link: Mutex<Option<SimulatedLink>>,
    /// An attacker on the air: flip the last byte of the phone's fragment with this index.
    tamper_with: Option<usize>,
    written: std::sync::atomic::AtomicUsize,
}

impl SimulatedTransport {
    pub fn new(locks: Vec<SimulatedLock>) -> Self {
        Self { locks, link: Mutex::new(None), tamper_with: None, written: Default::default() }
    }

    /// Like [`SimulatedTransport::new`], but the `fragment_index`-th fragment the phone
    /// writes (counting from 0 over this transport's life) arrives with its last byte flipped.
    pub fn tampering(locks: Vec<SimulatedLock>, fragment_index: usize) -> Self {
        Self { tamper_with: Some(fragment_index), ..Self::new(locks) }
    }
}

fn map(e: LinkError) -> TransportError {
    match e {
        LinkError::NotInRange => TransportError::NotInRange,
        LinkError::Busy => TransportError::Busy,
        LinkError::Disconnected => TransportError::Disconnected,
        LinkError::Timeout => TransportError::Timeout,
        other => TransportError::Failed(other.to_string()),
    }
}

#[async_trait::async_trait]
impl LockTransport for SimulatedTransport {
    async fn connect(&self, lock_id: u32, _timeout: Duration) -> Result<u16, TransportError> {
        let lock = self.locks.iter().find(|l| l.lock_id() == lock_id).ok_or(TransportError::NotInRange)?;
        let link = lock.connect().await.map_err(map)?;
        let mtu = link.att_mtu();
        *self.link.lock().await = Some(link);
        Ok(mtu)
    }

    async fn write(&self, mut fragment: Vec<u8>) -> Result<(), TransportError> {
        let index = self.written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.tamper_with == Some(index) {
            if let Some(last) = fragment.last_mut() {
                *last ^= 0x01;
            }
        }
        let guard = self.link.lock().await;
        guard.as_ref().ok_or(TransportError::Disconnected)?.write(fragment).await.map_err(map)
    }

    async fn next_notification(&self, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let guard = self.link.lock().await;
        guard.as_ref().ok_or(TransportError::Disconnected)?.notification(timeout).await.map_err(map)
    }

    async fn disconnect(&self) -> Result<(), TransportError> {
        if let Some(link) = self.link.lock().await.take() {
            link.disconnect().await;
        }
        Ok(())
    }
}

/// One entry of the reference server's `GET /v1/dev/locks`, as a simulated lock with a fresh
/// in-memory state, on a link with the given ATT MTU and connection interval.
pub fn simulated_lock_from_provision_json(
    json: &str,
    att_mtu: u16,
    connection_interval_ms: f64,
) -> crate::Result<SimulatedLock> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    #[derive(serde::Deserialize)]
    struct Provision {
        lock_id: u32,
        doors: Vec<u32>,
        lock_secret_key: String,
        certificate: String,
        authority_public_key: String,
    }
    let bad = || crate::Error::InvalidInput { field: "lock provision", reason: "malformed" };
    let p: Provision = serde_json::from_str(json).map_err(|_| bad())?;
    let key32 =
        |b64: &str| -> crate::Result<[u8; 32]> { B64.decode(b64).map_err(|_| bad())?.try_into().map_err(|_| bad()) };
    let provision = porta_lock::LockProvision {
        lock_id: p.lock_id,
        doors: p.doors,
        lock_secret_key: key32(&p.lock_secret_key)?,
        certificate: B64.decode(&p.certificate).map_err(|_| bad())?,
        authority_public_key: key32(&p.authority_public_key)?,
    };
    let config = provision.into_config().map_err(|e| crate::Error::Protocol(e.to_string()))?;
    let lock = porta_lock::Lock::in_memory(config);
    let params = porta_lock::LinkParams::new(att_mtu, connection_interval_ms);
    Ok(SimulatedLock::new(lock, p.lock_id, params))
}
