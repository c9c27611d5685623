//! The behaviour every [`AuthorityStore`](super::store::AuthorityStore) backend must have,
//! written once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`authority_store_tests!`](crate::authority_store_tests).
//!
//! The fixture holds `site-a`, whose revocations are: credential `[1; 16]` until `now + 100`
//! (entry 1), device key `[2; 32]` until `now + 1000` (entry 2) and credential `[3; 16]` until
//! `now + 10` (entry 3); and `site-b`, with credential `[4; 16]` until `now + 100` (entry 1).

use super::store::AuthorityStore;

pub struct Fixture {
    pub store: Box<dyn AuthorityStore>,
    /// Keeps the backend's resources alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub now: i64,
}

#[macro_export]
macro_rules! authority_store_tests {
    ($get_store:ident) => {
        mod authority_store_suite {
            use super::$get_store;
            use $crate::authority::store::{RevocationList, Revoked};

            fn seqs(list: &RevocationList) -> Vec<u64> {
                list.entries.iter().map(|e| e.seq).collect()
            }

            #[tokio::test]
            async fn a_site_keeps_one_key_and_an_unknown_site_has_none() {
                let f = $get_store().await;
                let first = f.store.site_key("site-a").await.unwrap().expect("site-a exists");
                let again = f.store.site_key("site-a").await.unwrap().unwrap();
                assert_eq!(first.to_bytes(), again.to_bytes());
                let other = f.store.site_key("site-b").await.unwrap().unwrap();
                assert_ne!(first.to_bytes(), other.to_bytes());
                assert!(f.store.site_key("site-c").await.unwrap().is_none());
            }

            #[tokio::test]
            async fn the_stored_key_is_read_without_making_one() {
                let f = $get_store().await;
                assert_eq!(f.store.stored_site_key("site-a").await.unwrap(), Some(None), "none until first use");
                assert_eq!(f.store.stored_site_key("site-c").await.unwrap(), None, "no such site");
                let made = f.store.site_key("site-a").await.unwrap().unwrap();
                let stored = f.store.stored_site_key("site-a").await.unwrap().flatten().expect("kept");
                assert_eq!(stored.to_bytes(), made.to_bytes());
            }

            #[tokio::test]
            async fn time_sequences_increase_per_site() {
                let f = $get_store().await;
                let a1 = f.store.next_time_sequence("site-a").await.unwrap();
                let a2 = f.store.next_time_sequence("site-a").await.unwrap();
                let b1 = f.store.next_time_sequence("site-b").await.unwrap();
                assert!(a2 > a1);
                assert_eq!(b1, a1, "each site counts its own");
            }

            #[tokio::test]
            async fn revocations_come_in_order_after_the_asked_version() {
                let f = $get_store().await;
                assert_eq!(f.store.revocation_version("site-a").await.unwrap(), 3);
                let all = f.store.revocations_since("site-a", 0, f.now).await.unwrap();
                assert_eq!(all.version, 3);
                assert_eq!(seqs(&all), vec![1, 2, 3]);
                assert!(matches!(&all.entries[0].revoked, Revoked::Credential(c) if c.id == [1; 16]
                    && c.expires == (f.now + 100) as u64));
                assert!(matches!(&all.entries[1].revoked, Revoked::Device(d) if d.key == [2; 32]));
                assert_eq!(seqs(&f.store.revocations_since("site-a", 1, f.now).await.unwrap()), vec![2, 3]);
                let current = f.store.revocations_since("site-a", 3, f.now).await.unwrap();
                assert_eq!((current.version, current.entries.len()), (3, 0));
                let b = f.store.revocations_since("site-b", 0, f.now).await.unwrap();
                assert_eq!((b.version, seqs(&b)), (1, vec![1]));
            }

            #[tokio::test]
            async fn expired_entries_are_dropped_but_the_version_stays() {
                let f = $get_store().await;
                let later = f.store.revocations_since("site-a", 0, f.now + 50).await.unwrap();
                assert_eq!((later.version, seqs(&later)), (3, vec![1, 2]));
                f.store.prune_revocations(f.now + 500).await.unwrap();
                let pruned = f.store.revocations_since("site-a", 0, f.now + 500).await.unwrap();
                assert_eq!((pruned.version, seqs(&pruned)), (3, vec![2]));
                assert!(f.store.revocations_since("site-b", 0, f.now + 500).await.unwrap().entries.is_empty());
            }
        }
    };
}
