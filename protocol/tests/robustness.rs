//! Random and mutated input to both roles never panics; it yields typed errors or
//! denials, and never an opened door.

mod common;

use common::*;
use porta_protocol::*;
use proptest::prelude::*;

struct Recorded {
    site: Site,
    config: LockConfig,
    ex: Exchange,
}

fn recorded() -> Recorded {
    let site = Site::new();
    let config = site.lock_config();
    let mut p = site.params(site.credential());
    p.updates.time = Some(TimeUpdate::issue(&site.authority, 0, T0, 1));
    let ex = run(p, &config, &mut LockState::new(), T0, 185);
    Recorded { site, config, ex }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    Splice(prop::sample::Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Extend),
        (any::<prop::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..20))
            .prop_map(|(i, v)| Mutation::Splice(i, v)),
    ];
    proptest::collection::vec(m, 1..4)
}

fn mutate(msg: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for mu in muts {
        match mu {
            Mutation::Flip(i, x) if !m.is_empty() => {
                let i = i.index(m.len());
                m[i] ^= x;
            }
            Mutation::Truncate(i) if !m.is_empty() => m.truncate(i.index(m.len())),
            Mutation::Extend(v) => m.extend_from_slice(v),
            Mutation::Splice(i, v) if !m.is_empty() => {
                let i = i.index(m.len());
                let end = (i + v.len()).min(m.len());
                m.splice(i..end, v.iter().copied());
            }
            _ => {}
        }
    }
    m
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Random bodies behind each valid message type byte.
        (1u8..=4, proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(t, mut v)| {
            v.insert(0, t);
            v
        }),
    ]
}

/// Feeds `hello` then `proof` to a fresh lock; must not panic or open.
fn lock_feed(r: &Recorded, hello: &[u8], proof: &[u8]) {
    let mut state = LockState::new();
    let mut lock = LockHandshake::new();
    if lock.handle_hello(&r.config, &mut state, hello, 0, &mut SeededRng::new("lock-fuzz")).is_ok() {
        if let Ok(out) = lock.handle_proof(&r.config, &mut state, proof, T0, 10) {
            assert!(!out.decision.is_opened());
        }
    }
}

/// A phone that sent the recorded Hello; feeds `challenge` then `result`.
fn phone_feed(r: &Recorded, challenge: &[u8], result: &[u8]) -> Result<PhoneOutcome, ProtocolError> {
    let mut p = r.site.params(r.site.credential());
    p.updates.time = Some(TimeUpdate::issue(&r.site.authority, 0, T0, 1));
    let (mut phone, hello) = PhoneHandshake::start(p, &mut SeededRng::new("phone")).unwrap();
    assert_eq!(hello, r.ex.hello);
    phone.handle_challenge(challenge)?;
    phone.handle_result(result)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lock_survives_random_frames(a in bytes(), b in bytes()) {
        let r = recorded();
        lock_feed(&r, &a, &b);
        lock_feed(&r, &r.ex.hello, &b);
        lock_feed(&r, &r.ex.hello, &a);
    }

    #[test]
    fn lock_survives_mutated_frames(mh in mutation(), mp in mutation()) {
        let r = recorded();
        lock_feed(&r, &mutate(&r.ex.hello, &mh), &r.ex.proof);
        // The recorded proof is replayed to a fresh session anyway; mutations too.
        lock_feed(&r, &r.ex.hello, &mutate(&r.ex.proof, &mp));
    }

    #[test]
    fn phone_survives_random_frames(a in bytes(), b in bytes()) {
        let r = recorded();
        prop_assert!(phone_feed(&r, &a, &b).is_err());
        prop_assert!(phone_feed(&r, &r.ex.challenge, &a).is_err());
    }

    #[test]
    fn phone_survives_mutated_frames(mc in mutation(), mr in mutation()) {
        let r = recorded();
        let c = mutate(&r.ex.challenge, &mc);
        let res = mutate(&r.ex.result, &mr);
        if c != r.ex.challenge {
            prop_assert!(phone_feed(&r, &c, &r.ex.result).is_err());
        }
        if res != r.ex.result {
            prop_assert!(phone_feed(&r, &r.ex.challenge, &res).is_err());
        }
    }

    #[test]
    fn parsers_survive_random_input(v in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Credential::from_bytes(&v);
        let _ = LockCertificate::from_bytes(&v);
        let _ = TimeUpdate::from_bytes(&v);
        let _ = RevocationDelta::from_bytes(&v);
        let _ = AuditRecord::from_bytes(&v);
        let _ = LockState::from_bytes(&v);
        let _ = MessageType::of(&v);
    }

    #[test]
    fn parsers_survive_mutated_input(m in mutation()) {
        let r = recorded();
        let cred = r.site.credential().to_bytes();
        if let Ok(c) = Credential::from_bytes(&mutate(&cred, &m)) {
            if c.to_bytes() != cred {
                prop_assert!(c.verify(&r.site.authority.verifying_key()).is_err());
            }
        }
        let cert = r.config.certificate().to_bytes();
        if let Ok(c) = LockCertificate::from_bytes(&mutate(&cert, &m)) {
            if c.to_bytes() != cert {
                prop_assert!(c.verify(&r.site.authority.verifying_key()).is_err());
            }
        }
        let mut st = LockState::new();
        st.revoked_credentials.insert([3; 16], T0);
        st.revoked_devices.insert([4; 32], T0);
        let _ = LockState::from_bytes(&mutate(&st.to_bytes(), &m));
        let d = delta(&r.site, 1, 2, &[[5; 16]], &[[6; 32]]);
        if let Ok(m) = RevocationDelta::from_bytes(&mutate(&d.to_bytes(), &m)) {
            if m != d {
                prop_assert!(m.verify(&r.site.authority.verifying_key()).is_err());
            }
        }
        let _ = AuditRecord::from_bytes(&mutate(&r.ex.lock.audit.to_bytes(), &m));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// A live session (not a replay): any mutation of the phone's fresh proof is
    /// refused by the lock that issued the challenge.
    #[test]
    fn mutated_proof_in_live_session_never_opens(m in mutation()) {
        let r = recorded();
        let (mut phone, hello) =
            PhoneHandshake::start(r.site.params(r.site.credential()), &mut SeededRng::new("p")).unwrap();
        let mut state = LockState::new();
        let mut lock = LockHandshake::new();
        let ch = lock.handle_hello(&r.config, &mut state, &hello, 0, &mut SeededRng::new("l")).unwrap();
        let proof = phone.handle_challenge(&ch).unwrap();
        let bad = mutate(&proof, &m);
        prop_assume!(bad != proof);
        if let Ok(out) = lock.handle_proof(&r.config, &mut state, &bad, T0, 10) {
            prop_assert!(!out.decision.is_opened());
        }
    }
}
