//! `porta-fake-bluez`: the fake BlueZ as a process, for the Kotlin and Swift tests (which cannot
//! link the Rust crate). It starts a private bus with the fake `org.bluez` on it, prints the bus
//! address as its first stdout line, then answers one line per command read from stdin (see
//! fake-bluez/README.md). It exits, and its bus with it, when stdin closes.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use porta_fake_bluez::{FakeBluez, FakeLock, Fault};
use porta_lock::{Lock, LockProvision};
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

/// The demo building's locks from the reference server's `GET /v1/dev/locks` (as
/// `porta_tests::locks` builds them), each with a fresh in-memory state.
fn locks(url: &str) -> Result<Vec<Lock>, String> {
    let body = http_get(url, "/v1/dev/locks")?;
    let list: Vec<Value> = serde_json::from_str(&body).map_err(|e| format!("dev locks: not JSON: {e}"))?;
    list.iter().map(provision).map(|p| Ok(Lock::in_memory(p?.into_config().map_err(|e| e.to_string())?))).collect()
}

fn provision(v: &Value) -> Result<LockProvision, String> {
    let bad = |field: &str| format!("dev locks: bad {field}");
    let bytes = |field: &str| -> Result<Vec<u8>, String> {
        B64.decode(v[field].as_str().ok_or_else(|| bad(field))?).map_err(|_| bad(field))
    };
    let key32 = |field: &str| -> Result<[u8; 32], String> { bytes(field)?.try_into().map_err(|_| bad(field)) };
    Ok(LockProvision {
        lock_id: v["lock_id"].as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad("lock_id"))?,
        doors: v["doors"]
            .as_array()
            .ok_or_else(|| bad("doors"))?
            .iter()
            .map(|d| d.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad("doors")))
            .collect::<Result<_, _>>()?,
        lock_secret_key: key32("lock_secret_key")?,
        certificate: bytes("certificate")?,
        authority_public_key: key32("authority_public_key")?,
    })
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
