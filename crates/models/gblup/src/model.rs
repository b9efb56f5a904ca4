//! GBLUP: VanRaden's genomic relationship matrix, REML variance components, BLUP of the test
//! samples — stored as the equivalent marker effects so prediction needs no training genotypes.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, get_global_parallelism};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::output::read_json_state;
pub use genopred_core::reml::RemlSummary;
use genopred_core::reml::Spectral;
use genopred_core::{FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, TrainSet};

use crate::error::GblupError;
use crate::hyperparams::GblupConfig;

/// Fewest training samples accepted (two parameters of variance plus an intercept need more
/// than a handful of records to mean anything).
pub const MIN_TRAIN: usize = 5;

/// A fitted GBLUP model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FittedGblup {
    /// Centring fitted on the training samples (`x − 2p`, missing → training mean).
    pub encoder: DosageEncoder,
    /// VanRaden's scale `2 Σ p(1 − p)` from the training allele frequencies.
    pub scale: f64,
    /// Intercept `β̂`.
    pub intercept: f64,
    /// Marker effects `b = Zᵀ (G + δI)⁻¹ (y − 1β̂) / scale`, so `ĝ = z b` (the rrBLUP-equivalent
    /// effects of the GBLUP solution).
    pub effects: Vec<f64>,
    /// Variance components.
    pub reml: Option<RemlSummary>,
}

impl FittedGblup {
    /// Fits GBLUP on `rows` of `geno` with trait values `y`.
    ///
    /// `config` is trusted: it must have passed [`GblupConfig::check`] (as every config a
    /// [`Gblup`] holds has; the default does).
    pub fn fit(geno: &GenotypeMatrix, rows: &[usize], y: &[f64], config: &GblupConfig) -> Result<Self, GblupError> {
        debug_assert!(config.check().is_ok(), "FittedGblup::fit with an unchecked config: {config:?}");
        let n = rows.len();
        if n < MIN_TRAIN {
            return Err(GblupError::TooFewSamples { got: n, needed: MIN_TRAIN });
        }
        assert_eq!(y.len(), n, "one trait value per training row");
        let encoder = DosageEncoder::fit(geno, rows, Scaling::Centred);
        let scale: f64 = encoder.means.iter().map(|&m| m * (1.0 - m / 2.0)).sum::<f64>();
        if scale.is_nan() || scale <= 0.0 {
            return Err(GblupError::NoVariation);
        }
        let block = block_markers(n);
        let g = relationship(&encoder, geno, rows, scale, block);
        let mean_diag = (0..n).map(|i| g[(i, i)]).sum::<f64>() / n as f64;
        if mean_diag.is_nan() || mean_diag <= 1e-12 {
            // Every marker constant in the training set (e.g. all heterozygous): Z = 0.
            return Err(GblupError::NoVariation);
        }
        let spectral = Spectral::new(&g, y)?;
        let (fit, beta) = spectral.fit(&config.search())?;
        // b = Zᵀ α / scale, with α = (G + δI)⁻¹ (y − 1β̂).
        let alpha = spectral.alpha(&fit, beta);
        let effects = marker_effects(&encoder, geno, rows, &alpha, scale, block);
        if effects.iter().any(|e| !e.is_finite()) {
            return Err(GblupError::Numerical("non-finite marker effects".into()));
        }
        Ok(FittedGblup { encoder, scale, intercept: beta, effects, reml: Some(RemlSummary::new(&fit, mean_diag)) })
    }

    /// Predicted trait values (`β̂ + z b`) of `rows`.
    pub fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, GblupError> {
        self.encoder.linear(geno, rows, self.intercept, &self.effects).map_err(GblupError::Usage)
    }
}

/// About this many bytes of decoded (f64) genotypes exist at a time while G and the marker
/// effects are computed: the training genotypes stay as stored codes and are decoded a block of
/// markers at a time, so the fit's memory is G (n × n) and its eigenvectors plus one block, not
/// an n × m matrix of f64 (8 bytes per genotype, 5.8 GB at 12,000 × 60,000).
const BLOCK_BYTES: usize = 64 << 20;

/// Markers per decoded block for `n` training rows (at least 256, so blocks stay wide enough
/// for an efficient GEMM).
pub fn block_markers(n: usize) -> usize {
    (BLOCK_BYTES / (8 * n.max(1))).max(256)
}

/// VanRaden's (2008) first genomic relationship matrix `G = Z Zᵀ / (2 Σ p(1 − p))` of `rows`,
/// with `Z` the dosages centred by `encoder`, accumulated over blocks of `block` markers
/// (`Σ_b Z_b Z_bᵀ`; one block when the markers fit in one, which is exactly `Z Zᵀ`).
pub fn relationship(
    encoder: &DosageEncoder,
    geno: &GenotypeMatrix,
    rows: &[usize],
    scale: f64,
    block: usize,
) -> Mat<f64> {
    let n = rows.len();
    let mut g = Mat::<f64>::zeros(n, n);
    for (k, start) in (0..encoder.n_markers()).step_by(block.max(1)).enumerate() {
        let z = encoder.transform_markers(geno, rows, start..(start + block).min(encoder.n_markers()));
        let accum = if k == 0 { Accum::Replace } else { Accum::Add };
        matmul(g.as_mut(), accum, z.as_ref(), z.transpose(), 1.0, get_global_parallelism());
    }
    g *= faer::Scale(1.0 / scale);
    g
}

/// The marker effects `b = Zᵀ α / scale` of `rows`, a block of `block` markers at a time.
pub fn marker_effects(
    encoder: &DosageEncoder,
    geno: &GenotypeMatrix,
    rows: &[usize],
    alpha: &[f64],
    scale: f64,
    block: usize,
) -> Vec<f64> {
    let alpha = Mat::from_fn(rows.len(), 1, |i, _| alpha[i]);
    let mut effects = Vec::with_capacity(encoder.n_markers());
    for start in (0..encoder.n_markers()).step_by(block.max(1)) {
        let z = encoder.transform_markers(geno, rows, start..(start + block).min(encoder.n_markers()));
        let b = z.transpose() * &alpha;
        effects.extend((0..b.nrows()).map(|j| b[(j, 0)] / scale));
    }
    effects
}

/// What a GBLUP fit reports (the model's part of [`FitInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GblupFitReport {
    /// Intercept `β̂`.
    pub intercept: f64,
    /// Variance components.
    pub reml: Option<RemlSummary>,
}

/// The GBLUP baseline as a [`Predictor`].
#[derive(Debug, Clone, Default)]
pub struct Gblup {
    /// REML search settings, checked.
    config: GblupConfig,
    fitted: Option<FittedGblup>,
}

impl Gblup {
    /// A GBLUP model with the given settings, checked here once so the fit can trust them.
    pub fn new(config: GblupConfig) -> Result<Self, GblupError> {
        config.check()?;
        Ok(Gblup { config, fitted: None })
    }

    /// The REML search settings.
    pub fn config(&self) -> &GblupConfig {
        &self.config
    }

    /// The fitted state, after [`Predictor::fit`].
    pub fn fitted(&self) -> Option<&FittedGblup> {
        self.fitted.as_ref()
    }

    /// Reads a model saved by [`Predictor::save`] from `dir` (`gblup.json`).
    pub fn load(config: GblupConfig, dir: &std::path::Path) -> Result<Self, GblupError> {
        config.check()?;
        let path = dir.join(SAVED_FILE);
        let fitted: FittedGblup = read_json_state(dir, SAVED_FILE).map_err(GblupError::Usage)?;
        if fitted.effects.len() != fitted.encoder.n_markers() {
            return Err(GblupError::Usage(format!(
                "{}: {} marker effects but {} marker means",
                path.display(),
                fitted.effects.len(),
                fitted.encoder.n_markers()
            )));
        }
        Ok(Gblup { config, fitted: Some(fitted) })
    }
}

/// The fitted state in a saved model folder: centring, intercept and marker effects (JSON).
pub const SAVED_FILE: &str = "gblup.json";

impl Predictor for Gblup {
    fn name(&self) -> &str {
        "gblup"
    }

    fn wants_validation(&self) -> bool {
        false
    }

    fn fit(
        &mut self,
        train: &TrainSet<'_>,
        _valid: Option<&TrainSet<'_>>,
        _: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        let fitted = FittedGblup::fit(train.geno, train.rows, train.y, &self.config)?;
        let info = FitInfo::new(None, &GblupFitReport { intercept: fitted.intercept, reml: fitted.reml })?;
        self.fitted = Some(fitted);
        Ok(info)
    }

    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        let fitted = self.fitted.as_ref().ok_or_else(|| GblupError::Usage("predict called before fit".into()))?;
        Ok(fitted.predict(geno, rows)?)
    }

    fn marker_effects(&self) -> Option<Vec<f64>> {
        self.fitted.as_ref().map(|f| f.effects.clone())
    }

    fn save(&self, dir: &std::path::Path) -> Result<(), ModelError> {
        let fitted = self.fitted.as_ref().ok_or_else(|| GblupError::Usage("save called before fit".into()))?;
        genopred_core::output::write_atomic(&dir.join(SAVED_FILE), &serde_json::to_vec(fitted)?)?;
        Ok(())
    }
}
