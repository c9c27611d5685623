//! The admin client against the real in-process server (real HTTP, real SQLite): a building
//! set up from zero by its operator, a site admin kept out of another site, and a session
//! that outlives its access token.

use std::sync::{Arc, Mutex};

use porta_admin::{
    AdminClient, AdminError, DstRule, EventQuery, Grantee, NewGrant, NewSite, ScheduleWindow, Session, UnitKind,
};
use porta_tests::{dev_code, TestServer};

const OPERATOR: &str = "op@porta.example";
const OTHER_ADMIN: &str = "bea-admin@b.example";
const RESIDENT: &str = "carl@elm.example";

async fn server_with_operator() -> TestServer {
    TestServer::start_with(|config| config.bootstrap_operators = vec![OPERATOR.into()]).await
}

async fn sign_in(server: &TestServer, identifier: &str) -> AdminClient {
    AdminClient::request_code(&server.url(), identifier).await.expect("request a code");
    let code = dev_code(&server.url(), identifier).await;
    AdminClient::sign_in_with_code(&server.url(), identifier, &code).await.expect("sign in")
}

#[tokio::test]
async fn an_operator_sets_up_a_building_from_zero_and_the_log_shows_it() {
    let server = server_with_operator().await;
    let op = sign_in(&server, OPERATOR).await;

    let site = op
        .create_site(&NewSite {
            name: "Elm Court".into(),
            address: Some("Elm Street 1".into()),
            utc_offset_minutes: Some(60),
            dst_rule: Some(DstRule::Eu),
            max_invitation_days: Some(14),
            tenants_may_invite: Some(true),
        })
        .await
        .expect("create the site");
    assert_eq!((site.utc_offset_minutes, site.dst_rule, site.max_invitation_days), (60, DstRule::Eu, 14));
    assert!(op.sites().await.unwrap().iter().any(|s| s.id == site.id), "the operator sees the new site");

    let unit = op.create_unit(&site.id, "Flat 1A", UnitKind::Apartment).await.unwrap();
    let door = op.create_door(&site.id, "Front gate", Some(30)).await.unwrap();
    assert_eq!(door.log_retention_days, 30);
    assert_eq!(door.lock_id, None, "a new door has no lock");

    let invited = op.add_resident(&site.id, &unit.id, RESIDENT).await.unwrap();
    assert!(invited.code_expires_in_s > 0);
    // The resident really got a sign-in code.
    assert_eq!(dev_code(&server.url(), RESIDENT).await.len(), 6);
    let residents = op.residents(&site.id, &unit.id).await.unwrap();
    assert_eq!(residents.len(), 1);
    assert_eq!(residents[0].email.as_deref(), Some(RESIDENT));

    let weekdays = ScheduleWindow { days: 0b001_1111, start_minute: 7 * 60, end_minute: 22 * 60 };
    let grant = op
        .create_grant(
            &site.id,
            &NewGrant {
                to: Grantee::Unit(unit.id.clone()),
                doors: vec![door.door_id],
                not_before: None,
                not_after: None,
                hours: Some(vec![weekdays]),
            },
        )
        .await
        .unwrap();
    assert_eq!(grant.unit_id.as_deref(), Some(unit.id.as_str()));
    let schedule = grant.schedule.clone().expect("the grant keeps its hours");
    assert_eq!((schedule.utc_offset_minutes, schedule.windows), (60, vec![weekdays]), "hours in the site's time");
    assert_eq!(op.grants(&site.id).await.unwrap(), vec![grant.clone()]);

    let door = op.set_retention(&site.id, door.door_id, 7).await.unwrap();
    assert_eq!(door.log_retention_days, 7);
    assert_eq!(op.doors(&site.id).await.unwrap(), vec![door.clone()]);

    let log = op.site_security_events(&site.id, &EventQuery::default()).await.unwrap();
    let kinds: Vec<(&str, Option<&str>)> =
        log.events.iter().rev().map(|e| (e.kind.as_str(), e.detail.as_deref())).collect();
    assert_eq!(
        kinds,
        vec![
            ("site_changed", Some("site_created")),
            ("site_changed", Some("unit_created")),
            ("site_changed", Some("door_created")),
            ("resident_added", Some("unit")),
            ("grant_created", Some("unit")),
            ("retention_changed", None),
        ]
    );
    assert_eq!(log.events[0].subject.as_deref(), Some(door.door_id.to_string().as_str()));
    let grants_only = EventQuery { kind: Some("grant_created".into()), ..Default::default() };
    let grants_log = op.site_security_events(&site.id, &grants_only).await.unwrap();
    assert_eq!(grants_log.events.len(), 1);
    assert_eq!(grants_log.events[0].subject.as_deref(), Some(grant.id.as_str()));
    // The whole log (operators) holds the site's events and the sign-ins.
    let all = op.security_events(&EventQuery { limit: Some(200), ..Default::default() }).await.unwrap();
    assert!(all.events.iter().any(|e| e.kind == "sign_in"));
    assert!(all.events.iter().any(|e| e.kind == "retention_changed" && e.site_id.as_deref() == Some(&site.id)));

    op.revoke_grant(&site.id, &grant.id).await.unwrap();
    assert!(op.grants(&site.id).await.unwrap().is_empty());
    assert_eq!(op.revoke_grant(&site.id, &grant.id).await, Err(AdminError::NotFound));

    // Out-of-range input is refused with the field named.
    match op.set_retention(&site.id, door.door_id, 400).await {
        Err(AdminError::Invalid { field, .. }) => assert_eq!(field.as_deref(), Some("log_retention_days")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_site_admin_of_another_site_finds_nothing_here() {
    let server = server_with_operator().await;
    let op = sign_in(&server, OPERATOR).await;
    let demo = sign_in(&server, porta_server::DEMO_ADMIN_EMAIL).await;
    let demo_sites = demo.sites().await.unwrap();
    assert_eq!(demo_sites.len(), 1, "the demo admin administers the demo building only");
    let demo_site = demo_sites[0].id.clone();

    let other = op.create_site(&NewSite { name: "B House".into(), ..Default::default() }).await.unwrap();
    let role = op.grant_site_admin(&other.id, OTHER_ADMIN).await.unwrap();
    assert_eq!(role.role, "site_admin");
    assert!(op.roles(&other.id).await.unwrap().iter().any(|r| r.user_id == role.user_id));
    let b_admin = sign_in(&server, OTHER_ADMIN).await;
    assert_eq!(b_admin.sites().await.unwrap().iter().map(|s| s.id.clone()).collect::<Vec<_>>(), vec![other.id.clone()]);

    // The demo site does not exist as far as B's admin can tell, read or write.
    assert_eq!(b_admin.site(&demo_site).await, Err(AdminError::NotFound));
    assert_eq!(b_admin.doors(&demo_site).await, Err(AdminError::NotFound));
    assert_eq!(b_admin.set_retention(&demo_site, 1, 10).await, Err(AdminError::NotFound));
    assert_eq!(b_admin.lock(&demo_site, 1).await, Err(AdminError::NotFound));
    assert_eq!(demo.units(&other.id).await, Err(AdminError::NotFound));
    // Operator-only actions are refused to site admins.
    assert_eq!(
        b_admin.create_site(&NewSite { name: "Mine".into(), ..Default::default() }).await,
        Err(AdminError::Forbidden)
    );
    assert_eq!(b_admin.security_events(&EventQuery::default()).await, Err(AdminError::Forbidden));
    // The demo building is untouched.
    assert!(demo.doors(&demo_site).await.unwrap().iter().all(|d| d.log_retention_days != 10));

    // Taking the role away ends B admin's access.
    op.revoke_site_admin(&other.id, &role.user_id).await.unwrap();
    assert_eq!(b_admin.sites().await, Err(AdminError::Forbidden));
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_and_the_new_session_reported() {
    let server = TestServer::start().await;
    let saved: Arc<Mutex<Vec<Session>>> = Arc::default();
    let admin = sign_in(&server, porta_server::DEMO_ADMIN_EMAIL).await;
    let first = admin.session();
    let admin = admin.on_session_change({
        let saved = saved.clone();
        move |session| saved.lock().unwrap().push(session.clone())
    });
    let site = admin.sites().await.unwrap()[0].id.clone();
    assert!(saved.lock().unwrap().is_empty(), "no refresh while the token is live");

    // Past the access token's lifetime (Limits::access_ttl_s, 15 minutes).
    server.clock.advance(porta_server::Limits::default().access_ttl_s + 1);
    let doors = admin.doors(&site).await.expect("refreshed and retried");
    assert!(!doors.is_empty());
    let after = admin.session();
    assert_ne!(after.access_token, first.access_token);
    assert_ne!(after.refresh_token, first.refresh_token);
    assert_eq!(*saved.lock().unwrap(), vec![after.clone()], "the rotated session is handed to the caller");

    // The spent refresh token is single-use: a client still holding it is signed out.
    server.clock.advance(porta_server::Limits::default().access_ttl_s + 1);
    let stale = AdminClient::from_session(first);
    assert_eq!(stale.sites().await, Err(AdminError::NotSignedIn));

    // Signing out ends the session at the server.
    let fresh = sign_in(&server, porta_server::DEMO_ADMIN_EMAIL).await;
    fresh.sign_out().await.unwrap();
    assert_eq!(fresh.sites().await, Err(AdminError::NotSignedIn));
}

#[tokio::test]
async fn a_door_gets_a_lock_then_a_replacement_then_none() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use rand::rngs::OsRng;

    let server = TestServer::start().await;
    let admin = sign_in(&server, porta_server::DEMO_ADMIN_EMAIL).await;
    let site = admin.sites().await.unwrap()[0].id.clone();
    let request_text =
        |lock: &porta_lock::NewLock| format!("{}\n", STANDARD.encode(lock.provisioning_request(&mut OsRng).to_bytes()));

    // The harness gave the demo doors their locks already: the new one replaces door 3's.
    let harness_lock = admin.lock(&site, 3).await.expect("door 3 has the harness's lock").lock_id;
    let first = porta_lock::NewLock::generate(&mut OsRng);
    let installed = admin.provision_lock(&site, 3, &request_text(&first), Some(30)).await.expect("provision");
    assert_eq!((installed.door_id, installed.replaced_lock_id), (3, Some(harness_lock)));
    let valid_s = i64::from(installed.not_after) - installed.provisioned_at;
    assert!((29 * 86_400..=31 * 86_400).contains(&valid_s), "valid the days asked for: {valid_s} s");
    let authority: [u8; 32] = STANDARD.decode(&installed.authority_public_key).unwrap().try_into().unwrap();
    first.install(&STANDARD.decode(&installed.certificate).unwrap(), authority).expect("the lock installs it");
    // The door's current lock is the one certified (`replaced_lock_id` belongs to the POST).
    let current = admin.lock(&site, 3).await.unwrap();
    assert_eq!(porta_admin::LockInstalled { replaced_lock_id: installed.replaced_lock_id, ..current }, installed);
    let door = admin.doors(&site).await.unwrap().into_iter().find(|d| d.door_id == 3).unwrap();
    assert_eq!(door.lock_id, Some(installed.lock_id));

    // A key is certified once; a request not signed by its key is refused; so is a bad length.
    assert_eq!(
        admin.provision_lock(&site, 3, &request_text(&first), None).await,
        Err(AdminError::Conflict { code: "lock_key_in_use".into() })
    );
    let mut forged = first.provisioning_request(&mut OsRng).to_bytes();
    *forged.last_mut().unwrap() ^= 1;
    let refused = admin.provision_lock(&site, 3, &STANDARD.encode(forged), None).await;
    assert!(
        matches!(refused, Err(AdminError::Invalid { ref code, .. }) if code == "invalid_lock_request"),
        "{refused:?}"
    );
    assert!(matches!(admin.provision_lock(&site, 3, "AAAA", None).await, Err(AdminError::Invalid { .. })));

    // A new lock replaces the old one, whose certificate is revoked.
    let second = porta_lock::NewLock::generate(&mut OsRng);
    let replacement = admin.provision_lock(&site, 3, &request_text(&second), None).await.unwrap();
    assert_eq!(replacement.replaced_lock_id, Some(installed.lock_id));
    admin.decommission_lock(&site, 3).await.unwrap();
    // The log names the door; the server's detail says why a certificate was revoked.
    let log = admin.site_security_events(&site, &EventQuery::default()).await.unwrap();
    let lock_events: Vec<(&str, Option<&str>, Option<&str>)> = log
        .events
        .iter()
        .rev()
        .filter(|e| e.kind.starts_with("lock_") && e.subject.as_deref() == Some("3"))
        .map(|e| (e.kind.as_str(), e.subject.as_deref(), e.detail.as_deref()))
        .collect();
    assert_eq!(
        lock_events[lock_events.len() - 5..],
        [
            ("lock_revoked", Some("3"), Some("replaced")),
            ("lock_provisioned", Some("3"), None),
            ("lock_revoked", Some("3"), Some("replaced")),
            ("lock_provisioned", Some("3"), None),
            ("lock_revoked", Some("3"), Some("decommissioned")),
        ]
    );
    assert_eq!(admin.lock(&site, 3).await, Err(AdminError::NotFound));
    assert_eq!(admin.decommission_lock(&site, 3).await, Err(AdminError::NotFound));
}
