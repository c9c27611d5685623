//! Load and size benchmarks of the server on SQLite and PostgreSQL (BENCHMARKS.md, "the
//! backend at scale"). `cargo xtask bench` builds this and `porta-server` in release, starts a
//! throwaway PostgreSQL cluster with fsync on, and runs:
//!
//! ```text
//! bench load --server PATH [--backends sqlite,pg1,pg2] [--quick]
//! bench size [--backends sqlite,pg] [--residents N] [--events N]
//! ```
//!
//! `load` runs real `porta-server` processes on loopback and drives them over HTTP with
//! reqwest; `size` seeds a database with SQL and times the access-log reads and the retention
//! purge through the server's own stores. PostgreSQL is the cluster `PORTA_TEST_POSTGRES_URL`
//! names (each run makes fresh databases on it).

mod load;
mod size;

use std::time::Duration;

/// Latencies of one row, and the wall time they were taken in.
pub struct Sample {
    pub durations: Vec<Duration>,
    pub wall: Duration,
}

impl Sample {
    /// The `q`-th quantile (nearest rank), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.durations.clone();
        sorted.sort();
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    }

    pub fn per_second(&self) -> f64 {
        self.durations.len() as f64 / self.wall.as_secs_f64()
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = match args.first().map(String::as_str) {
        Some("load") => runtime.block_on(load::run(&args[1..])),
        Some("size") => runtime.block_on(size::run(&args[1..])),
        _ => Err("usage: bench load --server PATH [--backends sqlite,pg1,pg2] [--quick] | \
                  bench size [--backends sqlite,pg] [--residents N] [--events N]"
            .into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The value after `--name` in `args`, if given.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

pub type Result<T = ()> = std::result::Result<T, String>;
