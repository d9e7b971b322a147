//! The documented rule that picks k and, under `Algorithm::Auto`, the algorithm, and the two
//! rules around it: the whale tail taken out before the partition, and the outlier flag
//! given after it.
//!
//! # the whale tail, before the partition
//!
//! Stakes are heavy-tailed on operator data: a few tenths of a percent of players stake a
//! hundred times the median bet and more. In the model matrix (log amounts, scaled) they lie
//! only a few units past the high-stakes archetypes, so any partition folds them into those
//! clusters, together with many ordinary players; and their pull on the centroids moves the
//! archetypes. Training therefore sets them apart first, by a rule on the raw stake
//! ([`crate::tail`]):
//!
//! 1. A player is in the tail when its `avg_ticket` (mean stake per bet) is at least
//!    [`crate::tail::TAIL_MULTIPLE`] (100) times the median `avg_ticket` of the players who
//!    bet.
//! 2. The tail is used only when it holds at least [`crate::tail::MIN_TAIL_PLAYERS`] (5)
//!    players and [`crate::tail::MIN_TAIL_SHARE`] (0.05%) of them, and at most
//!    [`crate::tail::MAX_TAIL_SHARE`] (1%): fewer is a handful of odd bets, more is a segment
//!    the partition finds by itself. A lake without such a tail trains exactly as before.
//! 3. Everything below (k, the algorithm, the metrics' silhouette and stability) is decided
//!    on the other players; the tail becomes the last cluster, its centroid the mean of its
//!    members, named "VIP · High Roller" by its stakes ([`crate::naming`]). Its members'
//!    confidence is `1 − threshold / avg_ticket`. The threshold is stored in the model
//!    (`parameters.value_tail`), so a live player whose stakes cross it joins the tail at once
//!    and nobody else is ever assigned to it by distance.
//!
//! On the peer's lakes (no tail) no player reaches 100× the median stake (the largest is
//! about 70×); on ours with a 0.3-0.5% tail, `crates/crmbet/tests/e2e/segmentation.rs` holds
//! the whales to one segment with under 2% of the others, and the archetypes to ARI ≥ 0.9.
//!
//! # outliers, after it
//!
//! Every cluster keeps the distance to its centroid within which 99% of its members lie;
//! a player farther out is flagged an outlier (kept in its nearest cluster when stored), its
//! confidence scaled down by how far out it lies ([`crate::outliers`]). This holds for
//! KMeans as for the density methods; the tail's members are never outliers.
//!
//! # k: the best peak of the silhouette curve
//!
//! Silhouette is the judge of quality, but its global maximum is a poor guide on player
//! data: k = 2 scores high on any cloud with one dominant direction of spread (it cannot be
//! compared with a k = 1 below it), and large k score high when they follow minor gaps.
//! The rule therefore looks for *peaks*: a k whose silhouette beats the k below it and is not
//! beaten by the k above it is a level of structure the data holds, better than merging two
//! of its clusters and better than splitting one.
//!
//! 1. Peaks are the k strictly above k − 1 and at least k + 1; the ends of the range count
//!    only when the curve has no interior peak.
//! 2. Among peaks whose bootstrap stability is at least [`STABILITY_FLOOR`] (a solution the
//!    fits on other subsamples find again), or among all peaks when none is, take the
//!    highest silhouette; a smaller k within [`SILHOUETTE_TOLERANCE`] of it wins
//!    (differences that small change with the sample).
//!
//! `crates/crmbet/tests/e2e/segmentation.rs` holds the rule to the planted archetypes of the
//! peer's generator on seeds it was not tuned on (ARI ≥ 0.9 and a silhouette within 0.02 of
//! the true labelling's), through the real `crmbet etl` and `crmbet train`.
//!
//! # algorithm (Auto)
//!
//! KMeans with the k above is the default. DBSCAN, HDBSCAN or the ensemble replace it only
//! when they are clearly better *at the same level of structure*: at least 2 clusters, a
//! number of clusters within one of the KMeans choice, at most [`MAX_NOISE_FRACTION`] of
//! players as noise, and a silhouette higher by [`ALGORITHM_MARGIN`] than KMeans reached
//! with that many clusters (noise is left out of their silhouette, which flatters them,
//! hence the margin). Comparing with the KMeans choice itself would repeat the mistake
//! the peak rule avoids: on the peer's lakes HDBSCAN finds 3 coarse groups whose silhouette
//! (0.37 on seed 11) beats the planted 6 (0.26) just as KMeans at k = 2 or 3 does, while
//! agreeing with the archetypes at ARI 0.11.

use crate::model::Algorithm;
use crate::train::Clustering;

/// A smaller peak this close to the best peak's silhouette is preferred.
pub(crate) const SILHOUETTE_TOLERANCE: f64 = 0.005;
/// Stability a peak needs to be preferred over unstable peaks.
pub(crate) const STABILITY_FLOOR: f64 = 0.8;
/// Largest share of noise a density or ensemble result may have to be chosen under Auto.
pub(crate) const MAX_NOISE_FRACTION: f64 = 0.2;
/// Silhouette a density or ensemble result must gain over KMeans to be chosen under Auto.
pub(crate) const ALGORITHM_MARGIN: f64 = 0.02;

/// What the rule reads about one k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KScore {
    /// Number of clusters.
    pub k: usize,
    /// Mean silhouette on the sample.
    pub silhouette: f64,
    /// Mean pairwise ARI of bootstrap fits (NaN when not measured).
    pub stability: f64,
    /// Sum of squared distances to the centroids.
    pub inertia: f64,
}

/// The position in `scores` (ascending, consecutive k) of the chosen k, and why.
pub(crate) fn choose_k(scores: &[KScore]) -> (usize, String) {
    if scores.len() == 1 {
        return (
            0,
            format!(
                "kmeans with k = {} fixed by the caller (silhouette {:.4})",
                scores[0].k, scores[0].silhouette
            ),
        );
    }
    let Some(best) = best_silhouette(scores) else {
        return (0, "no k had a silhouette; the smallest k was kept".into());
    };
    let mut peaks = peaks(scores);
    if peaks.is_empty() {
        peaks.push(best);
    }
    let stable: Vec<usize> = peaks
        .iter()
        .copied()
        .filter(|position| scores[*position].stability >= STABILITY_FLOOR)
        .collect();
    let pool = if stable.is_empty() { &peaks } else { &stable };
    let top = pool
        .iter()
        .copied()
        .max_by(|left, right| {
            scores[*left]
                .silhouette
                .total_cmp(&scores[*right].silhouette)
                .then(right.cmp(left))
        })
        .unwrap_or(best);
    let chosen = pool
        .iter()
        .copied()
        .filter(|position| {
            scores[*position].silhouette >= scores[top].silhouette - SILHOUETTE_TOLERANCE
        })
        .min()
        .unwrap_or(top);
    let score = scores[chosen];
    let peak_list: Vec<String> = peaks
        .iter()
        .map(|position| scores[*position].k.to_string())
        .collect();
    let stability = if score.stability.is_nan() {
        "not measured".to_string()
    } else {
        format!("{:.3}", score.stability)
    };
    let mut reason = format!(
        "kmeans with k = {}: the best peak of the silhouette curve ({:.4}; peaks at k = {}), \
         bootstrap stability {}",
        score.k,
        score.silhouette,
        peak_list.join(", "),
        stability
    );
    if best != chosen {
        reason.push_str(&format!(
            "; the global maximum {:.4} at k = {} is not a peak or less stable",
            scores[best].silhouette, scores[best].k
        ));
    }
    (chosen, reason)
}

/// Positions of the interior peaks of the silhouette curve; the ends when there is none
/// inside and the curve rises or falls towards them.
fn peaks(scores: &[KScore]) -> Vec<usize> {
    let value = |position: usize| scores[position].silhouette;
    let last = scores.len() - 1;
    let interior: Vec<usize> = (1..last)
        .filter(|position| {
            let here = value(*position);
            here > value(position - 1) && here >= value(position + 1)
        })
        .collect();
    if !interior.is_empty() {
        return interior;
    }
    let mut ends = Vec::new();
    if value(0) >= value(1) {
        ends.push(0);
    }
    if value(last) > value(last - 1) {
        ends.push(last);
    }
    ends
}

/// Position of the highest silhouette (the smaller k on ties), ignoring NaN.
fn best_silhouette(scores: &[KScore]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (position, score) in scores.iter().enumerate() {
        if score.silhouette.is_nan() {
            continue;
        }
        if best.is_none_or(|current| score.silhouette > scores[current].silhouette) {
            best = Some(position);
        }
    }
    best
}

/// The candidate note of the k at `position` given the chosen one.
pub(crate) fn k_note(scores: &[KScore], position: usize, chosen: usize) -> String {
    let score = scores[position];
    if position == chosen {
        return "selected k".into();
    }
    if score.silhouette.is_nan() {
        return "no silhouette".into();
    }
    if peaks(scores).contains(&position) {
        if score.stability < STABILITY_FLOOR {
            return format!(
                "a silhouette peak, but stability {:.3} is low",
                score.stability
            );
        }
        return "a silhouette peak, lower than the chosen one".into();
    }
    "not a peak of the silhouette curve".into()
}

/// Under `Auto`: KMeans unless a density or ensemble result is clearly better.
pub(crate) fn choose_algorithm(
    kmeans: Clustering,
    kmeans_reason: String,
    silhouette_by_k: &[(usize, f64)],
    others: Vec<Clustering>,
) -> (Clustering, String) {
    let kmeans_k = kmeans.centroids.nrows();
    // KMeans's silhouette with `k` clusters; the chosen fit's own when k was not swept.
    let kmeans_at = |k: usize| {
        silhouette_by_k
            .iter()
            .find(|(swept, _)| *swept == k)
            .map_or(kmeans.metrics.silhouette, |(_, silhouette)| *silhouette)
    };
    let mut rejected = Vec::new();
    let mut winner: Option<Clustering> = None;
    for other in others {
        let clusters = other.centroids.nrows();
        let qualifies = clusters >= 2
            && clusters.abs_diff(kmeans_k) <= 1
            && other.metrics.noise_fraction <= MAX_NOISE_FRACTION
            && other.metrics.silhouette >= kmeans_at(clusters) + ALGORITHM_MARGIN
            && winner
                .as_ref()
                .is_none_or(|current| other.metrics.silhouette > current.metrics.silhouette);
        if qualifies {
            winner = Some(other);
        } else {
            rejected.push(format!(
                "{} ({} clusters, {:.1}% noise, silhouette {:.4})",
                other.algorithm,
                clusters,
                other.metrics.noise_fraction * 100.0,
                other.metrics.silhouette
            ));
        }
    }
    match winner {
        Some(other) => {
            let reason = format!(
                "{} with {} clusters: silhouette {:.4} beats kmeans with as many clusters \
                 ({:.4}) by more than {} with {:.1}% noise",
                other.algorithm,
                other.centroids.nrows(),
                other.metrics.silhouette,
                kmeans_at(other.centroids.nrows()),
                ALGORITHM_MARGIN,
                other.metrics.noise_fraction * 100.0
            );
            (other, reason)
        }
        None => {
            let reason = if rejected.is_empty() {
                kmeans_reason
            } else {
                format!(
                    "{kmeans_reason}; kept over {} (each needs at least 2 clusters, within \
                     one of k = {kmeans_k}, at most {:.0}% noise and a silhouette {} above \
                     kmeans with as many clusters)",
                    rejected.join(", "),
                    MAX_NOISE_FRACTION * 100.0,
                    ALGORITHM_MARGIN
                )
            };
            debug_assert_eq!(kmeans.algorithm, Algorithm::KMeans);
            (kmeans, reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[(usize, f64, f64)]) -> Vec<KScore> {
        values
            .iter()
            .map(|(k, silhouette, stability)| KScore {
                k: *k,
                silhouette: *silhouette,
                stability: *stability,
                inertia: 0.0,
            })
            .collect()
    }

    #[test]
    fn picks_the_interior_peak_over_a_high_k_of_two() {
        // The shape measured on the peer's 20k lake (seed 7): k = 2 scores highest, the
        // planted k = 6 is the only interior peak.
        let measured = scores(&[
            (2, 0.309, 0.99),
            (3, 0.269, 0.95),
            (4, 0.244, 0.92),
            (5, 0.241, 0.99),
            (6, 0.256, 0.95),
            (7, 0.241, 0.90),
            (8, 0.228, 0.85),
            (9, 0.205, 0.81),
        ]);
        let (position, reason) = choose_k(&measured);
        assert_eq!(measured[position].k, 6, "{reason}");
        assert!(reason.contains("peaks at k = 6"), "{reason}");
    }

    #[test]
    fn an_unstable_peak_gives_way_to_a_stable_one() {
        let measured = scores(&[
            (2, 0.20, 1.0),
            (3, 0.30, 0.5),
            (4, 0.25, 0.9),
            (5, 0.28, 0.9),
            (6, 0.27, 0.9),
        ]);
        assert_eq!(measured[choose_k(&measured).0].k, 5);
    }

    #[test]
    fn a_monotone_curve_takes_its_best_end() {
        let measured = scores(&[(2, 0.40, 1.0), (3, 0.35, 1.0), (4, 0.30, 1.0)]);
        assert_eq!(measured[choose_k(&measured).0].k, 2);
    }
}
