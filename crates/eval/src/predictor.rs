//! The burn-free trait every predictor meets — GBLUP and every neural model alike — so that one
//! cross-validation runner, one CLI and one report serve them all.

use std::path::Path;

use genopred_data::genotype::GenotypeMatrix;

/// A model's error, boxed so that each model crate keeps its own error enum.
pub use genopred_data::error::ModelError;

/// Samples to learn from: rows of a genotype matrix (already reduced to the fold's QC-kept
/// markers) and their trait values.
#[derive(Debug, Clone, Copy)]
pub struct TrainSet<'a> {
    /// Genotypes; only `rows` belong to this set.
    pub geno: &'a GenotypeMatrix,
    /// Rows of `geno` in this set.
    pub rows: &'a [usize],
    /// Trait value of each entry of `rows`.
    pub y: &'a [f64],
}

/// Records of a model with covariates and several outputs ([`Predictor::fit_records`]): one per
/// line × environment (or, next, line × trait), each with its covariates and the weights that
/// pick the output it reads (one-hot for a trained environment; equal weights over the trained
/// ones for an environment no training record was in).
#[derive(Debug, Clone, Copy)]
pub struct RecordSet<'a> {
    /// Genotypes; only `rows` belong to this set.
    pub geno: &'a GenotypeMatrix,
    /// Each record's row of `geno` (a line tested in several environments repeats).
    pub rows: &'a [usize],
    /// Each record's value (empty when predicting).
    pub y: &'a [f64],
    /// `rows.len() × n_covariates` covariates, row-major: the record's environment, fixed effects
    /// and environmental covariates as the fold's design codes them.
    pub covariates: &'a [f64],
    /// Covariates per record.
    pub n_covariates: usize,
    /// `rows.len() × outputs` output weights, row-major.
    pub weights: &'a [f64],
    /// Outputs of the model (environments or traits).
    pub outputs: usize,
}

impl RecordSet<'_> {
    /// Checks that every slice has the length `rows` implies (`y` may be empty).
    pub fn check(&self) -> Result<(), ModelError> {
        let n = self.rows.len();
        if (!self.y.is_empty() && self.y.len() != n)
            || self.covariates.len() != n * self.n_covariates
            || self.weights.len() != n * self.outputs
            || self.outputs == 0
        {
            return Err(format!(
                "a record set of {n} records came with {} values, {} covariates ({} each) and {} output weights ({} outputs)",
                self.y.len(),
                self.covariates.len(),
                self.n_covariates,
                self.weights.len(),
                self.outputs
            )
            .into());
        }
        Ok(())
    }
}

/// What a fit reports beyond its predictions, stored in the run's records (`summary.json`, the
/// fold records, a model folder's manifest).
///
/// The fields every consumer reads are typed; the rest is the model's own typed report
/// (variance components, input encoding, best validation value ...), serialised once by the model
/// and kept as it gave it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitInfo {
    /// Epochs run, for models trained in epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs_run: Option<usize>,
    /// The model's own report, as its typed record serialises it.
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl FitInfo {
    /// A fit report from the model's own typed record (which must serialise to a JSON object).
    pub fn new<T: serde::Serialize>(epochs_run: Option<usize>, details: &T) -> Result<Self, ModelError> {
        match serde_json::to_value(details)? {
            serde_json::Value::Object(details) => Ok(FitInfo { epochs_run, details }),
            serde_json::Value::Null => Ok(FitInfo { epochs_run, details: serde_json::Map::new() }),
            other => Err(format!("a fit report must be a JSON object, got {other}").into()),
        }
    }
}

/// Follows a fit as it runs (epoch bars in the command line). Passed in by the caller through
/// [`FitContext`]; models that train in epochs report each one.
pub trait FitObserver: Sync {
    /// Training of `label` starts, for at most `epochs` epochs.
    fn start(&self, _label: &str, _epochs: usize) {}
    /// One epoch finished.
    fn epoch(&self, _record: &EpochRecord) {}
    /// Training ended (finished, stopped early or failed).
    fn finish(&self) {}
}

/// The observer that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl FitObserver for Quiet {}

/// What the runner tells a model about the fit beyond its data.
#[derive(Debug, Clone, Copy)]
pub struct FitContext<'a> {
    /// Seed of this fit's random choices (initial weights, shuffles, dropout), derived from the
    /// run's seed and the fold, so that folds differ and runs repeat.
    pub seed: u64,
    /// Every row of the genotype matrix the run may use *without phenotypes* (training, validation
    /// and test rows). Only for unsupervised encodings a model's documentation says may see them
    /// (DNNGP's `pca_fit = "all"`); phenotypes of rows outside the training set never reach `fit`.
    pub genotyped_rows: &'a [usize],
    /// Who follows the fit's progress ([`Quiet`] for nobody).
    pub observer: &'a dyn FitObserver,
    /// Work shared with the run's other fits in this process (GBLUP's `X Xᵀ`), when the runner
    /// fits several folds of one dataset here; `None` for a fit on its own.
    pub shared: Option<genopred_stats::gram::Shared<'a>>,
}

impl std::fmt::Debug for dyn FitObserver + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FitObserver")
    }
}

/// One epoch of a neural model's training, written to the fold's `history.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Epoch number, 1-based.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (data loss, standardised trait units).
    pub train_loss: f64,
    /// Validation loss (data loss plus penalties, as Keras reports it), if there is a validation set.
    pub val_loss: Option<f64>,
    /// The metric early stopping watches, on the validation set.
    pub val_metric: Option<f64>,
    /// Learning rate used in this epoch.
    pub lr: f64,
}

/// How input gradients are taken for marker saliency.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaliencyOptions {
    /// SmoothGrad: average the gradient over this many noisy copies of each input (0 = the plain
    /// gradient, DLGWAS's saliency map).
    pub smoothgrad: usize,
    /// SmoothGrad's noise sd as a fraction of the input's range (Smilkov et al. 2017: 0.1–0.2).
    pub noise: f64,
    /// Seed of the noise.
    pub seed: u64,
}

impl Default for SaliencyOptions {
    fn default() -> Self {
        SaliencyOptions { smoothgrad: 0, noise: 0.15, seed: 0 }
    }
}

/// A genomic predictor.
///
/// `fit` sees the training rows and, when the model asks for one, a validation subset carved out
/// of the training fold (for early stopping); the test fold is only ever passed to `predict`.
pub trait Predictor {
    /// Short name used on the command line and in reports (`gblup`, `dnngp` ...).
    fn name(&self) -> &str;

    /// Whether the runner should hold out a validation subset of the training fold for this
    /// model. Models without early stopping (GBLUP) train on the whole training fold.
    fn wants_validation(&self) -> bool {
        true
    }

    /// Fits the model.
    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        valid: Option<&TrainSet<'_>>,
        context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError>;

    /// Predicts the trait for `rows` of `geno` (same markers as in `fit`).
    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError>;

    /// The per-epoch training history of the last fit (empty for models that are not trained in
    /// epochs). Taken, so the runner can store it once.
    fn take_history(&mut self) -> Vec<EpochRecord> {
        Vec::new()
    }

    /// Writes the fitted state (weights, encodings, scalings) into the existing folder `dir`, so
    /// that the model's loader can rebuild a predictor that predicts exactly as this one does.
    fn save(&self, _dir: &Path) -> Result<(), ModelError> {
        Err(format!("model {} cannot be saved", self.name()).into())
    }

    /// Whether a missing call is replaced by the training mean dosage (true for every dosage or
    /// PCA encoding and GBLUP). Models with another rule (DLGWAS's one-hot "missing" class) say
    /// false, and markers absent from a new file are then filled with the genotype class nearest
    /// the training mean instead of being marked missing.
    fn mean_imputes_missing(&self) -> bool {
        true
    }

    /// Per-sample marker saliency of a fitted model: `|∂ prediction / ∂ dosage|` for each of
    /// `rows` and each marker, row-major (`rows × markers`), in trait units per allele copy.
    /// `None` for models without input gradients.
    ///
    /// This holds the whole `rows × markers` matrix; [`saliency_blocks`](Self::saliency_blocks)
    /// streams it.
    fn saliency(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        options: &SaliencyOptions,
    ) -> Result<Option<Vec<f32>>, ModelError> {
        let mut all = Vec::new();
        let has = self.saliency_blocks(geno, rows, options, &mut |block| {
            all.extend_from_slice(block);
            Ok(())
        })?;
        Ok(has.then_some(all))
    }

    /// The same saliency as [`saliency`](Self::saliency), passed to `sink` a block of
    /// consecutive rows at a time (row-major `block rows × markers`, the blocks in the order of
    /// `rows`), so that memory stays that of a block. The values do not depend on how the rows
    /// are cut into blocks: SmoothGrad's noise is drawn per row (from the seed and the row's
    /// position in `rows`) with one scale for all of `rows`. Returns `false`, without calling
    /// `sink`, for models without input gradients.
    fn saliency_blocks(
        &self,
        _geno: &GenotypeMatrix,
        _rows: &[usize],
        _options: &SaliencyOptions,
        _sink: &mut dyn FnMut(&[f32]) -> Result<(), ModelError>,
    ) -> Result<bool, ModelError> {
        Ok(false)
    }

    /// Additive marker effects of a fitted linear model (trait units per allele copy), `None` for
    /// models that have none.
    fn marker_effects(&self) -> Option<Vec<f64>> {
        None
    }

    /// Whether the model fits records with covariates and several outputs
    /// ([`Predictor::fit_records`]): every network does, through its dense head.
    fn fits_records(&self) -> bool {
        false
    }

    /// Fits the model to records: each reads its line's genotypes, its covariates and the output
    /// its weights pick (`--env-model gxe` for the networks: one output per environment). Same
    /// contract as [`Predictor::fit`]: `valid` is carved from the training records.
    fn fit_records(
        &mut self,
        _train: &RecordSet<'_>,
        _valid: Option<&RecordSet<'_>>,
        _context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        Err(format!("model {} cannot fit records with covariates and several outputs", self.name()).into())
    }

    /// Predicts records (their `y` unused) with a model fitted by [`Predictor::fit_records`].
    fn predict_records(&self, _set: &RecordSet<'_>) -> Result<Vec<f64>, ModelError> {
        Err(format!("model {} cannot predict records with covariates and several outputs", self.name()).into())
    }

    /// The covariance structure of the genetic values of `rows` (a kernel over lines: GBLUP's
    /// genomic relationship, RKHS's Gaussian kernel), with everything it learns from data —
    /// allele frequencies, scaling, bandwidth — taken from `train_rows` only. The
    /// multi-environment models (`--env-model across|gxe`, [`crate::env_model`]) build on it;
    /// `None` for models without one.
    fn genetic_kernel(
        &self,
        _geno: &GenotypeMatrix,
        _train_rows: &[usize],
        _rows: &[usize],
    ) -> Option<Result<faer::Mat<f64>, ModelError>> {
        None
    }
}
