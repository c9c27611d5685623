//! The phone's role fed arbitrary input: a real `PhoneHandshake` with real params.
//!
//! The first input byte picks what the lock side sends:
//! 0. arbitrary `Challenge`, then arbitrary `Result` bytes;
//! 1. the real lock's `Challenge`, then its real `Result` with edits applied;
//! 2. the real `Challenge`, then a `Result` sealed with the session keys around arbitrary
//!    plaintext, which reaches the result decoder and the audit-record checks;
//! 3. like 2, with edits applied to the real plaintext;
//! 4. the real exchange, the phone sends the real delta as an `Update`, then arbitrary
//!    `UpdateAck` bytes;
//! 5. like 4, with an `UpdateAck` sealed around arbitrary plaintext;
//! 6. like 4, with the real `UpdateAck` with edits.
//!
//! Asserts: no panic; the phone answers only the real lock's challenge (it reveals nothing
//! to anyone else) and accepts only the real lock's signed result; a finished handshake
//! refuses further messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_protocol::*;

#[path = "common/mod.rs"]
mod common;
use common::{mutate, site, FixedRng};

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, rest)) = data.split_first() else { return };
    let site = site();
    let g = &site.genuine;
    let (mut phone, hello) = PhoneHandshake::start(site.params.clone(), &mut FixedRng::phone()).expect("start");
    assert_eq!(hello, g.hello);
    let mode = selector % 7;

    let (challenge, result) = match mode {
        0 => {
            let split = rest.first().map_or(0, |&n| n as usize * 2).min(rest.len());
            let (challenge, result) = rest.split_at(split);
            (challenge.to_vec(), result.to_vec())
        }
        1 => (g.challenge.clone(), mutate(&g.result, rest)),
        2 => (g.challenge.clone(), seal(MessageType::Result, rest)),
        3 => (g.challenge.clone(), seal(MessageType::Result, &mutate(&g.result_plaintext, rest))),
        _ => (g.challenge.clone(), g.result.clone()),
    };

    match phone.handle_challenge(&challenge) {
        Ok(proof) => {
            assert_eq!(challenge, g.challenge, "the phone answered a challenge the real lock did not send");
            assert_eq!(proof, g.proof);
        }
        Err(_) => {
            assert!(phone.is_finished(), "a refused challenge ends the attempt");
            assert!(phone.handle_result(&result).is_err());
            return;
        }
    }
    let outcome = phone.handle_result(&result);
    assert!(phone.is_finished());
    let Ok(outcome) = outcome else {
        refuses_handshake_messages(&mut phone, &challenge, &result);
        assert!(!phone.accepts_updates());
        assert!(phone.update(&site.delta).is_err());
        return;
    };
    let pt = fuzzing::open(MessageType::Result, 0, common::lock_secret(), &g.hello, &g.challenge, &result)
        .expect("an accepted result decrypts");
    let audit_len = updates::AUDIT_RECORD_LEN;
    assert_eq!(pt[..audit_len], g.result_plaintext[..audit_len], "accepted an audit record the lock did not sign");
    assert_eq!(outcome.lock_id, common::LOCK_ID);
    assert_eq!(outcome.decision, Decision::Opened);

    if mode < 4 {
        refuses_handshake_messages(&mut phone, &challenge, &result);
        return;
    }
    assert!(phone.accepts_updates());
    let update = phone.update(&site.delta).expect("update");
    assert_eq!(update, g.update);
    assert!(phone.update(&site.delta).is_err(), "one update at a time");
    let ack = match mode {
        4 => rest.to_vec(),
        5 => seal(MessageType::UpdateAck, rest),
        _ => mutate(&g.update_ack, rest),
    };
    match phone.handle_update_ack(&ack) {
        Ok(_) => {
            let pt = fuzzing::open(MessageType::UpdateAck, 0, common::lock_secret(), &g.hello, &g.challenge, &ack)
                .expect("an accepted ack decrypts");
            assert!(fuzzing::update_ack_plaintext(&pt).is_ok());
            assert!(phone.accepts_updates(), "the next update may follow");
        }
        Err(_) => {
            assert!(!phone.accepts_updates(), "a bad ack ends the session");
            assert!(phone.update(&site.delta).is_err());
        }
    }
    refuses_handshake_messages(&mut phone, &challenge, &result);
});

/// A decided attempt takes no second Challenge or Result (and either ends the session).
fn refuses_handshake_messages(phone: &mut PhoneHandshake, challenge: &[u8], result: &[u8]) {
    assert!(phone.handle_result(result).is_err());
    assert!(phone.handle_challenge(challenge).is_err());
    assert!(!phone.accepts_updates());
}

/// A message of the genuine session around `plaintext`, as a lock holding the keys would send.
fn seal(kind: MessageType, plaintext: &[u8]) -> Vec<u8> {
    let g = &site().genuine;
    fuzzing::seal(kind, 0, common::lock_secret(), &g.hello, &g.challenge, plaintext).expect("seal")
}

/// The real exchange in every mode, and a few edits.
fn seeds() -> Vec<Vec<u8>> {
    let g = &site().genuine;
    vec![
        common::two_messages(0, &g.challenge, &g.result),
        common::two_messages(0, &g.challenge, &g.challenge),
        vec![1],
        common::with_selector(2, &g.result_plaintext),
        vec![3],
        vec![1, 0, 0, 100, 0x01],
        vec![3, 0, 0, 30, 0x04],
        vec![3, 3, 0, 140, 0],
        common::with_selector(4, &g.update_ack),
        common::with_selector(5, &g.update_ack_plaintext),
        vec![6],
        vec![6, 0, 0, 20, 0x01],
    ]
}
