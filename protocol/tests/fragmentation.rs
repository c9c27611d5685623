//! Fragmentation / reassembly for every ATT MTU, with bounded buffers.

use porta_protocol::wire::{self, Reassembler, MAX_MESSAGE_LEN};
use porta_protocol::ProtocolError;
use proptest::prelude::*;

fn roundtrip(msg: &[u8], mtu: u16) {
    let frags = wire::fragment(msg, mtu).unwrap();
    let cap = (mtu as usize - 3).min(512);
    let mut r = Reassembler::new();
    for (i, f) in frags.iter().enumerate() {
        assert!(f.len() <= cap, "fragment {} bytes > {} at MTU {}", f.len(), cap, mtu);
        let out = r.push(f).unwrap();
        if i + 1 == frags.len() {
            assert_eq!(out.as_deref(), Some(msg));
        } else {
            assert!(out.is_none());
        }
    }
    assert!(!r.in_progress());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_message_round_trips_for_every_mtu(msg in proptest::collection::vec(any::<u8>(), 1..=MAX_MESSAGE_LEN)) {
        for mtu in 23u16..=512 {
            roundtrip(&msg, mtu);
        }
    }

    #[test]
    fn random_fragments_never_panic(frags in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..40)) {
        let mut r = Reassembler::new();
        for f in frags {
            if let Ok(Some(m)) = r.push(&f) {
                prop_assert!(!m.is_empty() && m.len() <= MAX_MESSAGE_LEN);
            }
        }
    }

    #[test]
    fn shuffled_or_dropped_fragments_are_errors(len in 200usize..2000, mtu in 23u16..60, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut frags = wire::fragment(&msg, mtu).unwrap();
        let (i, j) = (a.index(frags.len()), b.index(frags.len()));
        // Fragments 64 apart carry the same 6-bit sequence number: the framing cannot see
        // them swapped (SPEC §6); the message's AEAD or signature does.
        prop_assume!(i % 64 != j % 64);
        frags.swap(i, j);
        let mut r = Reassembler::new();
        let mut saw_err = false;
        let mut done = None;
        for f in &frags {
            match r.push(f) {
                Err(_) => { saw_err = true; break; }
                Ok(Some(m)) => done = Some(m),
                Ok(None) => {}
            }
        }
        prop_assert!(saw_err && done.is_none());
        // Dropping one fragment is detected too.
        let mut frags = wire::fragment(&msg, mtu).unwrap();
        frags.remove(i.max(1).min(frags.len() - 1));
        let mut r = Reassembler::new();
        let res: Result<Vec<_>, _> = frags.iter().map(|f| r.push(f)).collect();
        prop_assert!(res.is_err() || res.unwrap().iter().all(|o| o.is_none()));
    }
}

#[test]
fn edge_sizes_for_every_mtu() {
    for mtu in 23u16..=517 {
        let cap = (mtu as usize - 3).min(512);
        for len in [1, cap - 4, cap - 3, cap - 2, cap, cap + 1, 2 * cap, MAX_MESSAGE_LEN] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            roundtrip(&msg, mtu);
        }
    }
}

#[test]
fn oversized_and_invalid_inputs_are_typed_errors() {
    let big = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(wire::fragment(&big, 185).unwrap_err(), ProtocolError::MessageTooLarge);
    assert_eq!(wire::fragment(&[1], 22).unwrap_err(), ProtocolError::InvalidMtu(22));
    assert_eq!(wire::fragment(&[1], 518).unwrap_err(), ProtocolError::InvalidMtu(518));
    assert_eq!(wire::fragment(&[], 23).unwrap_err(), ProtocolError::EmptyMessage);

    let mut r = Reassembler::new();
    // First fragment announcing more than MAX_MESSAGE_LEN.
    let len = (MAX_MESSAGE_LEN as u16 + 1).to_be_bytes();
    assert_eq!(r.push(&[0x80, len[0], len[1], 0]).unwrap_err(), ProtocolError::MessageTooLarge);
    // Continuation without a start.
    assert_eq!(r.push(&[0x01, 0]).unwrap_err(), ProtocolError::FragmentOutOfOrder);
    // More data than announced.
    assert_eq!(r.push(&[0xC0, 0, 1, 1, 2]).unwrap_err(), ProtocolError::FragmentLengthMismatch);
    // LAST before the announced length.
    assert_eq!(r.push(&[0xC0, 0, 3, 1, 2]).unwrap_err(), ProtocolError::FragmentLengthMismatch);
    // Empty fragment, zero length, truncated header.
    assert_eq!(r.push(&[]).unwrap_err(), ProtocolError::BadFragment);
    assert_eq!(r.push(&[0xC0, 0, 0]).unwrap_err(), ProtocolError::BadFragment);
    assert_eq!(r.push(&[0x80, 0]).unwrap_err(), ProtocolError::BadFragment);
    // A new FIRST in the middle of a message.
    assert_eq!(r.push(&[0x80, 0, 3, 1]).unwrap(), None);
    assert_eq!(r.push(&[0x80, 0, 3, 1]).unwrap_err(), ProtocolError::FragmentOutOfOrder);
    // Recovers after an error.
    assert_eq!(r.push(&[0xC0, 0, 2, 9, 8]).unwrap(), Some(vec![9, 8]));
}
