//! A test network built from burn's own dropout layer (`Dropout::forward`, which draws from
//! burn's device RNG) or genopred's (`genopred_train::dropout`), shared by the tests of
//! `device_draws.rs` and `device_draws_unseeded.rs`.

use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::{EpochRecord, FitObserver, GenotypeMatrix};
use genopred_train::init::{WeightInit, linear};
use genopred_train::inputs::encode_dosage;
use genopred_train::predictor::device_rng_lock;
use genopred_train::{Architecture, Encoded, InputContext, Network, TrainConfig, TrainError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// true: burn's `Dropout::forward`; false: genopred's `dropout`.
    pub burns_dropout: bool,
    pub train: TrainConfig,
}

#[derive(Module, Debug)]
pub struct Net {
    hidden: Linear,
    drop: Dropout,
    out: Linear,
    burns_dropout: bool,
}

impl Network for Net {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let h = relu(self.hidden.forward(x.flatten(1, 2)));
        let h = if self.burns_dropout { self.drop.forward(h) } else { genopred_train::dropout(&self.drop, h) };
        self.out.forward(h)
    }
}

pub struct Arch;

impl Architecture for Arch {
    const NAME: &'static str = "burn-dropout";
    const ABOUT: &'static str = "test network with burn's own dropout";
    type Config = Config;
    type Input = DosageEncoder;
    type Net = Net;

    fn default_config() -> Config {
        Config { burns_dropout: true, train: TrainConfig::new().with_epochs(6).with_batch_size(8) }
    }
    fn check(c: &Config) -> Result<(), TrainError> {
        Ok(c.train.check()?)
    }
    fn train_config(c: &Config) -> &TrainConfig {
        &c.train
    }
    fn train_config_mut(c: &mut Config) -> &mut TrainConfig {
        &mut c.train
    }
    fn fit_input(_c: &Config, ctx: &InputContext<'_>) -> Result<DosageEncoder, TrainError> {
        Ok(DosageEncoder::fit(ctx.geno, ctx.train_rows, Scaling::Standardised))
    }
    fn encode(input: &DosageEncoder, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        encode_dosage(Self::NAME, input, geno, rows)
    }
    fn input_shape(input: &DosageEncoder) -> (usize, usize) {
        (1, input.n_markers())
    }
    fn build(c: &Config, (channels, length): (usize, usize), outputs: usize, device: &Device) -> Net {
        Net {
            hidden: linear(channels * length, 16, WeightInit::GlorotUniform, device),
            drop: DropoutConfig::new(0.5).init(),
            out: linear(16, outputs, WeightInit::GlorotUniform, device),
            burns_dropout: c.burns_dropout,
        }
    }
}

/// Draws from burn's device RNG after every epoch, as another fit in the process would.
#[allow(dead_code)] // device_draws_unseeded.rs uses it, device_draws.rs does not
pub struct OutsideDraws;

impl FitObserver for OutsideDraws {
    fn epoch(&self, _record: &EpochRecord) {
        let _rng = device_rng_lock();
        let _ = Tensor::<1>::random([5], burn::tensor::Distribution::Default, &Device::flex()).into_data();
    }
}

pub fn config(burns_dropout: bool) -> Config {
    Config { burns_dropout, ..Arch::default_config() }
}
