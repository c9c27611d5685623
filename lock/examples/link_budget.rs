//! Link budget of one unlock over the simulated BLE link, in virtual time.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-lock cargo run --release -p porta-lock --example link_budget
//! ```
//!
//! Prints a Markdown table: for connection intervals 7.5 / 30 / 50 ms × ATT MTU
//! 23 / 185 / 517, without and with a carried time update (revocations travel after the
//! decision), the virtual time from "connected" (t = 0) to the decision,
//! round trips, fragments and bytes on the air. The figures come from the
//! `SimulatedLock`'s virtual clock and `LinkStats`, so they are deterministic.
//!
//! What the model includes and leaves out is described in the crate README ("Timing
//! model of the simulated link") and in `BENCHMARKS.md`: no computation time, no
//! connection setup, no scanning/advertising, no extra latency, no retransmissions.

use std::error::Error;
use std::time::Duration;

use porta_lock::porta_protocol::{fragment, Decision, PhoneHandshake, PhoneParams, Reassembler};
use porta_lock::{LinkParams, LinkStats, Lock, SimulatedLink, SimulatedLock};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[path = "../benches/support/site.rs"]
mod site;
use site::{Site, LOCK_ID, T0};

const WAIT: Duration = Duration::from_secs(10);

type R<T> = Result<T, Box<dyn Error>>;

impl Site {
    /// A fresh lock (empty state) behind a simulated link.
    fn sim(&self, params: LinkParams) -> R<SimulatedLock> {
        let sim = SimulatedLock::new(Lock::in_memory(self.provision.to_config()?), LOCK_ID, params);
        sim.set_clock(T0);
        sim.set_rng_seed(42);
        Ok(sim)
    }
}

struct Run {
    decision: Decision,
    /// Virtual ms at which the last Proof fragment reached the lock (the lock decides
    /// on arrival; computation is not modelled).
    lock_decides_ms: f64,
    /// Virtual ms at which the phone had the whole Result (the user sees the decision).
    phone_has_result_ms: f64,
    stats: LinkStats,
    /// Message sizes: Hello, Challenge, Proof, Result.
    sizes: [usize; 4],
}

async fn send(link: &SimulatedLink, msg: &[u8]) -> R<()> {
    for f in fragment(msg, link.att_mtu())? {
        link.write(f).await?;
    }
    Ok(())
}

async fn recv(link: &SimulatedLink) -> R<Vec<u8>> {
    let mut re = Reassembler::new();
    loop {
        if let Some(m) = re.push(&link.notification(WAIT).await?)? {
            return Ok(m);
        }
    }
}

async fn unlock(sim: &SimulatedLock, params: PhoneParams) -> R<Run> {
    let link = sim.connect().await?;
    let mut rng = StdRng::seed_from_u64(7);
    let (mut phone, hello) = PhoneHandshake::start(params, &mut rng)?;
    send(&link, &hello).await?;
    let challenge = recv(&link).await?;
    let proof = phone.handle_challenge(&challenge)?;
    send(&link, &proof).await?;
    // latency_ms = 0: the last write arrives at the lock at its send time.
    let lock_decides_ms = link.virtual_ms() + sim.params().latency_ms;
    let result = recv(&link).await?;
    let outcome = phone.handle_result(&result)?;
    Ok(Run {
        decision: outcome.decision,
        lock_decides_ms,
        phone_has_result_ms: link.virtual_ms(),
        stats: sim.stats(),
        sizes: [hello.len(), challenge.len(), proof.len(), result.len()],
    })
}

fn decision_str(d: Decision) -> String {
    match d {
        Decision::Opened => "Opened".into(),
        Decision::Denied(r) => format!("**Denied({r:?})**"),
    }
}

fn main() -> R<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    rt.block_on(run())
}

async fn run() -> R<()> {
    let site = Site::new();
    let with_updates = site.params_with_updates();
    let cases = [("none", site.params.clone()), ("time update", with_updates)];

    println!("| updates | interval | MTU | connected → phone has Result | connected → lock decides | round trips | fragments up / down | bytes up / down | decision |");
    println!("|---------|---------:|----:|-----------------------------:|-------------------------:|------------:|--------------------:|----------------:|----------|");
    let mut sizes = Vec::new();
    for (label, params) in &cases {
        for interval in [7.5, 30.0, 50.0] {
            for mtu in [23u16, 185, 517] {
                let sim = site.sim(LinkParams::new(mtu, interval))?;
                let r = unlock(&sim, params.clone()).await?;
                let s = r.stats;
                println!(
                    "| {label} | {interval} ms | {mtu} | {:.1} ms | {:.1} ms | {} | {} / {} | {} / {} | {} |",
                    r.phone_has_result_ms,
                    r.lock_decides_ms,
                    s.round_trips,
                    s.fragments_up,
                    s.fragments_down,
                    s.bytes_up,
                    s.bytes_down,
                    decision_str(r.decision),
                );
                if interval == 7.5 && mtu == 23 {
                    sizes.push((*label, r.sizes));
                }
            }
        }
    }
    println!();
    println!("| updates | Hello | Challenge | Proof | Result | message bytes up / down |");
    println!("|---------|------:|----------:|------:|-------:|------------------------:|");
    for (label, [h, c, p, r]) in sizes {
        println!("| {label} | {h} | {c} | {p} | {r} | {} / {} |", h + p, c + r);
    }
    Ok(())
}
