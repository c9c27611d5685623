//! The site every handshake target plays: the inputs of `protocol/vectors/handshake_opened.json`
//! (keys from constant seeds, the same credential, clocks and randomness), so the vector's
//! messages are genuine for it and seed the corpora. Shared with `#[path]`, not a library:
//! a library would put libFuzzer's `main` into the workspace's test binaries.
#![allow(dead_code)]

use std::sync::OnceLock;

use porta_protocol::*;

pub const AUTHORITY_SEED: [u8; 32] = [0xa1; 32];
pub const LOCK_SEED: [u8; 32] = [0xb2; 32];
pub const DEVICE_SEED: [u8; 32] = [0xc3; 32];
pub const LOCK_ID: LockId = 7;
pub const LOCK_DOORS: [DoorId; 2] = [100, 101];
pub const DOOR: DoorId = 100;
/// Sunday 2025-06-15, inside the credential's weekend window.
pub const NOW: u64 = 1_750_000_000;
pub const HELLO_MS: u64 = 10_000;
pub const PROOF_MS: u64 = 10_180;
/// The lock's persisted state before the vector's handshake.
pub const LOCK_STATE_BEFORE: &str =
    "0200000000684eba7000000000000000290000000000000003000000000000006300000000000004d20000000000000000";

/// Bytes 0..48 then 48..96: the ephemeral X25519 secret (first 32 bytes) and nonce of each role.
const PHONE_RANDOM: [u8; 48] = counting(0x00);
const LOCK_RANDOM: [u8; 48] = counting(0x80);

const fn counting(from: u8) -> [u8; 48] {
    let mut a = [0u8; 48];
    let mut i = 0;
    while i < 48 {
        a[i] = from + i as u8;
        i += 1;
    }
    a
}

pub fn phone_secret() -> [u8; 32] {
    PHONE_RANDOM[..32].try_into().unwrap()
}

pub fn lock_secret() -> [u8; 32] {
    LOCK_RANDOM[..32].try_into().unwrap()
}

/// Replays fixed bytes (cycling), so each role's ephemeral secret is known to the target.
pub struct FixedRng {
    bytes: &'static [u8],
    pos: usize,
}

impl FixedRng {
    pub fn phone() -> Self {
        Self { bytes: &PHONE_RANDOM, pos: 0 }
    }
    pub fn lock() -> Self {
        Self { bytes: &LOCK_RANDOM, pos: 0 }
    }
}

impl RngCore for FixedRng {
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
        for d in dest {
            *d = self.bytes[self.pos % self.bytes.len()];
            self.pos += 1;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

pub struct Site {
    pub authority: SigningKey,
    pub config: LockConfig,
    pub params: PhoneParams,
    pub state_before: LockState,
    /// The vector's revocation delta 3 -> 5, which the phone delivers after the decision.
    pub delta: RevocationDelta,
    /// One real handshake between a real phone and the real lock, every message kept.
    pub genuine: Exchange,
}

pub struct Exchange {
    pub hello: Vec<u8>,
    pub challenge: Vec<u8>,
    pub proof: Vec<u8>,
    pub result: Vec<u8>,
    /// The decrypted proof, and how much of it the device signed plus the signature (the
    /// rest is zero padding).
    pub proof_plaintext: Vec<u8>,
    pub proof_authenticated_len: usize,
    pub result_plaintext: Vec<u8>,
    pub update: Vec<u8>,
    pub update_ack: Vec<u8>,
    pub update_ack_plaintext: Vec<u8>,
}

pub fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(build)
}

fn build() -> Site {
    let authority = SigningKey::from_bytes(&AUTHORITY_SEED);
    let lock_key = SigningKey::from_bytes(&LOCK_SEED);
    let device = SigningKey::from_bytes(&DEVICE_SEED);
    let cert = LockCertificate::issue(
        &authority,
        LOCK_ID,
        lock_key.verifying_key().to_bytes(),
        LOCK_DOORS.to_vec(),
        0,
        u32::MAX,
    )
    .expect("certificate");
    let config = LockConfig::new(lock_key, cert, authority.verifying_key()).expect("lock config");
    let body = CredentialBody {
        credential_id: *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
        device_key: device.verifying_key().to_bytes(),
        doors: vec![100, 102],
        not_before: 1_749_000_000,
        not_after: 1_752_000_000,
        schedule: Some(WeeklySchedule {
            utc_offset_minutes: 120,
            windows: vec![
                TimeWindow { days: 31, start_minute: 420, end_minute: 1320 },
                TimeWindow { days: 96, start_minute: 600, end_minute: 1200 },
            ],
        }),
    };
    let credential = Credential::issue(&authority, body).expect("credential");
    let params = PhoneParams {
        credential,
        device_key: device,
        authority: authority.verifying_key(),
        door_id: DOOR,
        now: NOW,
        lock_key: None,
        updates: Updates { time: Some(TimeUpdate::issue(&authority, 0, 1_749_999_000, 42)) },
    };
    let state_before = LockState::from_bytes(&hex::decode(LOCK_STATE_BEFORE).unwrap()).expect("lock state");
    let delta = RevocationDelta::issue(
        &authority,
        3,
        5,
        vec![RevokedCredential { id: [0x55; 16], expires: 1_752_000_000 }],
        vec![RevokedDevice { key: [0x66; 32], expires: 1_752_000_000 }],
    )
    .expect("delta");

    let (mut phone, hello) = PhoneHandshake::start(params.clone(), &mut FixedRng::phone()).expect("hello");
    let mut state = state_before.clone();
    let mut lock = LockHandshake::new();
    let challenge = lock.handle_hello(&config, &mut state, &hello, HELLO_MS, &mut FixedRng::lock()).expect("challenge");
    let proof = phone.handle_challenge(&challenge).expect("proof");
    let outcome = lock.handle_proof(&config, &mut state, &proof, NOW, PROOF_MS).expect("outcome");
    assert_eq!(outcome.decision, Decision::Opened, "the fixture's own handshake must open");
    let result = outcome.response;
    phone.handle_result(&result).expect("phone accepts the result");
    let update = phone.update(&delta).expect("update");
    let ack = lock.handle_update(&config, &mut state, &update, NOW).expect("lock handles the update");
    assert_eq!(ack.status, DeltaStatus::Applied, "the fixture's own delta must apply");
    phone.handle_update_ack(&ack.response).expect("phone accepts the ack");
    let update_ack = ack.response;

    let proof_plaintext =
        fuzzing::open(MessageType::Proof, 0, phone_secret(), &hello, &challenge, &proof).expect("open proof");
    let (_, signed_len) = fuzzing::proof_plaintext(&proof_plaintext).expect("proof plaintext");
    let result_plaintext =
        fuzzing::open(MessageType::Result, 0, lock_secret(), &hello, &challenge, &result).expect("open result");
    let update_ack_plaintext =
        fuzzing::open(MessageType::UpdateAck, 0, lock_secret(), &hello, &challenge, &update_ack).expect("open ack");
    let genuine = Exchange {
        hello,
        challenge,
        proof,
        result,
        proof_plaintext,
        proof_authenticated_len: signed_len + 64,
        result_plaintext,
        update,
        update_ack,
        update_ack_plaintext,
    };
    Site { authority, config, params, state_before, delta, genuine }
}

/// Applies edit operations read from `ops` to a copy of `base`: 4 bytes each (kind, position as
/// a big-endian `u16`, value). libFuzzer mutates the operations; the base stays a real message,
/// so most inputs get past the framing checks to the code behind them.
pub fn mutate(base: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for op in ops.chunks_exact(4) {
        let pos = u16::from_be_bytes([op[1], op[2]]) as usize % (out.len() + 1);
        let value = op[3];
        match op[0] % 4 {
            0 if pos < out.len() => out[pos] ^= value.max(1),
            1 => out.insert(pos, value),
            2 if pos < out.len() => {
                out.remove(pos);
            }
            3 => out.truncate(pos),
            _ => {}
        }
    }
    out
}

/// When `PORTA_FUZZ_SEEDS` names a directory (`cargo xtask fuzz --seed`), writes the target's
/// seed inputs there, once per process. Each target knows its own input format, so it is the
/// one to turn the fixture's real messages into inputs.
pub fn write_seeds(seeds: impl FnOnce() -> Vec<Vec<u8>>) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Some(dir) = std::env::var_os("PORTA_FUZZ_SEEDS") else { return };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("seed directory");
        for (i, seed) in seeds().into_iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("write seed");
        }
    });
}

/// Splits `rest` into messages, each prefixed by its length (`u16`, big-endian).
pub fn messages(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [a, b, tail @ ..] = rest {
        let n = (u16::from_be_bytes([*a, *b]) as usize).min(tail.len());
        out.push(&tail[..n]);
        rest = &tail[n..];
    }
    out
}

/// The inverse of [`messages`].
pub fn length_prefixed(selector: u8, messages: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![selector];
    for m in messages {
        v.extend_from_slice(&(m.len() as u16).to_be_bytes());
        v.extend_from_slice(m);
    }
    v
}

/// `[mode] [len / 2] first second`: the two-message input of a role target's mode 0.
pub fn two_messages(mode: u8, first: &[u8], second: &[u8]) -> Vec<u8> {
    assert!(first.len().is_multiple_of(2) && first.len() / 2 <= 255);
    let mut v = vec![mode, (first.len() / 2) as u8];
    v.extend_from_slice(first);
    v.extend_from_slice(second);
    v
}

pub fn with_selector(selector: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![selector];
    v.extend_from_slice(body);
    v
}
