//! The `porta-server` binary as test harnesses in other languages use it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_prints_its_address_and_exits_on_stdin_eof() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_porta-server"))
        .args(["--listen", "127.0.0.1:0", "--demo", "--dev-outbox", "--exit-on-stdin-eof", "--db"])
        .arg(dir.path().join("porta.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn porta-server");

    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("porta-server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"));

    let body: serde_json::Value = reqwest::get(format!("{url}/health")).await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ok");

    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("porta-server did not exit after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_rejects_unknown_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_porta-server")).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
}

fn server(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_porta-server"))
        .args(args)
        .env_remove("PORTA_AUTHORITY_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// An operator makes the authority key once; it is private, never overwritten, and a
/// malformed or world-readable one is refused with words, not a stack trace.
#[test]
fn the_authority_key_file_is_made_once_private_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("authority.key");
    let key_arg = key.to_str().unwrap();
    let made = server(&["--new-authority-key-file", key_arg]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.trim().len(), 44, "32 bytes in base64");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = server(&["--new-authority-key-file", key_arg]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text, "an existing key file is never replaced");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = server(&["--authority-key-file", key_arg]);
        assert_eq!(open.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&open.stderr).contains("chmod 600"));
    }
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = server(&["--authority-key-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes in standard base64"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not a key"), "the file's content is not echoed");
}

/// `--database` takes only PostgreSQL URLs, and PostgreSQL only with the authority key that
/// every instance shares.
#[test]
fn postgres_needs_a_postgres_url_and_the_authority_key() {
    let out = server(&["--database", "mysql://db/porta"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres:// or postgresql://"));
    let out = server(&["--database-connections", "4"]);
    assert_eq!(out.status.code(), Some(2), "--database-connections without --database");
    let out = server(&["--listen", "127.0.0.1:0", "--database", "postgresql://porta@127.0.0.1:1/porta"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "postgres") {
        assert!(stderr.contains("--authority-key-file"), "{stderr}");
    } else {
        assert!(stderr.contains("built without PostgreSQL"), "{stderr}");
    }
}
