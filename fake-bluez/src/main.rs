//! `porta-fake-bluez`: the fake BlueZ as a process, for the Kotlin and Swift tests (which cannot
//! link the Rust crate). It starts a private bus with the fake `org.bluez` on it, prints the bus
//! address as its first stdout line, then answers one line per command read from stdin (see
//! fake-bluez/README.md). It exits, and its bus with it, when stdin closes.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use porta_admin::AdminClient;
use porta_fake_bluez::{FakeBluez, FakeLock, Fault};
use porta_lock::{Lock, NewLock};
use rand::rngs::OsRng;
use serde_json::{json, Value};

fn main() -> std::process::ExitCode {
    let bluez = match FakeBluez::start() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("porta-fake-bluez: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", bluez.address()).and_then(|()| out.flush()).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let reply = match command(&bluez, &words) {
            Ok(value) if value.is_empty() => "ok".to_owned(),
            Ok(value) => format!("ok {value}"),
            // One line, whatever the error said.
            Err(e) => format!("error {}", e.replace('\n', " ")),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}

/// Runs one command; the text after "ok" in the reply.
fn command(bluez: &FakeBluez, words: &[&str]) -> Result<String, String> {
    match words {
        ["serve", url, mtu, rest @ ..] if rest.len() <= 1 => {
            let mtu: u16 = mtu.parse().ok().filter(|m| (23..=517).contains(m)).ok_or("MTU must be 23..=517")?;
            let fault = rest.first().map_or(Ok(Fault::None), |f| fault(f))?;
            let locks = locks(url)?;
            let ids: Vec<String> = locks.iter().map(|l| l.lock_id().to_string()).collect();
            bluez.set_locks(
                locks
                    .into_iter()
                    .map(|lock| {
                        let id = lock.lock_id();
                        FakeLock::new(lock, id, mtu).with_fault(fault)
                    })
                    .collect(),
            );
            Ok(ids.join(" "))
        }
        ["opened", id] => Ok(bluez.opened_count(lock_id(id)?).to_string()),
        ["trace", id] => {
            let t = bluez.trace(lock_id(id)?);
            let trace = json!({
                "connects": t.connects,
                "disconnect_calls": t.disconnect_calls,
                "connected": t.connected,
                "notifying": t.notifying,
                "writes": t.writes,
                "notifications": t.notifications,
            });
            Ok(trace.to_string())
        }
        ["powered", "on"] => {
            bluez.set_powered(true);
            Ok(String::new())
        }
        ["powered", "off"] => {
            bluez.set_powered(false);
            Ok(String::new())
        }
        ["permitted", "yes"] => {
            bluez.set_permitted(true);
            Ok(String::new())
        }
        ["permitted", "no"] => {
            bluez.set_permitted(false);
            Ok(String::new())
        }
        ["fault", id, name] => {
            bluez.set_fault(lock_id(id)?, fault(name)?);
            Ok(String::new())
        }
        _ => Err(format!("unknown command {:?}: serve, opened, trace, powered, permitted, fault", words.join(" "))),
    }
}

fn lock_id(word: &str) -> Result<u32, String> {
    word.parse().map_err(|_| format!("not a lock id: {word:?}"))
}

const FAULTS: &str =
    "none, not-advertising, disconnect-mid-handshake, disconnect-mid-handshake-once, disconnect-before-result, busy, silent";

fn fault(name: &str) -> Result<Fault, String> {
    Ok(match name {
        "none" => Fault::None,
        "not-advertising" => Fault::NotAdvertising,
        "disconnect-mid-handshake" => Fault::DisconnectMidHandshake,
        "disconnect-mid-handshake-once" => Fault::DisconnectMidHandshakeOnce,
        "disconnect-before-result" => Fault::DisconnectBeforeResult,
        "busy" => Fault::Busy,
        "silent" => Fault::Silent,
        _ => return Err(format!("unknown fault {name:?}: {FAULTS}")),
    })
}

/// The demo building's three locks (doors 1, 2, 3), installed as a building installs them:
/// each key is born here, the demo site admin submits each lock's own request for its door,
/// and the lock installs the certificate it gets back. This replaces whatever locks the doors
/// had (their certificates are revoked), so phones must sync after `serve` to trust these.
fn locks(url: &str) -> Result<Vec<Lock>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(install_demo_locks(url))
}

async fn install_demo_locks(url: &str) -> Result<Vec<Lock>, String> {
    let admin = porta_server::DEMO_ADMIN_EMAIL;
    AdminClient::request_code(url, admin).await.map_err(|e| format!("admin code: {e}"))?;
    let code = dev_code(url, admin)?;
    let admin = AdminClient::sign_in_with_code(url, admin, &code).await.map_err(|e| format!("admin sign-in: {e}"))?;
    let mut locks = Vec::new();
    for door in 1..=3 {
        let lock = NewLock::generate(&mut OsRng);
        let request = B64.encode(lock.provisioning_request(&mut OsRng).to_bytes());
        let answer = admin
            .provision_lock(porta_server::DEMO_SITE_ID, door, &request, None)
            .await
            .map_err(|e| format!("provision door {door}: {e}"))?;
        let bad = |field: &str| format!("door {door}: bad {field} in the answer");
        let certificate = B64.decode(&answer.certificate).map_err(|_| bad("certificate"))?;
        let authority: [u8; 32] = B64
            .decode(&answer.authority_public_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("authority_public_key"))?;
        let provision = lock.install(&certificate, authority).map_err(|e| format!("install door {door}: {e}"))?;
        if provision.lock_id != answer.lock_id || !provision.doors.contains(&answer.door_id) {
            return Err(format!(
                "door {door}: the certificate is not for lock {} of door {}",
                answer.lock_id, answer.door_id
            ));
        }
        locks.push(Lock::in_memory(provision.into_config().map_err(|e| e.to_string())?));
    }
    // Leave no admin session behind on the server; a failed sign-out changes nothing here.
    let _ = admin.sign_out().await;
    Ok(locks)
}

/// The last code the server sent to `identifier`, from its dev outbox.
fn dev_code(url: &str, identifier: &str) -> Result<String, String> {
    let body = http_get(url, &format!("/v1/dev/outbox/{identifier}"))?;
    let value: Value = serde_json::from_str(&body).map_err(|e| format!("dev outbox: not JSON: {e}"))?;
    value["code"].as_str().map(str::to_owned).ok_or_else(|| "dev outbox: no code".into())
}

/// A plain HTTP/1.0 GET (no chunked replies) to a loopback test server: `url` is
/// `http://host:port`.
fn http_get(url: &str, path: &str) -> Result<String, String> {
    let addr = url
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .ok_or_else(|| format!("the server URL must be http://host:port, not {url:?}"))?;
    let fail = |e: std::io::Error| format!("GET {path} from {addr}: {e}");
    let mut stream = TcpStream::connect(addr).map_err(fail)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(fail)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| format!("GET {path}: no HTTP reply"))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("GET {path} answered {status}"));
    }
    Ok(body.to_owned())
}
