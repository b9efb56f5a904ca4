//! Seed derivation: one user seed becomes independent, reproducible streams per repeat, fold and
//! purpose, so adding a fold or a model never shifts the random numbers of another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a random stream is for. Every seed in genopred is derived from the user's `--seed`
/// through [`derive_seed`] with one of these (`cargo xtask tidy` checks that no other
/// derivation appears). The numbers are part of every published result's reproducibility: never
/// change one; add a new purpose for a new stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// The k-fold assignment of one repeat.
    Kfold = 0x4b46,
    /// The validation subset carved from a fold's training rows.
    Validation = 0x56,
    /// A model's fit on one fold: initial weights (burn's device RNG).
    Fit = 0x4d,
    /// Dropout masks of one fit (derived from the fit's seed).
    Dropout = 0x4452_4f50,
    /// The order of training rows in each epoch of one fit (derived from the fit's seed).
    Shuffle = 0x5348_5546,
    /// SmoothGrad's input noise (`genopred importance`).
    SmoothGrad = 0x534d_4f4f,
    /// A Markov chain Monte Carlo sampler's draws (BayesB's Gibbs chain; derived from the fit's
    /// seed).
    Mcmc = 0x4d43_4d43,
    /// A nested hyperparameter search on one outer fold: its trial draws, inner split and inner
    /// fits (`genopred cv --tune`).
    Tuning = 0x5455_4e45,
    /// An ensemble's weight search (its particle swarm; derived from the fit's seed).
    Weights = 0x5745_4947,
    /// The random probes of a matrix-free REML's trace estimate (derived from the fit's seed).
    TraceProbes = 0x5452_4143,
    /// Draws burn's own layers make from burn's device RNG in a training step (their dropout),
    /// one seed per step under `[epoch, batch]` (derived from the fit's seed).
    DeviceDraws = 0x4452_4157,
}

/// A seed derived from `seed` for `purpose`, under a path of integers (e.g. `[repeat, fold]`).
pub fn derive_seed(seed: u64, purpose: Purpose, path: &[u64]) -> u64 {
    path.iter().chain([&(purpose as u64)]).fold(mix(seed), |acc, &p| mix(acc ^ mix(p)))
}

/// A ChaCha8 generator: portable, so the same seed gives the same splits on every platform.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_and_repeat() {
        let p = Purpose::Fit;
        assert_eq!(derive_seed(1, p, &[2, 3]), derive_seed(1, p, &[2, 3]));
        assert_ne!(derive_seed(1, p, &[2, 3]), derive_seed(1, p, &[3, 2]));
        assert_ne!(derive_seed(1, p, &[2]), derive_seed(2, p, &[2]));
        assert_ne!(derive_seed(1, Purpose::Fit, &[2]), derive_seed(1, Purpose::Validation, &[2]));
        // The purpose is the last element of the path: seeds of results published before
        // purposes had names are unchanged (fold 3 of repeat 1, validation subset).
        let legacy = [1u64, 3, 0x56].iter().fold(mix(42), |acc, &p| mix(acc ^ mix(p)));
        assert_eq!(derive_seed(42, Purpose::Validation, &[1, 3]), legacy);
    }
}
