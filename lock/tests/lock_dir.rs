//! A lock's data directory: its own key, the installed certificate, renewals, damage.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use porta_lock::porta_protocol::{Credential, LockCertificate, SigningKey};
use porta_lock::{
    LinkParams, LockDir, LockDirStatus, LockError, NewLock, SimulatedLock, AUDIT_LOG_FILE, AUTHORITY_FILE,
    CERTIFICATE_FILE, LOCK_KEY_FILE,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Every file of the directory with its bytes, to show an operation changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The certificate the site issues for the lock's request (what the server does on
/// `POST …/doors/{door}/lock`).
fn certify(authority: &SigningKey, lock_id: u32, lock_key: [u8; 32], not_before: u64, not_after: u64) -> Vec<u8> {
    LockCertificate::issue(authority, lock_id, lock_key, vec![DOOR, OTHER_DOOR], not_before as u32, not_after as u32)
        .unwrap()
        .to_bytes()
}

/// A directory with a key, and the certificate the site would answer its request with.
fn requested(site: &Site, seed: u64) -> (tempfile::TempDir, LockDir, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = LockDir::new(tmp.path().join("lock"));
    let request = dir.provisioning_request(&mut StdRng::seed_from_u64(seed)).unwrap();
    request.verify().unwrap();
    let cert = certify(&site.authority, LOCK_ID, request.lock_key, T0 - 86_400, T0 + 86_400);
    (tmp, dir, cert)
}

#[test]
fn the_first_request_creates_the_key_and_later_requests_reuse_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = LockDir::new(tmp.path().join("lock"));
    assert_eq!(dir.status().unwrap(), LockDirStatus::NoKey);
    assert!(!dir.path().exists(), "status creates nothing");

    let mut rng = StdRng::seed_from_u64(3);
    let first = dir.provisioning_request(&mut rng).unwrap();
    first.verify().unwrap();
    let key_bytes = std::fs::read(dir.path().join(LOCK_KEY_FILE)).unwrap();
    assert_eq!(key_bytes.len(), 32);
    assert_eq!(NewLock::from_secret_key(key_bytes.clone().try_into().unwrap()).lock_public_key(), first.lock_key);

    let second = dir.provisioning_request(&mut rng).unwrap();
    second.verify().unwrap();
    assert_eq!(second.lock_key, first.lock_key, "same lock, same key");
    assert_ne!(second.request_id, first.request_id, "a new request id each time");
    assert_eq!(std::fs::read(dir.path().join(LOCK_KEY_FILE)).unwrap(), key_bytes, "the key is never rewritten");
    assert_eq!(dir.status().unwrap(), LockDirStatus::AwaitingCertificate { lock_public_key: first.lock_key });
    assert_eq!(snapshot(dir.path()).into_keys().collect::<Vec<_>>(), [LOCK_KEY_FILE], "no temp files left");

    // Nothing shows the key: not the directory, its status, nor its errors.
    let secret = format!("{key_bytes:?}").replace(['[', ']'], "");
    for shown in [format!("{dir:?}"), format!("{:?}", dir.status()), format!("{:?}", dir.open())] {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(matches!(dir.open(), Err(LockError::NotInstalled)));
}

#[cfg(unix)]
#[test]
fn the_key_file_is_readable_by_the_lock_alone() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    let (_tmp, dir, _) = requested(&site, 4);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join(LOCK_KEY_FILE)), 0o600);
    assert_eq!(mode(dir.path()), 0o700, "a directory the lock creates is private too");
}

/// Two processes starting the same lock at once end up with one key, not two.
#[test]
fn concurrent_first_requests_agree_on_one_key() {
    for round in 0..8 {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock");
        let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|i| {
                    let dir = LockDir::new(&path);
                    s.spawn(move || {
                        dir.provisioning_request(&mut StdRng::seed_from_u64(round * 10 + i)).unwrap().lock_key
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "round {round}: {keys:?}");
        let on_disk = LockDir::new(&path).status().unwrap();
        assert_eq!(on_disk, LockDirStatus::AwaitingCertificate { lock_public_key: keys[0] });
        assert_eq!(snapshot(&path).len(), 1, "only the key file");
    }
}

#[tokio::test]
async fn an_installed_lock_opens_for_a_credential_of_its_site() {
    let site = Site::new();
    let (_tmp, dir, cert) = requested(&site, 5);
    let authority = site.authority.verifying_key().to_bytes();
    let installed = dir.install(&cert, authority).unwrap();
    assert_eq!((installed.lock_id, installed.doors.clone()), (LOCK_ID, vec![DOOR, OTHER_DOOR]));
    let status = dir.status().unwrap();
    assert_eq!(
        status,
        LockDirStatus::Installed {
            lock_id: LOCK_ID,
            doors: vec![DOOR, OTHER_DOOR],
            not_before: (T0 - 86_400) as u32,
            not_after: (T0 + 86_400) as u32,
            lock_public_key: installed.lock_public_key(),
            authority_public_key: authority,
        }
    );
    assert_eq!(std::fs::read(dir.path().join(CERTIFICATE_FILE)).unwrap(), cert);
    assert_eq!(std::fs::read(dir.path().join(AUTHORITY_FILE)).unwrap(), authority);

    // The phone checks the door's current lock key (from its last sync): this lock's key.
    let mut params = site.params();
    params.lock_key = Some(installed.lock_public_key());
    {
        let lock = dir.open().unwrap();
        assert_eq!(lock.lock_id(), LOCK_ID);
        let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams::default());
        sim.set_clock(T0);
        assert!(phone_unlock(&sim, params.clone()).await.unwrap().decision.is_opened());
        assert_eq!(lock.opened_count(), 1);
    }
    // The state and audit log live in the same directory and survive a restart.
    let lock = dir.open().unwrap();
    assert_eq!(lock.audit_log().len(), 1);
    assert_eq!(lock.state().attempt_counter, 1);
    assert!(dir.path().join(AUDIT_LOG_FILE).exists());

    // A credential another site signed does not open it.
    let other_site = SigningKey::from_bytes(&[0xB2; 32]);
    let mut foreign = params;
    foreign.credential = Credential::issue(&other_site, site.credential().body).unwrap();
    let sim = SimulatedLock::new(lock.clone(), LOCK_ID, LinkParams::default());
    sim.set_clock(T0);
    let outcome = phone_unlock(&sim, foreign).await;
    assert!(!matches!(outcome, Ok(ref o) if o.decision.is_opened()), "{outcome:?}");
    assert_eq!(lock.opened_count(), 0);
}

#[test]
fn another_locks_answer_is_refused_and_the_directory_left_as_it_was() {
    let site = Site::new();
    let (_tmp, dir, _) = requested(&site, 6);
    let authority = site.authority.verifying_key().to_bytes();
    let before = snapshot(dir.path());

    let other_lock = NewLock::generate(&mut StdRng::seed_from_u64(60));
    let others = certify(&site.authority, LOCK_ID, other_lock.lock_public_key(), T0 - 60, T0 + 60);
    assert!(matches!(dir.install(&others, authority), Err(LockError::CertificateForAnotherKey)));
    assert_eq!(snapshot(dir.path()), before);

    // Garbage, or a certificate that the authority given did not sign: invalid, nothing written.
    let LockDirStatus::AwaitingCertificate { lock_public_key } = dir.status().unwrap() else { panic!() };
    let mine = certify(&site.authority, LOCK_ID, lock_public_key, T0 - 60, T0 + 60);
    assert!(matches!(dir.install(&mine, [0x11; 32]), Err(LockError::Provision(_))));
    assert!(matches!(dir.install(&mine[..mine.len() - 1], authority), Err(LockError::Provision(_))));
    assert!(matches!(dir.install(b"", authority), Err(LockError::Provision(_))));
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(dir.status().unwrap(), LockDirStatus::AwaitingCertificate { lock_public_key });

    // A directory without a key has no request out: nothing can be for it.
    let empty = tempfile::tempdir().unwrap();
    let fresh = LockDir::new(empty.path().join("lock"));
    assert!(matches!(fresh.install(&mine, authority), Err(LockError::NoKey)));
    assert!(!fresh.path().exists());
}

#[tokio::test]
async fn a_renewal_replaces_the_certificate_and_keeps_the_state() {
    let site = Site::new();
    let (_tmp, dir, first) = requested(&site, 7);
    let authority = site.authority.verifying_key().to_bytes();
    let lock_key = dir.install(&first, authority).unwrap().lock_public_key();
    {
        let sim = SimulatedLock::new(dir.open().unwrap(), LOCK_ID, LinkParams::default());
        sim.set_clock(T0);
        assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    }

    // Installing the same answer twice changes nothing.
    let installed = snapshot(dir.path());
    dir.install(&first, authority).unwrap();
    assert_eq!(snapshot(dir.path()), installed);

    let renewal = certify(&site.authority, LOCK_ID, lock_key, T0, T0 + 10 * 86_400);
    dir.install(&renewal, authority).unwrap();
    assert_eq!(std::fs::read(dir.path().join(CERTIFICATE_FILE)).unwrap(), renewal);
    let LockDirStatus::Installed { not_before, not_after, .. } = dir.status().unwrap() else { panic!() };
    assert_eq!((not_before, not_after), (T0 as u32, (T0 + 10 * 86_400) as u32));
    let lock = dir.open().unwrap();
    assert_eq!(lock.config().certificate().not_after, (T0 + 10 * 86_400) as u32);
    assert_eq!(lock.audit_log().len(), 1, "the audit log is the same lock's");

    // What is not a renewal of this installation is refused, and nothing changes.
    let renewed = snapshot(dir.path());
    let older = certify(&site.authority, LOCK_ID, lock_key, T0 - 2 * 86_400, T0 + 20 * 86_400);
    assert!(matches!(dir.install(&older, authority), Err(LockError::OlderCertificate)));
    let other_id = certify(&site.authority, LOCK_ID + 1, lock_key, T0 + 1, T0 + 20 * 86_400);
    assert!(matches!(dir.install(&other_id, authority), Err(LockError::AlreadyInstalled { lock_id: LOCK_ID })));
    let other_site = SigningKey::from_bytes(&[0xB2; 32]);
    let moved = certify(&other_site, LOCK_ID, lock_key, T0 + 1, T0 + 20 * 86_400);
    let moved_authority = other_site.verifying_key().to_bytes();
    assert!(matches!(dir.install(&moved, moved_authority), Err(LockError::AlreadyInstalled { lock_id: LOCK_ID })));
    assert_eq!(snapshot(dir.path()), renewed);
}

#[test]
fn damaged_files_are_typed_errors_and_never_replaced() {
    let site = Site::new();
    let authority = site.authority.verifying_key().to_bytes();
    let corrupt = |r: Result<LockDirStatus, LockError>, name: &str| match r {
        Err(LockError::CorruptLockFile { file, .. }) => assert_eq!(file, name),
        other => panic!("expected {name} to be reported corrupt, got {other:?}"),
    };

    // A truncated, empty or overlong key: reported, and a request does not make a new one.
    for damaged in [&[7u8; 16][..], &[], &[7u8; 33]] {
        let (_tmp, dir, cert) = requested(&site, 8);
        std::fs::write(dir.path().join(LOCK_KEY_FILE), damaged).unwrap();
        corrupt(dir.status(), LOCK_KEY_FILE);
        assert!(matches!(
            dir.provisioning_request(&mut StdRng::seed_from_u64(80)),
            Err(LockError::CorruptLockFile { file: LOCK_KEY_FILE, .. })
        ));
        assert!(matches!(dir.install(&cert, authority), Err(LockError::CorruptLockFile { .. })));
        assert_eq!(std::fs::read(dir.path().join(LOCK_KEY_FILE)).unwrap(), damaged, "left for a person to look at");
    }

    // A torn certificate (a copy from elsewhere, a disk fault; writes are atomic): reported
    // by status and open, and install does not paper over it.
    let (_tmp, dir, cert) = requested(&site, 9);
    dir.install(&cert, authority).unwrap();
    std::fs::write(dir.path().join(CERTIFICATE_FILE), &cert[..cert.len() / 2]).unwrap();
    corrupt(dir.status(), CERTIFICATE_FILE);
    assert!(matches!(dir.open(), Err(LockError::CorruptLockFile { file: CERTIFICATE_FILE, .. })));
    let damaged = snapshot(dir.path());
    assert!(dir.install(&cert, authority).is_err());
    assert_eq!(snapshot(dir.path()), damaged);

    // A flipped bit in the certificate's signature.
    let mut flipped = cert.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(dir.path().join(CERTIFICATE_FILE), &flipped).unwrap();
    corrupt(dir.status(), CERTIFICATE_FILE);

    // A flipped bit in the key: the certificate no longer certifies it.
    std::fs::write(dir.path().join(CERTIFICATE_FILE), &cert).unwrap();
    dir.status().unwrap();
    let mut key = std::fs::read(dir.path().join(LOCK_KEY_FILE)).unwrap();
    key[0] ^= 1;
    std::fs::write(dir.path().join(LOCK_KEY_FILE), &key).unwrap();
    corrupt(dir.status(), CERTIFICATE_FILE);
    assert!(matches!(dir.open(), Err(LockError::CorruptLockFile { .. })));
    key[0] ^= 1;
    std::fs::write(dir.path().join(LOCK_KEY_FILE), &key).unwrap();

    // The authority truncated or gone.
    std::fs::write(dir.path().join(AUTHORITY_FILE), &authority[..31]).unwrap();
    corrupt(dir.status(), AUTHORITY_FILE);
    std::fs::remove_file(dir.path().join(AUTHORITY_FILE)).unwrap();
    corrupt(dir.status(), AUTHORITY_FILE);
    std::fs::write(dir.path().join(AUTHORITY_FILE), authority).unwrap();
    assert!(matches!(dir.status().unwrap(), LockDirStatus::Installed { lock_id: LOCK_ID, .. }));
    dir.open().unwrap();
}

/// A crash after the authority was written but before the certificate leaves a lock still
/// awaiting its certificate, and installing the answer again completes it.
#[test]
fn an_interrupted_install_is_completed_by_installing_again() {
    let site = Site::new();
    let (_tmp, dir, cert) = requested(&site, 10);
    let authority = site.authority.verifying_key().to_bytes();
    std::fs::write(dir.path().join(AUTHORITY_FILE), [0x11; 32]).unwrap();
    assert!(matches!(dir.status().unwrap(), LockDirStatus::AwaitingCertificate { .. }));
    dir.install(&cert, authority).unwrap();
    assert!(matches!(dir.status().unwrap(), LockDirStatus::Installed { lock_id: LOCK_ID, .. }));
    assert_eq!(std::fs::read(dir.path().join(AUTHORITY_FILE)).unwrap(), authority);
}
