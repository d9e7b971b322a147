//! Euclidean distances and k-nearest-neighbour distances for the density methods.
//!
//! Everything works on squared distances until the end: the square root is monotone, so
//! comparisons give the same answers and the hot loops skip it.

pub(super) use crate::distance::lane_squared_distance;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, Axis, Slice};
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
    let tiling = Tiling::new(points);
    let tiles = tiling.per_tile(|tile_start, products| {
        Some(tiling.tile_kth_neighbours(tile_start, others, products))
    });
    let worst: Vec<f64> = tiles.into_iter().flatten().flatten().collect();
    debug_assert_eq!(worst.len(), count);
    worst
}

/// The points, their rows and squared norms, visited a tile of [`TILE_ROWS`] points against
/// every block of [`OTHER_TILE_ROWS`] points through matrix products.
struct Tiling<'a> {
    points: &'a Array2<f64>,
    rows: Vec<&'a [f64]>,
    norms: Vec<f64>,
}

impl<'a> Tiling<'a> {
    fn new(points: &'a Array2<f64>) -> Self {
        let rows = row_slices(points);
        let norms = rows
            .iter()
            .map(|row| row.iter().map(|value| value * value).sum())
            .collect();
        Self {
            points,
            rows,
            norms,
        }
    }

    /// `per_tile(tile_start, products)` for every tile, the tiles dealt round-robin to the
    /// threads (each with its own product buffer), the results in tile order; `None` as soon
    /// as any tile gives `None`.
    fn per_tile<T: Send>(
        &self,
        per_tile: impl Fn(usize, &mut Array2<f64>) -> Option<T> + Sync,
    ) -> Option<Vec<T>> {
        let tile_starts: Vec<usize> = (0..self.points.nrows()).step_by(TILE_ROWS).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, NEIGHBOURHOOD_THREADS);
        let found: Vec<Option<Vec<(usize, T)>>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|worker| {
                    let (tile_starts, per_tile) = (&tile_starts, &per_tile);
                    scope.spawn(move || {
                        let mut products = Array2::<f64>::zeros((TILE_ROWS, OTHER_TILE_ROWS));
                        tile_starts
                            .iter()
                            .enumerate()
                            .skip(worker)
                            .step_by(threads)
                            .map(|(tile, &tile_start)| {
                                per_tile(tile_start, &mut products).map(|result| (tile, result))
                            })
                            .collect::<Option<Vec<_>>>()
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
        let mut tiles: Vec<(usize, T)> = found
            .into_iter()
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        tiles.sort_by_key(|(tile, _)| *tile);
        Some(tiles.into_iter().map(|(_, result)| result).collect())
    }

    /// The end of the tile starting at `tile_start`.
    fn tile_end(&self, tile_start: usize) -> usize {
        (tile_start + TILE_ROWS).min(self.points.nrows())
    }

    /// `visit(other_start, block)` for every block of points, `block` holding the products
    /// of the tile's rows (starting at `tile_start`) with the block's.
    fn blocks(
        &self,
        tile_start: usize,
        products: &mut Array2<f64>,
        mut visit: impl FnMut(usize, ArrayView2<'_, f64>),
    ) {
        let count = self.points.nrows();
        let tile_end = self.tile_end(tile_start);
        let tile = self
            .points
            .slice_axis(Axis(0), Slice::from(tile_start..tile_end));
        for other_start in (0..count).step_by(OTHER_TILE_ROWS) {
            let other_end = (other_start + OTHER_TILE_ROWS).min(count);
            let other_tile = self
                .points
                .slice_axis(Axis(0), Slice::from(other_start..other_end));
            let mut block = products.view_mut();
            block.slice_axis_inplace(Axis(0), Slice::from(..tile_end - tile_start));
            block.slice_axis_inplace(Axis(1), Slice::from(..other_end - other_start));
            general_mat_mul(1.0, &tile, &other_tile.t(), 0.0, &mut block);
            visit(other_start, block.view());
        }
    }

    /// Whether the product estimate of the squared distance between `first` and `second`
    /// surely exceeds `bound` (with [`ESTIMATE_MARGIN`] for its rounding).
    fn surely_beyond(&self, first: usize, second: usize, product: f64, bound: f64) -> bool {
        let norms = self.norms[first] + self.norms[second];
        norms - 2.0 * product > bound + ESTIMATE_MARGIN * norms
    }

    /// The squared distance to the `others`-th nearest other point of each point of the tile
    /// starting at `tile_start` (infinity when there are fewer others).
    fn tile_kth_neighbours(
        &self,
        tile_start: usize,
        others: usize,
        products: &mut Array2<f64>,
    ) -> Vec<f64> {
        let tile_end = self.tile_end(tile_start);
        let mut nearest: Vec<NearestSoFar> = (tile_start..tile_end)
            .map(|_| NearestSoFar::new(others))
            .collect();
        // The k-th smallest squared distance found so far per tile point (infinity until k
        // found), kept apart from the heaps so the scan reads it directly.
        let mut worst = vec![f64::INFINITY; tile_end - tile_start];
        self.blocks(tile_start, products, |other_start, block| {
            for (local, block_row) in block.rows().into_iter().enumerate() {
                let first = tile_start + local;
                for (second, &product) in (other_start..).zip(block_row) {
                    let bound = worst[local];
                    if second == first || self.surely_beyond(first, second, product, bound) {
                        continue;
                    }
                    let squared =
                        squared_distance_within(self.rows[first], self.rows[second], bound);
                    if squared <= bound {
                        worst[local] = nearest[local].offer(squared);
                    }
                }
            }
        });
        worst
    }

    /// The neighbourhoods of the points of the tile starting at `tile_start`.
    fn tile_neighbourhoods(
        &self,
        tile_start: usize,
        squared_radius: f64,
        products: &mut Array2<f64>,
    ) -> TileNeighbourhoods {
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); self.tile_end(tile_start) - tile_start];
        self.blocks(tile_start, products, |other_start, block| {
            for ((first, list), block_row) in (tile_start..).zip(&mut lists).zip(block.rows()) {
                for (second, &product) in (other_start..).zip(block_row) {
                    if !self.surely_beyond(first, second, product, squared_radius)
                        && lane_squared_distance(self.rows[first], self.rows[second])
                            < squared_radius
                    {
                        list.push(second as u32);
                    }
                }
            }
        });
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        offsets.push(0);
        let mut members = Vec::with_capacity(lists.iter().map(Vec::len).sum());
        for list in lists {
            members.extend_from_slice(&list);
            offsets.push(members.len());
        }
        TileNeighbourhoods { offsets, members }
    }
}

/// Most neighbour entries [`eps_neighbourhoods`] keeps (4 bytes each) before giving up:
/// beyond it DBSCAN scans instead.
const NEIGHBOURHOOD_ENTRY_BUDGET: usize = 50_000_000;

/// Most threads the neighbourhood search uses.
const NEIGHBOURHOOD_THREADS: usize = 4;

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
    u32::try_from(points.nrows()).ok()?;
    let tiling = Tiling::new(points);
    let entries = std::sync::atomic::AtomicUsize::new(0);
    let tiles = tiling.per_tile(|tile_start, products| {
        let found = tiling.tile_neighbourhoods(tile_start, squared_radius, products);
        let added = found.members.len();
        let total = entries.fetch_add(added, std::sync::atomic::Ordering::Relaxed) + added;
        (total <= NEIGHBOURHOOD_ENTRY_BUDGET).then_some(found)
    })?;
    Some(Neighbourhoods { tiles })
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
