//! The sign-in and profile journeys end to end: porta-core against the real porta-server
//! (in-process, on loopback), with real SQLite on both sides.

use std::sync::Arc;
use std::time::Duration;

use porta_core::{Client, ClientConfig, ContactField, Error, MemorySecureStore, ProfileUpdate, SecureStore};
use porta_server::clock::ManualClock;
use porta_tests::{dev_code, sign_in};

struct Env {
    server: porta_server::RunningServer,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn server() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000));
    let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().unwrap());
    config.demo = true;
    config.dev_outbox = true;
    config.limits.code_requests_per_ip = 10_000;
    config.clock = clock.clone();
    let server = porta_server::start(config).await.unwrap();
    Env { server, clock, _dir: dir }
}

fn client_at(url: &str, store: Arc<dyn SecureStore>, dir: &std::path::Path) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.device_name = "e2e".into();
    config.request_timeout = Duration::from_secs(5);
    Client::new(config, store).unwrap()
}

#[tokio::test]
async fn expired_access_token_is_refreshed_once_for_many_concurrent_calls() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    let client = Arc::new(client_at(&url, store.clone(), dir.path()));
    sign_in(&client, &url, "many@example.com").await;
    let before = store.get("porta.session").unwrap().unwrap().to_vec();

    // The server's clock moves past the access token's 15 minutes; the client does not know.
    env.clock.advance(16 * 60);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.profile().await })
        })
        .collect();
    for call in calls {
        // Two refreshes would spend the refresh token twice, which the server treats as
        // theft and answers by revoking the session: every call succeeding proves one refresh.
        assert_eq!(call.await.unwrap().unwrap().email.as_deref(), Some("many@example.com"));
    }
    let after = store.get("porta.session").unwrap().unwrap().to_vec();
    assert_ne!(before, after, "the rotated tokens were saved");
    assert!(client.is_signed_in());
}

#[tokio::test]
async fn a_revoked_session_signs_the_client_out_cleanly() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    let client = client_at(&url, store.clone(), dir.path());
    sign_in(&client, &url, "revoked@example.com").await;
    client.profile().await.unwrap();
    // Refresh tokens live 30 days: past that, the session is gone for good.
    env.clock.advance(31 * 24 * 3600);
    assert!(matches!(client.profile().await, Err(Error::NotSignedIn)));
    assert!(!client.is_signed_in());
    assert!(store.keys().is_empty(), "dead tokens are not kept");
}

#[tokio::test]
async fn session_survives_restart_and_another_user_never_sees_the_cache() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<MemorySecureStore> = Arc::new(MemorySecureStore::new());
    {
        let client = client_at(&url, store.clone(), dir.path());
        sign_in(&client, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
        let p = client.profile().await.unwrap();
        assert_eq!(p.unit.unwrap().name, "Apartment 4B");
    }
    let client = client_at(&url, store.clone(), dir.path());
    assert!(client.is_signed_in());
    assert_eq!(client.cached_profile().unwrap().unwrap().name, "Ada Resident");

    // Someone else signs in on the same phone: Ada's cached profile is gone.
    sign_in(&client, &url, "bob@example.com").await;
    assert!(client.cached_profile().unwrap().is_none());
    let p = client.profile().await.unwrap();
    assert_eq!(p.email.as_deref(), Some("bob@example.com"));
    assert!(p.unit.is_none());
}

#[tokio::test]
async fn profile_is_served_from_cache_when_the_server_is_down() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let client = client_at(&url, Arc::new(MemorySecureStore::new()), dir.path());
    sign_in(&client, &url, "offline@example.com").await;
    let update = ProfileUpdate { name: Some("Offline Olga".into()), ..Default::default() };
    let online = client.update_profile(update).await.unwrap();
    client.set_picture(b"\x89PNG\r\n\x1a\nxx".to_vec()).await.unwrap();
    env.server.shutdown().await;
    assert_eq!(client.profile().await.unwrap(), online);
    assert_eq!(client.picture().await.unwrap().unwrap(), b"\x89PNG\r\n\x1a\nxx");
    // Writes need the server: a clear network error, and the cache is untouched.
    let update = ProfileUpdate { name: Some("Changed".into()), ..Default::default() };
    assert!(matches!(client.update_profile(update).await, Err(Error::Network(_))));
    assert_eq!(client.cached_profile().unwrap().unwrap().name, "Offline Olga");
}

#[tokio::test]
async fn typed_errors_for_codes_and_input() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let client = client_at(&url, Arc::new(MemorySecureStore::new()), dir.path());
    assert!(matches!(client.request_code("nonsense").await, Err(Error::InvalidInput { field: "identifier", .. })));
    client.request_code("codes@example.com").await.unwrap();
    let code = dev_code(&url, "codes@example.com").await;
    env.clock.advance(11 * 60);
    assert!(matches!(client.sign_in("codes@example.com", &code).await, Err(Error::CodeExpired)));
    assert!(matches!(client.profile().await, Err(Error::NotSignedIn)));

    sign_in(&client, &url, "codes@example.com").await;
    sign_in(
        &client_at(&url, Arc::new(MemorySecureStore::new()), tempfile::tempdir().unwrap().path()),
        &url,
        "taken@example.com",
    )
    .await;
    // Someone else's address is only ever pending here (its code goes to its owner, not us),
    // and confirming it fails like a wrong code.
    let update = ProfileUpdate { email: Some("taken@example.com".into()), ..Default::default() };
    let pending = client.update_profile(update).await.unwrap();
    assert_eq!(pending.email.as_deref(), Some("codes@example.com"));
    assert_eq!(pending.pending_contact.as_ref().map(|p| p.field), Some(ContactField::Email));
    let owners_code = dev_code(&url, "taken@example.com").await;
    assert!(matches!(client.confirm_contact_change(&owners_code).await, Err(Error::InvalidCode)));
    assert_eq!(client.profile().await.unwrap().email.as_deref(), Some("codes@example.com"));
    let update = ProfileUpdate { phone: Some("12".into()), ..Default::default() };
    assert!(matches!(client.update_profile(update).await, Err(Error::InvalidInput { field: "phone", .. })));
    assert!(matches!(client.set_picture(b"GIF89a".to_vec()).await, Err(Error::InvalidInput { field: "picture", .. })));
}

/// A server that answers every request with HTTP 200 and a body that is not JSON.
async fn garbage_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let body = "<html>certainly not json</html>";
                let resp =
                    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn garbage_from_the_server_is_a_typed_error_and_loses_nothing() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    {
        let client = client_at(&url, store.clone(), dir.path());
        sign_in(&client, &url, "garbage@example.com").await;
        client.profile().await.unwrap();
    }
    let bad = garbage_server().await;
    let client = client_at(&bad, store.clone(), dir.path());
    assert!(matches!(client.sign_in("garbage@example.com", "123456").await, Err(Error::InvalidResponse(_))));
    assert!(matches!(client.profile().await, Err(Error::InvalidResponse(_))));
    // The session and the cached profile are intact.
    assert!(client.is_signed_in());
    assert_eq!(client.cached_profile().unwrap().unwrap().email.as_deref(), Some("garbage@example.com"));
    let good = client_at(&url, store, dir.path());
    assert_eq!(good.profile().await.unwrap().email.as_deref(), Some("garbage@example.com"));
}

#[tokio::test]
async fn unreadable_stored_session_starts_signed_out_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemorySecureStore::new());
    store.set("porta.session", b"{not json").unwrap();
    let client = client_at("http://127.0.0.1:9", store, dir.path());
    assert!(!client.is_signed_in());
    assert!(matches!(client.profile().await, Err(Error::NotSignedIn)));
    assert!(matches!(client.request_code("a@example.com").await, Err(Error::Network(_))));
}

#[test]
fn dropping_a_client_inside_an_async_runtime_does_not_panic() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let client = client_at("http://127.0.0.1:9", Arc::new(MemorySecureStore::new()), dir.path());
        drop(client);
    });
}
