//! A site's local time: a standard UTC offset and, optionally, the EU daylight-saving rule
//! (summer time, one hour ahead, from the last Sunday of March to the last Sunday of October,
//! both at 01:00 UTC). No time-zone database: the rule is all the Nordic sites need.
//!
//! A credential carries one fixed offset (SPEC §2.1), so a scheduled credential that spans a
//! change of offset is issued as one credential per stretch of constant offset.

/// How a site's clocks change over the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstRule {
    None,
    Eu,
}

impl DstRule {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "none" => Some(Self::None),
            "eu" => Some(Self::Eu),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteTime {
    pub standard_offset_minutes: i16,
    pub dst: DstRule,
}

const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year (UTC) of a Unix time.
fn year_of(t: i64) -> i64 {
    let z = t.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// 01:00 UTC on the last Sunday of `month` (March or October) of `year`.
fn last_sunday_1am(year: i64, month: i64) -> i64 {
    let last = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday: with Sunday = 0 the weekday is (days + 4) % 7.
    let sunday = last - (last + 4).rem_euclid(7);
    sunday * DAY + 3600
}

impl SiteTime {
    pub fn fixed(offset_minutes: i16) -> Self {
        Self { standard_offset_minutes: offset_minutes, dst: DstRule::None }
    }

    /// The offset in force at `t`.
    pub fn offset_at(&self, t: i64) -> i16 {
        match self.dst {
            DstRule::None => self.standard_offset_minutes,
            DstRule::Eu => {
                let year = year_of(t);
                let summer = last_sunday_1am(year, 3) <= t && t < last_sunday_1am(year, 10);
                self.standard_offset_minutes + if summer { 60 } else { 0 }
            }
        }
    }

    /// `[from, to]` (inclusive) cut where the offset changes: `(start, end, offset)` pieces,
    /// in order, covering it exactly.
    pub fn segments(&self, from: i64, to: i64) -> Vec<(i64, i64, i16)> {
        let mut out = Vec::new();
        if from > to {
            return out;
        }
        let mut changes: Vec<i64> = Vec::new();
        if self.dst == DstRule::Eu {
            for year in year_of(from)..=year_of(to) {
                changes.extend([last_sunday_1am(year, 3), last_sunday_1am(year, 10)]);
            }
        }
        let mut start = from;
        for change in changes.into_iter().filter(|&c| from < c && c <= to) {
            out.push((start, change - 1, self.offset_at(start)));
            start = change;
        }
        out.push((start, to, self.offset_at(start)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OSLO: SiteTime = SiteTime { standard_offset_minutes: 60, dst: DstRule::Eu };

    #[test]
    fn eu_summer_time_starts_and_ends_on_the_last_sundays_at_one_utc() {
        // 2027: 28 March and 31 October.
        let march = days_from_civil(2027, 3, 28) * DAY + 3600;
        let october = days_from_civil(2027, 10, 31) * DAY + 3600;
        assert_eq!(OSLO.offset_at(march - 1), 60);
        assert_eq!(OSLO.offset_at(march), 120);
        assert_eq!(OSLO.offset_at(october - 1), 120);
        assert_eq!(OSLO.offset_at(october), 60);
        assert_eq!(SiteTime::fixed(60).offset_at(march), 60);
    }

    #[test]
    fn a_window_across_a_change_is_cut_there_and_covered_exactly() {
        let march = days_from_civil(2027, 3, 28) * DAY + 3600;
        let (from, to) = (march - 10 * DAY, march + 20 * DAY);
        assert_eq!(OSLO.segments(from, to), vec![(from, march - 1, 60), (march, to, 120)]);
        assert_eq!(OSLO.segments(march, march + DAY), vec![(march, march + DAY, 120)]);
        assert_eq!(SiteTime::fixed(0).segments(from, to), vec![(from, to, 0)]);
        // A whole year has both changes.
        let year = OSLO.segments(from, from + 365 * DAY);
        assert_eq!(year.iter().map(|s| s.2).collect::<Vec<_>>(), [60, 120, 60]);
        assert!(year.windows(2).all(|w| w[0].1 + 1 == w[1].0));
    }
}
