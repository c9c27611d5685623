//! The demo: the whole resident journey so far, on an embedded server with the demo
//! building, in a temporary directory that is removed afterwards.

use std::sync::Arc;

use porta_core::{Client, ClientConfig, MemorySecureStore, Profile, ProfileUpdate, UnlockListener, UnlockProgress};

struct PrintProgress;

impl UnlockListener for PrintProgress {
    fn on_progress(&self, progress: UnlockProgress) {
        let word = match progress {
            UnlockProgress::Searching => "searching",
            UnlockProgress::Connecting => "connecting",
            UnlockProgress::Verifying => "verifying",
            UnlockProgress::Opened => "open",
            UnlockProgress::Denied => "refused",
        };
        println!("    … {word}");
    }
}

/// A time as the terminal app shows it ("today 14:03", "3 Mar 09:00").
fn when(t: i64) -> String {
    crate::show::Clock::system().when(t)
}

pub fn print_profile(p: &Profile) {
    println!("    name:    {}", if p.name.is_empty() { "(not set)" } else { &p.name });
    println!("    email:   {}", p.email.as_deref().unwrap_or("-"));
    println!("    phone:   {}", p.phone.as_deref().unwrap_or("-"));
    match &p.unit {
        Some(u) => println!("    unit:    {} ({:?}, set by the building)", u.name, u.kind),
        None => println!("    unit:    -"),
    }
    println!("    picture: {}", if p.has_picture { "yes" } else { "no" });
    if let Some(pending) = &p.pending_contact {
        println!("    pending: new {:?} {} (waiting for its code)", pending.field, pending.value);
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A tiny valid PNG (1x1, grey), so the demo uploads a real picture.
const AVATAR_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3A, 0x7E, 0x9B, 0x55, 0x00, 0x00, 0x00, 0x0A, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x68, 0x00, 0x00, 0x00, 0x82, 0x00, 0x81, 0x4C, 0x17, 0xD7, 0xDF, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// The operator who runs this server: the only account the server is started with.
const OPERATOR_EMAIL: &str = "operator@demo.porta.app";

/// Signs `who` in to the admin API with a code from the dev outbox.
async fn admin_session(url: &str, who: &str) -> Result<porta_admin::AdminClient, String> {
    porta_admin::AdminClient::request_code(url, who).await.map_err(fail)?;
    let code = dev_code(url, who).await?;
    porta_admin::AdminClient::sign_in_with_code(url, who, &code).await.map_err(fail)
}

/// The demo building as the admin API made it.
struct Building {
    site_id: String,
    locks: Vec<porta_lock::SimulatedLock>,
}

/// Sets the building up from nothing, as a real one is (README, "Running Porta for a
/// building"): the operator creates the site and names its site admin; the site admin adds
/// its units and doors, adds the resident (who is sent a sign-in code), grants the apartment
/// its doors and installs a lock at each door from the lock's own request. No seed data.
async fn set_up_building(url: &str) -> Result<Building, String> {
    let operator = admin_session(url, OPERATOR_EMAIL).await?;
    let site = operator
        .create_site(&porta_admin::NewSite {
            name: "Demo Building".into(),
            address: Some("Storgata 1".into()),
            utc_offset_minutes: Some(60),
            dst_rule: Some(porta_admin::DstRule::Eu),
            max_invitation_days: Some(30),
            tenants_may_invite: Some(true),
        })
        .await
        .map_err(fail)?;
    println!("    the operator created the site {} ({}, UTC+1 with EU summer time)", site.name, site.address);
    operator.grant_site_admin(&site.id, porta_server::DEMO_ADMIN_EMAIL).await.map_err(fail)?;
    println!("    and made {} its site admin", porta_server::DEMO_ADMIN_EMAIL);
    operator.sign_out().await.map_err(fail)?;

    let admin = admin_session(url, porta_server::DEMO_ADMIN_EMAIL).await?;
    let apartment =
        admin.create_unit(&site.id, "Apartment 4B", porta_admin::UnitKind::Apartment).await.map_err(fail)?;
    admin.create_unit(&site.id, "Office 2", porta_admin::UnitKind::Office).await.map_err(fail)?;
    println!("    the site admin added the units {} and Office 2", apartment.name);
    let mut doors = Vec::new();
    for (name, retention_days) in [("Main entrance", 30), ("Bike room", 90), ("Roof terrace", 7)] {
        let door = admin.create_door(&site.id, name, Some(retention_days)).await.map_err(fail)?;
        println!("    door {}: {}, its access log kept {} days", door.door_id, door.name, door.log_retention_days);
        doors.push(door.door_id);
    }
    admin.add_resident(&site.id, &apartment.id, porta_server::DEMO_RESIDENT_EMAIL).await.map_err(fail)?;
    println!("    added {} to {} (she is sent a sign-in code)", porta_server::DEMO_RESIDENT_EMAIL, apartment.name);
    let grant = porta_admin::NewGrant {
        to: porta_admin::Grantee::Unit(apartment.id.clone()),
        doors: doors.clone(),
        not_before: None,
        not_after: None,
        hours: None,
    };
    admin.create_grant(&site.id, &grant).await.map_err(fail)?;
    println!("    granted {} its three doors, with no end date", apartment.name);
    println!("    and installed a lock at each door:");
    let mut locks = Vec::new();
    for door in doors {
        locks.push(install_lock(&admin, &site.id, door).await?);
    }
    admin.sign_out().await.map_err(fail)?;
    Ok(Building { site_id: site.id, locks })
}

/// Installs a lock at `door` as a building does: the lock (simulated here, the app's lock
/// transport) makes its own key and a request signed with it, the admin submits the request
/// for the door, and the lock installs the certificate it gets back. The server never sees the
/// lock's private key.
async fn install_lock(
    admin: &porta_admin::AdminClient,
    site_id: &str,
    door: u32,
) -> Result<porta_lock::SimulatedLock, String> {
    let lock = porta_core::simulated::new_lock();
    let request = porta_core::simulated::provisioning_request_text(&lock);
    let answer = admin.provision_lock(site_id, door, &request, None).await.map_err(fail)?;
    let answer_json = serde_json::to_string(&answer).map_err(fail)?;
    let installed = porta_core::simulated::install_simulated_lock(&lock, &answer_json, 185, 30.0).map_err(fail)?;
    println!(
        "    door {door}: lock {} certified {} from its own request (its key made in the lock)",
        answer.lock_id,
        crate::show::Clock::system().until(answer.not_after as i64)
    );
    Ok(installed)
}

/// The building replaces a door's lock: the phone, once synced, refuses the old one even when
/// it answers under the new lock's id (a stolen lock put back up), and opens the new one.
async fn replaced_lock_journey(
    url: &str,
    site_id: &str,
    client: &Client,
    door: &porta_core::Door,
    old: &porta_lock::SimulatedLock,
) -> Result<(), String> {
    let admin = admin_session(url, porta_server::DEMO_ADMIN_EMAIL).await?;
    let new = install_lock(&admin, site_id, door.door_id).await?;
    admin.sign_out().await.map_err(fail)?;
    client.doors().await.map_err(fail)?;
    println!("    the phone synced: it now knows the {}'s new lock", door.name);
    let opened_before = old.opened_count();
    let impostor = porta_lock::SimulatedLock::new(old.lock().clone(), new.lock_id(), old.params());
    let air = |lock: porta_lock::SimulatedLock| Arc::new(porta_core::simulated::SimulatedTransport::new(vec![lock]));
    match client.unlock_via(door.door_id, air(impostor), Arc::new(PrintProgress)).await {
        Err(_) if old.opened_count() != opened_before => return Err("a replaced lock opened".into()),
        Err(e) => println!("    the old lock: refused ({e}); it stayed shut"),
        Ok(()) => return Err("a replaced lock opened".into()),
    }
    client.unlock_via(door.door_id, air(new.clone()), Arc::new(PrintProgress)).await.map_err(fail)?;
    println!("    the new lock: {} opened", door.name);
    Ok(())
}

async fn dev_code(server: &str, identifier: &str) -> Result<String, String> {
    let body: serde_json::Value = reqwest::get(format!("{server}/v1/dev/outbox/{identifier}"))
        .await
        .map_err(fail)?
        .error_for_status()
        .map_err(fail)?
        .json()
        .await
        .map_err(fail)?;
    body["code"].as_str().map(str::to_owned).ok_or_else(|| "no code in the outbox".into())
}

/// The next Tuesday at `minute` past midnight, site time (the demo site is UTC+1), after `now`.
fn next_tuesday(now: i64, minute: i64) -> i64 {
    const DAY: i64 = 86_400;
    let local = now + SITE_OFFSET_S;
    // 1970-01-01 was a Thursday: with Monday = 0 the weekday is (day + 3) % 7.
    let days_ahead = (1 - (local.div_euclid(DAY) + 3)).rem_euclid(7);
    let mut t = (local.div_euclid(DAY) + days_ahead) * DAY + minute * 60 - SITE_OFFSET_S;
    if t <= now {
        t += 7 * DAY;
    }
    t
}

const SITE_OFFSET_S: i64 = 3_600;

/// Journey 8: Ada invites a guest; the guest, on a phone of their own with no account,
/// opens the invited door on Tuesday morning and nowhere else; Ada revokes, and the lock
/// learns it from the next phone that opens it.
async fn guest_journey(
    url: &str,
    dir: &std::path::Path,
    ada: &Client,
    locks: &[porta_lock::SimulatedLock],
    transport: &Arc<porta_core::simulated::SimulatedTransport>,
) -> Result<(), String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(fail)?.as_secs() as i64;
    let mut invitation = porta_core::NewInvitation::new(vec![1], now - 60, now + 14 * 86_400);
    invitation.schedule =
        Some(vec![porta_core::ScheduleWindow { days: 0b10, start_minute: 9 * 60, end_minute: 12 * 60 }]);
    invitation.label = Some("cleaner".into());
    let created = ada.create_invitation(invitation).await.map_err(fail)?;
    println!("    link for the guest: {}/i/…  (and a typable code of 40 characters)", url);
    let page = reqwest::get(created.link.expose()).await.map_err(fail)?.text().await.map_err(fail)?;
    println!(
        "    the link's page names the building and door: {}",
        page.contains("Demo Building") && page.contains("Main entrance")
    );

    let guest_dir = dir.join("guest-app");
    let mut config = ClientConfig::new(url, guest_dir);
    config.device_name = "Cleaner's phone (demo)".into();
    // The cleaner's phone and the lock go to next Tuesday together; the phone starts today.
    let guest_clock = porta_core::ManualClock::new(now);
    config.clock = Arc::new(guest_clock.clone());
    config.lock_transport = Some(transport.clone());
    let guest = Client::new(config, Arc::new(MemorySecureStore::new())).map_err(fail)?;
    let accepted = guest.accept_invitation(created.code.expose()).await.map_err(fail)?;
    let doors = guest.doors().await.map_err(fail)?;
    println!(
        "    the guest accepted on their own phone with no account (a guest: {}); may open: {}",
        guest.is_guest(),
        doors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
    );
    if let Some(schedule) = &accepted.schedule {
        println!("    valid {schedule} {}", crate::show::Clock::system().until(accepted.not_after));
    }
    let data = guest.my_data().await.map_err(fail)?;
    let contact = data.categories.iter().find(|c| c.category == "contact").map(|c| c.items.to_string());
    println!("    what the building holds about the guest's contact: {}", contact.unwrap_or_default());

    let main = &locks[0];
    let tuesday_10 = next_tuesday(now, 10 * 60);
    let to = |t: i64| {
        guest_clock.set(t);
        main.set_clock(t as u64);
    };
    to(tuesday_10);
    guest.unlock(1, Arc::new(PrintProgress)).await.map_err(fail)?;
    println!("    Tuesday 10:00: the main entrance opened for the guest");
    to(tuesday_10 + 3 * 3600);
    match guest.unlock(1, Arc::new(PrintProgress)).await {
        Err(e) => println!("    Tuesday 13:00: refused: {e}"),
        Ok(()) => return Err("the guest opened outside the schedule".into()),
    }
    match guest.unlock(2, Arc::new(PrintProgress)).await {
        Err(e) => println!("    the bike room: refused: {e}"),
        Ok(()) => return Err("the guest opened a door it was not invited to".into()),
    }

    let guests = ada.invitations().await.map_err(fail)?.guests;
    let cleaner = guests.first().ok_or("Ada sees no guest")?;
    println!("    Ada's guests: {} ({} door(s))", cleaner.label.as_deref().unwrap_or("-"), cleaner.doors.len());
    ada.revoke_guest(&cleaner.id).await.map_err(fail)?;
    // Back to today, when Ada's own (day-long) credential is valid.
    main.clear_clock();
    ada.doors().await.map_err(fail)?;
    ada.unlock(1, Arc::new(PrintProgress)).await.map_err(fail)?;
    println!("    Ada revoked the guest, synced, and opened the main entrance: the lock now knows");
    to(tuesday_10);
    match guest.unlock(1, Arc::new(PrintProgress)).await {
        Err(e) => println!("    Tuesday 10:00 again, the guest's phone offline: refused: {e}"),
        Ok(()) => return Err("a revoked guest opened the door".into()),
    }
    Ok(())
}

pub async fn run() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(fail)?;
    println!("Porta demo: the resident journey on an embedded server and a fresh app install");

    step(1, "Start the reference server with one operator and no building (SQLite in a temporary directory)");
    let mut config = porta_server::Config::new(dir.path().join("server.db"), "127.0.0.1:0".parse().map_err(fail)?);
    config.bootstrap_operators = vec![OPERATOR_EMAIL.into()];
    config.dev_outbox = true;
    let server = porta_server::start(config).await.map_err(fail)?;
    let url = server.url();
    println!("    listening on {url}; sign-in codes are read from its dev outbox");

    step(2, "Set up the building through the admin API, as porta-admin does");
    let Building { site_id, locks } = set_up_building(&url).await?;
    let transport = Arc::new(porta_core::simulated::SimulatedTransport::new(locks.clone()));

    let secure_store = Arc::new(MemorySecureStore::new());
    let app_dir = dir.path().join("app");
    let new_client = || {
        let mut config = ClientConfig::new(url.clone(), app_dir.clone());
        config.device_name = "Ada's phone (demo)".into();
        config.lock_transport = Some(transport.clone());
        Client::new(config, secure_store.clone()).map_err(fail)
    };
    let client = new_client()?;
    let email = porta_server::DEMO_RESIDENT_EMAIL;

    step(3, &format!("Ada opens the app as {email}, with the code the building sent her"));
    let code = dev_code(&url, email).await?;
    println!("    a 6-digit code, sent when the site admin added her (read from the dev outbox)");

    step(4, "A mistyped code is refused");
    let wrong = format!("{:06}", (code.parse::<u32>().map_err(fail)? + 1) % 1_000_000);
    match client.sign_in(email, &wrong).await {
        Err(e) => println!("    refused: {e}"),
        Ok(()) => return Err("a wrong code was accepted".into()),
    }

    step(5, "Sign in with the right code");
    client.sign_in(email, &code).await.map_err(fail)?;
    println!("    signed in; tokens are in the secure store, never in the database");

    step(6, "Show the profile (the unit is set by the building)");
    let profile = client.profile().await.map_err(fail)?;
    print_profile(&profile);

    step(7, "Correct the name and phone number (a new number counts once its code is confirmed)");
    let new_phone = "+4790000042";
    let update = ProfileUpdate { name: Some("Ada Lovelace".into()), phone: Some(new_phone.into()), email: None };
    let profile = client.update_profile(update).await.map_err(fail)?;
    if profile.pending_contact.is_none() {
        return Err("the new phone number is not pending confirmation".into());
    }
    println!("    name changed; a code went to {new_phone} (read from the dev outbox)");
    let code = dev_code(&url, new_phone).await?;
    let profile = client.confirm_contact_change(&code).await.map_err(fail)?;
    print_profile(&profile);

    step(8, "Upload a profile picture and read it back");
    client.set_picture(AVATAR_PNG.to_vec()).await.map_err(fail)?;
    let picture = client.picture().await.map_err(fail)?.ok_or("picture missing")?;
    println!("    picture round trip: {} bytes, identical: {}", picture.len(), picture == AVATAR_PNG);

    step(9, "Restart the app: the session is restored from the secure store");
    drop(client);
    let client = new_client()?;
    println!("    signed in after restart: {}", client.is_signed_in());
    let profile = client.profile().await.map_err(fail)?;
    println!("    hello again, {}", profile.name);

    step(10, "List the doors I may open (credentials are cached for offline use)");
    let doors = client.doors().await.map_err(fail)?;
    for d in &doors {
        let lock = d.lock_id.map_or("no lock".to_owned(), |l| format!("lock {l}"));
        println!("    #{} {:<14} {lock}  log kept {} days", d.door_id, d.name, d.log_retention_days);
    }

    step(11, "Walk up to the main entrance and tap it (simulated lock: BLE MTU 185, 30 ms interval)");
    let main = doors.first().ok_or("no doors")?;
    let started = std::time::Instant::now();
    client.unlock(main.door_id, Arc::new(PrintProgress)).await.map_err(fail)?;
    let lock = locks.iter().find(|l| Some(l.lock_id()) == main.lock_id).ok_or("no lock")?;
    let stats = lock.stats();
    println!(
        "    {} opened: {} round trips, {} bytes up / {} down, {:.0} ms on the simulated air, {:.1} ms wall time here",
        main.name,
        stats.round_trips,
        stats.bytes_up,
        stats.bytes_down,
        stats.virtual_ms,
        started.elapsed().as_secs_f64() * 1000.0
    );

    step(12, "Try the roof terrace from the street: its lock is out of range");
    let roof = doors.iter().find(|d| d.name == "Roof terrace").ok_or("no roof door")?;
    if let Some(l) = locks.iter().find(|l| Some(l.lock_id()) == roof.lock_id) {
        l.set_in_range(false);
    }
    match client.unlock(roof.door_id, Arc::new(PrintProgress)).await {
        Err(e) => println!("    refused: {e}"),
        Ok(()) => return Err("a lock out of range opened".into()),
    }

    step(13, "The building replaces the bike room's lock: the phone refuses the old one after its next sync");
    let bike = doors.iter().find(|d| d.name == "Bike room").ok_or("no bike room")?;
    let old = locks.iter().find(|l| Some(l.lock_id()) == bike.lock_id).ok_or("no bike room lock")?;
    replaced_lock_journey(&url, &site_id, &client, bike, old).await?;

    step(14, "My access log (each lock-signed receipt was uploaded once)");
    let log = client.access_log().await.map_err(fail)?;
    for e in &log.events {
        println!(
            "    {} {} {}",
            if e.opened() { "opened" } else { "denied" },
            e.door_name.as_deref().unwrap_or("(removed door)"),
            when(e.at)
        );
    }
    for r in &log.retention {
        println!("    {} keeps its log {} days", r.door_name, r.retention_days);
    }

    step(15, "Invite a cleaner to the main entrance, Tuesdays 09:00-12:00, for two weeks");
    guest_journey(&url, dir.path(), &client, &locks, &transport).await?;

    step(16, "Sign out: the session, device key and cached data are wiped");
    client.sign_out().await.map_err(fail)?;
    println!(
        "    signed in: {}; secrets left in the secure store: {}",
        client.is_signed_in(),
        secure_store.keys().len()
    );
    match client.profile().await {
        Err(porta_core::Error::NotSignedIn) => println!("    profile now answers: not signed in"),
        other => return Err(format!("expected NotSignedIn after sign-out, got {other:?}")),
    }

    step(17, "Sign in again, and see every piece of personal data the building holds about me");
    client.request_code(email).await.map_err(fail)?;
    client.sign_in(email, &dev_code(&url, email).await?).await.map_err(fail)?;
    let data = client.my_data().await.map_err(fail)?;
    for c in &data.categories {
        println!(
            "    {:<22} purpose: {}; kept: {}; seen by: {}",
            c.category,
            c.purpose,
            c.retention,
            c.visible_to.join(", ")
        );
    }

    step(18, "Export it as one machine-readable file (portability)");
    let export = dir.path().join("my-porta-data.json");
    let size = client.export_my_data(export.clone()).await.map_err(fail)?;
    println!("    wrote {} ({size} bytes, readable only by me)", export.display());

    step(19, "Marketing consent is off until I give it; I give it, then withdraw it");
    let marketing = |c: Vec<porta_core::Consent>| match c.into_iter().find(|c| c.purpose == "marketing") {
        Some(c) if c.granted => "given",
        Some(_) => "not given",
        None => "(not offered)",
    };
    println!("    marketing consent: {}", marketing(client.consents().await.map_err(fail)?));
    client.set_consent("marketing", true).await.map_err(fail)?;
    println!("    after giving it: {}", marketing(client.consents().await.map_err(fail)?));
    client.set_consent("marketing", false).await.map_err(fail)?;
    println!("    after withdrawing it: {}", marketing(client.consents().await.map_err(fail)?));

    step(20, "Delete my account from the app, confirmed with a fresh code");
    client.request_deletion_code().await.map_err(fail)?;
    let receipt = client.delete_account(&dev_code(&url, email).await?).await.map_err(fail)?;
    println!(
        "    deleted {}; backups holding me purged by {} ({} days later)",
        when(receipt.deleted_at),
        crate::show::Clock::system().day(receipt.backups_purged_by),
        (receipt.backups_purged_by - receipt.deleted_at) / 86_400
    );
    let left: Vec<_> = std::fs::read_dir(&app_dir).map_err(fail)?.flatten().map(|e| e.file_name()).collect();
    println!(
        "    signed in: {}; secrets left: {}; files left in the app's data directory: {:?}",
        client.is_signed_in(),
        secure_store.keys().len(),
        left
    );

    server.shutdown().await;
    println!("\nDemo complete.");
    Ok(())
}
