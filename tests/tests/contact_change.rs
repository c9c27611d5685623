//! Changing email or phone through porta-core against the real porta-server: the new address
//! counts only once the code sent to it is confirmed, so nobody can claim an address they do
//! not own and capture its owner's first sign-in.

use std::sync::Arc;
use std::time::Duration;

use porta_core::{Client, ClientConfig, ContactField, Error, MemorySecureStore, ProfileUpdate};
use porta_tests::{dev_code, sign_in};

struct Env {
    server: porta_server::RunningServer,
    _dir: tempfile::TempDir,
}

async fn server() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().unwrap());
    config.dev_outbox = true;
    config.limits.code_requests_per_ip = 10_000;
    let server = porta_server::start(config).await.unwrap();
    Env { server, _dir: dir }
}

fn client(url: &str, dir: &tempfile::TempDir) -> Client {
    let mut config = ClientConfig::new(url, dir.path());
    config.device_name = "e2e".into();
    config.request_timeout = Duration::from_secs(5);
    Client::new(config, Arc::new(MemorySecureStore::new())).unwrap()
}

#[tokio::test]
async fn a_new_email_applies_only_once_its_code_is_confirmed() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&url, &dir);
    sign_in(&client, &url, "before@example.com").await;

    let update = ProfileUpdate { name: Some("Berit".into()), email: Some("after@example.com".into()), phone: None };
    let profile = client.update_profile(update).await.unwrap();
    assert_eq!(profile.name, "Berit");
    assert_eq!(profile.email.as_deref(), Some("before@example.com"));
    let pending = profile.pending_contact.clone().expect("the change waits for its code");
    assert_eq!(pending.field, ContactField::Email);
    assert_eq!(pending.value, "after@example.com");
    // The cached profile says so too, so the app can ask for the code after a restart.
    assert_eq!(client.cached_profile().unwrap().unwrap().pending_contact, Some(pending));

    let code = dev_code(&url, "after@example.com").await;
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert!(matches!(client.confirm_contact_change(&wrong).await, Err(Error::InvalidCode)));
    let profile = client.confirm_contact_change(&code).await.unwrap();
    assert_eq!(profile.email.as_deref(), Some("after@example.com"));
    assert_eq!(profile.pending_contact, None);
    assert_eq!(client.cached_profile().unwrap().unwrap().email.as_deref(), Some("after@example.com"));
    let user_id = client.user_id().unwrap();

    // The new address signs in to the same account.
    let other_dir = tempfile::tempdir().unwrap();
    let again = self::client(&url, &other_dir);
    sign_in(&again, &url, "after@example.com").await;
    assert_eq!(again.user_id().unwrap(), user_id);
}

#[tokio::test]
async fn an_address_only_pending_on_an_account_does_not_sign_in_to_it() {
    let env = server().await;
    let url = env.server.url();
    let (dir_a, dir_v) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let attacker = client(&url, &dir_a);
    sign_in(&attacker, &url, "+4790001111").await;
    let update = ProfileUpdate { email: Some("victim@example.com".into()), ..Default::default() };
    let profile = attacker.update_profile(update).await.unwrap();
    assert_eq!(profile.email, None);

    let victim = client(&url, &dir_v);
    sign_in(&victim, &url, "victim@example.com").await;
    assert_ne!(victim.user_id(), attacker.user_id());
    assert_eq!(victim.profile().await.unwrap().email.as_deref(), Some("victim@example.com"));

    // The code the victim received does not hand the address to the attacker now.
    let code = dev_code(&url, "victim@example.com").await;
    assert!(matches!(attacker.confirm_contact_change(&code).await, Err(Error::InvalidCode)));
    assert_eq!(attacker.profile().await.unwrap().email, None);
}

#[tokio::test]
async fn invisible_characters_in_a_name_are_a_typed_input_error() {
    let env = server().await;
    let url = env.server.url();
    let dir = tempfile::tempdir().unwrap();
    let client = client(&url, &dir);
    sign_in(&client, &url, "spoof@example.com").await;
    let update = ProfileUpdate { name: Some("Admin\u{202E}".into()), ..Default::default() };
    assert!(matches!(client.update_profile(update).await, Err(Error::InvalidInput { field: "name", .. })));

    // A device name that spoofs is refused at sign-in, by field.
    let spoof_dir = tempfile::tempdir().unwrap();
    let mut config = ClientConfig::new(&url, spoof_dir.path());
    config.device_name = "Ada's\u{200B} phone".into();
    let spoofing = Client::new(config, Arc::new(MemorySecureStore::new())).unwrap();
    spoofing.request_code("device@example.com").await.unwrap();
    let code = dev_code(&url, "device@example.com").await;
    let err = spoofing.sign_in("device@example.com", &code).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { field: "device_name", .. }), "{err:?}");
}
