//! CPU cost of one unlock, per role, on this machine.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-lock cargo bench -p porta-lock --bench unlock
//! ```
//!
//! * `phone/*` — complete in-memory handshakes (`PhoneHandshake` + `LockHandshake`
//!   directly, no simulated link); only the phone's calls (`start`,
//!   `handle_challenge`, `handle_result`) are timed.
//! * `lock/*` — the same handshakes; only the lock's calls (`handle_hello`,
//!   `handle_proof`, with an in-memory `LockState`) are timed.
//! * `*/updates` — the phone carries a time update and a revocation list of 50
//!   credential ids. `lock/updates_applied` starts every handshake from a lock state that
//!   has neither (both are verified *and* applied: worst case);
//!   `lock/updates_stale` from one that already has both (verified, then ignored).
//! * `wire/*` — fragmentation + reassembly of a Proof (273 bytes without updates,
//!   1233 bytes with them) at ATT MTU 23 and 185.
//!
//! Targets (issue): ≤ 0.3 ms phone CPU and ≤ 0.5 ms lock CPU per unlock. Results and
//! their comparison with the targets are in `BENCHMARKS.md` at the workspace root.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use porta_lock::porta_protocol::{
    fragment, Credential, CredentialBody, Decision, LockConfig, LockHandshake, LockState, PhoneHandshake, PhoneParams,
    Reassembler, RevocationList, SigningKey, TimeUpdate, UpdateStatus, Updates,
};
use porta_lock::provision_new_lock;
use rand::rngs::StdRng;
use rand::SeedableRng;

const LOCK_ID: u32 = 7;
const DOOR: u32 = 1;
const OTHER_DOOR: u32 = 2;
const T0: u64 = 1_750_000_000;
const CRED_ID: [u8; 16] = [0xC1; 16];
const REVOKED: usize = 50;

/// A site with one lock (two doors) and one phone (one-door credential, no schedule),
/// as in `tests/common/mod.rs`.
struct Fixture {
    config: LockConfig,
    params: PhoneParams,
    params_updates: PhoneParams,
    /// Lock state that already holds the carried updates.
    state_with_updates: LockState,
}

impl Fixture {
    fn new() -> Self {
        let authority = SigningKey::from_bytes(&[0xA1; 32]);
        let device = SigningKey::from_bytes(&[0xD1; 32]);
        let provision =
            provision_new_lock(&authority, LOCK_ID, vec![DOOR, OTHER_DOOR], &mut StdRng::seed_from_u64(1)).unwrap();
        let config = provision.to_config().unwrap();
        let credential = Credential::issue(
            &authority,
            CredentialBody {
                credential_id: CRED_ID,
                device_key: device.verifying_key().to_bytes(),
                doors: vec![DOOR],
                not_before: T0 - 3600,
                not_after: T0 + 3600,
                schedule: None,
            },
        )
        .unwrap();
        let params = PhoneParams {
            credential,
            device_key: device,
            authority: authority.verifying_key(),
            door_id: DOOR,
            now: T0,
            updates: Updates::default(),
        };
        let updates = carried_updates(&authority);
        let mut state_with_updates = LockState::new();
        assert_eq!(
            state_with_updates.apply_time_update(&config, updates.time.as_ref().unwrap()),
            UpdateStatus::Applied
        );
        assert_eq!(
            state_with_updates.apply_revocation_list(&config, updates.revocations.as_ref().unwrap()),
            UpdateStatus::Applied
        );
        let params_updates = PhoneParams { updates, ..params.clone() };
        Self { config, params, params_updates, state_with_updates }
    }
}

/// A time update for every lock of the site and a revocation list of 50 credential ids
/// (none of them the phone's).
fn carried_updates(authority: &SigningKey) -> Updates {
    let ids = (0..REVOKED)
        .map(|i| {
            let mut id = [0x5A; 16];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            id
        })
        .collect();
    Updates {
        time: Some(TimeUpdate::issue(authority, 0, T0, 1)),
        revocations: Some(RevocationList::issue(authority, 1, ids, Vec::new()).unwrap()),
    }
}

#[derive(Clone, Copy)]
enum Side {
    Phone,
    Lock,
}

/// Runs `iters` complete handshakes and returns the time spent in `side`'s calls only.
/// Everything else (cloning inputs, the other role, checks) is outside the timed spans.
fn handshakes(
    iters: u64,
    side: Side,
    config: &LockConfig,
    params: &PhoneParams,
    lock_state: &LockState,
    expect_updates: UpdateStatus,
    rngs: &mut (StdRng, StdRng),
) -> Duration {
    let (phone_rng, lock_rng) = rngs;
    let mut phone_t = Duration::ZERO;
    let mut lock_t = Duration::ZERO;
    for _ in 0..iters {
        let params = params.clone();
        let mut state = lock_state.clone();
        let mut lock = LockHandshake::new();

        let t = Instant::now();
        let (mut phone, hello) = PhoneHandshake::start(params, phone_rng).unwrap();
        phone_t += t.elapsed();

        let t = Instant::now();
        let challenge = lock.handle_hello(config, &mut state, &hello, 1_000, lock_rng).unwrap();
        lock_t += t.elapsed();

        let t = Instant::now();
        let proof = phone.handle_challenge(&challenge).unwrap();
        phone_t += t.elapsed();

        let t = Instant::now();
        let out = lock.handle_proof(config, &mut state, &proof, T0, 1_100).unwrap();
        lock_t += t.elapsed();

        let t = Instant::now();
        let outcome = phone.handle_result(&out.response).unwrap();
        phone_t += t.elapsed();

        assert_eq!(out.decision, Decision::Opened);
        assert_eq!(outcome.decision, Decision::Opened);
        assert_eq!(out.revocation_update, expect_updates);
        black_box((outcome, state));
    }
    match side {
        Side::Phone => phone_t,
        Side::Lock => lock_t,
    }
}

fn unlock_cpu(c: &mut Criterion) {
    let fx = Fixture::new();
    let mut rngs = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(42));
    let fresh = LockState::new();
    let np = UpdateStatus::NotPresent;

    let mut g = c.benchmark_group("phone");
    g.bench_function("no_updates", |b| {
        b.iter_custom(|n| handshakes(n, Side::Phone, &fx.config, &fx.params, &fresh, np, &mut rngs))
    });
    g.bench_function("updates", |b| {
        b.iter_custom(|n| {
            let p = &fx.params_updates;
            handshakes(n, Side::Phone, &fx.config, p, &fresh, UpdateStatus::Applied, &mut rngs)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("lock");
    g.bench_function("no_updates", |b| {
        b.iter_custom(|n| handshakes(n, Side::Lock, &fx.config, &fx.params, &fresh, np, &mut rngs))
    });
    g.bench_function("updates_applied", |b| {
        b.iter_custom(|n| {
            let p = &fx.params_updates;
            handshakes(n, Side::Lock, &fx.config, p, &fresh, UpdateStatus::Applied, &mut rngs)
        })
    });
    g.bench_function("updates_stale", |b| {
        b.iter_custom(|n| {
            let (p, s) = (&fx.params_updates, &fx.state_with_updates);
            handshakes(n, Side::Lock, &fx.config, p, s, UpdateStatus::Stale, &mut rngs)
        })
    });
    g.finish();
}

/// One Proof message (phone → lock) for `params`, produced by a real handshake.
fn proof_for(fx: &Fixture, params: &PhoneParams) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(3);
    let (mut phone, hello) = PhoneHandshake::start(params.clone(), &mut rng).unwrap();
    let challenge = LockHandshake::new().handle_hello(&fx.config, &mut LockState::new(), &hello, 0, &mut rng).unwrap();
    phone.handle_challenge(&challenge).unwrap()
}

fn proof_wire(c: &mut Criterion) {
    let fx = Fixture::new();
    let proofs = [("no_updates", proof_for(&fx, &fx.params)), ("updates", proof_for(&fx, &fx.params_updates))];
    assert_eq!(proofs[0].1.len(), 273);
    let mut g = c.benchmark_group("wire");
    for (name, proof) in &proofs {
        g.throughput(Throughput::Bytes(proof.len() as u64));
        for mtu in [23u16, 185] {
            let id = BenchmarkId::new(format!("proof_{}B_{name}", proof.len()), format!("mtu{mtu}"));
            g.bench_with_input(id, &mtu, |b, &mtu| {
                b.iter(|| {
                    let frags = fragment(black_box(proof), mtu).unwrap();
                    let mut re = Reassembler::new();
                    let mut msg = None;
                    for f in &frags {
                        msg = re.push(f).unwrap();
                    }
                    black_box(msg.unwrap())
                })
            });
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = unlock_cpu, proof_wire
}
criterion_main!(benches);
