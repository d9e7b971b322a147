//! The RFM quintile scores, which rank players against each other: the batch SQL's
//! `ntile(5)` windows with their tie-breaking by user id.

use std::cmp::Ordering;

use crate::features::PlayerFeatures;

/// Quintiles of the scores.
const BUCKETS: usize = 5;

/// Sets every player's `r_score`, `f_score` and `m_score` from the whole population.
pub fn score_rfm(players: &mut [PlayerFeatures]) {
    let by_user = |left: &PlayerFeatures, right: &PlayerFeatures| left.user_id.cmp(&right.user_id);
    let recency = ranks(players, |left, right| {
        right
            .recency_days
            .total_cmp(&left.recency_days)
            .then_with(|| by_user(left, right))
    });
    let frequency = ranks(players, |left, right| {
        left.frequency
            .cmp(&right.frequency)
            .then_with(|| by_user(left, right))
    });
    let monetary = ranks(players, |left, right| {
        left.deposit_sum
            .total_cmp(&right.deposit_sum)
            .then_with(|| by_user(left, right))
    });
    let count = players.len();
    for (index, player) in players.iter_mut().enumerate() {
        player.r_score = ntile(recency[index], count);
        player.f_score = ntile(frequency[index], count);
        player.m_score = ntile(monetary[index], count);
    }
}

/// The RFM scores of one player against a fixed population (the players a model was
/// trained on): where they would rank among them, as [`score_rfm`] ranks a whole
/// population. Ties with population members rank the player after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RfmCuts {
    /// The population's recency in days, ascending.
    recency_days: Vec<f64>,
    /// Their frequencies, ascending.
    frequency: Vec<i64>,
    /// Their deposit sums (what `m_score` ranks), ascending.
    deposit_sum: Vec<f64>,
}

impl RfmCuts {
    /// The cuts of a population given by its three columns (any order).
    pub fn new(
        mut recency_days: Vec<f64>,
        mut frequency: Vec<i64>,
        mut deposit_sum: Vec<f64>,
    ) -> Self {
        recency_days.sort_by(f64::total_cmp);
        frequency.sort_unstable();
        deposit_sum.sort_by(f64::total_cmp);
        Self {
            recency_days,
            frequency,
            deposit_sum,
        }
    }

    /// Sets the player's `r_score`, `f_score` and `m_score`.
    pub fn score(&self, player: &mut PlayerFeatures) {
        // Recency ranks descending: those more days away come first.
        let recency_position = self.recency_days.len()
            - self
                .recency_days
                .partition_point(|days| days.total_cmp(&player.recency_days) != Ordering::Greater);
        let frequency_position = self
            .frequency
            .partition_point(|frequency| *frequency <= player.frequency);
        let monetary_position = self
            .deposit_sum
            .partition_point(|sum| sum.total_cmp(&player.deposit_sum) != Ordering::Greater);
        player.r_score = ntile(recency_position, self.recency_days.len() + 1);
        player.f_score = ntile(frequency_position, self.frequency.len() + 1);
        player.m_score = ntile(monetary_position, self.deposit_sum.len() + 1);
    }
}

/// Each player's position (0-based) in the order `compare`.
fn ranks(
    players: &[PlayerFeatures],
    compare: impl Fn(&PlayerFeatures, &PlayerFeatures) -> Ordering,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..players.len()).collect();
    order.sort_by(|left, right| compare(&players[*left], &players[*right]));
    let mut positions = vec![0; players.len()];
    for (position, index) in order.into_iter().enumerate() {
        positions[index] = position;
    }
    positions
}

/// SQL's `ntile(5)` of the row at `position` among `count`: the first `count % 5` buckets
/// hold one row more than the others.
fn ntile(position: usize, count: usize) -> i32 {
    let base = count / BUCKETS;
    let remainder = count % BUCKETS;
    let large_rows = remainder * (base + 1);
    let bucket = if position < large_rows {
        position / (base + 1) + 1
    } else {
        remainder + (position - large_rows) / base.max(1) + 1
    };
    i32::try_from(bucket).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::{RfmCuts, ntile};
    use crate::features::PlayerFeatures;
    use crate::live::PlayerAggregates;

    #[test]
    fn a_player_ranks_among_the_population_like_one_of_them() {
        let cuts = RfmCuts::new(
            (0..10).map(f64::from).collect(),
            (0..10).collect(),
            (0..10).map(|sum| f64::from(sum) * 100.0).collect(),
        );
        let mut player: PlayerFeatures = PlayerAggregates::new("p".to_owned()).features(0);
        player.recency_days = 0.5;
        player.frequency = 100;
        player.deposit_sum = -1.0;
        cuts.score(&mut player);
        // Nine players are further away: late in the descending order.
        assert_eq!(player.r_score, 5);
        assert_eq!(player.f_score, 5);
        assert_eq!(player.m_score, 1);
        player.recency_days = 100.0;
        player.frequency = 4;
        cuts.score(&mut player);
        assert_eq!(player.r_score, 1);
        // Five below or equal: position 5 of 11 is the third bucket.
        assert_eq!(player.f_score, 3);
    }

    #[test]
    fn buckets_are_as_equal_as_possible_larger_first() {
        let sizes = |count: usize| {
            let mut sizes = [0; 5];
            for position in 0..count {
                sizes[usize::try_from(ntile(position, count) - 1).expect("a bucket")] += 1;
            }
            sizes
        };
        assert_eq!(sizes(6), [2, 1, 1, 1, 1]);
        assert_eq!(sizes(10), [2, 2, 2, 2, 2]);
        assert_eq!(sizes(13), [3, 3, 3, 2, 2]);
        assert_eq!(sizes(3), [1, 1, 1, 0, 0]);
    }
}
