//! One test (or more) per required protocol property.

mod common;

use common::*;
use porta_protocol::messages::HELLO_LEN;
use porta_protocol::*;

fn fresh() -> (Site, LockConfig, LockState) {
    let site = Site::new();
    let config = site.lock_config();
    (site, config, LockState::new())
}

#[test]
fn valid_credential_opens_door() {
    let (site, config, mut state) = fresh();
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 23);
    assert_eq!(ex.lock.decision, Decision::Opened);
    assert_eq!(ex.lock.door_id, Some(DOOR));
    assert_eq!(ex.lock.credential_id, Some([0xC1; 16]));
    assert_eq!(ex.phone.decision, Decision::Opened);
    assert_eq!(ex.phone.lock_id, LOCK_ID);
    assert_eq!(ex.phone.audit, ex.lock.audit);
    // The uploaded audit record verifies with the certified lock key.
    let audit = AuditRecord::from_bytes(&ex.phone.audit.to_bytes()).unwrap();
    audit.verify(&config.certificate().lock_key).unwrap();
    assert_eq!(audit.counter, 1);
    assert_eq!(audit.time, T0);
    assert_eq!(state.audit_counter, 1);
    assert_eq!(state.attempt_counter, 1);
}

#[test]
fn replayed_messages_are_refused() {
    let (site, config, mut state) = fresh();
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    assert!(ex.lock.decision.is_opened());

    // Replay the phone's Hello and Proof to a new lock session.
    let mut lock = LockHandshake::new();
    let mut rng = SeededRng::new("lock-2");
    let challenge2 = lock.handle_hello(&config, &mut state, &ex.hello, 0, &mut rng).unwrap();
    assert_ne!(challenge2, ex.challenge, "challenge must be fresh");
    let out = lock.handle_proof(&config, &mut state, &ex.proof, T0, 10).unwrap();
    assert_eq!(out.decision, Decision::Denied(DenyReason::DecryptFailed));

    // Even if the lock's RNG repeats, the attempt counter makes the challenge fresh.
    let mut lock = LockHandshake::new();
    let challenge3 = lock.handle_hello(&config, &mut state, &ex.hello, 0, &mut SeededRng::new("lock")).unwrap();
    assert_ne!(challenge3, ex.challenge);
    let out = lock.handle_proof(&config, &mut state, &ex.proof, T0, 10).unwrap();
    assert!(!out.decision.is_opened());

    // Replaying into a finished session is refused outright.
    let mut lock = LockHandshake::new();
    lock.handle_hello(&config, &mut state, &ex.hello, 0, &mut rng).unwrap();
    lock.handle_proof(&config, &mut state, &ex.proof, T0, 10).unwrap();
    assert_eq!(lock.handle_proof(&config, &mut state, &ex.proof, T0, 10).unwrap_err(), ProtocolError::InvalidState);

    // Replaying the lock's Challenge / Result to a new phone session is refused.
    let (mut phone, _) = PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("phone-2")).unwrap();
    assert_eq!(phone.handle_challenge(&ex.challenge).unwrap_err(), ProtocolError::LockSignatureInvalid);
    let (mut phone, _) = PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("phone-3")).unwrap();
    let mut lock = LockHandshake::new();
    let hello = {
        let (p, h) = PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("phone-3")).unwrap();
        drop(p);
        h
    };
    let ch = lock.handle_hello(&config, &mut state, &hello, 0, &mut rng).unwrap();
    phone.handle_challenge(&ch).unwrap();
    assert_eq!(phone.handle_result(&ex.result).unwrap_err(), ProtocolError::DecryptFailed);
}

#[test]
fn tampered_bytes_are_refused() {
    let (site, config, mut state) = fresh();
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    // The same phone start for every tampered run, so only the flipped byte differs.
    let start = || PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("phone")).unwrap();

    // Every byte of the Proof.
    for i in 0..ex.proof.len() {
        let (mut phone, hello) = start();
        let mut lock = LockHandshake::new();
        let ch = lock.handle_hello(&config, &mut state, &hello, 0, &mut SeededRng::new("l")).unwrap();
        let mut proof = phone.handle_challenge(&ch).unwrap();
        proof[i] ^= 0x01;
        if let Ok(out) = lock.handle_proof(&config, &mut state, &proof, T0, 10) {
            assert!(!out.decision.is_opened(), "tampered proof byte {i} opened");
        }
    }
    // Every byte of the Challenge.
    for i in 0..ex.challenge.len() {
        let (mut phone, _) = start();
        let mut ch = ex.challenge.clone();
        ch[i] ^= 0x01;
        assert!(phone.handle_challenge(&ch).is_err(), "tampered challenge byte {i} accepted");
    }
    // Every byte of the Hello: the lock signs what it received, the phone notices.
    for i in 0..ex.hello.len() {
        let (mut phone, hello) = start();
        let mut h = hello.clone();
        h[i] ^= 0x01;
        let mut lock = LockHandshake::new();
        if let Ok(ch) = lock.handle_hello(&config, &mut state, &h, 0, &mut SeededRng::new("l")) {
            assert!(phone.handle_challenge(&ch).is_err(), "tampered hello byte {i} accepted");
        }
    }
    // Every byte of the Result.
    for i in 0..ex.result.len() {
        let (mut phone, hello) = start();
        let mut lock = LockHandshake::new();
        let ch = lock.handle_hello(&config, &mut state, &hello, 0, &mut SeededRng::new("l")).unwrap();
        let proof = phone.handle_challenge(&ch).unwrap();
        let mut res = lock.handle_proof(&config, &mut state, &proof, T0, 10).unwrap().response;
        res[i] ^= 0x01;
        assert!(phone.handle_result(&res).is_err(), "tampered result byte {i} accepted");
    }
}

#[test]
fn forged_or_foreign_credentials_are_refused() {
    let (site, config, mut state) = fresh();
    // Signed by another authority.
    let foreign = Credential::issue(&key(9), site.body()).unwrap();
    let ex = run(site.params(foreign), &config, &mut state, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::BadSignature));
    // Genuine credential with an edited field.
    let mut edited = site.credential();
    edited.body.doors.push(101);
    let mut p = site.params(edited);
    p.door_id = 101;
    let ex = run(p, &config, &mut state, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::BadSignature));
    // Someone else's credential presented with the wrong device key.
    let mut p = site.params(site.credential());
    p.device_key = key(4);
    assert_eq!(
        PhoneHandshake::start(p.clone(), &mut SeededRng::new("x")).unwrap_err(),
        ProtocolError::DeviceKeyMismatch
    );
    let ex = run_unchecked(p, &config, &mut state, T0);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::BadSignature));
}

/// The lock signs an audit record for every attempt. Before the credential and the device
/// signature verify, it does not know who is asking: the record must not name a credential
/// (anyone could otherwise plant another person's id in a lock-signed record) nor a door.
#[test]
fn audit_record_names_credential_and_door_only_once_authenticated() {
    let (site, config, mut state) = fresh();
    let foreign = Credential::issue(&key(9), site.body()).unwrap();
    let mut stolen = site.params(site.credential());
    stolen.device_key = key(4);
    for (label, p) in [("foreign authority", site.params(foreign)), ("wrong device key", stolen)] {
        let ex = run_unchecked(p, &config, &mut state, T0);
        assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::BadSignature), "{label}");
        assert_eq!(ex.lock.audit.credential_id, [0; 16], "{label}: unverified id in the signed record");
        assert_eq!(ex.lock.audit.door_id, 0, "{label}");
        assert_eq!((ex.lock.credential_id, ex.lock.door_id), (None, None), "{label}");
    }
    // Authenticated, even if refused: the record names both.
    let mut p = site.params(site.credential());
    p.door_id = 101;
    let ex = run_unchecked(p, &config, &mut state, T0);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::WrongDoor));
    assert_eq!((ex.lock.audit.credential_id, ex.lock.audit.door_id), ([0xC1; 16], 101));
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    assert_eq!((ex.lock.audit.credential_id, ex.lock.audit.door_id), ([0xC1; 16], DOOR));
}

#[test]
fn credential_for_one_door_does_not_open_another() {
    let (site, config, mut state) = fresh();
    // The lock controls 100 and 101; the credential covers only 100. A phone asking
    // for 101 is stopped by its own pre-check; a misbehaving one by the lock.
    let mut p = site.params(site.credential());
    p.door_id = 101;
    assert_eq!(
        PhoneHandshake::start(p.clone(), &mut SeededRng::new("x")).unwrap_err(),
        ProtocolError::CredentialNotUsable(DenyReason::WrongDoor)
    );
    let ex = run_unchecked(p, &config, &mut state, T0);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::WrongDoor));
    assert_eq!(ex.phone.decision, Decision::Denied(DenyReason::WrongDoor));

    // A lock for door 200 refuses a credential for door 100 even if the phone claims 200.
    let other_lock = site.lock_config_for(8, vec![OTHER_DOOR]);
    let mut p = site.params(site.credential());
    p.door_id = OTHER_DOOR;
    let ex = run_unchecked(p, &other_lock, &mut LockState::new(), T0);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::WrongDoor));

    // A well-behaved phone with a door-200 credential stops at a lock not certified for 200.
    let mut body = site.body();
    body.doors = vec![OTHER_DOOR];
    let mut p = site.params(Credential::issue(&site.authority, body).unwrap());
    p.door_id = OTHER_DOOR;
    let (mut phone, hello) = PhoneHandshake::start(p, &mut SeededRng::new("p")).unwrap();
    let ch = LockHandshake::new().handle_hello(&config, &mut state, &hello, 0, &mut SeededRng::new("l")).unwrap();
    assert_eq!(phone.handle_challenge(&ch).unwrap_err(), ProtocolError::DoorNotControlled);
}

#[test]
fn outside_schedule_is_refused() {
    let (site, config, mut state) = fresh();
    let mut body = site.body();
    // Mon–Fri 08:00–18:00 at UTC+2.
    body.schedule = Some(WeeklySchedule {
        utc_offset_minutes: 120,
        windows: vec![TimeWindow { days: 0b0001_1111, start_minute: 8 * 60, end_minute: 18 * 60 }],
    });
    let cred = Credential::issue(&site.authority, body).unwrap();
    // T0 is Sunday 17:06 local.
    let ex = run(site.params(cred.clone()), &config, &mut state, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::OutsideSchedule));
    // Monday 17:06 local.
    let ex = run(site.params(cred.clone()), &config, &mut state, T0 + 86_400, 185);
    assert_eq!(ex.lock.decision, Decision::Opened);
    // Monday 18:06 local.
    let ex = run(site.params(cred), &config, &mut state, T0 + 86_400 + 3600, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::OutsideSchedule));

    let s = WeeklySchedule {
        utc_offset_minutes: -300,
        windows: vec![TimeWindow { days: 1 << 6, start_minute: 0, end_minute: 60 }],
    };
    // 2025-06-15 05:00 UTC = Sunday 00:00 at UTC-5.
    let sun_midnight_local = 1_749_963_600;
    assert!(s.allows(sun_midnight_local));
    assert!(s.allows(sun_midnight_local + 3599));
    assert!(!s.allows(sun_midnight_local + 3600));
    assert!(!s.allows(sun_midnight_local - 1));
}

#[test]
fn expired_and_not_yet_valid_are_refused() {
    let (site, config, mut state) = fresh();
    let body = site.body();
    let ex = run(site.params(site.credential()), &config, &mut state, body.not_after + 1, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Expired));
    let ex = run(site.params(site.credential()), &config, &mut state, body.not_after, 185);
    assert_eq!(ex.lock.decision, Decision::Opened);
    let ex = run(site.params(site.credential()), &config, &mut state, body.not_before - 1, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::NotYetValid));
    // The phone's own pre-check refuses a clearly expired credential before sending.
    let mut p = site.params(site.credential());
    p.now = body.not_after + 301;
    assert_eq!(
        PhoneHandshake::start(p, &mut SeededRng::new("x")).unwrap_err(),
        ProtocolError::CredentialNotUsable(DenyReason::Expired)
    );
    // A clockless lock (rtc = 0) whose trusted time is past expiry refuses too.
    let mut s = LockState { trusted_time: body.not_after + 10, ..LockState::new() };
    let ex = run(site.params(site.credential()), &config, &mut s, 0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Expired));
}

#[test]
fn revoked_after_revocation_update() {
    let (site, config, mut state) = fresh();
    // Another resident's phone delivers, after its own decision, a delta naming this
    // credential: that phone's door opened; the delta is applied and acknowledged.
    let ex = run_delivering(
        site.params(site.credential()),
        &config,
        &mut state,
        T0,
        &[delta(&site, 0, 1, &[[0xC1; 16]], &[])],
    );
    assert!(ex.lock.decision.is_opened());
    assert_eq!(ex.acks[0].status, DeltaStatus::Applied);
    assert_eq!(ex.acks[0].lock_status.revocation_version, 1);
    // The next attempt with that credential is refused, also across persistence.
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Revoked));
    assert_eq!(ex.phone.lock_status.revocation_version, 1);
    let mut restored = LockState::from_bytes(&state.to_bytes()).unwrap();
    assert_eq!(restored, state);
    let ex = run(site.params(site.credential()), &config, &mut restored, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Revoked));
    // Revoking the device key revokes every credential of the device.
    let mut state = LockState::new();
    let d = delta(&site, 0, 3, &[], &[site.device.verifying_key().to_bytes()]);
    assert_eq!(state.apply_revocation_delta(&config, &d, T0), DeltaStatus::Applied);
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Revoked));
}

#[test]
fn phone_refuses_uncertified_lock_before_identifying_itself() {
    let site = Site::new();
    let rogue_authority = key(9);
    let cert = LockCertificate::issue(
        &rogue_authority,
        LOCK_ID,
        site.lock_key.verifying_key().to_bytes(),
        vec![DOOR],
        CERT_FROM,
        CERT_UNTIL,
    )
    .unwrap();
    let rogue = LockConfig::new(site.lock_key.clone(), cert, rogue_authority.verifying_key()).unwrap();
    let cred = site.credential();
    let (mut phone, hello) = PhoneHandshake::start(site.params(cred.clone()), &mut SeededRng::new("p")).unwrap();
    let ch =
        LockHandshake::new().handle_hello(&rogue, &mut LockState::new(), &hello, 0, &mut SeededRng::new("l")).unwrap();
    assert_eq!(phone.handle_challenge(&ch).unwrap_err(), ProtocolError::UntrustedLock);
    assert!(phone.is_finished());
    assert_eq!(phone.handle_challenge(&ch).unwrap_err(), ProtocolError::InvalidState);

    // All that was sent is the Hello: fixed size, and independent of who the user is.
    assert_eq!(hello.len(), HELLO_LEN);
    let mut other_body = site.body();
    other_body.credential_id = [0x77; 16];
    other_body.device_key = key(5).verifying_key().to_bytes();
    other_body.doors = vec![DOOR, 101, 102];
    let mut other = site.params(Credential::issue(&site.authority, other_body).unwrap());
    other.device_key = key(5);
    let (_, hello_other) = PhoneHandshake::start(other, &mut SeededRng::new("p")).unwrap();
    assert_eq!(hello, hello_other, "Hello must not depend on the user's identity");
    for needle in identifying_needles(&site, &cred) {
        assert!(!contains(&hello, &needle));
    }
}

/// The challenge a lock certified by the site (validity `from..=until`) answers `hello` with.
fn challenge_from(site: &Site, lock_key: &SigningKey, from: u32, until: u32, hello: &[u8]) -> Vec<u8> {
    let cert =
        LockCertificate::issue(&site.authority, LOCK_ID, lock_key.verifying_key().to_bytes(), vec![DOOR], from, until)
            .unwrap();
    let config = LockConfig::new(lock_key.clone(), cert, site.authority.verifying_key()).unwrap();
    LockHandshake::new().handle_hello(&config, &mut LockState::new(), hello, 0, &mut SeededRng::new("l")).unwrap()
}

#[test]
fn phone_refuses_a_certified_lock_that_is_not_the_doors_current_lock() {
    let site = Site::new();
    let mut params = site.params(site.credential());
    params.lock_key = Some(site.lock_key.verifying_key().to_bytes());
    // A replaced lock: certified by the site once, with its own key, but no longer on record.
    let old_lock = key(8);
    let (mut phone, hello) = PhoneHandshake::start(params.clone(), &mut SeededRng::new("p")).unwrap();
    let ch = challenge_from(&site, &old_lock, CERT_FROM, CERT_UNTIL, &hello);
    assert_eq!(phone.handle_challenge(&ch).unwrap_err(), ProtocolError::LockNotCurrent);
    assert!(phone.is_finished(), "nothing derived from the credential goes out");
    // The lock on record passes the same check.
    let (mut phone, hello) = PhoneHandshake::start(params, &mut SeededRng::new("p")).unwrap();
    let ch = challenge_from(&site, &site.lock_key, CERT_FROM, CERT_UNTIL, &hello);
    assert!(phone.handle_challenge(&ch).is_ok());
}

#[test]
fn phone_refuses_a_lock_certificate_outside_its_validity() {
    let site = Site::new();
    let skew = porta_protocol::phone::PHONE_CLOCK_SKEW_S as u32;
    let t0 = T0 as u32;
    for (from, until, ok) in [
        (t0 - 86_400, t0 - skew - 1, false),
        (t0 + skew + 1, t0 + 86_400, false),
        (t0 - 86_400, t0 - skew, true),
        (t0 + skew, t0 + 86_400, true),
    ] {
        let (mut phone, hello) =
            PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("p")).unwrap();
        let ch = challenge_from(&site, &site.lock_key, from, until, &hello);
        let got = phone.handle_challenge(&ch);
        assert_eq!(got.is_ok(), ok, "validity {from}..={until} at {T0}: {got:?}");
        if !ok {
            assert_eq!(got.unwrap_err(), ProtocolError::LockCertificateExpired);
        }
    }
}

#[test]
fn provisioning_request_proves_possession_and_rejects_tampering() {
    let lock_key = key(8);
    let request = ProvisioningRequest::sign(&lock_key, &mut SeededRng::new("r"));
    let bytes = request.to_bytes();
    assert_eq!(bytes.len(), PROVISIONING_REQUEST_LEN);
    let parsed = ProvisioningRequest::from_bytes(&bytes).unwrap();
    parsed.verify().unwrap();
    assert_eq!(parsed.lock_key, lock_key.verifying_key().to_bytes());
    // Another key substituted for the lock's: the signature no longer verifies.
    let mut swapped = parsed.clone();
    swapped.lock_key = key(9).verifying_key().to_bytes();
    assert_eq!(swapped.verify().unwrap_err(), ProtocolError::InvalidSignature);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        assert!(ProvisioningRequest::from_bytes(&b).and_then(|r| r.verify()).is_err(), "flipped byte {i} accepted");
    }
    for n in 0..bytes.len() {
        assert!(ProvisioningRequest::from_bytes(&bytes[..n]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(ProvisioningRequest::from_bytes(&longer).unwrap_err(), ProtocolError::TrailingBytes);
}

fn identifying_needles(site: &Site, cred: &Credential) -> Vec<Vec<u8>> {
    let mut n = vec![
        cred.body.credential_id.to_vec(),
        site.device.verifying_key().to_bytes().to_vec(),
        cred.to_bytes(),
        cred.signature.to_vec(),
    ];
    // Also every 8-byte window of the credential (catches partial leaks).
    for w in cred.to_bytes().windows(8) {
        if w.iter().any(|&b| b != 0) {
            n.push(w.to_vec());
        }
    }
    n
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_identifying_bytes_in_any_frame() {
    let (site, config, _) = fresh();
    let cred = site.credential();
    let needles = identifying_needles(&site, &cred);
    for mtu in [23u16, 185, 517] {
        let ex = run(site.params(cred.clone()), &config, &mut LockState::new(), T0, mtu);
        let mut all: Vec<Vec<u8>> = ex.frames.iter().map(|(_, f)| f.clone()).collect();
        all.extend([ex.hello.clone(), ex.challenge.clone(), ex.proof.clone(), ex.result.clone()]);
        for f in &all {
            for needle in &needles {
                assert!(!contains(f, needle), "identifying bytes in clear at MTU {mtu}");
            }
        }
    }
}

#[test]
fn at_most_two_round_trips() {
    let (site, config, _) = fresh();
    let mut time_update = None;
    for mtu in [23u16, 100, 247, 512, 517] {
        let mut p = site.params(site.credential());
        p.updates.time = time_update.clone();
        let ex = run(p, &config, &mut LockState::new(), T0, mtu);
        assert!(ex.lock.decision.is_opened());
        // Count direction changes in the frame log: P→L, L→P, P→L, L→P.
        let mut runs = 0;
        let mut last = None;
        for (d, _) in &ex.frames {
            if Some(*d) != last {
                runs += 1;
                last = Some(*d);
            }
        }
        assert_eq!(ex.frames.first().unwrap().0, Direction::PhoneToLock);
        assert!(runs <= 4, "{runs} half round trips at MTU {mtu}");
        assert_eq!(ex.round_trips, 2);
        time_update = Some(TimeUpdate::issue(&site.authority, 0, T0, 1));
    }
}

#[test]
fn stale_updates_are_ignored_and_time_is_monotonic() {
    let (site, config, _) = fresh();
    let a = &site.authority;
    let mut s = LockState::new();
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, 0, T0, 5)), UpdateStatus::Applied);
    assert_eq!((s.trusted_time, s.time_sequence), (T0, 5));
    // Same or lower sequence: stale, even with a later time.
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, 0, T0 + 99, 5)), UpdateStatus::Stale);
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, 0, T0 + 99, 4)), UpdateStatus::Stale);
    assert_eq!(s.trusted_time, T0);
    // Newer sequence with an earlier time: applied, but time never goes back.
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, 0, T0 - 500, 6)), UpdateStatus::Applied);
    assert_eq!((s.trusted_time, s.time_sequence), (T0, 6));
    // Addressed to this lock: fine; to another lock, or forged: invalid.
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, LOCK_ID, T0 + 10, 7)), UpdateStatus::Applied);
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(a, 8, T0 + 20, 8)), UpdateStatus::Invalid);
    assert_eq!(s.apply_time_update(&config, &TimeUpdate::issue(&key(9), 0, T0 + 20, 8)), UpdateStatus::Invalid);
    assert_eq!(s.trusted_time, T0 + 10);

    let d2 = delta(&site, 0, 2, &[[1; 16]], &[]);
    let d1 = delta(&site, 0, 1, &[[2; 16]], &[]);
    assert_eq!(s.apply_revocation_delta(&config, &d2, T0), DeltaStatus::Applied);
    assert_eq!(s.apply_revocation_delta(&config, &d1, T0), DeltaStatus::Stale);
    assert_eq!(s.apply_revocation_delta(&config, &d2, T0), DeltaStatus::Stale);
    // A delta that does not continue the lock's version leaves a gap: refused.
    assert_eq!(s.apply_revocation_delta(&config, &delta(&site, 3, 5, &[[3; 16]], &[]), T0), DeltaStatus::Gap);
    let forged = RevocationDelta::issue(&key(9), 2, 9, vec![], vec![]).unwrap();
    assert_eq!(s.apply_revocation_delta(&config, &forged, T0), DeltaStatus::Invalid);
    assert_eq!(s.revocation_version, 2);
    assert!(s.revoked_credentials.contains_key(&[1; 16]));
    assert!(!s.revoked_credentials.contains_key(&[3; 16]));
    // Overlapping deltas are set additions: one starting before the lock's version applies.
    assert_eq!(s.apply_revocation_delta(&config, &delta(&site, 1, 4, &[[4; 16]], &[]), T0), DeltaStatus::Applied);
    assert_eq!(s.revocation_version, 4);
    assert!(s.revoked_credentials.contains_key(&[1; 16]) && s.revoked_credentials.contains_key(&[4; 16]));
    // Entries are forgotten once expired at the lock's time; revoked ones are refused as
    // expired by then anyway.
    let mut aged = s.clone();
    aged.forget_expired(T0 + 31 * 86_400);
    assert!(aged.revoked_credentials.is_empty());

    // Carried in a proof: a stale time update is ignored and cannot move time.
    let mut state = s.clone();
    state.revoked_credentials.insert([0xC1; 16], T0 + 86_400);
    let mut p = site.params(site.credential());
    p.updates.time = Some(TimeUpdate::issue(a, 0, T0 + 1000, 3));
    let ex = run(p, &config, &mut state, T0, 185);
    assert_eq!(ex.lock.time_update, UpdateStatus::Stale);
    assert_eq!(ex.lock.decision, Decision::Denied(DenyReason::Revoked));
    assert_eq!(state.trusted_time, T0 + 10);

    // A fresh carried time update raises a clockless lock's time and opens.
    let mut state = LockState::new();
    let mut p = site.params(site.credential());
    p.updates.time = Some(TimeUpdate::issue(a, 0, T0, 1));
    let ex = run(p, &config, &mut state, 0, 185);
    assert_eq!(ex.lock.time_update, UpdateStatus::Applied);
    assert_eq!(ex.lock.decision, Decision::Opened);
    assert_eq!(ex.phone.lock_status.trusted_time, T0);
}

#[test]
fn proof_after_deadline_is_refused() {
    let (site, config, mut state) = fresh();
    for (delay, expect) in [
        (PROOF_DEADLINE_MS, Decision::Opened),
        (PROOF_DEADLINE_MS + 1, Decision::Denied(DenyReason::Timeout)),
        (60_000, Decision::Denied(DenyReason::Timeout)),
    ] {
        let (mut phone, hello) =
            PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("p")).unwrap();
        let mut lock = LockHandshake::new();
        let ch = lock.handle_hello(&config, &mut state, &hello, 5_000, &mut SeededRng::new("l")).unwrap();
        let proof = phone.handle_challenge(&ch).unwrap();
        let out = lock.handle_proof(&config, &mut state, &proof, T0, 5_000 + delay).unwrap();
        assert_eq!(out.decision, expect, "delay {delay}");
        assert_eq!(phone.handle_result(&out.response).unwrap().decision, expect);
    }
}

#[test]
fn out_of_order_messages_are_typed_errors() {
    let (site, config, mut state) = fresh();
    let ex = run(site.params(site.credential()), &config, &mut state, T0, 185);
    let start = || PhoneHandshake::start(site.params(site.credential()), &mut SeededRng::new("p")).unwrap();
    let mut lock = LockHandshake::new();
    assert_eq!(
        lock.handle_hello(&config, &mut state, &ex.proof, 0, &mut SeededRng::new("l")).unwrap_err(),
        ProtocolError::UnexpectedMessage { expected: 1, got: 3 }
    );
    let mut lock = LockHandshake::new();
    assert_eq!(lock.handle_proof(&config, &mut state, &ex.proof, T0, 0).unwrap_err(), ProtocolError::InvalidState);
    let (mut phone, _) = start();
    assert_eq!(phone.handle_result(&ex.result).unwrap_err(), ProtocolError::InvalidState);
    let (mut phone, _) = start();
    assert_eq!(
        phone.handle_challenge(&ex.result).unwrap_err(),
        ProtocolError::UnexpectedMessage { expected: 2, got: 4 }
    );
    let (mut phone, _) = start();
    assert_eq!(phone.handle_challenge(&[0x99]).unwrap_err(), ProtocolError::UnknownMessageType(0x99));
    assert_eq!(phone.handle_challenge(&[]).unwrap_err(), ProtocolError::InvalidState);
}

#[test]
fn low_order_ephemeral_keys_are_rejected() {
    let (_, config, mut state) = fresh();
    let mut hello = vec![1u8, PROTOCOL_VERSION];
    hello.extend_from_slice(&[0u8; 32]); // identity point
    hello.extend_from_slice(&[7u8; 16]);
    let err = LockHandshake::new().handle_hello(&config, &mut state, &hello, 0, &mut SeededRng::new("l"));
    assert_eq!(err.unwrap_err(), ProtocolError::WeakKey);
}

#[test]
fn encodings_round_trip_and_debug_redacts_secrets() {
    let (site, config, _) = fresh();
    let cred = site.credential();
    assert_eq!(Credential::from_bytes(&cred.to_bytes()).unwrap(), cred);
    cred.verify(&site.authority.verifying_key()).unwrap();
    assert!(Credential::from_bytes(&cred.to_bytes()[..10]).is_err());
    let mut longer = cred.to_bytes();
    longer.push(0);
    assert_eq!(Credential::from_bytes(&longer).unwrap_err(), ProtocolError::TrailingBytes);
    let cert = config.certificate().clone();
    assert_eq!(LockCertificate::from_bytes(&cert.to_bytes()).unwrap(), cert);
    let tu = TimeUpdate::issue(&site.authority, 0, T0, 1);
    assert_eq!(TimeUpdate::from_bytes(&tu.to_bytes()).unwrap(), tu);
    let rd = delta(&site, 3, 4, &[[1; 16]], &[[2; 32]]);
    assert_eq!(RevocationDelta::from_bytes(&rd.to_bytes()).unwrap(), rd);
    assert!(Credential::issue(&site.authority, CredentialBody { doors: vec![], ..site.body() }).is_err());

    let secret_dbg = format!("{:?}", site.lock_key.to_bytes());
    let dbg = format!("{config:?} {:?}", site.params(cred));
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains(&secret_dbg));
    assert!(!dbg.contains(&format!("{:?}", site.device.to_bytes())));
}

#[test]
fn typical_frame_sizes_match_spec() {
    let site = Site::new();
    let config = site.lock_config_for(LOCK_ID, vec![DOOR]);
    let expect = [(23u16, [3, 13, 15, 8]), (185, [1, 2, 2, 1]), (247, [1, 1, 2, 1]), (517, [1, 1, 1, 1])];
    for (mtu, counts) in expect {
        let ex = run(site.params(site.credential()), &config, &mut LockState::new(), T0, mtu);
        let sizes = [ex.hello.len(), ex.challenge.len(), ex.proof.len(), ex.result.len()];
        assert_eq!(sizes, [50, 238, 273, 147]);
        let frags: Vec<usize> = [&ex.hello, &ex.challenge, &ex.proof, &ex.result]
            .iter()
            .map(|m| porta_protocol::wire::fragment(m, mtu).unwrap().len())
            .collect();
        assert_eq!(frags, counts, "MTU {mtu}");
    }
}

/// The lock wipes the credential it decrypted (the plaintext Proof is zeroized on drop, and
/// so is the credential parsed from it): nothing of the person lingers in the lock's memory.
#[test]
fn a_decrypted_credential_can_be_wiped() {
    use zeroize::Zeroize;
    let site = Site::new();
    let mut body = site.body();
    body.schedule = Some(WeeklySchedule {
        utc_offset_minutes: 60,
        windows: vec![TimeWindow { days: 1, start_minute: 1, end_minute: 2 }],
    });
    let mut c = Credential::issue(&site.authority, body).unwrap();
    c.zeroize();
    assert_eq!(c.body.credential_id, [0; 16]);
    assert_eq!(c.body.device_key, [0; 32]);
    assert!(c.body.doors.is_empty());
    assert_eq!((c.body.not_before, c.body.not_after), (0, 0));
    let s = c.body.schedule.as_ref().unwrap();
    assert_eq!((s.utc_offset_minutes, s.windows[0].days, s.windows[0].end_minute), (0, 0, 0));
    assert_eq!(c.signature, [0; 64]);
}
