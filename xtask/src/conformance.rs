//! The API conformance suite: schemathesis, pinned in `conformance/requirements.txt`, run by
//! `conformance/run.py` against the real `porta-server` binary's `/openapi.json` with a
//! signed-in user and an enrolled device key. Python comes from a venv under target/.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::suites::{number_before, run_capturing, Counts, Suite};
use crate::tools;
use crate::Result;

/// `cargo xtask conformance`: builds the server and runs only this suite.
pub fn run_alone(root: &Path) -> Result {
    crate::run(Command::new(crate::cargo()).current_dir(root).args(["build", "-p", "porta-server"]))?;
    let s = suite(root, &crate::target_dir(root).join("debug/porta-server"));
    let note = s.problem.as_deref().map(|p| format!("  ({p})")).unwrap_or_default();
    println!(
        "\nsuite {} {} passed, {} failed, {} skipped{note}",
        s.name, s.counts.passed, s.counts.failed, s.counts.skipped
    );
    match (s.counts.failed, s.problem) {
        (0, None) => Ok(()),
        (failed, problem) => {
            Err(format!("conformance: {failed} failed{}", problem.map(|p| format!(" ({p})")).unwrap_or_default()))
        }
    }
}

pub fn suite(root: &Path, server_bin: &Path) -> Suite {
    let name = "conformance";
    let python = match venv(root, "conformance-venv", "conformance/requirements.txt") {
        Ok(python) => python,
        Err(e) => return Suite { name, counts: Counts::default(), problem: Some(e) },
    };
    eprintln!("==> API conformance: schemathesis against porta-server (conformance/run.py)");
    let mut cmd = Command::new(python);
    cmd.current_dir(root)
        .arg(root.join("conformance/run.py"))
        .arg("--server-bin")
        .arg(server_bin)
        .arg("--out-dir")
        .arg(crate::target_dir(root).join("conformance"));
    let (ok, out) = run_capturing(&mut cmd);
    // run.py closes with "conformance: N passed, M failed" (one test per operation, plus the
    // main run's stateful phase).
    let mut counts = Counts::default();
    if let Some(line) = out.lines().rev().find(|l| l.starts_with("conformance: ")) {
        counts.passed = number_before(line, " passed");
        counts.failed = number_before(line, " failed");
    }
    let problem = (!ok && counts.failed == 0)
        .then(|| "conformance/run.py did not complete".to_string())
        .or_else(|| (counts.passed + counts.failed == 0).then(|| "no operations were checked".to_string()));
    Suite { name, counts, problem }
}

/// The python of venv `name` under the target directory with the pinned `requirements`
/// (relative to the checkout) installed; created on first use and reinstalled only when the
/// requirements change. Conformance runs schemathesis from one; the server's SMTP tests run
/// their mail server (aiosmtpd) from another.
pub fn venv(root: &Path, name: &str, requirements: &str) -> Result<PathBuf> {
    let dir = crate::target_dir(root).join(name);
    let python = dir.join("bin/python");
    if !python.exists() {
        if !tools::on_path("python3") {
            install_or(
                &["python3", "python3-venv"],
                "the conformance suite needs Python 3 with venv (Debian: apt-get install python3 python3-venv; macOS: brew install python)",
            )?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let created = Command::new("python3").arg("-m").arg("venv").arg(&dir).status().is_ok_and(|s| s.success());
        if !created {
            // Debian splits ensurepip out of python3 into python3-venv.
            let _ = std::fs::remove_dir_all(&dir);
            install_or(
                &["python3-venv"],
                "`python3 -m venv` failed: install the venv module (Debian: apt-get install python3-venv)",
            )?;
            crate::run(Command::new("python3").arg("-m").arg("venv").arg(&dir))?;
        }
    }
    let requirements = root.join(requirements);
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = dir.join("porta-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("==> pip install -r {}", requirements.display());
        crate::run(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements),
        )?;
        std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    }
    Ok(python)
}

/// Installs `packages` with apt-get when root on Debian, else fails saying what to install.
fn install_or(packages: &[&str], how: &str) -> Result {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(root && Path::new("/etc/debian_version").exists()) {
        return Err(how.into());
    }
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
    crate::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
