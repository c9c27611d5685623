//! Attacks on accounts found by outside review, each refused: taking over an address by
//! setting it on one's own profile (pre-hijack), one-time codes in the log, names that spoof
//! others with invisible or text-direction characters, and reading another person's
//! deletion receipt.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use porta_server::dev_outbox::{CodeSender, DeliveryFailed};
use porta_server::identity::Identifier;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn patch(h: &Harness, token: &str, body: Value) -> Reply {
    h.call(Method::PATCH, "/v1/me/profile", Some(token), Some(body)).await
}

async fn confirm(h: &Harness, token: &str, code: &str) -> Reply {
    h.post_auth("/v1/me/profile/contact/confirm", token, json!({ "code": code })).await
}

/// The latest code in the dev outbox for `identifier`, if any.
async fn outbox_code(h: &Harness, identifier: &str) -> Option<String> {
    let reply = h.get(&format!("/v1/dev/outbox/{identifier}")).await;
    (reply.status == StatusCode::OK).then(|| reply.body["code"].as_str().unwrap().to_owned())
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn an_address_set_on_another_account_does_not_capture_its_owners_sign_in() {
    let h = harness().await;
    let attacker = h.sign_in("mallory@example.com").await;
    let t = token(&attacker, "access_token");

    // The attacker puts the victim's address on their own account...
    let reply = patch(&h, &t, json!({ "email": "Victim@Example.com" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["email"], "mallory@example.com", "not applied before it is confirmed");
    assert_eq!(reply.body["pending_contact"]["field"], "email");
    assert_eq!(reply.body["pending_contact"]["value"], "victim@example.com");
    assert_eq!(reply.body["pending_contact"]["expires_at"], START + 600);
    // ...but the code went to the victim, and a guess fails.
    assert!(outbox_code(&h, "victim@example.com").await.is_some());
    let reply = confirm(&h, &t, "000000").await;
    assert_eq!(reply.code(), "invalid_code");

    // The victim's first sign-in makes the victim's own account.
    let victim = h.sign_in("victim@example.com").await;
    assert_ne!(victim["user_id"], attacker["user_id"]);
    let profile = h.get_auth("/v1/me/profile", &token(&victim, "access_token")).await.body;
    assert_eq!(profile["email"], "victim@example.com");
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["email"], "mallory@example.com");

    // Even with the right code, the address is now the victim's: it fails like a wrong code.
    let reply = patch(&h, &t, json!({ "email": "victim@example.com" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = confirm(&h, &t, &h.outbox("victim@example.com").await).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_code");
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["email"], "mallory@example.com");
}

#[tokio::test]
async fn a_change_to_a_taken_address_answers_like_one_to_a_free_address() {
    let h = harness().await;
    let taken = h.sign_in("taken@example.com").await;
    let code_of_owner = h.outbox("taken@example.com").await;
    let a = token(&h.sign_in("asker@example.com").await, "access_token");
    let b = token(&h.sign_in("other@example.com").await, "access_token");

    let to_taken = patch(&h, &a, json!({ "email": "taken@example.com" })).await;
    let to_free = patch(&h, &b, json!({ "email": "free@example.com" })).await;
    assert_eq!(to_taken.status, to_free.status);
    assert_eq!(to_taken.status, StatusCode::OK, "no 409: {:?}", to_taken.body);
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, v["pending_contact"]["field"].clone(), v["pending_contact"]["expires_at"].clone())
    };
    assert_eq!(shape(&to_taken.body), shape(&to_free.body));
    // No code is sent for a taken address, so the owner's mailbox shows nothing new.
    assert_eq!(h.outbox("taken@example.com").await, code_of_owner);

    // Confirming fails exactly like a wrong code for a free address.
    let guess = confirm(&h, &a, &code_of_owner).await;
    let wrong = confirm(&h, &b, &wrong_code(&h.outbox("free@example.com").await)).await;
    assert_eq!((guess.status, guess.body.clone()), (wrong.status, wrong.body.clone()));
    assert_eq!(guess.code(), "invalid_code");
    // The owner keeps the address and the account.
    let again = h.sign_in("taken@example.com").await;
    assert_eq!(again["user_id"], taken["user_id"]);
}

#[tokio::test]
async fn a_confirmed_change_applies_and_the_old_address_no_longer_signs_in() {
    let h = harness().await;
    let first = h.sign_in("+4791230001").await;
    let t = token(&first, "access_token");
    h.clock.advance(5);
    let reply = patch(&h, &t, json!({ "name": "Nils", "phone": "+47 912 30 002" })).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["name"], "Nils", "the name applies at once");
    assert_eq!(reply.body["phone"], "+4791230001");
    assert_eq!(reply.body["pending_contact"]["value"], "+4791230002");
    // The profile shows the pending change until it is confirmed.
    let profile = h.get_auth("/v1/me/profile", &t).await.body;
    assert_eq!(profile["pending_contact"], reply.body["pending_contact"]);

    let code = h.outbox("+4791230002").await;
    let reply = confirm(&h, &t, &wrong_code(&code)).await;
    assert_eq!(reply.code(), "invalid_code");
    h.clock.advance(5);
    let reply = confirm(&h, &t, &code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["phone"], "+4791230002");
    assert_eq!(reply.body["pending_contact"], Value::Null);
    assert_eq!(reply.body["updated_at"], START + 10);
    // Used up: the same code does not confirm twice.
    assert_eq!(confirm(&h, &t, &code).await.code(), "invalid_code");

    assert_eq!(h.sign_in("+4791230002").await["user_id"], first["user_id"]);
    assert_ne!(h.sign_in("+4791230001").await["user_id"], first["user_id"]);
}

#[tokio::test]
async fn contact_codes_are_limited_like_sign_in_codes() {
    let h = harness().await;
    let t = token(&h.sign_in("limits@example.com").await, "access_token");

    // Wrong guesses are capped; then even the right code fails until a new change is asked.
    patch(&h, &t, json!({ "email": "new@example.com" })).await;
    let code = h.outbox("new@example.com").await;
    for _ in 0..5 {
        assert_eq!(confirm(&h, &t, &wrong_code(&code)).await.code(), "invalid_code");
    }
    let reply = confirm(&h, &t, &code).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "too_many_attempts");

    // Codes expire.
    patch(&h, &t, json!({ "email": "new@example.com" })).await;
    let code = h.outbox("new@example.com").await;
    h.clock.advance(601);
    assert_eq!(confirm(&h, &t, &code).await.code(), "code_expired");
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["pending_contact"], Value::Null);

    // Sending codes to an address shares the sign-in limit (5 per window per address).
    for _ in 0..5 {
        assert_eq!(patch(&h, &t, json!({ "email": "flood@example.com" })).await.status, StatusCode::OK);
    }
    let reply = patch(&h, &t, json!({ "email": "flood@example.com" })).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
    assert_eq!(h.request_code("flood@example.com").await.code(), "rate_limited");

    // One address at a time: a code must say which address it proves.
    let reply = patch(&h, &t, json!({ "email": "one@example.com", "phone": "+4791230003" })).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "contact_change_conflict");

    // No pending change: any code is just wrong.
    let other = token(&h.sign_in("nochange@example.com").await, "access_token");
    assert_eq!(confirm(&h, &other, "123456").await.code(), "invalid_code");
}

#[tokio::test]
async fn names_with_invisible_or_direction_characters_are_refused() {
    let h = harness().await;
    let t = token(&h.sign_in("names@example.com").await, "access_token");
    for bad in [
        "Ada\u{202E}nosirraH",
        "Ad\u{200B}a",
        "Ada\u{200F}",
        "\u{FEFF}Ada",
        "Ada\u{2066}Admin\u{2069}",
        "Ada\u{2028}Admin",
        "Ada\u{2060}",
        "A\u{0085}da",
    ] {
        let reply = patch(&h, &t, json!({ "name": bad })).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(reply.code(), "invalid_name", "{bad:?}");
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains("invisible") || message.contains("control"), "{message}");
    }
    assert_eq!(h.get_auth("/v1/me/profile", &t).await.body["name"], "");
    let reply = patch(&h, &t, json!({ "name": "Zoë Ærø-李" })).await;
    assert_eq!(reply.status, StatusCode::OK);

    // Device names at sign-in: refused, and the code is not used up by the refusal.
    h.request_code("devices@example.com").await;
    let code = h.outbox("devices@example.com").await;
    for bad in ["Ada's \u{202E}enohPi", "Pixel\u{200B}", "iPhone\u{0007}"] {
        let body = json!({ "identifier": "devices@example.com", "code": code, "device_name": bad });
        let reply = h.post("/v1/auth/sign-in", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(reply.code(), "invalid_device_name", "{bad:?}");
    }
    let reply = h
        .post("/v1/auth/sign-in", json!({ "identifier": "devices@example.com", "code": code, "device_name": "Pixel" }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test]
async fn another_persons_deletion_request_id_reveals_nothing() {
    let h = harness().await;
    let victim = token(&h.sign_in("gone@example.com").await, "access_token");
    h.post_auth("/v1/me/deletion-code", &victim, json!({})).await;
    let code = h.outbox("gone@example.com").await;
    let rid = uuid_v4();
    let body = json!({ "code": code, "request_id": rid });
    let receipt = h.post_auth("/v1/me/delete", &victim, body).await;
    assert_eq!(receipt.status, StatusCode::OK, "{:?}", receipt.body);

    // Another, live user presents the victim's request id: answered as for an unknown id.
    let other = token(&h.sign_in("nosy@example.com").await, "access_token");
    let body = json!({ "code": "000000", "request_id": rid });
    let stolen = h.post_auth("/v1/me/delete", &other, body).await;
    let body = json!({ "code": "000000", "request_id": uuid_v4() });
    let unknown = h.post_auth("/v1/me/delete", &other, body).await;
    assert_eq!((stolen.status, stolen.body.clone()), (unknown.status, unknown.body.clone()));
    assert_eq!(stolen.code(), "invalid_code");
    assert!(stolen.body.get("deleted_at").is_none());

    // With their own valid code the id still does not answer with the victim's receipt, and
    // their account is not deleted under someone else's id.
    h.post_auth("/v1/me/deletion-code", &other, json!({})).await;
    let code = h.outbox("nosy@example.com").await;
    let reply = h.post_auth("/v1/me/delete", &other, json!({ "code": code, "request_id": rid })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert!(reply.body.get("deleted_at").is_none());
    assert_eq!(h.get_auth("/v1/me/profile", &other).await.status, StatusCode::OK);
    // The same code still works with a request id of their own.
    let reply = h.post_auth("/v1/me/delete", &other, json!({ "code": code, "request_id": uuid_v4() })).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    // The victim's own retry (their token is dead now) still gets the receipt.
    let retry = h.post_auth("/v1/me/delete", &victim, json!({ "code": "000000", "request_id": rid })).await;
    assert_eq!(retry.body, receipt.body);
}

/// Everything the server logs in this test binary, at every level.
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        log
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&captured_log().lock().unwrap()).into_owned()
}

/// Whether `code` appears in `text` as a number of its own (not inside a longer one).
fn mentions(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[tokio::test]
async fn one_time_codes_never_reach_the_log() {
    captured_log();
    let h = harness().await;
    let mut codes = Vec::new();
    let tokens = h.sign_in("logged@example.com").await;
    codes.push(h.outbox("logged@example.com").await);
    let t = token(&tokens, "access_token");
    patch(&h, &t, json!({ "phone": "+4791239999" })).await;
    codes.extend(outbox_code(&h, "+4791239999").await);
    h.post_auth("/v1/me/deletion-code", &t, json!({})).await;
    codes.push(h.outbox("logged@example.com").await);
    // The deletion page sends codes too.
    let resp = h
        .client
        .post(format!("{}/delete-account/request", h.server.url()))
        .form(&[("identifier", "logged@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    codes.push(h.outbox("logged@example.com").await);

    let log = log_text();
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "the capture runs at every level");
    for code in &codes {
        assert!(!mentions(&log, code), "a one-time code is in the log");
    }
    for token in [&tokens["access_token"], &tokens["refresh_token"]] {
        assert!(!log.contains(token.as_str().unwrap()), "a token is in the log");
    }
}

/// Stands for an email/SMS provider: keeps what it was asked to send.
#[derive(Default)]
struct Provider(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl CodeSender for Provider {
    async fn send(&self, to: &Identifier, code: &str) -> Result<(), DeliveryFailed> {
        self.0.lock().unwrap().push((to.as_str().to_owned(), code.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn without_a_sender_the_server_says_codes_are_not_delivered() {
    captured_log();
    let h = harness_with(|c| c.dev_outbox = false).await;
    let log = log_text();
    assert!(log.contains("one-time codes are not delivered"), "startup says so");
    let reply = h.request_code("nobody@example.com").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    // Without the dev outbox there is no way to read a code back.
    assert_eq!(h.get("/v1/dev/outbox/nobody@example.com").await.status, StatusCode::NOT_FOUND);

    // With a provider the code goes to it, and only to it.
    let provider = Arc::new(Provider::default());
    let sender = provider.clone();
    let h = harness_with(move |c| {
        c.dev_outbox = false;
        c.code_sender = Some(sender);
    })
    .await;
    h.request_code("someone@example.com").await;
    let (to, code) = provider.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(to, "someone@example.com");
    assert!(!mentions(&log_text(), &code), "the code is not in the log");
    let reply = h.sign_in_with("someone@example.com", &code).await;
    assert_eq!(reply.status, StatusCode::OK);
}
