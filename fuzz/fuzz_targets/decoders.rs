//! Every decoder of the door protocol fed arbitrary bytes. The first input byte picks the
//! decoder, the rest is its input.
//!
//! Asserts: no panic; and since every encoding is strict and canonical, whatever decodes
//! re-encodes to exactly the input (the proof padding excepted: any run of fewer than 64
//! zero bytes; its canonical form must then read back the same).
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_protocol::*;

#[path = "common/mod.rs"]
mod common;
use common::with_selector as input;

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, input)) = data.split_first() else { return };
    match selector % 13 {
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
        4 => round_trip(fuzzing::update_ack_plaintext(input), input),
        5 => round_trip(Credential::from_bytes(input).map(|c| c.to_bytes()), input),
        6 => round_trip(LockCertificate::from_bytes(input).map(|c| c.to_bytes()), input),
        7 => round_trip(TimeUpdate::from_bytes(input).map(|t| t.to_bytes()), input),
        8 => round_trip(RevocationDelta::from_bytes(input).map(|d| d.to_bytes()), input),
        9 => round_trip(AuditRecord::from_bytes(input).map(|a| a.to_bytes()), input),
        10 => round_trip(LockState::from_bytes(input).map(|s| s.to_bytes()), input),
        12 => round_trip(ProvisioningRequest::from_bytes(input).map(|r| r.to_bytes()), input),
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

/// One real encoding of each structure, from the fixture's site and exchange.
fn seeds() -> Vec<Vec<u8>> {
    let site = common::site();
    let g = &site.genuine;
    let mut state = site.state_before.clone();
    state.apply_revocation_delta(&site.config, &site.delta, common::NOW);
    let audit = &g.result_plaintext[..updates::AUDIT_RECORD_LEN];
    vec![
        input(0, &g.hello),
        input(1, &g.challenge),
        input(2, &g.proof_plaintext),
        input(3, &g.result_plaintext),
        input(4, &g.update_ack_plaintext),
        input(5, &site.params.credential.to_bytes()),
        input(6, &site.config.certificate().to_bytes()),
        input(7, &site.params.updates.time.as_ref().unwrap().to_bytes()),
        input(8, &site.delta.to_bytes()),
        input(9, audit),
        input(10, &site.state_before.to_bytes()),
        input(10, &state.to_bytes()),
        input(11, &[MessageType::Update as u8]),
        input(
            12,
            &ProvisioningRequest::sign(&SigningKey::from_bytes(&[0xB2; 32]), &mut common::FixedRng::lock()).to_bytes(),
        ),
    ]
}
