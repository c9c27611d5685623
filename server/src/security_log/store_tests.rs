//! The behaviour every [`SecurityLog`](super::store::SecurityLog) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`security_log_store_tests!`](crate::security_log_store_tests). The fixture's log is empty.

use super::store::SecurityLog;

pub struct Fixture {
    pub store: Box<dyn SecurityLog>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

#[macro_export]
macro_rules! security_log_store_tests {
    ($get_store:ident) => {
        mod security_log_store_suite {
            use super::$get_store;
            use $crate::security_log::{EventFilter, EventKind, NewEvent};

            const DAY: i64 = 86_400;

            fn all(limit: u32) -> EventFilter {
                EventFilter { limit, ..EventFilter::default() }
            }

            #[tokio::test]
            async fn events_come_back_as_recorded_newest_first_and_limited() {
                let f = $get_store().await;
                assert!(f.store.list(&all(10)).await.unwrap().is_empty());
                let first = NewEvent::new(EventKind::SignIn, f.now - 20).actor("ann");
                let second = NewEvent::new(EventKind::GrantCreated, f.now - 10)
                    .site("site-a")
                    .actor("admin")
                    .subject("g1")
                    .detail("unit");
                f.store.record(first).await.unwrap();
                f.store.record(second).await.unwrap();
                let events = f.store.list(&all(10)).await.unwrap();
                assert_eq!(
                    events.iter().map(|e| e.kind).collect::<Vec<_>>(),
                    vec![EventKind::GrantCreated, EventKind::SignIn]
                );
                assert!(events[0].id > events[1].id);
                let e = &events[0];
                assert_eq!(
                    (e.at, e.site_id.as_deref(), e.actor.as_deref(), e.subject.as_deref(), e.detail.as_deref()),
                    (f.now - 10, Some("site-a"), Some("admin"), Some("g1"), Some("unit"))
                );
                assert_eq!((events[1].actor.as_deref(), events[1].site_id.as_deref()), (Some("ann"), None));
                assert_eq!(f.store.list(&all(1)).await.unwrap().len(), 1);
            }

            #[tokio::test]
            async fn the_filter_selects_by_site_kind_time_and_page() {
                let f = $get_store().await;
                for (kind, site, at) in [
                    (EventKind::SignIn, None, f.now - 30),
                    (EventKind::SiteChanged, Some("site-a"), f.now - 20),
                    (EventKind::SiteChanged, Some("site-b"), f.now - 10),
                ] {
                    let event = NewEvent::new(kind, at);
                    f.store
                        .record(match site {
                            Some(site) => event.site(site),
                            None => event,
                        })
                        .await
                        .unwrap();
                }
                let at = |filter: EventFilter| {
                    let store = &f.store;
                    async move { store.list(&filter).await.unwrap().into_iter().map(|e| e.at).collect::<Vec<_>>() }
                };
                assert_eq!(at(EventFilter { site_id: Some("site-a".into()), ..all(10) }).await, vec![f.now - 20]);
                assert_eq!(
                    at(EventFilter { kind: Some(EventKind::SiteChanged), ..all(10) }).await,
                    vec![f.now - 10, f.now - 20]
                );
                assert_eq!(at(EventFilter { since: Some(f.now - 20), ..all(10) }).await, vec![f.now - 10, f.now - 20]);
                let newest = f.store.list(&all(1)).await.unwrap()[0].id;
                assert_eq!(at(EventFilter { before: Some(newest), ..all(10) }).await, vec![f.now - 20, f.now - 30]);
                assert!(at(EventFilter { site_id: Some("site-c".into()), ..all(10) }).await.is_empty());
            }

            #[tokio::test]
            async fn the_purge_drops_only_events_past_retention() {
                let f = $get_store().await;
                f.store.record(NewEvent::new(EventKind::SignIn, f.now - 31 * DAY)).await.unwrap();
                f.store.record(NewEvent::new(EventKind::CodeFailed, f.now - 29 * DAY)).await.unwrap();
                assert_eq!(f.store.purge(f.now, 30).await.unwrap(), 1);
                let left = f.store.list(&all(10)).await.unwrap();
                assert_eq!(left.iter().map(|e| e.kind).collect::<Vec<_>>(), vec![EventKind::CodeFailed]);
                assert_eq!(f.store.purge(f.now, 30).await.unwrap(), 0, "idempotent");
            }
        }
    };
}
