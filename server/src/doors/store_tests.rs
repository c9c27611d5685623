//! The behaviour every [`DoorStore`](super::store::DoorStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`door_store_tests!`](crate::door_store_tests).
//!
//! The fixture holds `site-a` (unit `unit-a`; door 1 "Main" with lock 7, key `[7; 32]`; door
//! 2 "Bike", 30-day retention) and `site-b` (unit `unit-b`, door 3 "Side"). `ann` lives in
//! `unit-a` and holds grants to door 2 (from `now - 100`, no end), door 1 (`now - 100` to
//! `now + 500`) and door 1 again (ended at `now - 1`). Her session `s1` has device key
//! `[9; 32]` and two credentials issued two hours ago: one expired at `now - 10`, one revoked. Session `s2`'s
//! key `[8; 32]` is revoked. `carl` lives in `unit-a` but holds a grant to door 3; `dora`
//! lives in `unit-b`; `bob` lives nowhere and holds nothing.

use super::store::DoorStore;

pub struct Fixture {
    pub store: Box<dyn DoorStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

#[macro_export]
macro_rules! door_store_tests {
    ($get_store:ident) => {
        mod door_store_suite {
            use super::$get_store;
            use $crate::doors::store::{Issuance, Issued, NewCredential};

            fn issuance(
                f: &$crate::doors::store_tests::Fixture,
                grants: Vec<$crate::doors::store::ActiveGrant>,
                id: u8,
                now: i64,
            ) -> Issuance {
                Issuance {
                    site_id: "site-a".into(),
                    user_id: "ann".into(),
                    session_id: "s1".into(),
                    device_key: [9; 32],
                    grants,
                    credentials: vec![NewCredential {
                        id: [id; 16],
                        doors: vec![1, 2],
                        not_before: now - 60,
                        not_after: f.now + 400 + i64::from(id),
                        signed: vec![id; 4],
                    }],
                    limit: 2,
                    window_s: 3600,
                    now,
                }
            }

            #[tokio::test]
            async fn the_device_key_is_the_sessions_unrevoked_one() {
                let f = $get_store().await;
                assert_eq!(f.store.device_key("s1").await.unwrap(), Some([9; 32]));
                assert_eq!(f.store.device_key("s2").await.unwrap(), None);
                assert_eq!(f.store.device_key("nope").await.unwrap(), None);
            }

            #[tokio::test]
            async fn the_site_is_that_of_the_grants_then_the_unit_then_the_first() {
                let f = $get_store().await;
                let site = |user: &'static str| {
                    let store = &f.store;
                    async move { store.site_of(user).await.unwrap().map(|s| (s.id, s.name)) }
                };
                assert_eq!(site("ann").await, Some(("site-a".into(), "A".into())));
                assert_eq!(site("carl").await.unwrap().0, "site-b", "the grant's site wins over the unit's");
                assert_eq!(site("dora").await.unwrap().0, "site-b");
                assert_eq!(site("bob").await.unwrap().0, "site-a");
            }

            #[tokio::test]
            async fn a_snapshot_holds_the_live_grants_by_door_and_only_live_credentials() {
                let f = $get_store().await;
                let snap = f.store.doors_snapshot("ann", "s1", "site-a", f.now).await.unwrap();
                let grants: Vec<_> = snap.grants.iter().map(|g| (g.door_number, g.not_after)).collect();
                assert_eq!(grants, vec![(1, f.now + 500), (2, $crate::demo::FOREVER)]);
                assert!(snap.grants.iter().all(|g| !g.whole_window && g.schedule_json.is_none()));
                let doors: Vec<_> =
                    snap.doors.iter().map(|d| (d.number, d.name.as_str(), d.log_retention_days)).collect();
                assert_eq!(doors, vec![(1, "Main", 90), (2, "Bike", 30)]);
                assert_eq!(snap.doors[0].lock, Some((7, vec![7; 32])));
                assert_eq!(snap.doors[1].lock, None);
                assert!(snap.credentials.is_empty(), "the expired and the revoked one are left out");
                assert!(f.store.doors_snapshot("ann", "s1", "site-b", f.now).await.unwrap().grants.is_empty());

                for (id, now) in [(1, f.now), (3, f.now + 1)] {
                    let grants = f.store.doors_snapshot("ann", "s1", "site-a", now).await.unwrap().grants;
                    assert_eq!(f.store.record_issuance(issuance(&f, grants, id, now)).await.unwrap(), Issued::Recorded);
                }
                let snap = f.store.doors_snapshot("ann", "s1", "site-a", f.now).await.unwrap();
                let ends: Vec<_> = snap.credentials.iter().map(|c| (c.signed[0], c.not_after, c.issued_at)).collect();
                assert_eq!(ends, vec![(3, f.now + 403, f.now + 1), (1, f.now + 401, f.now)], "latest ending first");
                assert!(f.store.doors_snapshot("ann", "s2", "site-a", f.now).await.unwrap().credentials.is_empty());
            }

            #[tokio::test]
            async fn an_issuance_is_recorded_only_while_the_device_and_the_grants_stand() {
                let f = $get_store().await;
                let grants = f.store.doors_snapshot("ann", "s1", "site-a", f.now).await.unwrap().grants;
                let mut stale = grants.clone();
                stale.pop();
                let issued = f.store.record_issuance(issuance(&f, stale, 1, f.now)).await.unwrap();
                assert_eq!(issued, Issued::GrantsChanged);
                let other_key = Issuance { device_key: [8; 32], ..issuance(&f, grants.clone(), 1, f.now) };
                assert_eq!(f.store.record_issuance(other_key).await.unwrap(), Issued::DeviceGone);
                let snap = f.store.doors_snapshot("ann", "s1", "site-a", f.now).await.unwrap();
                assert!(snap.credentials.is_empty(), "nothing was recorded");
                assert_eq!(f.store.record_issuance(issuance(&f, grants, 1, f.now)).await.unwrap(), Issued::Recorded);
                let snap = f.store.doors_snapshot("ann", "s1", "site-a", f.now).await.unwrap();
                assert_eq!(snap.credentials.len(), 1);
                assert_eq!(
                    (snap.credentials[0].signed.clone(), snap.credentials[0].not_before),
                    (vec![1; 4], f.now - 60)
                );
            }

            #[tokio::test]
            async fn issuing_requests_are_limited_per_session_and_window() {
                let f = $get_store().await;
                let at = |now: i64| {
                    let store = &f.store;
                    async move { store.doors_snapshot("ann", "s1", "site-a", now).await.unwrap().grants }
                };
                for (id, now) in [(1, f.now), (2, f.now + 1)] {
                    let issued = f.store.record_issuance(issuance(&f, at(now).await, id, now)).await.unwrap();
                    assert_eq!(issued, Issued::Recorded);
                }
                let limited = f.store.record_issuance(issuance(&f, at(f.now + 2).await, 3, f.now + 2)).await.unwrap();
                assert_eq!(limited, Issued::RateLimited { oldest_at: f.now });
                let snap = f.store.doors_snapshot("ann", "s1", "site-a", f.now + 2).await.unwrap();
                assert_eq!(snap.credentials.len(), 2, "the refused one was not recorded");
                let later =
                    f.store.record_issuance(issuance(&f, at(f.now + 3600).await, 4, f.now + 3600)).await.unwrap();
                assert_eq!(later, Issued::Recorded, "the first issue left the window");
            }

            #[tokio::test]
            async fn dev_grants_are_all_or_nothing_for_one_user_per_identifier() {
                let f = $get_store().await;
                let who = $crate::identity::Identifier::parse("eve@example.com").unwrap();
                let grants = [("g-e1".to_owned(), 3), ("g-e2".to_owned(), 99)];
                assert_eq!(f.store.add_dev_grants(&who, &grants, f.now, f.now + 10, None, f.now).await.unwrap(), None);
                let grants = [("g-e1".to_owned(), 3)];
                let user =
                    f.store.add_dev_grants(&who, &grants, f.now, f.now + 10, None, f.now).await.unwrap().unwrap();
                let site = f.store.site_of(&user).await.unwrap().unwrap();
                assert_eq!(site.id, "site-b");
                let snap = f.store.doors_snapshot(&user, "none", "site-b", f.now).await.unwrap();
                assert_eq!(snap.grants.len(), 1, "only the second call granted: {:?}", snap.grants);
                let grants = [("g-e3".to_owned(), 3)];
                let again =
                    f.store.add_dev_grants(&who, &grants, f.now, f.now + 10, Some("{}".into()), f.now).await.unwrap();
                assert_eq!(again, Some(user));
            }
        }
    };
}
