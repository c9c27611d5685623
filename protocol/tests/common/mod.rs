//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use porta_protocol::wire;
use porta_protocol::*;
use sha2::{Digest, Sha256};

/// Fixed time: 2025-06-15 15:06:40 UTC (a Sunday).
pub const T0: u64 = 1_750_000_000;
/// The test lock certificate's validity: a year either side of `T0`.
pub const CERT_FROM: u32 = T0 as u32 - 365 * 86_400;
pub const CERT_UNTIL: u32 = T0 as u32 + 365 * 86_400;
pub const LOCK_ID: LockId = 7;
pub const DOOR: DoorId = 100;
pub const OTHER_DOOR: DoorId = 200;

/// Deterministic CSPRNG for tests: SHA-256(seed || counter) blocks.
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
}

impl SeededRng {
    pub fn new(label: &str) -> Self {
        Self { seed: Sha256::digest(label.as_bytes()).into(), counter: 0, buf: Vec::new() }
    }
}

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
            }
            *d = self.buf.remove(0);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for SeededRng {}

/// Yields exactly the given bytes (test vectors); panics when exhausted.
pub struct BytesRng(pub Vec<u8>);
impl RngCore for BytesRng {
    fn next_u32(&mut self) -> u32 {
        unimplemented!()
    }
    fn next_u64(&mut self) -> u64 {
        unimplemented!()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(self.0.len() >= dest.len(), "BytesRng exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for BytesRng {}

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub struct Site {
    pub authority: SigningKey,
    pub lock_key: SigningKey,
    pub device: SigningKey,
}

impl Site {
    pub fn new() -> Self {
        Self { authority: key(1), lock_key: key(2), device: key(3) }
    }

    pub fn lock_config(&self) -> LockConfig {
        self.lock_config_for(LOCK_ID, vec![DOOR, 101])
    }

    pub fn lock_config_for(&self, lock_id: LockId, doors: Vec<DoorId>) -> LockConfig {
        let cert = LockCertificate::issue(
            &self.authority,
            lock_id,
            self.lock_key.verifying_key().to_bytes(),
            doors,
            CERT_FROM,
            CERT_UNTIL,
        )
        .unwrap();
        LockConfig::new(self.lock_key.clone(), cert, self.authority.verifying_key()).unwrap()
    }

    pub fn body(&self) -> CredentialBody {
        CredentialBody {
            credential_id: [0xC1; 16],
            device_key: self.device.verifying_key().to_bytes(),
            doors: vec![DOOR],
            not_before: T0 - 86_400,
            not_after: T0 + 30 * 86_400,
            schedule: None,
        }
    }

    pub fn credential(&self) -> Credential {
        Credential::issue(&self.authority, self.body()).unwrap()
    }

    pub fn params(&self, credential: Credential) -> PhoneParams {
        PhoneParams {
            credential,
            device_key: self.device.clone(),
            authority: self.authority.verifying_key(),
            door_id: DOOR,
            now: T0,
            lock_key: None,
            updates: Updates::default(),
        }
    }
}

/// Everything that crossed the air in one handshake.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub hello: Vec<u8>,
    pub challenge: Vec<u8>,
    pub proof: Vec<u8>,
    pub result: Vec<u8>,
    pub lock: LockOutcome,
    pub phone: PhoneOutcome,
    /// Every GATT write / notification (fragments), in order, with direction.
    pub frames: Vec<(Direction, Vec<u8>)>,
    pub round_trips: usize,
    /// The lock's answers to the revocation deltas delivered after the decision.
    pub acks: Vec<UpdateAck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    PhoneToLock,
    LockToPhone,
}

/// Sends a message through fragmentation / reassembly, recording the frames.
fn carry(msg: &[u8], mtu: u16, dir: Direction, frames: &mut Vec<(Direction, Vec<u8>)>) -> Vec<u8> {
    let mut r = Reassembler::new();
    let mut out = None;
    for f in wire::fragment(msg, mtu).unwrap() {
        frames.push((dir, f.clone()));
        assert!(out.is_none());
        out = r.push(&f).unwrap();
    }
    out.unwrap()
}

/// Runs a full handshake over an in-memory link with the given MTU.
pub fn run(params: PhoneParams, config: &LockConfig, state: &mut LockState, lock_now: u64, mtu: u16) -> Exchange {
    run_full(params, config, state, lock_now, mtu, false, &[])
}

/// Like [`run`] but as a misbehaving phone that skips its local pre-check.
pub fn run_unchecked(params: PhoneParams, config: &LockConfig, state: &mut LockState, lock_now: u64) -> Exchange {
    run_full(params, config, state, lock_now, 185, true, &[])
}

/// Like [`run`], then delivers `deltas` after the decision as a phone does (the lock must
/// accept updates from this phone).
pub fn run_delivering(
    params: PhoneParams,
    config: &LockConfig,
    state: &mut LockState,
    lock_now: u64,
    deltas: &[RevocationDelta],
) -> Exchange {
    run_full(params, config, state, lock_now, 185, false, deltas)
}

fn run_full(
    params: PhoneParams,
    config: &LockConfig,
    state: &mut LockState,
    lock_now: u64,
    mtu: u16,
    unchecked: bool,
    deltas: &[RevocationDelta],
) -> Exchange {
    let mut prng = SeededRng::new("phone");
    let mut lrng = SeededRng::new("lock");
    let mut frames = Vec::new();
    let mut round_trips = 0;
    let (mut phone, hello) = if unchecked {
        PhoneHandshake::start_unchecked(params, &mut prng).unwrap()
    } else {
        PhoneHandshake::start(params, &mut prng).unwrap()
    };
    let mut lock = LockHandshake::new();
    let hello_rx = carry(&hello, mtu, Direction::PhoneToLock, &mut frames);
    let challenge = lock.handle_hello(config, state, &hello_rx, 1_000, &mut lrng).unwrap();
    let challenge_rx = carry(&challenge, mtu, Direction::LockToPhone, &mut frames);
    round_trips += 1;
    let proof = phone.handle_challenge(&challenge_rx).unwrap();
    let proof_rx = carry(&proof, mtu, Direction::PhoneToLock, &mut frames);
    let lock_out = lock.handle_proof(config, state, &proof_rx, lock_now, 1_250).unwrap();
    let result_rx = carry(&lock_out.response, mtu, Direction::LockToPhone, &mut frames);
    round_trips += 1;
    let phone_out = phone.handle_result(&result_rx).unwrap();
    assert!(phone.is_finished() && lock.is_finished());
    let mut acks = Vec::new();
    for delta in deltas {
        let update = phone.update(delta).unwrap();
        let update_rx = carry(&update, mtu, Direction::PhoneToLock, &mut frames);
        let out = lock.handle_update(config, state, &update_rx, lock_now).unwrap();
        let ack_rx = carry(&out.response, mtu, Direction::LockToPhone, &mut frames);
        let ack = phone.handle_update_ack(&ack_rx).unwrap();
        assert_eq!(ack.status, out.status);
        acks.push(ack);
    }
    Exchange {
        hello,
        challenge,
        proof,
        result: lock_out.response.clone(),
        lock: lock_out,
        phone: phone_out,
        frames,
        round_trips,
        acks,
    }
}

/// A delta revoking `credentials` (valid 30 days) and `devices` from `from` to `to`.
pub fn delta(site: &Site, from: u64, to: u64, credentials: &[[u8; 16]], devices: &[[u8; 32]]) -> RevocationDelta {
    let expires = T0 + 30 * 86_400;
    RevocationDelta::issue(
        &site.authority,
        from,
        to,
        credentials.iter().map(|&id| RevokedCredential { id, expires }).collect(),
        devices.iter().map(|&key| RevokedDevice { key, expires }).collect(),
    )
    .unwrap()
}
