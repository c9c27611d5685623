//! My data, export, consent and account deletion end to end: porta-core against the real
//! porta-server, then a scan of the phone's data directory and secure store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use porta_core::{Client, ClientConfig, Error, MemorySecureStore, ProfileUpdate, SecureStore, SecureStoreError};
use porta_tests::{dev_code, sign_in};
use zeroize::Zeroizing;

async fn server() -> (porta_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().unwrap());
    config.demo = true;
    config.dev_outbox = true;
    config.limits.code_requests_per_ip = 10_000;
    (porta_server::start(config).await.unwrap(), dir)
}

fn new_client(url: &str, store: Arc<dyn SecureStore>, dir: &std::path::Path) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.request_timeout = Duration::from_secs(5);
    Client::new(config, store).unwrap()
}

/// A person with everything a resident accumulates: profile, picture, doors, an opening.
async fn resident(client: &Client, url: &str, email: &str, name: &str, phone: &str) {
    sign_in(client, url, email).await;
    let update = ProfileUpdate { name: Some(name.into()), phone: Some(phone.into()), email: None };
    client.update_profile(update).await.unwrap();
    client.confirm_contact_change(&dev_code(url, phone).await).await.unwrap();
    client.set_picture(b"\x89PNG\r\n\x1a\npicture-bytes".to_vec()).await.unwrap();
}

/// A secure store whose deletes fail while `broken` is set: a crash in the middle of a wipe.
struct FlakyStore {
    inner: MemorySecureStore,
    broken: AtomicBool,
}

impl SecureStore for FlakyStore {
    fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, SecureStoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecureStoreError> {
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), SecureStoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(SecureStoreError("simulated crash".into()));
        }
        self.inner.delete(key)
    }
}

fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn my_data_lists_every_category_and_the_export_holds_them_all_and_nothing_of_others() {
    let (server, _dir) = server().await;
    let url = server.url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = new_client(&url, Arc::new(MemorySecureStore::new()), dir_a.path());
    let b = new_client(&url, Arc::new(MemorySecureStore::new()), dir_b.path());
    resident(&a, &url, "anna@example.com", "Anna Andersen", "+4791111111").await;
    resident(&b, &url, "bjorn@example.com", "Bjørn Berg", "+4792222222").await;

    let data = a.my_data().await.unwrap();
    let names: Vec<&str> = data.categories.iter().map(|c| c.category.as_str()).collect();
    for expected in ["profile", "contact", "devices_and_sessions", "door_grants", "access_log", "consents"] {
        assert!(names.iter().any(|n| n.contains(expected)), "{expected} missing from {names:?}");
    }
    for c in &data.categories {
        assert!(
            !c.purpose.is_empty() && !c.legal_basis.is_empty() && !c.retention.is_empty() && !c.visible_to.is_empty(),
            "{c:?}"
        );
    }

    let path = dir_a.path().join("export.json");
    let size = a.export_my_data(path.clone()).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(size as usize, text.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format"], "porta-export");
    for name in &names {
        assert!(doc["categories"].get(name).is_some(), "export lacks {name}");
    }
    assert!(text.contains("Anna Andersen") && text.contains("anna@example.com"));
    let b_id = b.user_id().unwrap();
    for other in ["Bjørn Berg", "bjorn@example.com", "+4792222222", b_id.as_str()] {
        assert!(!text.contains(other), "A's export contains B's {other}");
    }
}

#[tokio::test]
async fn marketing_consent_is_off_until_given_and_can_be_withdrawn() {
    let (server, _dir) = server().await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let client = new_client(&url, Arc::new(MemorySecureStore::new()), dir.path());
    sign_in(&client, &url, "consent@example.com").await;
    let marketing = |c: Vec<porta_core::Consent>| c.into_iter().find(|c| c.purpose == "marketing").unwrap().granted;
    assert!(!marketing(client.consents().await.unwrap()));
    assert!(client.set_consent("marketing", true).await.unwrap().granted);
    assert!(marketing(client.consents().await.unwrap()));
    assert!(!client.set_consent("marketing", false).await.unwrap().granted);
    assert!(!marketing(client.consents().await.unwrap()));
}

#[tokio::test]
async fn account_deletion_leaves_nothing_of_the_person_on_the_phone() {
    let (server, _dir) = server().await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    let client = new_client(&url, store.clone(), dir.path());
    resident(&client, &url, "dora@example.com", "Dora Dahl", "+4793333333").await;
    grant(&url, "dora@example.com").await;
    client.doors().await.unwrap();
    client.access_log().await.unwrap();
    let user_id = client.user_id().unwrap();
    let device_key = device_public_key(&client).await;

    client.request_deletion_code().await.unwrap();
    let right = dev_code(&url, "dora@example.com").await;
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert!(matches!(client.delete_account(&wrong).await, Err(Error::InvalidCode)));
    assert!(client.is_signed_in(), "a wrong code deletes nothing");
    assert_eq!(client.profile().await.unwrap().name, "Dora Dahl");
    let receipt = client.delete_account(&right).await.unwrap();
    assert_eq!(receipt.backups_purged_by - receipt.deleted_at, 90 * 24 * 3600);
    assert!(!client.is_signed_in());
    assert!(matches!(client.profile().await, Err(Error::NotSignedIn)));
    assert!(store.keys().is_empty(), "secure store still holds {:?}", store.keys());
    assert!(client.cached_profile().unwrap().is_none());

    for (path, bytes) in files_under(dir.path()) {
        for needle in [&b"Dora Dahl"[..], b"dora@example.com", b"+4793333333", user_id.as_bytes(), &device_key[..]] {
            assert!(!contains(&bytes, needle), "{} still holds personal data", path.display());
        }
    }
    // The same person signing in again is a new, unrelated account.
    sign_in(&client, &url, "dora@example.com").await;
    assert_ne!(client.user_id().unwrap(), user_id);
}

#[tokio::test]
async fn a_deletion_interrupted_after_the_server_confirmed_finishes_the_wipe_at_the_next_start() {
    let (server, _dir) = server().await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore { inner: MemorySecureStore::new(), broken: AtomicBool::new(false) });
    let client = new_client(&url, store.clone(), dir.path());
    resident(&client, &url, "erik@example.com", "Erik Eng", "+4794444444").await;
    client.profile().await.unwrap();

    client.request_deletion_code().await.unwrap();
    let code = dev_code(&url, "erik@example.com").await;
    // The phone "crashes" after the server confirmed, while wiping.
    store.broken.store(true, Ordering::SeqCst);
    assert!(client.delete_account(&code).await.is_err());
    drop(client);
    assert!(dir.path().join(porta_core::DB_FILE).exists(), "the crash left the database behind");

    store.broken.store(false, Ordering::SeqCst);
    let client = new_client(&url, store.clone(), dir.path());
    assert!(!client.is_signed_in());
    assert!(store.inner.keys().is_empty(), "left: {:?}", store.inner.keys());
    for (path, bytes) in files_under(dir.path()) {
        for needle in [&b"Erik Eng"[..], b"erik@example.com", b"+4794444444"] {
            assert!(!contains(&bytes, needle), "{} still holds personal data", path.display());
        }
    }
}

async fn grant(url: &str, identifier: &str) {
    let body = serde_json::json!({ "identifier": identifier, "doors": [1, 2] });
    let resp = reqwest::Client::new().post(format!("{url}/v1/dev/grants")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201);
}

/// The device public key this phone enrolled, as the backend lists it in "my data".
async fn device_public_key(client: &Client) -> Vec<u8> {
    let data = client.my_data().await.unwrap();
    let keys = data.categories.iter().find(|c| c.category.contains("device_key")).expect("device keys category");
    let text = keys.items.to_string();
    let b64 = text.split('"').find(|s| s.len() == 44 && s.ends_with('=')).expect("a base64 public key");
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}
