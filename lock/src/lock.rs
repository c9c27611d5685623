//! The lock's persistent role and its per-connection handshake driver.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use porta_protocol::wire::fragment_capacity;
use porta_protocol::{
    fragment, AuditRecord, CredentialId, CryptoRng, Decision, DoorId, LockConfig, LockHandshake, LockState,
    Reassembler, RngCore,
};

use crate::error::LockError;

/// File (in the state directory) holding the serialized [`LockState`].
pub const STATE_FILE: &str = "lock-state.bin";
/// File (in the state directory) holding the append-only audit log: each entry is a
/// big-endian `u32` length followed by one signed audit record (SPEC §2.5).
pub const AUDIT_LOG_FILE: &str = "audit.log";
/// File (in the state directory) binding it to one lock: lock id (`u32` BE) followed
/// by the lock's Ed25519 public key.
pub const IDENTITY_FILE: &str = "identity";

/// What the lock did with the last completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockOutcome {
    /// The lock's decision (also in the signed audit record).
    pub decision: Decision,
    /// The door requested (if the proof decrypted and parsed).
    pub door_id: Option<DoorId>,
    /// The credential presented (if the proof decrypted and parsed).
    pub credential_id: Option<CredentialId>,
    /// Whether the bolt was driven open.
    pub opened: bool,
    /// Counter of the audit record written for this decision.
    pub audit_counter: u64,
}

struct Store {
    state: LockState,
    audit: Vec<Vec<u8>>,
    dir: Option<PathBuf>,
    audit_file: Option<File>,
    opened_count: u64,
    last_outcome: Option<UnlockOutcome>,
}

impl Store {
    fn save_state(&mut self) -> Result<(), LockError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        write_atomic(dir, STATE_FILE, &self.state.to_bytes())
    }

    fn append_audit(&mut self, record: Vec<u8>) -> Result<(), LockError> {
        if let Some(f) = &mut self.audit_file {
            let mut entry = Vec::with_capacity(4 + record.len());
            entry.extend_from_slice(&(record.len() as u32).to_be_bytes());
            entry.extend_from_slice(&record);
            f.write_all(&entry)?;
            f.sync_data()?;
        }
        self.audit.push(record);
        Ok(())
    }
}

struct Shared {
    config: LockConfig,
    store: Mutex<Store>,
}

/// The lock's persistent role: its provisioned [`LockConfig`], its [`LockState`] and
/// its audit log. A cheap handle (clones share the same lock).
///
/// With [`Lock::open`] the state is saved (temp file + rename) after every handshake
/// step and each signed audit record is appended to the audit log *before* the bolt
/// is driven, so a crash can never open a door without a durable record.
#[derive(Clone)]
pub struct Lock {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = self.store();
        f.debug_struct("Lock")
            .field("lock_id", &self.shared.config.lock_id())
            .field("dir", &store.dir)
            .field("state", &store.state)
            .field("opened_count", &store.opened_count)
            .finish_non_exhaustive()
    }
}

impl Lock {
    /// Opens (creating if needed) the lock's state directory: loads the persisted
    /// [`LockState`] and audit log, or starts fresh. A partially written last audit
    /// entry (crash during append) is dropped; any other damage is an error.
    pub fn open(state_dir: &Path, config: LockConfig) -> Result<Lock, LockError> {
        fs::create_dir_all(state_dir)?;
        let mut identity = config.lock_id().to_be_bytes().to_vec();
        identity.extend_from_slice(&config.certificate().lock_key);
        match fs::read(state_dir.join(IDENTITY_FILE)) {
            Ok(existing) if existing == identity => {}
            Ok(_) => return Err(LockError::StateMismatch),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(state_dir, IDENTITY_FILE, &identity)?;
            }
            Err(e) => return Err(e.into()),
        }

        let mut state = match fs::read(state_dir.join(STATE_FILE)) {
            Ok(bytes) => LockState::from_bytes(&bytes).map_err(LockError::CorruptState)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LockState::new(),
            Err(e) => return Err(e.into()),
        };

        let audit_path = state_dir.join(AUDIT_LOG_FILE);
        let mut audit_file = OpenOptions::new().read(true).append(true).create(true).open(&audit_path)?;
        let mut raw = Vec::new();
        audit_file.read_to_end(&mut raw)?;
        let (audit, valid_len) = parse_audit_log(&raw)?;
        if valid_len < raw.len() {
            // Torn final entry from a crash mid-append: drop it.
            audit_file.set_len(valid_len as u64)?;
            audit_file.sync_all()?;
        }
        // The audit record is appended before the state is saved: if we crashed in
        // between, never reuse the counter of a record that was already written.
        if let Some(last) = audit.last() {
            if let Ok(rec) = AuditRecord::from_bytes(last) {
                state.audit_counter = state.audit_counter.max(rec.counter);
            }
        }

        Ok(Self::with_store(
            config,
            Store {
                state,
                audit,
                dir: Some(state_dir.to_path_buf()),
                audit_file: Some(audit_file),
                opened_count: 0,
                last_outcome: None,
            },
        ))
    }

    /// A lock whose state lives only in memory (tests, simulations).
    pub fn in_memory(config: LockConfig) -> Lock {
        Self::in_memory_with_state(config, LockState::new())
    }

    /// A lock whose state lives only in memory, starting from `state`.
    pub fn in_memory_with_state(config: LockConfig, state: LockState) -> Lock {
        Self::with_store(
            config,
            Store { state, audit: Vec::new(), dir: None, audit_file: None, opened_count: 0, last_outcome: None },
        )
    }

    fn with_store(config: LockConfig, store: Store) -> Lock {
        Lock { shared: Arc::new(Shared { config, store: Mutex::new(store) }) }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave `Store` half-updated in a way
        // that matters more than refusing service; keep going with the data.
        self.shared.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lock's provisioned identity.
    pub fn config(&self) -> &LockConfig {
        &self.shared.config
    }

    /// The lock id (from its certificate).
    pub fn lock_id(&self) -> u32 {
        self.shared.config.lock_id()
    }

    /// The state directory, if persistent.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.store().dir.clone()
    }

    /// A copy of the current persistent state (counters, trusted time, revocations).
    pub fn state(&self) -> LockState {
        self.store().state.clone()
    }

    /// All signed audit records this lock produced (encoded, oldest first), including
    /// those loaded from the audit log.
    pub fn audit_log(&self) -> Vec<Vec<u8>> {
        self.store().audit.clone()
    }

    /// Number of times the bolt was opened since this `Lock` was opened (monotonic).
    pub fn opened_count(&self) -> u64 {
        self.store().opened_count
    }

    /// Outcome of the last completed handshake on any connection.
    pub fn last_outcome(&self) -> Option<UnlockOutcome> {
        self.store().last_outcome.clone()
    }

    /// A new connection at the BLE default ATT MTU (23).
    pub fn connect(&self) -> LockConnection {
        LockConnection::new(self.clone(), porta_protocol::wire::MIN_ATT_MTU)
    }

    /// A new connection with the ATT MTU negotiated for it (23..=517).
    pub fn connect_with_mtu(&self, att_mtu: u16) -> Result<LockConnection, LockError> {
        fragment_capacity(att_mtu).map_err(|_| LockError::InvalidMtu(att_mtu))?;
        Ok(LockConnection::new(self.clone(), att_mtu))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHello,
    AwaitProof,
    Finished,
    Dead,
}

/// One phone connection to a [`Lock`]: feed it every GATT write with
/// [`LockConnection::on_write`] and send back the notification fragments it returns.
pub struct LockConnection {
    lock: Lock,
    att_mtu: u16,
    reassembler: Reassembler,
    handshake: LockHandshake,
    phase: Phase,
    outcome: Option<UnlockOutcome>,
}

impl std::fmt::Debug for LockConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockConnection")
            .field("lock_id", &self.lock.lock_id())
            .field("att_mtu", &self.att_mtu)
            .field("phase", &self.phase)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl LockConnection {
    fn new(lock: Lock, att_mtu: u16) -> Self {
        Self {
            lock,
            att_mtu,
            reassembler: Reassembler::new(),
            handshake: LockHandshake::new(),
            phase: Phase::AwaitHello,
            outcome: None,
        }
    }

    /// The connection's ATT MTU.
    pub fn att_mtu(&self) -> u16 {
        self.att_mtu
    }

    /// Whether the handshake has completed (a Result was sent). The phone may still deliver
    /// revocation deltas afterwards if the lock authenticated it.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether the connection takes `Update` messages (after a Result to an authenticated phone).
    pub fn accepts_updates(&self) -> bool {
        self.phase == Phase::Finished && self.handshake.accepts_updates()
    }

    /// Whether the connection failed (a framing or protocol error); it accepts nothing more.
    pub fn is_dead(&self) -> bool {
        self.phase == Phase::Dead
    }

    /// Outcome of this connection's handshake, once finished.
    pub fn last_outcome(&self) -> Option<&UnlockOutcome> {
        self.outcome.as_ref()
    }

    /// The lock this connection belongs to.
    pub fn lock(&self) -> &Lock {
        &self.lock
    }

    /// Handles one GATT write (one fragment). Returns the notification fragments to
    /// send back (empty while a message is incomplete).
    ///
    /// `now_unix` is the lock's wall clock (unix seconds, 0 if it has none); `now_ms`
    /// a monotonic millisecond timer, read when this write arrived. The proof deadline is
    /// checked at the Proof's *last* fragment, so it bounds the whole message. The state is persisted
    /// after each handshake step; the bolt is opened only after the audit record is
    /// durable. Any error ends the connection.
    pub fn on_write<R: RngCore + CryptoRng>(
        &mut self,
        fragment: &[u8],
        now_unix: u64,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<Vec<u8>>, LockError> {
        if self.phase == Phase::Dead || (self.phase == Phase::Finished && !self.handshake.accepts_updates()) {
            return Err(LockError::ConnectionClosed);
        }
        let r = self.step(fragment, now_unix, now_ms, rng);
        if r.is_err() {
            self.phase = Phase::Dead;
            self.reassembler.reset();
        }
        r
    }

    fn step<R: RngCore + CryptoRng>(
        &mut self,
        frag: &[u8],
        now_unix: u64,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<Vec<u8>>, LockError> {
        let max = fragment_capacity(self.att_mtu).map_err(|_| LockError::InvalidMtu(self.att_mtu))?;
        if frag.len() > max {
            return Err(LockError::FragmentTooLarge { len: frag.len(), max });
        }
        let Some(msg) = self.reassembler.push(frag).map_err(LockError::Framing)? else {
            return Ok(Vec::new());
        };
        let config = &self.lock.shared.config;
        let reply = match self.phase {
            Phase::AwaitHello => {
                let mut store = self.lock.store();
                let r = self.handshake.handle_hello(config, &mut store.state, &msg, now_ms, rng);
                // The attempt counter may have moved even if the Hello was refused.
                let saved = store.save_state();
                let challenge = r.map_err(LockError::Protocol)?;
                saved?;
                self.phase = Phase::AwaitProof;
                challenge
            }
            Phase::AwaitProof => {
                let mut store = self.lock.store();
                let out = self
                    .handshake
                    .handle_proof(config, &mut store.state, &msg, now_unix, now_ms)
                    .map_err(LockError::Protocol)?;
                // Audit record first (durable), then state, then the bolt.
                store.append_audit(out.audit.to_bytes())?;
                store.save_state()?;
                let opened = out.decision.is_opened();
                if opened {
                    store.opened_count += 1;
                }
                let outcome = UnlockOutcome {
                    decision: out.decision,
                    door_id: out.door_id,
                    credential_id: out.credential_id,
                    opened,
                    audit_counter: out.audit.counter,
                };
                store.last_outcome = Some(outcome.clone());
                self.outcome = Some(outcome);
                self.phase = Phase::Finished;
                out.response
            }
            Phase::Finished => {
                let mut store = self.lock.store();
                let out = self.handshake.handle_update(config, &mut store.state, &msg, now_unix);
                let out = out.map_err(LockError::Protocol)?;
                if out.status == porta_protocol::DeltaStatus::Applied {
                    store.save_state()?;
                }
                out.response
            }
            Phase::Dead => return Err(LockError::ConnectionClosed),
        };
        fragment(&reply, self.att_mtu).map_err(LockError::Protocol)
    }
}

/// Parses the audit log; returns the records and the length of the valid prefix
/// (shorter than the input only if the last entry is torn).
fn parse_audit_log(raw: &[u8]) -> Result<(Vec<Vec<u8>>, usize), LockError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < raw.len() {
        let Some(hdr) = raw.get(pos..pos + 4) else {
            break;
        };
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let Some(rec) = raw.get(pos + 4..pos + 4 + len) else {
            break;
        };
        if AuditRecord::from_bytes(rec).is_err() {
            return Err(LockError::CorruptAuditLog { offset: pos as u64 });
        }
        out.push(rec.to_vec());
        pos += 4 + len;
    }
    Ok((out, pos))
}

/// Writes `dir/name` atomically: temp file, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), LockError> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    // Make the rename durable; not supported everywhere, so best effort.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
