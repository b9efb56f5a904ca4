//! A minimal multilayer perceptron on standardised dosages — not a published model, but the
//! worked example of CONTRIBUTING.md ("Adding a model"): one crate, one registry line.
//!
//! `[batch, 1, markers]` → Flatten → Dense(hidden) → ReLU → Dropout → Dense(1).

use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use genopred_core::GenotypeMatrix;
use genopred_core::check::{non_negative, rate};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_train::dropout;
use genopred_train::init::{WeightInit, l2, linear};
use genopred_train::inputs::{check_counts, describe_dosage, dosage_saliency, encode_dosage};
use genopred_train::{Architecture, Encoded, InputContext, Network, TrainConfig, TrainError};

/// MLP hyperparameters.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Hidden units.
    #[config(default = 64)]
    pub hidden: usize,
    /// Dropout after the hidden layer.
    #[config(default = 0.3)]
    pub dropout: f64,
    /// L2 penalty on the first layer's weights (a ridge-like shrinkage of marker effects).
    #[config(default = 1e-3)]
    pub l2: f64,
    /// Training loop settings: Adam lr 0.001, batch 32, up to 200 epochs, patience 20, best
    /// weights restored.
    #[config(default = "TrainConfig::new().with_batch_size(32).with_epochs(200).with_patience(20)")]
    pub train: TrainConfig,
}

/// The network.
#[derive(Module, Debug)]
pub struct MlpNet {
    hidden: Linear,
    drop: Dropout,
    out: Linear,
    l2: f64,
}

impl Network for MlpNet {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = relu(self.hidden.forward(x.flatten(1, 2)));
        self.out.forward(dropout(&self.drop, x))
    }

    fn penalty(&self) -> Option<Tensor<1>> {
        l2(&self.hidden.weight, self.l2)
    }
}

/// Marker for [`Architecture`].
#[derive(Debug, Clone, Copy)]
pub struct Mlp;

impl Architecture for Mlp {
    const NAME: &'static str = "mlp";
    const ABOUT: &'static str = "MLP on standardised dosages (the worked example of adding a model)";
    const TUNING_SPACE: Option<&'static str> = Some(include_str!("../tuning.toml"));
    type Config = MlpConfig;
    type Input = DosageEncoder;
    type Net = MlpNet;

    fn default_config() -> MlpConfig {
        MlpConfig::new()
    }

    fn check(c: &MlpConfig) -> Result<(), TrainError> {
        check_counts(&[("hidden", c.hidden)])?;
        rate("dropout", c.dropout)?;
        non_negative("l2", c.l2)?;
        Ok(c.train.check()?)
    }

    fn train_config(c: &MlpConfig) -> &TrainConfig {
        &c.train
    }

    fn train_config_mut(c: &mut MlpConfig) -> &mut TrainConfig {
        &mut c.train
    }

    fn fit_input(_c: &MlpConfig, ctx: &InputContext<'_>) -> Result<DosageEncoder, TrainError> {
        Ok(DosageEncoder::fit(ctx.geno, ctx.train_rows, Scaling::Standardised))
    }

    fn encode(input: &DosageEncoder, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        encode_dosage(Self::NAME, input, geno, rows)
    }

    fn input_shape(input: &DosageEncoder) -> (usize, usize) {
        (1, input.n_markers())
    }

    fn build(c: &MlpConfig, (channels, length): (usize, usize), outputs: usize, device: &Device) -> MlpNet {
        MlpNet {
            hidden: linear(channels * length, c.hidden, WeightInit::GlorotUniform, device),
            drop: DropoutConfig::new(c.dropout).init(),
            out: linear(c.hidden, outputs, WeightInit::GlorotUniform, device),
            l2: c.l2,
        }
    }

    fn marker_saliency(input: &DosageEncoder, grad: &[f32], n: usize) -> Vec<f32> {
        dosage_saliency(input, grad, n)
    }

    fn describe_input(input: &DosageEncoder) -> serde_json::Value {
        describe_dosage(input)
    }
}

#[cfg(test)]
mod tests {
    use genopred_train::conformance;

    use super::*;

    /// M markers: hidden 64·M + 64, output 64 + 1. Total 64·M + 129: 78,529 for M = 1,225 (wheat599).
    #[test]
    fn parameter_count_and_shape() {
        let device = Device::flex();
        conformance::check_param_count::<Mlp>(&MlpConfig::new(), (1, 1225), 78_529, &device);
        conformance::check_output_shape::<Mlp>(&MlpConfig::new(), (1, 1225), &device);
    }

    #[test]
    fn conformance() {
        let device = Device::flex();
        let q = MlpConfig::new().with_train(MlpConfig::new().train.with_epochs(40).with_patience(0));
        conformance::check_determinism::<Mlp>(&q.clone().with_train(q.train.clone().with_epochs(3)), &device, 80);
        conformance::check_loss_falls::<Mlp>(&q, &device, 80);
        conformance::check_round_trip::<Mlp>(&q.clone().with_train(q.train.clone().with_epochs(2)), &device, 80);
        // burn's ndarray backend is deprecated for running models, but it is a second CPU
        // backend that builds everywhere: saved models must load on it.
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        conformance::check_cross_backend::<Mlp>(
            &q.clone().with_train(q.train.clone().with_epochs(2)),
            &device,
            &ndarray,
            80,
        );
    }
}
