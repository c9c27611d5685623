//! A fault-injecting HTTP/1.1 proxy for the tests: it sits between porta-core and the real
//! porta-server and, per request, passes it on, or drops, delays, truncates, resets, answers
//! 5xx, returns garbage or valid JSON of the wrong shape, or holds the answer. It counts what
//! it saw and what it forwarded, so tests can tell which requests were retried.
//!
//! Each request gets its own upstream connection, so faults never leak from one request into
//! the next; the client side keeps its connection alive like a real server would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the proxy does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forward the request and the answer unchanged.
    Pass,
    /// Close the client's connection before forwarding: the server never sees the request.
    DropRequest,
    /// Forward, let the server act, then close without answering.
    DropResponse,
    /// Wait this long, then forward as usual.
    Delay(Duration),
    /// Forward; send the answer's head and half its body, then close cleanly (FIN).
    Truncate,
    /// Forward; send the head and half the body, then reset the connection (RST).
    ResetMidBody,
    /// Answer with this status and a body that is not the API's error shape, without forwarding.
    Status(u16),
    /// Forward; replace the answer's body with bytes that are not JSON (status unchanged).
    Garbage,
    /// Forward; replace the answer's body with valid JSON of the wrong shape.
    WrongShape,
    /// Keep the request until [`FaultProxy::release`], then forward it.
    HoldRequest,
    /// Forward, then keep the answer until [`FaultProxy::release`]; the server has acted.
    HoldResponse,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub fault: Fault,
    /// Whether the server received it.
    pub forwarded: bool,
}

struct Rule {
    method: String,
    path_prefix: String,
    fault: Fault,
    /// `None`: every matching request.
    remaining: Option<u32>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
}

/// A running proxy on a loopback port; stops when dropped.
pub struct FaultProxy {
    url: String,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (a base URL such as `http://127.0.0.1:1234`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Mutex::new(State::default()));
        let release = Arc::new(Notify::new());
        let task = {
            let (state, release) = (state.clone(), release.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (state, release, upstream) = (state.clone(), release.clone(), upstream.clone());
                    tokio::spawn(async move {
                        let _ = serve_connection(client, &upstream, &state, &release).await;
                    });
                }
            })
        };
        FaultProxy { url, state, release, task }
    }

    /// The proxy's base URL; give it to the client instead of the server's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Applies `fault` to every request with this method whose path starts with `path_prefix`,
    /// until [`FaultProxy::clear`]. Rules added later win.
    pub fn always(&self, method: &str, path_prefix: &str, fault: Fault) {
        self.add(method, path_prefix, fault, None);
    }

    /// Applies `fault` to the next `times` matching requests only.
    pub fn times(&self, method: &str, path_prefix: &str, fault: Fault, times: u32) {
        self.add(method, path_prefix, fault, Some(times));
    }

    fn add(&self, method: &str, path_prefix: &str, fault: Fault, remaining: Option<u32>) {
        let rule = Rule { method: method.to_owned(), path_prefix: path_prefix.to_owned(), fault, remaining };
        self.state.lock().unwrap().rules.insert(0, rule);
    }

    /// Removes every rule: all requests pass.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Lets held answers go (to whoever is still connected).
    pub fn release(&self) {
        self.release.notify_waiters();
    }

    /// Every request seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests seen with this method and path prefix.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.matching(method, path_prefix).count()
    }

    /// Requests with this method and path prefix that reached the server.
    pub fn forwarded(&self, method: &str, path_prefix: &str) -> usize {
        self.matching(method, path_prefix).filter(|s| s.forwarded).count()
    }

    fn matching<'a>(&self, method: &'a str, path_prefix: &'a str) -> impl Iterator<Item = Seen> + 'a {
        self.seen().into_iter().filter(move |s| s.method == method && s.path.starts_with(path_prefix))
    }

    /// Forgets what was seen (the rules stay).
    pub fn reset_counts(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

fn pick_fault(state: &Mutex<State>, method: &str, path: &str) -> Fault {
    let mut state = state.lock().unwrap();
    let rule = state
        .rules
        .iter_mut()
        .find(|r| r.method == method && path.starts_with(&r.path_prefix) && r.remaining != Some(0));
    match rule {
        Some(rule) => {
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            rule.fault.clone()
        }
        None => Fault::Pass,
    }
}

/// One HTTP/1.1 message: the start line and headers as sent, and the decoded body.
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The head with a `content-length` for `body_len` (chunked coding removed).
    fn head(&self, body_len: usize) -> Vec<u8> {
        let mut head = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {body_len}\r\n\r\n"));
        head.into_bytes()
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = self.head(self.body.len());
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// An answer that may carry a body: a faulted 204 becomes a 200, so the client reads it.
    fn with_body_allowed(&mut self) {
        if self.start.split(' ').nth(1).is_some_and(|s| s == "204" || s == "304") {
            self.start = "HTTP/1.1 200 OK".into();
        }
    }

    fn replace_body(&mut self, body: &[u8], content_type: &str) {
        self.with_body_allowed();
        self.body = body.to_vec();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        self.headers.push(("content-type".into(), content_type.into()));
    }
}

/// Reads from `stream` into `buf` until it holds `\r\n\r\n`; `None` on a clean end.
async fn read_head(stream: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(end + 4));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn fill(stream: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
    while buf.len() < len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// Reads one message. `has_body` is false for answers that never carry one (HEAD, 204, 304).
async fn read_message(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    has_body: impl Fn(&str) -> bool,
) -> std::io::Result<Option<Message>> {
    let Some(head_len) = read_head(stream, buf).await? else { return Ok(None) };
    let head = String::from_utf8_lossy(&buf[..head_len - 4]).into_owned();
    buf.drain(..head_len);
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let mut message = Message { start, headers, body: Vec::new() };
    if !has_body(&message.start) {
        return Ok(Some(message));
    }
    if message.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                let need = buf.len() + 1;
                fill(stream, buf, need).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            buf.drain(..line_end + 2);
            fill(stream, buf, size + 2).await?;
            message.body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                return Ok(Some(message));
            }
        }
    }
    let len: usize = message.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    fill(stream, buf, len).await?;
    message.body = buf.drain(..len).collect();
    Ok(Some(message))
}

async fn serve_connection(
    mut client: TcpStream,
    upstream: &str,
    state: &Mutex<State>,
    release: &Notify,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_message(&mut client, &mut buf, |_| true).await? else { return Ok(()) };
        let mut parts = request.start.split(' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let fault = pick_fault(state, &method, &path);
        let forwarded = !matches!(fault, Fault::DropRequest | Fault::Status(_) | Fault::HoldRequest);
        state.lock().unwrap().seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            fault: fault.clone(),
            forwarded,
        });
        match &fault {
            Fault::DropRequest => return Ok(()),
            Fault::Status(status) => {
                let body = b"upstream unavailable";
                let head = format!(
                    "HTTP/1.1 {status} Fault\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                client.write_all(head.as_bytes()).await?;
                client.write_all(body).await?;
                continue;
            }
            Fault::Delay(d) => tokio::time::sleep(*d).await,
            Fault::HoldRequest => {
                release.notified().await;
                if let Some(seen) = state.lock().unwrap().seen.iter_mut().rev().find(|s| s.path == path) {
                    seen.forwarded = true;
                }
            }
            _ => {}
        }
        let mut response = forward(upstream, &request, &method).await?;
        match fault {
            Fault::DropResponse => return Ok(()),
            Fault::HoldResponse => {
                release.notified().await;
                client.write_all(&response.encode()).await?;
            }
            Fault::Truncate | Fault::ResetMidBody => {
                // Claim the full length, send half: the client sees the body end early.
                response.with_body_allowed();
                let body =
                    if response.body.is_empty() { b"{\"padding\":true}".to_vec() } else { response.body.clone() };
                client.write_all(&response.head(body.len())).await?;
                client.write_all(&body[..body.len() / 2]).await?;
                client.flush().await?;
                if fault == Fault::ResetMidBody {
                    client.set_zero_linger()?;
                } else {
                    client.shutdown().await?;
                }
                return Ok(());
            }
            Fault::Garbage => {
                response.replace_body(b"<html>\x00\xff not json at all", "application/json");
                client.write_all(&response.encode()).await?;
            }
            Fault::WrongShape => {
                response.replace_body(br#"{"unexpected":[1,2,3],"code":7}"#, "application/json");
                client.write_all(&response.encode()).await?;
            }
            _ => client.write_all(&response.encode()).await?,
        }
    }
}

async fn forward(upstream: &str, request: &Message, method: &str) -> std::io::Result<Message> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&request.encode()).await?;
    let mut buf = Vec::new();
    let is_head = method == "HEAD";
    let response = read_message(&mut server, &mut buf, |start| {
        let status = start.split(' ').nth(1).unwrap_or("");
        !(is_head || status == "204" || status == "304" || status.starts_with('1'))
    })
    .await?;
    response.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("url", &self.url).finish_non_exhaustive()
    }
}
