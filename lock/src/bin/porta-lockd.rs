//! `porta-lockd`: a lock's provisioning from a terminal, on its data directory
//! ([`porta_lock::LockDir`]). The lock makes its own key and a request for the site; the
//! installer submits the request as a site admin and brings back the answer file, which
//! the lock installs.
//!
//! Exit codes: 0 ok, 2 usage, 5 invalid input, 6 wrong lock (another lock's answer, or a
//! lock already installed otherwise), 7 I/O or a damaged data directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use clap::{CommandFactory, Parser, Subcommand};
use porta_lock::porta_protocol::LockCertificate;
use porta_lock::{LockDir, LockDirStatus, LockError};
use rand::rngs::OsRng;

#[derive(Parser)]
#[command(
    name = "porta-lockd",
    version,
    about = "A Porta lock's provisioning: its own key, its request, its certificate"
)]
struct Cli {
    /// The lock's data directory: its key, its certificate and its state.
    #[arg(long, env = "PORTA_LOCK_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a provisioning request for an admin to submit for a door (creates the lock's key on first use).
    ProvisionRequest {
        /// Write the request to FILE instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Install the site's answer (the JSON the admin received when submitting the request).
    InstallCertificate {
        /// The answer file.
        answer_file: PathBuf,
    },
    /// Show whether the lock has a key and which certificate it has installed.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    // Issue 14: `serve` (the lock on BlueZ) joins here.
}

const INVALID_INPUT: u8 = 5;
const WRONG_LOCK: u8 = 6;
const IO: u8 = 7;

/// Why a command failed: the exit code and a message for the installer.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    fn io(what: &str, path: &Path, e: std::io::Error) -> Self {
        Self::new(IO, format!("cannot {what} {}: {e}", path.display()))
    }

    fn lock(dir: &LockDir, e: LockError) -> Self {
        let code = match e {
            LockError::CertificateForAnotherKey | LockError::AlreadyInstalled { .. } | LockError::NoKey => WRONG_LOCK,
            LockError::Provision(_) | LockError::OlderCertificate => INVALID_INPUT,
            _ => IO,
        };
        let message = match e {
            LockError::CertificateForAnotherKey => {
                "this answer is for another lock's request: the certificate certifies another key".to_owned()
            }
            LockError::NoKey => format!(
                "the lock in {} has no key yet, so this answer cannot be for it; run `porta-lockd provision-request` first",
                dir.path().display()
            ),
            LockError::AlreadyInstalled { lock_id } => format!(
                "the lock is already installed as lock {lock_id}; this certificate is for another lock id or site \
                 (a key is installed once: a lock for another door needs a new data directory)"
            ),
            LockError::Provision(e) => format!("the certificate is not valid: {e}"),
            LockError::Io(e) => format!("lock directory {}: {e}", dir.path().display()),
            e @ LockError::CorruptLockFile { .. } => format!(
                "{e} (in {}); it is left as it is: restore it, or provision this lock again from a new data directory",
                dir.path().display()
            ),
            e => format!("{e} (lock directory {})", dir.path().display()),
        };
        Self { code, message }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(data_dir) = cli.data_dir else {
        Cli::command()
            .error(clap::error::ErrorKind::MissingRequiredArgument, "--data-dir DIR (or PORTA_LOCK_DIR) is required")
            .exit();
    };
    let dir = LockDir::new(data_dir);
    let result = match cli.command {
        Command::ProvisionRequest { out } => provision_request(&dir, out.as_deref()),
        Command::InstallCertificate { answer_file } => install_certificate(&dir, &answer_file),
        Command::Status { json } => status(&dir, json),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("porta-lockd: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The request file's text (standard base64 of the request, one line), or with `out` a
/// line saying where it was written.
fn provision_request(dir: &LockDir, out: Option<&Path>) -> Result<String, Failure> {
    let request = dir.provisioning_request(&mut OsRng).map_err(|e| Failure::lock(dir, e))?;
    let text = format!("{}\n", BASE64.encode(request.to_bytes()));
    let Some(out) = out else {
        return Ok(text);
    };
    std::fs::write(out, &text).map_err(|e| Failure::io("write the request to", out, e))?;
    Ok(format!(
        "Wrote the provisioning request to {} (lock key {}).\nSubmit it for the door; install the answer with \
         `porta-lockd install-certificate ANSWER_FILE`.\n",
        out.display(),
        BASE64.encode(request.lock_key)
    ))
}

fn install_certificate(dir: &LockDir, answer_file: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(answer_file).map_err(|e| Failure::io("read the answer file", answer_file, e))?;
    let answer = Answer::parse(&text)?;
    let provision = dir.install(&answer.certificate, answer.authority_public_key).map_err(|e| Failure::lock(dir, e))?;
    let cert = LockCertificate::from_bytes(&provision.certificate)
        .map_err(|e| Failure::new(INVALID_INPUT, format!("the certificate is not valid: {e}")))?;
    let mut out = format!("Installed lock {} for door {}.\n", cert.lock_id, answer.door_id);
    describe_certificate(&mut out, &cert.doors, cert.not_before, cert.not_after, &cert.lock_key);
    Ok(out)
}

fn status(dir: &LockDir, json: bool) -> Result<String, Failure> {
    let status = dir.status().map_err(|e| Failure::lock(dir, e))?;
    if json {
        let value = match &status {
            LockDirStatus::NoKey => serde_json::json!({ "status": "no_key" }),
            LockDirStatus::AwaitingCertificate { lock_public_key } => serde_json::json!({
                "status": "awaiting_certificate",
                "lock_public_key": BASE64.encode(lock_public_key),
            }),
            LockDirStatus::Installed {
                lock_id,
                doors,
                not_before,
                not_after,
                lock_public_key,
                authority_public_key,
            } => serde_json::json!({
                "status": "installed",
                "lock_id": lock_id,
                "doors": doors,
                "not_before": not_before,
                "not_after": not_after,
                "lock_public_key": BASE64.encode(lock_public_key),
                "authority_public_key": BASE64.encode(authority_public_key),
            }),
        };
        return Ok(format!("{value}\n"));
    }
    Ok(match &status {
        LockDirStatus::NoKey => {
            "No key yet: `porta-lockd provision-request` creates it and prints the request for the site.\n".to_owned()
        }
        LockDirStatus::AwaitingCertificate { lock_public_key } => format!(
            "Awaiting its certificate: submit the provisioning request, then `porta-lockd install-certificate \
             ANSWER_FILE`.\n  lock key:  {}\n",
            BASE64.encode(lock_public_key)
        ),
        LockDirStatus::Installed { lock_id, doors, not_before, not_after, lock_public_key, authority_public_key } => {
            let mut out = format!("Installed as lock {lock_id}.\n");
            describe_certificate(&mut out, doors, *not_before, *not_after, lock_public_key);
            let _ = writeln!(out, "  authority: {}", BASE64.encode(authority_public_key));
            if let Some(now) = unix_now() {
                if now > u64::from(*not_after) {
                    out.push_str("The certificate has expired: phones refuse this lock until it is renewed.\n");
                } else if now < u64::from(*not_before) {
                    out.push_str("The certificate is not valid yet (or this machine's clock is behind).\n");
                }
            }
            out
        }
    })
}

fn describe_certificate(out: &mut String, doors: &[u32], not_before: u32, not_after: u32, lock_key: &[u8; 32]) {
    let doors: Vec<String> = doors.iter().map(u32::to_string).collect();
    let _ = writeln!(out, "  doors:     {}", doors.join(", "));
    let _ = writeln!(out, "  valid:     {} to {} (UTC)", utc_date(not_before), utc_date(not_after));
    let _ = writeln!(out, "  lock key:  {}", BASE64.encode(lock_key));
}

fn unix_now() -> Option<u64> {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// `YYYY-MM-DD` of a unix time, in UTC (proleptic Gregorian calendar).
fn utc_date(unix: u32) -> String {
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = i64::from(unix / 86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// What the lock takes from the answer file (the site's `LockInstalled` JSON).
struct Answer {
    door_id: u32,
    certificate: Vec<u8>,
    authority_public_key: [u8; 32],
}

impl Answer {
    /// Parses the answer and checks that what it says agrees with the certificate it carries.
    fn parse(text: &str) -> Result<Self, Failure> {
        let invalid = |message: String| Failure::new(INVALID_INPUT, message);
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("the answer file is not JSON: {e}")))?;
        let field = |name: &str| value.get(name).filter(|v| !v.is_null());
        let number = |name: &str| -> Result<u32, Failure> {
            let v = field(name).ok_or_else(|| invalid(format!("the answer file has no `{name}`")))?;
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid(format!("`{name}` in the answer file is not a valid id")))
        };
        let bytes = |name: &str| -> Result<Option<Vec<u8>>, Failure> {
            let Some(v) = field(name) else {
                return Ok(None);
            };
            let text = v.as_str().ok_or_else(|| invalid(format!("`{name}` in the answer file is not a string")))?;
            BASE64
                .decode(text.trim())
                .map(Some)
                .map_err(|_| invalid(format!("`{name}` in the answer file is not base64")))
        };
        let key = |name: &str| -> Result<Option<[u8; 32]>, Failure> {
            bytes(name)?
                .map(|b| {
                    <[u8; 32]>::try_from(b.as_slice())
                        .map_err(|_| invalid(format!("`{name}` in the answer file is not a 32-byte key")))
                })
                .transpose()
        };

        let lock_id = number("lock_id")?;
        let door_id = number("door_id")?;
        let certificate =
            bytes("certificate")?.ok_or_else(|| invalid("the answer file has no `certificate`".into()))?;
        let authority_public_key = key("authority_public_key")?
            .ok_or_else(|| invalid("the answer file has no `authority_public_key`".into()))?;
        let cert = LockCertificate::from_bytes(&certificate)
            .map_err(|e| invalid(format!("`certificate` in the answer file is not a lock certificate: {e}")))?;
        if cert.lock_id != lock_id {
            return Err(invalid(format!(
                "the answer file says lock {lock_id} but its certificate is for lock {}",
                cert.lock_id
            )));
        }
        if !cert.doors.contains(&door_id) {
            return Err(invalid(format!("the answer file says door {door_id} but its certificate does not cover it")));
        }
        if key("lock_public_key")?.is_some_and(|k| k != cert.lock_key) {
            return Err(invalid("the answer file's `lock_public_key` is not the key its certificate certifies".into()));
        }
        Ok(Self { door_id, certificate, authority_public_key })
    }
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn certificate_times_read_as_utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_764_650_000), "2025-12-02");
        assert_eq!(utc_date(u32::MAX), "2106-02-07");
    }
}
