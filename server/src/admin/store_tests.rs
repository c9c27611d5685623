//! The behaviour every [`AdminStore`](super::store::AdminStore) backend must have, written
//! once. A backend's tests define `async fn get_store() -> Fixture` and invoke
//! [`admin_store_tests!`](crate::admin_store_tests).

use super::store::{AdminStore, GrantRecord, Grantee, UnitRecord};
use crate::identity::Identifier;

/// A fresh store with two empty sites.
pub struct Fixture {
    pub store: Box<dyn AdminStore>,
    /// Keeps the backend's resources (a temporary directory, a database) alive.
    pub _dir: Box<dyn std::any::Any + Send>,
    pub site_a: String,
    pub site_b: String,
    pub now: i64,
}

pub fn who(text: &str) -> Identifier {
    Identifier::parse(text).expect("a valid identifier")
}

impl Fixture {
    pub async fn unit(&self, site_id: &str, id: &str) -> String {
        let unit =
            UnitRecord { id: id.into(), site_id: site_id.into(), name: format!("Unit {id}"), kind: "apartment".into() };
        self.store.create_unit(&unit).await.unwrap();
        unit.id
    }

    pub fn grant(&self, site_id: &str, id: &str, grantee: Grantee, doors: Vec<u32>) -> GrantRecord {
        GrantRecord {
            id: id.into(),
            site_id: site_id.into(),
            grantee,
            doors,
            not_before: self.now,
            not_after: self.now + 86400,
            schedule: None,
            created_at: self.now,
        }
    }
}

#[macro_export]
macro_rules! admin_store_tests {
    ($get_store:ident) => {
        mod admin_store_suite {
            use super::$get_store;
            use $crate::admin::store::{DoorChange, GrantRefused, Grantee, ResidentAdded, Role};
            use $crate::admin::store_tests::who;

            #[tokio::test]
            async fn a_site_admin_role_is_scoped_to_its_site_and_operator_is_global() {
                let f = $get_store().await;
                let admin = f.store.grant_site_admin(&f.site_a, &who("admin@a.example"), f.now).await.unwrap();
                assert_eq!(
                    f.store.roles_of(&admin).await.unwrap(),
                    vec![Role::SiteAdmin { site_id: f.site_a.clone() }]
                );
                assert_eq!(f.store.site_admins(&f.site_a).await.unwrap().len(), 1);
                assert!(f.store.site_admins(&f.site_b).await.unwrap().is_empty());
                assert!(!f.store.revoke_site_admin(&f.site_b, &admin).await.unwrap());
                assert!(f.store.revoke_site_admin(&f.site_a, &admin).await.unwrap());
                assert!(f.store.roles_of(&admin).await.unwrap().is_empty());
                let op = f.store.ensure_operator(&who("op@example.com"), f.now).await.unwrap();
                let again = f.store.ensure_operator(&who("op@example.com"), f.now).await.unwrap();
                assert_eq!(op, again);
                assert_eq!(f.store.roles_of(&op).await.unwrap(), vec![Role::Operator]);
            }

            #[tokio::test]
            async fn ids_of_another_site_reach_nothing() {
                let f = $get_store().await;
                let unit_b = f.unit(&f.site_b, "unit-b").await;
                let door_b = f.store.create_door(&f.site_b, "B door", 30).await.unwrap().number;
                let Some(ResidentAdded::Added { user_id: bob }) =
                    f.store.add_resident(&f.site_b, &unit_b, &who("bob@b.example"), f.now).await.unwrap()
                else {
                    panic!("bob is added at B")
                };
                let grant_b = f.grant(&f.site_b, "grant-b", Grantee::Unit(unit_b.clone()), vec![door_b]);
                assert_eq!(f.store.create_grant(&grant_b).await.unwrap(), Ok(()));

                let a = &f.site_a;
                assert!(!f.store.delete_unit(a, &unit_b, f.now).await.unwrap());
                assert_eq!(f.store.residents(a, &unit_b).await.unwrap(), None);
                assert_eq!(f.store.add_resident(a, &unit_b, &who("eve@a.example"), f.now).await.unwrap(), None);
                assert!(!f.store.remove_resident(a, &unit_b, &bob, f.now).await.unwrap());
                let change = DoorChange { name: Some("mine".into()), log_retention_days: Some(1) };
                assert_eq!(f.store.update_door(a, door_b, &change).await.unwrap(), None);
                assert!(!f.store.delete_door(a, door_b, f.now).await.unwrap());
                assert!(!f.store.revoke_grant(a, "grant-b", f.now).await.unwrap());
                let unit_a = f.unit(a, "unit-a").await;
                let door_a = f.store.create_door(a, "A door", 30).await.unwrap().number;
                let to_b_door = f.grant(a, "g1", Grantee::Unit(unit_a.clone()), vec![door_b]);
                assert_eq!(f.store.create_grant(&to_b_door).await.unwrap(), Err(GrantRefused::UnknownDoor));
                let to_b_unit = f.grant(a, "g2", Grantee::Unit(unit_b.clone()), vec![door_a]);
                assert_eq!(f.store.create_grant(&to_b_unit).await.unwrap(), Err(GrantRefused::GranteeNotFound));
                let to_b_person = f.grant(a, "g3", Grantee::Person(bob.clone()), vec![door_a]);
                assert_eq!(f.store.create_grant(&to_b_person).await.unwrap(), Err(GrantRefused::GranteeNotFound));

                // B is as it was.
                assert_eq!(f.store.units(&f.site_b).await.unwrap().len(), 1);
                assert_eq!(f.store.doors(&f.site_b).await.unwrap()[0].name, "B door");
                assert_eq!(f.store.residents(&f.site_b, &unit_b).await.unwrap().unwrap().len(), 1);
                assert_eq!(f.store.grants(&f.site_b).await.unwrap(), vec![grant_b]);
                assert!(f.store.grants(a).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn a_person_of_another_site_is_not_moved() {
                let f = $get_store().await;
                let unit_a = f.unit(&f.site_a, "unit-a").await;
                let unit_b = f.unit(&f.site_b, "unit-b").await;
                let bob = who("bob@b.example");
                assert!(matches!(
                    f.store.add_resident(&f.site_b, &unit_b, &bob, f.now).await.unwrap(),
                    Some(ResidentAdded::Added { .. })
                ));
                assert_eq!(
                    f.store.add_resident(&f.site_a, &unit_a, &bob, f.now).await.unwrap(),
                    Some(ResidentAdded::Elsewhere)
                );
                assert!(f.store.residents(&f.site_a, &unit_a).await.unwrap().unwrap().is_empty());
                assert_eq!(f.store.residents(&f.site_b, &unit_b).await.unwrap().unwrap().len(), 1);
            }

            #[tokio::test]
            async fn grants_are_listed_until_revoked_and_revoked_once() {
                let f = $get_store().await;
                let unit = f.unit(&f.site_a, "unit-a").await;
                let door = f.store.create_door(&f.site_a, "Main", 30).await.unwrap().number;
                let grant = f.grant(&f.site_a, "g1", Grantee::Unit(unit), vec![door]);
                assert_eq!(f.store.create_grant(&grant).await.unwrap(), Ok(()));
                assert_eq!(f.store.grants(&f.site_a).await.unwrap(), vec![grant]);
                assert!(f.store.revoke_grant(&f.site_a, "g1", f.now).await.unwrap());
                assert!(!f.store.revoke_grant(&f.site_a, "g1", f.now).await.unwrap());
                assert!(f.store.grants(&f.site_a).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn doors_get_unique_numbers_and_their_retention_changes() {
                let f = $get_store().await;
                let a = f.store.create_door(&f.site_a, "A", 90).await.unwrap();
                let b = f.store.create_door(&f.site_b, "B", 90).await.unwrap();
                assert_ne!(a.number, b.number);
                let change = DoorChange { name: None, log_retention_days: Some(7) };
                let changed = f.store.update_door(&f.site_a, a.number, &change).await.unwrap().unwrap();
                assert_eq!((changed.name.as_str(), changed.log_retention_days), ("A", 7));
                let unit = f.unit(&f.site_a, "unit-a").await;
                let other = f.store.create_door(&f.site_a, "Other", 90).await.unwrap().number;
                let both = f.grant(&f.site_a, "g-both", Grantee::Unit(unit.clone()), vec![a.number, other]);
                let only = f.grant(&f.site_a, "g-only", Grantee::Unit(unit.clone()), vec![a.number]);
                assert_eq!(f.store.create_grant(&both).await.unwrap(), Ok(()));
                assert_eq!(f.store.create_grant(&only).await.unwrap(), Ok(()));
                assert!(f.store.delete_door(&f.site_a, a.number, f.now).await.unwrap());
                assert_eq!(f.store.doors(&f.site_a).await.unwrap().len(), 1);
                // Grants keep only the doors that are left, and one with none is gone.
                let grants = f.store.grants(&f.site_a).await.unwrap();
                assert_eq!(
                    grants.iter().map(|g| (g.id.as_str(), g.doors.clone())).collect::<Vec<_>>(),
                    vec![("g-both", vec![other])]
                );
                // A resident added now gets what is left, not the deleted door.
                assert!(matches!(
                    f.store.add_resident(&f.site_a, &unit, &who("new@a.example"), f.now).await.unwrap(),
                    Some(ResidentAdded::Added { .. })
                ));
            }

            #[tokio::test]
            async fn admin_writes_are_counted_per_admin() {
                let f = $get_store().await;
                for _ in 0..3 {
                    f.store.count_write("admin-1", f.now, 600, 3).await.unwrap();
                }
                let err = f.store.count_write("admin-1", f.now + 10, 600, 3).await.unwrap_err();
                assert_eq!(err.code(), "rate_limited");
                f.store.count_write("admin-2", f.now + 10, 600, 3).await.unwrap();
                f.store.count_write("admin-1", f.now + 601, 600, 3).await.unwrap();
            }
        }
    };
}
