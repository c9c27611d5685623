//! `porta`: the Porta core from a terminal. A real client (sign in, open doors over Bluetooth,
//! see the log, manage devices and personal data, invite guests) and `porta demo`, the
//! resident journey on an embedded server. `porta --help` lists the commands; cli/README.md
//! has the exit codes.

mod demo;
mod failure;
mod invite;
mod place;
mod secrets;
mod show;
mod unlock;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use porta_core::{Client, ClientConfig, Door, Error, LockTransport, Profile, ProfileUpdate};
use serde_json::json;

use failure::{code, Context, Failure};
use place::Place;
use secrets::Kept;
use show::Clock;

const EXIT_CODES: &str = "Exit codes: 0 done, 1 failed, 2 bad command line or input, 3 not signed in, 4 wrong or \
expired code, 5 server unreachable, 6 rate limited, 7 access denied, 8 Bluetooth off or missing, 9 lock not reached \
(out of range, busy, no answer, link lost).";

/// Porta from a terminal: sign in, open doors, see your log, manage your data.
#[derive(Parser)]
#[command(name = "porta", version, after_help = EXIT_CODES)]
struct Cli {
    /// The Porta server, e.g. https://porta.example.com (remembered after `porta sign-in`)
    #[arg(long, global = true, env = "PORTA_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Machine-readable output (JSON) instead of sentences
    #[arg(long, global = true)]
    json: bool,
    /// Keep config, data and session files in DIR instead of the platform's usual places
    #[arg(long, global = true, env = "PORTA_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with a one-time code sent to your email or phone (the code is read from stdin)
    SignIn {
        /// Your email address or phone number (asked for if left out)
        identifier: Option<String>,
    },
    /// Sign out: the session, device key and cached data on this computer are removed
    SignOut,
    /// Show your profile, or change it with `profile set`
    Profile {
        #[command(subcommand)]
        action: Option<ProfileAction>,
    },
    /// The doors you may open
    Doors,
    /// Open a door: over Bluetooth, or a lock simulated here with --lock-dir
    Unlock {
        /// The door: its name (any case), the start of its name, or its number
        door: String,
        /// Instead of Bluetooth, a lock this computer simulates from its porta-lockd data
        /// directory (provisioned with `porta-lockd provision-request` and
        /// `install-certificate`); repeat for several locks
        #[arg(long = "lock-dir", value_name = "DIR")]
        lock_dirs: Vec<std::path::PathBuf>,
    },
    /// Which doors you opened and when
    Log,
    /// Your signed-in devices, or sign one out with `devices sign-out ID`
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
    /// Everything the building holds about you, why, and for how long
    MyData,
    /// Write your data to FILE as JSON (readable only by you)
    Export { file: PathBuf },
    /// Delete your account, confirmed with a code sent to you (read from stdin)
    DeleteAccount,
    /// Invite guests to your doors, list and withdraw invitations
    Invite {
        #[command(subcommand)]
        action: InviteAction,
    },
    /// Accept an invitation link or code (signed in: on your account; otherwise as a guest)
    Accept { link_or_code: String },
    /// Hand the building the doors' signed records still queued on this computer
    UploadEvents,
    /// The resident journey on an embedded server, in a temporary directory
    Demo,
}

#[derive(Subcommand)]
enum ProfileAction {
    /// Change your name, email or phone (a new email or phone counts once its code is typed)
    Set {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Confirm a new email or phone with the code sent to it
    Confirm { code: String },
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Sign a device out: its session ends and the locks learn its key is revoked
    SignOut { device_id: String },
}

#[derive(Subcommand)]
enum InviteAction {
    /// Invite a guest; prints a link and a code to hand them (shown once)
    Create(invite::CreateArgs),
    /// Your invitations and the guests who accepted them
    List,
    /// Withdraw an invitation and the access of every guest who accepted it
    Revoke { invitation_id: String },
    /// Withdraw one guest's access
    RevokeGuest { guest_id: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: before any other thread exists; restores the default disposition of a signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let session = Session::new(&cli);
    match run(&session, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if session.json {
                println!("{}", json!({ "error": f.message, "exit_code": f.code }));
            }
            eprintln!("porta: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(s: &Session, command: Command) -> Result<(), Failure> {
    match command {
        Command::SignIn { identifier } => sign_in(s, identifier).await,
        Command::SignOut => sign_out(s).await,
        Command::Profile { action: None } => {
            let p = s.client()?.0.profile().await.map_err(|e| s.fail(e))?;
            s.print(&p, || print_profile(&p));
            Ok(())
        }
        Command::Profile { action: Some(ProfileAction::Set { name, email, phone }) } => {
            set_profile(s, ProfileUpdate { name, email, phone }).await
        }
        Command::Profile { action: Some(ProfileAction::Confirm { code }) } => {
            let p = s.client()?.0.confirm_contact_change(&code).await.map_err(|e| s.fail(e))?;
            s.print(&p, || print_profile(&p));
            Ok(())
        }
        Command::Doors => doors(s).await,
        Command::Unlock { door, lock_dirs } => unlock::run(s, &door, &lock_dirs).await,
        Command::Log => log(s).await,
        Command::Devices { action: None } => devices(s).await,
        Command::Devices { action: Some(DevicesAction::SignOut { device_id }) } => {
            s.client()?.0.sign_out_device(&device_id).await.map_err(|e| s.fail(e))?;
            let said = "signed out; the locks learn its key is revoked from the next phone that opens them";
            s.print(&json!({ "device_id": device_id, "signed_out": true }), || println!("{device_id}: {said}"));
            Ok(())
        }
        Command::MyData => my_data(s).await,
        Command::Export { file } => export(s, file).await,
        Command::DeleteAccount => delete_account(s).await,
        Command::Invite { action } => match action {
            InviteAction::Create(args) => invite::create(s, args).await,
            InviteAction::List => invite::list(s).await,
            InviteAction::Revoke { invitation_id } => invite::revoke(s, &invitation_id, false).await,
            InviteAction::RevokeGuest { guest_id } => invite::revoke(s, &guest_id, true).await,
        },
        Command::Accept { link_or_code } => invite::accept(s, &link_or_code).await,
        Command::UploadEvents => upload_events(s).await,
        Command::Demo => demo::run().await.map_err(|e| Failure::new(code::FAILED, e)),
    }
}

/// One invocation: where things are, which server, how to print.
pub struct Session {
    place: Place,
    /// From --server / PORTA_SERVER, else the config.
    server: Option<String>,
    /// Given on the command line (or env): remembered at sign-in.
    server_given: bool,
    json: bool,
    clock: Clock,
}

impl Session {
    fn new(cli: &Cli) -> Session {
        let place = Place::new(cli.home.clone());
        let given = cli.server.clone().filter(|s| !s.is_empty());
        let server_given = given.is_some();
        let server = given.or_else(|| place.config().server);
        Session { place, server, server_given, json: cli.json, clock: Clock::system() }
    }

    fn server(&self) -> Result<&str, Failure> {
        self.server
            .as_deref()
            .ok_or_else(|| Failure::usage("no server yet: run `porta --server URL sign-in` (the server is remembered)"))
    }

    /// The core's client for this home, and where its secrets are kept. It reaches the locks
    /// over Bluetooth.
    fn client(&self) -> Result<(Client, Kept), Failure> {
        self.client_via(None)
    }

    /// The client, reaching the locks through `transport` (`None`: Bluetooth LE, btleplug).
    fn client_via(&self, transport: Option<Arc<dyn LockTransport>>) -> Result<(Client, Kept), Failure> {
        let fail = |e: String| Failure::new(code::FAILED, e);
        let (store, kept) = secrets::open(&self.place.secrets_dir, &self.place.data_dir).map_err(fail)?;
        let mut config = ClientConfig::new(self.server()?, &self.place.data_dir);
        config.device_name = device_name();
        config.lock_transport = transport;
        let client = Client::new(config, store).map_err(|e| self.fail(e))?;
        Ok((client, kept))
    }

    /// Remembers the server after it let us in, so later commands need no --server.
    fn remember_server(&self) {
        let Some(server) = self.server.clone().filter(|_| self.server_given) else { return };
        let mut config = self.place.config();
        if config.server.as_deref() != Some(&server) {
            config.server = Some(server);
            if let Err(e) = self.place.save_config(&config) {
                eprintln!("porta: could not remember the server in {}: {e}", self.place.config_file.display());
            }
        }
    }

    fn context(&self) -> Context<'_> {
        Context { server: self.server.as_deref(), ..Default::default() }
    }

    fn fail(&self, e: Error) -> Failure {
        failure::explain(e, &self.context(), &self.clock)
    }

    fn fail_in(&self, e: Error, cx: Context) -> Failure {
        failure::explain(e, &Context { server: self.server.as_deref(), ..cx }, &self.clock)
    }

    /// `value` as JSON with --json, else the sentences `human` prints.
    fn print(&self, value: &impl serde::Serialize, human: impl FnOnce()) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("porta: cannot write JSON: {e}"),
            }
        } else {
            human();
        }
    }
}

fn device_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    match host.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) => format!("porta terminal on {host}"),
        None => "porta terminal".into(),
    }
}

/// One line typed by the person (or piped in); `None` at end of input or for an empty line.
fn ask(prompt: &str) -> Result<Option<String>, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure::new(code::FAILED, format!("stdin: {e}")))?;
    if !std::io::stdin().is_terminal() {
        // Piped: end the prompt's line so what follows does not run into it.
        eprintln!();
    }
    let line = line.trim();
    Ok((!line.is_empty()).then(|| line.to_owned()))
}

async fn sign_in(s: &Session, identifier: Option<String>) -> Result<(), Failure> {
    let (client, kept) = s.client()?;
    let identifier = match identifier {
        Some(i) => i,
        None => ask("email or phone number: ")?.ok_or_else(|| Failure::usage("give your email or phone number"))?,
    };
    let retry = || Context { retry: Some("porta sign-in"), ..Default::default() };
    client.request_code(&identifier).await.map_err(|e| s.fail_in(e, retry()))?;
    let code = ask(&format!("a code was sent to {identifier}; type it here: "))?
        .ok_or_else(|| Failure::new(code::BAD_CODE, "no code typed: run `porta sign-in` again"))?;
    let code = zeroize::Zeroizing::new(code);
    client.sign_in(&identifier, &code).await.map_err(|e| s.fail_in(e, retry()))?;
    s.remember_server();
    let (store, path) = match &kept {
        Kept::Keyring => ("keyring", None),
        Kept::Files(dir) => ("files", Some(dir.display().to_string())),
    };
    let value = json!({ "signed_in": true, "server": s.server, "session_store": store, "session_path": path });
    s.print(&value, || {
        println!("signed in to {}", s.server.as_deref().unwrap_or_default());
        println!("{}", kept.sentence());
    });
    Ok(())
}

async fn sign_out(s: &Session) -> Result<(), Failure> {
    s.client()?.0.sign_out().await.map_err(|e| s.fail(e))?;
    s.print(&json!({ "signed_in": false }), || {
        println!("signed out: the session, device key and cached data on this computer are gone")
    });
    Ok(())
}

fn print_profile(p: &Profile) {
    println!("name:    {}", if p.name.is_empty() { "(not set)" } else { &p.name });
    println!("email:   {}", p.email.as_deref().unwrap_or("-"));
    println!("phone:   {}", p.phone.as_deref().unwrap_or("-"));
    match &p.unit {
        Some(u) => {
            let kind = match u.kind {
                porta_core::UnitKind::Apartment => "apartment",
                porta_core::UnitKind::Office => "office",
            };
            println!("unit:    {} ({kind}, set by the building)", u.name)
        }
        None => println!("unit:    -"),
    }
    println!("picture: {}", if p.has_picture { "yes" } else { "no" });
    if let Some(pending) = &p.pending_contact {
        let field = match pending.field {
            porta_core::ContactField::Email => "email",
            porta_core::ContactField::Phone => "phone",
        };
        println!("pending: new {field} {} (waiting for its code: `porta profile confirm CODE`)", pending.value);
    }
}

async fn set_profile(s: &Session, update: ProfileUpdate) -> Result<(), Failure> {
    if update == ProfileUpdate::default() {
        return Err(Failure::usage("say what to change: --name, --email or --phone"));
    }
    let client = s.client()?.0;
    let mut p = client.update_profile(update).await.map_err(|e| s.fail(e))?;
    if let Some(pending) = p.pending_contact.clone() {
        let prompt =
            format!("a code was sent to {}; type it here (or later: `porta profile confirm CODE`): ", pending.value);
        if let Some(code) = ask(&prompt)? {
            let retry = Context { retry: Some("porta profile set"), ..Default::default() };
            p = client.confirm_contact_change(&code).await.map_err(|e| s.fail_in(e, retry))?;
        }
    }
    s.print(&p, || print_profile(&p));
    Ok(())
}

/// The doors, fresh from the server; offline, as last synced.
async fn fetch_doors(s: &Session, client: &Client) -> Result<Vec<Door>, Failure> {
    client.doors().await.map_err(|e| s.fail(e))
}

/// When a door may be opened, in a few words.
fn access(clock: &Clock, door: &Door) -> String {
    if door.lock_id.is_none() {
        return "no lock installed yet".into();
    }
    let mut windows: Vec<String> = door
        .access
        .iter()
        .map(|w| {
            let mut text = clock.until(w.not_after);
            if w.not_before > clock.now {
                text = format!("from {} {text}", clock.when(w.not_before));
            }
            match &w.schedule {
                Some(schedule) => format!("{text}, {schedule} (the building's time)"),
                None => text,
            }
        })
        .collect();
    windows.dedup();
    if windows.is_empty() {
        "granted".into()
    } else {
        windows.join("; ")
    }
}

async fn doors(s: &Session) -> Result<(), Failure> {
    let client = s.client()?.0;
    let doors = fetch_doors(s, &client).await?;
    s.print(&doors, || {
        if doors.is_empty() {
            println!("no doors yet: ask your building");
            return;
        }
        let width = doors.iter().map(|d| d.name.chars().count()).max().unwrap_or(0);
        for d in &doors {
            println!("{:>3}  {:<width$}  {}", d.door_id, d.name, access(&s.clock, d));
        }
    });
    Ok(())
}

async fn log(s: &Session) -> Result<(), Failure> {
    let log = s.client()?.0.access_log().await.map_err(|e| s.fail(e))?;
    s.print(&log, || {
        if log.events.is_empty() {
            println!("no door opened yet");
        }
        let times: Vec<String> = log.events.iter().map(|e| s.clock.when(e.at)).collect();
        let width = times.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        for (e, when) in log.events.iter().zip(&times) {
            let door = e.door_name.as_deref().unwrap_or("(a removed door)");
            let what = if e.opened() { "opened" } else { "refused" };
            let why = e.reason.as_deref().map(|r| format!(" ({})", r.replace('_', " "))).unwrap_or_default();
            println!("{when:<width$}  {what:<7}  {door}{why}");
        }
        if !log.retention.is_empty() {
            let kept: Vec<String> =
                log.retention.iter().map(|r| format!("{} {} days", r.door_name, r.retention_days)).collect();
            println!("the building keeps this log: {}", kept.join(", "));
        }
    });
    Ok(())
}

async fn devices(s: &Session) -> Result<(), Failure> {
    let devices = s.client()?.0.devices().await.map_err(|e| s.fail(e))?;
    s.print(&devices, || {
        for d in &devices {
            let this = if d.current { " (this computer)" } else { "" };
            println!("{}{this}", d.device_name);
            println!(
                "    signed in {}, last seen {}; id {}",
                s.clock.when(d.created_at),
                s.clock.when(d.last_seen_at),
                d.device_id
            );
        }
    });
    Ok(())
}

/// A category's items for a person: `key: value` lines, times as local times.
fn items(clock: &Clock, value: &serde_json::Value, indent: usize, out: &mut Vec<String>) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    let scalar = |key: &str, v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) if key.ends_with("_at") || key == "at" || key.ends_with("_by") => {
            n.as_i64().map_or(n.to_string(), |t| clock.when(t))
        }
        Value::Number(n) if key == "not_before" || key == "not_after" => {
            n.as_i64()
                .map_or(n.to_string(), |t| if t > clock.now + 50 * 365 * 86_400 { "-".into() } else { clock.when(t) })
        }
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let label = k.replace('_', " ");
                if v.is_object() || v.is_array() {
                    out.push(format!("{pad}{label}:"));
                    items(clock, v, indent + 2, out);
                } else {
                    out.push(format!("{pad}{label}: {}", scalar(k, v)));
                }
            }
        }
        Value::Array(list) if list.is_empty() => out.push(format!("{pad}(none)")),
        Value::Array(list) => {
            for v in list {
                if v.is_object() || v.is_array() {
                    let mut inner = Vec::new();
                    items(clock, v, indent + 2, &mut inner);
                    if let Some(first) = inner.first_mut() {
                        first.replace_range(..indent + 2, &format!("{pad}- "));
                    }
                    out.extend(inner);
                } else {
                    out.push(format!("{pad}- {}", scalar("", v)));
                }
            }
        }
        v => out.push(format!("{pad}{}", scalar("", v))),
    }
}

async fn my_data(s: &Session) -> Result<(), Failure> {
    let data = s.client()?.0.my_data().await.map_err(|e| s.fail(e))?;
    s.print(&data, || {
        for c in &data.categories {
            println!("{}: {}", c.category.replace('_', " "), c.description);
            println!("  why: {} ({})", c.purpose, c.legal_basis);
            println!("  kept: {}", c.retention);
            println!("  seen by: {}", c.visible_to.join(", "));
            let mut lines = Vec::new();
            items(&s.clock, &c.items, 4, &mut lines);
            if !lines.is_empty() {
                println!("  what:");
                for l in lines {
                    println!("{l}");
                }
            }
        }
    });
    Ok(())
}

async fn export(s: &Session, file: PathBuf) -> Result<(), Failure> {
    let client = s.client()?.0;
    let size = client.export_my_data(file.clone()).await.map_err(|e| s.fail(e))?;
    s.print(&json!({ "path": file, "bytes": size }), || {
        println!("wrote {} ({size} bytes, readable only by you)", file.display())
    });
    Ok(())
}

async fn delete_account(s: &Session) -> Result<(), Failure> {
    let client = s.client()?.0;
    if !client.is_signed_in() {
        return Err(s.fail(Error::NotSignedIn));
    }
    client.request_deletion_code().await.map_err(|e| s.fail(e))?;
    eprintln!("This deletes your account and everything the building holds about you, on every device.");
    let code = ask("a code was sent to you; type it to confirm (or nothing to keep your account): ")?
        .ok_or_else(|| Failure::new(code::BAD_CODE, "no code typed: your account is kept"))?;
    let retry = Context { retry: Some("porta delete-account"), ..Default::default() };
    let receipt = client.delete_account(&code).await.map_err(|e| s.fail_in(e, retry))?;
    s.print(&receipt, || {
        println!("account deleted {}", s.clock.when(receipt.deleted_at));
        println!("the building's backups that still hold you are purged by {}", s.clock.day(receipt.backups_purged_by));
        println!("nothing of it is left on this computer");
    });
    Ok(())
}

/// Hands the building the doors' signed audit records queued on this computer.
async fn upload_events(s: &Session) -> Result<(), Failure> {
    let client = s.client()?.0;
    let uploaded = client.upload_access_events().await.map_err(|e| s.fail(e))?;
    let waiting = client.pending_access_events().map_err(|e| s.fail(e))?;
    s.print(&json!({ "uploaded": uploaded, "waiting": waiting }), || {
        println!("uploaded {uploaded} access events; {waiting} waiting")
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses_into_commands() {
        let cli = Cli::try_parse_from(["porta", "--json", "unlock", "main", "--lock-dir", "/var/lib/lock"]).unwrap();
        assert!(cli.json);
        assert!(
            matches!(cli.command, Command::Unlock { ref door, ref lock_dirs } if door == "main" && lock_dirs.len() == 1)
        );
        let cli = Cli::try_parse_from(["porta", "devices", "sign-out", "abc", "--server", "http://x"]).unwrap();
        assert_eq!(cli.server.as_deref(), Some("http://x"));
        assert!(matches!(cli.command, Command::Devices { action: Some(DevicesAction::SignOut { .. }) }));
        assert!(Cli::try_parse_from(["porta", "unlock"]).is_err());
        assert!(Cli::try_parse_from(["porta", "frobnicate"]).is_err());
    }

    #[test]
    fn a_doors_access_reads_as_words() {
        let clock = Clock { now: 1_772_629_380, tz: jiff::tz::TimeZone::UTC };
        let mut door = Door {
            door_id: 1,
            name: "Main entrance".into(),
            lock_id: Some(7),
            lock_public_key: None,
            log_retention_days: 90,
            access: vec![porta_core::AccessWindow { not_before: 0, not_after: 4_102_444_800, schedule: None }],
        };
        assert_eq!(access(&clock, &door), "no end date");
        door.access[0].not_after = clock.now + 86_400;
        assert_eq!(access(&clock, &door), "until tomorrow 13:03");
        door.lock_id = None;
        assert_eq!(access(&clock, &door), "no lock installed yet");
    }
}
