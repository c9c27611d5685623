//! `cargo xtask test`: every suite, then one line per suite and the total.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::tools;
use crate::{cargo, run, Result};

#[derive(Default, Clone, Copy)]
pub(crate) struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

pub(crate) struct Suite {
    pub name: &'static str,
    pub counts: Counts,
    /// Why the suite could not run or did not finish, if so.
    pub problem: Option<String>,
}

pub fn test_all(root: &Path) -> Result {
    // Everything links libdbus (the core's Bluetooth transport, btleplug on BlueZ), and the
    // Bluetooth tests start a private dbus-daemon.
    tools::ensure_dbus()?;
    let mut suites = vec![];
    suites.push(rust_suite(root));
    let bindings = bindings(root);
    match &bindings {
        Ok(out) => {
            suites.push(kotlin_suite(root, out));
            suites.push(android_suite(root));
            suites.push(swift_suite(root, out));
            suites.push(crate::conformance::suite(root, &out.server_bin));
        }
        Err(e) => {
            for name in ["kotlin", "android", "swift", "conformance"] {
                suites.push(Suite { name, counts: Counts::default(), problem: Some(format!("bindings: {e}")) });
            }
        }
    }
    let mut total = Counts::default();
    println!();
    for s in &suites {
        total.passed += s.counts.passed;
        total.failed += s.counts.failed;
        total.skipped += s.counts.skipped;
        let note = s.problem.as_deref().map(|p| format!("  ({p})")).unwrap_or_default();
        println!(
            "suite {:<7} {} passed, {} failed, {} skipped{note}",
            s.name, s.counts.passed, s.counts.failed, s.counts.skipped
        );
    }
    let broken = suites.iter().filter(|s| s.problem.is_some()).count();
    println!("{} passed, {} failed", total.passed, total.failed);
    if total.failed > 0 || broken > 0 {
        return Err(format!("{} failed tests, {broken} suites did not complete", total.failed));
    }
    Ok(())
}

/// Runs a command, echoing its stdout and stderr while collecting both (XCTest and
/// swift-testing report on different streams).
pub(crate) fn run_capturing(cmd: &mut Command) -> (bool, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("could not start {:?}: {e}", cmd.get_program())),
    };
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut collected = String::new();
            for line in BufReader::new(err).lines().map_while(std::result::Result::ok) {
                eprintln!("{line}");
                collected.push_str(&line);
                collected.push('\n');
            }
            collected
        })
    });
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            println!("{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    if let Some(handle) = stderr {
        out.push_str(&handle.join().unwrap_or_default());
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    (ok, out)
}

fn rust_suite(root: &Path) -> Suite {
    // The server's store suites run on SQLite and, on this throwaway cluster, on PostgreSQL.
    let cluster = match crate::postgres::Cluster::start() {
        Ok(cluster) => cluster,
        Err(e) => return Suite { name: "rust", counts: Counts::default(), problem: Some(format!("PostgreSQL: {e}")) },
    };
    eprintln!("==> Rust: cargo test --workspace --features porta-lock/lockd,porta-server/postgres");
    eprintln!("xtask: the server's store suites run on SQLite and on PostgreSQL ({})", cluster.url());
    let mut cmd = Command::new(cargo());
    // `lockd`: the lock's own binary (porta-lockd) and its tests. `postgres`: the server's
    // PostgreSQL backends, tested against the cluster.
    cmd.current_dir(root).args([
        "test",
        "--workspace",
        "--no-fail-fast",
        "--features",
        "porta-lock/lockd,porta-server/postgres",
    ]);
    cluster.export(&mut cmd);
    // The server's delivery tests run a real SMTP server (aiosmtpd) from this venv.
    match crate::conformance::venv(root, "smtp-venv", "server/tests/smtp/requirements.txt") {
        Ok(python) => {
            cmd.env("PORTA_TEST_PYTHON", python);
        }
        Err(e) => eprintln!("xtask: the SMTP tests will provision their own Python: {e}"),
    }
    let (ok, out) = run_capturing(&mut cmd);
    let sqlite = test_counts(&out);
    let mut problem = (!ok && sqlite.failed == 0).then(|| "cargo test did not complete".to_string());

    // The server's HTTP suite once more, each test on a fresh PostgreSQL database of its own.
    eprintln!("==> Rust: the server's HTTP suite on PostgreSQL (PORTA_TEST_SERVER_BACKEND=postgres)");
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["test", "-p", "porta-server", "--no-fail-fast", "--features", "postgres", "--test", "*"])
        .env("PORTA_TEST_SERVER_BACKEND", "postgres");
    cluster.export(&mut cmd);
    let (pg_ok, pg_out) = run_capturing(&mut cmd);
    let postgres = test_counts(&pg_out);
    if !pg_ok && postgres.failed == 0 {
        problem.get_or_insert_with(|| "cargo test on PostgreSQL did not complete".to_string());
    }
    println!(
        "rust: the workspace, servers on sqlite: {} passed, {} failed; the server's HTTP suite on postgres: {} passed, {} failed",
        sqlite.passed, sqlite.failed, postgres.passed, postgres.failed
    );
    let counts = Counts {
        passed: sqlite.passed + postgres.passed,
        failed: sqlite.failed + postgres.failed,
        skipped: sqlite.skipped + postgres.skipped,
    };
    Suite { name: "rust", counts, problem }
}

/// The totals of every "test result:" line of cargo test's output.
fn test_counts(out: &str) -> Counts {
    let mut counts = Counts::default();
    // "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ..."
    for line in out.lines().filter(|l| l.starts_with("test result:")) {
        counts.passed += number_before(line, " passed");
        counts.failed += number_before(line, " failed");
        counts.skipped += number_before(line, " ignored");
    }
    counts
}

pub(crate) fn number_before(line: &str, label: &str) -> u64 {
    line.find(label)
        .and_then(|end| line[..end].rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

pub struct Bindings {
    pub lib_dir: PathBuf,
    pub server_bin: PathBuf,
    pub fake_bluez_bin: PathBuf,
}

/// Builds the host library and the server, generates Swift and Kotlin into target/bindings,
/// and places them where the Swift package and the Maven project read them.
pub fn bindings(root: &Path) -> Result<Bindings> {
    eprintln!("==> bindings: build porta-ffi, porta-server and porta-fake-bluez, generate Swift and Kotlin");
    // porta-fake-bluez: the fake BlueZ (a private D-Bus) the Kotlin and Swift Bluetooth tests start.
    // (No `--bin`: with it cargo would build only that binary of all the packages.)
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "-p",
        "porta-ffi",
        "-p",
        "porta-server",
        "-p",
        "porta-fake-bluez",
        "--features",
        "porta-ffi/cli,porta-ffi/simulator",
    ]))?;
    let lib_dir = crate::target_dir(root).join("debug");
    let lib = lib_dir.join(if cfg!(target_os = "macos") { "libporta_ffi.dylib" } else { "libporta_ffi.so" });
    let out = crate::target_dir(root).join("bindings");
    for language in ["kotlin", "swift"] {
        let _ = std::fs::remove_dir_all(out.join(language));
        run(Command::new(lib_dir.join("uniffi-bindgen"))
            .current_dir(root)
            .args(["generate", "--no-format", "--language", language, "--config", "uniffi.toml", "--out-dir"])
            .arg(out.join(language))
            .arg("--library")
            .arg(&lib))?;
    }
    // Swift: the generated source into the Porta target, the C header next to our modulemap.
    let swift = out.join("swift");
    let generated = root.join("ios/Sources/Porta/Generated");
    std::fs::create_dir_all(&generated).map_err(|e| e.to_string())?;
    copy(&swift.join("Porta.swift"), &generated.join("Porta.swift"))?;
    let include = root.join("ios/Sources/PortaFFI/include");
    std::fs::create_dir_all(&include).map_err(|e| e.to_string())?;
    copy(&swift.join("portaFFI.h"), &include.join("portaFFI.h"))?;
    // Kotlin: the Maven project compiles target/bindings/kotlin directly (see its pom.xml).
    Ok(Bindings { server_bin: lib_dir.join("porta-server"), fake_bluez_bin: lib_dir.join("porta-fake-bluez"), lib_dir })
}

fn copy(from: &Path, to: &Path) -> Result {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}

fn kotlin_suite(root: &Path, b: &Bindings) -> Suite {
    let name = "kotlin";
    if let Err(e) = tools::ensure_jvm() {
        return Suite { name, counts: Counts::default(), problem: Some(e) };
    }
    eprintln!("==> Kotlin: mvn test (android/jvm-tests)");
    let project = root.join("android/jvm-tests");
    let reports = project.join("target/surefire-reports");
    let _ = std::fs::remove_dir_all(&reports);
    let mut cmd = Command::new("mvn");
    cmd.current_dir(&project)
        .args(["-B", "--no-transfer-progress", "test"])
        .arg(format!("-Dporta.lib.dir={}", b.lib_dir.display()))
        .arg(format!("-Dporta.bindings.dir={}", crate::target_dir(root).join("bindings/kotlin").display()))
        .env("PORTA_SERVER_BIN", &b.server_bin)
        .env("PORTA_FAKE_BLUEZ_BIN", &b.fake_bluez_bin);
    // EmailDeliveryTest runs the same real SMTP server as the server's tests.
    match crate::conformance::venv(root, "smtp-venv", "server/tests/smtp/requirements.txt") {
        Ok(python) => {
            cmd.env("PORTA_TEST_PYTHON", python);
        }
        Err(e) => eprintln!("xtask: no Python for the SMTP test: {e}"),
    }
    let (ok, _) = run_capturing(&mut cmd);
    let counts = surefire_counts(&reports);
    let problem = (!ok && counts.failed == 0)
        .then(|| "maven did not complete".to_string())
        .or_else(|| (counts.passed + counts.failed == 0).then(|| "no tests ran".to_string()));
    Suite { name, counts, problem }
}

/// The Android library's own Java and Kotlin (droidplug, BluetoothPermissions, KeystoreSecureStore)
/// compiled against Android's framework classes and tested on Robolectric (android/platform-tests).
fn android_suite(root: &Path) -> Suite {
    let name = "android";
    if let Err(e) = tools::ensure_jvm() {
        return Suite { name, counts: Counts::default(), problem: Some(e) };
    }
    eprintln!("==> Android: mvn test (android/platform-tests, Robolectric)");
    let project = root.join("android/platform-tests");
    let reports = project.join("target/surefire-reports");
    let _ = std::fs::remove_dir_all(&reports);
    let mut cmd = Command::new("mvn");
    cmd.current_dir(&project)
        .args(["-B", "--no-transfer-progress", "test"])
        .arg(format!("-Dporta.bindings.dir={}", crate::target_dir(root).join("bindings/kotlin").display()));
    let (ok, _) = run_capturing(&mut cmd);
    let counts = surefire_counts(&reports);
    let problem = (!ok && counts.failed == 0)
        .then(|| "maven did not complete".to_string())
        .or_else(|| (counts.passed + counts.failed == 0).then(|| "no tests ran".to_string()));
    Suite { name, counts, problem }
}

/// Sums `tests`, `failures`, `errors` and `skipped` over Surefire's XML reports.
fn surefire_counts(dir: &Path) -> Counts {
    let mut counts = Counts::default();
    let Ok(entries) = std::fs::read_dir(dir) else { return counts };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Some(start) = text.find("<testsuite ") else { continue };
        let head = &text[start..start + text[start..].find('>').unwrap_or(0)];
        let attr = |name: &str| -> u64 {
            head.find(&format!(" {name}=\""))
                .and_then(|i| head[i + name.len() + 3..].split('"').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (tests, failures, errors, skipped) = (attr("tests"), attr("failures"), attr("errors"), attr("skipped"));
        counts.failed += failures + errors;
        counts.skipped += skipped;
        counts.passed += tests.saturating_sub(failures + errors + skipped);
    }
    counts
}

fn swift_suite(root: &Path, b: &Bindings) -> Suite {
    let name = "swift";
    let swift = match tools::ensure_swift() {
        Ok(s) => s,
        Err(e) => return Suite { name, counts: Counts::default(), problem: Some(e) },
    };
    eprintln!("==> Swift: swift test (ios/)");
    let env = [
        ("PORTA_LIB_DIR", b.lib_dir.display().to_string()),
        ("PORTA_SERVER_BIN", b.server_bin.display().to_string()),
        ("PORTA_FAKE_BLUEZ_BIN", b.fake_bluez_bin.display().to_string()),
    ];
    let mut cmd = swift.command(root, &root.join("ios"), &["test"], &env, &b.lib_dir);
    cmd.env("PORTA_LIB_DIR", &b.lib_dir)
        .env("PORTA_SERVER_BIN", &b.server_bin)
        .env("PORTA_FAKE_BLUEZ_BIN", &b.fake_bluez_bin);
    let (ok, out) = run_capturing(&mut cmd);
    // XCTest: "Executed 9 tests, with 0 failures (0 unexpected) in 1.2 (1.2) seconds"; the
    // last such line is the grand total.
    let mut counts = Counts::default();
    if let Some(line) = out.lines().rev().find(|l| l.trim_start().starts_with("Executed ")) {
        let executed = number_before(line, " test");
        let failures = number_before(line, " failure");
        let skipped = number_before(line, " skipped");
        counts = Counts { passed: executed.saturating_sub(failures + skipped), failed: failures, skipped };
    }
    let problem = (!ok && counts.failed == 0)
        .then(|| "swift test did not complete".to_string())
        .or_else(|| (counts.passed + counts.failed == 0).then(|| "no tests ran".to_string()));
    Suite { name, counts, problem }
}
