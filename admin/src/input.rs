//! What an admin types that the server takes in another form: times, weekly hours, and
//! times shown back.

use porta_admin::ScheduleWindow;

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `now`, `+30m`/`+2h`/`+7d` from now, Unix seconds, or a UTC date `YYYY-MM-DD`, optionally
/// with `THH:MM` (or ` HH:MM`) and a trailing `Z`.
pub fn parse_time(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<i64>() {
        return Ok(seconds);
    }
    let bad = || {
        format!("`{raw}` is not a time: give now, +7d, Unix seconds or a UTC date like 2026-12-24 or 2026-12-24T18:00")
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if raw == "now" {
        return Ok(now());
    }
    if let Some(offset) = raw.strip_prefix('+') {
        let unit = match offset.chars().last() {
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        let count: i64 = offset[..offset.len() - 1].parse().map_err(|_| bad())?;
        return count.checked_mul(unit).and_then(|s| s.checked_add(now())).ok_or_else(bad);
    }
    let raw = raw.strip_suffix('Z').unwrap_or(raw);
    let (date, time) = match raw.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (raw, None),
    };
    let mut parts = date.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let (y, m, d): (i64, u32, u32) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) if (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d) => (y, m, d),
        _ => return Err(bad()),
    };
    let minutes = match time {
        None => 0,
        Some(time) => i64::from(parse_clock(time, false).ok_or_else(bad)?),
    };
    Ok(days_from_civil(y, m, d) * 86_400 + minutes * 60)
}

/// Weekly hours: `DAYS@HH:MM-HH:MM`, DAYS a comma list of days or day ranges (`mon-fri`,
/// `sat,sun`, `mon,wed-fri`) or `daily`; the end may be `24:00`.
pub fn parse_hours(raw: &str) -> Result<ScheduleWindow, String> {
    let bad =
        |why: &str| format!("`{raw}` is not weekly hours ({why}): write e.g. mon-fri@07:00-22:00 or daily@00:00-24:00");
    let (days, span) = raw.trim().split_once('@').ok_or_else(|| bad("no @"))?;
    let (start, end) = span.split_once('-').ok_or_else(|| bad("no start-end"))?;
    let start = parse_clock(start, false).ok_or_else(|| bad("start"))?;
    let end = parse_clock(end, true).ok_or_else(|| bad("end"))?;
    if end <= start {
        return Err(bad("the end is not after the start"));
    }
    Ok(ScheduleWindow { days: parse_days(days).ok_or_else(|| bad("days"))?, start_minute: start, end_minute: end })
}

fn parse_days(raw: &str) -> Option<u8> {
    let raw = raw.trim().to_ascii_lowercase();
    if raw == "daily" || raw == "all" {
        return Some(0x7f);
    }
    let day = |name: &str| DAY_NAMES.iter().position(|d| name.trim().starts_with(d) && name.trim().len() >= 3);
    let mut mask = 0u8;
    for part in raw.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                if from > to {
                    return None;
                }
                (from..=to).for_each(|d| mask |= 1 << d);
            }
            None => mask |= 1 << day(part)?,
        }
    }
    (mask != 0).then_some(mask)
}

/// `HH:MM` as minutes of the day; `24:00` only where an end is meant.
fn parse_clock(raw: &str, end: bool) -> Option<u16> {
    let (h, m) = raw.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let minutes = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && (minutes < 1440 || (end && minutes == 1440))).then_some(minutes)
}

/// Weekly hours back in the form [`parse_hours`] reads.
pub fn show_hours(window: &ScheduleWindow) -> String {
    let days = if window.days & 0x7f == 0x7f {
        "daily".to_owned()
    } else {
        DAY_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| window.days & (1 << i) != 0)
            .map(|(_, d)| *d)
            .collect::<Vec<_>>()
            .join(",")
    };
    let clock = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    format!("{days}@{}-{}", clock(window.start_minute), clock(window.end_minute))
}

/// Unix seconds as `YYYY-MM-DD HH:MM` UTC.
pub fn show_time(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rest / 3600, rest % 3600 / 60)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1764650000"), Ok(1_764_650_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2026-12-24T18:30"), Ok(1_798_137_000));
        assert_eq!(show_time(1_798_137_000), "2026-12-24 18:30");
        assert_eq!(parse_time("2026-12-24T18:30Z"), Ok(1_798_137_000));
        let in_a_week = parse_time("+7d").unwrap() - parse_time("now").unwrap();
        assert!((7 * 86_400..=7 * 86_400 + 2).contains(&in_a_week));
        assert!(parse_time("+7w").is_err());
        assert!(parse_time("2026-02-30").is_err());
        assert!(parse_time("soon").is_err());
    }

    #[test]
    fn hours() {
        let weekdays = parse_hours("mon-fri@07:00-22:00").unwrap();
        assert_eq!(weekdays, ScheduleWindow { days: 0b001_1111, start_minute: 420, end_minute: 1320 });
        assert_eq!(show_hours(&weekdays), "mon,tue,wed,thu,fri@07:00-22:00");
        assert_eq!(parse_hours("sat,sun@10:00-24:00").unwrap().days, 0b110_0000);
        assert_eq!(parse_hours("daily@00:00-24:00").unwrap().end_minute, 1440);
        assert_eq!(show_hours(&parse_hours("daily@08:00-09:00").unwrap()), "daily@08:00-09:00");
        for bad in ["mon-fri", "fri-mon@07:00-08:00", "mon@08:00-07:00", "mon@24:00-24:00", "xyz@07:00-08:00"] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
    }
}
