//! `porta invite create|list|revoke|revoke-guest` and `porta accept`: guest invitations.
//! Times are `now`, `+30m`/`+2h`/`+7d`, a local `YYYY-MM-DD[THH:MM[:SS]]` (UTC with a `Z`),
//! or Unix seconds; `--days` and `--hours` are in the building's local time.

use clap::Args;
use porta_core::{GuestSchedule, InvitedDoor, NewInvitation, ScheduleWindow};
use serde_json::json;

use crate::failure::Failure;
use crate::show::Clock;
use crate::Session;

#[derive(Args)]
pub struct CreateArgs {
    /// A door to invite to: its name, the start of its name, or its number (repeat for more)
    #[arg(long = "door", value_name = "DOOR", required = true)]
    doors: Vec<String>,
    /// When the invitation starts: now, +2h, 2026-03-01T09:00 (local), …
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    from: i64,
    /// When it ends: +7d, 2026-03-31, …
    #[arg(long, value_name = "TIME", value_parser = time_arg)]
    until: i64,
    /// Only on these days: Tu, Tu,Th or Mo-Fr (the building's local time)
    #[arg(long, value_parser = days_arg)]
    days: Option<u8>,
    /// Only at these hours: 09-12, 08:30-17 (the building's local time)
    #[arg(long, value_parser = hours_arg)]
    hours: Option<(u16, u16)>,
    /// How many devices may accept it
    #[arg(long, default_value_t = 1)]
    uses: u32,
    /// A name for it you will recognise ("cleaner")
    #[arg(long)]
    label: Option<String>,
}

fn time_arg(v: &str) -> Result<i64, String> {
    parse_time(v, &Clock::system()).ok_or_else(|| "not a time (now, +30m, +2h, +7d, 2026-03-01T09:00)".into())
}

fn days_arg(v: &str) -> Result<u8, String> {
    ScheduleWindow::days_from_names(v).ok_or_else(|| "not days (Tu, Tu,Th, Mo-Fr)".into())
}

fn hours_arg(v: &str) -> Result<(u16, u16), String> {
    parse_hours(v).ok_or_else(|| "not hours (09-12, 08:30-17)".into())
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

/// `now`, `+30m`/`+2h`/`+7d`, Unix seconds, or a date and time (see [`Clock::parse_date`]).
fn parse_time(v: &str, clock: &Clock) -> Option<i64> {
    if v == "now" {
        return Some(clock.now);
    }
    if let Some(rel) = v.strip_prefix('+') {
        let unit = match rel.chars().last()? {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        return rel[..rel.len() - 1].parse::<i64>().ok().map(|n| clock.now + n * unit);
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    clock.parse_date(v)
}

impl CreateArgs {
    fn invitation(&self, doors: Vec<u32>) -> NewInvitation {
        let schedule = match (self.days, self.hours) {
            (None, None) => None,
            (days, hours) => {
                // Days alone mean all day; hours alone mean every day.
                let (start_minute, end_minute) = hours.unwrap_or((0, 1440));
                Some(vec![ScheduleWindow { days: days.unwrap_or(0x7f), start_minute, end_minute }])
            }
        };
        NewInvitation {
            doors,
            not_before: self.from,
            not_after: self.until,
            schedule,
            uses: self.uses,
            label: self.label.clone(),
        }
    }
}

/// "from today 10:00 until 9 Mar 10:00, Mo,Tu 09:00-12:00 (site time UTC+01:00)".
fn window(clock: &Clock, not_before: i64, not_after: i64, schedule: Option<&GuestSchedule>) -> String {
    let schedule = schedule.map(|s| {
        let (sign, offset) =
            if s.utc_offset_minutes < 0 { ('-', -s.utc_offset_minutes) } else { ('+', s.utc_offset_minutes) };
        format!(", {s} (site time UTC{sign}{:02}:{:02})", offset / 60, offset % 60)
    });
    format!("from {} until {}{}", clock.when(not_before), clock.when(not_after), schedule.unwrap_or_default())
}

fn door_names(doors: &[InvitedDoor]) -> String {
    doors.iter().map(|d| format!("{} ({})", d.name, d.door_id)).collect::<Vec<_>>().join(", ")
}

pub async fn create(s: &Session, args: CreateArgs) -> Result<(), Failure> {
    let client = s.client()?.0;
    // Numbers go as they are; names need the door list.
    let mut ids = Vec::new();
    let mut known = None;
    for wanted in &args.doors {
        match wanted.parse::<u32>() {
            Ok(id) => ids.push(id),
            Err(_) => {
                if known.is_none() {
                    known = Some(crate::fetch_doors(s, &client).await?);
                }
                let doors = known.as_deref().unwrap_or_default();
                ids.push(crate::unlock::find_door(doors, wanted)?.door_id);
            }
        }
    }
    let created = client.create_invitation(args.invitation(ids)).await.map_err(|e| s.fail(e))?;
    let i = &created.invitation;
    // The link and code are shown once, to hand to the guest; the core keeps no copy.
    let value = json!({ "invitation": i, "link": created.link.expose(), "code": created.code.expose() });
    s.print(&value, || {
        println!("invitation {} for {}", i.id, door_names(&i.doors));
        println!("  {}", window(&s.clock, i.not_before, i.not_after, i.schedule.as_ref()));
        println!("  uses: {}", i.uses);
        println!("  link: {}", created.link.expose());
        println!("  code: {}", created.code.expose());
    });
    Ok(())
}

pub async fn list(s: &Session) -> Result<(), Failure> {
    let all = s.client()?.0.invitations().await.map_err(|e| s.fail(e))?;
    let c = &s.clock;
    s.print(&all, || {
        println!("invitations ({}):", all.invitations.len());
        for i in &all.invitations {
            let revoked = if i.revoked { ", revoked" } else { "" };
            println!("  {} {} - {}", i.id, i.label.as_deref().unwrap_or("(no label)"), door_names(&i.doors));
            println!(
                "    {}; {} of {} uses left{revoked}",
                window(c, i.not_before, i.not_after, i.schedule.as_ref()),
                i.uses_left,
                i.uses
            );
        }
        println!("guests ({}):", all.guests.len());
        for g in &all.guests {
            let who = if g.has_account { "with an account" } else { "no account" };
            println!("  {} {} ({who}) - {}", g.id, g.label.as_deref().unwrap_or("(no label)"), door_names(&g.doors));
            println!(
                "    {}; accepted {}",
                window(c, g.not_before, g.not_after, g.schedule.as_ref()),
                c.when(g.accepted_at)
            );
        }
    });
    Ok(())
}

pub async fn revoke(s: &Session, id: &str, guest: bool) -> Result<(), Failure> {
    let client = s.client()?.0;
    let done = if guest { client.revoke_guest(id).await } else { client.revoke_invitation(id).await };
    done.map_err(|e| s.fail(e))?;
    let what = if guest { "guest" } else { "invitation" };
    s.print(&json!({ what: id, "revoked": true }), || {
        println!("{what} {id} revoked; the locks learn it from the next phone that opens them")
    });
    Ok(())
}

pub async fn accept(s: &Session, link_or_code: &str) -> Result<(), Failure> {
    let client = s.client()?.0;
    let accepted = client.accept_invitation(link_or_code).await.map_err(|e| s.fail(e))?;
    s.remember_server();
    let guest = client.is_guest();
    let value = json!({ "accepted": accepted, "as_guest": guest });
    s.print(&value, || {
        let as_whom = if guest { "as a guest (no account)" } else { "on your account" };
        println!("accepted {as_whom}: {} at {}", door_names(&accepted.doors), accepted.site_name);
        println!("  {}", window(&s.clock, accepted.not_before, accepted.not_after, accepted.schedule.as_ref()));
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        args: CreateArgs,
    }

    fn clock() -> Clock {
        Clock { now: 1_000, tz: jiff::tz::TimeZone::UTC }
    }

    #[test]
    fn an_invitation_from_the_command_line() {
        let line = ["x", "--door", "1", "--door", "3", "--from", "now", "--until", "+7d", "--days", "Tu"];
        let args = Line::try_parse_from(line.iter().chain(&["--hours", "09-12"])).unwrap().args;
        let new = args.invitation(vec![1, 3]);
        assert_eq!(new.doors, [1, 3]);
        assert_eq!((new.not_after - new.not_before, new.uses, new.label), (7 * 86_400, 1, None));
        assert_eq!(new.schedule, Some(vec![ScheduleWindow { days: 2, start_minute: 540, end_minute: 720 }]));
        let line = ["x", "--door", "Main", "--from", "2026-03-01Z", "--until", "2026-03-31T18:30Z", "--uses", "3"];
        let args = Line::try_parse_from(line.iter().chain(&["--label", "x"])).unwrap().args;
        assert_eq!(args.doors, ["Main"]);
        let new = args.invitation(vec![1]);
        assert_eq!((new.not_before, new.not_after), (1_772_323_200, 1_774_981_800));
        assert_eq!((new.uses, new.label.as_deref(), new.schedule), (3, Some("x"), None));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let refused = |line: &[&str]| Line::try_parse_from(line).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(&["x", "--from", "now", "--until", "+1d"]).contains("--door"));
        assert!(refused(&["x", "--door", "1", "--from", "now"]).contains("--until"));
        assert!(refused(&["x", "--door", "1", "--from", "soon", "--until", "+1d"]).contains("not a time"));
        assert!(refused(&["x", "--door", "1", "--from", "now", "--until", "+1d", "--days", "Xy"]).contains("not days"));
        assert!(parse_hours("12-09").is_none() && parse_hours("9").is_none() && parse_hours("09-25").is_none());
        assert_eq!(parse_hours("8:30-24"), Some((510, 1440)));
        let c = clock();
        assert_eq!(parse_time("1700000000", &c), Some(1_700_000_000));
        assert_eq!(parse_time("+30m", &c), Some(2_800));
        assert_eq!(parse_time("1970-01-02T00:00:01Z", &c), Some(86_401));
        assert!(parse_time("2026-13-01", &c).is_none() && parse_time("+3w", &c).is_none());
    }
}
