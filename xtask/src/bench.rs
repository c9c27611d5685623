//! `cargo xtask bench [load | size] [ARGS…]`: the server's load and size benchmarks
//! (server/examples/bench, BENCHMARKS.md). Builds `porta-server` and the benchmark in release
//! with PostgreSQL, starts a throwaway cluster with fsync on (as production runs), and runs
//! `load` then `size` (or the one named) against SQLite and PostgreSQL. ARGS go to the
//! benchmark, e.g. `--quick`, `--backends sqlite,pg1`, `--residents N --events N`.

use std::path::Path;
use std::process::Command;

use crate::postgres::{Cluster, Durability};
use crate::Result;

pub fn bench(root: &Path, args: &[String]) -> Result {
    let (modes, rest): (&[&str], &[String]) = match args.first().map(String::as_str) {
        Some("load") => (&["load"], &args[1..]),
        Some("size") => (&["size"], &args[1..]),
        _ => (&["load", "size"], args),
    };
    crate::run(Command::new(crate::cargo()).current_dir(root).env("CARGO_INCREMENTAL", "0").args([
        "build",
        "--release",
        "-p",
        "porta-server",
        "--features",
        "postgres",
        "--bin",
        "porta-server",
        "--example",
        "bench",
    ]))?;
    let release = crate::target_dir(root).join("release");
    let cluster = Cluster::start_with(Durability::Fsync)?;
    eprintln!("xtask: PostgreSQL (fsync on) at {}", cluster.url());
    for mode in modes {
        let mut cmd = Command::new(release.join("examples").join("bench"));
        cmd.arg(mode).current_dir(root).env("PORTA_TEST_POSTGRES_URL", cluster.url());
        if *mode == "load" {
            cmd.arg("--server").arg(release.join("porta-server"));
        }
        crate::run(cmd.args(rest))?;
    }
    Ok(())
}
