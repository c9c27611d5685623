//! The saved session: `$XDG_CONFIG_HOME/porta-admin/session.json` (else
//! `~/.config/porta-admin/session.json`), readable only by its owner, replaced atomically so
//! a crash never leaves half a file (and so never loses the single-use refresh token).

use std::io::Write;
use std::path::{Path, PathBuf};

use porta_admin::Session;

pub fn path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("porta-admin").join("session.json"))
}

/// The saved session, if any (an unreadable file counts as none).
pub fn load(path: &Path) -> Option<Session> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn save(path: &Path, session: &Session) -> std::io::Result<()> {
    let dir = path.parent().expect("the session path has a directory");
    create_private_dir(dir)?;
    let temp = dir.join(format!(".session.json.{}", std::process::id()));
    let written = (|| {
        let mut file = private_file(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(session).expect("a session serializes"))?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created 0600, so the tokens are never readable by others, not even for a moment.
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}
