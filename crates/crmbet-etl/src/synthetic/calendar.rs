//! The history a synthetic lake covers: 365 UTC days ending on a given date.

use chrono::{Datelike, NaiveDate, NaiveTime};

/// Days of history in a synthetic lake.
pub(super) const HISTORY_DAYS: usize = 365;

/// Seconds in a UTC day.
pub(super) const SECONDS_PER_DAY: i64 = 86_400;

/// Seconds in a 365-day year.
const SECONDS_PER_YEAR: i64 = 365 * SECONDS_PER_DAY;

/// The days of the history, numbered from 0 (the first) to `HISTORY_DAYS - 1` (the end date).
pub(super) struct Calendar {
    dates: Vec<NaiveDate>,
    first_day_seconds: i64,
    first_weekday: usize,
}

impl Calendar {
    /// The 365 days ending on `end_date`, or `None` if they fall outside chrono's range.
    pub(super) fn ending(end_date: NaiveDate) -> Option<Self> {
        let first_date = end_date.checked_sub_days(chrono::Days::new(HISTORY_DAYS as u64 - 1))?;
        let dates: Vec<NaiveDate> = first_date.iter_days().take(HISTORY_DAYS).collect();
        if dates.len() != HISTORY_DAYS {
            return None;
        }
        Some(Self {
            dates,
            first_day_seconds: first_date.and_time(NaiveTime::MIN).and_utc().timestamp(),
            first_weekday: first_date.weekday().num_days_from_monday() as usize,
        })
    }

    /// The date of `day`.
    pub(super) fn date(&self, day: usize) -> NaiveDate {
        self.dates[day.min(HISTORY_DAYS - 1)]
    }

    /// Seconds since the Unix epoch at 00:00 UTC of `day`.
    pub(super) fn day_start_seconds(&self, day: usize) -> i64 {
        self.first_day_seconds + day as i64 * SECONDS_PER_DAY
    }

    /// The first second after the history.
    pub(super) fn end_seconds(&self) -> i64 {
        self.day_start_seconds(HISTORY_DAYS)
    }

    /// Day of the week of `day`, Monday = 0 … Sunday = 6.
    pub(super) fn weekday(&self, day: usize) -> usize {
        (self.first_weekday + day) % 7
    }

    /// The start of the window future timestamps are drawn from: ten years after the end.
    pub(super) fn far_future_seconds(&self) -> i64 {
        self.end_seconds() + 10 * SECONDS_PER_YEAR
    }

    /// The length of the window future timestamps are drawn from.
    pub(super) fn far_future_span_seconds(&self) -> i64 {
        4 * SECONDS_PER_YEAR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_ends_on_the_end_date() {
        let end_date = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
        let calendar = Calendar::ending(end_date).unwrap();
        assert_eq!(calendar.date(HISTORY_DAYS - 1), end_date);
        assert_eq!(
            calendar.date(0),
            NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()
        );
        // 2025-07-01 is a Tuesday.
        assert_eq!(calendar.weekday(0), 1);
        assert_eq!(
            calendar.end_seconds(),
            NaiveDate::from_ymd_opt(2026, 7, 1)
                .unwrap()
                .and_time(NaiveTime::MIN)
                .and_utc()
                .timestamp()
        );
    }
}
