//! `porta`: the Porta core from a terminal.
//!
//! - `porta demo` walks the resident journey on an embedded server in a temporary directory.
//! - `porta --server URL sign-in EMAIL|PHONE`, `porta profile`, `porta sign-out`: a real client;
//!   the session is kept in `$PORTA_HOME` (default `~/.local/share/porta`) in 0600 files.
//! - `porta invite create|list|revoke|revoke-guest` and `porta accept LINK|CODE`: guest invitations.
//!   Times are unix seconds, `now`, `+30m`/`+2h`/`+7d`, or UTC `YYYY-MM-DD[THH:MM[:SS]][Z]`.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use porta_core::{Client, ClientConfig, FileSecureStore, NewInvitation, ScheduleWindow};

const USAGE: &str = "usage:
  porta demo
  porta [--server URL] sign-in <email|phone>
  porta [--server URL] profile
  porta [--server URL] set-name <name>
  porta [--server URL] upload-events
  porta [--server URL] sign-out
  porta [--server URL] invite create --door N [--door M ...] --from TIME --until TIME
                                     [--days Tu[,Th|Mo-Fr] --hours 09-12[:30]] [--uses N] [--label L]
  porta [--server URL] invite list
  porta [--server URL] invite revoke <invitation-id>
  porta [--server URL] invite revoke-guest <guest-id>
  porta [--server URL] accept <link|code>
TIME: unix seconds, now, +30m, +2h, +7d, or UTC YYYY-MM-DD[THH:MM[:SS]][Z]; --days and --hours are in the
site's local time";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut server = std::env::var("PORTA_SERVER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    if args.first().map(String::as_str) == Some("--server") && args.len() >= 2 {
        server = args.remove(1);
        args.remove(0);
    }
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["demo"] => demo::run().await,
        ["sign-in", identifier] => sign_in(&server, identifier).await,
        ["profile"] => profile(&server).await,
        ["set-name", name] => set_name(&server, name).await,
        ["upload-events"] => upload_events(&server).await,
        ["invite", "create", options @ ..] => match parse_invitation(options, now()) {
            Ok(new) => invite_create(&server, new).await,
            Err(e) => {
                eprintln!("porta: {e}\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        ["invite", "list"] => invite_list(&server).await,
        ["invite", "revoke", id] => with_client(&server, |c| async move { c.revoke_invitation(id).await }).await,
        ["invite", "revoke-guest", id] => with_client(&server, |c| async move { c.revoke_guest(id).await }).await,
        ["accept", link_or_code] => accept(&server, link_or_code).await,
        ["sign-out"] => match client(&server) {
            Ok(c) => c.sign_out().await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porta: {e}");
            ExitCode::FAILURE
        }
    }
}

fn home() -> PathBuf {
    std::env::var_os("PORTA_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".local/share/porta")
    })
}

fn client(server: &str) -> Result<Client, String> {
    let store = FileSecureStore::new(home().join("secrets")).map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(server, home().join("data"));
    config.device_name = "porta terminal".into();
    Client::new(config, Arc::new(store)).map_err(|e| e.to_string())
}

async fn sign_in(server: &str, identifier: &str) -> Result<(), String> {
    let client = client(server)?;
    client.request_code(identifier).await.map_err(|e| e.to_string())?;
    eprint!("code sent; enter it: ");
    let mut code = String::new();
    std::io::stdin().read_line(&mut code).map_err(|e| e.to_string())?;
    client.sign_in(identifier, code.trim()).await.map_err(|e| e.to_string())?;
    println!("signed in");
    Ok(())
}

async fn profile(server: &str) -> Result<(), String> {
    let p = client(server)?.profile().await.map_err(|e| e.to_string())?;
    demo::print_profile(&p);
    Ok(())
}

async fn set_name(server: &str, name: &str) -> Result<(), String> {
    let update = porta_core::ProfileUpdate { name: Some(name.to_owned()), ..Default::default() };
    let p = client(server)?.update_profile(update).await.map_err(|e| e.to_string())?;
    demo::print_profile(&p);
    Ok(())
}

/// Hands the building the doors' signed audit records queued on this computer.
async fn upload_events(server: &str) -> Result<(), String> {
    let client = client(server)?;
    let uploaded = client.upload_access_events().await.map_err(|e| e.to_string())?;
    let waiting = client.pending_access_events().map_err(|e| e.to_string())?;
    println!("uploaded {uploaded} access events; {waiting} waiting");
    Ok(())
}

async fn with_client<F, Fut>(server: &str, f: F) -> Result<(), String>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = porta_core::Result<()>>,
{
    f(client(server)?).await.map_err(|e| e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `--door 1 --door 2 --from now --until +7d --days Tu --hours 09-12 --uses 1 --label cleaner`.
fn parse_invitation(options: &[&str], now: i64) -> Result<NewInvitation, String> {
    let (mut doors, mut from, mut until, mut days, mut hours) = (Vec::new(), None, None, None, None);
    let (mut uses, mut label) = (1, None);
    let mut it = options.iter();
    while let Some(option) = it.next() {
        let mut value = || it.next().copied().ok_or_else(|| format!("{option} needs a value"));
        match *option {
            "--door" => {
                let v = value()?;
                doors.push(v.parse::<u32>().map_err(|_| format!("--door: not a door id: {v}"))?);
            }
            "--from" => from = Some(parse_time(value()?, now).ok_or("--from: not a time")?),
            "--until" => until = Some(parse_time(value()?, now).ok_or("--until: not a time")?),
            "--days" => {
                let v = value()?;
                days = Some(ScheduleWindow::days_from_names(v).ok_or_else(|| format!("--days: not days: {v}"))?);
            }
            "--hours" => hours = Some(parse_hours(value()?).ok_or("--hours: expected e.g. 09-12 or 08:30-17")?),
            "--uses" => {
                let v = value()?;
                uses = v.parse().map_err(|_| format!("--uses: not a number: {v}"))?;
            }
            "--label" => label = Some(value()?.to_owned()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if doors.is_empty() {
        return Err("give at least one --door".into());
    }
    let (Some(not_before), Some(not_after)) = (from, until) else {
        return Err("give --from and --until".into());
    };
    let schedule = match (days, hours) {
        (None, None) => None,
        (days, hours) => {
            // Days alone mean all day; hours alone mean every day.
            let (start_minute, end_minute) = hours.unwrap_or((0, 1440));
            Some(vec![ScheduleWindow { days: days.unwrap_or(0x7f), start_minute, end_minute }])
        }
    };
    Ok(NewInvitation { doors, not_before, not_after, schedule, uses, label })
}

/// `09-12`, `9:30-17`, `08:00-12:15` as minutes after midnight.
fn parse_hours(v: &str) -> Option<(u16, u16)> {
    let minute = |t: &str| -> Option<u16> {
        let (h, m) = t.split_once(':').unwrap_or((t, "0"));
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (start, end) = v.split_once('-')?;
    let (start, end) = (minute(start)?, minute(end)?);
    (start < end).then_some((start, end))
}

/// Unix seconds, `now`, `+30m`/`+2h`/`+7d`, or UTC `YYYY-MM-DD[THH:MM[:SS]][Z]`.
fn parse_time(v: &str, now: i64) -> Option<i64> {
    if v == "now" {
        return Some(now);
    }
    if let Some(rel) = v.strip_prefix('+') {
        let unit = match rel.chars().last()? {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        return rel[..rel.len() - 1].parse::<i64>().ok().map(|n| now + n * unit);
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    let v = v.strip_suffix('Z').unwrap_or(v);
    let (date, time) = v.split_once('T').unwrap_or((v, "00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian, UTC.
    let (y, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

fn window(not_before: i64, not_after: i64, schedule: Option<&porta_core::GuestSchedule>) -> String {
    let schedule = schedule.map(|s| {
        let (sign, offset) =
            if s.utc_offset_minutes < 0 { ('-', -s.utc_offset_minutes) } else { ('+', s.utc_offset_minutes) };
        format!(", {s} (site time UTC{sign}{:02}:{:02})", offset / 60, offset % 60)
    });
    format!("from {} until {}{}", utc(not_before), utc(not_after), schedule.unwrap_or_default())
}

/// `2026-03-31 18:30 UTC`.
fn utc(t: i64) -> String {
    // Civil date from days (Howard Hinnant's algorithm), the inverse of `parse_time`'s.
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year}-{month:02}-{day:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

fn door_names(doors: &[porta_core::InvitedDoor]) -> String {
    doors.iter().map(|d| format!("{} ({})", d.name, d.door_id)).collect::<Vec<_>>().join(", ")
}

async fn invite_create(server: &str, new: NewInvitation) -> Result<(), String> {
    let created = client(server)?.create_invitation(new).await.map_err(|e| e.to_string())?;
    let i = &created.invitation;
    println!("invitation {} for {}", i.id, door_names(&i.doors));
    println!("  {}", window(i.not_before, i.not_after, i.schedule.as_ref()));
    println!("  uses: {}", i.uses);
    // Shown once, to hand to the guest; the core keeps no copy.
    println!("  link: {}", created.link.expose());
    println!("  code: {}", created.code.expose());
    Ok(())
}

async fn invite_list(server: &str) -> Result<(), String> {
    let all = client(server)?.invitations().await.map_err(|e| e.to_string())?;
    println!("invitations ({}):", all.invitations.len());
    for i in &all.invitations {
        let revoked = if i.revoked { ", revoked" } else { "" };
        println!("  {} {} - {}", i.id, i.label.as_deref().unwrap_or("(no label)"), door_names(&i.doors));
        println!(
            "    {}; {} of {} uses left{revoked}",
            window(i.not_before, i.not_after, i.schedule.as_ref()),
            i.uses_left,
            i.uses
        );
    }
    println!("guests ({}):", all.guests.len());
    for g in &all.guests {
        let who = if g.has_account { "with an account" } else { "no account" };
        println!("  {} {} ({who}) - {}", g.id, g.label.as_deref().unwrap_or("(no label)"), door_names(&g.doors));
        println!("    {}; accepted {}", window(g.not_before, g.not_after, g.schedule.as_ref()), utc(g.accepted_at));
    }
    Ok(())
}

async fn accept(server: &str, link_or_code: &str) -> Result<(), String> {
    let client = client(server)?;
    let accepted = client.accept_invitation(link_or_code).await.map_err(|e| e.to_string())?;
    let as_whom = if client.is_guest() { "as a guest (no account)" } else { "on your account" };
    println!("accepted {as_whom}: {} at {}", door_names(&accepted.doors), accepted.site_name);
    println!("  {}", window(accepted.not_before, accepted.not_after, accepted.schedule.as_ref()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_from_the_command_line() {
        let args =
            ["--door", "1", "--door", "3", "--from", "now", "--until", "+7d", "--days", "Tu", "--hours", "09-12"];
        let new = parse_invitation(&args, 1_000).unwrap();
        assert_eq!(new.doors, [1, 3]);
        assert_eq!((new.not_before, new.not_after, new.uses, new.label), (1_000, 1_000 + 7 * 86_400, 1, None));
        assert_eq!(new.schedule, Some(vec![ScheduleWindow { days: 2, start_minute: 540, end_minute: 720 }]));
        let args =
            ["--door", "2", "--from", "2026-03-01", "--until", "2026-03-31T18:30Z", "--uses", "3", "--label", "x"];
        let new = parse_invitation(&args, 0).unwrap();
        assert_eq!((new.not_before, new.not_after), (1_772_323_200, 1_774_981_800));
        assert_eq!((new.uses, new.label.as_deref(), new.schedule), (3, Some("x"), None));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert!(parse_invitation(&["--from", "now", "--until", "+1d"], 0).unwrap_err().contains("--door"));
        assert!(parse_invitation(&["--door", "1", "--from", "now"], 0).unwrap_err().contains("--until"));
        assert!(parse_invitation(&["--door", "x"], 0).unwrap_err().contains("--door"));
        assert!(parse_invitation(&["--door"], 0).unwrap_err().contains("needs a value"));
        assert!(parse_hours("12-09").is_none() && parse_hours("9").is_none() && parse_hours("09-25").is_none());
        assert_eq!(parse_hours("8:30-24"), Some((510, 1440)));
        assert_eq!(parse_time("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_time("1970-01-02T00:00:01Z", 0), Some(86_401));
        assert!(parse_time("2026-13-01", 0).is_none() && parse_time("+3w", 0).is_none());
        for t in [0, 86_401, 951_782_400, 1_772_323_200, 1_774_981_800, 4_102_444_800] {
            let shown = utc(t);
            let typed = shown.trim_end_matches(" UTC").replace(' ', "T");
            assert_eq!(parse_time(&typed, 0), Some(t - t % 60), "{shown}");
        }
        assert_eq!(utc(1_774_981_800), "2026-03-31 18:30 UTC");
    }
}
