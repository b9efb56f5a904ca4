//! What a model crate implements: its network ([`Network`]) and its architecture ([`Architecture`]:
//! config, fitted input encoding, network construction). See CONTRIBUTING.md, "Adding a model".

use burn::module::Module;
use burn::prelude::*;
use genopred_core::GenotypeMatrix;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::TrainConfig;
use crate::error::TrainError;

/// A network mapping `[batch, channels, length]` inputs to `[batch, 1]` predictions.
pub trait Network: Module + burn::module::ModuleDisplay + 'static {
    /// The forward pass. Dropout and batch norm train only when the module is in training mode
    /// and its tensors are on an autodiff device (burn's rule).
    fn forward(&self, x: Tensor<3>) -> Tensor<2>;

    /// Keras-style regularisation penalties (Σ λ·w²) added to the training loss, if any.
    fn penalty(&self) -> Option<Tensor<1>> {
        None
    }
}

/// A batch of encoded inputs, `n × channels × length`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Values, sample-major.
    pub data: Vec<f32>,
    /// Number of samples.
    pub n: usize,
    /// Channels per sample.
    pub channels: usize,
    /// Length per channel.
    pub length: usize,
}

impl Encoded {
    /// Values per sample.
    pub fn width(&self) -> usize {
        self.channels * self.length
    }
}

/// Inputs the trainer reads a batch at a time: an [`Encoded`] matrix held whole, or an encoding
/// applied to each batch as it is read (so that a large encoded input — DLGWAS's one-hot is 16
/// bytes per genotype — never exists for the whole training set).
pub trait Inputs {
    /// Number of samples.
    fn n(&self) -> usize;
    /// `(channels, length)` per sample.
    fn shape(&self) -> (usize, usize);
    /// The values of samples `rows` (indices in `0..n`), in that order, sample-major.
    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>, TrainError>;
}

impl Inputs for Encoded {
    fn n(&self) -> usize {
        self.n
    }

    fn shape(&self) -> (usize, usize) {
        (self.channels, self.length)
    }

    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>, TrainError> {
        let w = self.width();
        let mut data = Vec::with_capacity(rows.len() * w);
        for &r in rows {
            data.extend_from_slice(&self.data[r * w..(r + 1) * w]);
        }
        Ok(data)
    }
}

/// What an input encoding may be fitted on.
#[derive(Debug, Clone, Copy)]
pub struct InputContext<'a> {
    /// Genotypes (markers already reduced to the fold's QC-kept set).
    pub geno: &'a GenotypeMatrix,
    /// The rows the network is trained on (the fit part of the training fold).
    pub train_rows: &'a [usize],
    /// Every genotyped row, phenotypes unseen; only for encodings documented to use them.
    pub genotyped_rows: &'a [usize],
}

/// A neural architecture: one model crate implements this and adds one line to the CLI registry.
pub trait Architecture: 'static {
    /// Name used with `--model`.
    const NAME: &'static str;
    /// One line for `genopred models`: the model, its paper and what it reads.
    const ABOUT: &'static str;
    /// Hyperparameters (a burn `#[derive(Config)]`), with the original's values as defaults.
    type Config: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    /// The fitted input encoding (means, scalings, PCA loadings ...), saved with a trained model.
    type Input: Clone + std::fmt::Debug + Serialize + DeserializeOwned;
    /// The network.
    type Net: Network;
    /// Whether the encoding replaces a missing call by the training mean dosage. One-hot
    /// encodings with a "missing" class say false (see [`genopred_core::Predictor::mean_imputes_missing`]).
    const MEAN_IMPUTES_MISSING: bool = true;
    /// The shipped search space for `--tune default` (TOML in the config's layout, see
    /// [`genopred_core::tuning`]), with where its ranges come from in its comments.
    const TUNING_SPACE: Option<&'static str> = None;

    /// The defaults.
    fn default_config() -> Self::Config;
    /// The defaults a config file's keys are merged over, given those keys (`file`, a JSON
    /// object): a model whose variants have defaults of their own picks them here (DNNGP's
    /// `variant = "v3"`). Default: [`Architecture::default_config`].
    fn defaults_for(_file: &serde_json::Value) -> Self::Config {
        Self::default_config()
    }
    /// Checks every value's range (the trainer's settings included).
    fn check(config: &Self::Config) -> Result<(), TrainError>;
    /// The training settings inside the config.
    fn train_config(config: &Self::Config) -> &TrainConfig;
    /// The same, to change (shorter schedules for tests and benches).
    fn train_config_mut(config: &mut Self::Config) -> &mut TrainConfig;
    /// The configurations the benches and the backend parity test exercise, with their labels:
    /// the defaults, plus any variant whose layers differ (DNNGP's v3 head).
    fn variants() -> Vec<(String, Self::Config)> {
        vec![(Self::NAME.to_string(), Self::default_config())]
    }
    /// Fits the input encoding.
    fn fit_input(config: &Self::Config, context: &InputContext<'_>) -> Result<Self::Input, TrainError>;
    /// Encodes `rows` of `geno` with a fitted encoding.
    fn encode(input: &Self::Input, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError>;
    /// `(channels, length)` of the encoded input.
    fn input_shape(input: &Self::Input) -> (usize, usize);
    /// Builds a freshly initialised network for inputs of `shape` with `outputs` outputs (the
    /// width of its last layer: 1 for one trait in one environment; one per environment for a
    /// G×E fit, one per trait for several), drawing from `device`'s RNG. With `outputs` = 1 the
    /// draws are the single-output network's, so a one-output fit is unchanged by the width.
    fn build(config: &Self::Config, shape: (usize, usize), outputs: usize, device: &Device) -> Self::Net;
    /// Maps `∂ prediction / ∂ input` (`n × channels × length`, the encoded input's layout) to
    /// per-marker saliency `|∂ prediction / ∂ dosage|` (`n × markers`). The default takes, per
    /// marker, the largest absolute gradient over the channels (DLGWAS's rule), for inputs whose
    /// length is the marker count and whose value moves one for one with the dosage. Encodings
    /// that rescale dosages or project them (PCA) override it with the exact chain rule.
    fn marker_saliency(input: &Self::Input, grad: &[f32], n: usize) -> Vec<f32> {
        let (channels, length) = Self::input_shape(input);
        crate::saliency::max_over_channels(grad, n, channels, length)
    }
    /// What to report about the fitted encoding (components kept, which rows PCA saw ...).
    fn describe_input(_input: &Self::Input) -> serde_json::Value {
        serde_json::Value::Null
    }
}
