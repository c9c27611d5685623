//! Shared test fixtures: a site authority, a provisioned lock and a phone driver.
#![allow(dead_code)]

use std::error::Error;
use std::time::Duration;

use porta_lock::porta_protocol::{
    fragment, Credential, CredentialBody, LockConfig, PhoneHandshake, PhoneOutcome, PhoneParams, Reassembler,
    RevocationDelta, RevokedCredential, RevokedDevice, SigningKey, UpdateAck, Updates,
};
use porta_lock::{provision_new_lock, LinkParams, Lock, LockProvision, SimulatedLink, SimulatedLock};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub const LOCK_ID: u32 = 7;
pub const DOOR: u32 = 1;
pub const OTHER_DOOR: u32 = 2;
pub const T0: u64 = 1_750_000_000;
pub const CRED_ID: [u8; 16] = [0xC1; 16];

pub type R<T> = Result<T, Box<dyn Error>>;

pub struct Site {
    pub authority: SigningKey,
    pub device: SigningKey,
    pub provision: LockProvision,
}

impl Site {
    pub fn new() -> Self {
        let authority = SigningKey::from_bytes(&[0xA1; 32]);
        let device = SigningKey::from_bytes(&[0xD1; 32]);
        let provision =
            provision_new_lock(&authority, LOCK_ID, vec![DOOR, OTHER_DOOR], &mut StdRng::seed_from_u64(1)).unwrap();
        Self { authority, device, provision }
    }

    pub fn config(&self) -> LockConfig {
        self.provision.to_config().unwrap()
    }

    pub fn lock(&self) -> Lock {
        Lock::in_memory(self.config())
    }

    pub fn sim(&self, params: LinkParams) -> SimulatedLock {
        let sim = SimulatedLock::new(self.lock(), LOCK_ID, params);
        sim.set_clock(T0);
        sim.set_rng_seed(42);
        sim
    }

    pub fn credential_valid(&self, not_before: u64, not_after: u64) -> Credential {
        Credential::issue(
            &self.authority,
            CredentialBody {
                credential_id: CRED_ID,
                device_key: self.device.verifying_key().to_bytes(),
                doors: vec![DOOR],
                not_before,
                not_after,
                schedule: None,
            },
        )
        .unwrap()
    }

    pub fn credential(&self) -> Credential {
        self.credential_valid(T0 - 3600, T0 + 3600)
    }

    pub fn params(&self) -> PhoneParams {
        self.params_with(self.credential(), Updates::default())
    }

    pub fn params_with(&self, credential: Credential, updates: Updates) -> PhoneParams {
        PhoneParams {
            credential,
            device_key: self.device.clone(),
            authority: self.authority.verifying_key(),
            door_id: DOOR,
            now: T0,
            lock_key: None,
            updates,
        }
    }
}

pub const WAIT: Duration = Duration::from_secs(5);

/// Hook to alter fragments on the air: (message index 0..4, fragment index, bytes).
pub type Tamper<'a> = &'a dyn Fn(usize, usize, &mut Vec<u8>);

pub async fn send(link: &SimulatedLink, msg: &[u8], idx: usize, tamper: Tamper<'_>) -> R<()> {
    for (i, mut f) in fragment(msg, link.att_mtu())?.into_iter().enumerate() {
        tamper(idx, i, &mut f);
        link.write(f).await?;
    }
    Ok(())
}

pub async fn recv(link: &SimulatedLink, idx: usize, tamper: Tamper<'_>) -> R<Vec<u8>> {
    let mut re = Reassembler::new();
    let mut i = 0;
    loop {
        let mut f = link.notification(WAIT).await?;
        tamper(idx, i, &mut f);
        i += 1;
        if let Some(m) = re.push(&f)? {
            return Ok(m);
        }
    }
}

/// A phone opening the door over the simulated link, with an optional pause before
/// the proof and a tamper hook.
pub async fn phone_unlock_with(
    sim: &SimulatedLock,
    params: PhoneParams,
    seed: u64,
    pause: Option<Duration>,
    tamper: Tamper<'_>,
) -> R<PhoneOutcome> {
    let link = sim.connect().await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut hs, hello) = PhoneHandshake::start(params, &mut rng)?;
    send(&link, &hello, 0, tamper).await?;
    let challenge = recv(&link, 1, tamper).await?;
    let proof = hs.handle_challenge(&challenge)?;
    if let Some(d) = pause {
        link.pause(d).await;
    }
    send(&link, &proof, 2, tamper).await?;
    let result = recv(&link, 3, tamper).await?;
    Ok(hs.handle_result(&result)?)
}

pub async fn phone_unlock(sim: &SimulatedLock, params: PhoneParams) -> R<PhoneOutcome> {
    phone_unlock_with(sim, params, 7, None, &|_, _, _| {}).await
}

/// Opens the door, then delivers `deltas` over the same connection as a phone does after
/// the decision; returns the outcome and the lock's acknowledgements.
pub async fn phone_unlock_delivering(
    sim: &SimulatedLock,
    params: PhoneParams,
    deltas: &[RevocationDelta],
) -> R<(PhoneOutcome, Vec<UpdateAck>)> {
    let link = sim.connect().await?;
    let mut rng = StdRng::seed_from_u64(7);
    let none: Tamper<'_> = &|_, _, _| {};
    let (mut hs, hello) = PhoneHandshake::start(params, &mut rng)?;
    send(&link, &hello, 0, none).await?;
    let proof = hs.handle_challenge(&recv(&link, 1, none).await?)?;
    send(&link, &proof, 2, none).await?;
    let outcome = hs.handle_result(&recv(&link, 3, none).await?)?;
    let mut acks = Vec::new();
    for d in deltas {
        send(&link, &hs.update(d)?, 4, none).await?;
        acks.push(hs.handle_update_ack(&recv(&link, 5, none).await?)?);
    }
    link.disconnect().await;
    Ok((outcome, acks))
}

impl Site {
    /// A signed delta from `from` to `to` revoking `ids` and `keys` until `expires`.
    pub fn delta(&self, from: u64, to: u64, ids: &[[u8; 16]], keys: &[[u8; 32]], expires: u64) -> RevocationDelta {
        RevocationDelta::issue(
            &self.authority,
            from,
            to,
            ids.iter().map(|&id| RevokedCredential { id, expires }).collect(),
            keys.iter().map(|&key| RevokedDevice { key, expires }).collect(),
        )
        .unwrap()
    }
}
