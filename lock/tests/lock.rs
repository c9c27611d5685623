//! The persistent Lock, LockConnection robustness, provisioning.

mod common;

use std::fs::OpenOptions;
use std::io::Write;

use common::*;
use porta_lock::porta_protocol::{
    fragment, AuditRecord, Credential, CredentialBody, Decision, DeltaStatus, DenyReason, PhoneHandshake, PhoneParams,
    Reassembler, TimeUpdate, Updates,
};
use porta_lock::{
    provision_new_lock, LinkParams, Lock, LockConnection, LockError, SimulatedLock, AUDIT_LOG_FILE, STATE_FILE,
};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

#[tokio::test]
async fn state_and_audit_log_survive_reopen() {
    let site = Site::new();
    let dir = tempfile::tempdir().unwrap();
    let other_id = [0x99; 16];
    let updates = Updates { time: Some(TimeUpdate::issue(&site.authority, 0, T0, 3)) };
    {
        let lock = Lock::open(dir.path(), site.config()).unwrap();
        let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams::default());
        sim.set_clock(T0);
        let delta = site.delta(0, 5, &[other_id], &[], T0 + 3600);
        let (out, acks) =
            phone_unlock_delivering(&sim, site.params_with(site.credential(), updates), &[delta]).await.unwrap();
        assert!(out.decision.is_opened());
        assert_eq!(acks[0].status, DeltaStatus::Applied);
        assert_eq!(acks[0].lock_status.revocation_version, 5);
        assert_eq!(lock.opened_count(), 1);
    }
    let lock = Lock::open(dir.path(), site.config()).unwrap();
    let st = lock.state();
    assert_eq!(st.revocation_version, 5);
    assert!(st.revoked_credentials.contains_key(&other_id));
    assert_eq!(st.time_sequence, 3);
    assert_eq!(st.trusted_time, T0);
    assert_eq!(st.audit_counter, 1);
    assert_eq!(st.attempt_counter, 1);
    assert_eq!(lock.audit_log().len(), 1);
    assert_eq!(lock.opened_count(), 0, "opened_count counts since open");

    // Second unlock continues the counters.
    let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams::default());
    sim.set_clock(T0);
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    drop((sim, lock));

    // A torn final entry (crash mid-append) is dropped on open.
    OpenOptions::new()
        .append(true)
        .open(dir.path().join(AUDIT_LOG_FILE))
        .unwrap()
        .write_all(&[0, 0, 0, 106, 1, 2, 3])
        .unwrap();
    let lock = Lock::open(dir.path(), site.config()).unwrap();
    let log = lock.audit_log();
    assert_eq!(log.len(), 2);
    let counters: Vec<u64> = log.iter().map(|r| AuditRecord::from_bytes(r).unwrap().counter).collect();
    assert_eq!(counters, [1, 2]);
    assert_eq!(lock.state().audit_counter, 2);
    assert_eq!(lock.state().attempt_counter, 2);
    drop(lock);
    assert_eq!(std::fs::metadata(dir.path().join(AUDIT_LOG_FILE)).unwrap().len(), 2 * (4 + 106));

    // A state directory of another lock is refused.
    let other = provision_new_lock(&site.authority, 8, vec![DOOR], &mut StdRng::seed_from_u64(9))
        .unwrap()
        .into_config()
        .unwrap();
    assert!(matches!(Lock::open(dir.path(), other), Err(LockError::StateMismatch)));

    // A corrupt state file is reported, not silently reset.
    std::fs::write(dir.path().join(STATE_FILE), [9, 9, 9]).unwrap();
    assert!(matches!(Lock::open(dir.path(), site.config()), Err(LockError::CorruptState(_))));
}

#[tokio::test]
async fn audit_counter_is_not_reused_if_state_save_was_lost() {
    let site = Site::new();
    let dir = tempfile::tempdir().unwrap();
    let lock = Lock::open(dir.path(), site.config()).unwrap();
    let before = std::fs::read(dir.path().join(STATE_FILE)).ok();
    let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams::default());
    sim.set_clock(T0);
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    drop((sim, lock));
    // Simulate a crash between audit append and state save: restore the old state.
    match before {
        Some(b) => std::fs::write(dir.path().join(STATE_FILE), b).unwrap(),
        None => std::fs::remove_file(dir.path().join(STATE_FILE)).unwrap(),
    }
    let lock = Lock::open(dir.path(), site.config()).unwrap();
    assert_eq!(lock.state().audit_counter, 1);
}

/// Drives a LockConnection directly (no link) with a phone.
fn direct_unlock(lock: &Lock, mtu: u16) -> Decision {
    let site = Site::new();
    let mut rng = StdRng::seed_from_u64(5);
    let mut conn = lock.connect_with_mtu(mtu).unwrap();
    let (mut phone, hello) = PhoneHandshake::start(site.params(), &mut rng).unwrap();
    let mut reply = Vec::new();
    for f in fragment(&hello, mtu).unwrap() {
        reply.extend(conn.on_write(&f, T0, 10, &mut rng).unwrap());
    }
    let mut re = Reassembler::new();
    let challenge = reply.iter().find_map(|f| re.push(f).unwrap()).unwrap();
    let proof = phone.handle_challenge(&challenge).unwrap();
    let mut reply = Vec::new();
    for f in fragment(&proof, mtu).unwrap() {
        reply.extend(conn.on_write(&f, T0, 20, &mut rng).unwrap());
    }
    assert!(conn.is_finished());
    let result = reply.iter().find_map(|f| re.push(f).unwrap()).unwrap();
    let out = phone.handle_result(&result).unwrap();
    assert_eq!(conn.last_outcome().unwrap().decision, out.decision);
    // After the decision only an Update from the authenticated phone is accepted; anything
    // else ends the connection.
    assert!(conn.accepts_updates());
    assert!(matches!(conn.on_write(&[0xC0, 0, 1, 1], T0, 30, &mut rng), Err(LockError::Protocol(_))));
    assert!(matches!(conn.on_write(&[0xC0, 0, 1, 1], T0, 30, &mut rng), Err(LockError::ConnectionClosed)));
    out.decision
}

/// Feeds `msg` to `conn`, the first fragment at `first_ms` and the rest at `rest_ms`;
/// returns the reassembled reply.
fn deliver(conn: &mut LockConnection, msg: &[u8], first_ms: u64, rest_ms: u64, rng: &mut StdRng) -> Vec<u8> {
    let mut reply = Vec::new();
    for (i, f) in fragment(msg, conn.att_mtu()).unwrap().iter().enumerate() {
        reply.extend(conn.on_write(f, T0, if i == 0 { first_ms } else { rest_ms }, rng).unwrap());
    }
    let mut re = Reassembler::new();
    reply.iter().find_map(|f| re.push(f).unwrap()).expect("a reply")
}

/// A relay sends the Proof's first fragment (one predictable byte's worth) at once and the
/// rest minutes later: the deadline bounds the whole Proof, so the door stays shut.
#[test]
fn proof_deadline_bounds_the_whole_proof_not_its_first_fragment() {
    let site = Site::new();
    let lock = Lock::in_memory(site.config());
    for (rest_ms, expect) in [(1_500, Decision::Opened), (10 + 5 * 60_000, Decision::Denied(DenyReason::Timeout))] {
        let mut rng = StdRng::seed_from_u64(9);
        let mut conn = lock.connect_with_mtu(23).unwrap();
        let (mut phone, hello) = PhoneHandshake::start(site.params(), &mut rng).unwrap();
        let challenge = deliver(&mut conn, &hello, 0, 0, &mut rng);
        let proof = phone.handle_challenge(&challenge).unwrap();
        assert!(fragment(&proof, 23).unwrap().len() > 1);
        let result = deliver(&mut conn, &proof, 10, rest_ms, &mut rng);
        let out = phone.handle_result(&result).unwrap();
        assert_eq!(out.decision, expect, "rest of the Proof at {rest_ms} ms");
        assert_eq!(conn.last_outcome().unwrap().decision, expect);
    }
}

/// A large site: 10,000 revoked credentials and 2,000 revoked devices. Every unlock still
/// opens (the Proof never carries them); the phone delivers the deltas after its decision over
/// the real fragmenting link, the lock ends up holding every entry, and a revoked phone is
/// refused.
#[tokio::test]
async fn ten_thousand_revocations_reach_the_lock_and_never_block_an_unlock() {
    let site = Site::new();
    let expires = T0 + 3600;
    let ids: Vec<[u8; 16]> = (0u32..10_000)
        .map(|i| {
            let mut id = [0x5A; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id
        })
        .collect();
    let mut keys: Vec<[u8; 32]> = (0u32..1_999)
        .map(|i| {
            let mut k = [0x6B; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            k
        })
        .collect();
    let revoked_phone = porta_lock::porta_protocol::SigningKey::from_bytes(&[0x77; 32]);
    keys.push(revoked_phone.verifying_key().to_bytes());
    // Cut into deltas the way the server does: as many entries as fit one Update.
    let mut deltas = Vec::new();
    let mut version = 0u64;
    for chunk in ids.chunks(160) {
        deltas.push(site.delta(version, version + chunk.len() as u64, chunk, &[], expires));
        version += chunk.len() as u64;
    }
    for chunk in keys.chunks(96) {
        deltas.push(site.delta(version, version + chunk.len() as u64, &[], chunk, expires));
        version += chunk.len() as u64;
    }
    assert!(deltas.iter().all(|d| d.to_bytes().len() <= porta_lock::porta_protocol::updates::MAX_REVOCATION_DELTA_LEN));

    let lock = Lock::in_memory(site.config());
    let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams { att_mtu: 247, ..LinkParams::default() });
    sim.set_clock(T0);
    let per_connection = porta_lock::porta_protocol::lock::MAX_UPDATES_PER_CONNECTION as usize;
    let mut unlocks = 0;
    while lock.state().revocation_version < version {
        let from = lock.state().revocation_version;
        let pending: Vec<_> = deltas.iter().filter(|d| d.to_version > from).take(per_connection).cloned().collect();
        let (out, acks) = phone_unlock_delivering(&sim, site.params(), &pending).await.unwrap();
        assert!(out.decision.is_opened(), "unlock {unlocks} with {from} revocations held");
        assert!(acks.iter().all(|a| a.status == DeltaStatus::Applied));
        unlocks += 1;
    }
    assert_eq!(unlocks, 1, "{} deltas travel in one connection", deltas.len());
    let st = lock.state();
    assert_eq!((st.revoked_credentials.len(), st.revoked_devices.len()), (10_000, 2_000));
    // Survives persistence.
    assert_eq!(porta_lock::porta_protocol::LockState::from_bytes(&st.to_bytes()).unwrap(), st);
    // The revoked phone is refused; everyone else still opens.
    let cred = Credential::issue(
        &site.authority,
        CredentialBody {
            credential_id: [0x42; 16],
            device_key: revoked_phone.verifying_key().to_bytes(),
            doors: vec![DOOR],
            not_before: T0 - 60,
            not_after: expires,
            schedule: None,
        },
    )
    .unwrap();
    let params = PhoneParams { device_key: revoked_phone, ..site.params_with(cred, Updates::default()) };
    let out = phone_unlock(&sim, params).await.unwrap();
    assert_eq!(out.decision, Decision::Denied(DenyReason::Revoked));
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    // Once they have expired, the lock forgets them.
    sim.set_clock(expires + 1);
    let mut aged = lock.state();
    aged.forget_expired(expires + 1);
    assert!(aged.revoked_credentials.is_empty() && aged.revoked_devices.is_empty());
}

#[test]
fn lock_connection_without_link() {
    let site = Site::new();
    let lock = site.lock();
    assert_eq!(lock.connect().att_mtu(), 23);
    assert!(matches!(lock.connect_with_mtu(22), Err(LockError::InvalidMtu(22))));
    assert!(matches!(lock.connect_with_mtu(518), Err(LockError::InvalidMtu(518))));
    for mtu in [23, 100, 247, 517] {
        assert_eq!(direct_unlock(&lock, mtu), Decision::Opened);
    }
    assert_eq!(lock.opened_count(), 4);
    assert_eq!(lock.audit_log().len(), 4);
}

fn feed(conn: &mut LockConnection, frags: &[Vec<u8>], rng: &mut StdRng) -> Result<(), LockError> {
    for f in frags {
        conn.on_write(f, T0, 0, rng)?;
    }
    Ok(())
}

#[test]
fn malformed_fragments_never_panic_or_open() {
    let site = Site::new();
    let lock = site.lock();
    let mut rng = StdRng::seed_from_u64(0xBAD);
    let (_, hello) = PhoneHandshake::start(site.params(), &mut rng).unwrap();
    let mut errors = 0u32;

    for round in 0..3000 {
        let mtu = [23u16, 64, 185, 517][round % 4];
        let mut conn = lock.connect_with_mtu(mtu).unwrap();
        let mut frags: Vec<Vec<u8>> = match round % 3 {
            // Pure noise, any length (including empty and over-MTU).
            0 => (0..rng.gen_range(1..6))
                .map(|_| {
                    let mut f = vec![0u8; rng.gen_range(0..600)];
                    rng.fill_bytes(&mut f);
                    f
                })
                .collect(),
            // A valid Hello, then a mutated copy of itself (a second message).
            1 => {
                let mut v = fragment(&hello, mtu).unwrap();
                let mut extra = fragment(&hello, mtu).unwrap();
                for f in &mut extra {
                    let i = rng.gen_range(0..f.len());
                    f[i] ^= 1 << rng.gen_range(0..8);
                }
                v.extend(extra);
                v
            }
            // A valid Hello with one fragment mutated, dropped or duplicated.
            _ => {
                let mut v = fragment(&hello, mtu).unwrap();
                let i = rng.gen_range(0..v.len());
                match rng.gen_range(0..4) {
                    0 => {
                        let j = rng.gen_range(0..v[i].len());
                        v[i][j] = rng.gen();
                    }
                    1 => {
                        v.remove(i);
                    }
                    2 => {
                        let d = v[i].clone();
                        v.insert(i, d);
                    }
                    _ => {
                        let n = rng.gen_range(0..v[i].len());
                        v[i].truncate(n)
                    }
                }
                v
            }
        };
        frags.push(vec![0x80 | 0x40, 0, 1, 0x03]); // a tiny "Proof" to finish with
        if feed(&mut conn, &frags, &mut rng).is_err() {
            errors += 1;
            assert!(conn.is_dead() || conn.is_finished());
            // A dead connection accepts nothing.
            assert!(matches!(
                conn.on_write(&fragment(&hello, mtu).unwrap()[0], T0, 0, &mut rng),
                Err(LockError::ConnectionClosed)
            ));
        }
    }
    assert!(errors > 1000);
    assert_eq!(lock.opened_count(), 0);
    // Every decision the lock did take was a denial.
    for rec in lock.audit_log() {
        assert!(!AuditRecord::from_bytes(&rec).unwrap().decision.is_opened());
    }
}

#[test]
fn oversized_fragment_is_typed_error() {
    let site = Site::new();
    let lock = site.lock();
    let mut conn = lock.connect_with_mtu(23).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let r = conn.on_write(&[0u8; 21], T0, 0, &mut rng);
    assert!(matches!(r, Err(LockError::FragmentTooLarge { len: 21, max: 20 })));
    assert!(conn.is_dead());
    assert!(matches!(conn.on_write(&[0xC0, 0, 1, 1], T0, 0, &mut rng), Err(LockError::ConnectionClosed)));
    let mut conn = lock.connect_with_mtu(23).unwrap();
    assert!(matches!(conn.on_write(&[], T0, 0, &mut rng), Err(LockError::Framing(_))));
}

#[test]
fn provisioning_from_bytes() {
    let site = Site::new();
    let p = site.provision.clone();
    assert_eq!(p.lock_id, LOCK_ID);
    assert_eq!(p.doors, vec![DOOR, OTHER_DOOR]);
    assert_eq!(p.authority_public_key, site.authority.verifying_key().to_bytes());
    assert!(!format!("{p:?}").contains(&format!("{:?}", p.lock_secret_key)));
    let config = p.clone().into_config().unwrap();
    assert_eq!(config.lock_id(), LOCK_ID);
    assert_eq!(config.certificate().lock_key, p.lock_public_key());

    let mut bad = p.clone();
    bad.lock_id = 9;
    assert!(matches!(bad.into_config(), Err(LockError::Provision(_))));
    let mut bad = p.clone();
    bad.lock_secret_key[0] ^= 1;
    assert!(matches!(bad.into_config(), Err(LockError::Provision(_))));
    let mut bad = p.clone();
    bad.certificate[50] ^= 1;
    assert!(bad.into_config().is_err());
    let mut bad = p;
    bad.authority_public_key = [0x11; 32];
    assert!(bad.into_config().is_err());

    assert!(matches!(
        provision_new_lock(&site.authority, 0, vec![DOOR], &mut StdRng::seed_from_u64(2)),
        Err(LockError::Provision(_))
    ));
    assert!(provision_new_lock(&site.authority, 3, vec![], &mut StdRng::seed_from_u64(2)).is_err());
}

/// The key is born in the lock: its request proves possession, and it installs only a
/// certificate for its own key, signed by the authority it is given.
#[test]
fn a_new_lock_installs_only_a_certificate_for_its_own_key() {
    use porta_lock::porta_protocol::{LockCertificate, ProvisioningRequest};
    use porta_lock::NewLock;
    let site = Site::new();
    let mut rng = StdRng::seed_from_u64(5);
    let lock = NewLock::generate(&mut rng);
    let request = ProvisioningRequest::from_bytes(&lock.provisioning_request(&mut rng).to_bytes()).unwrap();
    request.verify().unwrap();
    assert_eq!(request.lock_key, lock.lock_public_key());
    assert!(!format!("{lock:?}").contains(&format!("{:?}", lock.secret_key())), "Debug shows no secret");

    let issue = |key: [u8; 32]| LockCertificate::issue(&site.authority, 9, key, vec![DOOR], 0, u32::MAX).unwrap();
    let authority = site.authority.verifying_key().to_bytes();
    let installed = lock.install(&issue(request.lock_key).to_bytes(), authority).unwrap();
    assert_eq!((installed.lock_id, installed.doors.clone()), (9, vec![DOOR]));
    assert_eq!(installed.lock_public_key(), lock.lock_public_key());
    installed.to_config().unwrap();

    // Another lock's answer, a certificate from another authority, or garbage: refused.
    let other = NewLock::generate(&mut rng);
    assert!(matches!(
        lock.install(&issue(other.lock_public_key()).to_bytes(), authority),
        Err(LockError::CertificateForAnotherKey)
    ));
    assert!(lock.install(&issue(request.lock_key).to_bytes(), [0x11; 32]).is_err());
    assert!(lock.install(&[1, 2, 3], authority).is_err());
    // The restored lock is the same lock.
    assert_eq!(NewLock::from_secret_key(*lock.secret_key()).lock_public_key(), lock.lock_public_key());
}
