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
    use super::ntile;

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
