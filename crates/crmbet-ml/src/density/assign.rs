//! Labelling the players a density method did not see: each takes the cluster of the
//! nearest core point whose reach covers it (ties go to the earlier core point), else noise.
//!
//! Training uses the exhaustive search ([`assign_to_nearest_core_exhaustively`]).
//! [`assign_to_nearest_core`] answers the same with ball trees (linfa-nn), label for label
//! (unit tests below, and `crmbet bench train --check-assignment` on a real matrix), but on
//! 31 player features it measured 3x slower than the exhaustive search (100k players, 17.5k
//! core points: 56 s against 17 s for DBSCAN), so it is kept only for that comparison until a
//! faster index replaces it:
//!
//! 1. The nearest core point overall: when it reaches the player, the answer is at that
//!    distance, so only core points as near (exact ties) are looked at again.
//! 2. Otherwise only core points reaching at least that far can qualify. Core points are
//!    grouped by reach (each group spans a factor [`REACH_GROUP_FACTOR`]), each group in its
//!    own tree, and a group is searched within its largest reach only if that reach can
//!    cover the player.
//!
//! Every candidate's distance is then computed exactly as the exhaustive search computes it
//! (same arithmetic, same order), and the smallest (distance, core index) that the core's
//! reach covers wins. The trees' own distances only choose candidates, with a relative
//! slack of [`SEARCH_SLACK`] so that rounding never drops one.
//!
//! The trees hold each distinct core position once, turned by a seeded random rotation:
//! linfa-nn splits a ball at the median of its widest coordinate, and on player features a
//! coordinate is often widest through a few extreme players while most players share one
//! value (no crash play at all), which makes a split peel off one point at a time (a tree as
//! deep as it has points). Rotated coordinates mix every feature, so they do not tie;
//! distances do not change.

use linfa_nn::distance::L2Dist;
use linfa_nn::{BallTree, NearestNeighbour, NearestNeighbourIndex};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use super::DensityResult;
use super::neighbours::squared_distance_within;

/// Reach groups span this factor between their smallest and largest reach.
const REACH_GROUP_FACTOR: f64 = 2.0;
/// Relative slack on every tree search radius.
const SEARCH_SLACK: f64 = 1e-9;
/// Most threads an assignment uses.
const MAX_THREADS: usize = 4;
/// Seed of the rotation of the trees' coordinates.
const ROTATION_SEED: u64 = 0x524F_5441;

/// Labels `points` by the nearest core point of `fitted` that reaches them (module
/// documentation). Points with a non-finite coordinate, or a different number of columns
/// than the fitted sample, are noise.
pub(crate) fn assign_to_nearest_core(
    fitted: &DensityResult,
    points: ArrayView2<f64>,
) -> Vec<Option<usize>> {
    let reach = &fitted.reach;
    if !comparable(fitted, points) {
        return vec![None; points.nrows()];
    }
    let rotation = random_rotation(reach.points.ncols());
    let everyone: Vec<usize> = (0..reach.labels.len()).collect();
    let all = TreeData::new(fitted, &everyone, &rotation);
    let groups = reach_groups(&reach.radius);
    let group_data: Vec<TreeData> = groups
        .iter()
        .map(|cores| TreeData::new(fitted, cores, &rotation))
        .collect();
    let Some(search) = CoreSearch::new(fitted, &rotation, &all, &group_data) else {
        return assign_to_nearest_core_exhaustively(fitted, points);
    };
    clusters_of(
        fitted,
        in_parallel(points, |row| search.nearest_reaching(row)),
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
            rows: reach
                .points
                .rows()
                .into_iter()
                .map(|row| row.to_slice().unwrap_or(&[]))
                .collect(),
            reach_squared: reach.radius.iter().map(|radius| radius * radius).collect(),
        }
    }

    /// Squared distance from `point`, summed exactly as the exhaustive search does.
    fn squared_distance(&self, point: &[f64], core: usize) -> f64 {
        squared_distance_within(point, self.rows[core], f64::INFINITY)
    }

    /// Whether `core` reaches a point at `squared` distance.
    fn reaches(&self, core: usize, squared: f64) -> bool {
        squared <= self.reach_squared[core]
    }
}

type Tree<'a> = Box<dyn NearestNeighbourIndex<f64> + Send + Sync + 'a>;

/// Some core points as a tree holds them: each distinct position once, rotated, with the
/// core points at that position (ascending).
struct TreeData {
    rotated: Array2<f64>,
    cores_at: Vec<Vec<usize>>,
    largest_reach: f64,
}

impl TreeData {
    fn new(fitted: &DensityResult, cores: &[usize], rotation: &Array2<f64>) -> Self {
        let reach = &fitted.reach;
        let mut positions: std::collections::HashMap<Vec<u64>, usize> =
            std::collections::HashMap::new();
        let mut cores_at: Vec<Vec<usize>> = Vec::new();
        let mut distinct: Vec<usize> = Vec::new();
        for &core in cores {
            let key: Vec<u64> = reach
                .points
                .row(core)
                .iter()
                .map(|value| value.to_bits())
                .collect();
            let position = *positions.entry(key).or_insert_with(|| {
                cores_at.push(Vec::new());
                distinct.push(core);
                cores_at.len() - 1
            });
            cores_at[position].push(core);
        }
        let rotated = reach
            .points
            .select(ndarray::Axis(0), &distinct)
            .dot(&rotation.t());
        let largest_reach = cores
            .iter()
            .map(|core| reach.radius[*core])
            .fold(0.0, f64::max);
        Self {
            rotated,
            cores_at,
            largest_reach,
        }
    }
}

/// A tree over some core points.
struct CoreTree<'a> {
    tree: Tree<'a>,
    data: &'a TreeData,
}

impl<'a> CoreTree<'a> {
    fn new(data: &'a TreeData) -> Option<Self> {
        let tree = BallTree::new().from_batch(&data.rotated, L2Dist).ok()?;
        Some(Self { tree, data })
    }

    /// The core points at the distinct position nearest to the rotated point.
    fn nearest(&self, rotated: ArrayView1<'_, f64>) -> Option<&'a [usize]> {
        let (_, position) = *self.tree.k_nearest(rotated, 1).ok()?.first()?;
        self.data.cores_at.get(position).map(Vec::as_slice)
    }

    /// Every core point within `radius` of the rotated point (and perhaps a few beyond).
    fn within(&self, rotated: ArrayView1<'_, f64>, radius: f64) -> Option<Vec<usize>> {
        let found = self.tree.within_range(rotated, slack(radius)).ok()?;
        Some(
            found
                .into_iter()
                .flat_map(|(_, position)| self.data.cores_at[position].iter().copied())
                .collect(),
        )
    }
}

/// The trees over a fitted sample's core points.
struct CoreSearch<'a> {
    cores: CoreRows<'a>,
    rotation: &'a Array2<f64>,
    /// Every core point in one tree.
    all: CoreTree<'a>,
    /// The core points grouped by reach, smallest reach first.
    groups: Vec<CoreTree<'a>>,
}

impl<'a> CoreSearch<'a> {
    /// The trees over all core points and over each reach group, or `None` if a tree cannot
    /// be built.
    fn new(
        fitted: &'a DensityResult,
        rotation: &'a Array2<f64>,
        all: &'a TreeData,
        groups: &'a [TreeData],
    ) -> Option<Self> {
        Some(Self {
            cores: CoreRows::new(fitted),
            rotation,
            all: CoreTree::new(all)?,
            groups: groups.iter().map(CoreTree::new).collect::<Option<_>>()?,
        })
    }

    /// The nearest core point that reaches `row`, by the rule in the module documentation.
    fn nearest_reaching(&self, row: ArrayView1<'_, f64>) -> Option<usize> {
        let point = row.to_slice()?;
        if point.iter().any(|value| !value.is_finite()) {
            return None;
        }
        let rotated: Array1<f64> = self.rotation.dot(&row);
        let nearest = *self.all.nearest(rotated.view())?.first()?;
        let squared = self.cores.squared_distance(point, nearest);
        let mut best: Option<(f64, usize)> = None;
        let mut consider = |core: usize| {
            let squared = self.cores.squared_distance(point, core);
            if self.cores.reaches(core, squared)
                && best.is_none_or(|current| (squared, core) < current)
            {
                best = Some((squared, core));
            }
        };
        consider(nearest);
        if self.cores.reaches(nearest, squared) {
            // Nothing is nearer; look again only at the cores as near, for exact ties.
            for core in self.all.within(rotated.view(), squared.sqrt())? {
                consider(core);
            }
            return best.map(|(_, core)| core);
        }
        // Only cores reaching at least as far as the nearest core lies can qualify.
        let nearest_distance = squared.sqrt();
        for group in &self.groups {
            if group.data.largest_reach < nearest_distance {
                continue;
            }
            for core in group.within(rotated.view(), group.data.largest_reach)? {
                consider(core);
            }
        }
        best.map(|(_, core)| core)
    }
}

/// A seeded random rotation of `dimensions` coordinates (orthonormal rows, Gram-Schmidt of
/// Gaussian vectors).
fn random_rotation(dimensions: usize) -> Array2<f64> {
    let mut random = Xoshiro256PlusPlus::seed_from_u64(ROTATION_SEED);
    let mut uniform = move || ((random.next_u64() >> 11) as f64 + 0.5) / (1_u64 << 53) as f64;
    let mut rotation = Array2::<f64>::zeros((dimensions, dimensions));
    for row in 0..dimensions {
        loop {
            let mut vector: Array1<f64> = Array1::from_shape_fn(dimensions, |_| {
                (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos()
            });
            for previous in 0..row {
                let basis = rotation.row(previous);
                let projection = vector.dot(&basis);
                vector.scaled_add(-projection, &basis);
            }
            let norm = vector.dot(&vector).sqrt();
            if norm > 1e-6 {
                rotation.row_mut(row).assign(&(vector / norm));
                break;
            }
        }
    }
    rotation
}

/// A search radius widened by [`SEARCH_SLACK`], and never so small that its square
/// underflows to 0 (the trees compare squares, strictly).
fn slack(radius: f64) -> f64 {
    (radius * (1.0 + SEARCH_SLACK)).max(1e-150)
}

/// Core positions grouped by reach: each group spans at most [`REACH_GROUP_FACTOR`], smallest
/// reach first; reaches of 0 form the first group.
fn reach_groups(radius: &[f64]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..radius.len()).collect();
    order.sort_by(|left, right| {
        radius[*left]
            .total_cmp(&radius[*right])
            .then(left.cmp(right))
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut floor = f64::NAN;
    for core in order {
        let reach = radius[core];
        let starts_group = groups.is_empty()
            || (floor > 0.0 && reach > floor * REACH_GROUP_FACTOR)
            || (floor == 0.0 && reach > 0.0);
        if starts_group {
            groups.push(Vec::new());
            floor = reach;
        }
        if let Some(group) = groups.last_mut() {
            group.push(core);
        }
    }
    groups
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
    fn the_trees_give_exactly_the_exhaustive_labels() {
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
    fn many_players_sharing_a_coordinate_keep_the_trees_shallow() {
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
    fn the_rotation_keeps_distances() {
        let rotation = random_rotation(31);
        let identity = rotation.dot(&rotation.t());
        for ((row, column), value) in identity.indexed_iter() {
            let expected = if row == column { 1.0 } else { 0.0 };
            assert!((value - expected).abs() < 1e-12, "{row},{column}: {value}");
        }
    }

    #[test]
    fn reach_groups_span_a_bounded_factor() {
        let groups = reach_groups(&[0.0, 1.0, 5.0, 1.5, 2.5, 0.0, 2.0]);
        assert_eq!(groups, vec![vec![0, 5], vec![1, 3, 6], vec![4, 2]]);
    }
}
