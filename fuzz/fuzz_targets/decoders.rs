//! Every decoder of the door protocol fed arbitrary bytes. The first input byte picks the
//! decoder, the rest is its input.
//!
//! Asserts: no panic; and since every encoding is strict and canonical, whatever decodes
//! re-encodes to exactly the input (the lock state's sets excepted: they re-encode sorted
//! and without duplicates, and must then read back equal).
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_protocol::*;

#[path = "common/mod.rs"]
mod common;
use common::with_selector as input;

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, input)) = data.split_first() else { return };
    match selector % 11 {
        0 => round_trip(fuzzing::hello(input), input),
        1 => round_trip(fuzzing::challenge(input), input),
        2 => {
            if let Ok((canonical, signed_len)) = fuzzing::proof_plaintext(input) {
                // The padding is the one lenient part: any run of fewer than 64 zero bytes.
                assert!(signed_len + 64 <= input.len() && input.len() < signed_len + 64 + messages::PROOF_PADDING);
                assert_eq!(canonical[..signed_len + 64], input[..signed_len + 64]);
                assert_eq!(canonical.len() % messages::PROOF_PADDING, 0);
                assert_eq!(fuzzing::proof_plaintext(&canonical).map(|(c, _)| c).as_ref(), Ok(&canonical));
            }
        }
        3 => round_trip(fuzzing::result_plaintext(input), input),
        4 => round_trip(Credential::from_bytes(input).map(|c| c.to_bytes()), input),
        5 => round_trip(LockCertificate::from_bytes(input).map(|c| c.to_bytes()), input),
        6 => round_trip(TimeUpdate::from_bytes(input).map(|t| t.to_bytes()), input),
        7 => round_trip(RevocationList::from_bytes(input).map(|l| l.to_bytes()), input),
        8 => round_trip(AuditRecord::from_bytes(input).map(|a| a.to_bytes()), input),
        9 => {
            if let Ok(state) = LockState::from_bytes(input) {
                let bytes = state.to_bytes();
                assert_eq!(LockState::from_bytes(&bytes).as_ref(), Ok(&state));
                assert!(bytes.len() <= input.len());
                if bytes.len() == input.len() && sorted_unique(input) {
                    assert_eq!(bytes, input);
                }
            }
        }
        _ => {
            if let Ok(t) = MessageType::of(input) {
                assert_eq!(t as u8, input[0]);
            }
            if let Some(&code) = input.first() {
                if let Ok(d) = Decision::from_code(code) {
                    assert_eq!(d.code(), code);
                }
            }
        }
    }
});

fn round_trip(decoded: Result<Vec<u8>, ProtocolError>, input: &[u8]) {
    if let Ok(bytes) = decoded {
        assert_eq!(bytes, input, "a strict decoding re-encodes to its input");
    }
}

/// Whether the revoked ids and keys of an encoded lock state are in strictly ascending order.
fn sorted_unique(state: &[u8]) -> bool {
    fn run<const N: usize>(bytes: &[u8], at: usize) -> Option<(bool, usize)> {
        let n = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let items: Vec<&[u8]> = bytes.get(at + 4..at + 4 + n * N)?.chunks(N).collect();
        Some((items.windows(2).all(|w| w[0] < w[1]), at + 4 + n * N))
    }
    const COUNTS_AT: usize = 1 + 5 * 8;
    let Some((creds, next)) = run::<16>(state, COUNTS_AT) else { return false };
    let Some((devices, _)) = run::<32>(state, next) else { return false };
    creds && devices
}

/// One real encoding of each structure, from the fixture's site and exchange.
fn seeds() -> Vec<Vec<u8>> {
    let site = common::site();
    let g = &site.genuine;
    let revocations = RevocationList::issue(&site.authority, 4, vec![[0x11; 16], [0x22; 16]], vec![[0x33; 32]]).unwrap();
    let mut state = site.state_before.clone();
    state.apply_revocation_list(&site.config, &revocations);
    let audit = &g.result_plaintext[..updates::AUDIT_RECORD_LEN];
    vec![
        input(0, &g.hello),
        input(1, &g.challenge),
        input(2, &g.proof_plaintext),
        input(3, &g.result_plaintext),
        input(4, &site.params.credential.to_bytes()),
        input(5, &site.config.certificate().to_bytes()),
        input(6, &site.params.updates.time.as_ref().unwrap().to_bytes()),
        input(7, &revocations.to_bytes()),
        input(8, audit),
        input(9, &site.state_before.to_bytes()),
        input(9, &state.to_bytes()),
        input(10, &[MessageType::Proof as u8]),
    ]
}
