//! The lock's role fed arbitrary input: a real `LockHandshake` with a real `LockConfig`.
//!
//! The first input byte picks what the phone side sends (low 3 bits) and the lock's clocks
//! (top 2 bits):
//! 0. arbitrary `Hello`, then arbitrary `Proof` bytes;
//! 1. a real phone's `Hello`, then its real `Proof` with edits applied;
//! 2. a real `Hello`, then a `Proof` sealed with the session keys around arbitrary plaintext,
//!    which reaches the proof decoder and every check behind the decryption;
//! 3. like 2, with edits applied to the real plaintext;
//! 4. the real `Hello` and `Proof`, then arbitrary `Update` messages (length-prefixed);
//! 5. the real exchange, then `Update`s sealed around arbitrary plaintexts (revocation deltas);
//! 6. the real exchange, then the real `Update` with edits;
//! 7. the real exchange, then an `Update` sealed around the real delta with edits.
//!
//! Asserts: no panic; `Decision::Opened` only for what the real phone produced, and a delta
//! applied only if the site signed it; a finished handshake refuses further messages; the
//! state the lock persists reads back the same, its counters and versions never go back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_protocol::*;

#[path = "common/mod.rs"]
mod common;
use common::{mutate, site, FixedRng, HELLO_MS, NOW, PROOF_MS};

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, rest)) = data.split_first() else { return };
    let site = site();
    let g = &site.genuine;
    // Clocks: the vector's, or the proof late (past the deadline), or weeks later (expired).
    let (now_unix, proof_ms) = match selector >> 6 {
        0 | 1 => (NOW, PROOF_MS),
        2 => (NOW, HELLO_MS + PROOF_DEADLINE_MS + 1),
        _ => (NOW + (selector as u64 & 0x38) * 7 * 86_400, PROOF_MS),
    };
    let mode = selector & 7;
    let mut state = site.state_before.clone();
    let mut lock = LockHandshake::new();

    let (hello, proof) = match mode {
        0 => {
            let split = rest.first().map_or(0, |&n| n as usize * 2).min(rest.len());
            let (hello, proof) = rest.split_at(split);
            (hello.to_vec(), proof.to_vec())
        }
        1 => (g.hello.clone(), mutate(&g.proof, rest)),
        2 => (g.hello.clone(), seal(MessageType::Proof, 0, rest)),
        3 => (g.hello.clone(), seal(MessageType::Proof, 0, &mutate(&g.proof_plaintext, rest))),
        _ => (g.hello.clone(), g.proof.clone()),
    };

    let challenge = match lock.handle_hello(&site.config, &mut state, &hello, HELLO_MS, &mut FixedRng::lock()) {
        Ok(c) => c,
        Err(_) => {
            assert!(lock.is_finished(), "a refused Hello ends the handshake");
            assert!(lock.handle_proof(&site.config, &mut state, &proof, now_unix, proof_ms).is_err());
            return;
        }
    };
    if hello == g.hello {
        assert_eq!(challenge, g.challenge, "the lock is deterministic for a given Hello, state and randomness");
    }
    let before = state.clone();
    let outcome = lock.handle_proof(&site.config, &mut state, &proof, now_unix, proof_ms);
    assert!(lock.is_finished());

    let Ok(outcome) = outcome else {
        assert_eq!(state, before, "a framing error changes nothing");
        assert!(!lock.accepts_updates());
        refuses_handshake_messages(&mut lock, &mut state, &proof);
        return;
    };
    let genuine_proof = hello == g.hello && {
        let pt = fuzzing::open(MessageType::Proof, 0, common::phone_secret(), &hello, &challenge, &proof);
        let n = g.proof_authenticated_len;
        pt.is_ok_and(|pt| pt.len() >= n && pt[..n] == g.proof_plaintext[..n])
    };
    if outcome.decision.is_opened() {
        assert!(genuine_proof, "opened for a proof the real phone did not make");
    }
    // Updates only from a phone the lock authenticated (its audit record then names it).
    assert_eq!(lock.accepts_updates(), outcome.credential_id.is_some());
    if outcome.credential_id.is_some() {
        assert!(genuine_proof, "authenticated a proof the real phone did not make");
    }
    assert_eq!(state.audit_counter, before.audit_counter.wrapping_add(1), "every decision is audited");
    assert!(state.trusted_time >= before.trusted_time, "trusted time only rises");
    check_persisted(&state);
    let result = fuzzing::open(MessageType::Result, 0, common::lock_secret(), &hello, &challenge, &outcome.response)
        .expect("the lock's Result decrypts");
    assert!(fuzzing::result_plaintext(&result).is_ok(), "the lock's Result is well-formed");

    if mode < 4 || !lock.accepts_updates() {
        refuses_handshake_messages(&mut lock, &mut state, &proof);
        return;
    }
    let updates: Vec<Vec<u8>> = match mode {
        4 => common::messages(rest).into_iter().map(<[u8]>::to_vec).collect(),
        5 => common::messages(rest).iter().enumerate().map(|(i, pt)| seal(MessageType::Update, i as u64, pt)).collect(),
        6 => vec![mutate(&g.update, rest)],
        _ => vec![seal(MessageType::Update, 0, &mutate(&site.delta.to_bytes(), rest))],
    };
    for (i, update) in updates.iter().enumerate() {
        let before = state.clone();
        let Ok(ack) = lock.handle_update(&site.config, &mut state, update, now_unix) else {
            assert_eq!(state, before, "a refused Update changes nothing");
            assert!(!lock.accepts_updates(), "a refused Update ends the connection");
            assert!(lock.handle_update(&site.config, &mut state, update, now_unix).is_err());
            return;
        };
        let delta = fuzzing::open(MessageType::Update, i as u64, common::phone_secret(), &hello, &challenge, update)
            .expect("an accepted Update decrypts");
        if ack.status == DeltaStatus::Applied {
            assert_eq!(delta, site.delta.to_bytes(), "applied a delta the site did not sign");
            assert!(state.revocation_version > before.revocation_version);
        } else {
            assert_eq!(state.revocation_version, before.revocation_version);
        }
        assert!(state.revoked_credentials.len() + state.revoked_devices.len() <= lock::MAX_REVOCATION_ENTRIES);
        check_persisted(&state);
        let ack_pt =
            fuzzing::open(MessageType::UpdateAck, i as u64, common::lock_secret(), &hello, &challenge, &ack.response)
                .expect("the lock's UpdateAck decrypts");
        assert!(fuzzing::update_ack_plaintext(&ack_pt).is_ok(), "the lock's UpdateAck is well-formed");
    }
    refuses_handshake_messages(&mut lock, &mut state, &proof);
});

/// A decided handshake takes no second Hello or Proof (and either ends the connection).
fn refuses_handshake_messages(lock: &mut LockHandshake, state: &mut LockState, proof: &[u8]) {
    let site = site();
    assert!(lock.handle_proof(&site.config, state, proof, NOW, PROOF_MS).is_err());
    assert!(lock.handle_hello(&site.config, state, &site.genuine.hello, HELLO_MS, &mut FixedRng::lock()).is_err());
    assert!(!lock.accepts_updates());
}

fn check_persisted(state: &LockState) {
    assert_eq!(LockState::from_bytes(&state.to_bytes()).as_ref(), Ok(state), "persisted state reads back");
}

/// Message `index` of the genuine session around `plaintext`, as a phone holding the keys would send.
fn seal(kind: MessageType, index: u64, plaintext: &[u8]) -> Vec<u8> {
    let g = &site().genuine;
    fuzzing::seal(kind, index, common::phone_secret(), &g.hello, &g.challenge, plaintext).expect("seal")
}

/// The real exchange in every mode, with each clock, and a few edits.
fn seeds() -> Vec<Vec<u8>> {
    let site = site();
    let g = &site.genuine;
    let delta = site.delta.to_bytes();
    let mut seeds = Vec::new();
    for clock in [0x00, 0x80, 0xc8] {
        seeds.push(common::two_messages(clock, &g.hello, &g.proof));
        seeds.push(vec![clock | 1]);
        seeds.push(common::with_selector(clock | 2, &g.proof_plaintext));
        seeds.push(vec![clock | 3]);
    }
    seeds.push(common::two_messages(0, &g.hello, &g.hello));
    seeds.push(vec![1, 0, 0, 40, 0x01]);
    seeds.push(vec![3, 3, 0, 200, 0]);
    seeds.push(vec![3, 0, 0, 6, 0x80]);
    seeds.push(common::length_prefixed(4, &[&g.update]));
    seeds.push(common::length_prefixed(4, &[&g.update, &g.update]));
    seeds.push(common::length_prefixed(5, &[&delta]));
    seeds.push(common::length_prefixed(5, &[&delta, &delta]));
    seeds.push(vec![6]);
    seeds.push(vec![6, 0, 0, 30, 0x01]);
    seeds.push(vec![7]);
    seeds.push(vec![7, 0, 0, 10, 0x01]);
    seeds.push(vec![7, 3, 0, 60, 0]);
    seeds
}
