//! `porta unlock DOOR`: find the door by name, open it over Bluetooth (or the server's
//! locks it simulates from their data directories), and show the progress: a spinner on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use porta_core::{Door, LockTransport, UnlockListener, UnlockProgress};
use serde_json::json;

use crate::failure::{code, Context, Failure};
use crate::Session;

/// The door the person means: its number, its name in any case, or the start of its name.
pub fn find_door<'a>(doors: &'a [Door], wanted: &str) -> Result<&'a Door, Failure> {
    let wanted = wanted.trim();
    if let Ok(id) = wanted.parse::<u32>() {
        if let Some(d) = doors.iter().find(|d| d.door_id == id) {
            return Ok(d);
        }
    }
    let lower = wanted.to_lowercase();
    if let Some(d) = doors.iter().find(|d| d.name.to_lowercase() == lower) {
        return Ok(d);
    }
    let starting: Vec<&Door> = doors.iter().filter(|d| d.name.to_lowercase().starts_with(&lower)).collect();
    let names = |list: &[&Door]| list.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
    match starting.as_slice() {
        [one] => Ok(one),
        [] if doors.is_empty() => Err(Failure::new(code::DENIED, "you have no doors yet: ask your building")),
        [] => Err(Failure::usage(format!(
            "no door called \"{wanted}\"; yours are: {}",
            names(&doors.iter().collect::<Vec<_>>())
        ))),
        many => Err(Failure::usage(format!("\"{wanted}\" could be {}: say which", names(many)))),
    }
}

/// Progress as the person sees it.
struct Progress {
    door: String,
    spinner: Option<ProgressBar>,
    /// Plain lines go to stderr, so stdout holds only the result.
    plain: bool,
}

impl Progress {
    fn new(door: &str, json: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let spinner = (tty && !json).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(80));
            bar
        });
        Progress { door: door.to_owned(), spinner, plain: !tty && !json }
    }

    fn say(&self, words: String) {
        match &self.spinner {
            Some(bar) => bar.set_message(words),
            None if self.plain => eprintln!("{words}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

impl UnlockListener for Progress {
    fn on_progress(&self, p: UnlockProgress) {
        let words = match p {
            UnlockProgress::Searching => format!("searching for the {} lock…", self.door),
            UnlockProgress::Connecting => "connecting…".into(),
            UnlockProgress::Verifying => "verifying…".into(),
            UnlockProgress::Opened => "open".into(),
            UnlockProgress::Denied => "refused".into(),
        };
        self.say(words);
    }
}

/// Locks this computer simulates, each from its `porta-lockd` data directory (its own key,
/// the certificate the building installed, its state and audit log, kept as it runs).
fn simulated(dirs: &[std::path::PathBuf]) -> Result<Arc<dyn LockTransport>, Failure> {
    let mut locks = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let lock_dir = porta_lock::LockDir::new(dir);
        let unusable = |e: porta_lock::LockError| {
            Failure::new(code::FAILED, format!("the lock in {}: {e} (see `porta-lockd status`)", dir.display()))
        };
        let lock_id = match lock_dir.status().map_err(unusable)? {
            porta_lock::LockDirStatus::Installed { lock_id, .. } => lock_id,
            _ => return Err(unusable(porta_lock::LockError::NotInstalled)),
        };
        let lock = lock_dir.open().map_err(unusable)?;
        locks.push(porta_lock::SimulatedLock::new(lock, lock_id, porta_lock::LinkParams::new(185, 30.0)));
    }
    Ok(Arc::new(porta_core::simulated::SimulatedTransport::new(locks)))
}

pub async fn run(s: &Session, wanted: &str, lock_dirs: &[std::path::PathBuf]) -> Result<(), Failure> {
    // Bluetooth unless simulated locks are given: the transport is the client's, from its start.
    let transport = if lock_dirs.is_empty() { None } else { Some(simulated(lock_dirs)?) };
    let client = s.client_via(transport)?.0;
    let doors = crate::fetch_doors(s, &client).await?;
    let door = find_door(&doors, wanted)?;
    let progress = Arc::new(Progress::new(&door.name, s.json));
    let result = client.unlock(door.door_id, progress.clone()).await;
    progress.finish();
    let cx = Context { door: Some(door), ..Default::default() };
    result.map_err(|e| s.fail_in(e, cx))?;
    let value = json!({ "door_id": door.door_id, "door": door.name, "opened": true });
    s.print(&value, || println!("{}: open", door.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door(id: u32, name: &str) -> Door {
        Door {
            door_id: id,
            name: name.into(),
            lock_id: Some(id),
            lock_public_key: None,
            log_retention_days: 90,
            access: vec![],
        }
    }

    #[test]
    fn a_door_is_found_by_number_name_or_the_start_of_its_name() {
        let doors = [door(1, "Main entrance"), door(2, "Bike room"), door(3, "Basement"), door(4, "Bike shed")];
        assert_eq!(find_door(&doors, "2").unwrap().door_id, 2);
        assert_eq!(find_door(&doors, "main ENTRANCE").unwrap().door_id, 1);
        assert_eq!(find_door(&doors, "ma").unwrap().door_id, 1);
        assert_eq!(find_door(&doors, "bas").unwrap().door_id, 3);
        let many = find_door(&doors, "bike").unwrap_err();
        assert_eq!(many.code, code::USAGE);
        assert_eq!(many.message, "\"bike\" could be Bike room, Bike shed: say which");
        let none = find_door(&doors, "garage").unwrap_err();
        assert!(none.message.contains("no door called \"garage\"; yours are: Main entrance"), "{}", none.message);
        assert_eq!(find_door(&doors, "9").unwrap_err().code, code::USAGE);
    }
}
