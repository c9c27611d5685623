//! The behaviour every [`ProfileStore`](super::store::ProfileStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`profile_store_tests!`](crate::profile_store_tests).
//!
//! The fixture holds `ann` (named Ann, email `ann@example.com`, phone `+4790000001`, living
//! in unit `unit-1` "Apartment 4B", an apartment; last changed at 1) and `bob` (email
//! `bob@example.com`).

use super::store::{ContactRequest, PlanChange, ProfileChange, ProfileStore};
use super::ContactField;
use crate::auth::store::CodeLimits;

pub struct Fixture {
    pub store: Box<dyn ProfileStore>,
    /// The same database through a store of its own: what a second server instance has.
    pub other_instance: Box<dyn ProfileStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

pub const LIMITS: CodeLimits = CodeLimits { ttl_s: 600, max_attempts: 2, per_identifier: 2, per_ip: 50, window_s: 600 };

/// A plan that asks to change `field` to `value`, confirmed by `code`.
pub fn change_to(field: ContactField, value: &str, code: &str) -> PlanChange {
    let request = ContactRequest { field, value: value.into(), code: code.into() };
    Box::new(move |_| Ok(ProfileChange { request: Some(request), ..ProfileChange::default() }))
}

impl Fixture {
    pub fn ip(&self) -> std::net::IpAddr {
        "192.0.2.1".parse().unwrap()
    }
}

#[macro_export]
macro_rules! profile_store_tests {
    ($get_store:ident) => {
        mod profile_store_suite {
            use super::$get_store;
            use $crate::error::ApiError;
            use $crate::profile::store::{PictureRecord, ProfileChange, UnitRecord};
            use $crate::profile::store_tests::{change_to, LIMITS};
            use $crate::profile::ContactField;

            #[tokio::test]
            async fn a_profile_is_the_accounts_own_and_none_for_no_account() {
                let f = $get_store().await;
                let ann = f.store.profile("ann", f.now).await.unwrap().expect("Ann's profile");
                assert_eq!((ann.name.as_str(), ann.email.as_deref()), ("Ann", Some("ann@example.com")));
                assert_eq!(ann.phone.as_deref(), Some("+4790000001"));
                let unit = UnitRecord { id: "unit-1".into(), name: "Apartment 4B".into(), kind: "apartment".into() };
                assert_eq!(ann.unit, Some(unit));
                assert!(!ann.has_picture);
                assert!(ann.pending_contact.is_none());
                assert!(f.store.profile("nobody", f.now).await.unwrap().is_none());
                let plan = Box::new(|_: &_| Ok(ProfileChange::default()));
                assert!(f.store.update_profile("nobody", plan, f.ip(), f.now, LIMITS).await.unwrap().is_none());
            }

            #[tokio::test]
            async fn a_contact_change_waits_for_its_code_and_wrong_codes_use_it_up() {
                let f = $get_store().await;
                let plan = change_to(ContactField::Email, "ann.new@example.com", "123456");
                let updated = f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap().unwrap();
                assert!(updated.requested.as_ref().is_some_and(|r| r.code_sendable));
                assert_eq!(updated.profile.email.as_deref(), Some("ann@example.com"), "not before it is confirmed");
                let pending = updated.profile.pending_contact.expect("a pending change");
                assert_eq!((pending.field, pending.value.as_str()), (ContactField::Email, "ann.new@example.com"));
                assert_eq!(pending.expires_at, f.now + LIMITS.ttl_s);

                let wrong = f.store.confirm_contact("ann", "999999", f.now, LIMITS.max_attempts).await;
                assert!(matches!(wrong, Err(ApiError::InvalidCode)));
                let confirmed = f.store.confirm_contact("ann", "123456", f.now, LIMITS.max_attempts).await;
                let confirmed = confirmed.unwrap().expect("Ann's profile");
                assert_eq!(confirmed.email.as_deref(), Some("ann.new@example.com"));
                assert_eq!(confirmed.updated_at, f.now);
                assert!(confirmed.pending_contact.is_none());
                let again = f.store.confirm_contact("ann", "123456", f.now, LIMITS.max_attempts).await;
                assert!(matches!(again, Err(ApiError::InvalidCode)), "a code confirms once");

                let plan = change_to(ContactField::Phone, "+4790000002", "234567");
                f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap();
                for _ in 0..LIMITS.max_attempts {
                    let wrong = f.store.confirm_contact("ann", "999999", f.now, LIMITS.max_attempts).await;
                    assert!(matches!(wrong, Err(ApiError::InvalidCode)));
                }
                let late = f.store.confirm_contact("ann", "234567", f.now, LIMITS.max_attempts).await;
                assert!(matches!(late, Err(ApiError::TooManyAttempts)));
                let profile = f.store.profile("ann", f.now).await.unwrap().unwrap();
                assert_eq!(profile.phone.as_deref(), Some("+4790000001"));
            }

            #[tokio::test]
            async fn another_accounts_address_is_pending_like_any_but_never_confirms() {
                let f = $get_store().await;
                let plan = change_to(ContactField::Email, "bob@example.com", "123456");
                let updated = f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap().unwrap();
                assert!(updated.requested.as_ref().is_some_and(|r| !r.code_sendable), "its code is not sent");
                assert!(updated.profile.pending_contact.is_some());
                let confirm = f.store.confirm_contact("ann", "123456", f.now, LIMITS.max_attempts).await;
                assert!(matches!(confirm, Err(ApiError::InvalidCode)));
                let expired = f.now + LIMITS.ttl_s;
                assert!(f.store.profile("ann", expired).await.unwrap().unwrap().pending_contact.is_none());
            }

            #[tokio::test]
            async fn a_refused_or_rate_limited_update_changes_nothing() {
                let f = $get_store().await;
                let refuse = Box::new(|_: &_| Err(ApiError::ContactChangeConflict));
                let refused = f.store.update_profile("ann", refuse, f.ip(), f.now, LIMITS).await;
                assert!(matches!(refused, Err(ApiError::ContactChangeConflict)));
                for code in ["111111", "222222"] {
                    let plan = change_to(ContactField::Email, "ann.new@example.com", code);
                    f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap();
                }
                let plan = change_to(ContactField::Email, "ann.new@example.com", "333333");
                let limited = f.store.update_profile("ann", plan, f.ip(), f.now + 1, LIMITS).await;
                assert!(matches!(limited, Err(ApiError::RateLimited { .. })));
                let confirm = f.store.confirm_contact("ann", "333333", f.now, LIMITS.max_attempts).await;
                assert!(matches!(confirm, Err(ApiError::InvalidCode)), "the limited request stored no code");

                let plan = Box::new(|current: &$crate::profile::store::ProfileRecord| {
                    assert_eq!(current.name, "Ann", "the plan sees the current profile");
                    Ok(ProfileChange {
                        name: Some("Ann Resident".into()),
                        clear: vec![ContactField::Phone],
                        drop_pending: vec![ContactField::Email],
                        request: None,
                    })
                });
                let updated = f.store.update_profile("ann", plan, f.ip(), f.now + 2, LIMITS).await.unwrap().unwrap();
                assert_eq!(updated.profile.name, "Ann Resident");
                assert_eq!((updated.profile.email.as_deref(), updated.profile.phone), (Some("ann@example.com"), None));
                assert!(updated.profile.pending_contact.is_none() && updated.requested.is_none());
                assert_eq!(updated.profile.updated_at, f.now + 2);
            }

            /// Two confirmations of one code at once, through two instances: exactly one
            /// applies the change, the other finds no pending change.
            #[tokio::test]
            async fn one_code_confirmed_twice_at_once_applies_once() {
                let f = $get_store().await;
                let plan = change_to(ContactField::Email, "ann.new@example.com", "123456");
                f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap();
                let (a, b) = tokio::join!(
                    f.store.confirm_contact("ann", "123456", f.now, LIMITS.max_attempts),
                    f.other_instance.confirm_contact("ann", "123456", f.now, LIMITS.max_attempts),
                );
                let applied = [&a, &b].iter().filter(|r| matches!(r, Ok(Some(p)) if p.email.as_deref() == Some("ann.new@example.com"))).count();
                assert_eq!(applied, 1, "one applies it");
                assert!([&a, &b].iter().any(|r| matches!(r, Err(ApiError::InvalidCode))), "the other finds it used");
                let profile = f.store.profile("ann", f.now).await.unwrap().unwrap();
                assert_eq!(profile.email.as_deref(), Some("ann.new@example.com"));
                assert!(profile.pending_contact.is_none());
            }

            /// Wrong guesses at once, through two instances, each count once: no more than
            /// the allowed attempts are ever checked against the code.
            #[tokio::test]
            async fn wrong_codes_at_once_count_one_attempt_each() {
                let f = $get_store().await;
                let plan = change_to(ContactField::Email, "ann.new@example.com", "123456");
                f.store.update_profile("ann", plan, f.ip(), f.now, LIMITS).await.unwrap();
                let (s, o, max) = (&f.store, &f.other_instance, LIMITS.max_attempts);
                let guesses = tokio::join!(
                    s.confirm_contact("ann", "900001", f.now, max),
                    o.confirm_contact("ann", "900002", f.now, max),
                    s.confirm_contact("ann", "900003", f.now, max),
                    o.confirm_contact("ann", "900004", f.now, max),
                );
                let guesses = [guesses.0, guesses.1, guesses.2, guesses.3];
                let checked = guesses.iter().filter(|g| matches!(g, Err(ApiError::InvalidCode))).count();
                let refused = guesses.iter().filter(|g| matches!(g, Err(ApiError::TooManyAttempts))).count();
                assert_eq!((checked, refused), (max as usize, 4 - max as usize));
                let right = f.other_instance.confirm_contact("ann", "123456", f.now, max).await;
                assert!(matches!(right, Err(ApiError::TooManyAttempts)), "the code is used up");
            }

            /// Two accounts confirming the same new address at once: one gets it; the other's
            /// code is used up like a wrong one would leave it, and its address is unchanged.
            #[tokio::test]
            async fn one_address_confirmed_by_two_accounts_at_once_goes_to_one() {
                let f = $get_store().await;
                for (user, code) in [("ann", "111111"), ("bob", "222222")] {
                    let plan = change_to(ContactField::Email, "shared@example.com", code);
                    let updated = f.store.update_profile(user, plan, f.ip(), f.now, LIMITS).await.unwrap().unwrap();
                    assert!(updated.requested.is_some_and(|r| r.code_sendable), "nobody has it yet");
                }
                let (ann, bob) = tokio::join!(
                    f.store.confirm_contact("ann", "111111", f.now, LIMITS.max_attempts),
                    f.other_instance.confirm_contact("bob", "222222", f.now, LIMITS.max_attempts),
                );
                let (winner, loser, lost) = match (&ann, &bob) {
                    (Ok(Some(_)), Err(ApiError::InvalidCode)) => ("ann", "bob", "bob@example.com"),
                    (Err(ApiError::InvalidCode), Ok(Some(_))) => ("bob", "ann", "ann@example.com"),
                    other => panic!("exactly one gets the address: {other:?}"),
                };
                let winner = f.store.profile(winner, f.now).await.unwrap().unwrap();
                assert_eq!(winner.email.as_deref(), Some("shared@example.com"));
                let loser_profile = f.store.profile(loser, f.now).await.unwrap().unwrap();
                assert_eq!(loser_profile.email.as_deref(), Some(lost));
                assert!(loser_profile.pending_contact.is_none(), "the loser's code was used up");
                let again = f.store.confirm_contact(loser, if loser == "ann" { "111111" } else { "222222" }, f.now, LIMITS.max_attempts).await;
                assert!(matches!(again, Err(ApiError::InvalidCode)));
            }

            #[tokio::test]
            async fn a_picture_is_replaced_and_removed_and_moves_the_profile() {
                let f = $get_store().await;
                assert!(f.store.picture("ann").await.unwrap().is_none());
                assert!(!f.store.delete_picture("ann", f.now).await.unwrap(), "nothing to remove");
                assert_eq!(f.store.profile("ann", f.now).await.unwrap().unwrap().updated_at, 1);
                let png = PictureRecord { content_type: "image/png".into(), bytes: b"\x89PNG\r\n\x1a\n1".to_vec() };
                let jpeg = PictureRecord { content_type: "image/jpeg".into(), bytes: b"\xFF\xD8\xFF2".to_vec() };
                f.store.put_picture("ann", png, f.now).await.unwrap();
                f.store.put_picture("ann", jpeg.clone(), f.now + 1).await.unwrap();
                assert!(f.store.picture("ann").await.unwrap() == Some(jpeg));
                assert!(f.store.picture("bob").await.unwrap().is_none(), "only Ann's");
                let profile = f.store.profile("ann", f.now).await.unwrap().unwrap();
                assert_eq!((profile.has_picture, profile.updated_at), (true, f.now + 1));
                assert!(f.store.delete_picture("ann", f.now + 2).await.unwrap());
                let profile = f.store.profile("ann", f.now).await.unwrap().unwrap();
                assert_eq!((profile.has_picture, profile.updated_at), (false, f.now + 2));
            }
        }
    };
}
