//! The whale tail: the few players whose stakes sit far above everyone else's.
//!
//! On operator data stakes are heavy-tailed: a few tenths of a percent of players stake a
//! hundred times the median bet and more. In the model matrix (log amounts, standard scaled)
//! they sit only a few units beyond the high-stakes archetypes, so a partition folds them into
//! those clusters, together with many ordinary players. A VIP team needs them as one segment,
//! so training takes them out *before* the partition by a rule on the raw stake, and gives
//! them their own cluster (see [`crate::selection`] for the whole rule).
//!
//! The rule: a player is in the tail when its `avg_ticket` (mean stake per bet) is at least
//! [`TAIL_MULTIPLE`] times the median `avg_ticket` of the players who bet. The tail is used
//! only when it holds between [`MIN_TAIL_PLAYERS`] players (and [`MIN_TAIL_SHARE`] of the
//! players) and [`MAX_TAIL_SHARE`] of them: fewer is a handful of odd bets, more is a segment
//! the partition finds by itself. The threshold is stored with the model, so a live player
//! whose stakes cross it joins the tail cluster at once.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::matrix::FeatureTable;

/// The raw feature the tail is measured on: mean stake per bet.
pub const TAIL_FEATURE: &str = "avg_ticket";
/// How many times the median stake a player must stake to be in the tail.
pub const TAIL_MULTIPLE: f64 = 100.0;
/// Fewest players a tail needs.
pub const MIN_TAIL_PLAYERS: usize = 5;
/// Smallest share of the players a tail needs.
pub const MIN_TAIL_SHARE: f64 = 0.0005;
/// Largest share of the players a tail may hold; beyond it the partition sees a segment.
pub const MAX_TAIL_SHARE: f64 = 0.01;

/// The stored rule of a model's tail cluster (`parameters.value_tail`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueTail {
    /// The raw feature compared with the threshold.
    pub feature: String,
    /// Players at or above it belong to `cluster`.
    pub threshold: f64,
    /// The label of the tail cluster.
    pub cluster: usize,
    /// The population median the threshold was derived from.
    pub median: f64,
    /// `threshold / median`.
    pub multiple: f64,
    /// Training players in the tail.
    pub players: usize,
}

impl ValueTail {
    /// The rule stored in a model's parameters, if the model has a tail cluster.
    pub fn from_parameters(parameters: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(parameters.get("value_tail")?.clone()).ok()
    }

    /// Whether a raw feature value falls in the tail.
    pub fn holds(&self, value: f64) -> bool {
        value.is_finite() && value >= self.threshold
    }

    /// How clearly a tail value is in the tail: `1 − threshold / value`, 0 at the threshold.
    pub fn confidence(&self, value: f64) -> f64 {
        if !self.holds(value) || value <= 0.0 {
            return 0.0;
        }
        (1.0 - self.threshold / value).clamp(0.0, 1.0)
    }
}

/// The tail of a table: the rule (cluster label still to be set) and, per player, whether it
/// is in the tail. `None` when the table has no tail by the rule in the module documentation.
pub(crate) fn find_value_tail(table: &FeatureTable) -> Option<(ValueTail, Vec<bool>)> {
    let column = table.column(TAIL_FEATURE)?;
    let median = positive_median(column)?;
    let threshold = median * TAIL_MULTIPLE;
    let members: Vec<bool> = column
        .iter()
        .map(|value| value.is_finite() && *value >= threshold)
        .collect();
    let players = members.iter().filter(|member| **member).count();
    let total = table.players();
    let fewest = MIN_TAIL_PLAYERS.max((total as f64 * MIN_TAIL_SHARE).ceil() as usize);
    let most = (total as f64 * MAX_TAIL_SHARE).floor() as usize;
    if players < fewest || players > most {
        return None;
    }
    let rule = ValueTail {
        feature: TAIL_FEATURE.to_owned(),
        threshold,
        cluster: 0,
        median,
        multiple: TAIL_MULTIPLE,
        players,
    };
    Some((rule, members))
}

/// Median of the finite, positive values (players who bet), if there are any.
fn positive_median(column: ArrayView1<'_, f64>) -> Option<f64> {
    let mut values: Vec<f64> = column
        .iter()
        .copied()
        .filter(|value| value.is_finite() && *value > 0.0)
        .collect();
    if values.is_empty() {
        return None;
    }
    let middle = values.len() / 2;
    let (_, value, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    Some(*value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn table(stakes: &[f64]) -> FeatureTable {
        FeatureTable {
            player_ids: (0..stakes.len()).map(|id| format!("p{id}")).collect(),
            columns: vec!["bet_count".into(), TAIL_FEATURE.into()],
            values: Array2::from_shape_fn((stakes.len(), 2), |(row, column)| {
                if column == 0 { 10.0 } else { stakes[row] }
            }),
        }
    }

    /// 2,000 players staking 1-50 per bet, then `whales` staking 500-5,000.
    fn stakes(whales: usize) -> Vec<f64> {
        let mut values: Vec<f64> = (0..2_000).map(|i| 1.0 + (i % 50) as f64).collect();
        values.extend((0..whales).map(|i| 5_000.0 - i as f64 * 100.0));
        values
    }

    #[test]
    fn a_distinct_few_staking_a_hundred_times_the_median_are_the_tail() {
        let (rule, members) = find_value_tail(&table(&stakes(12))).expect("a tail");
        assert_eq!(rule.players, 12);
        assert_eq!(rule.median, 26.0);
        assert_eq!(rule.threshold, 2_600.0);
        assert_eq!(members.iter().filter(|member| **member).count(), 12);
        assert!(members[..2_000].iter().all(|member| !member));
        assert!(rule.holds(2_600.0) && !rule.holds(2_599.0) && !rule.holds(f64::NAN));
        assert_eq!(rule.confidence(5_200.0), 0.5);
    }

    #[test]
    fn too_few_or_too_many_is_no_tail() {
        assert!(find_value_tail(&table(&stakes(0))).is_none());
        assert!(find_value_tail(&table(&stakes(3))).is_none());
        // 60 of 2,060 is 2.9%: a segment, not a tail.
        let mut many = stakes(0);
        many.extend(std::iter::repeat_n(10_000.0, 60));
        assert!(find_value_tail(&table(&many)).is_none());
    }

    #[test]
    fn a_table_without_the_stake_column_has_no_tail() {
        let mut without = table(&stakes(12));
        without.columns[1] = "total_staked".into();
        assert!(find_value_tail(&without).is_none());
    }

    #[test]
    fn the_rule_round_trips_through_model_parameters() {
        let (mut rule, _) = find_value_tail(&table(&stakes(12))).expect("a tail");
        rule.cluster = 6;
        let parameters = serde_json::json!({ "k": 7, "value_tail": rule });
        assert_eq!(ValueTail::from_parameters(&parameters), Some(rule));
        assert_eq!(ValueTail::from_parameters(&serde_json::json!({})), None);
    }
}
