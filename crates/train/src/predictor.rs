//! [`NeuralPredictor`]: any [`Architecture`] as a genopred-core [`Predictor`], so the
//! cross-validation runner, the CLI and the reports treat neural models and GBLUP alike.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use burn::prelude::*;
use genopred_core::cv::{Purpose, derive_seed};
use genopred_core::{
    EpochRecord, FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, RecordSet, SaliencyOptions, TrainSet,
};

use crate::arch::{Architecture, Encoded, InputContext, Inputs};
use crate::device_draws::draws_from_device_rng;
use crate::error::TrainError;
use crate::head::{Headed, Side};
use crate::trainer::{TrainData, TrainRun, inference_batch, predict_batches, predict_side_batches, train};

static DEVICE_RNG: Mutex<()> = Mutex::new(());

/// The network's weights in a saved model folder (burnpack, backend-independent).
pub const WEIGHTS_FILE: &str = "weights.bpk";
/// The fitted input encoding (means, scalings, PCA loadings), JSON.
pub const INPUT_FILE: &str = "input.json";
/// The trait's standardisation, JSON.
pub const SCALING_FILE: &str = "scaling.json";
/// The dense head of a network fitted to records (outputs, covariate weights and scaling),
/// JSON; absent for a network of one output.
pub const HEAD_FILE: &str = "head.json";

/// [`RecordHead`] as saved: the covariate weights as numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct SavedHead {
    outputs: usize,
    centre: Vec<f64>,
    scale: Vec<f64>,
    /// `q × k` covariate weights, row-major (empty without covariates).
    weights: Vec<f32>,
}

/// Serialises the use of burn's device RNG.
///
/// burn seeds one process-wide generator per backend (`device.seed`), which draws the initial
/// weights. Two fits initialising at once in one process would interleave their draws and lose
/// reproducibility, so every fit holds this lock from seeding to the end of initialisation.
/// genopred's layers draw nothing from it while training (shuffles and dropout masks have their
/// own seeded generators, per fit and per thread), so folds train in parallel (`genopred cv
/// --jobs`). A network whose training forward pass does draw from it (burn's own dropout-carrying
/// layers; [`crate::device_draws`]) holds the lock for each forward pass, seeded per step.
pub fn device_rng_lock() -> MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Mean and sd the trait was standardised with (identity when standardisation is off).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetScaling {
    /// Training mean.
    pub mean: f64,
    /// Training standard deviation.
    pub sd: f64,
}

impl TargetScaling {
    /// The training mean and sd of `y` (identity when `on` is false, sd 1 for a constant `y`).
    pub fn fit(y: &[f64], on: bool) -> Self {
        if !on {
            return TargetScaling { mean: 0.0, sd: 1.0 };
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        TargetScaling { mean, sd }
    }

    /// `y` in standardised units, as the network is trained on it.
    pub fn forward(&self, y: &[f64]) -> Vec<f32> {
        y.iter().map(|v| ((v - self.mean) / self.sd) as f32).collect()
    }

    fn back(&self, p: f32) -> f64 {
        f64::from(p) * self.sd + self.mean
    }
}

/// What a neural fit reports beside its epochs (the model's part of [`FitInfo`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NeuralFitReport {
    /// The fitted input encoding, as the architecture describes it (`null` if it says nothing).
    pub input: serde_json::Value,
    /// `[channels, length]` of the encoded input.
    pub input_shape: [usize; 2],
    /// Parameter count of the network.
    pub parameters: usize,
    /// Epoch whose weights the model predicts with.
    pub epoch_used: usize,
    /// Whether early stopping ended training.
    pub stopped_early: bool,
    /// Best monitored validation value, if there was a validation set.
    pub best_val_metric: Option<f64>,
    /// Learning rate of the last epoch.
    pub final_lr: Option<f64>,
    /// How the trait was standardised.
    pub trait_scaling: TargetScaling,
    /// The dense head of a fit to records ([`Predictor::fit_records`]); absent for a plain fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadReport>,
}

/// The dense head of a fit to records: what it read and what it learnt.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadReport {
    /// Outputs of the network (environments or traits).
    pub outputs: usize,
    /// Covariates in the head.
    pub covariates: usize,
    /// Training records.
    pub records: usize,
    /// Distinct training lines.
    pub lines: usize,
}

/// The dense head of a network fitted to records, and how its covariates were standardised.
#[derive(Debug, Clone)]
pub struct RecordHead {
    /// `q → k` covariate weights (validation mode), `None` without covariates.
    pub covariates: Option<burn::nn::Linear>,
    /// Outputs, k.
    pub outputs: usize,
    /// Training mean of each covariate.
    pub centre: Vec<f64>,
    /// Training sd of each covariate (1 for a constant one).
    pub scale: Vec<f64>,
}

impl RecordHead {
    /// `set`'s covariates standardised as in training, f32.
    fn covariates(&self, set: &RecordSet<'_>) -> Vec<f32> {
        let q = self.centre.len();
        set.covariates
            .chunks(q.max(1))
            .flat_map(|row| row.iter().enumerate().map(|(j, v)| ((v - self.centre[j]) / self.scale[j]) as f32))
            .collect()
    }
}

/// Per-record inputs read from the encoded rows of their lines (a line in several environments
/// is encoded once).
struct Repeated<'a> {
    lines: &'a dyn Inputs,
    /// Each record's position in `lines`.
    at: Vec<usize>,
}

impl Inputs for Repeated<'_> {
    fn n(&self) -> usize {
        self.at.len()
    }

    fn shape(&self) -> (usize, usize) {
        self.lines.shape()
    }

    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>, TrainError> {
        let picked: Vec<usize> = rows.iter().map(|&r| self.at[r]).collect();
        self.lines.gather(&picked)
    }
}

/// What a fit reports ([`NeuralFitReport`]), from its encoding, size and training outcome.
fn fit_info<A: Architecture, N>(
    input: &A::Input,
    parameters: usize,
    outcome: &crate::trainer::Outcome<N>,
    trait_scaling: TargetScaling,
    head: Option<HeadReport>,
) -> Result<FitInfo, ModelError> {
    let (channels, length) = A::input_shape(input);
    let report = NeuralFitReport {
        input: A::describe_input(input),
        input_shape: [channels, length],
        parameters,
        epoch_used: outcome.used_epoch,
        stopped_early: outcome.stopped_early,
        best_val_metric: outcome.best_value,
        final_lr: outcome.history.last().map(|r| r.lr),
        trait_scaling,
        head,
    };
    FitInfo::new(Some(outcome.history.len()), &report)
}

/// The distinct rows of `rows`, sorted, and each entry's position among them.
fn distinct(rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut lines = rows.to_vec();
    lines.sort_unstable();
    lines.dedup();
    let at = rows.iter().map(|r| lines.binary_search(r).expect("a row of the set")).collect();
    (lines, at)
}

/// A fitted model: network, input encoding and trait scaling.
#[derive(Debug, Clone)]
pub struct Fitted<A: Architecture> {
    /// The network, in validation mode.
    pub net: A::Net,
    /// The fitted input encoding.
    pub input: A::Input,
    /// How the trait was scaled.
    pub scaling: TargetScaling,
    /// The dense head, for a fit to records (`net` then has its outputs).
    pub head: Option<RecordHead>,
}

/// Encoded inputs up to this size are built once and held; larger ones are encoded a batch at a
/// time as the trainer reads them (each epoch), so the fit holds the genotypes' stored codes (2 bits a hard call)
/// and a few batches instead of, e.g., DLGWAS's 16 bytes per genotype. Either way the batches
/// hold the same numbers (every encoding encodes each sample on its own), so the choice never
/// changes a result.
pub const HOLD_INPUTS_UP_TO_BYTES: usize = 256 << 20;

/// A neural architecture as a [`Predictor`].
#[derive(Debug)]
pub struct NeuralPredictor<A: Architecture> {
    config: A::Config,
    device: Device,
    fitted: Option<Fitted<A>>,
    history: Vec<EpochRecord>,
    hold_inputs_up_to: usize,
}

/// An encoding applied to each batch as it is read: the rows of `geno` in `rows`, encoded by
/// the fitted `input`.
struct Streamed<'a, A: Architecture> {
    input: &'a A::Input,
    geno: &'a GenotypeMatrix,
    rows: &'a [usize],
}

impl<A: Architecture> Inputs for Streamed<'_, A> {
    fn n(&self) -> usize {
        self.rows.len()
    }

    fn shape(&self) -> (usize, usize) {
        A::input_shape(self.input)
    }

    fn gather(&self, rows: &[usize]) -> Result<Vec<f32>, TrainError> {
        let picked: Vec<usize> = rows.iter().map(|&r| self.rows[r]).collect();
        Ok(NeuralPredictor::<A>::encode_checked(self.input, self.geno, &picked)?.data)
    }
}

/// Inputs held whole or streamed.
enum Prepared<'a, A: Architecture> {
    Held(Encoded),
    Streamed(Streamed<'a, A>),
}

impl<A: Architecture> Prepared<'_, A> {
    fn inputs(&self) -> &dyn Inputs {
        match self {
            Prepared::Held(x) => x,
            Prepared::Streamed(s) => s,
        }
    }
}

impl<A: Architecture> NeuralPredictor<A> {
    /// A model with `config` that trains on `device` (a plain device; autodiff is added here).
    pub fn new(config: A::Config, device: Device) -> Result<Self, TrainError> {
        A::check(&config)?;
        Ok(NeuralPredictor {
            config,
            device,
            fitted: None,
            history: Vec::new(),
            hold_inputs_up_to: HOLD_INPUTS_UP_TO_BYTES,
        })
    }

    /// The same model, holding encoded inputs whole only up to `bytes` (default
    /// [`HOLD_INPUTS_UP_TO_BYTES`]; 0 streams every batch).
    pub fn with_inputs_held_up_to(mut self, bytes: usize) -> Self {
        self.hold_inputs_up_to = bytes;
        self
    }

    /// `rows` of `geno` encoded by `input`: held whole when small, else streamed.
    fn prepare<'a>(
        &self,
        input: &'a A::Input,
        geno: &'a GenotypeMatrix,
        rows: &'a [usize],
    ) -> Result<Prepared<'a, A>, TrainError> {
        let (channels, length) = A::input_shape(input);
        let bytes = rows.len().saturating_mul(channels).saturating_mul(length).saturating_mul(4);
        Ok(if bytes <= self.hold_inputs_up_to {
            Prepared::Held(Self::encode_checked(input, geno, rows)?)
        } else {
            Prepared::Streamed(Streamed { input, geno, rows })
        })
    }

    /// The configuration.
    pub fn config(&self) -> &A::Config {
        &self.config
    }

    /// The fitted state, once `fit` has run.
    pub fn fitted(&self) -> Option<&Fitted<A>> {
        self.fitted.as_ref()
    }

    /// A freshly initialised network for `shape`, seeded (what `fit` starts from).
    pub fn init_net(&self, shape: (usize, usize), seed: u64) -> A::Net {
        self.init_net_with(shape, 1, seed)
    }

    /// The same with `outputs` outputs (what `fit_records` starts from).
    pub fn init_net_with(&self, shape: (usize, usize), outputs: usize, seed: u64) -> A::Net {
        let ad = self.device.clone().autodiff();
        ad.seed(seed);
        crate::layers::seed_dropout(derive_seed(seed, Purpose::Dropout, &[]));
        A::build(&self.config, shape, outputs, &ad)
    }

    /// Saves the fitted network's weights (burnpack) to `path`.
    pub fn save_weights(&self, path: &Path) -> Result<(), TrainError> {
        let fitted = self.fitted.as_ref().ok_or_else(|| TrainError::Usage("save before fit".into()))?;
        fitted.net.clone().save_file(path).map_err(|e| TrainError::Io(format!("saving {}: {e}", path.display())))
    }

    /// Rebuilds a fitted model from its config, input encoding, scaling and saved weights.
    pub fn load(
        config: A::Config,
        input: A::Input,
        scaling: TargetScaling,
        weights: &Path,
        device: Device,
    ) -> Result<Self, TrainError> {
        Self::load_with_head(config, input, scaling, weights, None, device)
    }

    /// [`Self::load`] of a network fitted to records, with its saved head.
    fn load_with_head(
        config: A::Config,
        input: A::Input,
        scaling: TargetScaling,
        weights: &Path,
        saved: Option<SavedHead>,
        device: Device,
    ) -> Result<Self, TrainError> {
        let mut model = Self::new(config, device)?;
        let shape = A::input_shape(&input);
        let outputs = saved.as_ref().map_or(1, |h| h.outputs);
        let net = A::build(&model.config, shape, outputs, &model.device)
            .try_load_file(weights)
            .map_err(|e| TrainError::Io(format!("loading {}: {e}", weights.display())))?
            .valid();
        let head = match saved {
            None => None,
            Some(h) => {
                let q = h.centre.len();
                if h.scale.len() != q || h.weights.len() != q * h.outputs || h.outputs == 0 {
                    return Err(TrainError::Io(format!(
                        "{HEAD_FILE}: {} covariate weights for {q} covariates and {} outputs",
                        h.weights.len(),
                        h.outputs
                    )));
                }
                let covariates = (q > 0).then(|| burn::nn::Linear {
                    weight: burn::module::Param::from_tensor(Tensor::from_data(
                        TensorData::new(h.weights.clone(), [q, h.outputs]),
                        &model.device,
                    )),
                    bias: None,
                });
                Some(RecordHead { covariates, outputs: h.outputs, centre: h.centre, scale: h.scale })
            }
        };
        model.fitted = Some(Fitted { net, input, scaling, head });
        Ok(model)
    }

    /// Reads a model saved by [`Predictor::save`] from `dir` (`weights.bpk`, `input.json`,
    /// `scaling.json`) onto `device`, which need not be the backend it was trained on.
    pub fn load_dir(config: A::Config, dir: &Path, device: Device) -> Result<Self, TrainError> {
        fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
            let bytes = std::fs::read(path).map_err(|e| TrainError::Io(format!("reading {}: {e}", path.display())))?;
            serde_json::from_slice(&bytes).map_err(|e| TrainError::Io(format!("{}: {e}", path.display())))
        }
        let input: A::Input = read_json(&dir.join(INPUT_FILE))?;
        let scaling: TargetScaling = read_json(&dir.join(SCALING_FILE))?;
        let head = dir.join(HEAD_FILE);
        let head: Option<SavedHead> = if head.exists() { Some(read_json(&head)?) } else { None };
        Self::load_with_head(config, input, scaling, &dir.join(WEIGHTS_FILE), head, device)
    }

    fn encode_checked(input: &A::Input, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Encoded, TrainError> {
        let x = A::encode(input, geno, rows)?;
        if x.n != rows.len() || x.data.len() != x.n * x.width() || (x.channels, x.length) != A::input_shape(input) {
            return Err(TrainError::Usage(format!(
                "{}: the encoding returned {} values for {} samples of shape {:?}",
                A::NAME,
                x.data.len(),
                rows.len(),
                A::input_shape(input)
            )));
        }
        Ok(x)
    }
}

impl<A: Architecture> Predictor for NeuralPredictor<A> {
    fn name(&self) -> &str {
        A::NAME
    }

    fn fit(
        &mut self,
        train_set: &TrainSet<'_>,
        valid_set: Option<&TrainSet<'_>>,
        context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        let tc = A::train_config(&self.config).clone();
        if train_set.rows.len() < 2 {
            return Err(TrainError::Data(format!("{}: needs at least 2 training samples", A::NAME)).into());
        }
        let input = A::fit_input(
            &self.config,
            &InputContext { geno: train_set.geno, train_rows: train_set.rows, genotyped_rows: context.genotyped_rows },
        )?;
        let scaling = TargetScaling::fit(train_set.y, tc.standardise_y);
        let x = self.prepare(&input, train_set.geno, train_set.rows)?;
        let y = scaling.forward(train_set.y);
        let valid = match valid_set {
            Some(v) => Some((self.prepare(&input, v.geno, v.rows)?, scaling.forward(v.y))),
            None => None,
        };
        let shape = A::input_shape(&input);
        let ad = self.device.clone().autodiff();
        let probe = crate::trainer::batch_tensor(x.inputs(), &[0, 1], &ad)?;
        let (net, draws) = {
            let _rng = device_rng_lock();
            let draws = draws_from_device_rng::<A>(&self.config, shape, &probe, &ad);
            (self.init_net(shape, context.seed), draws)
        };
        let n_params = net.num_params();
        let shuffle = derive_seed(context.seed, Purpose::Shuffle, &[]);
        let run = TrainRun {
            seed: shuffle,
            label: A::NAME,
            observer: context.observer,
            device_draws: draws.then_some(context.seed),
        };
        let outcome = train(
            net,
            &tc,
            TrainData::new(x.inputs(), &y),
            valid.as_ref().map(|(x, y)| TrainData::new(x.inputs(), y)),
            &ad,
            &run,
        )?;
        drop((x, valid));
        let info = fit_info::<A, _>(&input, n_params, &outcome, scaling, None)?;
        self.history = outcome.history;
        self.fitted = Some(Fitted { net: outcome.net, input, scaling, head: None });
        Ok(info)
    }

    fn fits_records(&self) -> bool {
        true
    }

    fn fit_records(
        &mut self,
        train_set: &RecordSet<'_>,
        valid_set: Option<&RecordSet<'_>>,
        context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        train_set.check()?;
        if let Some(v) = valid_set {
            v.check()?;
            if (v.n_covariates, v.outputs) != (train_set.n_covariates, train_set.outputs) {
                return Err(TrainError::Usage(format!("{}: validation records of another design", A::NAME)).into());
            }
        }
        let tc = A::train_config(&self.config).clone();
        if train_set.rows.len() < 2 || train_set.y.len() != train_set.rows.len() {
            return Err(TrainError::Data(format!("{}: needs at least 2 training records with values", A::NAME)).into());
        }
        let (lines, at) = distinct(train_set.rows);
        let input = A::fit_input(
            &self.config,
            &InputContext { geno: train_set.geno, train_rows: &lines, genotyped_rows: context.genotyped_rows },
        )?;
        let scaling = TargetScaling::fit(train_set.y, tc.standardise_y);
        // Covariates standardised by the training records' mean and sd (a dummy's too: the head's
        // weights then start on one scale, whatever a numeric covariate's units).
        let q = train_set.n_covariates;
        let n = train_set.rows.len();
        let column = |j: usize| (0..n).map(move |i| train_set.covariates[i * q + j]);
        let centre: Vec<f64> = (0..q).map(|j| column(j).sum::<f64>() / n as f64).collect();
        let scale: Vec<f64> = (0..q)
            .map(|j| {
                let var = column(j).map(|v| (v - centre[j]).powi(2)).sum::<f64>() / n as f64;
                if var > 0.0 { var.sqrt() } else { 1.0 }
            })
            .collect();
        let head = RecordHead { covariates: None, outputs: train_set.outputs, centre, scale };
        let weights = |set: &RecordSet<'_>| set.weights.iter().map(|&w| w as f32).collect::<Vec<f32>>();
        let lines_x = self.prepare(&input, train_set.geno, &lines)?;
        let x = Repeated { lines: lines_x.inputs(), at };
        let y = scaling.forward(train_set.y);
        let (cov, w) = (head.covariates(train_set), weights(train_set));
        let valid_parts = valid_set.map(|v| (v, distinct(v.rows)));
        let valid_lines = match &valid_parts {
            Some((v, (v_lines, _))) => Some(self.prepare(&input, v.geno, v_lines)?),
            None => None,
        };
        let valid = valid_parts.as_ref().zip(valid_lines.as_ref()).map(|((v, (_, v_at)), lx)| {
            let x = Repeated { lines: lx.inputs(), at: v_at.clone() };
            (x, scaling.forward(v.y), head.covariates(v), weights(v))
        });
        let shape = A::input_shape(&input);
        let ad = self.device.clone().autodiff();
        let probe = crate::trainer::batch_tensor(lines_x.inputs(), &[0, 1.min(lines.len() - 1)], &ad)?;
        let (net, draws) = {
            let _rng = device_rng_lock();
            let draws = draws_from_device_rng::<A>(&self.config, shape, &probe, &ad);
            let body = self.init_net_with(shape, train_set.outputs, context.seed);
            (Headed::new(body, q, train_set.outputs, &ad), draws)
        };
        let n_params = net.num_params();
        let run = TrainRun {
            seed: derive_seed(context.seed, Purpose::Shuffle, &[]),
            label: A::NAME,
            observer: context.observer,
            device_draws: draws.then_some(context.seed),
        };
        fn side_of<'s>(covariates: &'s [f32], weights: &'s [f32], n_covariates: usize, outputs: usize) -> Side<'s> {
            Side { covariates, n_covariates, weights, outputs }
        }
        let k = train_set.outputs;
        let outcome = train(
            net,
            &tc,
            TrainData { x: &x, y: &y, side: Some(side_of(&cov, &w, q, k)) },
            valid.as_ref().map(|(vx, vy, vc, vw)| TrainData { x: vx, y: vy, side: Some(side_of(vc, vw, q, k)) }),
            &ad,
            &run,
        )?;
        let head_report = HeadReport { outputs: train_set.outputs, covariates: q, records: n, lines: lines.len() };
        let info = fit_info::<A, _>(&input, n_params, &outcome, scaling, Some(head_report))?;
        self.history = outcome.history;
        let Headed { body, covariates } = outcome.net;
        self.fitted = Some(Fitted { net: body, input, scaling, head: Some(RecordHead { covariates, ..head }) });
        Ok(info)
    }

    fn predict_records(&self, set: &RecordSet<'_>) -> Result<Vec<f64>, ModelError> {
        set.check()?;
        let fitted =
            self.fitted.as_ref().ok_or_else(|| TrainError::Usage(format!("{}: predict before fit", A::NAME)))?;
        let head = fitted.head.as_ref().ok_or_else(|| {
            TrainError::Usage(format!("{}: a model fitted to lines predicts lines, not records", A::NAME))
        })?;
        if (set.n_covariates, set.outputs) != (head.centre.len(), head.outputs) {
            return Err(TrainError::Usage(format!(
                "{}: records with {} covariates and {} outputs for a model fitted with {} and {}",
                A::NAME,
                set.n_covariates,
                set.outputs,
                head.centre.len(),
                head.outputs
            ))
            .into());
        }
        if set.rows.is_empty() {
            return Ok(Vec::new());
        }
        let (lines, at) = distinct(set.rows);
        let lines_x = self.prepare(&fitted.input, set.geno, &lines)?;
        let x = Repeated { lines: lines_x.inputs(), at };
        let cov = head.covariates(set);
        let w: Vec<f32> = set.weights.iter().map(|&v| v as f32).collect();
        let side = Side { covariates: &cov, n_covariates: head.centre.len(), weights: &w, outputs: head.outputs };
        let net = Headed { body: fitted.net.clone(), covariates: head.covariates.clone() };
        let batch = inference_batch(A::train_config(&self.config).batch_size, x.shape());
        let out = predict_side_batches(&net, &x, Some(&side), batch, &self.device)?;
        Ok(out.into_iter().map(|p| fitted.scaling.back(p)).collect())
    }

    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        let fitted =
            self.fitted.as_ref().ok_or_else(|| TrainError::Usage(format!("{}: predict before fit", A::NAME)))?;
        if fitted.head.is_some() {
            return Err(TrainError::Usage(format!("{}: a model fitted to records predicts records", A::NAME)).into());
        }
        let x = self.prepare(&fitted.input, geno, rows)?;
        let batch = inference_batch(A::train_config(&self.config).batch_size, x.inputs().shape());
        let out = predict_batches(&fitted.net, x.inputs(), batch, &self.device)?;
        Ok(out.into_iter().map(|p| fitted.scaling.back(p)).collect())
    }

    fn take_history(&mut self) -> Vec<EpochRecord> {
        std::mem::take(&mut self.history)
    }

    fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let fitted = self.fitted.as_ref().ok_or_else(|| TrainError::Usage(format!("{}: save before fit", A::NAME)))?;
        if let Some(head) = &fitted.head {
            let weights = match &head.covariates {
                Some(lin) => lin
                    .weight
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .map_err(|e| TrainError::Usage(format!("reading the head's weights: {e:?}")))?,
                None => Vec::new(),
            };
            let saved =
                SavedHead { outputs: head.outputs, centre: head.centre.clone(), scale: head.scale.clone(), weights };
            genopred_core::output::write_atomic(&dir.join(HEAD_FILE), &serde_json::to_vec_pretty(&saved)?)?;
        }
        self.save_weights(&dir.join(WEIGHTS_FILE))?;
        let write = |name: &str, bytes: Vec<u8>| {
            let path = dir.join(name);
            genopred_core::output::write_atomic(&path, &bytes)
        };
        write(INPUT_FILE, serde_json::to_vec(&fitted.input)?)?;
        write(SCALING_FILE, serde_json::to_vec_pretty(&fitted.scaling)?)?;
        Ok(())
    }

    fn mean_imputes_missing(&self) -> bool {
        A::MEAN_IMPUTES_MISSING
    }

    fn saliency_blocks(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        options: &SaliencyOptions,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), ModelError>,
    ) -> Result<bool, ModelError> {
        let fitted =
            self.fitted.as_ref().ok_or_else(|| TrainError::Usage(format!("{}: saliency before fit", A::NAME)))?;
        if fitted.head.is_some() {
            return Ok(false);
        }
        // A block's working set: its encoded input, a noisy copy and the gradients (f32 each),
        // and the per-marker saliency handed to `sink`.
        let (channels, length) = A::input_shape(&fitted.input);
        let per_row = 4 * (3 * channels * length + geno.n_markers());
        let block = (self.hold_inputs_up_to / per_row.max(1)).max(1);
        let batch = inference_batch(A::train_config(&self.config).batch_size, (channels, length));
        // SmoothGrad's noise scale comes from the range of every row's input, not a block's.
        let noise_sd = if options.smoothgrad > 0 {
            let mut range = (f32::INFINITY, f32::NEG_INFINITY);
            for chunk in rows.chunks(block) {
                let (lo, hi) = crate::saliency::input_range(&Self::encode_checked(&fitted.input, geno, chunk)?);
                range = (range.0.min(lo), range.1.max(hi));
            }
            crate::saliency::noise_sd(options.noise, range)
        } else {
            0.0
        };
        // Back to trait units: the network predicts the standardised trait.
        let sd = fitted.scaling.sd as f32;
        for (k, chunk) in rows.chunks(block).enumerate() {
            let x = Self::encode_checked(&fitted.input, geno, chunk)?;
            let grad =
                crate::saliency::input_gradients(&fitted.net, &x, k * block, noise_sd, batch, &self.device, options)?;
            drop(x);
            let mut per_marker = A::marker_saliency(&fitted.input, &grad, chunk.len());
            if per_marker.len() != chunk.len() * geno.n_markers() {
                return Err(TrainError::Usage(format!(
                    "{}: marker_saliency returned {} values for {} samples × {} markers",
                    A::NAME,
                    per_marker.len(),
                    chunk.len(),
                    geno.n_markers()
                ))
                .into());
            }
            per_marker.iter_mut().for_each(|v| *v *= sd);
            sink(&per_marker)?;
        }
        Ok(true)
    }
}
