//! DeepGS (Ma et al. 2018, *Planta* 248:1307) on burn. See this crate's README for the layer
//! table, the original's code and where we differ.
//!
//! `[batch, 1, markers]` → Conv1d(8, k=18, stride 1, valid) → ReLU → MaxPool(4, stride 4) →
//! Dropout(0.2) → Flatten → Dense(32) → Sigmoid → Dropout(0.1) → Dense(1) → Dropout(0.05).

use burn::nn::conv::Conv1d;
use burn::nn::conv::Conv1dConfig;
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use genopred_core::GenotypeMatrix;
use genopred_core::check::{positive, rate};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_train::dropout;
use genopred_train::init::{WeightInit, conv1d, linear};
use genopred_train::inputs::{check_counts, describe_dosage, dosage_saliency, encode_dosage};
use genopred_train::{Architecture, Encoded, InputContext, Monitor, Network, OptimizerKind, TrainConfig, TrainError};

/// DeepGS hyperparameters; the defaults are the DeepGS R package's (v1.2, `DeepGS()` and its
/// documented example).
#[derive(Config, Debug)]
pub struct DeepGsConfig {
    /// Convolution filters.
    #[config(default = 8)]
    pub filters: usize,
    /// Convolution kernel width (markers).
    #[config(default = 18)]
    pub kernel: usize,
    /// Convolution stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Max-pooling width and stride.
    #[config(default = 4)]
    pub pool: usize,
    /// Hidden dense units (sigmoid).
    #[config(default = 32)]
    pub hidden: usize,
    /// Dropout after pooling.
    #[config(default = 0.2)]
    pub dropout_conv: f64,
    /// Dropout after the hidden layer.
    #[config(default = 0.1)]
    pub dropout_hidden: f64,
    /// Dropout on the single output unit (training only), as the original.
    #[config(default = 0.05)]
    pub dropout_output: f64,
    /// Weights start uniform within ±this (`mx.init.uniform(0.01)`); biases start at 0.
    #[config(default = 0.01)]
    pub init_limit: f64,
    /// Marker values fed to the network: `raw` dosage (0/1/2; the original feeds its marker matrix
    /// unscaled), `allele_fraction` (dosage / 2: the 0/1 the original was given for its DArT
    /// wheat data, where 0/2 would take about four times its first SGD step), `centred` or
    /// `standardised`. Missing calls take the training mean.
    #[config(default = "Scaling::Raw")]
    pub scaling: Scaling,
    /// Training loop settings.
    #[config(default = "deepgs_train()")]
    pub train: TrainConfig,
}

/// The original's training settings: SGD lr 0.01, momentum 0.5, wd 1e-5, batch 30, 6000 epochs,
/// early stopping on validation MAE with patience 600, last weights kept.
pub fn deepgs_train() -> TrainConfig {
    TrainConfig::new()
        .with_optimizer(OptimizerKind::Sgd)
        .with_learning_rate(0.01)
        .with_momentum(0.5)
        .with_weight_decay(1e-5)
        .with_loss_scale(0.5)
        .with_batch_size(30)
        .with_epochs(6000)
        .with_monitor(Monitor::ValMae)
        .with_patience(600)
        .with_restore_best(false)
}

/// The DeepGS network.
#[derive(Module, Debug)]
pub struct DeepGsNet {
    conv: Conv1d,
    pool: MaxPool1d,
    drop_conv: Dropout,
    hidden: Linear,
    drop_hidden: Dropout,
    out: Linear,
    drop_output: Dropout,
}

impl Network for DeepGsNet {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = self.pool.forward(relu(genopred_train::layers::conv1d(&self.conv, x)));
        let x = dropout(&self.drop_conv, x).flatten(1, 2);
        let x = dropout(&self.drop_hidden, sigmoid(self.hidden.forward(x)));
        dropout(&self.drop_output, self.out.forward(x))
    }
}

/// Length after the valid convolution and the pooling, or `None` when there are too few markers.
pub fn pooled_length(config: &DeepGsConfig, markers: usize) -> Option<usize> {
    let conv = markers.checked_sub(config.kernel)? / config.stride + 1;
    Some(conv.checked_sub(config.pool)? / config.pool + 1)
}

/// Marker for [`Architecture`].
#[derive(Debug, Clone, Copy)]
pub struct DeepGs;

impl Architecture for DeepGs {
    const NAME: &'static str = "deepgs";
    const ABOUT: &'static str = "DeepGS (Ma et al. 2018): one-layer CNN on marker values";
    const TUNING_SPACE: Option<&'static str> = Some(include_str!("../tuning.toml"));
    type Config = DeepGsConfig;
    type Input = DosageEncoder;
    type Net = DeepGsNet;

    fn default_config() -> DeepGsConfig {
        DeepGsConfig::new()
    }

    fn check(c: &DeepGsConfig) -> Result<(), TrainError> {
        check_counts(&[
            ("filters", c.filters),
            ("kernel", c.kernel),
            ("stride", c.stride),
            ("pool", c.pool),
            ("hidden", c.hidden),
        ])?;
        rate("dropout_conv", c.dropout_conv)?;
        rate("dropout_hidden", c.dropout_hidden)?;
        rate("dropout_output", c.dropout_output)?;
        positive("init_limit", c.init_limit)?;
        Ok(c.train.check()?)
    }

    fn train_config(c: &DeepGsConfig) -> &TrainConfig {
        &c.train
    }

    fn train_config_mut(c: &mut DeepGsConfig) -> &mut TrainConfig {
        &mut c.train
    }

    fn fit_input(c: &DeepGsConfig, ctx: &InputContext<'_>) -> Result<DosageEncoder, TrainError> {
        let m = ctx.geno.n_markers();
        if pooled_length(c, m).is_none() {
            return Err(TrainError::Data(format!(
                "deepgs needs at least {} markers (kernel {} + pool {} - 1); {m} passed QC",
                c.kernel + c.pool - 1,
                c.kernel,
                c.pool
            )));
        }
        Ok(DosageEncoder::fit(ctx.geno, ctx.train_rows, c.scaling))
    }

    fn encode(input: &DosageEncoder, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        encode_dosage(Self::NAME, input, geno, rows)
    }

    fn input_shape(input: &DosageEncoder) -> (usize, usize) {
        (1, input.n_markers())
    }

    fn build(c: &DeepGsConfig, (channels, length): (usize, usize), outputs: usize, device: &Device) -> DeepGsNet {
        let init = WeightInit::Uniform { limit: c.init_limit };
        let pooled = pooled_length(c, length).unwrap_or(1);
        DeepGsNet {
            conv: conv1d(Conv1dConfig::new(channels, c.filters, c.kernel).with_stride(c.stride), init, device),
            pool: MaxPool1dConfig::new(c.pool).with_stride(c.pool).init(),
            drop_conv: DropoutConfig::new(c.dropout_conv).init(),
            hidden: linear(c.filters * pooled, c.hidden, init, device),
            drop_hidden: DropoutConfig::new(c.dropout_hidden).init(),
            out: linear(c.hidden, outputs, init, device),
            drop_output: DropoutConfig::new(c.dropout_output).init(),
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

    /// Worked by hand from the layer table, for wheat599's 1,225 markers:
    /// conv 8·1·18 + 8 = 152; conv length 1225 − 18 + 1 = 1208; pooled ⌊(1208 − 4)/4⌋ + 1 = 302;
    /// dense 8·302·32 + 32 = 77,344; output 32 + 1 = 33. Total 77,529.
    #[test]
    fn parameter_count_and_shape() {
        let device = Device::flex();
        conformance::check_param_count::<DeepGs>(&DeepGsConfig::new(), (1, 1225), 77_529, &device);
        conformance::check_output_shape::<DeepGs>(&DeepGsConfig::new(), (1, 1225), &device);
        // 100 markers: conv 83, pooled 20; 152 + 8·20·32 + 32 + 33 = 5,337.
        conformance::check_param_count::<DeepGs>(&DeepGsConfig::new(), (1, 100), 5_337, &device);
    }

    fn quick() -> DeepGsConfig {
        DeepGsConfig::new().with_train(deepgs_train().with_epochs(300).with_patience(0).with_learning_rate(0.1))
    }

    #[test]
    fn conformance() {
        let device = Device::flex();
        conformance::check_determinism::<DeepGs>(&quick().with_train(quick().train.with_epochs(3)), &device, 120);
        conformance::check_loss_falls::<DeepGs>(&quick(), &device, 120);
        conformance::check_round_trip::<DeepGs>(&quick().with_train(quick().train.with_epochs(2)), &device, 120);
        // burn's ndarray backend is deprecated for running models, but it is a second CPU
        // backend that builds everywhere: saved models must load on it.
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        conformance::check_cross_backend::<DeepGs>(
            &quick().with_train(quick().train.with_epochs(2)),
            &device,
            &ndarray,
            120,
        );
    }

    #[test]
    fn too_few_markers_is_a_clear_error() {
        let (geno, _) = conformance::simulated(20, 15, 1);
        let rows: Vec<usize> = (0..20).collect();
        let ctx = InputContext { geno: &geno, train_rows: &rows, genotyped_rows: &rows };
        let e = DeepGs::fit_input(&DeepGsConfig::new(), &ctx).unwrap_err().to_string();
        assert!(e.contains("at least 21 markers"), "{e}");
    }
}
