//! How times and durations read to a person: the machine's own time zone, and words relative
//! to today ("today 14:03", "yesterday 09:12", "3 Mar 14:03"), never Unix seconds.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A resident's own grant "ends" in 2100: shown as no end at all.
const NO_END_AFTER_YEARS: i64 = 50;

/// The reader's clock and time zone.
#[derive(Clone)]
pub struct Clock {
    pub now: i64,
    pub tz: TimeZone,
}

impl Clock {
    /// Now, in the zone TZ names, else /etc/localtime (UTC if neither can be read).
    pub fn system() -> Clock {
        Clock { now: Timestamp::now().as_second(), tz: TimeZone::system() }
    }

    fn local(&self, t: i64) -> Option<jiff::ZonedDateTime> {
        Some(Timestamp::from_second(t).ok()?.to_zoned_datetime(self.tz.clone()))
    }

    fn today(&self) -> Option<Date> {
        self.local(self.now).map(|z| z.date())
    }

    /// "today 14:03", "yesterday 09:12", "tomorrow 08:00", "3 Mar 14:03", "3 Mar 2025 14:03".
    pub fn when(&self, t: i64) -> String {
        let (Some(z), Some(today)) = (self.local(t), self.today()) else {
            return "(an impossible date)".into();
        };
        let day = z.date();
        let hm = format!("{:02}:{:02}", z.hour(), z.minute());
        if day == today {
            format!("today {hm}")
        } else if today.yesterday().ok() == Some(day) {
            format!("yesterday {hm}")
        } else if today.tomorrow().ok() == Some(day) {
            format!("tomorrow {hm}")
        } else if day.year() == today.year() {
            format!("{} {} {hm}", day.day(), MONTHS[day.month() as usize - 1])
        } else {
            format!("{} {} {} {hm}", day.day(), MONTHS[day.month() as usize - 1], day.year())
        }
    }

    /// The day alone, for deadlines: "3 March", or "3 March 2027" in another year.
    pub fn day(&self, t: i64) -> String {
        let (Some(z), Some(today)) = (self.local(t), self.today()) else {
            return "(an impossible date)".into();
        };
        let d = z.date();
        let month = MONTH_NAMES[d.month() as usize - 1];
        if d.year() == today.year() {
            format!("{} {month}", d.day())
        } else {
            format!("{} {month} {}", d.day(), d.year())
        }
    }

    /// "until 3 Mar 14:03", or "no end date" for a grant that runs for decades.
    pub fn until(&self, not_after: i64) -> String {
        if not_after - self.now > NO_END_AFTER_YEARS * 365 * 86_400 {
            "no end date".into()
        } else if not_after < self.now {
            format!("ended {}", self.when(not_after))
        } else {
            format!("until {}", self.when(not_after))
        }
    }

    /// `YYYY-MM-DD[THH:MM[:SS]]` on the local clock, or with a trailing `Z` in UTC.
    pub fn parse_date(&self, v: &str) -> Option<i64> {
        let (v, tz) = match v.strip_suffix('Z') {
            Some(v) => (v, TimeZone::UTC),
            None => (v, self.tz.clone()),
        };
        let (date, time) = v.split_once(['T', ' ']).unwrap_or((v, "00:00"));
        let mut d = date.splitn(3, '-').map(|p| p.parse::<i16>().ok());
        let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
        let mut t = time.splitn(3, ':').map(|p| p.parse::<i8>().ok());
        let (h, mi, sec) = (t.next()??, t.next()??, t.next().unwrap_or(Some(0))?);
        let at = jiff::civil::DateTime::new(y, i8::try_from(mo).ok()?, i8::try_from(day).ok()?, h, mi, sec, 0).ok()?;
        Some(at.to_zoned_datetime(tz).ok()?.timestamp().as_second())
    }
}

/// "45 s", "3 min", "2 h 5 min": how long to wait.
pub fn wait(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds.div_ceil(60)),
        _ => match (seconds / 3600, seconds % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 4 March 2026, 14:03 in UTC+1.
    fn clock() -> Clock {
        let tz = jiff::tz::offset(1).to_time_zone();
        let now = Clock { now: 0, tz: tz.clone() }.parse_date("2026-03-04T14:03").unwrap();
        Clock { now, tz }
    }

    #[test]
    fn times_read_relative_to_today_on_the_local_clock() {
        let c = clock();
        assert_eq!(c.now, 1_772_629_380, "14:03 at UTC+1 is 13:03 UTC");
        assert_eq!(c.when(c.now), "today 14:03");
        assert_eq!(c.when(c.now - 86_400 - 5 * 3600 + 9 * 60), "yesterday 09:12");
        assert_eq!(c.when(c.now + 86_400), "tomorrow 14:03");
        assert_eq!(c.when(c.now - 86_400), "yesterday 14:03");
        assert_eq!(c.when(c.now - 14 * 3600 - 3 * 60), "today 00:00");
        assert_eq!(c.when(c.now - 14 * 3600 - 4 * 60), "yesterday 23:59");
        assert_eq!(c.when(c.now - 86_400 - 86_400), "2 Mar 14:03");
        assert_eq!(c.when(c.now - 400 * 86_400), "28 Jan 2025 14:03");
        assert_eq!(c.day(c.now - 86_400), "3 March");
        assert_eq!(c.day(c.now + 365 * 86_400), "4 March 2027");
        assert_eq!(c.until(4_102_444_800), "no end date");
        assert_eq!(c.until(c.now + 86_400), "until tomorrow 14:03");
        assert_eq!(c.until(c.now - 60), "ended today 14:02");
    }

    #[test]
    fn dates_typed_are_local_unless_marked_utc() {
        let c = clock();
        assert_eq!(c.parse_date("2026-03-01"), Some(1_772_319_600));
        assert_eq!(c.parse_date("2026-03-01Z"), Some(1_772_323_200));
        assert_eq!(c.parse_date("2026-03-31T18:30Z"), Some(1_774_981_800));
        assert_eq!(c.parse_date("2026-03-31 19:30"), Some(1_774_981_800));
        assert_eq!(c.parse_date("1970-01-02T00:00:01Z"), Some(86_401));
        for bad in ["2026-13-01", "2026-02-30", "2026-03-01T24:00", "tomorrow", "2026-03"] {
            assert_eq!(c.parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn waits_are_rounded_up_to_what_a_person_reads() {
        assert_eq!(wait(45), "45 s");
        assert_eq!(wait(61), "2 min");
        assert_eq!(wait(3600), "1 h");
        assert_eq!(wait(7500), "2 h 5 min");
    }
}
