//! The measured site, shared by `benches/unlock.rs` and `examples/link_budget.rs` so both
//! measure the same unlock: one lock controlling two doors, one phone holding a one-door
//! credential without schedule, the time update a phone may carry in its Proof, and a
//! revocation delta of 50 credential ids (none of them the phone's) it delivers afterwards.

use porta_lock::porta_protocol::{
    Credential, CredentialBody, PhoneParams, RevocationDelta, RevokedCredential, SigningKey, TimeUpdate, Updates,
};
use porta_lock::{provision_new_lock, LockProvision};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub const LOCK_ID: u32 = 7;
pub const DOOR: u32 = 1;
pub const OTHER_DOOR: u32 = 2;
pub const T0: u64 = 1_750_000_000;
pub const CRED_ID: [u8; 16] = [0xC1; 16];
pub const REVOKED: usize = 50;

pub struct Site {
    pub provision: LockProvision,
    /// The phone's attempt without carried updates.
    pub params: PhoneParams,
    /// What a phone fresh from a sync carries in its Proof.
    pub updates: Updates,
    /// What it delivers after the decision (the link budget does not model it).
    #[allow(dead_code)]
    pub delta: RevocationDelta,
}

impl Site {
    pub fn new() -> Self {
        let authority = SigningKey::from_bytes(&[0xA1; 32]);
        let device = SigningKey::from_bytes(&[0xD1; 32]);
        let provision = provision_new_lock(&authority, LOCK_ID, vec![DOOR, OTHER_DOOR], &mut StdRng::seed_from_u64(1))
            .expect("provisioning a fixed lock");
        let credential = Credential::issue(
            &authority,
            CredentialBody {
                credential_id: CRED_ID,
                device_key: device.verifying_key().to_bytes(),
                doors: vec![DOOR],
                not_before: T0 - 3600,
                not_after: T0 + 3600,
                schedule: None,
            },
        )
        .expect("issuing a fixed credential");
        let params = PhoneParams {
            credential,
            device_key: device,
            authority: authority.verifying_key(),
            door_id: DOOR,
            now: T0,
            lock_key: None,
            updates: Updates::default(),
        };
        let ids = (0..REVOKED)
            .map(|i| {
                let mut id = [0x5A; 16];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                RevokedCredential { id, expires: T0 + 3600 }
            })
            .collect();
        let updates = Updates { time: Some(TimeUpdate::issue(&authority, 0, T0, 1)) };
        let delta = RevocationDelta::issue(&authority, 0, REVOKED as u64, ids, Vec::new()).expect("a fixed delta");
        Self { provision, params, updates, delta }
    }

    /// The phone's attempt carrying the updates.
    pub fn params_with_updates(&self) -> PhoneParams {
        PhoneParams { updates: self.updates.clone(), ..self.params.clone() }
    }
}
