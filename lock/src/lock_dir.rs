//! A lock's data directory: its own key, the certificate the site answered with, and the
//! state [`Lock::open`] keeps. The key is created here and never leaves the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use porta_protocol::{CryptoRng, DoorId, LockCertificate, LockId, ProvisioningRequest, RngCore};
use zeroize::Zeroizing;

use crate::error::LockError;
use crate::lock::{write_atomic, Lock};
use crate::provision::{LockProvision, NewLock};

/// File (in the lock directory) holding the lock's Ed25519 secret key (32-byte seed), mode
/// 0600. Created once and never overwritten.
pub const LOCK_KEY_FILE: &str = "lock-key";
/// File (in the lock directory) holding the installed lock certificate (SPEC §2.2).
pub const CERTIFICATE_FILE: &str = "certificate";
/// File (in the lock directory) holding the site authority's Ed25519 public key (32 bytes).
pub const AUTHORITY_FILE: &str = "authority";

/// Far above any lock certificate (32 doors: 238 bytes); bounds what a damaged file costs.
const MAX_CERTIFICATE_LEN: u64 = 1024;

/// Where a lock directory is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockDirStatus {
    /// No key yet: the first provisioning request creates it.
    NoKey,
    /// The lock has its key and waits for the site's certificate.
    AwaitingCertificate {
        /// The lock's Ed25519 public key (what its requests carry).
        lock_public_key: [u8; 32],
    },
    /// A certificate for the lock's key is installed.
    Installed {
        /// Lock id, from the certificate.
        lock_id: LockId,
        /// Doors the lock controls, from the certificate.
        doors: Vec<DoorId>,
        /// Certificate valid from (unix seconds, inclusive).
        not_before: u32,
        /// Certificate valid until (unix seconds, inclusive).
        not_after: u32,
        /// The lock's Ed25519 public key.
        lock_public_key: [u8; 32],
        /// The site authority that signed the certificate.
        authority_public_key: [u8; 32],
    },
}

/// A lock's data directory. Besides the files of [`Lock::open`] it holds [`LOCK_KEY_FILE`],
/// and once installed [`CERTIFICATE_FILE`] and [`AUTHORITY_FILE`]. Every write is atomic
/// (temp file, fsync, rename); a damaged file is reported as
/// [`LockError::CorruptLockFile`] and left for a person to look at, never replaced.
///
/// The key is read from disk for each operation and zeroized after use; `LockDir` itself
/// holds only the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockDir {
    path: PathBuf,
}

impl LockDir {
    /// The lock directory at `path` (nothing is read or created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A provisioning request (SPEC §2.6) signed by the lock's key, with a new request id
    /// each time. The first call creates the directory and the key; later calls reuse it.
    pub fn provisioning_request<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<ProvisioningRequest, LockError> {
        let key = match self.read_key()? {
            Some(key) => key,
            None => self.create_key(rng)?,
        };
        Ok(key.provisioning_request(rng))
    }

    /// Installs the site's answer. The certificate must certify this lock's key
    /// ([`LockError::CertificateForAnotherKey`] otherwise) and be signed by
    /// `authority_public_key`. Once installed, a later certificate for the same lock id
    /// from the same authority replaces it (a renewal); another lock id or authority is
    /// [`LockError::AlreadyInstalled`], one that starts before the installed one is
    /// [`LockError::OlderCertificate`], and installing the same certificate again changes
    /// nothing. On any error the directory is left as it was.
    ///
    /// A [`Lock`] already open keeps its certificate until it is opened again.
    pub fn install(&self, certificate: &[u8], authority_public_key: [u8; 32]) -> Result<LockProvision, LockError> {
        let key = self.read_key()?.ok_or(LockError::NoKey)?;
        let provision = key.install(certificate, authority_public_key)?;
        match self.read_installed(&key)? {
            None => {
                // The certificate is what makes the lock installed, so it goes last: a crash
                // in between leaves a lock still awaiting its certificate.
                write_atomic(&self.path, AUTHORITY_FILE, &authority_public_key)?;
                write_atomic(&self.path, CERTIFICATE_FILE, certificate)?;
            }
            Some((installed, _)) if installed.certificate == certificate => {}
            Some((installed, installed_cert)) => {
                if installed.lock_id != provision.lock_id || installed.authority_public_key != authority_public_key {
                    return Err(LockError::AlreadyInstalled { lock_id: installed.lock_id });
                }
                let renewal = LockCertificate::from_bytes(certificate).map_err(LockError::Provision)?;
                if renewal.not_before < installed_cert.not_before {
                    return Err(LockError::OlderCertificate);
                }
                // Same authority: one atomic rename replaces the certificate.
                write_atomic(&self.path, CERTIFICATE_FILE, certificate)?;
            }
        }
        Ok(provision)
    }

    /// Where the lock is in its life. A damaged key or certificate is an error, not a status.
    pub fn status(&self) -> Result<LockDirStatus, LockError> {
        let Some(key) = self.read_key()? else {
            return Ok(LockDirStatus::NoKey);
        };
        Ok(match self.read_installed(&key)? {
            None => LockDirStatus::AwaitingCertificate { lock_public_key: key.lock_public_key() },
            Some((provision, cert)) => LockDirStatus::Installed {
                lock_id: cert.lock_id,
                doors: cert.doors,
                not_before: cert.not_before,
                not_after: cert.not_after,
                lock_public_key: cert.lock_key,
                authority_public_key: provision.authority_public_key,
            },
        })
    }

    /// The installed lock with its persisted state and audit log ([`Lock::open`] on this
    /// directory). [`LockError::NotInstalled`] before a certificate is installed.
    pub fn open(&self) -> Result<Lock, LockError> {
        let key = self.read_key()?.ok_or(LockError::NoKey)?;
        let (provision, _) = self.read_installed(&key)?.ok_or(LockError::NotInstalled)?;
        Lock::open(&self.path, provision.to_config()?)
    }

    fn read_key(&self) -> Result<Option<NewLock>, LockError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        if !read_exact_file(&self.path.join(LOCK_KEY_FILE), LOCK_KEY_FILE, &mut seed[..])? {
            return Ok(None);
        }
        Ok(Some(NewLock::from_secret_key(*seed)))
    }

    /// Creates the key with O_EXCL semantics: written to a private temp file, fsynced, then
    /// hard-linked to its name, which fails if a key already exists (another process won the
    /// race: its key is the lock's key).
    fn create_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<NewLock, LockError> {
        create_private_dir(&self.path)?;
        let key = NewLock::generate(rng);
        let tmp = self.path.join(format!("{LOCK_KEY_FILE}.{:016x}.tmp", rng.next_u64()));
        let written = write_private_file(&tmp, key.secret_key())
            .and_then(|()| fs::hard_link(&tmp, self.path.join(LOCK_KEY_FILE)));
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                sync_dir(&self.path);
                Ok(key)
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.read_key()?.ok_or(LockError::CorruptLockFile { file: LOCK_KEY_FILE, problem: "vanished" })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The installed certificate checked against the key and the authority, or `None` if
    /// there is no certificate yet.
    fn read_installed(&self, key: &NewLock) -> Result<Option<(LockProvision, LockCertificate)>, LockError> {
        let Some(certificate) = self.read_certificate()? else {
            return Ok(None);
        };
        let mut authority = [0u8; 32];
        if !read_exact_file(&self.path.join(AUTHORITY_FILE), AUTHORITY_FILE, &mut authority)? {
            return Err(LockError::CorruptLockFile { file: AUTHORITY_FILE, problem: "missing beside a certificate" });
        }
        let corrupt = |problem: &'static str| LockError::CorruptLockFile { file: CERTIFICATE_FILE, problem };
        let cert = LockCertificate::from_bytes(&certificate).map_err(|_| corrupt("not a lock certificate"))?;
        let provision = key.install(&certificate, authority).map_err(|e| match e {
            LockError::CertificateForAnotherKey => corrupt("certifies another key than the lock's"),
            _ => corrupt("not signed by the installed authority"),
        })?;
        Ok(Some((provision, cert)))
    }

    fn read_certificate(&self) -> Result<Option<Vec<u8>>, LockError> {
        let file = match File::open(self.path.join(CERTIFICATE_FILE)) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        file.take(MAX_CERTIFICATE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_CERTIFICATE_LEN {
            return Err(LockError::CorruptLockFile { file: CERTIFICATE_FILE, problem: "too long" });
        }
        Ok(Some(bytes))
    }
}

/// Fills `buf` from the file at `path`, which must hold exactly `buf.len()` bytes.
/// `Ok(false)` if the file does not exist.
fn read_exact_file(path: &Path, name: &'static str, buf: &mut [u8]) -> Result<bool, LockError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Err(LockError::CorruptLockFile { file: name, problem: "truncated" }),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut extra = [0u8; 1];
    loop {
        match file.read(&mut extra) {
            Ok(0) => return Ok(true),
            Ok(_) => return Err(LockError::CorruptLockFile { file: name, problem: "too long" }),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates `path` (new file only), readable by the owner alone, with `bytes`, fsynced.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // The umask may only have removed bits; make the mode exactly 0600.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// Makes a new directory entry durable; not supported everywhere, so best effort.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
