//! `bench load`: `porta-server` processes on loopback, driven over HTTP by 1, 16 and 64
//! concurrent phones. Each phone is an account with the demo building's three doors; per
//! concurrency level the phones are new accounts, so earlier levels' data is only more rows.
//!
//! Rows: sign-in (code request + sign-in; the dev-outbox read between them is not timed),
//! the first `GET /v1/me/doors` of a fresh enrolled session (it mints credentials), the same
//! call again (credentials reused), `POST /v1/me/access-events` with 100 lock-signed records
//! per batch, and `GET /v1/me/access-log` of a resident with at least 1000 events (the cap).

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use porta_protocol::{AuditRecord, Credential, Decision, ProvisioningRequest, SigningKey};
use rand::rngs::OsRng;
use serde_json::{json, Value};

use crate::{flag, Result, Sample};

/// Records per uploaded batch.
const BATCH: usize = 100;
const LEVELS: [usize; 3] = [1, 16, 64];

/// Operations per phone at each level: (sign-ins, fresh sessions for `doors`, batches,
/// access-log reads). Fewer per phone at higher levels keeps the run bounded; every level's
/// phones upload at least 1000 records each, so every access-log read returns the cap.
fn operations(clients: usize, quick: bool) -> (usize, usize, usize, usize) {
    let full: (usize, usize, usize, usize) = match clients {
        1 => (100, 40, 50, 100),
        16 => (20, 8, 10, 20),
        _ => (8, 4, 10, 8),
    };
    if quick {
        (full.0.div_ceil(4), full.1.div_ceil(4), 10, full.3.div_ceil(4))
    } else {
        full
    }
}

/// The limits flags every instance gets: the per-identifier and per-IP code limits and the
/// connection caps are far below what one machine's load test needs.
const LOAD_LIMITS: [&str; 8] = [
    "--code-requests-per-ip",
    "1000000000",
    "--code-requests-per-identifier",
    "1000000000",
    "--max-connections",
    "4096",
    "--max-connections-per-ip",
    "4096",
];

pub async fn run(args: &[String]) -> Result {
    let server = PathBuf::from(flag(args, "--server").ok_or("load: --server PATH (the release porta-server)")?);
    let backends = flag(args, "--backends").unwrap_or("sqlite,pg1,pg2");
    let quick = args.iter().any(|a| a == "--quick");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let key_file = dir.path().join("authority.key");
    let made = Command::new(&server)
        .arg("--new-authority-key-file")
        .arg(&key_file)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", server.display()))?;
    if !made.success() {
        return Err("porta-server --new-authority-key-file failed".into());
    }
    let mut rows = Vec::new();
    for backend in backends.split(',') {
        let deployment = Deployment::start(backend, &server, &key_file, dir.path()).await?;
        eprintln!("bench: {backend}: {} instance(s) at {}", deployment.instances.len(), deployment.urls().join(" "));
        let bench = Bench::set_up(&deployment).await?;
        for clients in LEVELS {
            for row in bench.level(backend, clients, operations(clients, quick)).await? {
                eprintln!("{}", row.markdown());
                rows.push(row);
            }
        }
        drop(deployment);
    }
    println!("| backend | clients | operation | requests | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    for row in &rows {
        println!("{}", row.markdown());
    }
    Ok(())
}

pub struct Row {
    backend: String,
    clients: usize,
    operation: &'static str,
    sample: Sample,
}

impl Row {
    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} |",
            self.backend,
            self.clients,
            self.operation,
            self.sample.durations.len(),
            self.sample.per_second(),
            self.sample.quantile_ms(0.50),
            self.sample.quantile_ms(0.99)
        )
    }
}

/// One `porta-server` process; stopped when dropped.
struct Instance {
    child: Child,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server processes of one backend configuration.
struct Deployment {
    instances: Vec<Instance>,
}

impl Deployment {
    async fn start(backend: &str, server: &Path, key_file: &Path, dir: &Path) -> Result<Deployment> {
        let key = ["--authority-key-file".to_owned(), key_file.display().to_string()];
        let mut instances = Vec::new();
        match backend {
            "sqlite" => {
                let db = dir.join("sqlite.db");
                let args = [vec!["--db".to_owned(), db.display().to_string(), "--demo".into()], key.to_vec()].concat();
                instances.push(spawn(server, &args, &dir.join("sqlite.log"))?);
            }
            "pg1" | "pg2" => {
                let url = porta_server::pg::testing::fresh_database_url().await;
                let count = if backend == "pg1" { 1 } else { 2 };
                for n in 0..count {
                    let mut args = vec!["--database".to_owned(), url.clone()];
                    // The first instance seeds the demo building; the others find it there.
                    if n == 0 {
                        args.push("--demo".into());
                    }
                    args.extend(key.iter().cloned());
                    instances.push(spawn(server, &args, &dir.join(format!("{backend}-{n}.log")))?);
                }
            }
            other => return Err(format!("unknown backend {other}: sqlite, pg1 or pg2")),
        }
        Ok(Deployment { instances })
    }

    fn urls(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.url.clone()).collect()
    }
}

fn spawn(server: &Path, args: &[String], log: &Path) -> Result<Instance> {
    let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(server)
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--dev-outbox"])
        .args(LOAD_LIMITS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("{}: {e}", server.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    let Some(url) = line.trim().strip_prefix("porta-server listening on ") else {
        let _ = child.kill();
        return Err(format!("porta-server did not start; see {}", log.display()));
    };
    Ok(Instance { url: url.to_owned(), child })
}

/// A lock the benchmark provisioned: its key was born here, as a lock's is.
struct BenchLock {
    lock_id: u32,
    door: u32,
    key: SigningKey,
    counter: AtomicU64,
}

struct Bench {
    api: Api,
    urls: Vec<String>,
    locks: Arc<Vec<BenchLock>>,
}

/// A signed-in session.
#[derive(Clone)]
struct Session {
    token: String,
    session_id: String,
}

impl Bench {
    /// Provisions a lock for each of the demo building's doors through the admin API.
    async fn set_up(deployment: &Deployment) -> Result<Bench> {
        let api = Api { http: reqwest::Client::new() };
        let urls = deployment.urls();
        let (_, admin) = sign_in(&api, &urls[0], porta_server::DEMO_ADMIN_EMAIL).await?;
        let mut locks = Vec::new();
        for door in 1..=3u32 {
            let key = new_key();
            let request = B64.encode(ProvisioningRequest::sign(&key, &mut OsRng).to_bytes());
            let path = format!("/v1/admin/sites/{}/doors/{door}/lock", porta_server::DEMO_SITE_ID);
            let answer = api
                .expect(201, "POST", &urls[0], &path, Some(&admin.token), Some(json!({ "request": request })))
                .await?;
            let lock_id = answer["lock_id"].as_u64().and_then(|id| u32::try_from(id).ok()).ok_or("lock_id")?;
            locks.push(BenchLock { lock_id, door, key, counter: AtomicU64::new(1) });
        }
        Ok(Bench { api, urls, locks: Arc::new(locks) })
    }

    /// The phone `i` of a level talks to one instance; phones are spread evenly.
    fn url_of(&self, i: usize) -> String {
        self.urls[i % self.urls.len()].clone()
    }

    async fn level(
        &self,
        backend: &str,
        clients: usize,
        (sign_ins, fresh_sessions, batches, reads): (usize, usize, usize, usize),
    ) -> Result<Vec<Row>> {
        let phones: Arc<Vec<(String, String)>> =
            Arc::new((0..clients).map(|i| (self.url_of(i), format!("c{clients}-{i}@bench.example"))).collect());
        for (url, identifier) in phones.iter() {
            let grant = json!({ "identifier": identifier, "doors": [1, 2, 3] });
            self.api.expect(201, "POST", url, "/v1/dev/grants", None, Some(grant)).await?;
        }
        let row = |operation, sample| Row { backend: backend.to_owned(), clients, operation, sample };
        let mut rows = Vec::new();

        let (api, p) = (self.api.clone(), phones.clone());
        let sample = concurrently(clients, move |i| {
            let (api, (url, identifier)) = (api.clone(), p[i].clone());
            async move {
                let mut times = Vec::with_capacity(sign_ins);
                for _ in 0..sign_ins {
                    times.push(sign_in(&api, &url, &identifier).await?.0);
                }
                Ok(times)
            }
        })
        .await?;
        rows.push(row("sign-in (code request + sign-in)", sample));

        // Fresh enrolled sessions, made before the clock starts: each one's first sync mints.
        let (api, p) = (self.api.clone(), phones.clone());
        let sessions: Arc<Vec<Vec<Session>>> = Arc::new(
            concurrently_collect(clients, move |i| {
                let (api, (url, identifier)) = (api.clone(), p[i].clone());
                async move {
                    let mut sessions = Vec::with_capacity(fresh_sessions);
                    for _ in 0..fresh_sessions {
                        let (_, session) = sign_in(&api, &url, &identifier).await?;
                        enroll(&api, &url, &session).await?;
                        sessions.push(session);
                    }
                    Ok(sessions)
                }
            })
            .await?,
        );
        let mut credentials = Vec::new();
        for (operation, first) in
            [("doors, first sync (mints credentials)", true), ("doors, repeat sync (reuses them)", false)]
        {
            let (api, p, s) = (self.api.clone(), phones.clone(), sessions.clone());
            let (sample, found) = concurrently_with(clients, move |i| {
                let (api, url, sessions) = (api.clone(), p[i].0.clone(), s[i].clone());
                async move {
                    let mut times = Vec::with_capacity(sessions.len());
                    let mut credential = None;
                    for session in &sessions {
                        let started = Instant::now();
                        let doors = api.expect(200, "GET", &url, "/v1/me/doors", Some(&session.token), None).await?;
                        times.push(started.elapsed());
                        let issued = doors["credentials"].as_array().map_or(0, Vec::len);
                        if issued == 0 {
                            return Err(format!("no credentials for {url}"));
                        }
                        if credential.is_none() {
                            credential = Some((session.clone(), credential_id(&doors)?));
                        }
                    }
                    Ok((times, credential.ok_or("no session")?))
                }
            })
            .await?;
            rows.push(row(operation, sample));
            if first {
                credentials = found;
            }
        }

        // Batches signed before the clock starts, so the phones' own signing does not take
        // the servers' CPU during the row.
        let at = crate::now() as u64 - 60;
        let bodies: Vec<Vec<Value>> = (0..clients)
            .map(|i| {
                let lock = &self.locks[i % self.locks.len()];
                let (_, credential) = &credentials[i];
                (0..batches)
                    .map(|_| {
                        let events: Vec<Value> = (0..BATCH)
                            .map(|_| {
                                let counter = lock.counter.fetch_add(1, Ordering::Relaxed);
                                let record = AuditRecord::sign(
                                    &lock.key,
                                    lock.lock_id,
                                    lock.door,
                                    *credential,
                                    at,
                                    Decision::Opened,
                                    counter,
                                );
                                json!({ "audit_record": B64.encode(record.to_bytes()) })
                            })
                            .collect();
                        json!({ "events": events })
                    })
                    .collect()
            })
            .collect();
        let bodies = Arc::new(bodies);
        let tokens: Arc<Vec<String>> = Arc::new(credentials.iter().map(|(s, _)| s.token.clone()).collect());
        let (api, p, b, t) = (self.api.clone(), phones.clone(), bodies.clone(), tokens.clone());
        let sample = concurrently(clients, move |i| {
            let (api, url, bodies, token) = (api.clone(), p[i].0.clone(), b[i].clone(), t[i].clone());
            async move {
                let mut times = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let started = Instant::now();
                    let result =
                        api.expect(200, "POST", &url, "/v1/me/access-events", Some(&token), Some(body)).await?;
                    times.push(started.elapsed());
                    if result["accepted"].as_u64() != Some(BATCH as u64) {
                        return Err(format!("batch not all accepted: {result}"));
                    }
                }
                Ok(times)
            }
        })
        .await?;
        rows.push(row("access-events, batch of 100 records", sample));

        let (api, p, t) = (self.api.clone(), phones.clone(), tokens.clone());
        let sample = concurrently(clients, move |i| {
            let (api, url, token) = (api.clone(), p[i].0.clone(), t[i].clone());
            async move {
                let mut times = Vec::with_capacity(reads);
                for _ in 0..reads {
                    let started = Instant::now();
                    let log = api.expect(200, "GET", &url, "/v1/me/access-log", Some(&token), None).await?;
                    times.push(started.elapsed());
                    let events = log["events"].as_array().map_or(0, Vec::len);
                    if events != 1000 {
                        return Err(format!("access log with {events} events, not the 1000 cap"));
                    }
                }
                Ok(times)
            }
        })
        .await?;
        rows.push(row("access-log (1000 events)", sample));
        Ok(rows)
    }
}

/// Runs `phone(i)` for `i` in `0..clients` at once; all their latencies and the wall time.
async fn concurrently<F, Fut>(clients: usize, phone: F) -> Result<Sample>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Vec<Duration>>> + Send + 'static,
{
    let started = Instant::now();
    let per_phone = concurrently_collect(clients, phone).await?;
    let wall = started.elapsed();
    Ok(Sample { durations: per_phone.into_iter().flatten().collect(), wall })
}

/// [`concurrently`], where each phone also hands back a value.
async fn concurrently_with<F, Fut, T>(clients: usize, phone: F) -> Result<(Sample, Vec<T>)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(Vec<Duration>, T)>> + Send + 'static,
    T: Send + 'static,
{
    let started = Instant::now();
    let per_phone = concurrently_collect(clients, phone).await?;
    let wall = started.elapsed();
    let (durations, values): (Vec<Vec<Duration>>, Vec<T>) = per_phone.into_iter().unzip();
    Ok((Sample { durations: durations.into_iter().flatten().collect(), wall }, values))
}

/// Each phone's result, in phone order.
async fn concurrently_collect<F, Fut, T>(clients: usize, phone: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(phone(i))).collect();
    let mut out = Vec::with_capacity(clients);
    for task in tasks {
        out.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

/// Requests a code, reads it from the dev outbox of the instance that sent it, and signs in.
/// The time is the code request's plus the sign-in's.
async fn sign_in(api: &Api, url: &str, identifier: &str) -> Result<(Duration, Session)> {
    let started = Instant::now();
    api.expect(202, "POST", url, "/v1/auth/code", None, Some(json!({ "identifier": identifier }))).await?;
    let requesting = started.elapsed();
    let outbox = api.expect(200, "GET", url, &format!("/v1/dev/outbox/{identifier}"), None, None).await?;
    let code = outbox["code"].as_str().ok_or("outbox without a code")?;
    let started = Instant::now();
    let body = json!({ "identifier": identifier, "code": code, "device_name": "bench phone" });
    let tokens = api.expect(200, "POST", url, "/v1/auth/sign-in", None, Some(body)).await?;
    let signing_in = started.elapsed();
    let session = Session {
        token: tokens["access_token"].as_str().ok_or("no access token")?.to_owned(),
        session_id: tokens["session_id"].as_str().ok_or("no session id")?.to_owned(),
    };
    Ok((requesting + signing_in, session))
}

/// Enrolls a new device key on `session`, with its proof of possession.
async fn enroll(api: &Api, url: &str, session: &Session) -> Result {
    let key = new_key();
    let public = key.verifying_key().to_bytes();
    let mut message = porta_server::devices::ENROLL_CONTEXT.to_vec();
    message.extend_from_slice(session.session_id.as_bytes());
    message.extend_from_slice(&public);
    let body = json!({ "public_key": B64.encode(public), "signature": B64.encode(key.sign(&message).to_bytes()) });
    api.expect(201, "POST", url, "/v1/me/device-key", Some(&session.token), Some(body)).await?;
    Ok(())
}

/// A fresh Ed25519 key from the OS's randomness, as a lock or phone makes its own.
fn new_key() -> SigningKey {
    use rand::RngCore as _;
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

/// The id of the first credential a `/v1/me/doors` answer hands out.
fn credential_id(doors: &Value) -> Result<[u8; 16]> {
    let text = doors["credentials"][0]["credential"].as_str().ok_or("no credential")?;
    let bytes = B64.decode(text).map_err(|e| e.to_string())?;
    Ok(*Credential::from_bytes(&bytes).map_err(|e| e.to_string())?.id())
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
}

impl Api {
    /// One request; its JSON answer if the status is `status`, else an error with the body.
    async fn expect(
        &self,
        status: u16,
        method: &str,
        url: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.http.request(method.clone(), format!("{url}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let got = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if got != status {
            return Err(format!("{method} {path}: {got} (wanted {status}): {}", String::from_utf8_lossy(&bytes)));
        }
        Ok(value)
    }
}
