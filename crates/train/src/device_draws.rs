//! Does a network draw from burn's device RNG while it trains?
//!
//! burn keeps one random generator per backend and process (`device.seed`). genopred's own layers
//! never draw from it while training ([`crate::dropout`] has a seeded generator per thread), but
//! burn's layers that carry their own dropout do: `MultiHeadAttention` (dropout 0.1 by default),
//! `TransformerEncoder`, `Dropout::forward` called directly. Folds trained at once
//! (`genopred cv --jobs`) would interleave those draws, and the same seed would no longer give
//! the same bytes.
//!
//! [`draws_from_device_rng`] finds out by experiment, before the fit: two networks built alike,
//! one training-mode forward pass each on the same batch, the device RNG seeded differently
//! before the pass. If the outputs differ, the pass drew from it, and the trainer seeds the
//! device RNG before every step's forward pass from the fold's seed, the epoch and the batch, under
//! the process-wide device-RNG lock (`TrainRun::device_draws`). Networks that draw nothing (every
//! model genopred ships) keep training unlocked, in parallel.

use burn::module::{Flag, ModuleMapper, Param};
use burn::prelude::*;

use crate::arch::Architecture;
use crate::layers::seed_dropout;

/// Whether `A`'s network, built from `config` for inputs of `shape`, draws from burn's device
/// RNG in a training-mode forward pass of `x` (a small batch on the autodiff device `device`).
///
/// Builds two throwaway networks (their batch-norm running statistics are their own), so the
/// network that is then trained is untouched. The caller holds
/// [`crate::predictor::device_rng_lock`] and seeds the device RNG and [`crate::seed_dropout`]
/// afterwards, as both are left re-seeded here.
pub fn draws_from_device_rng<A: Architecture>(
    config: &A::Config,
    shape: (usize, usize),
    x: &Tensor<3>,
    device: &Device,
) -> bool {
    let output = |draw_seed: u64| -> Vec<u32> {
        device.seed(0);
        let net = A::build(config, shape, 1, device);
        seed_dropout(0);
        device.seed(draw_seed);
        let out = crate::arch::Network::forward(&net, x.clone()).into_data();
        out.iter::<f32>().map(f32::to_bits).collect()
    };
    output(1) != output(2)
}

/// `net` with every burn `Dropout` layer's training flag cleared (inside burn's own layers too:
/// attention's), everything else as it was (batch norm keeps training on batch statistics).
/// The backend parity check uses it for a network that draws from the device RNG: each backend
/// has its own generator, so masks drawn there cannot agree, and the check compares arithmetic.
pub fn without_burns_dropout<M: Module>(net: M) -> M {
    /// Clears the flag a `Dropout` struct holds (its `training` field).
    struct Mapper {
        container: String,
    }
    impl ModuleMapper for Mapper {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            container_type.clone_into(&mut self.container);
        }
        fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
            if self.container == "Struct:Dropout" { flag.with_value(false) } else { flag }
        }
    }
    net.map(&mut Mapper { container: String::new() })
}
