//! The one seeded source of randomness of a synthetic lake and the distributions drawn
//! from it.
//!
//! Every draw goes through one [`Sampler`] in a fixed order, so the same seed gives the
//! same lake. The distributions are written out here (normal by Box–Muller, gamma by
//! Marsaglia–Tsang) rather than taken from a crate, which keeps the output independent of
//! another crate's sampling algorithm.

use std::f64::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A seeded random source with the distributions the generator needs.
pub(super) struct Sampler {
    rng: StdRng,
}

impl Sampler {
    /// A sampler whose draws are fixed by `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Uniform on `[0, 1)`.
    pub(super) fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Uniform on `(0, 1]`, safe to take the logarithm of.
    fn uniform_above_zero(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// Uniform on `[low, high)`.
    pub(super) fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// True with `probability`.
    pub(super) fn chance(&mut self, probability: f64) -> bool {
        self.uniform() < probability
    }

    /// A whole number in `0..count` (0 when `count` is 0).
    pub(super) fn below(&mut self, count: u64) -> u64 {
        if count == 0 {
            return 0;
        }
        self.rng.random_range(0..count)
    }

    /// The index `i` of the first `cumulative[i]` above a uniform draw: a categorical draw
    /// from cumulative weights that end at 1.
    pub(super) fn pick(&mut self, cumulative: &[f64]) -> usize {
        let draw = self.uniform();
        cumulative
            .iter()
            .position(|&bound| draw < bound)
            .unwrap_or(cumulative.len().saturating_sub(1))
    }

    /// Standard normal (Box–Muller, one value per pair of uniforms).
    pub(super) fn normal(&mut self) -> f64 {
        let radius = (-2.0 * self.uniform_above_zero().ln()).sqrt();
        radius * (TAU * self.uniform()).cos()
    }

    /// Lognormal with the given median and log-scale standard deviation.
    pub(super) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Pareto with scale 1 (the smallest value) and tail index `alpha`.
    pub(super) fn pareto(&mut self, alpha: f64) -> f64 {
        self.uniform_above_zero().powf(-1.0 / alpha)
    }

    /// Exponential with the given mean.
    pub(super) fn exponential(&mut self, mean: f64) -> f64 {
        -mean * self.uniform_above_zero().ln()
    }

    /// Gamma with unit scale (Marsaglia and Tsang, boosted below shape 1).
    pub(super) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let boost = self.uniform_above_zero().powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let offset = shape - 1.0 / 3.0;
        let scale = 1.0 / (9.0 * offset).sqrt();
        loop {
            let normal = self.normal();
            let base = 1.0 + scale * normal;
            if base <= 0.0 {
                continue;
            }
            let cube = base * base * base;
            let uniform = self.uniform_above_zero();
            let squared = normal * normal;
            if uniform < 1.0 - 0.0331 * squared * squared
                || uniform.ln() < 0.5 * squared + offset * (1.0 - cube + cube.ln())
            {
                return offset * cube;
            }
        }
    }

    /// Beta with shapes `alpha` and `beta`.
    pub(super) fn beta(&mut self, alpha: f64, beta: f64) -> f64 {
        let first = self.gamma(alpha);
        let second = self.gamma(beta);
        let total = first + second;
        if total <= 0.0 {
            return alpha / (alpha + beta);
        }
        first / total
    }

    /// A Dirichlet draw around `mean` (weights summing to 1): larger `concentration` stays
    /// closer to the mean.
    pub(super) fn dirichlet<const N: usize>(
        &mut self,
        mean: &[f64; N],
        concentration: f64,
    ) -> [f64; N] {
        let mut shares = [0.0; N];
        for (share, weight) in shares.iter_mut().zip(mean) {
            *share = self.gamma(weight * concentration);
        }
        let total: f64 = shares.iter().sum();
        if total <= 0.0 {
            return *mean;
        }
        for share in &mut shares {
            *share /= total;
        }
        shares
    }
}

/// Running sums of `weights`, scaled to end at exactly 1 (for [`Sampler::pick`]).
pub(super) fn cumulative<const N: usize>(weights: &[f64; N]) -> [f64; N] {
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    let mut sums = [0.0; N];
    for (sum, weight) in sums.iter_mut().zip(weights) {
        running += weight / total;
        *sum = running;
    }
    if let Some(last) = sums.last_mut() {
        *last = 1.0;
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_variance(values: &[f64]) -> (f64, f64) {
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let variance = values
            .iter()
            .map(|value| (value - mean).powi(2))
            .sum::<f64>()
            / count;
        (mean, variance)
    }

    #[test]
    fn normal_has_zero_mean_and_unit_variance() {
        let mut sampler = Sampler::new(1);
        let values: Vec<f64> = (0..50_000).map(|_| sampler.normal()).collect();
        let (mean, variance) = mean_and_variance(&values);
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((variance - 1.0).abs() < 0.03, "variance {variance}");
    }

    #[test]
    fn gamma_mean_and_variance_equal_its_shape() {
        let mut sampler = Sampler::new(2);
        for shape in [0.08, 0.5, 1.0, 3.2, 14.0] {
            let values: Vec<f64> = (0..40_000).map(|_| sampler.gamma(shape)).collect();
            let (mean, variance) = mean_and_variance(&values);
            assert!(
                (mean / shape - 1.0).abs() < 0.05,
                "shape {shape}: mean {mean}"
            );
            assert!(
                (variance / shape - 1.0).abs() < 0.1,
                "shape {shape}: variance {variance}"
            );
        }
    }

    #[test]
    fn dirichlet_shares_sum_to_one_around_the_mean() {
        let mut sampler = Sampler::new(3);
        let mean = [0.1, 0.6, 0.3];
        let mut totals = [0.0; 3];
        for _ in 0..10_000 {
            let shares = sampler.dirichlet(&mean, 16.0);
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            for (total, share) in totals.iter_mut().zip(shares) {
                *total += share / 10_000.0;
            }
        }
        for (total, expected) in totals.iter().zip(mean) {
            assert!((total - expected).abs() < 0.01, "{totals:?}");
        }
    }

    #[test]
    fn pick_follows_cumulative_weights() {
        let mut sampler = Sampler::new(4);
        let bounds = cumulative(&[1.0, 3.0, 6.0]);
        let mut counts = [0_u32; 3];
        for _ in 0..30_000 {
            counts[sampler.pick(&bounds)] += 1;
        }
        let shares = counts.map(|count| f64::from(count) / 30_000.0);
        for (share, expected) in shares.iter().zip([0.1, 0.3, 0.6]) {
            assert!((share - expected).abs() < 0.015, "{shares:?}");
        }
    }
}
