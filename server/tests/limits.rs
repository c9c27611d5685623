//! Connection limits, checked over raw TCP against the real server: slow or stalled clients
//! are cut off, the connection caps hold (overall and per client address), and every route
//! caps its body.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use porta_server::Config;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longest a test waits for the server to close a connection it should close.
const PATIENCE: Duration = Duration::from_secs(5);

async fn limited(tweak: impl FnOnce(&mut Config)) -> Harness {
    harness_with(tweak).await
}

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.server.addr()).await.expect("connect")
}

/// Connects from a chosen loopback address (all of 127.0.0.0/8 is local on Linux).
async fn connect_from(h: &Harness, source: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).expect("bind a loopback source address");
    socket.connect(h.server.addr()).await.expect("connect")
}

/// Reads until the server closes the connection; returns what it sent, or `None` if it kept
/// the connection open for all of `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&received).into_owned())
}

/// Sends a complete `GET /health` and returns the start of the answer.
async fn health_over(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: porta\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("an answer").unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A fresh client (no pooled connections) can use the server.
async fn serves_a_new_client(h: &Harness) -> bool {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    matches!(client.get(format!("{}/health", h.server.url())).send().await, Ok(r) if r.status() == StatusCode::OK)
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_within_the_header_timeout() {
    let h = limited(|c| c.limits.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&h).await;
    let started = Instant::now();
    stream.write_all(b"GET /health HT").await.unwrap();
    let answer = read_until_closed(&mut stream).await.expect("closed, not held open");
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", started.elapsed());
    assert!(serves_a_new_client(&h).await);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let h = limited(|c| c.limits.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&h).await;
    let answer = health_over(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Kept alive for the next request at first, then closed for idling.
    assert!(read_until_closed(&mut stream).await.is_some(), "an idle connection is not held forever");
}

#[tokio::test]
async fn a_stalled_body_is_cut_with_request_timeout() {
    let h = limited(|c| c.limits.request_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&h).await;
    stream
        .write_all(
            b"POST /v1/auth/code HTTP/1.1\r\nHost: porta\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"identifier\": \"",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await.expect("closed, not held open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(serves_a_new_client(&h).await);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_freed_slots_serve_again() {
    let h = limited(|c| c.limits.max_connections = 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&h).await;
        // Each really holds a slot: it is served.
        assert!(health_over(&mut stream).await.starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut extra = connect(&h).await;
    let _ = extra.write_all(b"GET /health HTTP/1.1\r\nHost: porta\r\n\r\n").await;
    let answer = read_until_closed(&mut extra).await.expect("the extra connection is closed");
    assert_eq!(answer, "", "nothing served over the cap");

    // Once the others are gone, a normal client gets in again.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    while !serves_a_new_client(&h).await {
        assert!(Instant::now() < deadline, "slots are freed when connections close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_client_holding_its_share_cannot_lock_out_another() {
    let h = limited(|c| {
        c.limits.max_connections = 4;
        c.limits.max_connections_per_ip = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        // Idle, half-open: the kind of connection a slowloris client holds.
        let mut stream = connect_from(&h, [127, 0, 0, 1]).await;
        stream.write_all(b"GET /he").await.unwrap();
        held.push(stream);
    }
    let mut greedy = connect_from(&h, [127, 0, 0, 1]).await;
    let _ = greedy.write_all(b"GET /health HTTP/1.1\r\nHost: porta\r\n\r\n").await;
    assert_eq!(read_until_closed(&mut greedy).await.expect("closed"), "", "a fourth from the same address");

    let mut other = connect_from(&h, [127, 0, 0, 2]).await;
    let answer = health_over(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "another address still gets in: {answer}");
    drop(held);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let h = harness().await;
    let mut idle = connect(&h).await;
    assert!(health_over(&mut idle).await.starts_with("HTTP/1.1 200"));
    let mut half_sent = connect(&h).await;
    half_sent.write_all(b"GET /he").await.unwrap();
    let started = Instant::now();
    h.server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(read_until_closed(&mut idle).await.is_some());
}

/// Sends a request with `body` (written concurrently: the server may answer before it has
/// read it all) and returns the start of the answer.
async fn send_raw(h: &Harness, method: &str, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> String {
    let stream = connect(h).await;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: porta\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        // The server may close before taking it all; what it answered is what counts.
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        write
    });
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, read.read(&mut buf)).await.expect("an answer").unwrap_or(0);
    writer.abort();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn every_route_caps_its_body() {
    let h = harness().await;
    let tokens = h.sign_in("limits@example.com").await;
    let access = token(&tokens, "access_token");
    let status = |answer: &str| answer.get(9..12).unwrap_or("").to_owned();
    // Refused for its size, before the handler looked at it (`invalid_name`, `invalid_record`).
    let refused_for_size = |answer: &str| {
        ["400", "413"].contains(&status(answer).as_str())
            && [r#""code":"invalid_request""#, r#""code":"payload_too_large""#].iter().any(|c| answer.contains(c))
    };

    // JSON: 64 KiB.
    let big_json = json!({ "name": "x".repeat(70 * 1024) }).to_string().into_bytes();
    let answer = send_raw(&h, "PATCH", "/v1/me/profile", &access, "application/json", big_json).await;
    assert!(refused_for_size(&answer), "{answer}");
    // Access events: 256 KiB.
    let events = json!({ "events": vec![json!({ "audit_record": "A".repeat(1024) }); 300] }).to_string().into_bytes();
    let answer = send_raw(&h, "POST", "/v1/me/access-events", &access, "application/json", events).await;
    assert!(refused_for_size(&answer), "{answer}");
    // Pictures: 2 MiB.
    let picture = vec![0x89u8; 3 * 1024 * 1024];
    let answer = send_raw(&h, "PUT", "/v1/me/picture", &access, "image/png", picture).await;
    assert_eq!(status(&answer), "413", "{answer}");

    assert!(serves_a_new_client(&h).await, "the server is fine afterwards");
}
