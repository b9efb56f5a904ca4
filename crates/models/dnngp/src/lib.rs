//! DNNGP (Wang et al. 2023, *Molecular Plant* 16:279) on burn. See this crate's README for the
//! layer tables of both variants, the original's code and where we differ.
//!
//! Input: principal-component scores of the centred genotype matrix, `[batch, 1, n_pc]`.

use burn::nn::conv::Conv1d;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use genopred_core::GenotypeMatrix;
use genopred_core::check::{fraction, non_negative, positive, positive_fraction, rate};
use genopred_core::encoding::{Pca, PcaComponents};
use genopred_train::init::{WeightInit, conv1d_same, l2, linear, sum_penalties};
use genopred_train::inputs::{check_counts, check_markers};
use genopred_train::{Architecture, Encoded, InputContext, Network, PlateauMonitor, TrainConfig, TrainError};
use genopred_train::{batch_norm, conv1d, dropout};
use serde::{Deserialize, Serialize};

/// Which DNNGP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The network of the paper's figure: three convolutions, one batch norm, Dense(1).
    Paper,
    /// The released Keras model (v3): batch norm after every convolution, L2 penalties, a
    /// Dense(3) → Dropout(0.3) head.
    V3,
}

/// Which genotypes the PCA is fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcaFit {
    /// The training rows only (default): nothing of the test fold shapes the input.
    Train,
    /// Every genotyped line, training and prediction sets together, as the DNNGP manual does
    /// (genotypes only, never phenotypes).
    All,
}

/// DNNGP hyperparameters; defaults from the paper and the released v3 model.
#[derive(Config, Debug)]
pub struct DnngpConfig {
    /// `paper` or `v3`.
    #[config(default = "Variant::Paper")]
    pub variant: Variant,
    /// `train` or `all`.
    #[config(default = "PcaFit::Train")]
    pub pca_fit: PcaFit,
    /// Keep the fewest components explaining this fraction of the variance ...
    #[config(default = 0.95)]
    pub pca_variance: f64,
    /// ... or exactly this many (0 = use `pca_variance`).
    #[config(default = 0)]
    pub pca_components: usize,
    /// Filters of every convolution.
    #[config(default = 64)]
    pub filters: usize,
    /// Kernel of every convolution (padding "same").
    #[config(default = 4)]
    pub kernel: usize,
    /// Dropout after the first convolution.
    #[config(default = 0.5)]
    pub dropout1: f64,
    /// Dropout after the second convolution.
    #[config(default = 0.5)]
    pub dropout2: f64,
    /// v3 only: units of the linear dense layer before the output.
    #[config(default = 3)]
    pub head_units: usize,
    /// v3 only: dropout after that layer.
    #[config(default = 0.3)]
    pub head_dropout: f64,
    /// v3 only: L2 on the three convolution kernels.
    #[config(default = "[0.01, 1e-3, 1e-3]")]
    pub l2_kernel: [f64; 3],
    /// v3 only: L2 on the three convolution biases.
    #[config(default = "[0.1, 1e-5, 1e-4]")]
    pub l2_bias: [f64; 3],
    /// Convolution weights start TruncatedNormal(0, this); dense layers GlorotUniform; biases 0.
    #[config(default = 0.05)]
    pub init_std: f64,
    /// Batch-norm momentum in Keras's convention (weight of the old running value).
    #[config(default = 0.99)]
    pub bn_momentum: f64,
    /// Batch-norm epsilon (Keras default).
    #[config(default = 1e-3)]
    pub bn_epsilon: f64,
    /// Training loop settings.
    #[config(default = "dnngp_train()")]
    pub train: TrainConfig,
}

/// Adam (β 0.9/0.999, ε 1e-7) lr 0.001, MSE, batch 64, up to 100 epochs, early stopping on the
/// validation loss with patience 25 and the best weights restored, ReduceLROnPlateau on the
/// validation loss (factor 0.1, patience 10, floor 1e-5).
pub fn dnngp_train() -> TrainConfig {
    TrainConfig::new()
        .with_learning_rate(1e-3)
        .with_epsilon(1e-7)
        .with_batch_size(64)
        .with_epochs(100)
        .with_patience(25)
        .with_restore_best(true)
        .with_plateau_factor(0.1)
        .with_plateau_patience(10)
        .with_min_learning_rate(1e-5)
}

/// The released code's (v3) training: as [`dnngp_train`], but ReduceLROnPlateau watches the
/// *training* loss (Keras's `monitor='loss'`) with early stopping's patience, 25.
pub fn dnngp_v3_train() -> TrainConfig {
    dnngp_train().with_plateau_monitor(PlateauMonitor::TrainLoss).with_plateau_patience(25)
}

/// The released model's defaults: the v3 network and its training ([`dnngp_v3_train`]).
pub fn dnngp_v3() -> DnngpConfig {
    DnngpConfig::new().with_variant(Variant::V3).with_train(dnngp_v3_train())
}

/// The DNNGP network (both variants; the v3-only layers are `None` in the paper variant).
#[derive(Module, Debug)]
pub struct DnngpNet {
    conv1: Conv1d,
    drop1: Dropout,
    bn1: BatchNorm,
    conv2: Conv1d,
    drop2: Dropout,
    bn2: Option<BatchNorm>,
    conv3: Conv1d,
    bn3: Option<BatchNorm>,
    head: Option<Linear>,
    head_drop: Option<Dropout>,
    out: Linear,
    l2_kernel: [f64; 3],
    l2_bias: [f64; 3],
}

impl Network for DnngpNet {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = batch_norm(&self.bn1, dropout(&self.drop1, relu(conv1d(&self.conv1, x))));
        let mut x = dropout(&self.drop2, relu(conv1d(&self.conv2, x)));
        if let Some(bn) = &self.bn2 {
            x = batch_norm(bn, x);
        }
        let mut x = relu(conv1d(&self.conv3, x));
        if let Some(bn) = &self.bn3 {
            x = batch_norm(bn, x);
        }
        let mut x: Tensor<2> = x.flatten(1, 2);
        if let (Some(head), Some(drop)) = (&self.head, &self.head_drop) {
            x = dropout(drop, head.forward(x));
        }
        self.out.forward(x)
    }

    fn penalty(&self) -> Option<Tensor<1>> {
        let convs = [&self.conv1, &self.conv2, &self.conv3];
        let kernels = convs.iter().zip(self.l2_kernel).map(|(c, k)| l2(&c.weight, k));
        let biases = convs.iter().zip(self.l2_bias).map(|(c, b)| c.bias.as_ref().and_then(|p| l2(p, b)));
        sum_penalties(kernels.chain(biases))
    }
}

/// The fitted input: the PCA and which rows it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnngpInput {
    /// Loadings and centring.
    pub pca: Pca,
    /// `train` or `all`.
    pub fitted_on: PcaFit,
    /// How many rows the PCA saw.
    pub rows: usize,
}

/// Marker for [`Architecture`].
#[derive(Debug, Clone, Copy)]
pub struct Dnngp;

impl Architecture for Dnngp {
    const NAME: &'static str = "dnngp";
    const ABOUT: &'static str = "DNNGP (Wang et al. 2023): CNN on principal-component scores";
    const TUNING_SPACE: Option<&'static str> = Some(include_str!("../tuning.toml"));
    type Config = DnngpConfig;
    type Input = DnngpInput;
    type Net = DnngpNet;

    fn default_config() -> DnngpConfig {
        DnngpConfig::new()
    }

    /// `variant = "v3"` in a config file brings the released code's training schedule
    /// ([`dnngp_v3_train`]) as the defaults its other keys override.
    fn defaults_for(file: &serde_json::Value) -> DnngpConfig {
        if file.get("variant").and_then(|v| v.as_str()) == Some("v3") { dnngp_v3() } else { DnngpConfig::new() }
    }

    fn check(c: &DnngpConfig) -> Result<(), TrainError> {
        check_counts(&[("filters", c.filters), ("kernel", c.kernel), ("head_units", c.head_units)])?;
        positive_fraction("pca_variance", c.pca_variance)?;
        rate("dropout1", c.dropout1)?;
        rate("dropout2", c.dropout2)?;
        rate("head_dropout", c.head_dropout)?;
        fraction("bn_momentum", c.bn_momentum)?;
        positive("bn_epsilon", c.bn_epsilon)?;
        for (name, values) in [("l2_kernel", &c.l2_kernel), ("l2_bias", &c.l2_bias)] {
            for (i, &v) in values.iter().enumerate() {
                non_negative(&format!("{name}[{i}]"), v)?;
            }
        }
        positive("init_std", c.init_std)?;
        Ok(c.train.check()?)
    }

    fn train_config(c: &DnngpConfig) -> &TrainConfig {
        &c.train
    }

    fn train_config_mut(c: &mut DnngpConfig) -> &mut TrainConfig {
        &mut c.train
    }

    /// The paper's network and the v3 head: benches and the backend parity test run both.
    fn variants() -> Vec<(String, DnngpConfig)> {
        vec![("dnngp".into(), DnngpConfig::new()), ("dnngp_v3".into(), dnngp_v3())]
    }

    fn fit_input(c: &DnngpConfig, ctx: &InputContext<'_>) -> Result<DnngpInput, TrainError> {
        let rows = match c.pca_fit {
            PcaFit::Train => ctx.train_rows,
            PcaFit::All => ctx.genotyped_rows,
        };
        let components = match c.pca_components {
            0 => PcaComponents::VarianceFraction(c.pca_variance),
            k => PcaComponents::Count(k),
        };
        let pca = Pca::fit(ctx.geno, rows, components)?;
        Ok(DnngpInput { pca, fitted_on: c.pca_fit, rows: rows.len() })
    }

    fn encode(input: &DnngpInput, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        check_markers(Self::NAME, input.pca.centre.n_markers(), geno)?;
        let scores = input.pca.transform(geno, rows);
        let k = input.pca.n_components;
        let mut data = Vec::with_capacity(rows.len() * k);
        for i in 0..rows.len() {
            for c in 0..k {
                data.push(scores[(i, c)] as f32);
            }
        }
        Ok(Encoded { data, n: rows.len(), channels: 1, length: k })
    }

    fn input_shape(input: &DnngpInput) -> (usize, usize) {
        (1, input.pca.n_components)
    }

    fn build(c: &DnngpConfig, (channels, length): (usize, usize), outputs: usize, device: &Device) -> DnngpNet {
        let conv_init = WeightInit::TruncatedNormal { std: c.init_std };
        let f = c.filters;
        let bn = || BatchNormConfig::new(f).with_momentum(1.0 - c.bn_momentum).with_epsilon(c.bn_epsilon).init(device);
        let v3 = c.variant == Variant::V3;
        DnngpNet {
            conv1: conv1d_same(channels, f, c.kernel, conv_init, device),
            drop1: DropoutConfig::new(c.dropout1).init(),
            bn1: bn(),
            conv2: conv1d_same(f, f, c.kernel, conv_init, device),
            drop2: DropoutConfig::new(c.dropout2).init(),
            bn2: v3.then(bn),
            conv3: conv1d_same(f, f, c.kernel, conv_init, device),
            bn3: v3.then(bn),
            head: v3.then(|| linear(f * length, c.head_units, WeightInit::GlorotUniform, device)),
            head_drop: v3.then(|| DropoutConfig::new(c.head_dropout).init()),
            out: linear(if v3 { c.head_units } else { f * length }, outputs, WeightInit::GlorotUniform, device),
            l2_kernel: if v3 { c.l2_kernel } else { [0.0; 3] },
            l2_bias: if v3 { c.l2_bias } else { [0.0; 3] },
        }
    }

    /// The scores are `s = (x − μ) L`, so `∂ŷ/∂x_j = Σ_c ∂ŷ/∂s_c · L_jc`, exactly: the
    /// projection is linear. Saliency is its absolute value.
    fn marker_saliency(input: &DnngpInput, grad: &[f32], n: usize) -> Vec<f32> {
        let k = input.pca.n_components;
        let m = input.pca.centre.n_markers();
        let loadings = &input.pca.loadings;
        let mut out = vec![0f32; n * m];
        for i in 0..n {
            let g = &grad[i * k..(i + 1) * k];
            for j in 0..m {
                let d: f64 = loadings[j * k..(j + 1) * k].iter().zip(g).map(|(l, &gc)| l * f64::from(gc)).sum();
                out[i * m + j] = d.abs() as f32;
            }
        }
        out
    }

    fn describe_input(input: &DnngpInput) -> serde_json::Value {
        serde_json::json!({
            "encoding": "pca",
            "components": input.pca.n_components,
            "explained_variance": input.pca.explained.iter().sum::<f64>(),
            "pca_fit": input.fitted_on,
            "pca_rows": input.rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use genopred_train::conformance;

    use super::*;

    /// Paper variant, P components: conv1 64·1·4 + 64 = 320; batch norm 4·64 = 256 (γ, β and the
    /// two running statistics, as Keras's total); conv2 and conv3 64·64·4 + 64 = 16,448 each;
    /// dense 64·P + 1. Total 33,473 + 64·P: 52,673 for P = 300.
    ///
    /// v3: conv1 320; three batch norms 768; conv2, conv3 32,896; Dense(3) 64·P·3 + 3; Dense(1)
    /// 3 + 1. Total 33,991 + 192·P: 91,591 for P = 300.
    #[test]
    fn parameter_count_and_shape() {
        let device = Device::flex();
        let paper = DnngpConfig::new();
        let v3 = DnngpConfig::new().with_variant(Variant::V3);
        conformance::check_param_count::<Dnngp>(&paper, (1, 300), 52_673, &device);
        conformance::check_param_count::<Dnngp>(&v3, (1, 300), 91_591, &device);
        conformance::check_output_shape::<Dnngp>(&paper, (1, 300), &device);
        conformance::check_output_shape::<Dnngp>(&v3, (1, 17), &device);
    }

    fn quick(variant: Variant) -> DnngpConfig {
        DnngpConfig::new()
            .with_variant(variant)
            .with_train(dnngp_train().with_epochs(40).with_patience(0).with_batch_size(16))
    }

    #[test]
    fn conformance_paper() {
        let device = Device::flex();
        let q = quick(Variant::Paper);
        conformance::check_determinism::<Dnngp>(&q.clone().with_train(q.train.clone().with_epochs(3)), &device, 60);
        conformance::check_loss_falls::<Dnngp>(&q, &device, 60);
        conformance::check_round_trip::<Dnngp>(&q.clone().with_train(q.train.clone().with_epochs(2)), &device, 60);
        // burn's ndarray backend is deprecated for running models, but it is a second CPU
        // backend that builds everywhere: saved models must load on it.
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        conformance::check_cross_backend::<Dnngp>(
            &q.clone().with_train(q.train.clone().with_epochs(2)),
            &device,
            &ndarray,
            60,
        );
    }

    #[test]
    fn conformance_v3() {
        let device = Device::flex();
        let q = quick(Variant::V3);
        conformance::check_determinism::<Dnngp>(&q.clone().with_train(q.train.clone().with_epochs(3)), &device, 60);
        conformance::check_loss_falls::<Dnngp>(&q, &device, 60);
        conformance::check_round_trip::<Dnngp>(&q.clone().with_train(q.train.clone().with_epochs(2)), &device, 60);
    }

    #[test]
    fn variant_v3_in_a_file_brings_the_released_schedule() {
        let dir = std::env::temp_dir().join(format!("genopred-dnngp-v3-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let resolve = |text: &str| {
            let path = dir.join("c.toml");
            std::fs::write(&path, text).unwrap();
            genopred_train::resolve_arch_config::<Dnngp>(Some(&path)).unwrap()
        };
        let v3 = resolve("variant = \"v3\"\n");
        assert_eq!(v3.variant, Variant::V3);
        assert_eq!(v3.train.plateau_monitor, PlateauMonitor::TrainLoss);
        assert_eq!((v3.train.plateau_patience, v3.train.patience), (25, 25));
        assert_eq!(
            (v3.train.plateau_factor, v3.train.plateau_min_delta, v3.train.min_learning_rate),
            (0.1, 1e-4, 1e-5)
        );
        // The file's own keys still win; the paper variant keeps its schedule.
        let mine = resolve("variant = \"v3\"\n[train]\nplateau_patience = 7\n");
        assert_eq!((mine.train.plateau_patience, mine.train.plateau_monitor), (7, PlateauMonitor::TrainLoss));
        let paper = resolve("dropout2 = 0.3\n");
        assert_eq!((paper.variant, paper.train.plateau_monitor), (Variant::Paper, PlateauMonitor::Validation));
        assert_eq!(paper.train.plateau_patience, 10);
        let default = genopred_train::resolve_arch_config::<Dnngp>(None).unwrap();
        assert_eq!((default.variant, default.train.plateau_monitor), (Variant::Paper, PlateauMonitor::Validation));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pca_fit_all_sees_every_genotyped_row_but_no_phenotype() {
        let (geno, _) = conformance::simulated(40, 50, 2);
        let train: Vec<usize> = (0..30).collect();
        let all: Vec<usize> = (0..40).collect();
        let ctx = InputContext { geno: &geno, train_rows: &train, genotyped_rows: &all };
        let on_train = Dnngp::fit_input(&DnngpConfig::new(), &ctx).unwrap();
        let on_all = Dnngp::fit_input(&DnngpConfig::new().with_pca_fit(PcaFit::All), &ctx).unwrap();
        assert_eq!((on_train.rows, on_all.rows), (30, 40));
        assert_ne!(on_train.pca.centre.means, on_all.pca.centre.means);
        assert!(on_train.pca.n_components <= 29);
    }
}
