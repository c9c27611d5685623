//! The lock's role fed arbitrary input: a real `LockHandshake` with a real `LockConfig`.
//!
//! The first input byte picks what the phone side sends (low 2 bits) and the lock's clocks:
//! 0. arbitrary `Hello`, then arbitrary `Proof` bytes;
//! 1. a real phone's `Hello`, then its real `Proof` with edits applied;
//! 2. a real `Hello`, then a `Proof` sealed with the session keys around arbitrary plaintext,
//!    which reaches the proof decoder and every check behind the decryption;
//! 3. like 2, with edits applied to the real plaintext.
//!
//! Asserts: no panic; `Decision::Opened` only for what the real phone produced; a finished
//! handshake refuses further messages; the state the lock persists reads back the same.
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
        _ => (NOW + (selector as u64 & 0x3f) * 7 * 86_400, PROOF_MS),
    };
    let mut state = site.state_before.clone();
    let mut lock = LockHandshake::new();

    let (hello, proof) = match selector & 3 {
        0 => {
            let split = rest.first().map_or(0, |&n| n as usize * 2).min(rest.len());
            let (hello, proof) = rest.split_at(split);
            (hello.to_vec(), proof.to_vec())
        }
        1 => (g.hello.clone(), mutate(&g.proof, rest)),
        2 => (g.hello.clone(), seal_proof(rest)),
        _ => (g.hello.clone(), seal_proof(&mutate(&g.proof_plaintext, rest))),
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
    assert!(lock.handle_proof(&site.config, &mut state, &proof, now_unix, proof_ms).is_err());
    assert!(lock.handle_hello(&site.config, &mut state, &g.hello, HELLO_MS, &mut FixedRng::lock()).is_err());

    let Ok(outcome) = outcome else {
        assert_eq!(state, before, "a framing error changes nothing");
        return;
    };
    if outcome.decision.is_opened() {
        assert_eq!(hello, g.hello, "opened for a Hello the real phone did not send");
        let pt = fuzzing::open(MessageType::Proof, common::phone_secret(), &hello, &challenge, &proof)
            .expect("an accepted proof decrypts");
        let n = g.proof_authenticated_len;
        assert!(pt.len() >= n && pt[..n] == g.proof_plaintext[..n], "opened for a proof the real phone did not make");
    }
    assert_eq!(state.audit_counter, before.audit_counter.wrapping_add(1), "every decision is audited");
    assert!(state.trusted_time >= before.trusted_time, "trusted time only rises");
    assert_eq!(LockState::from_bytes(&state.to_bytes()).as_ref(), Ok(&state), "persisted state reads back");
    assert_eq!(
        fuzzing::result_plaintext(
            &fuzzing::open(MessageType::Result, common::lock_secret(), &hello, &challenge, &outcome.response)
                .expect("the lock's Result decrypts")
        )
        .map(|_| ()),
        Ok(()),
        "the lock's Result is well-formed"
    );
});

/// A `Proof` for the genuine session around `plaintext`, as a phone holding the keys would send.
fn seal_proof(plaintext: &[u8]) -> Vec<u8> {
    let g = &site().genuine;
    fuzzing::seal(MessageType::Proof, common::phone_secret(), &g.hello, &g.challenge, plaintext).expect("seal")
}

/// The real exchange in every mode, with each clock, and a few edits.
fn seeds() -> Vec<Vec<u8>> {
    let g = &site().genuine;
    let mut seeds = Vec::new();
    for clock in [0x00, 0x80, 0xc1] {
        seeds.push(common::two_messages(clock, &g.hello, &g.proof));
        seeds.push(vec![clock | 1]);
        seeds.push(common::with_selector(clock | 2, &g.proof_plaintext));
        seeds.push(vec![clock | 3]);
    }
    seeds.push(common::two_messages(0, &g.hello, &g.hello));
    seeds.push(vec![1, 0, 0, 40, 0x01]);
    seeds.push(vec![3, 3, 0, 200, 0]);
    seeds.push(vec![3, 0, 0, 6, 0x80]);
    seeds
}
