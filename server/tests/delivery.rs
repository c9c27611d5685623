//! One-time codes through a real SMTP server: aiosmtpd on loopback (tests/smtp/sink.py) with
//! STARTTLS and AUTH required, in a Python venv this test provisions once (or the python in
//! `PORTA_TEST_PYTHON`, which `cargo xtask test` sets). The code is read from the delivered
//! message, never from the dev outbox.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use porta_server::delivery::{DeliveryConfig, SmtpConfig};
use reqwest::StatusCode;
use serde_json::json;

/// The venv's python with tests/smtp/requirements.txt installed.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PORTA_TEST_PYTHON") {
        return p.into();
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.parent().unwrap().join("target"));
    let venv = target.join("smtp-venv");
    let python = venv.join("bin/python");
    let requirements = manifest.join("tests/smtp/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let stamp = venv.join("porta-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
        assert!(
            python.exists() || ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)),
            "the SMTP tests need Python 3 with venv (Debian: apt-get install python3-venv)"
        );
        assert!(
            ok(Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements)),
            "pip install -r {} failed",
            requirements.display()
        );
        std::fs::write(&stamp, wanted).unwrap();
    }
    python
}

/// aiosmtpd on a free loopback port; killed (stdin closed) when dropped.
struct MailServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

const USER: &str = "porta";
const PASSWORD: &str = "s3cret-smtp";

impl MailServer {
    fn start() -> MailServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let sink = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let mut child = Command::new(python())
            .arg(sink)
            .arg(dir.path())
            .arg(port.to_string())
            .args([USER, PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        MailServer { child, dir, port }
    }

    fn config(&self, password: &str) -> DeliveryConfig {
        let mut smtp =
            SmtpConfig::from_url(&format!("smtp://{USER}@localhost:{}", self.port), "Porta <no-reply@porta.example>")
                .unwrap();
        smtp.credentials = Some((USER.into(), password.into()));
        smtp.extra_root_pem = Some(std::fs::read(self.dir.path().join("ca.pem")).unwrap());
        DeliveryConfig { smtp: Some(smtp), ..DeliveryConfig::default() }
    }

    /// Every message delivered so far, oldest first.
    fn messages(&self) -> Vec<String> {
        let mail = self.dir.path().join("mail");
        let mut names: Vec<u32> = std::fs::read_dir(&mail)
            .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(".eml")?.parse().ok()).collect())
            .unwrap_or_default();
        names.sort();
        names.iter().map(|n| std::fs::read_to_string(mail.join(format!("{n}.eml"))).unwrap()).collect()
    }

    /// Waits for the `n`th message (aiosmtpd writes it as the SMTP exchange ends).
    fn message(&self, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = self.messages().into_iter().nth(n - 1) {
                return m;
            }
            assert!(Instant::now() < deadline, "message {n} never arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The 6-digit code in a delivered message.
fn code_in(message: &str) -> String {
    let at = message.find("Your Porta code is ").expect("the code sentence") + "Your Porta code is ".len();
    message[at..at + 6].to_owned()
}

async fn with_smtp(mail: &MailServer, password: &str) -> Harness {
    let sender = mail.config(password).sender(600).unwrap().unwrap();
    harness_with(move |c| {
        c.dev_outbox = false;
        c.code_sender = Some(sender);
    })
    .await
}

#[tokio::test]
async fn a_sign_in_code_arrives_by_email_over_starttls_with_auth_and_signs_in() {
    let mail = MailServer::start();
    let h = with_smtp(&mail, PASSWORD).await;
    let ada = porta_server::DEMO_RESIDENT_EMAIL;
    let reply = h.request_code(ada).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);

    let message = mail.message(1);
    assert!(message.contains(&format!("X-Envelope-To: {ada}")), "{message}");
    assert!(message.contains("Subject: Your Porta code"), "{message}");
    assert!(message.contains("From: Porta <no-reply@porta.example>"), "{message}");
    let code = code_in(&message);
    let signed_in = h.sign_in_with(ada, &code).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    assert!(signed_in.body["access_token"].is_string());
    // Without the dev outbox, the message is the only place the code went.
    assert_eq!(h.get(&format!("/v1/dev/outbox/{ada}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_mail_server_that_refuses_us_or_is_down_is_a_retryable_error_that_says_nothing_of_the_account() {
    let mail = MailServer::start();
    let wrong_password = with_smtp(&mail, "not-the-password").await;
    let mut answers = Vec::new();
    for who in [porta_server::DEMO_RESIDENT_EMAIL, "nobody-here@example.com"] {
        let reply = wrong_password.request_code(who).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", reply.body);
        assert_eq!(reply.body["code"], "delivery_failed");
        assert_eq!(reply.headers["retry-after"], "30");
        answers.push(reply.body);
    }
    assert_eq!(answers[0], answers[1], "the same answer with and without an account");
    assert!(mail.messages().is_empty());

    // Ada and Bob sign in by email; then the mail server goes away.
    let h = with_smtp(&mail, PASSWORD).await;
    let mut tokens = Vec::new();
    for (n, who) in [porta_server::DEMO_RESIDENT_EMAIL, "bob@example.com"].into_iter().enumerate() {
        assert_eq!(h.request_code(who).await.status, StatusCode::ACCEPTED);
        let reply = h.sign_in_with(who, &code_in(&mail.message(n + 1))).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        tokens.push(reply.body["access_token"].as_str().unwrap().to_owned());
    }
    drop(mail);

    for who in [porta_server::DEMO_RESIDENT_EMAIL, "nobody-here@example.com"] {
        let reply = h.request_code(who).await;
        assert_eq!((reply.status, &reply.body["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("delivery_failed")));
    }
    // A change to Bob's address sends no code (it is taken), a change to a free one does: with
    // the provider down both fail alike, so the answer still does not tell that Bob exists.
    let patch = |email: &'static str| {
        let (h, token) = (&h, tokens[0].clone());
        async move { h.call(reqwest::Method::PATCH, "/v1/me/profile", Some(&token), Some(json!({ "email": email }))).await }
    };
    let taken = patch("bob@example.com").await;
    let free = patch("ada.new@example.com").await;
    assert_eq!(taken.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", taken.body);
    assert_eq!((taken.status, taken.body), (free.status, free.body));
}

/// An SMS gateway's webhook on loopback: keeps each JSON body and the Authorization header,
/// and answers `status`.
async fn gateway(status: u16) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, serde_json::Value)>>>) {
    use axum::http::HeaderMap;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, axum::Json(body): axum::Json<serde_json::Value>| {
            let kept = kept.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                kept.lock().unwrap().push((auth, body));
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn a_phone_code_goes_to_the_sms_gateway_webhook_and_a_failing_gateway_is_retryable() {
    use porta_server::delivery::WebhookConfig;
    let phone = "+4790000077";
    for (status, delivered) in [(202, true), (500, false)] {
        let (url, seen) = gateway(status).await;
        let config = DeliveryConfig {
            sms_webhook: Some(WebhookConfig { url, bearer_token: Some("gateway-token".into()) }),
            ..DeliveryConfig::default()
        };
        let sender = config.sender(600).unwrap().unwrap();
        let h = harness_with(move |c| {
            c.dev_outbox = false;
            c.code_sender = Some(sender);
        })
        .await;
        let reply = h.request_code(phone).await;
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].0.as_deref(), Some("Bearer gateway-token"));
        assert_eq!(calls[0].1["to"], phone);
        if delivered {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
            let text = calls[0].1["text"].as_str().unwrap();
            let signed_in = h.sign_in_with(phone, &code_in(text)).await;
            assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
            // No email channel is configured: an email sign-in cannot be served, and says so.
            let email = h.request_code("ada@example.com").await;
            assert_eq!(email.body["code"], "delivery_failed");
        } else {
            assert_eq!(
                (reply.status, &reply.body["code"]),
                (StatusCode::SERVICE_UNAVAILABLE, &json!("delivery_failed"))
            );
        }
    }
}
