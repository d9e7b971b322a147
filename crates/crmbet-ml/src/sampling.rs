//! Seeded random samples of players, the same for the same seed on every machine.

use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

/// A random number generator for one purpose (`stream`) of one training run (`seed`), so that
/// adding a new random step never shifts the numbers another step draws.
pub(crate) fn generator(seed: u64, stream: u64) -> Xoshiro256Plus {
    Xoshiro256Plus::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A uniform integer in `0..bound` (`bound > 0`), by rejection so it has no modulo bias.
pub(crate) fn below(generator: &mut Xoshiro256Plus, bound: usize) -> usize {
    let bound = bound as u64;
    let zone = u64::MAX - u64::MAX % bound;
    loop {
        let value = generator.next_u64();
        if value < zone {
            return (value % bound) as usize;
        }
    }
}

/// `size` distinct indices of `0..population`, sorted; every index when `size >= population`.
pub(crate) fn sample_indices(population: usize, size: usize, seed: u64, stream: u64) -> Vec<usize> {
    if size >= population {
        return (0..population).collect();
    }
    let mut generator = generator(seed, stream);
    let mut indices: Vec<usize> = (0..population).collect();
    for position in 0..size {
        let chosen = position + below(&mut generator, population - position);
        indices.swap(position, chosen);
    }
    indices.truncate(size);
    indices.sort_unstable();
    indices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_sorted_and_repeatable() {
        let first = sample_indices(1000, 100, 7, 1);
        assert_eq!(first.len(), 100);
        assert!(first.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(first, sample_indices(1000, 100, 7, 1));
        assert_ne!(first, sample_indices(1000, 100, 7, 2));
        assert_eq!(sample_indices(5, 10, 7, 1), vec![0, 1, 2, 3, 4]);
    }
}
