//! The behaviour every [`PartnerStore`](super::store::PartnerStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`partner_store_tests!`](crate::partner_store_tests).
//!
//! The fixture holds two sites: `site-a` (unit `unit-a` with resident `ann`; door 1, to
//! which `gus`, living nowhere, holds a grant) and `site-b` (resident `bob`, door 2), and
//! events: ann opened door 1 at `now - 100`, bob door 2 at `now - 90`, gus was denied at
//! door 1 at `now - 80`, and ann opened door 1 200 days ago (past its 90-day retention).

use super::store::{PartnerKeyRecord, PartnerStore};

pub struct Fixture {
    pub store: Box<dyn PartnerStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

impl Fixture {
    pub fn key(&self, id: &str, site_id: &str) -> PartnerKeyRecord {
        PartnerKeyRecord {
            id: id.into(),
            site_id: site_id.into(),
            label: format!("Key {id}"),
            created_at: self.now,
            last_used_at: None,
            revoked_at: None,
        }
    }
}

#[macro_export]
macro_rules! partner_store_tests {
    ($get_store:ident) => {
        mod partner_store_suite {
            use super::$get_store;
            use $crate::partner::store::LogQuery;

            #[tokio::test]
            async fn a_key_is_found_by_its_hash_until_revoked_and_only_at_its_site() {
                let f = $get_store().await;
                f.store.create_key(&f.key("k1", "site-a"), "hash-1").await.unwrap();
                assert!(f.store.use_key("hash-2", f.now).await.unwrap().is_none());
                let used = f.store.use_key("hash-1", f.now + 5).await.unwrap().expect("live key");
                assert_eq!((used.id.as_str(), used.site_id.as_str()), ("k1", "site-a"));
                let keys = f.store.keys("site-a").await.unwrap();
                assert_eq!(keys.len(), 1);
                assert_eq!(keys[0].last_used_at, Some(f.now + 5));
                assert!(f.store.keys("site-b").await.unwrap().is_empty());
                assert!(!f.store.revoke_key("site-b", "k1", f.now).await.unwrap(), "not B's key");
                assert!(f.store.use_key("hash-1", f.now).await.unwrap().is_some());
                assert!(f.store.revoke_key("site-a", "k1", f.now + 7).await.unwrap());
                assert!(f.store.revoke_key("site-a", "k1", f.now + 9).await.unwrap());
                assert!(f.store.use_key("hash-1", f.now).await.unwrap().is_none());
                assert_eq!(f.store.keys("site-a").await.unwrap()[0].revoked_at, Some(f.now + 7));
            }

            #[tokio::test]
            async fn the_same_pseudonym_key_is_handed_out_every_time() {
                let f = $get_store().await;
                assert_eq!(f.store.pseudonym_key().await.unwrap(), f.store.pseudonym_key().await.unwrap());
            }

            #[tokio::test]
            async fn people_are_the_sites_residents_and_grant_holders_only() {
                let f = $get_store().await;
                let names = |people: Vec<$crate::partner::store::SitePerson>| {
                    people.into_iter().map(|p| p.name).collect::<Vec<_>>()
                };
                assert_eq!(names(f.store.people("site-a").await.unwrap()), vec!["Ann", "Gus"]);
                assert_eq!(names(f.store.people("site-b").await.unwrap()), vec!["Bob"]);
                assert!(f.store.people("site-c").await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn the_access_log_holds_the_sites_doors_within_retention_newest_first_and_pages() {
                let f = $get_store().await;
                let all = LogQuery { since: None, before: None, limit: 10, now: f.now };
                let events = f.store.access_log("site-a", all).await.unwrap();
                let seen: Vec<_> = events.iter().map(|e| (e.door_id, e.opened, e.user_id.as_deref())).collect();
                assert_eq!(seen, vec![(1, false, Some("gus")), (1, true, Some("ann"))]);
                assert_eq!(events[0].door_name, "A gate");
                let b = f.store.access_log("site-b", all).await.unwrap();
                assert_eq!(b.iter().map(|e| e.user_id.as_deref()).collect::<Vec<_>>(), vec![Some("bob")]);
                let first = f.store.access_log("site-a", LogQuery { limit: 1, ..all }).await.unwrap();
                let next = f
                    .store
                    .access_log("site-a", LogQuery { limit: 1, before: Some(first[0].id), ..all })
                    .await
                    .unwrap();
                assert_eq!(next[0].user_id.as_deref(), Some("ann"));
                let recent = f.store.access_log("site-a", LogQuery { since: Some(f.now - 85), ..all }).await.unwrap();
                assert_eq!(recent.len(), 1);
            }

            #[tokio::test]
            async fn reads_are_counted_per_key() {
                let f = $get_store().await;
                for _ in 0..3 {
                    f.store.count_read("k1", f.now, 60, 3).await.unwrap();
                }
                let err = f.store.count_read("k1", f.now + 10, 60, 3).await.unwrap_err();
                assert_eq!(err.code(), "rate_limited");
                f.store.count_read("k2", f.now + 10, 60, 3).await.unwrap();
                f.store.count_read("k1", f.now + 61, 60, 3).await.unwrap();
            }
        }
    };
}
