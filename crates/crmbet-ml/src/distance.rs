//! The four-lane squared Euclidean distance shared by DBSCAN's neighbourhood tests and
//! linfa's KMeans.

use linfa_nn::distance::Distance;
use ndarray::{ArrayView, Dimension, Zip};

/// Squared distance summed in four lanes over contiguous values. Symmetric, as
/// `(a - b)² = (b - a)²` exactly, so a pair measured either way gives the same answer.
pub(crate) fn lane_squared_distance(left: &[f64], right: &[f64]) -> f64 {
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

/// Euclidean distance for linfa's KMeans through [`lane_squared_distance`]: linfa's default
/// `L2Dist` goes through ndarray-stats' generic zip, several times slower on 31 columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Euclidean;

impl Distance<f64> for Euclidean {
    fn distance<D: Dimension>(&self, left: ArrayView<f64, D>, right: ArrayView<f64, D>) -> f64 {
        self.rdistance(left, right).sqrt()
    }

    fn rdistance<D: Dimension>(&self, left: ArrayView<f64, D>, right: ArrayView<f64, D>) -> f64 {
        if let (Some(left), Some(right)) = (left.as_slice(), right.as_slice()) {
            return lane_squared_distance(left, right);
        }
        let mut total = 0.0;
        Zip::from(&left).and(&right).for_each(|&first, &second| {
            total += (first - second) * (first - second);
        });
        total
    }

    fn rdist_to_dist(&self, squared: f64) -> f64 {
        squared.sqrt()
    }

    fn dist_to_rdist(&self, distance: f64) -> f64 {
        distance * distance
    }
}
