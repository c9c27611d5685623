//! The behaviour every [`InvitationStore`](super::store::InvitationStore) backend must have,
//! written once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`invitation_store_tests!`](crate::invitation_store_tests).

use super::store::{AcceptOutcome, Acceptor, Insert, InvitationRecord, InvitationStore, TenantCaps};

/// Caps no test reaches unless it means to.
pub const GENEROUS: TenantCaps = TenantCaps { per_day: 1000, guests: 10_000 };

/// A fresh store on a site with doors 1-3: `tenant` holds all three, `other_tenant` door 1,
/// `resident` none.
pub struct Fixture {
    pub store: Box<dyn InvitationStore>,
    /// Keeps the backend's resources (a temporary directory, a database) alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub site_id: String,
    pub tenant: String,
    pub other_tenant: String,
    pub resident: String,
    pub now: i64,
}

impl Fixture {
    pub fn invitation(&self, id: &str, uses: u32) -> InvitationRecord {
        InvitationRecord {
            id: id.into(),
            site_id: self.site_id.clone(),
            tenant_id: self.tenant.clone(),
            label: Some("cleaner".into()),
            doors: vec![1],
            not_before: self.now,
            not_after: self.now + 7 * 86400,
            schedule: None,
            uses,
            uses_left: uses,
            created_at: self.now,
            revoked_at: None,
        }
    }

    /// Stores `inv` under `hash`, within [`GENEROUS`] caps.
    pub async fn insert(&self, inv: &InvitationRecord, hash: &str) {
        assert_eq!(self.store.insert(inv, hash, GENEROUS).await.unwrap(), Insert::Inserted);
    }

    /// What storing `inv` under `hash` within `caps` did.
    pub async fn insert_within(&self, inv: InvitationRecord, hash: &'static str, caps: TenantCaps) -> Insert {
        self.store.insert(&inv, hash, caps).await.unwrap()
    }

    pub fn new_guest(&self, key_byte: u8) -> Acceptor {
        Acceptor::NewGuest { device_key: [key_byte; 32], device_name: "Guest phone".into(), ip: "127.0.0.1".into() }
    }

    pub async fn accept(&self, hash: &str, tag: &str, acceptor: Acceptor) -> AcceptOutcome {
        self.store.accept(hash, tag, acceptor, self.now + 60).await.unwrap()
    }
}

pub fn accepted(outcome: AcceptOutcome) -> (super::store::GuestRecord, Option<String>, bool) {
    match outcome {
        AcceptOutcome::Accepted { guest, session_id, repeated } => (guest, session_id, repeated),
        other => panic!("expected an acceptance, got {other:?}"),
    }
}

#[macro_export]
macro_rules! invitation_store_tests {
    ($get_store:ident) => {
        mod invitation_store_suite {
            use super::$get_store;
            use $crate::invitations::store::{AcceptOutcome, Acceptor, Insert, TenantCaps};
            use $crate::invitations::store_tests::accepted;

            #[tokio::test]
            async fn an_invitation_is_found_by_its_hash_and_listed_only_for_its_tenant() {
                let f = $get_store().await;
                let inv = f.invitation("inv-1", 1);
                f.insert(&inv, "hash-1").await;
                assert_eq!(f.store.find("hash-1").await.unwrap(), Some(inv.clone()));
                assert_eq!(f.store.find("hash-2").await.unwrap(), None);
                assert_eq!(f.store.list(&f.tenant).await.unwrap().0, vec![inv]);
                assert!(f.store.list(&f.other_tenant).await.unwrap().0.is_empty());
            }

            #[tokio::test]
            async fn a_tenant_creates_at_most_the_daily_cap_and_used_up_ones_count() {
                let f = $get_store().await;
                let caps = TenantCaps { per_day: 2, guests: 100 };
                for (id, hash) in [("inv-1", "hash-1"), ("inv-2", "hash-2")] {
                    assert_eq!(f.store.insert(&f.invitation(id, 1), hash, caps).await.unwrap(), Insert::Inserted);
                }
                accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert_eq!(f.store.find("hash-1").await.unwrap(), None, "used up: its row is gone");
                let third = f.invitation("inv-3", 1);
                assert_eq!(f.store.insert(&third, "hash-3", caps).await.unwrap(), Insert::DailyCapReached);
                assert_eq!(f.store.find("hash-3").await.unwrap(), None, "a refused invitation is not stored");
                let mut other = f.invitation("inv-4", 1);
                other.tenant_id = f.other_tenant.clone();
                assert_eq!(f.store.insert(&other, "hash-4", caps).await.unwrap(), Insert::Inserted, "per tenant");
                let mut next_day = f.invitation("inv-5", 1);
                next_day.created_at = f.now + 86400;
                assert_eq!(f.store.insert(&next_day, "hash-5", caps).await.unwrap(), Insert::Inserted);
            }

            #[tokio::test]
            async fn the_last_use_deletes_the_row_and_its_hash_and_the_guest_stays_listed() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 2), "hash-1").await;
                let (first, session, repeated) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert!(session.is_some() && !repeated && !first.has_account);
                assert_eq!(f.store.find("hash-1").await.unwrap().unwrap().uses_left, 1);
                let (second, _, _) = accepted(f.accept("hash-1", "tag-b", f.new_guest(2)).await);
                assert_ne!(first.user_id, second.user_id);
                assert_eq!(f.store.find("hash-1").await.unwrap(), None);
                assert_eq!(f.accept("hash-1", "tag-c", f.new_guest(3)).await, AcceptOutcome::Gone);
                let (invitations, guests) = f.store.list(&f.tenant).await.unwrap();
                assert!(invitations.is_empty());
                assert_eq!(guests.len(), 2);
                assert!(guests.iter().all(|g| g.label.as_deref() == Some("cleaner") && g.doors == vec![1]));
            }

            #[tokio::test]
            async fn accepting_again_with_the_same_tag_takes_no_second_use() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 2), "hash-1").await;
                let (first, s1, _) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                let (again, s2, repeated) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert!(repeated);
                assert_eq!((first.id, s1), (again.id, s2));
                assert_eq!(f.store.find("hash-1").await.unwrap().unwrap().uses_left, 1);
            }

            #[tokio::test]
            async fn a_new_guest_is_a_guest_principal_and_an_account_stays_a_resident() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 2), "hash-1").await;
                let (guest, _, _) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert!(f.store.is_guest(&guest.user_id).await.unwrap());
                assert_eq!(f.store.guest_access_of(&guest.user_id).await.unwrap().unwrap().id, guest.id);
                let account = Acceptor::Account { user_id: f.resident.clone() };
                let (resident, session, _) = accepted(f.accept("hash-1", "tag-r", account).await);
                assert!(resident.has_account && session.is_none());
                assert!(!f.store.is_guest(&f.resident).await.unwrap());
                assert_eq!(f.store.guest_access_of(&f.resident).await.unwrap(), None);
                // Invited doors are not the resident's own: they cannot pass them on.
                assert!(f.store.tenant_grants(&f.resident, &f.site_id).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn open_uses_and_live_guests_count_towards_the_tenants_cap() {
                let f = $get_store().await;
                let caps = TenantCaps { per_day: 100, guests: 4 };
                let insert = |inv, hash| f.insert_within(inv, hash, caps);
                assert_eq!(insert(f.invitation("inv-1", 3), "hash-1").await, Insert::Inserted);
                assert_eq!(insert(f.invitation("inv-2", 2), "hash-2").await, Insert::GuestCapReached, "3 + 2 > 4");
                assert_eq!(f.store.find("hash-2").await.unwrap(), None, "a refused invitation is not stored");
                accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                let mut one = f.invitation("inv-3", 1);
                one.created_at = f.now + 60;
                assert_eq!(insert(one, "hash-3").await, Insert::Inserted, "2 open and 1 guest, + 1");
                let mut another = f.invitation("inv-4", 1);
                another.created_at = f.now + 60;
                assert_eq!(insert(another.clone(), "hash-4").await, Insert::GuestCapReached);
                assert!(f.store.revoke_invitation(&f.tenant, "inv-3", f.now + 61).await.unwrap());
                another.created_at = f.now + 62;
                assert_eq!(insert(another, "hash-4").await, Insert::Inserted, "a revoked one's uses are not open");
                let mut others = f.invitation("inv-5", 4);
                others.tenant_id = f.other_tenant.clone();
                assert_eq!(insert(others, "hash-5").await, Insert::Inserted, "per tenant");
                let mut after = f.invitation("inv-6", 4);
                after.created_at = f.now + 8 * 86400;
                after.not_after = after.created_at + 86400;
                assert_eq!(insert(after, "hash-6").await, Insert::Inserted, "all ended");
            }

            #[tokio::test]
            async fn a_device_key_of_another_session_is_refused() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 2), "hash-1").await;
                accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                let err = f.store.accept("hash-1", "tag-b", f.new_guest(1), f.now + 60).await.unwrap_err();
                assert_eq!(err.code(), "key_in_use");
                assert_eq!(f.store.find("hash-1").await.unwrap().unwrap().uses_left, 1);
            }

            #[tokio::test]
            async fn revoking_keeps_the_row_to_say_so_and_removes_its_guests() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 3), "hash-1").await;
                let (guest, _, _) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert!(!f.store.revoke_invitation(&f.other_tenant, "inv-1", f.now + 90).await.unwrap());
                assert!(f.store.revoke_invitation(&f.tenant, "inv-1", f.now + 90).await.unwrap());
                assert_eq!(f.accept("hash-1", "tag-b", f.new_guest(2)).await, AcceptOutcome::Revoked);
                assert!(f.store.list(&f.tenant).await.unwrap().1.is_empty());
                assert!(!f.store.is_guest(&guest.user_id).await.unwrap(), "the guest principal is gone");
            }

            #[tokio::test]
            async fn only_the_tenant_revokes_a_guest() {
                let f = $get_store().await;
                f.insert(&f.invitation("inv-1", 1), "hash-1").await;
                let (guest, _, _) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                assert!(!f.store.revoke_guest(&f.other_tenant, &guest.id, f.now + 90).await.unwrap());
                assert!(f.store.is_guest(&guest.user_id).await.unwrap());
                assert!(f.store.revoke_guest(&f.tenant, &guest.id, f.now + 90).await.unwrap());
                assert!(!f.store.is_guest(&guest.user_id).await.unwrap());
                assert!(!f.store.revoke_guest(&f.tenant, &guest.id, f.now + 91).await.unwrap());
            }

            #[tokio::test]
            async fn an_ended_window_expires_the_invitation_and_the_purge_removes_it_and_its_guests() {
                let f = $get_store().await;
                let inv = f.invitation("inv-1", 2);
                let end = inv.not_after;
                f.insert(&inv, "hash-1").await;
                let (guest, _, _) = accepted(f.accept("hash-1", "tag-a", f.new_guest(1)).await);
                let outcome = f.store.accept("hash-1", "tag-b", f.new_guest(2), end + 1).await.unwrap();
                assert_eq!(outcome, AcceptOutcome::Expired);
                let purged = f.store.purge(end + 1).await.unwrap();
                assert_eq!((purged.invitations, purged.guests), (1, 1));
                assert_eq!(f.store.find("hash-1").await.unwrap(), None);
                assert!(!f.store.is_guest(&guest.user_id).await.unwrap());
                assert_eq!(f.store.list(&f.tenant).await.unwrap(), (vec![], vec![]));
            }
        }
    };
}
