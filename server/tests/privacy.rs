//! The privacy policy's promises: the resident sees all their data, exports it, controls
//! marketing consent, and deletes their account (from the app or the web page) so that
//! nothing about them is left in the database.

mod common;

use std::path::Path;

use common::*;
use porta_protocol::{AuditRecord, Credential, Decision, DenyReason, SigningKey};
use rand::rngs::OsRng;
use rand::RngCore;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const DAY: i64 = 86_400;
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-picture-of-the-person-";

fn request_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Phone {
    token: String,
    refresh: String,
    key: SigningKey,
}

/// A resident with distinct, searchable data.
struct Person {
    /// The email the person signed up with, before changing it to `email`.
    old_email: String,
    email: String,
    phone_number: String,
    name: String,
    user_id: String,
    phones: Vec<Phone>,
    /// Credential ids issued to this person's phones.
    credential_ids: Vec<[u8; 16]>,
}

impl Person {
    fn token(&self) -> &str {
        &self.phones[0].token
    }

    fn keys(&self) -> Vec<[u8; 32]> {
        self.phones.iter().map(|p| p.key.verifying_key().to_bytes()).collect()
    }
}

impl Harness {
    async fn auth(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(token), body).await
    }

    /// Signs in with `identifier` and enrolls a fresh device key.
    async fn phone(&self, identifier: &str) -> (Phone, String) {
        let tokens = self.sign_in(identifier).await;
        let session_id = token(&tokens, "session_id");
        let token = token(&tokens, "access_token");
        let key = new_key();
        let reply = self.enroll(&token, &session_id, &key).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        (
            Phone { token, refresh: tokens["refresh_token"].as_str().unwrap().to_owned(), key },
            tokens["user_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Sets (or tries to set) the caller's marketing consent with `body`.
    async fn marketing_consent(&self, token: &str, body: Value) -> Reply {
        self.auth(Method::PUT, "/v1/me/consents/marketing", token, Some(body)).await
    }

    /// Changes the caller's email or phone to `value`, confirming with the code sent to it
    /// where the server asks for that.
    async fn change_contact(&self, token: &str, field: &str, value: &str) {
        let reply = self.auth(Method::PATCH, "/v1/me/profile", token, Some(json!({ field: value }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        if !reply.body["pending_contact"].is_null() {
            let code = self.outbox(value).await;
            let reply =
                self.auth(Method::POST, "/v1/me/profile/contact/confirm", token, Some(json!({ "code": code }))).await;
            assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        }
        let profile = self.get_auth("/v1/me/profile", token).await.body;
        assert_eq!(profile[field], value);
    }

    /// A resident with a name, email (changed from the one they signed up with), phone,
    /// picture, grants for doors 1 and 2, two signed-in phones (one by email, one by phone
    /// number) with credentials, and consent.
    async fn person(&self, email: &str, phone_number: &str, name: &str) -> Person {
        let old_email = format!("old.{email}");
        self.grant(json!({ "identifier": old_email, "doors": [1, 2] })).await;
        let (first, user_id) = self.phone(&old_email).await;
        self.change_contact(&first.token, "email", email).await;
        let reply = self.auth(Method::PATCH, "/v1/me/profile", &first.token, Some(json!({ "name": name }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        self.change_contact(&first.token, "phone", phone_number).await;
        let resp = self
            .client
            .put(format!("{}/v1/me/picture", self.server.url()))
            .bearer_auth(&first.token)
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let (second, second_user) = self.phone(phone_number).await;
        assert_eq!(second_user, user_id, "same account by phone number");
        let reply = self.marketing_consent(&first.token, json!({ "granted": true })).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let mut credential_ids = Vec::new();
        for phone in [&first, &second] {
            let doors = self.doors(&phone.token).await;
            for c in doors["credentials"].as_array().unwrap() {
                let cred = Credential::from_bytes(&unb64(&c["credential"])).unwrap();
                credential_ids.push(*cred.id());
            }
        }
        assert!(!credential_ids.is_empty());
        Person {
            old_email,
            email: email.into(),
            phone_number: phone_number.into(),
            name: name.into(),
            user_id,
            phones: vec![first, second],
            credential_ids,
        }
    }

    /// Lock-signed audit records for each credential at locks 1 and 2, uploaded by
    /// `uploader`. Returns how many were stored.
    async fn events(&self, credential_ids: &[[u8; 16]], uploader: &str, first_counter: u64) -> usize {
        let mut records = Vec::new();
        let mut counter = first_counter;
        for lock in self.demo_locks().await {
            let lock_id = lock.lock_id;
            if lock_id > 2 {
                continue;
            }
            let lock_key = lock.key;
            for (i, id) in credential_ids.iter().enumerate() {
                let decision =
                    if i % 2 == 0 { Decision::Opened } else { Decision::Denied(DenyReason::OutsideSchedule) };
                let at = (START - 3600 + counter as i64) as u64;
                records.push(AuditRecord::sign(&lock_key, lock_id, lock_id, *id, at, decision, counter));
                counter += 1;
            }
        }
        let events: Vec<Value> = records.iter().map(|r| json!({ "audit_record": b64(r.to_bytes()) })).collect();
        let reply = self.auth(Method::POST, "/v1/me/access-events", uploader, Some(json!({ "events": events }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.body["accepted"], records.len());
        records.len()
    }

    async fn deletion_code(&self, token: &str, identifier: &str) -> String {
        let reply = self.auth(Method::POST, "/v1/me/deletion-code", token, None).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
        assert_eq!(reply.body["expires_in_s"], 600);
        self.outbox(identifier).await
    }

    async fn delete(&self, token: Option<&str>, code: &str, request_id: &str) -> Reply {
        self.call(Method::POST, "/v1/me/delete", token, Some(json!({ "code": code, "request_id": request_id }))).await
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let resp = self.client.post(format!("{}{}", self.server.url(), path)).form(fields).send().await.unwrap();
        let status = resp.status();
        if status.is_success() {
            let ct = resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap();
            assert!(ct.starts_with("text/html"), "{ct}");
        }
        (status, resp.text().await.unwrap())
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every needle as bytes and, for binary ones, their base64 and hex text forms. Hashes of the
/// person's addresses count too: anyone holding the database could test a guess against them.
fn needles(person: &Person) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("name".into(), person.name.clone().into_bytes()),
        ("old email".into(), person.old_email.clone().into_bytes()),
        ("email".into(), person.email.clone().into_bytes()),
        ("phone".into(), person.phone_number.clone().into_bytes()),
        ("user id".into(), person.user_id.clone().into_bytes()),
    ];
    let binary: Vec<(String, Vec<u8>)> = person
        .keys()
        .iter()
        .map(|k| ("device key".to_owned(), k.to_vec()))
        .chain(person.credential_ids.iter().map(|c| ("credential id".to_owned(), c.to_vec())))
        .chain(identifier_hashes(person))
        .collect();
    for (label, bytes) in binary {
        out.push((format!("{label} (base64)"), b64(&bytes).into_bytes()));
        out.push((format!("{label} (hex)"), hex(&bytes).into_bytes()));
        out.push((label, bytes));
    }
    out
}

/// SHA-256 of each of the person's addresses, bare and with every prefix the server has used
/// for its rate-limit and code keys.
fn identifier_hashes(person: &Person) -> Vec<(String, Vec<u8>)> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    for (label, address) in
        [("old email", &person.old_email), ("email", &person.email), ("phone", &person.phone_number)]
    {
        for prefix in ["", "identifier:", "delete_account:"] {
            let digest = Sha256::digest(format!("{prefix}{address}").as_bytes()).to_vec();
            out.push((format!("sha256({prefix}{label})"), digest));
        }
    }
    out
}

/// Every value of every column of every table, as text or blob bytes, that contains a needle.
async fn scan_tables(h: &Harness, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let tables = h.tables().await;
    assert!(tables.len() > 15, "{tables:?}");
    let mut hits = Vec::new();
    for table in tables {
        for column in h.columns(&table).await {
            for row in h.query(&format!("SELECT \"{column}\" FROM \"{table}\"")).await {
                let bytes: Vec<u8> = match &row[0] {
                    Stored::Text(t) => t.clone().into_bytes(),
                    Stored::Blob(b) => b.clone(),
                    Stored::Integer(i) => i.to_string().into_bytes(),
                    Stored::Real(f) => f.to_string().into_bytes(),
                    Stored::Null => continue,
                };
                let lower = bytes.to_ascii_lowercase();
                for (label, needle) in needles {
                    if contains(&bytes, needle) || contains(&lower, &needle.to_ascii_lowercase()) {
                        hits.push(format!("{label} in {table}.{column}"));
                    }
                }
            }
        }
    }
    hits.sort();
    hits.dedup();
    hits
}

/// Checkpoints the WAL into the database (truncating it) and scans the raw bytes of both files.
fn scan_files(db: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let (busy, _, _): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert_eq!(busy, 0, "checkpoint not blocked");
    }
    let mut hits = Vec::new();
    let wal = db.with_extension("db-wal");
    for file in [db.to_path_buf(), wal] {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for (label, needle) in needles {
            if contains(&bytes, needle) {
                hits.push(format!("{label} in {}", file.display()));
            }
        }
    }
    hits
}

#[tokio::test]
async fn deletion_leaves_no_trace_of_the_person() {
    let h = harness_with(|c| c.demo = true).await;
    let (ada, _) = h.phone(porta_server::DEMO_RESIDENT_EMAIL).await;
    let person = h.person("zelda.quill@example.com", "+4798765432", "Zelda Quillfeather").await;
    // Events of the person (uploaded by their own phone and by Ada's), and of Ada.
    let ada_doors = h.doors(&ada.token).await;
    let ada_ids: Vec<[u8; 16]> = ada_doors["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| *Credential::from_bytes(&unb64(&c["credential"])).unwrap().id())
        .collect();
    let mine = h.events(&person.credential_ids, person.token(), 100).await;
    let via_ada = h.events(&person.credential_ids[..1], &ada.token, 200).await;
    let adas = h.events(&ada_ids, &ada.token, 300).await;
    let log = h.get_auth("/v1/me/access-log", person.token()).await;
    assert_eq!(log.body["events"].as_array().unwrap().len(), mine + via_ada);
    let events_before = h.count("SELECT COUNT(*) FROM access_events").await;
    assert_eq!(events_before as usize, mine + via_ada + adas);

    // The scanner finds the person before deletion, in the tables and in the raw files.
    let needles = needles(&person);
    let before = scan_tables(&h, &needles).await;
    for label in ["name", "email", "phone", "user id", "device key", "credential id"] {
        assert!(before.iter().any(|hit| hit.starts_with(&format!("{label} in"))), "scanner misses {label}: {before:?}");
    }
    // Rate limits are kept under hashes of the addresses: the scanner sees those too.
    let label = "sha256(identifier:phone) (hex)";
    assert!(before.iter().any(|hit| hit.starts_with(&format!("{label} in"))), "scanner misses {label}: {before:?}");
    if backend() == Backend::Sqlite {
        let before = scan_files(&h.db_path, &needles);
        assert!(before.iter().any(|hit| hit.starts_with("email in")), "{before:?}");
    }

    let code = h.deletion_code(person.token(), &person.email).await;
    let rid = request_id();
    let reply = h.delete(Some(person.token()), &code, &rid).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["deleted_at"], START);
    for phone in &person.phones {
        let reply = h.get_auth("/v1/me/profile", &phone.token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }

    // Their keys and credentials are revoked for the locks...
    let (_, revoked_keys) = h.revoked(&ada.token).await;
    for key in person.keys() {
        assert!(revoked_keys.contains(&key));
    }
    // ...until those credentials have expired; then the list forgets them.
    h.clock.advance(DAY + 120);
    let reply = h.refresh(&ada.refresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let ada_token = token(&reply.body, "access_token");
    let (ids, keys) = h.revoked(&ada_token).await;
    assert!(keys.is_empty() && ids.is_empty());

    let hits = scan_tables(&h, &needles).await;
    assert!(hits.is_empty(), "left behind: {hits:?}");
    // PostgreSQL's own files are its business (VACUUM reclaims dead tuples); SQLite's file is
    // the deployment's, so it is checked too.
    if backend() == Backend::Sqlite {
        let hits = scan_files(&h.db_path, &needles);
        assert!(hits.is_empty(), "left behind in the files: {hits:?}");
    }

    // The building keeps the events, anonymised.
    assert_eq!(h.count("SELECT COUNT(*) FROM access_events").await, events_before);
    let anonymised = format!(
        "SELECT COUNT(*) FROM access_events WHERE user_id IS NULL
         AND credential_id = {} AND length(record) = 0 AND door_number IS NOT NULL AND at > 0",
        h.blob(&"00".repeat(16))
    );
    assert_eq!(h.count(&anonymised).await as usize, mine + via_ada);
    // Ada's are untouched.
    assert_eq!(
        h.count("SELECT COUNT(*) FROM access_events WHERE user_id IS NOT NULL AND length(record) > 0").await as usize,
        adas
    );
    for table in ["users", "sessions", "device_keys", "credentials", "door_grants", "pictures", "consent_events"] {
        let column = if table == "users" { "id" } else { "user_id" };
        let n = h.count(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{}'", person.user_id)).await;
        assert_eq!(n, 0, "{table}");
    }
    // The receipt holds no personal data: a hash and two times.
    assert_eq!(h.count("SELECT COUNT(*) FROM deletion_receipts").await, 1);
}

#[tokio::test]
async fn deletion_needs_a_fresh_deletion_code() {
    let h = harness().await;
    let email = "careful@example.com";
    let tokens = h.sign_in(email).await;
    let access = token(&tokens, "access_token");

    // A sign-in code is no deletion code.
    h.request_code(email).await;
    let sign_in_code = h.outbox(email).await;
    let rid = request_id();
    let reply = h.delete(Some(&access), &sign_in_code, &rid).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_code");

    // A wrong deletion code is refused and nothing is deleted.
    let code = h.deletion_code(&access, email).await;
    let reply = h.delete(Some(&access), &wrong_code(&code), &rid).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "invalid_code");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);
    let reply = h.get(&format!("/v1/deletion-receipts/{rid}")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Asking for a deletion code did not replace the pending sign-in code, and the
    // deletion code does not sign anyone in.
    let reply = h.sign_in_with(email, &code).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.sign_in_with(email, &sign_in_code).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    // Without a token (and no receipt) nothing happens; a request id must be a UUID.
    let reply = h.delete(None, &code, &rid).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    let reply = h.delete(Some(&access), &code, "not-a-uuid").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // The code expires like a sign-in code.
    h.clock.advance(601);
    let reply = h.delete(Some(&access), &code, &rid).await;
    assert_eq!(reply.code(), "code_expired");
    let tokens = h.sign_in(email).await;
    let access = token(&tokens, "access_token");

    // Five wrong tries kill the code, even for the right one afterwards.
    let code = h.deletion_code(&access, email).await;
    for _ in 0..5 {
        let reply = h.delete(Some(&access), &wrong_code(&code), &rid).await;
        assert_eq!(reply.code(), "invalid_code");
    }
    let reply = h.delete(Some(&access), &code, &rid).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "too_many_attempts");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);

    // Rate limits are shared with sign-in codes (5 per identifier per window; 2 used).
    for _ in 0..3 {
        let reply = h.auth(Method::POST, "/v1/me/deletion-code", &access, None).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let reply = h.auth(Method::POST, "/v1/me/deletion-code", &access, None).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
}

#[tokio::test]
async fn a_retry_returns_the_same_receipt() {
    let h = harness().await;
    let phone = "+4791112222";
    let tokens = h.sign_in(phone).await;
    let access = token(&tokens, "access_token");
    let code = h.deletion_code(&access, phone).await;
    let rid = request_id();
    h.clock.advance(5);
    let first = h.delete(Some(&access), &code, &rid).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let deleted_at = first.body["deleted_at"].as_i64().unwrap();
    assert_eq!(deleted_at, START + 5);
    assert_eq!(first.body["backups_purged_by"].as_i64().unwrap() - deleted_at, 90 * DAY);
    assert_eq!(first.body.as_object().unwrap().len(), 2);

    // The token is dead, but the request id still answers, later too.
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::UNAUTHORIZED);
    h.clock.advance(3600);
    for token in [Some(access.as_str()), None, Some("garbage")] {
        let again = h.delete(token, "000000", &rid).await;
        assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
        assert_eq!(again.body, first.body);
    }
    // Uppercase spelling of the same UUID is the same request.
    let again = h.delete(None, "000000", &rid.to_uppercase()).await;
    assert_eq!(again.body, first.body);
    let reply = h.get(&format!("/v1/deletion-receipts/{rid}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, first.body);
    // Another request id with the dead token is just unauthorized.
    let reply = h.delete(Some(&access), &code, &request_id()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.get("/v1/deletion-receipts/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Signing in again makes a new account.
    let tokens = h.sign_in(phone).await;
    assert_ne!(tokens["user_id"], Value::Null);
    let receipt_hash = h.query("SELECT request_hash FROM deletion_receipts").await[0][0].text().unwrap();
    assert!(!receipt_hash.contains(&rid));
    assert_eq!(receipt_hash.len(), 64);
}

/// Minimal JSON Schema check: `$ref` (local), `type`, `const`, `enum`, `required`,
/// `properties`, `additionalProperties`, `items`, `oneOf`.
fn validate(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let target = root.pointer(r.trim_start_matches('#')).expect("local $ref");
        return validate(root, target, value, at, errors);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|option| {
                let mut e = Vec::new();
                validate(root, option, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{at}: {matching} of oneOf match"));
        }
    }
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: not {t}"));
            return;
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            errors.push(format!("{at}: not {c}"));
        }
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            errors.push(format!("{at}: not in enum"));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(key.as_str().unwrap()) {
                errors.push(format!("{at}: missing {key}"));
            }
        }
        for (key, item) in object {
            let path = format!("{at}/{key}");
            if let Some(sub) = schema["properties"].get(key) {
                validate(root, sub, item, &path, errors);
            } else if schema["additionalProperties"] == Value::Bool(false) {
                errors.push(format!("{path}: not allowed"));
            } else if schema["additionalProperties"].is_object() {
                validate(root, &schema["additionalProperties"], item, &path, errors);
            }
        }
    }
    if let (Some(items), Some(sub)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(root, sub, item, &format!("{at}/{i}"), errors);
        }
    }
}

fn schema() -> Value {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/porta-export-v1.schema.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn export_holds_every_category_and_nobody_else() {
    let h = harness_with(|c| c.demo = true).await;
    let a = h.person("alma.a@example.com", "+4790000101", "Alma Aardvark").await;
    let b = h.person("bert.b@example.com", "+4790000202", "Bertram Bumblebee").await;
    // B's events, some carried by A's phone, and A's own.
    let b_events = h.events(&b.credential_ids, a.token(), 1).await;
    let a_events = h.events(&a.credential_ids, b.token(), 500).await;
    assert!(b_events > 0 && a_events > 0);

    let data = h.get_auth("/v1/me/data", a.token()).await;
    assert_eq!(data.status, StatusCode::OK, "{:?}", data.body);
    assert_eq!(data.body["user_id"], a.user_id.as_str());
    let categories = data.body["categories"].as_array().unwrap();
    let names: Vec<&str> = categories.iter().map(|c| c["category"].as_str().unwrap()).collect();
    for expected in [
        "profile",
        "contact",
        "unit",
        "picture",
        "devices_and_sessions",
        "device_keys",
        "door_grants",
        "credentials",
        "invitations_sent",
        "access_log",
        "consents",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for c in categories {
        for field in ["description", "purpose", "legal_basis", "retention"] {
            assert!(!c[field].as_str().unwrap().is_empty(), "{} {field}", c["category"]);
        }
        assert!(!c["visible_to"].as_array().unwrap().is_empty());
    }
    let by = |name: &str| categories.iter().find(|c| c["category"] == name).unwrap();
    assert_eq!(by("profile")["items"]["name"], a.name.as_str());
    assert_eq!(by("contact")["items"]["email"], a.email.as_str());
    assert_eq!(by("contact")["items"]["phone"], a.phone_number.as_str());
    assert_eq!(by("picture")["items"]["has_picture"], true);
    assert_eq!(by("picture")["items"]["size_bytes"], PNG.len());
    assert_eq!(by("picture")["items"]["content_type"], "image/png");
    assert_eq!(by("devices_and_sessions")["items"].as_array().unwrap().len(), 2);
    let device = &by("devices_and_sessions")["items"][0];
    for field in ["device_name", "created_at", "last_sign_in_at", "last_seen_at", "ip"] {
        assert!(!device[field].is_null(), "{field}");
    }
    let keys: Vec<Vec<u8>> = by("device_keys")["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["revoked"], false);
            assert!(k["enrolled_at"].is_i64());
            unb64(&k["public_key"])
        })
        .collect();
    assert_eq!(keys.len(), 2);
    for key in a.keys() {
        assert!(keys.contains(&key.to_vec()));
    }
    assert_eq!(by("door_grants")["items"].as_array().unwrap().len(), 2);
    let creds = by("credentials")["items"].as_array().unwrap();
    assert_eq!(creds.len(), a.credential_ids.len());
    assert_eq!(creds[0]["doors"], json!([1, 2]));
    assert_eq!(creds[0]["revoked"], false);
    assert_eq!(by("invitations_sent")["items"], json!([]));
    assert!(by("invitations_sent")["retention"].as_str().unwrap().contains("deleted with its last use"));
    assert_eq!(by("guest_access")["items"], json!([]), "a resident holds no guest access");
    assert_eq!(by("access_log")["items"].as_array().unwrap().len(), a_events);
    assert!(by("access_log")["retention"].as_str().unwrap().contains("Main entrance: 30 days"));
    assert_eq!(by("access_log")["legal_basis"], "legitimate interest (building security)");
    assert_eq!(by("consents")["items"]["current"][0]["granted"], true);
    assert_eq!(by("consents")["legal_basis"].as_str().unwrap().split(' ').next(), Some("consent"));

    let resp = h.client.get(format!("{}/v1/me/export", h.server.url())).bearer_auth(a.token()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[reqwest::header::CONTENT_DISPOSITION], "attachment; filename=\"porta-export.json\"");
    let text = resp.text().await.unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["format"], "porta-export");
    assert_eq!(export["version"], 1);
    assert_eq!(export["user_id"], a.user_id.as_str());
    assert_eq!(export["exported_at"], START);
    let exported: Vec<&String> = export["categories"].as_object().unwrap().keys().collect();
    assert_eq!(exported.len(), names.len());
    for name in &names {
        assert_eq!(export["categories"][*name], *by(name), "{name} differs");
    }
    assert_eq!(export["picture"]["content_type"], "image/png");
    assert_eq!(unb64(&export["picture"]["base64"]), PNG);

    // The export validates against the published schema, and the check bites.
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, &export, "", &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    for broken in [
        {
            let mut e = export.clone();
            e.as_object_mut().unwrap().remove("exported_at");
            e
        },
        {
            let mut e = export.clone();
            e["categories"].as_object_mut().unwrap().remove("access_log");
            e
        },
        {
            let mut e = export.clone();
            e["categories"]["contact"].as_object_mut().unwrap().remove("legal_basis");
            e
        },
        {
            let mut e = export.clone();
            e["version"] = json!(2);
            e
        },
    ] {
        let mut errors = Vec::new();
        validate(&schema, &schema, &broken, "", &mut errors);
        assert!(!errors.is_empty());
    }

    // A's own values are there; none of B's.
    for own in [&a.name, &a.email, &a.phone_number, &a.user_id] {
        assert!(text.contains(own.as_str()));
    }
    assert!(text.contains(&b64(a.credential_ids[0])));
    let mut foreign: Vec<String> = vec![b.name.clone(), b.email.clone(), b.phone_number.clone(), b.user_id.clone()];
    foreign.extend(b.keys().iter().map(b64));
    foreign.extend(b.credential_ids.iter().map(b64));
    for value in &foreign {
        assert!(!text.contains(value.as_str()), "B's {value} in A's export");
    }
    let data_text = serde_json::to_string(&data.body).unwrap();
    for value in &foreign {
        assert!(!data_text.contains(value.as_str()), "B's {value} in A's data");
    }

    // Both routes need a session.
    let reply = h.get("/v1/me/export").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = h.get("/v1/me/data").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn marketing_is_off_until_given() {
    let h = harness().await;
    let tokens = h.sign_in("consent@example.com").await;
    let access = token(&tokens, "access_token");
    let reply = h.get_auth("/v1/me/consents", &access).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!([{ "purpose": "marketing", "granted": false, "updated_at": null }]));

    h.clock.advance(10);
    let reply = h.marketing_consent(&access, json!({ "granted": true })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({ "purpose": "marketing", "granted": true, "updated_at": START + 10 }));
    assert_eq!(h.get_auth("/v1/me/consents", &access).await.body[0]["granted"], true);

    h.clock.advance(10);
    let reply = h.marketing_consent(&access, json!({ "granted": false })).await;
    assert_eq!(reply.body["granted"], false);
    let reply = h.get_auth("/v1/me/consents", &access).await;
    assert_eq!(reply.body, json!([{ "purpose": "marketing", "granted": false, "updated_at": START + 20 }]));
    // The history is kept and shown.
    let data = h.get_auth("/v1/me/data", &access).await.body;
    let consents = data["categories"].as_array().unwrap().iter().find(|c| c["category"] == "consents").unwrap();
    assert_eq!(consents["items"]["history"].as_array().unwrap().len(), 2);

    let reply = h.auth(Method::PUT, "/v1/me/consents/profiling", &access, Some(json!({ "granted": true }))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let reply = h.marketing_consent(&access, json!({ "granted": "yes" })).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = h.get("/v1/me/consents").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("{name} in {html}")) + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn the_deletion_page_works_without_the_app() {
    let h = harness().await;
    let email = "no.app@example.com";
    let tokens = h.sign_in(email).await;
    let old_id = tokens["user_id"].as_str().unwrap().to_owned();

    let resp = h.client.get(format!("{}/delete-account", h.server.url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("<form method=\"post\" action=\"/delete-account/request\""));
    assert!(html.contains("name=\"identifier\""));
    assert!(!html.contains("<script"));

    // Same answer whether or not the account exists.
    let (status, unknown) = h.form("/delete-account/request", &[("identifier", "nobody@example.com")]).await;
    assert_eq!(status, StatusCode::OK);
    let reply = h.get("/v1/dev/outbox/nobody@example.com").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "no code for no account");
    let (status, html) = h.form("/delete-account/request", &[("identifier", " No.App@Example.com ")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        html.replace(email, "X").replace(&hidden(&html, "request_id"), "R"),
        unknown.replace("nobody@example.com", "X").replace(&hidden(&unknown, "request_id"), "R")
    );
    assert!(html.contains("action=\"/delete-account/confirm\""));
    let request_id = hidden(&html, "request_id");
    assert_eq!(hidden(&html, "identifier"), email);
    let code = h.outbox(email).await;

    // A wrong code is refused and deletes nothing.
    let (status, html) = h
        .form(
            "/delete-account/confirm",
            &[("identifier", email), ("code", &wrong_code(&code)), ("request_id", &request_id)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("the code is wrong"));
    let access = token(&tokens, "access_token");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::OK);

    let fields = [("identifier", email), ("code", code.as_str()), ("request_id", &request_id)];
    let (status, html) = h.form("/delete-account/confirm", &fields).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your account is deleted"));
    assert!(html.contains("2025-06-15 15:06 UTC"), "{html}");
    assert!(html.contains("2025-09-13 15:06 UTC"), "{html}");
    assert_eq!(h.get_auth("/v1/me/profile", &access).await.status, StatusCode::UNAUTHORIZED);
    // Resubmitting the form shows the same receipt; the API knows it too.
    let (status, again) = h.form("/delete-account/confirm", &fields).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, html);
    let reply = h.get(&format!("/v1/deletion-receipts/{request_id}")).await;
    assert_eq!(reply.body["backups_purged_by"], START + 90 * DAY);

    // Signing in again creates a fresh account.
    let tokens = h.sign_in(email).await;
    assert_ne!(tokens["user_id"].as_str().unwrap(), old_id);

    // Everything echoed is escaped.
    let evil = "<script>alert(1)</script>@example.com";
    let (status, html) = h.form("/delete-account/request", &[("identifier", evil)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@example.com"));
    let (status, html) = h.form("/delete-account/request", &[("identifier", "<b onmouseover=\"x\">")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<b onmouseover"), "{html}");
    assert!(html.contains("&lt;b onmouseover=&quot;x&quot;&gt;"));
    let (status, html) = h
        .form("/delete-account/confirm", &[("identifier", evil), ("code", "123456"), ("request_id", "\"><script>")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<script>"));

    // Rate limits hold on the page too (5 per identifier per window).
    for _ in 0..4 {
        h.form("/delete-account/request", &[("identifier", email)]).await;
    }
    let (status, html) = h.form("/delete-account/request", &[("identifier", email)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
}
