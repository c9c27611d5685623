//! End-to-end: a phone (PhoneHandshake) opening a SimulatedLock.

mod common;

use std::time::Duration;

use common::*;
use porta_lock::porta_protocol::{AuditRecord, Decision, DenyReason, Updates};
use porta_lock::{Direction, LinkError, LinkParams, LockError};

#[tokio::test]
async fn phone_opens_lock_over_mtu_23_185_517_in_two_round_trips() {
    let site = Site::new();
    // Fragments up (Hello + Proof) / down (Challenge + Result), SPEC §6.
    for (mtu, up, down) in [(23u16, 3 + 15, 13 + 8), (185, 1 + 2, 2 + 1), (517, 2, 2)] {
        let sim = site.sim(LinkParams::new(mtu, 30.0));
        let out = phone_unlock(&sim, site.params()).await.unwrap();
        assert_eq!(out.decision, Decision::Opened, "mtu {mtu}");
        assert_eq!(out.lock_id, LOCK_ID);
        assert_eq!(sim.opened_count(), 1);
        let last = sim.last_outcome().unwrap();
        assert!(last.opened);
        assert_eq!(last.door_id, Some(DOOR));
        assert_eq!(last.credential_id, Some(CRED_ID));

        let s = sim.stats();
        assert!(s.round_trips <= 2, "mtu {mtu}: {s:?}");
        assert_eq!(s.round_trips, 2);
        assert_eq!(s.fragments_up, up, "mtu {mtu}");
        assert_eq!(s.fragments_down, down, "mtu {mtu}");
        // Fragment headers: 1 byte each, plus 2 length bytes per message.
        assert_eq!(s.bytes_up, 50 + 273 + up + 4);
        assert_eq!(s.bytes_down, 242 + 147 + down + 4, "a two-door lock's Challenge is 242 bytes");
        for (dir, f) in sim.air_log() {
            assert!(f.len() <= mtu as usize - 3, "{dir:?} fragment over MTU");
        }

        // The audit record the phone uploads is the lock's, signed by the lock key.
        let log = sim.audit_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0], out.audit.to_bytes());
        let rec = AuditRecord::from_bytes(&log[0]).unwrap();
        rec.verify(&site.provision.lock_public_key()).unwrap();
        assert_eq!(rec.counter, 1);
        assert_eq!(rec.time, T0);
    }
}

#[tokio::test]
async fn air_log_carries_nothing_identifying_in_clear() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(23, 7.5));
    phone_unlock(&sim, site.params()).await.unwrap();
    let up: Vec<u8> =
        sim.air_log().into_iter().filter(|(d, _)| *d == Direction::PhoneToLock).flat_map(|(_, f)| f).collect();
    let device = site.device.verifying_key().to_bytes();
    for needle in [&CRED_ID[..], &device[..]] {
        assert!(!up.windows(needle.len()).any(|w| w == needle));
    }
}

#[tokio::test]
async fn replayed_air_log_does_not_open() {
    let site = Site::new();
    let sim = site.sim(LinkParams::default());
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    assert_eq!(sim.opened_count(), 1);
    let recorded: Vec<Vec<u8>> =
        sim.air_log().into_iter().filter(|(d, _)| *d == Direction::PhoneToLock).map(|(_, f)| f).collect();

    // Same lock RNG seed as the recorded session: the attempt counter still makes the
    // challenge fresh.
    sim.set_rng_seed(42);
    let replies = sim.inject(&recorded).await.unwrap();
    assert!(!replies.is_empty(), "lock answers the replayed hello and proof");
    assert_eq!(sim.opened_count(), 1);
    let last = sim.last_outcome().unwrap();
    assert!(!last.opened);
    assert_eq!(last.decision, Decision::Denied(DenyReason::DecryptFailed));
    assert_eq!(sim.audit_log().len(), 2);

    // Replaying the recorded lock → phone fragments upwards is refused outright.
    let down: Vec<Vec<u8>> =
        sim.air_log().into_iter().filter(|(d, _)| *d == Direction::LockToPhone).map(|(_, f)| f).collect();
    let r = sim.inject(&down).await;
    assert!(matches!(r, Err(LinkError::Lock(LockError::Protocol(_)))), "{r:?}");
    assert_eq!(sim.opened_count(), 1);
}

#[tokio::test]
async fn tampered_proof_fragment_does_not_open() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(23, 7.5));
    // Flip a data bit in the 5th fragment of the Proof (message 2).
    let out = phone_unlock_with(&sim, site.params(), 7, None, &|m, i, f| {
        if m == 2 && i == 4 {
            f[3] ^= 0x01;
        }
    })
    .await
    .unwrap();
    assert_eq!(out.decision, Decision::Denied(DenyReason::DecryptFailed));
    assert_eq!(sim.opened_count(), 0);
    assert!(!sim.last_outcome().unwrap().opened);
}

#[tokio::test]
async fn tampered_challenge_is_refused_by_phone_and_nothing_opens() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(185, 30.0));
    let r = phone_unlock_with(&sim, site.params(), 7, None, &|m, i, f| {
        if m == 1 && i == 1 {
            let n = f.len();
            f[n - 1] ^= 0x80;
        }
    })
    .await;
    assert!(r.is_err());
    assert_eq!(sim.opened_count(), 0);
    assert!(sim.last_outcome().is_none());
}

#[tokio::test]
async fn tampered_fragment_header_kills_the_connection() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(23, 30.0));
    let r = phone_unlock_with(&sim, site.params(), 7, None, &|m, i, f| {
        if m == 2 && i == 3 {
            f[0] ^= 0x01; // wrong sequence number
        }
    })
    .await;
    let err = r.unwrap_err();
    let link = err.downcast_ref::<LinkError>().expect("link error");
    assert!(matches!(link, LinkError::Lock(LockError::Framing(_))), "{link:?}");
    assert_eq!(sim.opened_count(), 0);
    // The lock is free again.
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
}

#[tokio::test]
async fn expired_credential_by_lock_clock_is_denied() {
    let site = Site::new();
    let sim = site.sim(LinkParams::default());
    let cred = site.credential_valid(T0 - 3600, T0 + 60);
    sim.set_clock(T0 + 3600);
    let out = phone_unlock(&sim, site.params_with(cred, Updates::default())).await.unwrap();
    assert_eq!(out.decision, Decision::Denied(DenyReason::Expired));
    assert_eq!(sim.opened_count(), 0);
}

#[tokio::test]
async fn slow_proof_beyond_deadline_is_denied() {
    let site = Site::new();
    let sim = site.sim(LinkParams::default());
    let out =
        phone_unlock_with(&sim, site.params(), 7, Some(Duration::from_millis(2500)), &|_, _, _| {}).await.unwrap();
    assert_eq!(out.decision, Decision::Denied(DenyReason::Timeout));
    assert_eq!(sim.opened_count(), 0);
}

#[tokio::test]
async fn out_of_range_and_busy() {
    let site = Site::new();
    let sim = site.sim(LinkParams::default());
    assert_eq!(sim.lock_id(), LOCK_ID);

    sim.set_in_range(false);
    assert!(matches!(sim.connect().await, Err(LinkError::NotInRange)));
    sim.set_in_range(true);

    sim.set_busy(true);
    assert!(matches!(sim.connect().await, Err(LinkError::Busy)));
    sim.set_busy(false);

    // One phone at a time.
    let first = sim.connect().await.unwrap();
    assert!(matches!(sim.connect().await, Err(LinkError::Busy)));
    first.disconnect().await;
    assert!(matches!(first.write(vec![0xC0, 0, 1, 1]).await, Err(LinkError::Disconnected)));
    let second = sim.connect().await.unwrap();
    drop(second);

    // Walking out of range mid-handshake drops the link.
    let link = sim.connect().await.unwrap();
    let (_, hello) = porta_lock::porta_protocol::PhoneHandshake::start(
        site.params(),
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3),
    )
    .unwrap();
    for f in porta_lock::porta_protocol::fragment(&hello, link.att_mtu()).unwrap() {
        link.write(f).await.unwrap();
    }
    sim.set_in_range(false);
    assert!(matches!(link.notification(WAIT).await, Err(LinkError::Disconnected)));
    assert!(!link.is_connected());
    sim.set_in_range(true);
    drop(link);
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
}

#[tokio::test]
async fn notification_times_out_in_virtual_time() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(185, 50.0));
    let link = sim.connect().await.unwrap();
    // Nothing was written: nothing will come.
    let r = link.notification(Duration::from_millis(20)).await;
    assert!(matches!(r, Err(LinkError::Timeout)));
    assert!((link.virtual_ms() - 20.0).abs() < 1e-9);
}

async fn unlock_ms(site: &Site, mtu: u16, interval: f64) -> (f64, porta_lock::LinkStats) {
    let sim = site.sim(LinkParams::new(mtu, interval));
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    let s = sim.stats();
    (s.virtual_ms, s)
}

#[tokio::test]
async fn virtual_time_model() {
    let site = Site::new();
    let (t185, _) = unlock_ms(&site, 185, 30.0).await;
    let (t23, _) = unlock_ms(&site, 23, 30.0).await;
    let (t517, _) = unlock_ms(&site, 517, 30.0).await;
    assert!(t185 < 150.0, "MTU 185 @ 30 ms: {t185} ms");
    assert!(t23 > t185, "MTU 23 {t23} ms vs 185 {t185} ms");
    assert!(t517 <= t185);
    // Latency adds once per direction per round trip.
    let sim = site.sim(LinkParams::new(185, 30.0).with_latency(5.0));
    phone_unlock(&sim, site.params()).await.unwrap();
    let with_latency = sim.stats().virtual_ms;
    assert!(with_latency > t185 && with_latency <= t185 + 4.0 * 5.0 + 2.0 * 30.0);
}

#[tokio::test]
async fn timing_table() {
    let site = Site::new();
    println!("interval_ms  mtu  virtual_ms  frags_up/down  bytes_up/down  round_trips");
    for interval in [7.5, 30.0, 50.0] {
        for mtu in [23u16, 185, 517] {
            let (ms, s) = unlock_ms(&site, mtu, interval).await;
            println!(
                "{interval:>11} {mtu:>4} {ms:>11.1} {:>8}/{:<5} {:>8}/{:<5} {:>5}",
                s.fragments_up, s.fragments_down, s.bytes_up, s.bytes_down, s.round_trips
            );
        }
    }
}

#[tokio::test]
async fn realtime_link_takes_the_modelled_time() {
    let site = Site::new();
    let sim = site.sim(LinkParams::new(517, 7.5).with_realtime(true));
    let start = std::time::Instant::now();
    assert!(phone_unlock(&sim, site.params()).await.unwrap().decision.is_opened());
    let wall = start.elapsed().as_secs_f64() * 1000.0;
    let modelled = sim.stats().virtual_ms;
    assert!(wall + 1.0 >= modelled, "wall {wall} ms < modelled {modelled} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reader_task_receives_notifications() {
    // A phone core may read notifications on another task while it writes.
    let site = Site::new();
    let sim = site.sim(LinkParams::new(185, 30.0));
    let link = std::sync::Arc::new(sim.connect().await.unwrap());
    let reader = {
        let link = link.clone();
        tokio::spawn(async move { link.notification(WAIT).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, hello) = porta_lock::porta_protocol::PhoneHandshake::start(
        site.params(),
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3),
    )
    .unwrap();
    for f in porta_lock::porta_protocol::fragment(&hello, link.att_mtu()).unwrap() {
        link.write(f).await.unwrap();
    }
    let first = reader.await.unwrap().unwrap();
    assert_eq!(first[0] & 0x80, 0x80, "first challenge fragment");
}
