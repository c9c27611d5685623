//! Where `porta` keeps things: the config (the server URL, remembered at sign-in) and the data
//! (the core's database; session files when there is no system keyring), in the platform's
//! usual places, or all under one directory given with `--home` / `PORTA_HOME`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub struct Place {
    pub config_file: PathBuf,
    /// The core's local database lives here.
    pub data_dir: PathBuf,
    /// Session files (0600) when no system keyring is found.
    pub secrets_dir: PathBuf,
}

impl Place {
    /// `home` (from `--home`/`PORTA_HOME`) holds everything; otherwise the platform's places:
    /// on Linux `$XDG_CONFIG_HOME/porta` (default `~/.config/porta`) and `$XDG_DATA_HOME/porta`
    /// (default `~/.local/share/porta`); on macOS `~/Library/Application Support/porta`.
    pub fn new(home: Option<PathBuf>) -> Place {
        let (config_dir, data_dir) = match home {
            Some(home) => (home.clone(), home),
            None => (platform_dir(Kind::Config).join("porta"), platform_dir(Kind::Data).join("porta")),
        };
        Place {
            config_file: config_dir.join("config.json"),
            secrets_dir: data_dir.join("secrets"),
            data_dir: data_dir.join("data"),
        }
    }

    pub fn config(&self) -> Config {
        std::fs::read(&self.config_file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save_config(&self, config: &Config) -> std::io::Result<()> {
        if let Some(dir) = self.config_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(config).map_err(std::io::Error::other)?;
        // Whole or not at all: a config cut short would forget the server.
        let tmp = self.config_file.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, &self.config_file)
    }
}

/// What later commands need without flags.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The Porta server this terminal signed in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

enum Kind {
    Config,
    Data,
}

fn user_home() -> PathBuf {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

fn platform_dir(kind: Kind) -> PathBuf {
    if cfg!(target_os = "macos") {
        return user_home().join("Library/Application Support");
    }
    if cfg!(windows) {
        let var = match kind {
            Kind::Config => "APPDATA",
            Kind::Data => "LOCALAPPDATA",
        };
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    let (var, default) = match kind {
        Kind::Config => ("XDG_CONFIG_HOME", ".config"),
        Kind::Data => ("XDG_DATA_HOME", ".local/share"),
    };
    // The XDG spec: a relative path in the variable is invalid and ignored.
    match std::env::var_os(var).map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => user_home().join(default),
    }
}

/// A path as the person would type it back: `~/…` for their home.
pub fn tilde(path: &Path) -> String {
    match path.strip_prefix(user_home()) {
        Ok(rest) if user_home().is_absolute() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}
