//! The behaviour every [`AccessStore`](super::store::AccessStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`access_store_tests!`](crate::access_store_tests).
//!
//! The fixture holds one site with door 1 "Main" (90-day retention) and door 2 "Roof" (7
//! days); lock 5 (key `[5; 32]`) controls both, lock 6 (key `[6; 32]`) none. `ann` owns
//! credential `[1; 16]` and holds a grant to door 2; `bob` owns credential `[2; 16]` and
//! holds nothing. No events yet.

use super::store::{AccessStore, NewAccessEvent};

pub struct Fixture {
    pub store: Box<dyn AccessStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

/// An event of lock 5 at `door`, naming `credential`.
pub fn event(counter: i64, door: u32, credential: u8, at: i64) -> NewAccessEvent {
    NewAccessEvent {
        lock_id: 5,
        counter,
        door: Some(door),
        credential_id: [credential; 16],
        decision: 0,
        at,
        record: vec![counter as u8; 8],
    }
}

#[macro_export]
macro_rules! access_store_tests {
    ($get_store:ident) => {
        mod access_store_suite {
            use super::$get_store;
            use $crate::access::store_tests::event;

            const DAY: i64 = 86_400;

            #[tokio::test]
            async fn a_records_lock_gives_the_named_door_or_its_first_and_that_doors_retention() {
                let f = $get_store().await;
                let locks = f.store.record_locks(&[(5, 2), (5, 9), (6, 1), (99, 1)]).await.unwrap();
                let seen: Vec<_> = locks.iter().map(|l| l.as_ref().map(|l| (l.door, l.retention_days))).collect();
                assert_eq!(seen, vec![Some((Some(2), 7)), Some((Some(1), 90)), Some((None, 90)), None]);
                assert_eq!(locks[0].as_ref().unwrap().public_key, vec![5; 32]);
                assert_eq!(locks[2].as_ref().unwrap().public_key, vec![6; 32]);
                assert!(f.store.record_locks(&[]).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn events_are_stored_once_and_only_in_their_credential_owners_log() {
                let f = $get_store().await;
                let events = vec![
                    event(1, 1, 1, f.now - 30),
                    event(1, 1, 1, f.now - 30),
                    event(2, 1, 2, f.now - 20),
                    event(3, 1, 7, f.now - 10),
                    event(4, 1, 0, f.now - 5),
                ];
                let stored = f.store.store_events(events, f.now).await.unwrap();
                assert_eq!(stored, vec![true, false, true, true, true]);
                let again = f.store.store_events(vec![event(2, 1, 2, f.now - 20)], f.now).await.unwrap();
                assert_eq!(again, vec![false], "same lock and counter as before");
                let ann = f.store.user_events("ann", f.now, 10).await.unwrap();
                assert_eq!(ann.iter().map(|e| e.at).collect::<Vec<_>>(), vec![f.now - 30]);
                assert_eq!((ann[0].door_id, ann[0].door_name.as_deref()), (Some(1), Some("Main")));
                let bob = f.store.user_events("bob", f.now, 10).await.unwrap();
                assert_eq!(bob.iter().map(|e| e.at).collect::<Vec<_>>(), vec![f.now - 20]);
                assert!(f.store.user_events("nobody", f.now, 10).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn a_users_log_is_newest_first_then_latest_arrived_and_limited() {
                let f = $get_store().await;
                let events = vec![event(1, 1, 1, f.now - 50), event(2, 2, 1, f.now - 10), event(3, 1, 1, f.now - 10)];
                f.store.store_events(events, f.now).await.unwrap();
                let log = f.store.user_events("ann", f.now, 10).await.unwrap();
                let seen: Vec<_> = log.iter().map(|e| (e.at, e.door_id)).collect();
                assert_eq!(seen, vec![(f.now - 10, Some(1)), (f.now - 10, Some(2)), (f.now - 50, Some(1))]);
                assert_eq!(f.store.user_events("ann", f.now, 2).await.unwrap().len(), 2);
            }

            #[tokio::test]
            async fn the_purge_drops_events_past_their_doors_retention_and_the_log_never_shows_them() {
                let f = $get_store().await;
                let old = f.now - 8 * DAY;
                f.store.store_events(vec![event(1, 1, 1, old), event(2, 2, 1, old)], old + 1).await.unwrap();
                let doors = |log: Vec<$crate::access::store::UserAccessEvent>| {
                    log.iter().map(|e| e.door_id).collect::<Vec<_>>()
                };
                // Before the purge runs, the log already leaves out what it will delete.
                let log = f.store.user_events("ann", old + 2, 10).await.unwrap();
                assert_eq!(doors(log), vec![Some(2), Some(1)]);
                let log = f.store.user_events("ann", f.now, 10).await.unwrap();
                assert_eq!(doors(log), vec![Some(1)], "the roof keeps 7 days");
                assert_eq!(f.store.purge_expired(old + 2).await.unwrap(), 0);
                assert_eq!(f.store.purge_expired(f.now).await.unwrap(), 1, "the roof keeps 7 days");
                let log = f.store.user_events("ann", f.now, 10).await.unwrap();
                assert_eq!(doors(log), vec![Some(1)]);
                assert_eq!(f.store.purge_expired(f.now).await.unwrap(), 0, "idempotent");
                assert_eq!(f.store.purge_expired(f.now + 90 * DAY).await.unwrap(), 1, "the main door keeps 90");
            }

            #[tokio::test]
            async fn events_of_no_known_door_are_kept_as_long_as_the_longest_retention() {
                let f = $get_store().await;
                let mut no_door = event(1, 1, 1, f.now - 30 * DAY);
                no_door.door = None;
                let gone_door = event(2, 9, 1, f.now - 30 * DAY);
                f.store.store_events(vec![no_door, gone_door], f.now - 30 * DAY).await.unwrap();
                assert_eq!(f.store.user_events("ann", f.now, 10).await.unwrap().len(), 2, "90 days: the longest");
                assert_eq!(f.store.purge_expired(f.now).await.unwrap(), 0);
                assert!(f.store.user_events("ann", f.now + 61 * DAY, 10).await.unwrap().is_empty());
                assert_eq!(f.store.purge_expired(f.now + 61 * DAY).await.unwrap(), 2);
            }

            #[tokio::test]
            async fn retention_lists_the_doors_of_a_users_grants_and_events() {
                let f = $get_store().await;
                let only_grant = f.store.user_retention("ann").await.unwrap();
                assert_eq!(only_grant.iter().map(|r| (r.door_id, r.retention_days)).collect::<Vec<_>>(), vec![(2, 7)]);
                f.store.store_events(vec![event(1, 1, 1, f.now)], f.now).await.unwrap();
                let both = f.store.user_retention("ann").await.unwrap();
                let seen: Vec<_> = both.iter().map(|r| (r.door_id, r.door_name.as_str(), r.retention_days)).collect();
                assert_eq!(seen, vec![(1, "Main", 90), (2, "Roof", 7)]);
                assert!(f.store.user_retention("bob").await.unwrap().is_empty());
            }
        }
    };
}
