//! The quality scores of a run: completeness, validity, uniqueness and freshness, each in
//! 0..1, their weighted mean and a letter grade. Pure arithmetic over the run's counts.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::contract::REQUIRED_COLUMNS;

/// Weights of completeness, validity, uniqueness and freshness in the overall score.
const WEIGHTS: [f64; 4] = [0.3, 0.3, 0.2, 0.2];
/// Data whose newest event is at most this old is perfectly fresh.
const FRESH_HOURS: i64 = 24;
/// After [`FRESH_HOURS`], freshness halves with every this many days of age.
const FRESHNESS_HALF_LIFE_DAYS: f64 = 7.0;

/// A letter grade of the overall score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Grade {
    /// Overall score of at least 0.9.
    A,
    /// At least 0.75.
    B,
    /// At least 0.5.
    C,
    /// Below 0.5.
    D,
}

impl Grade {
    /// The grade of an overall score in 0..1.
    ///
    /// ```
    /// use crmbet_etl::Grade;
    /// assert_eq!(Grade::from_score(0.9), Grade::A);
    /// assert_eq!(Grade::from_score(0.749), Grade::C);
    /// ```
    pub fn from_score(score: f64) -> Self {
        if score >= 0.9 {
            Grade::A
        } else if score >= 0.75 {
            Grade::B
        } else if score >= 0.5 {
            Grade::C
        } else {
            Grade::D
        }
    }

    /// The letter.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What a run counted, the input of [`QualityScores::from_counts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityCounts {
    /// Objects read to the end.
    pub objects_read: u64,
    /// Objects that could not be read.
    pub objects_failed: u64,
    /// Rows of the objects read.
    pub rows_read: u64,
    /// Null values in the six required contract columns over those rows.
    pub missing_required_values: u64,
    /// Rows that broke a contract rule.
    pub rows_quarantined: u64,
    /// Valid rows dropped because their `transaction_id` was already seen.
    pub duplicates: u64,
    /// The newest event among all accepted transactions, if any.
    pub newest_event: Option<DateTime<Utc>>,
    /// When the run started.
    pub now: DateTime<Utc>,
}

/// The quality of one run's data.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualityScores {
    /// `objects_read / (objects_read + objects_failed)` times the share of required values
    /// present: `1 - missing_required_values / (rows_read * 6)`. An unreadable object is
    /// data the run could not see.
    pub completeness: f64,
    /// `1 - rows_quarantined / rows_read`.
    pub validity: f64,
    /// `1 - duplicates / (rows_read - rows_quarantined)`: duplicates among valid rows.
    pub uniqueness: f64,
    /// 1 when the newest accepted event is at most 24 h older than the run, then halving
    /// every 7 days of further age; 0 when nothing was ever accepted.
    pub freshness: f64,
    /// `0.3 completeness + 0.3 validity + 0.2 uniqueness + 0.2 freshness`.
    pub overall: f64,
    /// The grade of `overall`.
    pub grade: Grade,
}

impl QualityScores {
    /// The scores of a run that counted `counts`; a ratio with nothing to count is 1.
    pub fn from_counts(counts: &QualityCounts) -> Self {
        let objects_seen = counts.objects_read + counts.objects_failed;
        let values_expected = counts.rows_read * REQUIRED_COLUMNS.len() as u64;
        let values_present =
            1.0 - share_or_zero(counts.missing_required_values, values_expected).min(1.0);
        let completeness = share(counts.objects_read, objects_seen) * values_present;
        let validity = 1.0 - share_or_zero(counts.rows_quarantined, counts.rows_read);
        let valid_rows = counts.rows_read.saturating_sub(counts.rows_quarantined);
        let uniqueness = 1.0 - share_or_zero(counts.duplicates, valid_rows);
        let freshness = counts
            .newest_event
            .map_or(0.0, |newest| freshness(counts.now - newest));
        let overall = [completeness, validity, uniqueness, freshness]
            .iter()
            .zip(WEIGHTS)
            .map(|(score, weight)| score * weight)
            .sum::<f64>()
            .clamp(0.0, 1.0);
        Self {
            completeness,
            validity,
            uniqueness,
            freshness,
            overall,
            grade: Grade::from_score(overall),
        }
    }
}

/// `part / whole`, or 1 when `whole` is 0.
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// `part / whole`, or 0 when `whole` is 0.
fn share_or_zero(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn freshness(age: TimeDelta) -> f64 {
    let late = age - TimeDelta::hours(FRESH_HOURS);
    if late <= TimeDelta::zero() {
        return 1.0;
    }
    let late_days = late.num_seconds() as f64 / 86_400.0;
    0.5_f64.powf(late_days / FRESHNESS_HALF_LIFE_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> QualityCounts {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        QualityCounts {
            objects_read: 4,
            objects_failed: 0,
            rows_read: 1000,
            missing_required_values: 0,
            rows_quarantined: 0,
            duplicates: 0,
            newest_event: Some(now - TimeDelta::hours(2)),
            now,
        }
    }

    #[test]
    fn clean_fresh_data_scores_one_and_grade_a() {
        let scores = QualityScores::from_counts(&counts());
        assert_eq!(scores.overall, 1.0);
        assert_eq!(scores.grade, Grade::A);
    }

    #[test]
    fn each_score_follows_its_formula() {
        let mut input = counts();
        input.objects_failed = 1;
        input.missing_required_values = 60;
        input.rows_quarantined = 100;
        input.duplicates = 9;
        input.newest_event = Some(input.now - TimeDelta::hours(24) - TimeDelta::days(7));
        let scores = QualityScores::from_counts(&input);
        assert!((scores.completeness - 0.8 * (1.0 - 60.0 / 6000.0)).abs() < 1e-12);
        assert!((scores.validity - 0.9).abs() < 1e-12);
        assert!((scores.uniqueness - 0.99).abs() < 1e-12);
        assert!((scores.freshness - 0.5).abs() < 1e-12);
        let overall = 0.3 * scores.completeness + 0.3 * 0.9 + 0.2 * 0.99 + 0.2 * 0.5;
        assert!((scores.overall - overall).abs() < 1e-12);
        assert_eq!(scores.grade, Grade::B);
    }

    #[test]
    fn empty_run_is_complete_valid_and_unique_but_not_fresh() {
        let mut input = counts();
        input.objects_read = 0;
        input.rows_read = 0;
        input.newest_event = None;
        let scores = QualityScores::from_counts(&input);
        assert_eq!(
            (
                scores.completeness,
                scores.validity,
                scores.uniqueness,
                scores.freshness
            ),
            (1.0, 1.0, 1.0, 0.0)
        );
        assert_eq!(scores.grade, Grade::B);
    }

    #[test]
    fn grades_follow_thresholds() {
        let cases = [
            (1.0, Grade::A),
            (0.9, Grade::A),
            (0.8999, Grade::B),
            (0.75, Grade::B),
            (0.5, Grade::C),
            (0.4999, Grade::D),
            (0.0, Grade::D),
        ];
        for (score, grade) in cases {
            assert_eq!(Grade::from_score(score), grade, "{score}");
        }
    }
}
