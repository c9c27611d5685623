//! `porta-admin`: the building's terminal tool. Sign in as a site admin or operator, set up
//! sites, units, doors, residents and grants, read the security log, make partner keys and
//! provision door locks. `porta-admin --help` lists the commands; admin/README.md has them
//! all, with the exit codes.

mod input;
mod session_file;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use porta_admin::{
    AdminClient, AdminError, DoorChanges, DstRule, EventQuery, Grantee, NewGrant, NewSite, Session, SiteChanges,
    UnitKind,
};
use serde::Serialize;
use serde_json::json;

const EXIT_CODES: &str = "Exit codes: 0 done, 2 bad command line or input file, 3 not signed in, 4 forbidden or \
not found, 5 input refused by the server, 6 rate limited, 7 server unreachable or failing.";

/// Exit codes: stable, documented in admin/README.md.
mod code {
    pub const USAGE: u8 = 2;
    pub const NOT_SIGNED_IN: u8 = 3;
    pub const FORBIDDEN_OR_NOT_FOUND: u8 = 4;
    pub const INVALID: u8 = 5;
    pub const RATE_LIMITED: u8 = 6;
    pub const NETWORK_OR_SERVER: u8 = 7;
}

/// Porta for the building: sites, units, doors, residents, grants, roles, the security log,
/// partner keys and door locks.
#[derive(Parser)]
#[command(name = "porta-admin", version, after_help = EXIT_CODES)]
struct Cli {
    /// The Porta server, e.g. https://porta.example.com (remembered after `sign-in`)
    #[arg(long, global = true, env = "PORTA_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Machine-readable output (JSON) instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The site a command is about; may be left out by an admin of exactly one site.
#[derive(Args, Clone)]
struct SiteArg {
    /// The site's id (`sites list`); optional if you administer exactly one site
    #[arg(long, env = "PORTA_SITE", value_name = "SITE_ID")]
    site: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in with a one-time code sent to your email or phone (asked for on stdin without --code)
    SignIn {
        /// Your email address or phone number (+ and 8 to 15 digits)
        identifier: String,
        /// A code you already received; without it a new one is sent and read from stdin
        #[arg(long)]
        code: Option<String>,
    },
    /// Sign out: the session ends at the server and is removed from this computer
    SignOut,
    /// Sites: list, create (operators), show, change
    Sites {
        #[command(subcommand)]
        action: SitesAction,
    },
    /// A site's units (apartments, offices)
    Units {
        #[command(subcommand)]
        action: UnitsAction,
    },
    /// A site's doors, and how long their access logs are kept
    Doors {
        #[command(subcommand)]
        action: DoorsAction,
    },
    /// A unit's residents: they get a sign-in code when added
    Residents {
        #[command(subcommand)]
        action: ResidentsAction,
    },
    /// The site's grants
    Grants {
        #[command(flatten)]
        site: SiteArg,
    },
    /// Grant doors to a unit (its residents, now and later) or one resident
    Grant(GrantArgs),
    /// Revoke a grant: its credentials go on the revocation list the phones carry to the locks
    Revoke {
        #[command(flatten)]
        site: SiteArg,
        grant_id: String,
    },
    /// The site's admins
    Roles {
        #[command(subcommand)]
        action: RolesAction,
    },
    /// Security events of one site (--site), or of every site (operators)
    SecurityLog {
        /// Only this site's events; without it, every site's (operators only). Not read from
        /// PORTA_SITE, so leaving it out always means every site.
        #[arg(long, value_name = "SITE_ID")]
        site: Option<String>,
        /// Only events of this kind, e.g. grant_created, retention_changed, lock_provisioned
        #[arg(long)]
        kind: Option<String>,
        /// Only events at or after this time (Unix seconds or a UTC date like 2026-12-01)
        #[arg(long, value_parser = input::parse_time)]
        since: Option<i64>,
        /// Only events with an id below this (the previous page's next_before)
        #[arg(long)]
        before: Option<i64>,
        /// Events per page, 1 to 200
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Partner API keys of the site (a caretaker's or booking system's read access)
    PartnerKeys {
        #[command(subcommand)]
        action: PartnerKeysAction,
    },
    /// Door locks: certify a new lock for a door, show it, decommission it
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
}

#[derive(Subcommand)]
enum SitesAction {
    /// The sites you administer (an operator: every site)
    List,
    /// Create a site (operators only)
    Create {
        name: String,
        #[command(flatten)]
        fields: SiteFields,
    },
    /// One site
    Show { site_id: String },
    /// Change a site's name, address, time zone or invitation rules
    Set {
        site_id: String,
        /// A new name
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: SiteFields,
    },
}

#[derive(Args)]
struct SiteFields {
    #[arg(long)]
    address: Option<String>,
    /// Standard local time minus UTC, in minutes (-1080 to 1080), e.g. 60 for Oslo
    #[arg(long, value_name = "MINUTES", allow_hyphen_values = true)]
    utc_offset: Option<i16>,
    /// Daylight-saving rule
    #[arg(long, value_enum)]
    dst: Option<Dst>,
    /// Longest invitation tenants may give, 1 to 366 days
    #[arg(long, value_name = "DAYS")]
    max_invitation_days: Option<i64>,
    /// Whether tenants may invite guests
    #[arg(long, value_name = "BOOL")]
    tenants_may_invite: Option<bool>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Dst {
    /// No summer time
    None,
    /// EU summer time (last Sunday of March to last Sunday of October)
    Eu,
}

#[derive(Subcommand)]
enum UnitsAction {
    /// The site's units
    List {
        #[command(flatten)]
        site: SiteArg,
    },
    /// Add a unit
    Add {
        #[command(flatten)]
        site: SiteArg,
        name: String,
        #[arg(long, value_enum, default_value = "apartment")]
        kind: Kind,
    },
    /// Delete a unit: its grants are revoked, its residents keep their accounts
    Delete {
        #[command(flatten)]
        site: SiteArg,
        unit_id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Apartment,
    Office,
}

#[derive(Subcommand)]
enum DoorsAction {
    /// The site's doors, their log retention and lock
    List {
        #[command(flatten)]
        site: SiteArg,
    },
    /// Add a door: it gets the next free number
    Add {
        #[command(flatten)]
        site: SiteArg,
        name: String,
        /// Days its access events are kept, 1 to 365 (default 90)
        #[arg(long, value_name = "DAYS")]
        retention_days: Option<i64>,
    },
    /// Rename a door
    Rename {
        #[command(flatten)]
        site: SiteArg,
        /// The door's number or name
        door: String,
        name: String,
    },
    /// Keep the door's access events DAYS days (1 to 365); a lower value applies at the next hourly purge
    Retention {
        #[command(flatten)]
        site: SiteArg,
        /// The door's number or name
        door: String,
        days: i64,
    },
    /// Delete a door: credentials that open it are revoked
    Delete {
        #[command(flatten)]
        site: SiteArg,
        /// The door's number or name
        door: String,
    },
}

#[derive(Subcommand)]
enum ResidentsAction {
    /// A unit's residents
    List {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long, value_name = "UNIT_ID")]
        unit: String,
    },
    /// Add a resident by email or phone; the server sends them a sign-in code
    Add {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long, value_name = "UNIT_ID")]
        unit: String,
        identifier: String,
    },
    /// Take a resident out of a unit (the account stays; the unit's doors leave them)
    Remove {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long, value_name = "UNIT_ID")]
        unit: String,
        user_id: String,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("grantee").required(true).args(["unit", "person"])))]
struct GrantArgs {
    #[command(flatten)]
    site: SiteArg,
    /// Grant to every resident of this unit, now and later
    #[arg(long, value_name = "UNIT_ID")]
    unit: Option<String>,
    /// Grant to this resident of the site
    #[arg(long, value_name = "USER_ID")]
    person: Option<String>,
    /// A door (number or name); repeat for more
    #[arg(long = "door", value_name = "DOOR", required = true)]
    doors: Vec<String>,
    /// From: now, +2h, +7d, Unix seconds or a UTC date like 2026-12-01T08:00; default now
    #[arg(long, value_parser = input::parse_time)]
    from: Option<i64>,
    /// Until, inclusive (same forms, UTC); default no end
    #[arg(long, value_parser = input::parse_time)]
    until: Option<i64>,
    /// Weekly hours in the site's local time, e.g. mon-fri@07:00-22:00; repeat for more; default any time
    #[arg(long = "hours", value_name = "DAYS@HH:MM-HH:MM", value_parser = input::parse_hours)]
    hours: Vec<porta_admin::ScheduleWindow>,
}

#[derive(Subcommand)]
enum RolesAction {
    /// The site's admins
    List {
        #[command(flatten)]
        site: SiteArg,
    },
    /// Make someone (email or phone; the account is created if needed) admin of the site
    Grant {
        #[command(flatten)]
        site: SiteArg,
        identifier: String,
    },
    /// Take the site-admin role away
    Revoke {
        #[command(flatten)]
        site: SiteArg,
        user_id: String,
    },
}

#[derive(Subcommand)]
enum PartnerKeysAction {
    /// The site's partner keys, revoked ones included (never their secrets)
    List {
        #[command(flatten)]
        site: SiteArg,
    },
    /// Make a key; its secret is printed once, now
    Create {
        #[command(flatten)]
        site: SiteArg,
        /// Who the key is for, e.g. the partner's name
        label: String,
    },
    /// Revoke a key: it is refused from now on
    Revoke {
        #[command(flatten)]
        site: SiteArg,
        key_id: String,
    },
}

#[derive(Subcommand)]
enum LockAction {
    /// Certify the lock that wrote REQUEST_FILE (`porta-lockd provision-request`) for a door; a lock
    /// already there is replaced and its certificate revoked
    Provision {
        #[command(flatten)]
        site: SiteArg,
        /// The door's number or name
        #[arg(long)]
        door: String,
        /// The lock's provisioning request: base64 on one line
        request_file: PathBuf,
        /// Write the answer (for `porta-lockd install-certificate`) here instead of stdout
        #[arg(long, value_name = "ANSWER_FILE")]
        out: Option<PathBuf>,
        /// Days the certificate is valid, 1 to 3650 (default 1825)
        #[arg(long, value_name = "N")]
        valid_days: Option<u32>,
    },
    /// The door's current lock
    Show {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long)]
        door: String,
    },
    /// Decommission the door's lock: its certificate is revoked, the door has no lock
    Decommission {
        #[command(flatten)]
        site: SiteArg,
        #[arg(long)]
        door: String,
    },
}

/// A failed command: what to tell the admin, and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// The exit code's name, for `--json`.
    fn kind(&self) -> &'static str {
        match self.code {
            code::USAGE => "usage",
            code::NOT_SIGNED_IN => "not_signed_in",
            code::FORBIDDEN_OR_NOT_FOUND => "forbidden_or_not_found",
            code::INVALID => "invalid",
            code::RATE_LIMITED => "rate_limited",
            _ => "network_or_server",
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure { code: code::USAGE, message: message.into() }
    }
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Failure {
        let code = match &error {
            AdminError::NotSignedIn => code::NOT_SIGNED_IN,
            AdminError::Forbidden | AdminError::NotFound => code::FORBIDDEN_OR_NOT_FOUND,
            AdminError::Invalid { .. } | AdminError::Conflict { .. } => code::INVALID,
            AdminError::RateLimited { .. } => code::RATE_LIMITED,
            AdminError::Network { .. } | AdminError::Server { .. } => code::NETWORK_OR_SERVER,
        };
        let message = match &error {
            AdminError::NotSignedIn => "not signed in, or the session has ended: run `porta-admin sign-in`".into(),
            AdminError::Conflict { code } if code == "lock_key_in_use" => {
                "refused (lock_key_in_use): this site has certified that lock's key before, for this or another \
                 door, and a key is certified once (`porta-admin doors list` shows each door's lock)"
                    .into()
            }
            other => other.to_string(),
        };
        Failure { code, message }
    }
}

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: called first thing, before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("porta-admin: {}", failure.message);
            if json {
                // Scripts get the failure on stdout too, in the shape `porta --json` uses, with a kind.
                let error = json!({ "error": failure.message, "kind": failure.kind(), "exit_code": failure.code });
                println!("{error}");
            }
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let session_path =
        session_file::path().ok_or_else(|| Failure::usage("no place for the session: set XDG_CONFIG_HOME or HOME"))?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::SignIn { identifier, code } => sign_in(&session_path, cli.server, &identifier, code, &out).await,
        Command::SignOut => sign_out(&session_path, cli.server.as_deref(), &out).await,
        command => {
            let admin = signed_in(&session_path, cli.server.as_deref())?;
            admin_command(&admin, command, &out).await
        }
    }
}

async fn sign_in(path: &Path, server: Option<String>, identifier: &str, code: Option<String>, out: &Output) -> Outcome {
    let saved = session_file::load(path);
    let server = server
        .or_else(|| saved.as_ref().map(|s| s.server.clone()))
        .ok_or_else(|| Failure::usage("which server? pass --server URL (or set PORTA_SERVER)"))?;
    let code = match code {
        Some(code) => code,
        None => {
            let sent = AdminClient::request_code(&server, identifier).await?;
            eprint!("A code is on its way (valid {} min). Code: ", sent.expires_in_s / 60);
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|_| Failure::usage("could not read the code"))?;
            if !std::io::stdin().is_terminal() {
                // A piped code is not echoed: end the prompt's line.
                eprintln!();
            }
            line
        }
    };
    let admin = AdminClient::sign_in_with_code(&server, identifier, &code).await?;
    // An account with no admin role can do nothing here: end its session rather than keep it.
    let sites = match admin.sites().await {
        Ok(sites) => sites,
        Err(AdminError::Forbidden) => {
            let _ = admin.sign_out().await;
            return Err(Failure {
                code: code::FORBIDDEN_OR_NOT_FOUND,
                message: "signed in, but this account is not an admin of any site; signed out again".into(),
            });
        }
        Err(other) => return Err(other.into()),
    };
    if let Some(old) = saved {
        // The session this one replaces ends too, so no forgotten tokens stay valid.
        let _ = AdminClient::from_session(old).sign_out().await;
    }
    session_file::save(path, &admin.session()).map_err(|e| Failure {
        code: code::USAGE,
        message: format!("signed in, but the session could not be saved at {}: {e}", path.display()),
    })?;
    out.print(&json!({ "server": admin.server_url(), "sites": sites.len() }), || {
        format!("Signed in to {}; you administer {} site(s).", admin.server_url(), sites.len())
    });
    Ok(())
}

async fn sign_out(path: &Path, server: Option<&str>, out: &Output) -> Outcome {
    let Some(session) = session_file::load(path) else {
        out.print(&json!({ "signed_out": false }), || "Not signed in.".into());
        return Ok(());
    };
    check_server(&session, server)?;
    let ended = AdminClient::from_session(session).sign_out().await;
    session_file::remove(path).map_err(|e| Failure::usage(format!("could not remove {}: {e}", path.display())))?;
    match ended {
        // A session the server no longer knows is as signed out as it gets.
        Ok(()) | Err(AdminError::NotSignedIn) => {
            out.print(&json!({ "signed_out": true }), || "Signed out.".into());
            Ok(())
        }
        Err(other) => Err(Failure {
            message: format!("removed the session here, but the server did not confirm: {other}"),
            ..Failure::from(other)
        }),
    }
}

fn check_server(session: &Session, server: Option<&str>) -> Outcome {
    match server {
        // Never send one server's tokens to another.
        Some(url) if url.trim().trim_end_matches('/') != session.server => Err(Failure {
            code: code::NOT_SIGNED_IN,
            message: format!("signed in to {}, not {url}: run `porta-admin sign-in` for it", session.server),
        }),
        _ => Ok(()),
    }
}

fn signed_in(path: &Path, server: Option<&str>) -> Result<AdminClient, Failure> {
    let session = session_file::load(path).ok_or_else(|| Failure::from(AdminError::NotSignedIn))?;
    check_server(&session, server)?;
    let path = path.to_owned();
    Ok(AdminClient::from_session(session).on_session_change(move |session| {
        // Saved at once: the old refresh token is spent, so this one must not be lost.
        if let Err(e) = session_file::save(&path, session) {
            eprintln!("porta-admin: could not save the refreshed session at {}: {e}", path.display());
        }
    }))
}

/// The site a command is about: the one given, or the only one the admin has.
async fn site_of(admin: &AdminClient, site: SiteArg) -> Result<String, Failure> {
    if let Some(site) = site.site {
        return Ok(site);
    }
    let sites = admin.sites().await?;
    match sites.as_slice() {
        [only] => Ok(only.id.clone()),
        [] => Err(Failure::usage("you administer no site yet")),
        _ => Err(Failure::usage("you administer several sites: pass --site SITE_ID (see `porta-admin sites list`)")),
    }
}

/// A door by number, or by name (any case).
async fn door_of(admin: &AdminClient, site_id: &str, door: &str) -> Result<u32, Failure> {
    if let Ok(number) = door.trim().parse() {
        return Ok(number);
    }
    let doors = admin.doors(site_id).await?;
    let named: Vec<_> = doors.iter().filter(|d| d.name.eq_ignore_ascii_case(door.trim())).collect();
    match named.as_slice() {
        [one] => Ok(one.door_id),
        [] => Err(Failure { code: code::FORBIDDEN_OR_NOT_FOUND, message: "no door of that name at the site".into() }),
        _ => Err(Failure::usage("several doors have that name: give its number (`porta-admin doors list`)")),
    }
}

async fn admin_command(admin: &AdminClient, command: Command, out: &Output) -> Outcome {
    match command {
        Command::SignIn { .. } | Command::SignOut => unreachable!("handled before"),
        Command::Sites { action } => sites(admin, action, out).await,
        Command::Units { action } => units(admin, action, out).await,
        Command::Doors { action } => doors(admin, action, out).await,
        Command::Residents { action } => residents(admin, action, out).await,
        Command::Grants { site } => {
            let site = site_of(admin, site).await?;
            let grants = admin.grants(&site).await?;
            out.table(&grants, &["GRANT", "TO", "DOORS", "FROM (UTC)", "UNTIL (UTC)", "HOURS"], |g| {
                let to = match (&g.unit_id, &g.user_id) {
                    (Some(unit), _) => format!("unit {unit}"),
                    (_, Some(user)) => format!("person {user}"),
                    _ => "-".into(),
                };
                let hours = g.schedule.as_ref().map_or("any time".into(), |s| {
                    s.windows.iter().map(input::show_hours).collect::<Vec<_>>().join(" ")
                });
                let doors = g.doors.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
                vec![g.id.clone(), to, doors, input::show_time(g.not_before), until(g.not_after), hours]
            });
            Ok(())
        }
        Command::Grant(args) => grant(admin, args, out).await,
        Command::Revoke { site, grant_id } => {
            let site = site_of(admin, site).await?;
            admin.revoke_grant(&site, &grant_id).await?;
            out.done(|| format!("Revoked grant {grant_id}; phones carry the revocation to the locks."));
            Ok(())
        }
        Command::Roles { action } => roles(admin, action, out).await,
        Command::SecurityLog { site, kind, since, before, limit } => {
            let query = EventQuery { kind, since, before, limit: Some(limit) };
            let page = match site {
                Some(site) => admin.site_security_events(&site, &query).await?,
                None => admin.security_events(&query).await?,
            };
            if out.json {
                out.print(&page, String::new);
            } else {
                out.table(&page.events, &["ID", "AT (UTC)", "KIND", "SUBJECT", "DETAIL", "ACTOR"], |e| {
                    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                    vec![
                        e.id.to_string(),
                        input::show_time(e.at),
                        e.kind.clone(),
                        or_dash(&e.subject),
                        or_dash(&e.detail),
                        or_dash(&e.actor),
                    ]
                });
                if let Some(next) = page.next_before {
                    println!("(more: --before {next})");
                }
            }
            Ok(())
        }
        Command::PartnerKeys { action } => partner_keys(admin, action, out).await,
        Command::Lock { action } => lock(admin, action, out).await,
    }
}

fn until(at: i64) -> String {
    // The server's "no end" is 2100-01-01.
    if at >= 4_102_444_800 {
        "no end".into()
    } else {
        input::show_time(at)
    }
}

async fn sites(admin: &AdminClient, action: SitesAction, out: &Output) -> Outcome {
    let site = match action {
        SitesAction::List => {
            let sites = admin.sites().await?;
            out.table(&sites, &["SITE", "NAME", "ADDRESS", "UTC OFFSET", "DST", "INVITATIONS"], |s| {
                let invitations =
                    if s.tenants_may_invite { format!("≤ {} days", s.max_invitation_days) } else { "off".into() };
                vec![
                    s.id.clone(),
                    s.name.clone(),
                    s.address.clone(),
                    format!("{:+} min", s.utc_offset_minutes),
                    dst_name(s.dst_rule).into(),
                    invitations,
                ]
            });
            return Ok(());
        }
        SitesAction::Create { name, fields } => {
            let new = NewSite {
                name,
                address: fields.address,
                utc_offset_minutes: fields.utc_offset,
                dst_rule: fields.dst.map(dst_rule),
                max_invitation_days: fields.max_invitation_days,
                tenants_may_invite: fields.tenants_may_invite,
            };
            admin.create_site(&new).await?
        }
        SitesAction::Show { site_id } => admin.site(&site_id).await?,
        SitesAction::Set { site_id, name, fields } => {
            let changes = SiteChanges {
                name,
                address: fields.address,
                utc_offset_minutes: fields.utc_offset,
                dst_rule: fields.dst.map(dst_rule),
                max_invitation_days: fields.max_invitation_days,
                tenants_may_invite: fields.tenants_may_invite,
            };
            admin.update_site(&site_id, &changes).await?
        }
    };
    out.record(
        &site,
        &[
            ("site", site.id.clone()),
            ("name", site.name.clone()),
            ("address", site.address.clone()),
            ("utc offset", format!("{:+} min", site.utc_offset_minutes)),
            ("dst", dst_name(site.dst_rule).into()),
            ("max invitation days", site.max_invitation_days.to_string()),
            ("tenants may invite", site.tenants_may_invite.to_string()),
        ],
    );
    Ok(())
}

fn dst_rule(dst: Dst) -> DstRule {
    match dst {
        Dst::None => DstRule::None,
        Dst::Eu => DstRule::Eu,
    }
}

fn dst_name(rule: DstRule) -> &'static str {
    match rule {
        DstRule::None => "none",
        DstRule::Eu => "eu",
    }
}

async fn units(admin: &AdminClient, action: UnitsAction, out: &Output) -> Outcome {
    match action {
        UnitsAction::List { site } => {
            let units = admin.units(&site_of(admin, site).await?).await?;
            out.table(&units, &["UNIT", "NAME", "KIND"], |u| vec![u.id.clone(), u.name.clone(), u.kind.clone()]);
        }
        UnitsAction::Add { site, name, kind } => {
            let kind = match kind {
                Kind::Apartment => UnitKind::Apartment,
                Kind::Office => UnitKind::Office,
            };
            let unit = admin.create_unit(&site_of(admin, site).await?, &name, kind).await?;
            out.record(&unit, &[("unit", unit.id.clone()), ("name", unit.name.clone()), ("kind", unit.kind.clone())]);
        }
        UnitsAction::Delete { site, unit_id } => {
            admin.delete_unit(&site_of(admin, site).await?, &unit_id).await?;
            out.done(|| format!("Deleted unit {unit_id}; its grants are revoked."));
        }
    }
    Ok(())
}

fn door_record(out: &Output, door: &porta_admin::Door) {
    out.record(
        door,
        &[
            ("door", door.door_id.to_string()),
            ("name", door.name.clone()),
            ("log retention", format!("{} days", door.log_retention_days)),
        ],
    );
}

async fn doors(admin: &AdminClient, action: DoorsAction, out: &Output) -> Outcome {
    match action {
        DoorsAction::List { site } => {
            let doors = admin.doors(&site_of(admin, site).await?).await?;
            out.table(&doors, &["DOOR", "NAME", "LOG RETENTION", "LOCK"], |d| {
                vec![
                    d.door_id.to_string(),
                    d.name.clone(),
                    format!("{} days", d.log_retention_days),
                    d.lock_id.map_or("none".into(), |id| id.to_string()),
                ]
            });
        }
        DoorsAction::Add { site, name, retention_days } => {
            let door = admin.create_door(&site_of(admin, site).await?, &name, retention_days).await?;
            door_record(out, &door);
        }
        DoorsAction::Rename { site, door, name } => {
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            let changes = DoorChanges { name: Some(name), log_retention_days: None };
            door_record(out, &admin.update_door(&site, number, &changes).await?);
        }
        DoorsAction::Retention { site, door, days } => {
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            door_record(out, &admin.set_retention(&site, number, days).await?);
        }
        DoorsAction::Delete { site, door } => {
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            admin.delete_door(&site, number).await?;
            out.done(|| format!("Deleted door {number}; credentials that open it are revoked."));
        }
    }
    Ok(())
}

async fn residents(admin: &AdminClient, action: ResidentsAction, out: &Output) -> Outcome {
    match action {
        ResidentsAction::List { site, unit } => {
            let residents = admin.residents(&site_of(admin, site).await?, &unit).await?;
            out.table(&residents, &["USER", "NAME", "EMAIL", "PHONE"], |r| {
                let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                vec![r.user_id.clone(), r.name.clone(), or_dash(&r.email), or_dash(&r.phone)]
            });
        }
        ResidentsAction::Add { site, unit, identifier } => {
            let invited = admin.add_resident(&site_of(admin, site).await?, &unit, &identifier).await?;
            out.print(&invited, || {
                format!(
                    "Added; a sign-in code is on its way to them (valid {} min). `residents list` shows their user id.",
                    invited.code_expires_in_s / 60
                )
            });
        }
        ResidentsAction::Remove { site, unit, user_id } => {
            admin.remove_resident(&site_of(admin, site).await?, &unit, &user_id).await?;
            out.done(|| format!("Removed {user_id} from the unit; the unit's doors leave them."));
        }
    }
    Ok(())
}

async fn grant(admin: &AdminClient, args: GrantArgs, out: &Output) -> Outcome {
    let site = site_of(admin, args.site).await?;
    let mut doors = Vec::new();
    for door in &args.doors {
        doors.push(door_of(admin, &site, door).await?);
    }
    let to = match (args.unit, args.person) {
        (Some(unit), _) => Grantee::Unit(unit),
        (None, Some(person)) => Grantee::Person(person),
        (None, None) => unreachable!("clap requires one"),
    };
    let hours = (!args.hours.is_empty()).then_some(args.hours);
    let new = NewGrant { to, doors, not_before: args.from, not_after: args.until, hours };
    let grant = admin.create_grant(&site, &new).await?;
    let hours = grant
        .schedule
        .as_ref()
        .map_or("any time".into(), |s| s.windows.iter().map(input::show_hours).collect::<Vec<_>>().join(" "));
    out.record(
        &grant,
        &[
            ("grant", grant.id.clone()),
            ("doors", grant.doors.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
            ("from (UTC)", input::show_time(grant.not_before)),
            ("until (UTC)", until(grant.not_after)),
            ("hours (site time)", hours),
        ],
    );
    Ok(())
}

async fn roles(admin: &AdminClient, action: RolesAction, out: &Output) -> Outcome {
    match action {
        RolesAction::List { site } => {
            let roles = admin.roles(&site_of(admin, site).await?).await?;
            out.table(&roles, &["USER", "ROLE", "EMAIL", "PHONE"], |r| {
                let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                vec![r.user_id.clone(), r.role.clone(), or_dash(&r.email), or_dash(&r.phone)]
            });
        }
        RolesAction::Grant { site, identifier } => {
            let role = admin.grant_site_admin(&site_of(admin, site).await?, &identifier).await?;
            out.record(&role, &[("user", role.user_id.clone()), ("role", role.role.clone())]);
        }
        RolesAction::Revoke { site, user_id } => {
            admin.revoke_site_admin(&site_of(admin, site).await?, &user_id).await?;
            out.done(|| format!("{user_id} is no longer admin of the site."));
        }
    }
    Ok(())
}

async fn partner_keys(admin: &AdminClient, action: PartnerKeysAction, out: &Output) -> Outcome {
    match action {
        PartnerKeysAction::List { site } => {
            let keys = admin.partner_keys(&site_of(admin, site).await?).await?;
            out.table(&keys, &["KEY", "LABEL", "CREATED (UTC)", "LAST USED", "REVOKED"], |k| {
                let when = |at: Option<i64>| at.map_or("-".into(), input::show_time);
                vec![
                    k.id.clone(),
                    k.label.clone(),
                    input::show_time(k.created_at),
                    when(k.last_used_at),
                    when(k.revoked_at),
                ]
            });
        }
        PartnerKeysAction::Create { site, label } => {
            let created = admin.create_partner_key(&site_of(admin, site).await?, &label).await?;
            // The secret is the point of this command: shown once, to hand to the partner.
            out.record(
                &created,
                &[
                    ("key", created.key.id.clone()),
                    ("label", created.key.label.clone()),
                    ("secret (shown only now)", created.secret.clone()),
                ],
            );
        }
        PartnerKeysAction::Revoke { site, key_id } => {
            admin.revoke_partner_key(&site_of(admin, site).await?, &key_id).await?;
            out.done(|| format!("Revoked partner key {key_id}."));
        }
    }
    Ok(())
}

async fn lock(admin: &AdminClient, action: LockAction, out: &Output) -> Outcome {
    match action {
        LockAction::Provision { site, door, request_file, out: answer_file, valid_days } => {
            let request = std::fs::read_to_string(&request_file)
                .map_err(|e| Failure::usage(format!("could not read {}: {e}", request_file.display())))?;
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            let installed = admin.provision_lock(&site, number, &request, valid_days).await?;
            let answer = serde_json::to_string_pretty(&installed).expect("an answer serializes") + "\n";
            let replaced = installed
                .replaced_lock_id
                .map_or(String::new(), |old| format!(" It replaces lock {old}, whose certificate is revoked."));
            match answer_file {
                Some(path) => {
                    std::fs::write(&path, &answer)
                        .map_err(|e| Failure::usage(format!("could not write {}: {e}", path.display())))?;
                    out.print(&installed, || {
                        format!(
                            "Lock {} certified for door {} until {} UTC; answer written to {} for `porta-lockd \
                             install-certificate`.{replaced}",
                            installed.lock_id,
                            installed.door_id,
                            input::show_time(i64::from(installed.not_after)),
                            path.display()
                        )
                    });
                }
                None => {
                    // stdout is the answer file; the note goes to stderr.
                    print!("{answer}");
                    if !out.json {
                        eprintln!("Lock {} certified for door {}.{replaced}", installed.lock_id, installed.door_id);
                    }
                }
            }
        }
        LockAction::Show { site, door } => {
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            let lock = admin.lock(&site, number).await?;
            out.record(
                &lock,
                &[
                    ("lock", lock.lock_id.to_string()),
                    ("door", lock.door_id.to_string()),
                    ("lock public key", lock.lock_public_key.clone()),
                    ("authority public key", lock.authority_public_key.clone()),
                    ("valid from (UTC)", input::show_time(i64::from(lock.not_before))),
                    ("valid until (UTC)", input::show_time(i64::from(lock.not_after))),
                    ("provisioned (UTC)", input::show_time(lock.provisioned_at)),
                ],
            );
        }
        LockAction::Decommission { site, door } => {
            let site = site_of(admin, site).await?;
            let number = door_of(admin, &site, &door).await?;
            admin.decommission_lock(&site, number).await?;
            out.done(|| format!("Door {number} has no lock now; the old lock's certificate is revoked."));
        }
    }
    Ok(())
}

/// Tables and sentences for people, JSON for programs.
struct Output {
    json: bool,
}

impl Output {
    fn print(&self, value: &impl Serialize, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).expect("answers serialize"));
        } else {
            println!("{}", human());
        }
    }

    fn done(&self, human: impl FnOnce() -> String) {
        self.print(&json!({ "ok": true }), human)
    }

    /// One record as `name: value` lines.
    fn record(&self, value: &impl Serialize, fields: &[(&str, String)]) {
        self.print(value, || {
            let width = fields.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
            fields.iter().map(|(name, value)| format!("{name:<width$}  {value}")).collect::<Vec<_>>().join("\n")
        })
    }

    fn table<T: Serialize>(&self, rows: &[T], headers: &[&str], cells: impl Fn(&T) -> Vec<String>) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(rows).expect("answers serialize"));
            return;
        }
        if rows.is_empty() {
            println!("(none)");
            return;
        }
        let rows: Vec<Vec<String>> = rows.iter().map(cells).collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join("  ").trim_end().to_owned()
        };
        println!("{}", line(headers.to_vec()));
        for row in &rows {
            println!("{}", line(row.iter().map(String::as_str).collect()));
        }
    }
}
