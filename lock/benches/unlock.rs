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
//! * `*/updates` — the phone carries a time update in its Proof (revocations travel after
//!   the decision and are not part of the unlock). `lock/updates_applied` starts every
//!   handshake from a lock state that lacks it (verified *and* applied: worst case);
//!   `lock/updates_stale` from one that already has it (ignored).
//! * `wire/*` — fragmentation + reassembly of a Proof (273 bytes without updates,
//!   ~340 bytes with the time update) at ATT MTU 23 and 185.
//!
//! Targets (issue): ≤ 0.3 ms phone CPU and ≤ 0.5 ms lock CPU per unlock. Results and
//! their comparison with the targets are in `BENCHMARKS.md` at the workspace root.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use porta_lock::porta_protocol::{
    fragment, Decision, LockConfig, LockHandshake, LockState, PhoneHandshake, PhoneParams, Reassembler, UpdateStatus,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[path = "support/site.rs"]
mod site;
use site::{Site, T0};

/// The lock's configuration and the phone's attempts, from the shared site.
struct Fixture {
    config: LockConfig,
    params: PhoneParams,
    params_updates: PhoneParams,
    /// Lock state that already holds the carried updates.
    state_with_updates: LockState,
}

impl Fixture {
    fn new() -> Self {
        let site = Site::new();
        let config = site.provision.to_config().unwrap();
        let mut state_with_updates = LockState::new();
        assert_eq!(
            state_with_updates.apply_time_update(&config, site.updates.time.as_ref().unwrap()),
            UpdateStatus::Applied
        );
        assert_eq!(
            state_with_updates.apply_revocation_delta(&config, &site.delta, T0),
            porta_lock::porta_protocol::DeltaStatus::Applied
        );
        let params_updates = site.params_with_updates();
        Self { config, params: site.params, params_updates, state_with_updates }
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
        assert_eq!(out.time_update, expect_updates);
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
