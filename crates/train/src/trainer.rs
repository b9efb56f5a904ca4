//! The training loop.

use burn::nn::loss::{MseLoss, Reduction};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use genopred_core::cv::{Purpose, derive_seed};
use genopred_core::{EpochRecord, FitObserver};
use rand::seq::SliceRandom;

use crate::arch::{Inputs, Network};
use crate::config::{LossKind, Monitor, OptimizerKind, PlateauMonitor, TrainConfig};
use crate::early_stopping::{EarlyStopping, Verdict};
use crate::error::TrainError;
use crate::head::{Side, Trainable};
use crate::plateau::ReduceLrOnPlateau;

/// Encoded inputs and (already scaled) targets of a training or validation set.
#[derive(Clone, Copy)]
pub struct TrainData<'a> {
    /// Inputs.
    pub x: &'a dyn Inputs,
    /// Targets, one per sample.
    pub y: &'a [f32],
    /// Covariates and output weights per sample, for a network with a covariate head or
    /// several outputs ([`crate::head`]); `None` for one output and no covariates.
    pub side: Option<Side<'a>>,
}

impl<'a> TrainData<'a> {
    /// Inputs and targets without side inputs.
    pub fn new(x: &'a dyn Inputs, y: &'a [f32]) -> Self {
        TrainData { x, y, side: None }
    }
}

impl std::fmt::Debug for TrainData<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainData").field("n", &self.x.n()).field("shape", &self.x.shape()).finish()
    }
}

/// What a training run is called and who follows it, beside its data and settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainRun<'a> {
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// Name in error messages and progress (the model's name).
    pub label: &'a str,
    /// Told when training starts, after each epoch and when it ends.
    pub observer: &'a dyn FitObserver,
    /// `Some(seed)` when the network draws from burn's device RNG in a training forward pass
    /// (burn's own layers with dropout: `MultiHeadAttention`, `Dropout::forward`, ...; see
    /// [`crate::device_draws`]). Each step's forward pass then runs under
    /// [`crate::predictor::device_rng_lock`] with the device RNG seeded from `seed`, the epoch and
    /// the batch, so its draws depend on nothing else that runs in the process (other folds of
    /// `--jobs`, for one). `None`: the forward pass draws nothing from it and runs unlocked.
    pub device_draws: Option<u64>,
}

/// A trained network and how training went.
#[derive(Debug)]
pub struct Outcome<N> {
    /// The network to predict with (validation mode, no autodiff).
    pub net: N,
    /// One record per epoch run.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights `net` holds.
    pub used_epoch: usize,
    /// Best monitored validation value, if there was a validation set.
    pub best_value: Option<f64>,
    /// Whether early stopping ended training before `epochs`.
    pub stopped_early: bool,
}

/// The optimiser `cfg` asks for.
pub fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let decay = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    match cfg.optimizer {
        OptimizerKind::Adam => AdamConfig::new()
            .with_beta_1(cfg.beta_1 as f32)
            .with_beta_2(cfg.beta_2 as f32)
            .with_epsilon(cfg.epsilon as f32)
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Sgd => {
            SgdConfig::new()
                .with_momentum((cfg.momentum > 0.0).then(|| {
                    MomentumConfig::new().with_momentum(cfg.momentum).with_dampening(0.0).with_nesterov(false)
                }))
                .with_weight_decay(decay)
                .init()
        }
    }
}

/// Samples `rows` of `x` as one `[rows, channels, length]` tensor on `device` (a training batch).
pub fn batch_tensor(x: &dyn Inputs, rows: &[usize], device: &Device) -> Result<Tensor<3>, TrainError> {
    let (channels, length) = x.shape();
    let data = x.gather(rows)?;
    if data.len() != rows.len() * channels * length {
        return Err(TrainError::Usage(format!(
            "a batch of {} samples of shape {:?} came with {} values",
            rows.len(),
            (channels, length),
            data.len()
        )));
    }
    Ok(Tensor::from_data(TensorData::new(data, [rows.len(), channels, length]), device))
}

/// One optimisation step on one batch (`x: [batch, channels, length]`, `y: [batch, 1]`, both on
/// the network's autodiff device): forward, data loss plus penalties, backward, update. Returns
/// the updated network, the batch's data loss and its objective (data loss plus penalties,
/// before the update: Keras's batch `loss`).
pub fn step<N: Network>(
    net: N,
    optim: &mut ModuleOptimizer,
    x: Tensor<3>,
    y: Tensor<2>,
    cfg: &TrainConfig,
    lr: f64,
) -> (N, Tensor<1>, Tensor<1>) {
    let out = Network::forward(&net, x);
    update(net, optim, out, y, cfg, lr)
}

/// [`step`] from the forward pass's output `out`: loss, backward, update.
fn update<N: Trainable>(
    net: N,
    optim: &mut ModuleOptimizer,
    out: Tensor<2>,
    y: Tensor<2>,
    cfg: &TrainConfig,
    lr: f64,
) -> (N, Tensor<1>, Tensor<1>) {
    let fit = data_loss(out, y, cfg);
    let loss = objective(fit.clone(), net.penalty());
    let grads = GradientsParams::from_grads(loss.backward(), &net);
    (optim.step(lr, net, grads), fit, loss.detach())
}

/// The objective training minimises and validation reports (Keras's `loss`): the data loss plus
/// the network's penalties. The one definition, for a tensor on the device (a training step) and
/// for a host value (the validation loss).
pub(crate) fn objective<T: std::ops::Add<Output = T>>(data_loss: T, penalty: Option<T>) -> T {
    match penalty {
        Some(p) => data_loss + p,
        None => data_loss,
    }
}

pub(crate) fn data_loss(out: Tensor<2>, y: Tensor<2>, cfg: &TrainConfig) -> Tensor<1> {
    let loss = match cfg.loss {
        LossKind::Mse => MseLoss::new().forward(out, y, Reduction::Mean),
        LossKind::L1 => (out - y).abs().mean(),
    };
    if cfg.loss_scale == 1.0 { loss } else { loss.mul_scalar(cfg.loss_scale) }
}

/// Input values (f32) an inference batch holds at most, 64 MiB: a batch's activations are a
/// multiple of its input (a convolution's im2col of kernel 18 holds 18 copies), so inputs of
/// 100,000+ markers are predicted a few dozen rows at a time.
const INFERENCE_BATCH_VALUES: usize = 16 << 20;

/// Rows per batch when predicting (validation passes, test folds, saliency): the training batch
/// size, raised to 256 for speed while 256 rows stay within [`INFERENCE_BATCH_VALUES`], and
/// otherwise to as many as fit in it. Every sample is predicted on its own (validation mode), so
/// the batch size never changes a prediction.
pub fn inference_batch(batch_size: usize, (channels, length): (usize, usize)) -> usize {
    batch_size.max((INFERENCE_BATCH_VALUES / (channels * length).max(1)).clamp(1, 256))
}

/// Predicts every sample of `x` with `net` (call on a validation-mode network), `batch` at a time.
pub fn predict_batches<N: Network>(
    net: &N,
    x: &dyn Inputs,
    batch: usize,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    predict_side_batches(net, x, None, batch, device)
}

/// [`predict_batches`] with side inputs: each sample's prediction through its output weights,
/// with its covariates.
pub fn predict_side_batches<N: Trainable>(
    net: &N,
    x: &dyn Inputs,
    side: Option<&Side<'_>>,
    batch: usize,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    if let Some(side) = side
        && !side.fits(x.n())
    {
        return Err(TrainError::Usage(format!("side inputs do not fit {} samples", x.n())));
    }
    let mut out = Vec::with_capacity(x.n());
    let rows: Vec<usize> = (0..x.n()).collect();
    for chunk in rows.chunks(batch.max(1)) {
        let pred = net.forward_batch(batch_tensor(x, chunk, device)?, side.map(|s| s.batch(chunk, device)));
        let values = pred
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Usage(format!("reading predictions back from the device: {e:?}")))?;
        out.extend(values);
    }
    Ok(out)
}

/// One validation pass's numbers.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// The objective (data loss plus penalties), Keras's `val_loss`.
    pub loss: f64,
    /// Mean squared error.
    pub mse: f64,
    /// Mean absolute error.
    pub mae: f64,
}

/// The validation pass of each epoch: predicts `valid` with `net` (validation mode) and scores it.
pub fn validation_scores<N: Trainable>(
    net: &N,
    valid: &TrainData<'_>,
    cfg: &TrainConfig,
    device: &Device,
) -> Result<Scores, TrainError> {
    let batch = inference_batch(cfg.batch_size, valid.x.shape());
    let pred = predict_side_batches(net, valid.x, valid.side.as_ref(), batch, device)?;
    let n = pred.len().max(1) as f64;
    let (mut se, mut ae) = (0.0, 0.0);
    for (p, y) in pred.iter().zip(valid.y) {
        let d = f64::from(*p) - f64::from(*y);
        se += d * d;
        ae += d.abs();
    }
    let (mse, mae) = (se / n, ae / n);
    let data = match cfg.loss {
        LossKind::Mse => mse,
        LossKind::L1 => mae,
    } * cfg.loss_scale;
    let penalty = net.penalty().map(|p| f64::from(p.into_scalar::<f32>()));
    Ok(Scores { loss: objective(data, penalty), mse, mae })
}

/// Trains `net` (built on an autodiff device) and returns the network to predict with.
///
/// `device` is the autodiff device the network lives on. Shuffling draws from `run.seed`; weight
/// initialisation draws from the device's RNG and dropout masks from [`crate::seed_dropout`]'s;
/// the caller seeds both. Draws burn's own layers make from the device RNG while training are
/// seeded per step when `run.device_draws` says so. With a validation set, early stopping and
/// the plateau schedule watch `cfg.monitor` on it; without one the loop runs all `cfg.epochs`.
/// `run.observer` hears of the start, every epoch and the end (also when training fails).
pub fn train<N: Trainable>(
    net: N,
    cfg: &TrainConfig,
    data: TrainData<'_>,
    valid: Option<TrainData<'_>>,
    device: &Device,
    run: &TrainRun<'_>,
) -> Result<Outcome<N>, TrainError> {
    cfg.check()?;
    if data.x.n() == 0 || data.x.n() != data.y.len() {
        return Err(TrainError::Data(format!("{}: {} inputs but {} targets", run.label, data.x.n(), data.y.len())));
    }
    for (what, set) in [("training", Some(&data)), ("validation", valid.as_ref())] {
        if let Some(set) = set
            && (set.x.n() != set.y.len() || set.side.is_some_and(|s| !s.fits(set.x.n())))
        {
            return Err(TrainError::Data(format!(
                "{}: the {what} set's inputs, targets and side inputs differ in length",
                run.label
            )));
        }
    }
    run.observer.start(run.label, cfg.epochs);
    let outcome = epochs(net, cfg, data, valid, device, run);
    run.observer.finish();
    outcome
}

fn epochs<N: Trainable>(
    mut net: N,
    cfg: &TrainConfig,
    data: TrainData<'_>,
    valid: Option<TrainData<'_>>,
    device: &Device,
    run: &TrainRun<'_>,
) -> Result<Outcome<N>, TrainError> {
    let label = run.label;
    let plain = device.clone().without_autodiff();
    let mut optim = optimizer(cfg);
    let mut rng = genopred_core::cv::seed::rng(run.seed);
    let mut order: Vec<usize> = (0..data.x.n()).collect();
    let mut lr = cfg.learning_rate;
    let mut history = Vec::new();
    let mut stopping = EarlyStopping::new(cfg.patience, cfg.min_delta);
    let mut plateau =
        ReduceLrOnPlateau::new(cfg.plateau_factor, cfg.plateau_patience, cfg.plateau_min_delta, cfg.min_learning_rate);
    let mut best_net = None;
    let mut stopped_early = false;

    for epoch in 1..=cfg.epochs {
        if cfg.shuffle {
            order.shuffle(&mut rng);
        }
        let mut sum = Tensor::<1>::zeros([1], device);
        let mut sum_objective = Tensor::<1>::zeros([1], device);
        for (b, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let x = batch_tensor(data.x, chunk, device)?;
            let y: Vec<f32> = chunk.iter().map(|&r| data.y[r]).collect();
            let y = Tensor::<2>::from_data(TensorData::new(y, [chunk.len(), 1]), device);
            let side = data.side.map(|s| s.batch(chunk, device));
            let out = match run.device_draws {
                None => net.forward_batch(x, side),
                Some(seed) => {
                    let _rng = crate::predictor::device_rng_lock();
                    device.seed(derive_seed(seed, Purpose::DeviceDraws, &[epoch as u64, b as u64]));
                    net.forward_batch(x, side)
                }
            };
            let (next, fit, objective) = update(net, &mut optim, out, y, cfg, lr);
            net = next;
            if b == 0 {
                // A cheap check on the first batch catches divergence without a sync per batch.
                let v = fit.clone().into_scalar::<f32>();
                if !v.is_finite() {
                    return Err(TrainError::NonFinite { model: label.into(), epoch, batch: 1, value: v });
                }
            }
            sum = sum + fit.detach().mul_scalar(chunk.len() as f64);
            sum_objective = sum_objective + objective.mul_scalar(chunk.len() as f64);
        }
        let train_loss = f64::from(sum.into_scalar::<f32>()) / data.x.n() as f64;
        if !train_loss.is_finite() {
            return Err(TrainError::NonFinite { model: label.into(), epoch, batch: 0, value: train_loss as f32 });
        }
        let mut record = EpochRecord { epoch, train_loss, val_loss: None, val_metric: None, lr };
        let mut stop = false;
        if let Some(valid) = &valid {
            let eval = net.valid();
            let s = validation_scores(&eval, valid, cfg, &plain)?;
            if !s.loss.is_finite() {
                return Err(TrainError::NonFinite { model: label.into(), epoch, batch: 0, value: s.loss as f32 });
            }
            let value = match cfg.monitor {
                Monitor::ValLoss => s.loss,
                Monitor::ValMse => s.mse,
                Monitor::ValMae => s.mae,
            };
            record.val_loss = Some(s.loss);
            record.val_metric = Some(value);
            match stopping.update(epoch, value) {
                Verdict::Improved if cfg.restore_best => best_net = Some(eval),
                Verdict::Improved | Verdict::Waiting => {}
                Verdict::Stop => stop = true,
            }
        }
        // The plateau schedule watches the validation value, or Keras's training `loss` (the
        // objective averaged over the epoch's samples) as DNNGP's released code does.
        let watched = match cfg.plateau_monitor {
            PlateauMonitor::Validation => record.val_metric,
            PlateauMonitor::TrainLoss => Some(f64::from(sum_objective.into_scalar::<f32>()) / data.x.n() as f64),
        };
        if let Some(value) = watched {
            lr = plateau.update(value, lr);
        }
        run.observer.epoch(&record);
        history.push(record);
        if stop {
            stopped_early = true;
            break;
        }
    }
    let epochs_run = history.len();
    let (net, used_epoch) = match best_net {
        Some(best) => (best, stopping.best_epoch),
        None => (net.valid(), epochs_run),
    };
    Ok(Outcome { net, history, used_epoch, best_value: stopping.best(), stopped_early })
}

#[cfg(test)]
mod tests {
    use burn::nn::Linear;

    use super::*;
    use crate::arch::Encoded;
    use crate::init::{WeightInit, linear};

    #[test]
    fn inference_batches_shrink_for_wide_inputs_but_never_below_the_training_batch() {
        // wheat599-sized inputs: 256 rows, as before.
        assert_eq!(inference_batch(32, (1, 1_279)), 256);
        assert_eq!(inference_batch(32, (4, 4_235)), 256);
        assert_eq!(inference_batch(512, (1, 1_279)), 512);
        // 100,000 markers: as many rows as 16 Mi values hold.
        assert_eq!(inference_batch(32, (1, 100_000)), 167);
        assert_eq!(inference_batch(16, (4, 100_000)), 41);
        assert_eq!(inference_batch(64, (4, 100_000)), 64);
        assert_eq!(inference_batch(1, (4, 50_000_000)), 1);
    }

    #[derive(Module, Debug)]
    struct Tiny {
        lin: Linear,
    }

    impl Network for Tiny {
        /// `[batch, 1, 5] → [batch, 1]`.
        fn forward(&self, x: Tensor<3>) -> Tensor<2> {
            self.lin.forward(x.flatten(1, 2))
        }
    }

    fn data(n: usize, scale: f32) -> (Encoded, Vec<f32>) {
        let x: Vec<f32> = (0..n * 5).map(|i| ((i * 7919) % 13) as f32 / 13.0).collect();
        let y = (0..n).map(|i| scale * (x[i * 5] - x[i * 5 + 1])).collect();
        (Encoded { data: x, n, channels: 1, length: 5 }, y)
    }

    fn fit(cfg: &TrainConfig, scale: f32) -> Result<Outcome<Tiny>, TrainError> {
        fit_with(cfg, scale, true)
    }

    fn fit_with(cfg: &TrainConfig, scale: f32, validation: bool) -> Result<Outcome<Tiny>, TrainError> {
        let _rng = crate::predictor::device_rng_lock();
        let device = Device::flex().autodiff();
        device.seed(1);
        let net = Tiny { lin: linear(5, 1, WeightInit::GlorotUniform, &device) };
        let (x, y) = data(40, scale);
        let (vx, vy) = data(10, scale);
        let run = TrainRun { seed: 3, label: "tiny", observer: &genopred_core::Quiet, device_draws: None };
        let valid = validation.then_some(TrainData::new(&vx, &vy));
        train(net, cfg, TrainData::new(&x, &y), valid, &device, &run)
    }

    #[test]
    fn a_diverging_loss_is_an_error_naming_the_epoch() {
        let e = fit(&TrainConfig::new().with_epochs(3), 1e30).unwrap_err();
        assert!(matches!(e, TrainError::NonFinite { epoch: 1, .. }), "{e}");
        assert!(e.to_string().contains("at epoch 1"), "{e}");
    }

    #[test]
    fn early_stopping_waits_patience_epochs_and_restores_the_best() {
        // With an impossible min_delta only the first epoch counts as an improvement.
        let cfg = TrainConfig::new().with_epochs(50).with_patience(3).with_min_delta(1e9);
        let out = fit(&cfg, 1.0).unwrap();
        assert_eq!(out.history.len(), 4);
        assert!(out.stopped_early);
        assert_eq!(out.used_epoch, 1);
        let last = fit(&cfg.clone().with_restore_best(false), 1.0).unwrap();
        assert_eq!(last.used_epoch, 4);
        let all = fit(&TrainConfig::new().with_epochs(6).with_patience(0).with_min_delta(1e9), 1.0).unwrap();
        assert_eq!(all.history.len(), 6, "patience 0 never stops early");
    }

    #[test]
    fn plateau_schedule_cuts_the_learning_rate() {
        let cfg = TrainConfig::new()
            .with_epochs(5)
            .with_patience(0)
            .with_plateau_factor(0.5)
            .with_plateau_patience(1)
            .with_plateau_min_delta(1e9)
            .with_min_learning_rate(2e-4);
        let lrs = |cfg: &TrainConfig, validation: bool| -> Vec<f64> {
            fit_with(cfg, 1.0, validation).unwrap().history.iter().map(|h| h.lr).collect()
        };
        assert_eq!(lrs(&cfg, true), vec![1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4]);
        // Watching the validation value, no validation set means no schedule; watching the
        // training loss (DNNGP's released code), it runs without one.
        assert_eq!(lrs(&cfg, false), vec![1e-3; 5]);
        let on_train = cfg.clone().with_plateau_monitor(PlateauMonitor::TrainLoss);
        assert_eq!(lrs(&on_train, false), vec![1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4]);
        // A loss that falls by more than min_delta every epoch is no plateau.
        let falling = on_train.with_plateau_min_delta(0.0).with_learning_rate(0.05);
        let out = fit_with(&falling, 1.0, false).unwrap();
        let losses: Vec<f64> = out.history.iter().map(|h| h.train_loss).collect();
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
        assert!(out.history.iter().all(|h| h.lr == 0.05), "{:?}", out.history);
    }

    #[test]
    fn training_reduces_the_loss_with_sgd_and_l1() {
        let cfg = TrainConfig::new()
            .with_optimizer(OptimizerKind::Sgd)
            .with_momentum(0.5)
            .with_learning_rate(0.05)
            .with_loss(LossKind::L1)
            .with_batch_size(8)
            .with_epochs(60)
            .with_patience(0);
        let out = fit(&cfg, 1.0).unwrap();
        let (first, last) = (out.history[0].train_loss, out.history.last().unwrap().train_loss);
        assert!(last < 0.5 * first, "{first} -> {last}");
    }
}
