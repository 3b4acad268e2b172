//! ISO weeks (`2026-W40`) and dates (`2026-01-08`) as partners type them.

use std::fmt;

use time::{Date, Weekday};

use crate::clock::UnixMillis;
use crate::error::{CoreError, Result};

/// An ISO 8601 week: the year it belongs to and its number, 1 to 52 or 53.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    pub year: i32,
    pub week: u8,
}

impl IsoWeek {
    /// Parses `2026-W40` (also `2026-w40`, `2026W40`).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || CoreError::InvalidInput(format!("{text:?} is not an ISO week like 2026-W40"));
        let upper = text.trim().to_ascii_uppercase();
        let (year, week) = upper.split_once('W').ok_or_else(bad)?;
        let year: i32 = year.trim_end_matches('-').parse().map_err(|_| bad())?;
        let week: u8 = week.parse().map_err(|_| bad())?;
        Date::from_iso_week_date(year, week, Weekday::Monday).map_err(|_| {
            CoreError::InvalidInput(format!(
                "{year} has no week {week}; weeks run from 1 to 52 or 53"
            ))
        })?;
        Ok(Self { year, week })
    }

    /// The week `date` falls in.
    pub fn of(date: Date) -> Self {
        let (year, week, _) = date.to_iso_week_date();
        Self { year, week }
    }

    /// The week `time` falls in (UTC).
    pub fn of_time(time: UnixMillis) -> Self {
        Self::of(date_of(time))
    }

    /// Its Monday.
    pub fn monday(self) -> Date {
        // Both fields were validated when the week was made.
        Date::from_iso_week_date(self.year, self.week, Weekday::Monday).unwrap_or(Date::MIN)
    }

    /// Whole weeks from `self` to `later` (negative if `later` is earlier).
    pub fn weeks_until(self, later: IsoWeek) -> i64 {
        (later.monday() - self.monday()).whole_weeks()
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-W{:02}", self.year, self.week)
    }
}

/// The UTC date of `time`.
pub fn date_of(time: UnixMillis) -> Date {
    time::OffsetDateTime::from_unix_timestamp(time.as_secs())
        .map(|t| t.date())
        .unwrap_or(Date::MIN)
}

/// The latest date an entry may carry at `now`: today plus a day for clocks set ahead.
fn latest_date(now: UnixMillis) -> Date {
    date_of(now).next_day().unwrap_or(Date::MAX)
}

/// Refuses a week that starts after the latest date an entry may carry at `now`.
pub fn refuse_future_week(week: IsoWeek, now: UnixMillis) -> Result<IsoWeek> {
    if week.monday() > latest_date(now) {
        return Err(CoreError::InvalidInput(format!(
            "{week} has not begun; a check-in is for this week ({}) or an earlier one",
            IsoWeek::of_time(now)
        )));
    }
    Ok(week)
}

/// Refuses a date after the latest one an entry may carry at `now`.
pub fn refuse_future_date(date: Date, now: UnixMillis) -> Result<Date> {
    if date > latest_date(now) {
        return Err(CoreError::InvalidInput(format!(
            "{} is in the future; give today's date ({}) or an earlier one",
            format_date(date),
            format_date(date_of(now))
        )));
    }
    Ok(date)
}

/// Parses an ISO date like `2026-01-08`.
pub fn parse_date(text: &str) -> Result<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format)
        .map_err(|_| CoreError::InvalidInput(format!("{text:?} is not a date like 2026-01-08")))
}

/// Formats a date as `2026-01-08`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_parse_print_and_validate() {
        let w = IsoWeek::parse("2026-W04").expect("week");
        assert_eq!(w.to_string(), "2026-W04");
        assert_eq!(IsoWeek::parse("2026w4").expect("loose"), w);
        assert!(IsoWeek::parse("2026-W54").is_err());
        assert!(IsoWeek::parse("2025-W53").is_err(), "2025 has 52 ISO weeks");
        assert!(IsoWeek::parse("2026-W53").is_ok(), "2026 has 53 ISO weeks");
        assert!(IsoWeek::parse("next week").is_err());
    }

    #[test]
    fn week_of_a_date_uses_the_iso_year() {
        let date = parse_date("2027-01-01").expect("date");
        assert_eq!(IsoWeek::of(date).to_string(), "2026-W53");
        assert_eq!(
            IsoWeek::parse("2026-W01")
                .expect("w")
                .weeks_until(IsoWeek::parse("2026-W05").expect("w")),
            4
        );
    }
}
