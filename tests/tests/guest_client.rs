//! The core's side of guest invitations against the real server: what the guest's phone keeps
//! and forgets, accepting twice, and accepting while signed in. (The lock-side journey is in
//! `invitations.rs`.)

use std::sync::Arc;
use std::time::Duration;

use porta_core::{Client, Error, InvitationError, MemorySecureStore, NewInvitation, ScheduleWindow, SecureStore};
use porta_server::clock::Clock as _;
use porta_tests::{raw_http, sign_in, TestServer};

const DAY: i64 = 24 * 3600;

fn phone(url: &str, store: Arc<MemorySecureStore>, dir: &std::path::Path) -> Client {
    porta_tests::client(url, store, dir, Duration::from_secs(10))
}

async fn ada(server: &TestServer, dir: &std::path::Path) -> Client {
    let client = phone(&server.url(), Arc::new(MemorySecureStore::new()), dir);
    sign_in(&client, &server.url(), "ada@demo.porta.app").await;
    client
}

fn cleaner(now: i64) -> NewInvitation {
    let mut new = NewInvitation::new(vec![1], now, now + 2 * DAY);
    new.schedule = Some(vec![ScheduleWindow { days: 0x7f, start_minute: 0, end_minute: 1440 }]);
    new.label = Some("cleaner".into());
    new
}

fn doors_rows(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join(porta_core::DB_FILE)).unwrap();
    db.query_row("SELECT COUNT(*) FROM doors", [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_session_ends_with_its_window_and_leaves_nothing_on_the_phone() {
    let server = TestServer::start().await;
    let (ada_dir, guest_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ada = ada(&server, ada_dir.path()).await;
    let created = ada.create_invitation(cleaner(server.clock.now())).await.unwrap();

    let store = Arc::new(MemorySecureStore::new());
    let guest = phone(&server.url(), store.clone(), guest_dir.path());
    let accepted = guest.accept_invitation(created.code.expose()).await.unwrap();
    assert!(guest.is_signed_in() && guest.is_guest());
    assert_eq!(accepted.doors.iter().map(|d| d.door_id).collect::<Vec<_>>(), [1]);
    let doors = guest.cached_doors().unwrap();
    assert_eq!(doors.len(), 1, "the doors are synced at accept");
    assert_eq!(doors[0].access[0].not_after, created.invitation.not_after);
    assert!(store.get("porta.session").unwrap().is_some() && store.get("porta.device_key").unwrap().is_some());
    assert!(matches!(guest.profile().await, Err(Error::GuestAccount)));
    assert!(matches!(guest.create_invitation(cleaner(server.clock.now())).await, Err(Error::GuestAccount)));

    // After the window the server refuses the session: the phone forgets it like a sign-out.
    server.clock.advance(2 * DAY + 60);
    assert!(matches!(guest.doors().await, Err(Error::NotSignedIn)));
    assert!(!guest.is_signed_in() && !guest.is_guest());
    assert!(guest.cached_doors().unwrap().is_empty());
    assert_eq!(doors_rows(guest_dir.path()), 0, "the guest's cached doors are deleted, not just hidden");
    assert!(store.get("porta.session").unwrap().is_none(), "no session left");
    assert!(store.get("porta.device_key").unwrap().is_none(), "no device key left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_twice_on_one_phone_is_the_same_guest() {
    let server = TestServer::start().await;
    let (ada_dir, guest_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ada = ada(&server, ada_dir.path()).await;
    let created = ada.create_invitation(cleaner(server.clock.now())).await.unwrap();

    let store = Arc::new(MemorySecureStore::new());
    let guest = phone(&server.url(), store.clone(), guest_dir.path());
    let first = guest.accept_invitation(created.link.expose()).await.unwrap();
    let key = store.get("porta.device_key").unwrap();
    // The same token typed by hand, in lower case with spaces: still the same guest and key.
    let typed = created.code.expose().to_lowercase().replace('-', " ");
    let second = guest.accept_invitation(&typed).await.unwrap();
    assert_eq!(first.guest_id, second.guest_id);
    assert_eq!(store.get("porta.device_key").unwrap(), key);
    assert!(guest.is_guest());
    let sent = ada.invitations().await.unwrap();
    assert_eq!(sent.guests.len(), 1, "one guest, not two");
    assert_eq!(sent.guests[0].label.as_deref(), Some("cleaner"));

    // A second phone finds the single use taken.
    let other = phone(&server.url(), Arc::new(MemorySecureStore::new()), tempfile::tempdir().unwrap().path());
    let refused = other.accept_invitation(created.code.expose()).await.unwrap_err();
    assert!(matches!(refused, Error::Invitation(InvitationError::UsedUp)), "{refused:?}");
    assert!(!other.is_signed_in());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_resident_accepts_onto_the_account() {
    let server = TestServer::start().await;
    let url = server.url();
    let (ada_dir, bob_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ada = ada(&server, ada_dir.path()).await;
    let bob_email = "bob.guestclient@example.com";
    let body = serde_json::json!({ "identifier": bob_email, "doors": [2] }).to_string();
    assert_eq!(raw_http(&url, "POST", "/v1/dev/grants", Some(&body)).await.0, 201);
    let bob = phone(&url, Arc::new(MemorySecureStore::new()), bob_dir.path());
    sign_in(&bob, &url, bob_email).await;
    let user_id = bob.user_id();

    let created = ada.create_invitation(cleaner(server.clock.now())).await.unwrap();
    let preview = bob.invitation_preview(created.link.expose()).await.unwrap();
    assert_eq!(preview.uses_left, 1);
    bob.accept_invitation(created.code.expose()).await.unwrap();
    assert!(!bob.is_guest(), "still a resident");
    assert_eq!(bob.user_id(), user_id);
    let mut doors: Vec<u32> = bob.cached_doors().unwrap().iter().map(|d| d.door_id).collect();
    doors.sort_unstable();
    assert_eq!(doors, [1, 2], "the invited door joins the account's own");
    assert!(ada.invitations().await.unwrap().guests[0].has_account);

    // Gone once used: a typed error, and the token is in no error text.
    let e = bob.invitation_preview(created.code.expose()).await.unwrap_err();
    assert!(matches!(e, Error::Invitation(InvitationError::UsedUp)), "{e:?}");
    let token: String = created.code.expose().chars().filter(|c| *c != '-').collect();
    assert!(!format!("{e} {e:?}").contains(&token[..8]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_keeps_its_access_when_a_second_invitation_is_refused() {
    let server = TestServer::start().await;
    let (ada_dir, guest_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ada = ada(&server, ada_dir.path()).await;
    let first = ada.create_invitation(cleaner(server.clock.now())).await.unwrap();
    let mut other = cleaner(server.clock.now());
    other.doors = vec![2];
    let second = ada.create_invitation(other).await.unwrap();

    let guest = phone(&server.url(), Arc::new(MemorySecureStore::new()), guest_dir.path());
    guest.accept_invitation(first.code.expose()).await.unwrap();
    let refused = guest.accept_invitation(second.code.expose()).await.unwrap_err();
    assert!(matches!(refused, Error::GuestAccount), "{refused:?}");
    assert!(guest.is_guest());
    let doors: Vec<u32> = guest.doors().await.unwrap().iter().map(|d| d.door_id).collect();
    assert_eq!(doors, [1], "the first invitation still works");
}

/// The guest's `POST /v1/guests` reached the server but its answer was lost: accepting again
/// is the same guest with the same key, and takes no second use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_whose_answer_was_lost_is_the_same_guest_when_tried_again() {
    let server = TestServer::start().await;
    let proxy = porta_tests::proxy::FaultProxy::start(&server.url()).await;
    let (ada_dir, guest_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ada = ada(&server, ada_dir.path()).await;
    let mut invitation = cleaner(server.clock.now());
    invitation.uses = 2;
    let created = ada.create_invitation(invitation).await.unwrap();

    let guest = phone(proxy.url(), Arc::new(MemorySecureStore::new()), guest_dir.path());
    proxy.times("POST", "/v1/guests", porta_tests::proxy::Fault::DropResponse, 1);
    let lost = guest.accept_invitation(created.code.expose()).await.unwrap_err();
    assert!(matches!(lost, Error::Network(_)), "{lost:?}");
    assert!(!guest.is_signed_in());
    guest.accept_invitation(created.code.expose()).await.unwrap();
    assert!(guest.is_guest());

    let sent = ada.invitations().await.unwrap();
    assert_eq!(sent.guests.len(), 1, "one guest, not two");
    assert_eq!(sent.invitations.iter().find(|i| i.id == created.invitation.id).unwrap().uses_left, 1);
}
