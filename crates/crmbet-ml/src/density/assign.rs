//! Labelling the players a density method did not see: each takes the cluster of the
//! nearest core point whose reach covers it (ties go to the earlier core point), else noise.
//!
//! [`assign_to_nearest_core_exhaustively`] is the definition: every core point for every
//! player. Training uses [`assign_to_nearest_core`], which gives the same labels (unit tests
//! below, and `crmbet bench train --check-assignment` on a real matrix) from a spatial index
//! that prunes with the triangle inequality, exact in any dimension:
//!
//! - Core points and players are turned into the principal axes of the core points (a
//!   rotation, so distances do not change): the coordinates in which core points differ
//!   most come first, and a partial sum of squared differences rules a core point out after
//!   a few of them.
//! - The core points are split into groups around centres (a few seeded k-means rounds; the
//!   quality of the split only changes the speed). A group keeps each member's distance to
//!   its centre (members sorted by it), its radius (the largest) and its largest reach.
//! - For a player at distance `D` from a centre, a member at distance `o` from it lies at
//!   least `|D − o|` away, and the whole group at least `D − radius`. A group is skipped when
//!   that bound exceeds its largest reach (no member can reach the player) or the best
//!   distance found so far; groups are visited nearest bound first, so once one is beyond
//!   the best, all the rest are. Within a group the members are taken outwards from `D` in
//!   their sorted offsets, nearest `|D − o|` first, until that bound passes both limits;
//!   only those whose rotated partial distance stays within them are measured.
//!
//! Measured distances use the exhaustive search's own arithmetic on the original
//! coordinates, and the smallest (squared distance, core index) that the core's reach covers
//! wins, so the labels agree exactly. Rotated distances and the bounds only skip work, each
//! widened by [`BOUND_SLACK`] of the distances and norms involved so that rounding never
//! skips a candidate. On 31 standardised player features (17k DBSCAN core points) a player
//! is measured exactly against a handful of core points and partially against a few hundred,
//! instead of all of them.

use linfa_linalg::eigh::{EigSort, Eigh};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::DensityResult;
use super::neighbours::{row_slices, squared_distance_within};

/// Relative slack on every pruning bound (distances are exact to about 1e-15).
const BOUND_SLACK: f64 = 1e-9;
/// Most threads an assignment uses.
const MAX_THREADS: usize = 4;
/// Seed of the grouping of the core points.
const GROUPING_SEED: u64 = 0x4752_4F55;
/// k-means rounds that refine the group centres.
const GROUPING_ROUNDS: usize = 4;

/// Labels `points` by the nearest core point of `fitted` that reaches them (module
/// documentation). Points with a non-finite coordinate, or a different number of columns
/// than the fitted sample, are noise.
pub(crate) fn assign_to_nearest_core(
    fitted: &DensityResult,
    points: ArrayView2<f64>,
) -> Vec<Option<usize>> {
    if !comparable(fitted, points) {
        return vec![None; points.nrows()];
    }
    let index = CoreIndex::new(fitted);
    clusters_of(
        fitted,
        in_parallel(points, |row| index.nearest_reaching(row)),
    )
}

/// Whether `points` can be compared with `fitted`'s core points (there are some, and the
/// widths agree); if not, every point is noise.
fn comparable(fitted: &DensityResult, points: ArrayView2<f64>) -> bool {
    !fitted.reach.labels.is_empty() && points.ncols() == fitted.reach.points.ncols()
}

/// The cluster of each chosen core point (`None` stays noise).
fn clusters_of(fitted: &DensityResult, cores: Vec<Option<usize>>) -> Vec<Option<usize>> {
    cores
        .into_iter()
        .map(|core| core.map(|core| fitted.reach.labels[core]))
        .collect()
}

/// The exhaustive reference: every core point for every player, O(points × core points).
pub(crate) fn assign_to_nearest_core_exhaustively(
    fitted: &DensityResult,
    points: ArrayView2<f64>,
) -> Vec<Option<usize>> {
    if !comparable(fitted, points) {
        return vec![None; points.nrows()];
    }
    let cores = CoreRows::new(fitted);
    let nearest = in_parallel(points, |row| {
        let slice = row.to_slice()?;
        let mut best: Option<(usize, f64)> = None;
        for core in 0..cores.rows.len() {
            let bound = best.map_or(cores.reach_squared[core], |(_, squared)| {
                squared.min(cores.reach_squared[core])
            });
            let squared = squared_distance_within(slice, cores.rows[core], bound);
            let improves = best.is_none_or(|(_, smallest)| squared < smallest);
            if squared <= cores.reach_squared[core] && improves {
                best = Some((core, squared));
            }
        }
        best.map(|(core, _)| core)
    });
    clusters_of(fitted, nearest)
}

/// The core points as slices, with their squared reach.
struct CoreRows<'a> {
    rows: Vec<&'a [f64]>,
    reach_squared: Vec<f64>,
}

impl<'a> CoreRows<'a> {
    fn new(fitted: &'a DensityResult) -> Self {
        let reach = &fitted.reach;
        Self {
            rows: row_slices(&reach.points),
            reach_squared: reach.radius.iter().map(|radius| radius * radius).collect(),
        }
    }
}

/// The principal axes of the core points. Rotating into them keeps every distance and puts
/// the directions in which core points differ most first, so a partial sum of squared
/// differences passes a bound after the first few coordinates.
struct PrincipalAxes {
    mean: Vec<f64>,
    /// One unit axis per row, largest variance first.
    axes: Array2<f64>,
}

impl PrincipalAxes {
    /// The axes of `points`; the identity when the decomposition fails or its axes are not
    /// orthonormal to well within [`BOUND_SLACK`].
    fn of(points: &Array2<f64>) -> Self {
        let width = points.ncols();
        let mean = points
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(width));
        let centred = points - &mean;
        let covariance = centred.t().dot(&centred);
        let axes = covariance
            .eigh()
            .map(|decomposition| decomposition.sort_eig_desc().1.reversed_axes())
            .ok()
            .filter(is_orthonormal)
            .unwrap_or_else(|| Array2::eye(width));
        Self {
            mean: mean.to_vec(),
            axes,
        }
    }

    /// `point` in the axes' coordinates, written to `rotated`.
    fn rotate(&self, point: &[f64], rotated: &mut [f64]) {
        for (axis, coordinate) in self.axes.rows().into_iter().zip(rotated.iter_mut()) {
            *coordinate = axis
                .iter()
                .zip(point.iter().zip(&self.mean))
                .map(|(direction, (value, mean))| direction * (value - mean))
                .sum();
        }
    }
}

/// Whether the rows of `axes` are orthonormal to 1e-12.
fn is_orthonormal(axes: &Array2<f64>) -> bool {
    let products = axes.dot(&axes.t());
    products.indexed_iter().all(|((row, column), value)| {
        let expected = if row == column { 1.0 } else { 0.0 };
        (value - expected).abs() <= 1e-12
    })
}

/// One group of core points around a centre (in rotated coordinates).
struct Group {
    centre: Vec<f64>,
    /// Where the group's members start in [`CoreIndex`]'s member arrays.
    start: usize,
    /// One past its last member there.
    end: usize,
    /// The largest distance of a member from the centre.
    radius: f64,
    /// The largest reach of a member.
    largest_reach: f64,
}

/// The core points in principal-axis coordinates, grouped around centres; the members of a
/// group are stored together, sorted by their distance from the group's centre.
struct CoreIndex<'a> {
    cores: CoreRows<'a>,
    axes: PrincipalAxes,
    width: usize,
    groups: Vec<Group>,
    /// Core index of each member.
    member_core: Vec<usize>,
    /// Distance of each member from its group's centre (ascending within a group).
    member_offset: Vec<f64>,
    /// Reach of each member.
    member_reach: Vec<f64>,
    /// The first [`HEAD`] rotated coordinates of each member (zero-padded), one cache line
    /// each: most candidates are ruled out by them alone.
    member_head: Vec<Head>,
    /// The remaining rotated coordinates of each member, `width - HEAD` per member.
    member_tail: Vec<f64>,
    /// The largest norm of a rotated core point: with the player's own, the scale of the
    /// rounding in rotated distances.
    largest_norm: f64,
}

impl<'a> CoreIndex<'a> {
    fn new(fitted: &'a DensityResult) -> Self {
        let cores = CoreRows::new(fitted);
        let axes = PrincipalAxes::of(&fitted.reach.points);
        let width = fitted.reach.points.ncols();
        let rotated: Vec<Vec<f64>> = cores
            .rows
            .iter()
            .map(|row| {
                let mut rotated = vec![0.0; width];
                axes.rotate(row, &mut rotated);
                rotated
            })
            .collect();
        let rotated_rows: Vec<&[f64]> = rotated.iter().map(Vec::as_slice).collect();
        let centres = group_centres(&rotated_rows);
        let mut members: Vec<Vec<(f64, usize)>> = vec![Vec::new(); centres.len()];
        for (core, row) in rotated_rows.iter().enumerate() {
            let (group, squared) = nearest_centre(row, &centres);
            members[group].push((squared.sqrt(), core));
        }
        let mut index = Self {
            cores,
            axes,
            width,
            groups: Vec::new(),
            member_core: Vec::new(),
            member_offset: Vec::new(),
            member_reach: Vec::new(),
            member_head: Vec::with_capacity(rotated.len()),
            member_tail: Vec::with_capacity(rotated.len() * width.saturating_sub(HEAD)),
            largest_norm: rotated_rows.iter().map(|row| norm(row)).fold(0.0, f64::max),
        };
        for (centre, mut group) in centres.into_iter().zip(members) {
            if group.is_empty() {
                continue;
            }
            group.sort_by(|left, right| left.0.total_cmp(&right.0).then(left.1.cmp(&right.1)));
            let start = index.member_core.len();
            let mut largest_reach: f64 = 0.0;
            for &(offset, core) in &group {
                let reach = fitted.reach.radius[core];
                largest_reach = largest_reach.max(reach);
                index.member_core.push(core);
                index.member_offset.push(offset);
                index.member_reach.push(reach);
                let (head, tail) = split_head(rotated_rows[core]);
                index.member_head.push(head);
                index.member_tail.extend_from_slice(tail);
            }
            index.groups.push(Group {
                centre,
                start,
                end: index.member_core.len(),
                radius: group.last().map_or(0.0, |last| last.0),
                largest_reach,
            });
        }
        index
    }

    /// The nearest core point that reaches `row` (module documentation).
    fn nearest_reaching(&self, row: ArrayView1<'_, f64>) -> Option<usize> {
        let point = row.to_slice()?;
        if point.iter().any(|value| !value.is_finite()) {
            return None;
        }
        let mut rotated = vec![0.0; self.width];
        self.axes.rotate(point, &mut rotated);
        let (rotated_head, rotated_tail) = split_head(&rotated);
        // A limit on a true distance, widened for the rounding of rotated distances.
        let scale = norm(&rotated) + self.largest_norm;
        let widen = |limit: f64| limit + BOUND_SLACK * (limit + scale);
        // (lower bound on the group's distance, group, distance to its centre)
        let mut candidates: Vec<(f64, usize, f64)> = Vec::with_capacity(self.groups.len());
        for (position, group) in self.groups.iter().enumerate() {
            // Beyond this distance from the centre no member reaches the player.
            let farthest = widen(group.largest_reach) + group.radius;
            let squared = squared_distance_within(&rotated, &group.centre, farthest * farthest);
            if squared <= farthest * farthest {
                let distance = squared.sqrt();
                candidates.push((distance - group.radius, position, distance));
            }
        }
        candidates.sort_by(|left, right| left.0.total_cmp(&right.0).then(left.1.cmp(&right.1)));
        let mut best: Option<(f64, usize)> = None;
        let mut best_distance = f64::INFINITY;
        for (lower, position, distance) in candidates {
            if lower > widen(best_distance) {
                break;
            }
            let group = &self.groups[position];
            // Members nearest in offset first, outwards both ways, so the best distance
            // shrinks early; once the nearer side's gap exceeds the limit, both sides do.
            let offsets = &self.member_offset[group.start..group.end];
            let split = offsets.partition_point(|offset| *offset < distance);
            let (mut below, mut above) = (split, split);
            while below > 0 || above < offsets.len() {
                let gap_below = below
                    .checked_sub(1)
                    .map_or(f64::INFINITY, |member| distance - offsets[member]);
                let gap_above = offsets
                    .get(above)
                    .map_or(f64::INFINITY, |offset| offset - distance);
                let (gap, member) = if gap_below <= gap_above {
                    below = below.saturating_sub(1);
                    (gap_below, below)
                } else {
                    above += 1;
                    (gap_above, above - 1)
                };
                if gap > widen(best_distance.min(group.largest_reach)) {
                    break;
                }
                let member = group.start + member;
                let member_limit = widen(self.member_reach[member].min(best_distance));
                if gap > member_limit {
                    continue;
                }
                let bound = member_limit * member_limit;
                let head = head_squared_distance(&rotated_head, &self.member_head[member]);
                let tail_width = self.width.saturating_sub(HEAD);
                let member_tail = &self.member_tail[member * tail_width..(member + 1) * tail_width];
                if head > bound || exceeds_after(head, rotated_tail, member_tail, bound) {
                    continue;
                }
                let core = self.member_core[member];
                let reach_squared = self.cores.reach_squared[core];
                let bound = best.map_or(reach_squared, |(squared, _)| squared.min(reach_squared));
                let squared = squared_distance_within(point, self.cores.rows[core], bound);
                if squared <= reach_squared && best.is_none_or(|current| (squared, core) < current)
                {
                    best = Some((squared, core));
                    best_distance = squared.sqrt();
                }
            }
        }
        best.map(|(_, core)| core)
    }
}

/// Rotated coordinates kept with each member in one cache line.
const HEAD: usize = 8;

/// The first [`HEAD`] coordinates of a point, aligned to a cache line.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Head([f64; HEAD]);

/// A rotated point's first [`HEAD`] coordinates (zero-padded) and the rest.
fn split_head(rotated: &[f64]) -> (Head, &[f64]) {
    let mut head = Head::default();
    let split = rotated.len().min(HEAD);
    head.0[..split].copy_from_slice(&rotated[..split]);
    (head, &rotated[split..])
}

/// Squared distance over the head coordinates.
fn head_squared_distance(left: &Head, right: &Head) -> f64 {
    let lane = |index: usize| {
        let first = left.0[index] - right.0[index];
        let second = left.0[index + 4] - right.0[index + 4];
        first * first + second * second
    };
    (lane(0) + lane(1)) + (lane(2) + lane(3))
}

/// Whether `partial` plus the squared distance over the remaining coordinates exceeds
/// `bound`, summing four coordinates at a time and stopping as soon as it does.
fn exceeds_after(partial: f64, left: &[f64], right: &[f64], bound: f64) -> bool {
    let mut total = partial;
    let mut left_blocks = left.chunks_exact(4);
    let mut right_blocks = right.chunks_exact(4);
    for (left_block, right_block) in left_blocks.by_ref().zip(right_blocks.by_ref()) {
        let mut block = 0.0;
        for (first, second) in left_block.iter().zip(right_block) {
            block += (first - second) * (first - second);
        }
        total += block;
        if total > bound {
            return true;
        }
    }
    for (first, second) in left_blocks.remainder().iter().zip(right_blocks.remainder()) {
        total += (first - second) * (first - second);
    }
    total > bound
}

/// The Euclidean norm of a point.
fn norm(point: &[f64]) -> f64 {
    point.iter().map(|value| value * value).sum::<f64>().sqrt()
}

/// The nearest of `centres` to `row`, with its squared distance.
fn nearest_centre(row: &[f64], centres: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (position, centre) in centres.iter().enumerate() {
        let squared = squared_distance_within(row, centre, best.1);
        if squared < best.1 {
            best = (position, squared);
        }
    }
    best
}

/// Centres of about √n groups of the core points: k-means++ seeding (seeded) and a few
/// k-means rounds.
fn group_centres(rows: &[&[f64]]) -> Vec<Vec<f64>> {
    let count = rows.len();
    let Some(width) = rows.first().map(|row| row.len()) else {
        return Vec::new();
    };
    let wanted = ((count as f64).sqrt().ceil() as usize).clamp(1, count);
    let mut random = Xoshiro256PlusPlus::seed_from_u64(GROUPING_SEED);
    let mut uniform = move || (random.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
    let mut centres: Vec<Vec<f64>> =
        vec![rows[(uniform() * count as f64) as usize % count].to_vec()];
    let mut nearest: Vec<f64> = rows
        .iter()
        .map(|row| squared_distance_within(row, &centres[0], f64::INFINITY))
        .collect();
    while centres.len() < wanted {
        let total: f64 = nearest.iter().sum();
        if total.is_nan() || total <= 0.0 {
            break; // every core point sits on a centre already
        }
        let mut target = uniform() * total;
        let mut chosen = count - 1;
        for (row, squared) in nearest.iter().enumerate() {
            target -= squared;
            if target < 0.0 && *squared > 0.0 {
                chosen = row;
                break;
            }
        }
        let centre = rows[chosen].to_vec();
        for (row, squared) in rows.iter().zip(nearest.iter_mut()) {
            *squared = squared.min(squared_distance_within(row, &centre, *squared));
        }
        centres.push(centre);
    }
    for _ in 0..GROUPING_ROUNDS {
        let mut sums = vec![vec![0.0; width]; centres.len()];
        let mut counts = vec![0_usize; centres.len()];
        for row in rows {
            let (group, _) = nearest_centre(row, &centres);
            counts[group] += 1;
            for (sum, value) in sums[group].iter_mut().zip(row.iter()) {
                *sum += value;
            }
        }
        for ((centre, sum), members) in centres.iter_mut().zip(sums).zip(counts) {
            if members > 0 {
                *centre = sum
                    .into_iter()
                    .map(|value| value / members as f64)
                    .collect();
            }
        }
    }
    centres
}

/// `assign(row)` for every row of `points`, split over the available cores by contiguous
/// chunks so the result does not depend on the thread count.
fn in_parallel<T: Send + Clone + Default>(
    points: ArrayView2<'_, f64>,
    assign: impl Fn(ArrayView1<'_, f64>) -> T + Sync,
) -> Vec<T> {
    let matrix = points.as_standard_layout();
    let count = matrix.nrows();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_THREADS);
    let chunk = count.div_ceil(threads).max(1);
    let mut results = vec![T::default(); count];
    std::thread::scope(|scope| {
        for (start, result_chunk) in (0..count).step_by(chunk).zip(results.chunks_mut(chunk)) {
            let assign = &assign;
            let matrix = &matrix;
            scope.spawn(move || {
                for (offset, result) in result_chunk.iter_mut().enumerate() {
                    *result = assign(matrix.row(start + offset));
                }
            });
        }
    });
    results
}

#[cfg(test)]
mod tests {
    use super::super::test_points::{Random, blobs_with_noise};
    use super::super::{dbscan, hdbscan};
    use super::*;

    /// Points spread around the blobs, duplicates of sample points among them.
    fn fresh_points(sample: &Array2<f64>, seed: u64, count: usize) -> Array2<f64> {
        let mut random = Random::new(seed);
        let mut points = Array2::zeros((count, sample.ncols()));
        for row in 0..count {
            let source = (random.uniform() * sample.nrows() as f64) as usize % sample.nrows();
            let spread = if row % 10 == 0 {
                0.0
            } else {
                3.0 * random.uniform()
            };
            for column in 0..sample.ncols() {
                points[[row, column]] = sample[[source, column]] + spread * random.normal();
            }
        }
        points
    }

    #[test]
    fn the_index_gives_exactly_the_exhaustive_labels() {
        for seed in [3, 5, 8] {
            let (sample, _) = blobs_with_noise(seed);
            let points = fresh_points(&sample, seed + 100, 3_000);
            for fitted in [hdbscan(sample.view(), 25), dbscan(sample.view(), seed)] {
                let exhaustive = assign_to_nearest_core_exhaustively(&fitted, points.view());
                let indexed = assign_to_nearest_core(&fitted, points.view());
                assert_eq!(indexed, exhaustive, "seed {seed}");
                assert!(exhaustive.iter().any(Option::is_some));
                assert!(exhaustive.iter().any(Option::is_none));
            }
        }
    }

    #[test]
    fn ties_go_to_the_earlier_core_point() {
        let (sample, _) = blobs_with_noise(6);
        let mut fitted = hdbscan(sample.view(), 25);
        // Two core points at the same place with different clusters.
        let first = fitted.reach.points.row(0).to_owned();
        fitted.reach.points.row_mut(1).assign(&first);
        fitted.reach.labels[1] = fitted.reach.labels[0] + 1;
        fitted.reach.radius[1] = fitted.reach.radius[0];
        let point = first.insert_axis(ndarray::Axis(0));
        let expected = assign_to_nearest_core_exhaustively(&fitted, point.view());
        assert_eq!(expected, vec![Some(fitted.reach.labels[0])]);
        assert_eq!(assign_to_nearest_core(&fitted, point.view()), expected);
    }

    #[test]
    fn many_players_sharing_a_coordinate_give_the_exhaustive_labels() {
        // Most values 0 in the widest column, a few far out, and many exact duplicates: the
        // shape that makes an unrotated median split peel off one point at a time.
        let count = 4_000;
        let mut random = Random::new(12);
        let sample = Array2::from_shape_fn((count, 3), |(row, column)| match column {
            0 if row % 200 == 0 => 1_000.0 * random.uniform(),
            0 => 0.0,
            _ if row % 3 == 0 => 1.0,
            _ => random.normal(),
        });
        let fitted = dbscan(sample.view(), 1);
        let points = fresh_points(&sample, 13, 2_000);
        let exhaustive = assign_to_nearest_core_exhaustively(&fitted, points.view());
        assert_eq!(assign_to_nearest_core(&fitted, points.view()), exhaustive);
    }

    #[test]
    fn thirty_one_columns_of_player_like_features_give_the_exhaustive_labels() {
        // Six groups in 31 columns, some columns mostly 0 with a heavy tail (stakes), and
        // fresh points both near the sample and far from it.
        let mut random = Random::new(21);
        let columns = 31;
        let draw = |random: &mut Random, row: usize| -> Vec<f64> {
            let group = row % 6;
            (0..columns)
                .map(|column| match column % 5 {
                    0 if row.is_multiple_of(97) => 50.0 * random.uniform(),
                    0 => 0.0,
                    _ => group as f64 * 1.5 + 0.7 * random.normal(),
                })
                .collect()
        };
        let sample_rows: Vec<f64> = (0..1_500).flat_map(|row| draw(&mut random, row)).collect();
        let sample = Array2::from_shape_vec((1_500, columns), sample_rows).unwrap();
        let fresh_rows: Vec<f64> = (0..4_000)
            .flat_map(|row| {
                let mut values = draw(&mut random, row);
                if row.is_multiple_of(50) {
                    values.iter_mut().for_each(|value| *value *= 4.0);
                }
                values
            })
            .collect();
        let points = Array2::from_shape_vec((4_000, columns), fresh_rows).unwrap();
        for fitted in [hdbscan(sample.view(), 30), dbscan(sample.view(), 2)] {
            let exhaustive = assign_to_nearest_core_exhaustively(&fitted, points.view());
            assert!(exhaustive.iter().any(Option::is_some));
            assert_eq!(assign_to_nearest_core(&fitted, points.view()), exhaustive);
        }
    }

    #[test]
    fn principal_axes_rotate_without_changing_distances() {
        for width in [6, 31] {
            // Columns of growing spread: the first axis must carry the most variance.
            let mut random = Random::new(31);
            let points = Array2::from_shape_fn((500, width), |(_, column)| {
                random.normal() * (column + 1) as f64
            });
            let axes = PrincipalAxes::of(&points);
            assert!(is_orthonormal(&axes.axes));
            assert_ne!(
                axes.axes,
                Array2::<f64>::eye(width),
                "the decomposition fell back"
            );
            let rotated: Vec<Vec<f64>> = points
                .rows()
                .into_iter()
                .map(|row| {
                    let mut rotated = vec![0.0; width];
                    axes.rotate(row.to_slice().unwrap(), &mut rotated);
                    rotated
                })
                .collect();
            let spread = |column: usize| rotated.iter().map(|row| row[column].powi(2)).sum::<f64>();
            assert!((1..width).all(|column| spread(column - 1) >= spread(column)));
            for (first, second) in [(0, 1), (7, 300), (42, 499)] {
                let original = squared_distance_within(
                    points.row(first).to_slice().unwrap(),
                    points.row(second).to_slice().unwrap(),
                    f64::INFINITY,
                );
                let turned =
                    squared_distance_within(&rotated[first], &rotated[second], f64::INFINITY);
                assert!(
                    (original - turned).abs() <= 1e-9 * original,
                    "{first}, {second}"
                );
            }
        }
    }

    #[test]
    fn every_core_point_lands_in_exactly_one_group() {
        let (sample, _) = blobs_with_noise(10);
        let fitted = hdbscan(sample.view(), 25);
        let index = CoreIndex::new(&fitted);
        let mut seen = index.member_core.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..fitted.reach.labels.len()).collect::<Vec<_>>());
        for group in &index.groups {
            let offsets = &index.member_offset[group.start..group.end];
            assert!(offsets.windows(2).all(|pair| pair[0] <= pair[1]));
            assert_eq!(offsets.last().copied(), Some(group.radius));
        }
    }
}
