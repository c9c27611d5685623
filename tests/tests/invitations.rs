//! Journey 8 end to end: Ada invites a guest; the guest, with no account, accepts on a phone
//! of their own and opens only the invited door, only inside the window and schedule, with
//! the lock offline and the server gone. Once Ada revokes, the lock refuses as soon as any
//! phone has carried it the new revocations. Real porta-server, real porta-core, simulated
//! locks speaking the real protocol bytes, on clocks the test sets.

use std::sync::Arc;
use std::time::Duration;

use porta_core::simulated::SimulatedTransport;
use porta_core::{
    Client, ClientConfig, DenialReason, Error, InvitationError, ManualClock, MemorySecureStore, NewInvitation,
    ScheduleWindow,
};
use porta_tests::{locks, sign_in, NoProgress, TestServer};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// The demo site's local time is UTC+1.
const SITE_OFFSET: i64 = HOUR;

fn phone(url: &str, dir: &std::path::Path) -> Client {
    phone_on(url, dir, Arc::new(porta_core::SystemClock))
}

fn phone_on(url: &str, dir: &std::path::Path, clock: Arc<dyn porta_core::Clock>) -> Client {
    let mut config = ClientConfig::new(url, dir);
    config.request_timeout = Duration::from_secs(5);
    config.clock = clock;
    Client::new(config, Arc::new(MemorySecureStore::new())).unwrap()
}

/// A weekly schedule of today's weekday (site time), from an hour before `now` to two hours
/// after (cut at midnight), so `now` is inside it and `now` + 3 h is not.
fn around(now: i64) -> ScheduleWindow {
    let local = now + SITE_OFFSET;
    // 1970-01-01 was a Thursday: Monday = 0 is (day + 3) % 7.
    let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7) as u8;
    let minute = (local.rem_euclid(DAY) / 60) as u16;
    ScheduleWindow { days: 1 << weekday, start_minute: minute.saturating_sub(60), end_minute: (minute + 120).min(1440) }
}

#[tokio::test]
async fn a_guest_opens_only_the_invited_door_only_in_its_window_and_schedule_even_offline() {
    let server = TestServer::start().await;
    let url = server.url();
    let now = porta_server::clock::Clock::now(server.clock.as_ref());
    let locks = locks(&url).await;
    let transport = Arc::new(SimulatedTransport::new(locks.clone()));

    let ada_dir = tempfile::tempdir().unwrap();
    let ada = phone(&url, ada_dir.path());
    sign_in(&ada, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    let (start, end) = (now - 60, now + 15 * DAY);
    let mut invitation = NewInvitation::new(vec![1], start, end);
    invitation.schedule = Some(vec![around(now)]);
    invitation.label = Some("cleaner".into());
    let created = ada.create_invitation(invitation).await.unwrap();

    // The guest: a second phone with its own data and secure store, never signed in, on a
    // clock the test sets.
    let guest_dir = tempfile::tempdir().unwrap();
    let guest_clock = ManualClock::new(now);
    let guest = phone_on(&url, guest_dir.path(), Arc::new(guest_clock.clone()));
    assert!(!guest.is_signed_in());
    let accepted = guest.accept_invitation(created.code.expose()).await.unwrap();
    assert!(guest.is_guest());
    assert_eq!((accepted.not_before, accepted.not_after), (start, end));
    // Accepting again from this phone is the same guest.
    assert_eq!(guest.accept_invitation(created.link.expose()).await.unwrap().guest_id, accepted.guest_id);
    let doors = guest.doors().await.unwrap();
    assert_eq!(doors.iter().map(|d| d.door_id).collect::<Vec<_>>(), [1]);
    let access = &doors[0].access[0];
    assert_eq!((access.not_before, access.not_after), (start, end));
    assert_eq!(access.schedule.as_ref().unwrap().windows[0], around(now));

    // A second guest, invited from two hours from now, whose phone's clock runs ahead.
    let later = ada.create_invitation(NewInvitation::new(vec![1], now + 2 * HOUR, now + DAY)).await.unwrap();
    let early_dir = tempfile::tempdir().unwrap();
    let early_clock = ManualClock::new(now);
    let early = phone_on(&url, early_dir.path(), Arc::new(early_clock.clone()));
    early.accept_invitation(later.code.expose()).await.unwrap();
    early_clock.set(now + 2 * HOUR + 60);

    // From here on the server is gone; the lock has no network either.
    server.server.shutdown().await;

    // Each case: who, the phone's clock, the lock's clock. Every refusal is the lock's: the
    // phone's own check passes (its clock says the credential is valid), so a phone with a
    // wrong clock, or a tampered app, gains nothing.
    let inside = now;
    let cases = [
        ("inside the window and schedule", &guest, &guest_clock, inside, inside, Ok(())),
        ("before the window", &early, &early_clock, now + 2 * HOUR + 60, inside, Err(DenialReason::NotYetValid)),
        (
            "outside the schedule",
            &guest,
            &guest_clock,
            inside + 3 * HOUR,
            inside + 3 * HOUR,
            Err(DenialReason::OutsideSchedule),
        ),
        ("after the window", &guest, &guest_clock, inside, end + DAY, Err(DenialReason::Expired)),
    ];
    for (case, who, clock, phone_time, lock_time, expected) in cases {
        clock.set(phone_time);
        locks[0].set_clock(lock_time as u64);
        let result = who.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await;
        match expected {
            Ok(()) => assert!(result.is_ok(), "{case}: {result:?}"),
            Err(reason) => assert!(matches!(&result, Err(Error::Denied(r)) if *r == reason), "{case}: {result:?}"),
        }
    }
    assert_eq!(locks[0].opened_count(), 1, "opened exactly once, inside the schedule");
    // Another door: the guest holds nothing for it, and no lock opens.
    locks[1].set_clock(inside as u64);
    let other = guest.unlock_via(2, transport.clone(), Arc::new(NoProgress)).await;
    assert!(matches!(other, Err(Error::NoAccess)), "{other:?}");
    assert_eq!(locks[1].opened_count(), 0);
}

#[tokio::test]
async fn a_revoked_guest_is_refused_once_a_phone_carries_the_new_revocations_to_the_lock() {
    let server = TestServer::start().await;
    let url = server.url();
    let now = porta_server::clock::Clock::now(server.clock.as_ref());
    let locks = locks(&url).await;
    let transport = Arc::new(SimulatedTransport::new(locks.clone()));
    let ada_dir = tempfile::tempdir().unwrap();
    let ada = phone(&url, ada_dir.path());
    sign_in(&ada, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    ada.doors().await.unwrap();
    let created = ada.create_invitation(NewInvitation::new(vec![1], now - 60, now + 2 * DAY)).await.unwrap();
    let guest_dir = tempfile::tempdir().unwrap();
    let guest = phone(&url, guest_dir.path());
    guest.accept_invitation(created.link.expose()).await.unwrap();
    guest.doors().await.unwrap();
    guest.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    // Its record reaches the server while it still may; from here on the guest's phone is
    // offline (an upload after the revocation would sign it out and wipe its credential).
    guest.upload_access_events().await.unwrap();
    assert_eq!(guest.pending_access_events().unwrap(), 0);

    let listed = ada.invitations().await.unwrap();
    assert_eq!(listed.guests.len(), 1);
    assert_eq!(listed.guests[0].label, None);
    ada.revoke_guest(&listed.guests[0].id).await.unwrap();
    assert!(ada.invitations().await.unwrap().guests.is_empty());
    // The guest's phone is offline and still holds its credential; Ada's next sync and
    // unlock carry the revocation to the lock.
    ada.doors().await.unwrap();
    ada.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await.unwrap();
    let refused = guest.unlock_via(1, transport.clone(), Arc::new(NoProgress)).await;
    assert!(matches!(refused, Err(Error::Denied(DenialReason::Revoked))), "{refused:?}");
    assert_eq!(locks[0].opened_count(), 2, "the guest once before, Ada once");
    // The revoked guest's session is gone too.
    assert!(matches!(guest.doors().await, Err(Error::NotSignedIn)));
}

#[tokio::test]
async fn used_up_expired_and_revoked_invitations_each_get_their_own_error() {
    let server = TestServer::start().await;
    let url = server.url();
    let now = porta_server::clock::Clock::now(server.clock.as_ref());
    let ada_dir = tempfile::tempdir().unwrap();
    let ada = phone(&url, ada_dir.path());
    sign_in(&ada, &url, porta_server::DEMO_RESIDENT_EMAIL).await;
    let once = ada.create_invitation(NewInvitation::new(vec![1], now, now + DAY)).await.unwrap();
    let revoked = ada.create_invitation(NewInvitation::new(vec![2], now, now + 3 * DAY)).await.unwrap();
    ada.revoke_invitation(&revoked.invitation.id).await.unwrap();
    let expiring = ada.create_invitation(NewInvitation::new(vec![3], now, now + 300)).await.unwrap();

    let first_dir = tempfile::tempdir().unwrap();
    phone(&url, first_dir.path()).accept_invitation(once.code.expose()).await.unwrap();
    // Within the 10 minutes a guest's proof may be off from the server's clock.
    server.clock.advance(301);
    let cases = [
        (once.code.expose().to_owned(), InvitationError::UsedUp),
        (revoked.link.expose().to_owned(), InvitationError::Revoked),
        (expiring.link.expose().to_owned(), InvitationError::Expired),
        ("0000-0000-0000-0000-0000-0000-0000-0000-0000-0000".to_owned(), InvitationError::Unknown),
    ];
    for (text, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let late = phone(&url, dir.path());
        let result = late.accept_invitation(&text).await;
        assert!(matches!(&result, Err(Error::Invitation(e)) if *e == expected), "{expected:?}: {result:?}");
        assert!(!late.is_guest() && !late.is_signed_in(), "a refused acceptance leaves no session");
    }
    // Not a door of Ada's, and longer than the site allows.
    let not_hers = ada.create_invitation(NewInvitation::new(vec![99], now, now + DAY)).await;
    assert!(matches!(not_hers, Err(Error::NoAccess)), "{not_hers:?}");
    let too_long = ada.create_invitation(NewInvitation::new(vec![1], now, now + 31 * DAY)).await;
    assert!(matches!(too_long, Err(Error::InvalidInput { field: "window", .. })), "{too_long:?}");
}
