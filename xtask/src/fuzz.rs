//! `cargo xtask fuzz [--seconds N] [--target NAME] [--seed] [--cmin]`: runs the cargo-fuzz
//! targets in `fuzz/` one after the other (the machine has two cores), each for N seconds
//! (default 60) on its committed corpus, and prints one summary line per target.
//!
//! - `--seed` first writes each target's seed inputs (the fixture's real messages and
//!   answers) into its corpus, then fuzzes;
//! - `--cmin` minimises each corpus after its run (`cargo fuzz cmin`).
//!
//! Needs the nightly toolchain (libFuzzer's instrumentation); installs cargo-fuzz if missing.
//! The instrumented build goes to `target/fuzz` (or `$PORTA_FUZZ_TARGET_DIR`).
//! Exits non-zero if any target crashed; the crashing input is kept in `fuzz/artifacts/`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Result;

/// Every target, most important first (the order of a run cut short).
pub const TARGETS: [&str; 5] = ["lock_role", "decoders", "fragments", "phone_role", "core_json"];

struct Options {
    seconds: u64,
    targets: Vec<String>,
    seed: bool,
    cmin: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options { seconds: 60, targets: Vec::new(), seed: false, cmin: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a number")?;
                o.seconds = v.parse().map_err(|_| format!("--seconds: not a number: {v}"))?;
            }
            "--target" => {
                let t = it.next().ok_or("--target needs a name")?;
                if !TARGETS.contains(&t.as_str()) {
                    return Err(format!("unknown fuzz target {t}; targets: {}", TARGETS.join(", ")));
                }
                o.targets.push(t.clone());
            }
            "--seed" => o.seed = true,
            "--cmin" => o.cmin = true,
            other => {
                return Err(format!(
                    "unknown option {other}; usage: cargo xtask fuzz [--seconds N] [--target NAME] [--seed] [--cmin]"
                ))
            }
        }
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(o)
}

/// What one run reported.
struct Summary {
    target: String,
    runs: u64,
    seconds: u64,
    corpus: usize,
    crashed: bool,
}

pub fn fuzz(root: &Path, args: &[String]) -> Result {
    let o = parse(args)?;
    ensure_cargo_fuzz(root)?;
    let mut summaries = Vec::new();
    for t in &o.targets {
        let corpus = root.join("fuzz/corpus").join(t);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("create {}: {e}", corpus.display()))?;
        if o.seed {
            seed(root, t, &corpus)?;
        }
        let s = run_target(root, t, &corpus, o.seconds)?;
        eprintln!(
            "fuzz {}: {} runs in {} s, corpus {} inputs, {} crashes",
            s.target,
            s.runs,
            s.seconds,
            s.corpus,
            u8::from(s.crashed)
        );
        if o.cmin && !s.crashed {
            crate::run(fuzz_command(root).args(["cmin", t, "--target-dir", &target_dir()]).arg(&corpus))?;
        }
        summaries.push(s);
    }
    eprintln!("==> fuzz summary ({} s per target)", o.seconds);
    for s in &summaries {
        eprintln!(
            "  {:<11} runs {:>10}  seconds {:>4}  corpus {:>4}  crashes {}",
            s.target,
            s.runs,
            s.seconds,
            count_files(&root.join("fuzz/corpus").join(&s.target)),
            u8::from(s.crashed)
        );
    }
    let crashed: Vec<_> = summaries.iter().filter(|s| s.crashed).map(|s| s.target.as_str()).collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzz targets crashed: {} (inputs in fuzz/artifacts/)", crashed.join(", ")))
    }
}

/// Where the instrumented nightly build goes: apart from the workspace's own stable build.
fn target_dir() -> String {
    std::env::var("PORTA_FUZZ_TARGET_DIR").unwrap_or_else(|_| "target/fuzz".into())
}

/// `cargo +nightly fuzz`, through the rustup proxy (not `$CARGO`, which is this stable cargo).
fn fuzz_command(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).arg("+nightly").arg("fuzz");
    for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO", "RUSTC_WRAPPER"] {
        cmd.env_remove(var);
    }
    cmd
}

fn ensure_cargo_fuzz(root: &Path) -> Result {
    let nightly = Command::new("rustc")
        .current_dir(root)
        .args(["+nightly", "--version"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !nightly.is_ok_and(|s| s.success()) {
        return Err("fuzzing needs the nightly toolchain: rustup toolchain install nightly".into());
    }
    let have = Command::new("cargo").args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !have.is_ok_and(|s| s.success()) {
        eprintln!("==> installing cargo-fuzz");
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Runs the target once with `PORTA_FUZZ_SEEDS` set: it writes its seeds into the corpus.
fn seed(root: &Path, target: &str, corpus: &Path) -> Result {
    eprintln!("==> seeding fuzz/corpus/{target}");
    crate::run(fuzz_command(root).env("PORTA_FUZZ_SEEDS", corpus).args([
        "run",
        target,
        "--target-dir",
        &target_dir(),
        "--",
        "-runs=1",
    ]))
}

/// Runs one target for `seconds`, echoing libFuzzer's progress lines, and reads its final stats.
fn run_target(root: &Path, target: &str, corpus: &Path, seconds: u64) -> Result<Summary> {
    eprintln!("==> fuzz {target} for {seconds} s");
    let mut cmd = fuzz_command(root);
    cmd.args(["run", target, "--target-dir", &target_dir()])
        .arg(corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        // Keep inputs small: the protocol caps messages at 4 KiB, the JSON answers are smaller.
        .arg("-max_len=8192")
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("could not start cargo fuzz: {e}"))?;
    let mut runs = 0;
    let mut took = 0;
    let mut crashed = false;
    let stderr = child.stderr.take().expect("piped");
    for line in BufReader::new(stderr).lines().map_while(std::io::Result::ok) {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            runs = v.trim().parse().unwrap_or(runs);
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            // "Done 123456 runs in 60 second(s)"
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [n, "runs", "in", s, ..] = words.as_slice() {
                runs = n.parse().unwrap_or(runs);
                took = s.parse().unwrap_or(took);
            }
        }
        if line.contains("panicked at") || line.contains("==ERROR") || line.starts_with("artifact_prefix") {
            crashed = true;
        }
        // Progress (pulse, NEW, REDUCE lines are many): only the periodic and final ones.
        if line.contains("pulse") || line.starts_with("Done") || crashed || !line.starts_with('#') {
            eprintln!("{line}");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo fuzz: {e}"))?;
    crashed |= !status.success();
    Ok(Summary { target: target.to_string(), runs, seconds: took, corpus: count_files(corpus), crashed })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).count()).unwrap_or(0)
}
