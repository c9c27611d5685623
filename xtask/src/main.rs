//! `cargo xtask`: the project's task runner. Plain std, so it builds in seconds.
//!
//! - `cargo xtask test`      every suite: Rust, Kotlin (host JVM), Android platform code (Robolectric), Swift (SwiftPM/XCTest), API
//!   conformance (schemathesis against the server binary)
//! - `cargo xtask conformance`  only the API conformance suite
//! - `cargo xtask demo`      the resident journey on the embedded server
//! - `cargo xtask bindings`  build the library and generate Swift and Kotlin bindings
//! - `cargo xtask xcframework` / `cargo xtask aar`   mobile packages (need Xcode / the NDK)
//! - `cargo xtask fuzz [--seconds N] [--target NAME] [--seed] [--cmin]`   the fuzz targets (nightly)
//! - `cargo xtask bench [load | size] [ARGS…]`   the server's load and size benchmarks on SQLite
//!   and PostgreSQL, in release (BENCHMARKS.md)
//! - `cargo xtask postgres <command…>`   runs a command with `PORTA_TEST_POSTGRES_URL` set to a
//!   throwaway PostgreSQL cluster, e.g. `cargo xtask postgres cargo test -p porta-server --features postgres --lib`

mod bench;
mod conformance;
mod fuzz;
mod mobile;
mod postgres;
mod suites;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Where cargo puts its output: `$CARGO_TARGET_DIR` (relative to the workspace) if set,
/// else `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(PathBuf::from(dir)),
        _ => root.join("target"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    let result = match args.first().map(String::as_str) {
        Some("test") => suites::test_all(&root),
        Some("conformance") => conformance::run_alone(&root),
        Some("demo") => demo(&root),
        Some("bindings") => suites::bindings(&root).map(|_| ()),
        Some("xcframework") => mobile::xcframework(&root),
        Some("aar") => mobile::aar(&root),
        Some("fuzz") => fuzz::fuzz(&root, &args[1..]),
        Some("postgres") => postgres::run_with_cluster(&root, &args[1..]),
        Some("bench") => bench::bench(&root, &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test | conformance | demo | bindings | xcframework | aar | fuzz | postgres | bench>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

/// The checkout `cargo xtask` runs in. `cargo run` sets `CARGO_MANIFEST_DIR` at run time; the
/// compile-time value can name another checkout that shares the target directory.
fn project_root() -> PathBuf {
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    manifest_dir.parent().expect("xtask lives in the workspace").to_path_buf()
}

fn demo(root: &Path) -> Result {
    // `porta` links libdbus for its Bluetooth transport (btleplug on BlueZ).
    tools::ensure_dbus()?;
    run(Command::new(cargo()).current_dir(root).args([
        "run",
        "--quiet",
        "-p",
        "porta-cli",
        "--bin",
        "porta",
        "--",
        "demo",
    ]))
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a command with inherited output; a non-zero exit is an error naming the command.
pub fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("could not start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}
