//! BLE fragmentation and reassembly. The first input byte picks the mode:
//! 0. an arbitrary fragment sequence (each fragment length-prefixed by one byte) into a
//!    `Reassembler`;
//! 1. round trip: `fragment(message, mtu)` then reassembly gives back exactly the message;
//! 2. a real message's fragments with edits (dropped, repeated, swapped, corrupted) into a
//!    `Reassembler`.
//!
//! Asserts: no panic; nothing longer than `MAX_MESSAGE_LEN` is ever produced; an error leaves
//! the reassembler waiting for a new message; the round trip is exact and every fragment fits
//! the MTU.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porta_protocol::wire::{fragment, fragment_capacity, Reassembler, MAX_ATT_MTU, MAX_MESSAGE_LEN, MIN_ATT_MTU};

#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::write_seeds(seeds);
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 3 {
        0 => arbitrary_sequence(rest),
        1 => round_trip(rest),
        _ => edited_fragments(rest),
    }
});

fn push_all<'a>(r: &mut Reassembler, fragments: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    for f in fragments {
        match r.push(f) {
            Ok(Some(m)) => {
                assert!(!m.is_empty() && m.len() <= MAX_MESSAGE_LEN);
                assert!(!r.in_progress(), "a completed message leaves nothing behind");
                messages.push(m);
            }
            Ok(None) => assert!(r.in_progress()),
            Err(_) => assert!(!r.in_progress(), "an error resets the reassembler"),
        }
    }
    messages
}

fn arbitrary_sequence(mut rest: &[u8]) {
    let mut fragments = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        fragments.push(&tail[..n]);
        rest = &tail[n..];
    }
    push_all(&mut Reassembler::new(), fragments);
}

fn mtu_from(a: u8, b: u8) -> u16 {
    MIN_ATT_MTU + u16::from_be_bytes([a, b]) % (MAX_ATT_MTU - MIN_ATT_MTU + 1)
}

fn round_trip(rest: &[u8]) {
    let [a, b, message @ ..] = rest else { return };
    let mtu = mtu_from(*a, *b);
    let fragments = match fragment(message, mtu) {
        Ok(f) => f,
        Err(_) => {
            assert!(message.is_empty() || message.len() > MAX_MESSAGE_LEN);
            return;
        }
    };
    let cap = fragment_capacity(mtu).unwrap();
    assert!(fragments.iter().all(|f| f.len() >= 2 && f.len() <= cap), "every fragment fits the MTU");
    let mut r = Reassembler::new();
    let (last, init) = fragments.split_last().unwrap();
    for f in init {
        assert_eq!(r.push(f), Ok(None));
    }
    assert_eq!(r.push(last).unwrap().as_deref(), Some(message), "reassembly gives back the message");
    assert!(!r.in_progress());
}

fn edited_fragments(rest: &[u8]) {
    let [a, b, len, edits @ ..] = rest else { return };
    let mtu = mtu_from(*a, *b);
    // A message of 1..=4096 bytes whose content marks each byte's position.
    let n = 1 + (*len as usize * 17) % MAX_MESSAGE_LEN;
    let message: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    let mut fragments = fragment(&message, mtu).unwrap();
    for e in edits.chunks_exact(3) {
        if fragments.is_empty() {
            break;
        }
        let i = e[1] as usize % fragments.len();
        let j = e[2] as usize % fragments.len();
        match e[0] % 5 {
            0 => drop(fragments.remove(i)),
            1 => fragments.insert(i, fragments[j].clone()),
            2 => fragments.swap(i, j),
            3 => fragments[i][0] ^= e[2].max(1),
            _ => {
                let k = e[2] as usize % fragments[i].len();
                fragments[i][k] ^= 0x5a;
            }
        }
    }
    let messages = push_all(&mut Reassembler::new(), fragments.iter().map(Vec::as_slice));
    for m in messages {
        // Only the first fragment's header says how long a message is.
        assert!(m.len() <= MAX_MESSAGE_LEN);
    }
}

/// The fixture's real messages at the smallest, a common and the largest MTU, as round trips
/// and as fragment sequences.
fn seeds() -> Vec<Vec<u8>> {
    let g = &common::site().genuine;
    let mut seeds = Vec::new();
    for m in [&g.hello, &g.challenge, &g.proof, &g.result, &g.update, &g.update_ack] {
        for mtu in [MIN_ATT_MTU, 185, MAX_ATT_MTU] {
            let offset = (mtu - MIN_ATT_MTU).to_be_bytes();
            let mut round_trip = vec![1, offset[0], offset[1]];
            round_trip.extend_from_slice(m);
            seeds.push(round_trip);
            if mtu == MIN_ATT_MTU {
                let mut sequence = vec![0];
                for f in fragment(m, mtu).unwrap() {
                    sequence.push(f.len() as u8);
                    sequence.extend_from_slice(&f);
                }
                seeds.push(sequence);
            }
        }
    }
    seeds.push(vec![2, 0, 0, 30, 2, 0, 1]);
    seeds.push(vec![2, 1, 0xf2, 240, 0, 1, 0, 3, 0, 0x40]);
    seeds
}
