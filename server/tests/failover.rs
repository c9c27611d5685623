//! Issue 12: an instance killed (SIGKILL) mid-ingest while a phone uploads its access
//! events, and the retry through the other instance loses no event and doubles none.
//!
//! Two real `porta-server` processes, A and B, run on one fresh PostgreSQL database with one
//! authority key. A small TCP balancer in front sends each new connection to A while A
//! accepts, else to B, and watches the bytes go by. A real phone core, offline, opens the doors
//! of three simulated locks until its outbox holds three upload batches; back online it
//! uploads through the balancer, and A is killed during the second batch:
//! - mid-transaction: A holds the batch and has begun storing it (the test holds one of its
//!   records' rows, so A's transaction stops half-way), and dies before committing;
//! - after committing: A stored the batch and answered, the balancer withholds the answer,
//!   and A dies, so the phone never hears that the batch is stored.
//!
//! The phone's upload fails, its retry goes through B, and afterwards the database holds
//! exactly the locks' own audit records, each once, the phone's outbox is empty, and the
//! resident's access log (served by B) lists every opening once.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porta_core::simulated::{install_simulated_lock, new_lock, provisioning_request_text, SimulatedTransport};
use porta_core::{Client, ClientConfig, Error, MemorySecureStore};
use porta_lock::SimulatedLock;
use porta_protocol::AuditRecord;
use porta_server::pg::testing::{connect, fresh_database_url, tokio_postgres};
use porta_server::{DEMO_ADMIN_EMAIL, DEMO_RESIDENT_EMAIL, DEMO_SITE_ID};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Openings queued before the upload: with the core's 200 records per upload, three batches
/// (200, 200, 50), so A acknowledges one batch before it is killed during the second.
const OPENINGS: usize = 450;
const UPLOAD_BATCH: usize = 200;
const UPLOAD: &[u8] = b"POST /v1/me/access-events ";

/// This test is on PostgreSQL whatever the suite's backend, so it runs in the workspace run
/// and not again when `cargo xtask test` reruns the server's HTTP suite on PostgreSQL.
fn rerun_on_postgres() -> bool {
    let rerun = std::env::var("PORTA_TEST_SERVER_BACKEND").as_deref() == Ok("postgres");
    if rerun {
        println!("failover: always on PostgreSQL; runs once, without PORTA_TEST_SERVER_BACKEND");
    }
    rerun
}

/// Says what a test proved, past libtest's capture so that it shows for passing tests too.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "failover: {line}");
}

/// A `porta-server` process; killed when dropped, its log shown if the test failed.
struct Instance {
    name: &'static str,
    child: Child,
    url: String,
    addr: SocketAddr,
    log: PathBuf,
}

impl Instance {
    async fn start(name: &'static str, database_url: &str, key_file: &Path, dir: &Path) -> Instance {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_porta-server"))
            .args(["--listen", "127.0.0.1:0", "--demo", "--dev-outbox", "--exit-on-stdin-eof"])
            .args(["--database", database_url, "--database-connections", "4", "--authority-key-file"])
            .arg(key_file)
            .env_remove("PORTA_AUTHORITY_KEY")
            // Its stdin is this test's pipe: should the test die, the server exits too.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn porta-server");
        // The one line it prints once it listens names its port.
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(Duration::from_secs(20), line).await;
        let url = match line {
            Ok(Ok(Ok(line))) => line.trim().strip_prefix("porta-server listening on ").map(str::to_owned),
            _ => None,
        };
        let Some(url) = url else {
            let _ = child.kill();
            panic!("{name} did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        let addr = url.trim_start_matches("http://").parse().expect("a socket address");
        Instance { name, child, url, addr, log }
    }

    /// SIGKILL: no shutdown, no flush, no answer to what is in flight.
    fn kill(&mut self) {
        use std::os::unix::process::ExitStatusExt as _;
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "{} died of SIGKILL", self.name);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- {} (last lines of its log)", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Which instance a connection went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    A = 0,
    B = 1,
}

#[derive(Default)]
struct BalancerState {
    /// Upload requests each instance received.
    uploads: [AtomicUsize; 2],
    /// A's answer to its upload number N (from 1) is withheld; 0: none is.
    withhold_answer_to: AtomicUsize,
    answer_withheld: Notify,
    /// The first bytes of the withheld answer.
    withheld: Mutex<Vec<u8>>,
}

/// A failover TCP balancer: each new connection goes to A while A accepts, else to B.
struct Balancer {
    url: String,
    state: Arc<BalancerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Balancer {
    async fn start(a: SocketAddr, b: SocketAddr) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(BalancerState::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, a, b, shared.clone()));
            }
        });
        Balancer { url, state, task }
    }

    fn uploads(&self, to: Upstream) -> usize {
        self.state.uploads[to as usize].load(Ordering::SeqCst)
    }

    fn withhold_answer_to_upload(&self, n: usize) {
        self.state.withhold_answer_to.store(n, Ordering::SeqCst);
    }

    /// Returns once A has answered the upload whose answer is withheld; that answer's
    /// status line.
    async fn answer_withheld(&self) -> String {
        self.state.answer_withheld.notified().await;
        let withheld = self.state.withheld.lock().unwrap();
        let head = String::from_utf8_lossy(&withheld);
        head.lines().next().unwrap_or_default().to_owned()
    }
}

/// One client connection, relayed to A if A accepts it, else to B. Either side closing or
/// failing closes both.
async fn relay(client: TcpStream, a: SocketAddr, b: SocketAddr, state: Arc<BalancerState>) {
    let (upstream, server) = match TcpStream::connect(a).await {
        Ok(server) => (Upstream::A, server),
        Err(_) => match TcpStream::connect(b).await {
            Ok(server) => (Upstream::B, server),
            Err(_) => return,
        },
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let withhold = AtomicBool::new(false);
    let requests = async {
        let mut buf = vec![0u8; 64 * 1024];
        // The end of the previous read, for a request line split across reads.
        let mut tail = Vec::new();
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            tail.extend_from_slice(&buf[..n]);
            let uploads = tail.windows(UPLOAD.len()).filter(|w| *w == UPLOAD).count();
            tail.drain(..tail.len().saturating_sub(UPLOAD.len() - 1));
            for _ in 0..uploads {
                let count = state.uploads[upstream as usize].fetch_add(1, Ordering::SeqCst) + 1;
                if upstream == Upstream::A && count == state.withhold_answer_to.load(Ordering::SeqCst) {
                    // Set before A gets the request: its answer is the next bytes back.
                    withhold.store(true, Ordering::SeqCst);
                }
            }
            if to_server.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let answers = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if withhold.load(Ordering::SeqCst) {
                // A answered, so it has committed the batch; the phone never learns it.
                let mut withheld = state.withheld.lock().unwrap();
                if withheld.is_empty() {
                    withheld.extend_from_slice(&buf[..n]);
                    state.answer_withheld.notify_one();
                }
                continue;
            }
            if to_client.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
    }
}

/// Where a phone without network sends its requests: every connection is closed unanswered.
async fn unreachable_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    (url, task)
}

struct NoProgress;

impl porta_core::UnlockListener for NoProgress {
    fn on_progress(&self, _: porta_core::UnlockProgress) {}
}

/// A sign-in code `identifier` was sent, from the dev outbox of the instance that sent it.
async fn dev_code(http: &reqwest::Client, instance: &Instance, identifier: &str) -> String {
    let reply = http.get(format!("{}/v1/dev/outbox/{identifier}", instance.url)).send().await.unwrap();
    assert_eq!(reply.status(), 200, "{}'s outbox", instance.name);
    reply.json::<Value>().await.unwrap()["code"].as_str().expect("code").to_owned()
}

/// The demo building's three doors get simulated locks, their keys born here, provisioned
/// by the site admin on `instance`.
async fn provision_locks(http: &reqwest::Client, instance: &Instance) -> Vec<SimulatedLock> {
    let url = &instance.url;
    let reply = http.post(format!("{url}/v1/auth/code")).json(&json!({ "identifier": DEMO_ADMIN_EMAIL })).send();
    assert_eq!(reply.await.unwrap().status(), 202);
    let code = dev_code(http, instance, DEMO_ADMIN_EMAIL).await;
    let body = json!({ "identifier": DEMO_ADMIN_EMAIL, "code": code, "device_name": "failover test" });
    let tokens: Value =
        http.post(format!("{url}/v1/auth/sign-in")).json(&body).send().await.unwrap().json().await.unwrap();
    let admin = tokens["access_token"].as_str().expect("admin token");
    let mut locks = Vec::new();
    for door in 1..=3 {
        let lock = new_lock();
        let reply = http
            .post(format!("{url}/v1/admin/sites/{DEMO_SITE_ID}/doors/{door}/lock"))
            .bearer_auth(admin)
            .json(&json!({ "request": provisioning_request_text(&lock) }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201, "door {door}");
        let answer = reply.text().await.unwrap();
        locks.push(install_simulated_lock(&lock, &answer, 185, 30.0).expect("install"));
    }
    locks
}

fn phone(url: &str, store: Arc<MemorySecureStore>, dir: &Path) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.device_name = "failover phone".into();
    config.request_timeout = Duration::from_secs(10);
    Client::new(config, store).expect("client")
}

/// The locks' own audit records: (lock id, counter, record), sorted.
fn lock_records(locks: &[SimulatedLock]) -> Vec<(i64, i64, Vec<u8>)> {
    let mut records: Vec<_> = locks
        .iter()
        .flat_map(|lock| lock.audit_log())
        .map(|bytes| {
            let record = AuditRecord::from_bytes(&bytes).expect("an audit record");
            (i64::from(record.lock_id), record.counter as i64, bytes)
        })
        .collect();
    records.sort();
    records
}

async fn stored_records(db: &tokio_postgres::Client) -> Vec<(i64, i64, Vec<u8>)> {
    let rows = db.query("SELECT lock_id, counter, record FROM access_events ORDER BY lock_id, counter", &[]).await;
    rows.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

/// Returns once an instance's INSERT into the access events waits on a row lock.
async fn wait_for_blocked_insert(db: &tokio_postgres::Client) {
    let started = Instant::now();
    loop {
        let row = db
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO access_events%'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no instance started storing the second batch");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two instances on a fresh database, the balancer, and a signed-in phone whose outbox holds
/// `OPENINGS` lock-signed records, opened offline round the three doors.
struct Setup {
    a: Instance,
    /// Up until the end; the balancer reaches it once A is gone.
    _b: Instance,
    balancer: Balancer,
    database_url: String,
    db: tokio_postgres::Client,
    locks: Vec<SimulatedLock>,
    /// The order the phone queued its records in: (lock id, counter).
    queued: Vec<(i64, i64)>,
    phone: Client,
    _no_network: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    // Panics, saying to run `cargo xtask test`, without PORTA_TEST_POSTGRES_URL.
    let database_url = fresh_database_url().await;
    let key_file = dir.path().join("authority.key");
    let made = Command::new(env!("CARGO_BIN_EXE_porta-server")).arg("--new-authority-key-file").arg(&key_file).output();
    assert!(made.unwrap().status.success(), "porta-server --new-authority-key-file");
    // A first; B then starts on the database A migrated and seeded.
    let a = Instance::start("A", &database_url, &key_file, dir.path()).await;
    let b = Instance::start("B", &database_url, &key_file, dir.path()).await;
    let balancer = Balancer::start(a.addr, b.addr).await;
    let http = reqwest::Client::new();
    let locks = provision_locks(&http, &a).await;

    let store = Arc::new(MemorySecureStore::new());
    let data = dir.path().join("phone");
    {
        let resident = phone(&balancer.url, store.clone(), &data);
        resident.request_code(DEMO_RESIDENT_EMAIL).await.expect("request a code");
        let code = dev_code(&http, &a, DEMO_RESIDENT_EMAIL).await;
        resident.sign_in(DEMO_RESIDENT_EMAIL, &code).await.expect("sign in");
        assert_eq!(resident.doors().await.expect("sync the doors").len(), 3);
    }

    // Offline (no request reaches a server), the phone opens doors; each opening's
    // background upload fails. Its app is then closed: should a background upload of this
    // run outlive it for a moment, it can only fail too.
    let (no_network, no_network_task) = unreachable_server().await;
    let mut queued = Vec::with_capacity(OPENINGS);
    {
        let resident = phone(&no_network, store.clone(), &data);
        let transport = Arc::new(SimulatedTransport::new(locks.clone()));
        for i in 0..OPENINGS {
            let lock = &locks[i % locks.len()];
            let door = lock.lock().config().doors()[0];
            resident.unlock_via(door, transport.clone(), Arc::new(NoProgress)).await.expect("the door opens");
            let record = AuditRecord::from_bytes(lock.audit_log().last().unwrap()).unwrap();
            queued.push((i64::from(record.lock_id), record.counter as i64));
        }
        assert_eq!(locks.iter().map(|l| l.opened_count()).sum::<u64>(), OPENINGS as u64);
        assert_eq!(resident.pending_access_events().unwrap(), OPENINGS, "every record queued while offline");
    }

    // Back online, the app is opened again.
    let phone = phone(&balancer.url, store, &data);
    assert_eq!(phone.pending_access_events().unwrap(), OPENINGS, "the outbox survived the restart");

    let db = connect(&database_url).await;
    assert_eq!(stored_records(&db).await.len(), 0);
    Setup { a, _b: b, balancer, database_url, db, locks, queued, phone, _no_network: no_network_task, _dir: dir }
}

impl Setup {
    /// The phone uploads again, through B now, and afterwards every opening is stored
    /// exactly once, nothing waits on the phone, and B's access log lists each once.
    async fn retry_through_b_and_check(&self, left: usize) {
        assert_eq!(self.phone.pending_access_events().unwrap(), left, "what A did not acknowledge waits on the phone");
        let uploads_to_a = self.balancer.uploads(Upstream::A);
        assert_eq!(self.phone.upload_access_events().await.expect("the retry succeeds"), left);
        assert_eq!(self.balancer.uploads(Upstream::A), uploads_to_a, "nothing more reached A");
        assert_eq!(self.balancer.uploads(Upstream::B), left.div_ceil(UPLOAD_BATCH), "the retry went through B");

        let expected = lock_records(&self.locks);
        assert_eq!(expected.len(), OPENINGS);
        let stored = stored_records(&self.db).await;
        let key = |(lock, counter, _): &(i64, i64, Vec<u8>)| (*lock, *counter);
        let doubled: Vec<_> = stored.windows(2).filter(|w| key(&w[0]) == key(&w[1])).map(|w| key(&w[0])).collect();
        let missing: Vec<_> = expected.iter().filter(|e| !stored.iter().any(|s| key(s) == key(e))).map(key).collect();
        assert_eq!(doubled, [], "stored more than once (lock, counter)");
        assert_eq!(missing, [], "never stored (lock, counter)");
        assert!(stored == expected, "the stored records are exactly the locks' own, byte for byte");

        assert_eq!(self.phone.pending_access_events().unwrap(), 0);
        assert_eq!(self.phone.upload_access_events().await.unwrap(), 0, "a further upload sends nothing");

        // The resident's log, served by B (A is gone), has each opening once.
        let log = self.phone.access_log().await.expect("the access log");
        assert!(log.events.iter().all(|e| e.opened()), "only openings");
        let mut shown: Vec<(Option<u32>, i64)> = log.events.iter().map(|e| (e.door_id, e.at)).collect();
        shown.sort();
        let mut opened: Vec<(Option<u32>, i64)> = expected
            .iter()
            .map(|(_, _, bytes)| {
                let record = AuditRecord::from_bytes(bytes).unwrap();
                (Some(record.door_id), record.time as i64)
            })
            .collect();
        opened.sort();
        assert_eq!(shown, opened, "the access log lists every opening once");
        for lock in &self.locks {
            let door = lock.lock().config().doors()[0];
            let in_log = log.events.iter().filter(|e| e.door_id == Some(door)).count();
            assert_eq!(in_log as u64, lock.opened_count(), "door {door}: as many entries as the lock opened");
        }
    }
}

/// A is killed with the second batch half-stored in its open transaction: nothing of that
/// batch is committed, and the retry through B stores it, so no event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_transaction_the_retry_through_the_other_instance_loses_no_event() {
    if rerun_on_postgres() {
        return;
    }
    let started = Instant::now();
    let mut s = setup().await;
    // The test holds the row of a record half-way into the second batch, so A's transaction
    // stops there, its first half written, until A is dead.
    let (lock_id, counter) = s.queued[UPLOAD_BATCH + UPLOAD_BATCH / 2];
    let blocker = connect(&s.database_url).await;
    blocker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO access_events (lock_id, counter, credential_id, decision, at, received_at, record)
             VALUES ({lock_id}, {counter}, '\\x{zeros}', 0, extract(epoch FROM now())::bigint,
                     extract(epoch FROM now())::bigint, '\\x00')",
            zeros = "00".repeat(16)
        ))
        .await
        .unwrap();

    let upload = s.phone.upload_access_events();
    let kill = async {
        wait_for_blocked_insert(&s.db).await;
        assert_eq!(s.balancer.uploads(Upstream::A), 2, "A is storing the second batch");
        s.a.kill();
        blocker.batch_execute("ROLLBACK").await.unwrap();
    };
    let (uploaded, ()) = tokio::join!(upload, kill);
    assert!(matches!(uploaded, Err(Error::Network(_))), "the upload fails with A: {uploaded:?}");

    let stored = stored_records(&s.db).await;
    assert_eq!(stored.len(), UPLOAD_BATCH, "only the batch A acknowledged is stored");
    let left = OPENINGS - UPLOAD_BATCH;
    s.retry_through_b_and_check(left).await;
    report(&format!(
        "A SIGKILLed mid-transaction (batch 2 of 3); the retry through B stored the other {left}: \
         {OPENINGS} openings, each once ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
}

/// A is killed after it stored the second batch and answered, the answer withheld: the
/// phone sends the batch again through B, which recognises it, so no event is doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_committing_the_retry_through_the_other_instance_doubles_no_event() {
    if rerun_on_postgres() {
        return;
    }
    let started = Instant::now();
    let mut s = setup().await;
    s.balancer.withhold_answer_to_upload(2);
    let upload = s.phone.upload_access_events();
    let kill = async {
        let answer = s.balancer.answer_withheld().await;
        s.a.kill();
        answer
    };
    let (uploaded, answer) = tokio::join!(upload, kill);
    assert_eq!(answer, "HTTP/1.1 200 OK", "A's withheld answer to the second batch");
    assert!(matches!(uploaded, Err(Error::Network(_))), "the upload fails with A: {uploaded:?}");

    let stored = stored_records(&s.db).await;
    assert_eq!(stored.len(), 2 * UPLOAD_BATCH, "A committed the second batch before it died");
    let left = OPENINGS - UPLOAD_BATCH;
    assert_eq!(s.phone.pending_access_events().unwrap(), left, "the phone never heard, so it still holds it");
    s.retry_through_b_and_check(left).await;
    report(&format!(
        "A SIGKILLed after committing batch 2 of 3, its answer withheld; the retry through B sent batch 2 \
         again and batch 3: {OPENINGS} openings, each once ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
}
