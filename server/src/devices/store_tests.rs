//! The behaviour every [`DeviceStore`](super::store::DeviceStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`device_store_tests!`](crate::device_store_tests).
//!
//! The fixture holds two accounts: `ann` with sessions `ann-old` (signed in at `now - 300`,
//! last seen `now - 60`), `ann-new` (signed in at `now - 200`, last seen `now - 10`),
//! `ann-gone` (revoked) and `ann-spent` (its only refresh token used), each other one with a
//! live refresh token; and `bob` with session `bob-1`.

use super::store::DeviceStore;

pub struct Fixture {
    pub store: Box<dyn DeviceStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

#[macro_export]
macro_rules! device_store_tests {
    ($get_store:ident) => {
        mod device_store_suite {
            use super::$get_store;
            use $crate::devices::store::Enrollment;

            #[tokio::test]
            async fn a_session_has_one_key_and_a_key_one_session() {
                let f = $get_store().await;
                let (key, other) = ([7u8; 32], [8u8; 32]);
                assert_eq!(f.store.enroll_key("ann-new", "ann", key, f.now).await.unwrap(), Enrollment::Enrolled);
                assert_eq!(
                    f.store.enroll_key("ann-new", "ann", key, f.now).await.unwrap(),
                    Enrollment::AlreadyThisKey,
                    "re-enrolling the same key changes nothing"
                );
                assert_eq!(
                    f.store.enroll_key("ann-new", "ann", other, f.now).await.unwrap(),
                    Enrollment::SessionHasOtherKey
                );
                assert_eq!(
                    f.store.enroll_key("bob-1", "bob", key, f.now).await.unwrap(),
                    Enrollment::KeyOfOtherSession
                );
                assert_eq!(f.store.enroll_key("bob-1", "bob", other, f.now).await.unwrap(), Enrollment::Enrolled);
            }

            #[tokio::test]
            async fn active_devices_are_the_accounts_live_sessions_most_recently_seen_first() {
                let f = $get_store().await;
                let devices = f.store.active_devices("ann", f.now).await.unwrap();
                let ids: Vec<_> = devices.iter().map(|d| d.device_id.as_str()).collect();
                assert_eq!(ids, vec!["ann-new", "ann-old"]);
                assert_eq!(devices[0].last_seen_at, f.now - 10);
                assert_eq!(devices[1].created_at, f.now - 300);
                assert!(f.store.active_devices("nobody", f.now).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn revoking_signs_out_only_the_owners_live_device() {
                let f = $get_store().await;
                assert!(!f.store.revoke_device("bob", "ann-new", f.now).await.unwrap(), "not Bob's device");
                assert!(!f.store.revoke_device("ann", "ann-gone", f.now).await.unwrap(), "already revoked");
                assert!(!f.store.revoke_device("ann", "no-such-device", f.now).await.unwrap());
                assert_eq!(f.store.active_devices("ann", f.now).await.unwrap().len(), 2);
                assert!(f.store.revoke_device("ann", "ann-new", f.now).await.unwrap());
                let left = f.store.active_devices("ann", f.now).await.unwrap();
                assert_eq!(left.iter().map(|d| d.device_id.as_str()).collect::<Vec<_>>(), vec!["ann-old"]);
                assert!(!f.store.revoke_device("ann", "ann-new", f.now).await.unwrap(), "revoked once");
                assert_eq!(f.store.active_devices("bob", f.now).await.unwrap().len(), 1);
            }
        }
    };
}
