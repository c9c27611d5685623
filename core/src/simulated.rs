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

/// A new lock with its key born here (the OS's randomness), as a real lock makes it.
pub fn new_lock() -> porta_lock::NewLock {
    porta_lock::NewLock::generate(&mut rand::rngs::OsRng)
}

/// `lock`'s provisioning request (SPEC §2.6) as the text an admin submits: base64, one line.
pub fn provisioning_request_text(lock: &porta_lock::NewLock) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(lock.provisioning_request(&mut rand::rngs::OsRng).to_bytes())
}

/// Installs a provisioning answer (the server's `LockInstalled` JSON, what
/// `POST /v1/admin/sites/{site_id}/doors/{door_id}/lock` returns for `lock`'s request) in
/// `lock`, and runs it as a simulated lock with a fresh in-memory state, on a link with the
/// given ATT MTU and connection interval. The key stays the lock's: the answer carries only
/// the certificate and the site's public key.
pub fn install_simulated_lock(
    lock: &porta_lock::NewLock,
    answer_json: &str,
    att_mtu: u16,
    connection_interval_ms: f64,
) -> crate::Result<SimulatedLock> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    #[derive(serde::Deserialize)]
    struct Answer {
        certificate: String,
        authority_public_key: String,
    }
    let bad = || crate::Error::InvalidInput { field: "lock provisioning answer", reason: "malformed" };
    let answer: Answer = serde_json::from_str(answer_json).map_err(|_| bad())?;
    let certificate = B64.decode(answer.certificate.trim()).map_err(|_| bad())?;
    let authority: [u8; 32] =
        B64.decode(answer.authority_public_key.trim()).map_err(|_| bad())?.try_into().map_err(|_| bad())?;
    let provision = lock
        .install(&certificate, authority)
        .map_err(|_| crate::Error::InvalidInput { field: "lock provisioning answer", reason: "not for this lock" })?;
    let lock_id = provision.lock_id;
    let config = provision.into_config().map_err(|e| crate::Error::Protocol(e.to_string()))?;
    let params = porta_lock::LinkParams::new(att_mtu, connection_interval_ms);
    Ok(SimulatedLock::new(porta_lock::Lock::in_memory(config), lock_id, params))
}
