//! Euclidean distances and k-nearest-neighbour distances for the density methods.
//!
//! Everything works on squared distances until the end: the square root is monotone, so
//! comparisons give the same answers and the hot loops skip it.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Axis, Slice};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Rows per tile when every pair of points is visited: the tile and the products of its
/// rows with [`OTHER_TILE_ROWS`] others stay in the level-2 cache.
const TILE_ROWS: usize = 128;

/// Rows of the other side of a tile of products.
const OTHER_TILE_ROWS: usize = 512;

/// Relative error allowed for `|x|² + |y|² - 2 x·y` against the direct sum of squared
/// differences: rounding is about `dimensions × 1.1e-16 × (|x|² + |y|²)`, so this is ample
/// for any dimension count below ten thousand.
const ESTIMATE_MARGIN: f64 = 1e-12;

/// Squared Euclidean distance between two points of the same dimension.
#[cfg(test)]
pub(super) fn squared_distance(left: &[f64], right: &[f64]) -> f64 {
    squared_distance_within(left, right, f64::INFINITY)
}

/// Squared Euclidean distance, except that it stops early and returns some value greater
/// than `bound` once the partial sum is already greater than `bound`.
///
/// Callers that only care about distances up to a bound (the best candidate so far, a
/// reach radius) skip most of the arithmetic for far points.
pub(super) fn squared_distance_within(left: &[f64], right: &[f64], bound: f64) -> f64 {
    debug_assert_eq!(left.len(), right.len());
    const BLOCK: usize = 8;
    let mut total = 0.0;
    let mut left_blocks = left.chunks_exact(BLOCK);
    let mut right_blocks = right.chunks_exact(BLOCK);
    for (left_block, right_block) in left_blocks.by_ref().zip(right_blocks.by_ref()) {
        let mut lanes = [0.0_f64; 4];
        for lane in 0..4 {
            let first = left_block[lane] - right_block[lane];
            let second = left_block[lane + 4] - right_block[lane + 4];
            lanes[lane] = first * first + second * second;
        }
        total += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        if total > bound {
            return total;
        }
    }
    for (left_value, right_value) in left_blocks.remainder().iter().zip(right_blocks.remainder()) {
        let difference = left_value - right_value;
        total += difference * difference;
    }
    total
}

/// A squared distance ordered by `f64::total_cmp`, for the per-point max-heaps.
#[derive(Clone, Copy, PartialEq)]
struct Ordered(f64);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `neighbours` smallest squared distances seen so far for one point.
struct NearestSoFar {
    heap: BinaryHeap<Ordered>,
    capacity: usize,
    /// The largest kept distance once the heap is full, infinity before: a new distance
    /// matters only if it is smaller.
    worst: f64,
}

impl NearestSoFar {
    fn new(capacity: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(capacity + 1),
            capacity,
            worst: f64::INFINITY,
        }
    }

    /// Keeps `squared` if it is among the `capacity` smallest; returns the new worst.
    fn offer(&mut self, squared: f64) -> f64 {
        if squared >= self.worst || self.capacity == 0 {
            return self.worst;
        }
        self.heap.push(Ordered(squared));
        if self.heap.len() > self.capacity {
            self.heap.pop();
        }
        if self.heap.len() == self.capacity {
            self.worst = self.heap.peek().map_or(f64::INFINITY, |largest| largest.0);
        }
        self.worst
    }
}

/// Squared distance from every point to its `k`-th nearest neighbour, the point itself
/// counted as the first neighbour at distance zero (scikit-learn's `kneighbors(X)` on its
/// own training data, which `DBSCAN`'s `min_samples` and `HDBSCAN`'s core distance use).
///
/// Exact. Each tile of [`TILE_ROWS`] points meets every point, block by block: a matrix
/// product (`x·y` through ndarray's vectorised GEMM) gives `|x|² + |y|² - 2 x·y`, a cheap
/// estimate that rules out the points farther than the tile point's current k-th
/// neighbour, and the few left are measured directly, so rounding in the estimate never
/// changes a result. Tiles are dealt round-robin to the threads; a point's result depends
/// only on the set of distances, so not on the thread count. O(n² · d).
/// `k` must be between 1 and the number of points.
pub(super) fn kth_neighbour_squared_distances(points: &Array2<f64>, k: usize) -> Vec<f64> {
    let count = points.nrows();
    debug_assert!(k >= 1 && k <= count);
    let others = k.saturating_sub(1);
    if others == 0 {
        return vec![0.0; count];
    }
    let rows = row_slices(points);
    let norms: Vec<f64> = rows
        .iter()
        .map(|row| row.iter().map(|value| value * value).sum())
        .collect();
    let tile_starts: Vec<usize> = (0..count).step_by(TILE_ROWS).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, NEIGHBOURHOOD_THREADS);
    let found: Vec<Vec<(usize, Vec<f64>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let (rows, norms, tile_starts) = (&rows, &norms, &tile_starts);
                scope.spawn(move || {
                    let mut products = Array2::<f64>::zeros((TILE_ROWS, OTHER_TILE_ROWS));
                    tile_starts
                        .iter()
                        .skip(worker)
                        .step_by(threads)
                        .map(|&tile_start| {
                            let worst = tile_kth_neighbours(
                                points,
                                rows,
                                norms,
                                tile_start,
                                others,
                                &mut products,
                            );
                            (tile_start, worst)
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut tiles: Vec<(usize, Vec<f64>)> = found.into_iter().flatten().collect();
    tiles.sort_by_key(|(tile_start, _)| *tile_start);
    let worst: Vec<f64> = tiles.into_iter().flat_map(|(_, worst)| worst).collect();
    debug_assert_eq!(worst.len(), count);
    worst
}

/// The squared distance to the `others`-th nearest other point of each point of the tile
/// starting at `tile_start` (infinity when there are fewer others).
fn tile_kth_neighbours(
    points: &Array2<f64>,
    rows: &[&[f64]],
    norms: &[f64],
    tile_start: usize,
    others: usize,
    products: &mut Array2<f64>,
) -> Vec<f64> {
    let count = points.nrows();
    let tile_end = (tile_start + TILE_ROWS).min(count);
    let tile = points.slice_axis(Axis(0), Slice::from(tile_start..tile_end));
    let mut nearest: Vec<NearestSoFar> = (tile_start..tile_end)
        .map(|_| NearestSoFar::new(others))
        .collect();
    // The k-th smallest squared distance found so far per tile point (infinity until k
    // found), kept apart from the heaps so the scan reads it directly.
    let mut worst = vec![f64::INFINITY; tile_end - tile_start];
    for other_start in (0..count).step_by(OTHER_TILE_ROWS) {
        let other_end = (other_start + OTHER_TILE_ROWS).min(count);
        let other_tile = points.slice_axis(Axis(0), Slice::from(other_start..other_end));
        let mut block = products.view_mut();
        block.slice_axis_inplace(Axis(0), Slice::from(..tile_end - tile_start));
        block.slice_axis_inplace(Axis(1), Slice::from(..other_end - other_start));
        general_mat_mul(1.0, &tile, &other_tile.t(), 0.0, &mut block);
        for first in tile_start..tile_end {
            let block_row = block.row(first - tile_start);
            let first_norm = norms[first];
            let local = first - tile_start;
            for second in other_start..other_end {
                if second == first {
                    continue;
                }
                let bound = worst[local];
                let estimate = first_norm + norms[second] - 2.0 * block_row[second - other_start];
                if estimate > bound + ESTIMATE_MARGIN * (first_norm + norms[second]) {
                    continue;
                }
                let squared = squared_distance_within(rows[first], rows[second], bound);
                if squared <= bound {
                    worst[local] = nearest[local].offer(squared);
                }
            }
        }
    }
    worst
}

/// Most neighbour entries [`eps_neighbourhoods`] keeps (4 bytes each) before giving up:
/// beyond it DBSCAN scans instead.
const NEIGHBOURHOOD_ENTRY_BUDGET: usize = 50_000_000;

/// Most threads the neighbourhood search uses.
const NEIGHBOURHOOD_THREADS: usize = 4;

/// Squared distance summed in four lanes, the arithmetic every DBSCAN neighbourhood test
/// uses (the tiled search and the scan give identical answers; it is symmetric, as
/// `(a - b)² = (b - a)²` exactly).
pub(super) fn lane_squared_distance(left: &[f64], right: &[f64]) -> f64 {
    let mut lanes = [0.0_f64; 4];
    let mut left_blocks = left.chunks_exact(4);
    let mut right_blocks = right.chunks_exact(4);
    for (left_block, right_block) in left_blocks.by_ref().zip(right_blocks.by_ref()) {
        for lane in 0..4 {
            let difference = left_block[lane] - right_block[lane];
            lanes[lane] += difference * difference;
        }
    }
    let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (first, second) in left_blocks.remainder().iter().zip(right_blocks.remainder()) {
        total += (first - second) * (first - second);
    }
    total
}

/// Every point's neighbours within a radius (`lane_squared_distance < squared_radius`, the
/// point itself included), in ascending index order, kept per tile of [`TILE_ROWS`] points.
pub(super) struct Neighbourhoods {
    tiles: Vec<TileNeighbourhoods>,
}

/// The neighbourhoods of one tile's points: `members[offsets[i]..offsets[i + 1]]`.
struct TileNeighbourhoods {
    offsets: Vec<usize>,
    members: Vec<u32>,
}

impl Neighbourhoods {
    /// The neighbours of `point`, ascending.
    pub(super) fn of(&self, point: usize) -> &[u32] {
        let tile = &self.tiles[point / TILE_ROWS];
        let row = point % TILE_ROWS;
        &tile.members[tile.offsets[row]..tile.offsets[row + 1]]
    }
}

/// The neighbourhoods of every point within `squared_radius`, or `None` when they would
/// hold more than [`NEIGHBOURHOOD_ENTRY_BUDGET`] entries (or the points outnumber `u32`).
///
/// Exact, like [`kth_neighbour_squared_distances`]: pairs are ruled out by the
/// matrix-product estimate with a margin, and every remaining pair is decided by
/// [`lane_squared_distance`]. Each tile scans all points, so a point's list comes out whole
/// and in order from its own tile (twice the products of a triangle, but no pair list to
/// hold and sort); tiles are dealt round-robin to the threads.
pub(super) fn eps_neighbourhoods(
    points: &Array2<f64>,
    squared_radius: f64,
) -> Option<Neighbourhoods> {
    let count = points.nrows();
    u32::try_from(count).ok()?;
    let rows = row_slices(points);
    let norms: Vec<f64> = rows
        .iter()
        .map(|row| row.iter().map(|value| value * value).sum())
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, NEIGHBOURHOOD_THREADS);
    let tile_starts: Vec<usize> = (0..count).step_by(TILE_ROWS).collect();
    let entries = std::sync::atomic::AtomicUsize::new(0);
    let found: Vec<Option<Vec<(usize, TileNeighbourhoods)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let (rows, norms, tile_starts, entries) = (&rows, &norms, &tile_starts, &entries);
                scope.spawn(move || {
                    let mut tiles = Vec::new();
                    let mut products = Array2::<f64>::zeros((TILE_ROWS, OTHER_TILE_ROWS));
                    for (tile, &tile_start) in
                        tile_starts.iter().enumerate().skip(worker).step_by(threads)
                    {
                        let found = tile_neighbourhoods(
                            points,
                            rows,
                            norms,
                            tile_start,
                            squared_radius,
                            &mut products,
                        );
                        let added = found.members.len();
                        let total =
                            entries.fetch_add(added, std::sync::atomic::Ordering::Relaxed) + added;
                        if total > NEIGHBOURHOOD_ENTRY_BUDGET {
                            return None;
                        }
                        tiles.push((tile, found));
                    }
                    Some(tiles)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut tiles: Vec<(usize, TileNeighbourhoods)> = found
        .into_iter()
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    tiles.sort_by_key(|(tile, _)| *tile);
    Some(Neighbourhoods {
        tiles: tiles.into_iter().map(|(_, found)| found).collect(),
    })
}

/// The neighbourhoods of the points of the tile starting at `tile_start`.
fn tile_neighbourhoods(
    points: &Array2<f64>,
    rows: &[&[f64]],
    norms: &[f64],
    tile_start: usize,
    squared_radius: f64,
    products: &mut Array2<f64>,
) -> TileNeighbourhoods {
    let count = points.nrows();
    let tile_end = (tile_start + TILE_ROWS).min(count);
    let tile = points.slice_axis(Axis(0), Slice::from(tile_start..tile_end));
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); tile_end - tile_start];
    for other_start in (0..count).step_by(OTHER_TILE_ROWS) {
        let other_end = (other_start + OTHER_TILE_ROWS).min(count);
        let other_tile = points.slice_axis(Axis(0), Slice::from(other_start..other_end));
        let mut block = products.view_mut();
        block.slice_axis_inplace(Axis(0), Slice::from(..tile_end - tile_start));
        block.slice_axis_inplace(Axis(1), Slice::from(..other_end - other_start));
        general_mat_mul(1.0, &tile, &other_tile.t(), 0.0, &mut block);
        for (first, list) in (tile_start..tile_end).zip(lists.iter_mut()) {
            let block_row = block.row(first - tile_start);
            let first_norm = norms[first];
            for second in other_start..other_end {
                let estimate = first_norm + norms[second] - 2.0 * block_row[second - other_start];
                if estimate > squared_radius + ESTIMATE_MARGIN * (first_norm + norms[second]) {
                    continue;
                }
                if lane_squared_distance(rows[first], rows[second]) < squared_radius {
                    list.push(second as u32);
                }
            }
        }
    }
    let mut offsets = Vec::with_capacity(lists.len() + 1);
    offsets.push(0);
    let mut members = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    for list in lists {
        members.extend_from_slice(&list);
        offsets.push(members.len());
    }
    TileNeighbourhoods { offsets, members }
}

/// The rows of a standard-layout matrix as slices.
pub(super) fn row_slices(points: &Array2<f64>) -> Vec<&[f64]> {
    let rows: Vec<&[f64]> = points
        .rows()
        .into_iter()
        .map(|row| row.to_slice().unwrap_or(&[]))
        .collect();
    debug_assert!(rows.iter().all(|row| row.len() == points.ncols()));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn squared_distance_matches_the_definition_for_odd_dimensions() {
        let left: Vec<f64> = (0..13).map(|value| value as f64 * 0.5).collect();
        let right: Vec<f64> = (0..13).map(|value| (value * value) as f64 * 0.1).collect();
        let expected: f64 = left
            .iter()
            .zip(&right)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        assert!((squared_distance(&left, &right) - expected).abs() < 1e-9);
    }

    #[test]
    fn bounded_distance_exceeds_the_bound_when_the_point_is_far() {
        let left = vec![0.0; 20];
        let right = vec![1.0; 20];
        assert!(squared_distance_within(&left, &right, 3.0) > 3.0);
        assert_eq!(squared_distance_within(&left, &right, 100.0), 20.0);
    }

    #[test]
    fn kth_neighbour_counts_the_point_itself_first() {
        let points = array![[0.0], [1.0], [3.0], [7.0]];
        assert_eq!(kth_neighbour_squared_distances(&points, 1), vec![0.0; 4]);
        assert_eq!(
            kth_neighbour_squared_distances(&points, 2),
            vec![1.0, 1.0, 4.0, 16.0]
        );
        assert_eq!(
            kth_neighbour_squared_distances(&points, 4),
            vec![49.0, 36.0, 16.0, 49.0]
        );
    }

    #[test]
    fn kth_neighbour_matches_brute_force_across_tiles() {
        let count = 600;
        let points = Array2::from_shape_fn((count, 3), |(row, column)| {
            ((row * 7919 + column * 104_729) % 1000) as f64 / 37.0
        });
        let k = 9;
        let fast = kth_neighbour_squared_distances(&points, k);
        for (row, found) in fast.iter().enumerate() {
            let mut all: Vec<f64> = (0..count)
                .map(|other| {
                    squared_distance(
                        points.row(row).to_slice().unwrap(),
                        points.row(other).to_slice().unwrap(),
                    )
                })
                .collect();
            all.sort_by(f64::total_cmp);
            assert_eq!(*found, all[k - 1], "row {row}");
        }
    }
}
