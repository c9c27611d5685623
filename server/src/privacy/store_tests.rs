//! The behaviour every [`PrivacyStore`](super::store::PrivacyStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`privacy_store_tests!`](crate::privacy_store_tests).
//!
//! The fixture holds site "Elm House" with unit `u1` "4B" and door 1 "Main" (90-day log
//! retention); resident `ann` (`ann@a.example`, name "Ann", in `u1`) with sessions `s2`
//! (signed in at `now - 20`, "Tablet") and `s1` (at `now - 10`, "Phone"), a grant to door 1
//! and a 3-byte PNG picture; resident `bob` (`bob@a.example`) with nothing. No codes, consents
//! or receipts yet. `auth` is the same backend's [`AuthStore`], to send codes.

use super::store::PrivacyStore;
use crate::auth::store::{AuthStore, CodeLimits};
use crate::auth::CodePurpose;
use crate::identity::Identifier;

pub struct Fixture {
    pub store: Box<dyn PrivacyStore>,
    pub auth: Box<dyn AuthStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

pub const LIMITS: CodeLimits = CodeLimits { ttl_s: 600, max_attempts: 2, per_identifier: 5, per_ip: 50, window_s: 600 };
/// The backup retention the suite passes: receipts say `now + BACKUPS_S`.
pub const BACKUPS_S: i64 = 100;

pub fn who(text: &str) -> Identifier {
    Identifier::parse(text).expect("a valid identifier")
}

impl Fixture {
    /// Sends `code` to `identifier` for `purpose`.
    pub async fn send(&self, identifier: &str, purpose: CodePurpose, code: &str) {
        let ip = "192.0.2.1".parse().unwrap();
        self.auth.issue_code(&who(identifier), purpose, ip, Some(code), self.now, LIMITS).await.unwrap();
    }
}

#[macro_export]
macro_rules! privacy_store_tests {
    ($get_store:ident) => {
        mod privacy_store_suite {
            use super::$get_store;
            use $crate::auth::CodePurpose;
            use $crate::error::ApiError;
            use $crate::privacy::store::{Deletion, Who};
            use $crate::privacy::store_tests::{who, BACKUPS_S, LIMITS};
            use $crate::privacy::DeletionReceipt;

            fn ann() -> Who {
                Who::User("ann".into())
            }

            #[tokio::test]
            async fn personal_data_is_none_without_an_account_and_complete_and_ordered_with_one() {
                let f = $get_store().await;
                assert!(f.store.personal_data("nobody").await.unwrap().is_none());
                assert!(f.store.export("nobody").await.unwrap().is_none());
                f.send("ann@a.example", CodePurpose::SignIn, "111111").await;
                f.store.record_consent("ann", "marketing", true, f.now).await.unwrap();

                let data = f.store.personal_data("ann").await.unwrap().expect("ann's data");
                assert_eq!(data.profile.name, "Ann");
                assert_eq!((data.contact.email.as_deref(), data.contact.phone.as_deref()), (Some("ann@a.example"), None));
                let unit = data.unit.as_ref().expect("a unit");
                assert_eq!((unit.id.as_str(), unit.name.as_str(), unit.site_name.as_str()), ("u1", "4B", "Elm House"));
                let picture = data.picture.as_ref().expect("a picture");
                assert_eq!((picture.content_type.as_str(), picture.size_bytes), ("image/png", 3));
                let sessions: Vec<_> = data.sessions.iter().map(|s| (s.session_id.as_str(), s.device_name.as_str())).collect();
                assert_eq!(sessions, vec![("s2", "Tablet"), ("s1", "Phone")], "oldest sign-in first");
                assert_eq!(data.grants.iter().map(|g| (g.door_id, g.door_name.as_deref())).collect::<Vec<_>>(), vec![(1, Some("Main"))]);
                assert_eq!(data.access_retention.iter().map(|r| (r.door_id, r.retention_days)).collect::<Vec<_>>(), vec![(1, 90)]);
                assert_eq!(data.consent_history.iter().map(|c| (c.purpose.as_str(), c.granted)).collect::<Vec<_>>(), vec![("marketing", true)]);
                assert_eq!(data.pending_codes.iter().map(|c| (c.purpose.as_str(), c.attempts)).collect::<Vec<_>>(), vec![("sign_in", 0)]);
                assert_eq!(data.code_requests, vec![f.now]);
                assert!(data.access_events.is_empty() && data.credentials.is_empty() && data.guest_access.is_none());

                let (exported, file) = f.store.export("ann").await.unwrap().expect("ann's export");
                assert_eq!(exported.sessions.len(), 2);
                let file = file.expect("the picture");
                assert_eq!((file.content_type.as_str(), file.bytes.as_slice()), ("image/png", &[1u8, 2, 3][..]));

                let bob = f.store.personal_data("bob").await.unwrap().expect("bob's data");
                assert!(bob.unit.is_none() && bob.picture.is_none() && bob.sessions.is_empty() && bob.pending_codes.is_empty());
                assert!(f.store.export("bob").await.unwrap().expect("bob's export").1.is_none());
            }

            #[tokio::test]
            async fn the_current_consent_is_the_latest_change_and_history_is_oldest_first() {
                let f = $get_store().await;
                assert!(f.store.consent_history("ann").await.unwrap().is_empty());
                let on = f.store.record_consent("ann", "marketing", true, f.now).await.unwrap();
                assert_eq!((on.granted, on.at), (true, f.now));
                let off = f.store.record_consent("ann", "marketing", false, f.now + 5).await.unwrap();
                assert_eq!((off.granted, off.at), (false, f.now + 5));
                // A change stamped earlier (a clock step back) is history, not the current choice.
                let current = f.store.record_consent("ann", "marketing", true, f.now - 5).await.unwrap();
                assert_eq!((current.granted, current.at), (false, f.now + 5));
                let history: Vec<_> = f.store.consent_history("ann").await.unwrap().iter().map(|c| (c.at, c.granted)).collect();
                assert_eq!(history, vec![(f.now - 5, true), (f.now, true), (f.now + 5, false)]);
                assert!(f.store.consent_history("bob").await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn a_wrong_code_counts_and_keeps_the_account_and_the_right_one_erases_it_once() {
                let f = $get_store().await;
                f.send("ann@a.example", CodePurpose::DeleteAccount, "123456").await;
                let wrong = f.store.confirm_deletion(&ann(), "654321", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(wrong, Deletion::CodeRejected(ApiError::InvalidCode)), "{wrong:?}");
                assert!(f.store.personal_data("ann").await.unwrap().is_some());
                let data = f.store.personal_data("ann").await.unwrap().unwrap();
                assert_eq!(data.pending_codes.iter().map(|c| c.attempts).collect::<Vec<_>>(), vec![1]);

                let done = f.store.confirm_deletion(&ann(), "123456", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                let receipt = DeletionReceipt { deleted_at: f.now, backups_purged_by: f.now + BACKUPS_S };
                assert!(matches!(done, Deletion::Deleted(r) if r == receipt), "{done:?}");
                assert!(f.store.personal_data("ann").await.unwrap().is_none());
                assert!(f.store.contact("ann").await.unwrap().is_none());
                assert!(!f.store.account_exists(&who("ann@a.example")).await.unwrap());
                assert!(f.store.consent_history("ann").await.unwrap().is_empty());
                assert_eq!(f.store.receipt("h1").await.unwrap(), Some(receipt));
                assert_eq!(f.store.receipt("h2").await.unwrap(), None);

                // The page's resubmission gets the receipt; the dead token gets nothing.
                let page = Who::Identifier(who("ann@a.example"));
                let again = f.store.confirm_deletion(&page, "123456", "h1", f.now + 1, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(again, Deletion::AlreadyDeleted(r) if r == receipt), "{again:?}");
                let gone = f.store.confirm_deletion(&ann(), "123456", "h1", f.now + 1, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(gone, Deletion::AccountGone), "{gone:?}");
                assert!(f.store.account_exists(&who("bob@a.example")).await.unwrap(), "only ann is gone");
            }

            #[tokio::test]
            async fn a_taken_request_id_deletes_nothing_and_leaves_the_code_usable() {
                let f = $get_store().await;
                f.send("ann@a.example", CodePurpose::DeleteAccount, "123456").await;
                f.send("bob@a.example", CodePurpose::DeleteAccount, "222222").await;
                let ann = f.store.confirm_deletion(&ann(), "123456", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(ann, Deletion::Deleted(_)), "{ann:?}");
                let bob = Who::Identifier(who("bob@a.example"));
                let taken = f.store.confirm_deletion(&bob, "222222", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(taken, Deletion::RequestIdTaken), "{taken:?}");
                assert!(f.store.account_exists(&who("bob@a.example")).await.unwrap());
                let fresh = f.store.confirm_deletion(&bob, "222222", "h2", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(fresh, Deletion::Deleted(_)), "the code was still pending: {fresh:?}");
                assert!(!f.store.account_exists(&who("bob@a.example")).await.unwrap());
            }

            #[tokio::test]
            async fn codes_die_after_max_attempts_and_other_purposes_or_no_account_never_confirm() {
                let f = $get_store().await;
                let sign_in = "333333";
                f.send("bob@a.example", CodePurpose::SignIn, sign_in).await;
                let bob = Who::User("bob".into());
                let other = f.store.confirm_deletion(&bob, sign_in, "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(other, Deletion::CodeRejected(ApiError::InvalidCode)), "a sign-in code: {other:?}");
                f.send("bob@a.example", CodePurpose::DeleteAccount, "123456").await;
                for _ in 0..LIMITS.max_attempts {
                    let wrong = f.store.confirm_deletion(&bob, "000000", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                    assert!(matches!(wrong, Deletion::CodeRejected(ApiError::InvalidCode)), "{wrong:?}");
                }
                let dead = f.store.confirm_deletion(&bob, "123456", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(dead, Deletion::CodeRejected(ApiError::TooManyAttempts)), "{dead:?}");
                assert!(f.store.account_exists(&who("bob@a.example")).await.unwrap());
                let nobody = Who::Identifier(who("nobody@a.example"));
                let none = f.store.confirm_deletion(&nobody, "123456", "h9", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert!(matches!(none, Deletion::CodeRejected(ApiError::InvalidCode)), "{none:?}");
            }

            #[tokio::test]
            async fn receipts_are_purged_once_their_backups_are_gone() {
                let f = $get_store().await;
                f.send("ann@a.example", CodePurpose::DeleteAccount, "123456").await;
                f.store.confirm_deletion(&ann(), "123456", "h1", f.now, LIMITS, BACKUPS_S).await.unwrap();
                assert_eq!(f.store.purge_receipts(f.now + BACKUPS_S).await.unwrap(), 0);
                assert!(f.store.receipt("h1").await.unwrap().is_some());
                assert_eq!(f.store.purge_receipts(f.now + BACKUPS_S + 1).await.unwrap(), 1);
                assert_eq!(f.store.receipt("h1").await.unwrap(), None);
                f.store.compact().await;
            }
        }
    };
}
