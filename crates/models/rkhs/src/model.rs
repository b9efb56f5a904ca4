//! RKHS regression: a Gaussian kernel over the training lines' dosages, REML variance
//! components and bandwidth, and the BLUP of new lines from their kernel to the training lines.

use faer::Mat;
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::output::read_json_state;
use genopred_core::reml::{RemlFit, RemlSummary, Spectral};
use genopred_core::{FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, SaliencyOptions, TrainSet};

use crate::error::RkhsError;
use crate::hyperparams::RkhsConfig;

/// Fewest training samples accepted (two variance components and an intercept, as GBLUP).
pub const MIN_TRAIN: usize = 5;

/// REML at one bandwidth: the profile a fit reports.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BandwidthFit {
    /// θ.
    pub bandwidth: f64,
    /// Restricted log-likelihood at REML's δ for this θ.
    pub log_likelihood: f64,
    /// `σ²_g / (σ²_g + σ²_e)` (the kernel's diagonal is 1).
    pub h2: f64,
}

/// A fitted RKHS model. Unlike GBLUP's marker effects, its predictions need the training lines'
/// genotypes, so they are part of the fitted state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FittedRkhs {
    /// Mean imputation (and centring) fitted on the training lines.
    pub encoder: DosageEncoder,
    /// The training lines' stored calls, row-major `n_train × markers` (dosage × 100, 255 missing).
    pub train_codes: Vec<u8>,
    /// Training lines.
    pub n_train: usize,
    /// Median squared distance between two training lines (the kernel's scale).
    pub median_d2: f64,
    /// The bandwidth θ REML chose.
    pub bandwidth: f64,
    /// Intercept `β̂`.
    pub intercept: f64,
    /// `α = (K + δI)⁻¹ (y − 1β̂)`, one per training line: `ŷ_new = β̂ + k_newᵀ α`.
    pub alpha: Vec<f64>,
    /// Variance components at the chosen θ.
    pub reml: RemlSummary,
    /// REML at every θ searched.
    pub profile: Vec<BandwidthFit>,
}

/// The bandwidth with the highest restricted likelihood so far.
struct Best {
    theta: f64,
    fit: RemlFit,
    beta: f64,
    spectral: Spectral,
}

impl FittedRkhs {
    /// Fits RKHS on `rows` of `geno` with trait values `y`. `config` must have passed
    /// [`RkhsConfig::check`].
    pub fn fit(geno: &GenotypeMatrix, rows: &[usize], y: &[f64], config: &RkhsConfig) -> Result<Self, RkhsError> {
        debug_assert!(config.check().is_ok(), "FittedRkhs::fit with an unchecked config: {config:?}");
        let n = rows.len();
        if n < MIN_TRAIN {
            return Err(RkhsError::TooFewSamples { got: n, needed: MIN_TRAIN });
        }
        assert_eq!(y.len(), n, "one trait value per training row");
        let encoder = DosageEncoder::fit(geno, rows, Scaling::Centred);
        let z = encoder.transform(geno, rows);
        let d2 = squared_distances(&z, &z);
        let median_d2 = median_off_diagonal(&d2);
        if median_d2.is_nan() || median_d2 <= 0.0 {
            return Err(RkhsError::NoVariation);
        }
        let search = config.search();
        let mut profile = Vec::with_capacity(config.bandwidths.len());
        let mut best: Option<Best> = None;
        for &theta in &config.bandwidths {
            let k = Mat::from_fn(n, n, |i, j| (-theta * d2[(i, j)] / median_d2).exp());
            let spectral = Spectral::new(&k, y)?;
            let (fit, beta) = spectral.fit(&search)?;
            let summary = RemlSummary::new(&fit, 1.0);
            profile.push(BandwidthFit { bandwidth: theta, log_likelihood: fit.log_likelihood, h2: summary.h2 });
            if best.as_ref().is_none_or(|b| fit.log_likelihood > b.fit.log_likelihood) {
                best = Some(Best { theta, fit, beta, spectral });
            }
        }
        let Best { theta, fit, beta, spectral } = best.expect("at least one bandwidth (checked)");
        let alpha = spectral.alpha(&fit, beta);
        if alpha.iter().any(|a| !a.is_finite()) {
            return Err(RkhsError::Numerical("non-finite kernel weights".into()));
        }
        let train_codes = rows.iter().flat_map(|&r| geno.row(r).into_owned()).collect();
        Ok(FittedRkhs {
            encoder,
            train_codes,
            n_train: n,
            median_d2,
            bandwidth: theta,
            intercept: beta,
            alpha,
            // The kernel's diagonal is 1.
            reml: RemlSummary::new(&fit, 1.0),
            profile,
        })
    }

    /// The training lines, encoded as in the fit.
    fn train_matrix(&self) -> Mat<f64> {
        let m = self.encoder.n_markers();
        Mat::from_fn(self.n_train, m, |i, j| self.encoder.value(self.train_codes[i * m + j], j))
    }

    /// `rows` of `geno` encoded with the training encoder, after checking the marker count.
    fn encode(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Mat<f64>, RkhsError> {
        if geno.n_markers() != self.encoder.n_markers() {
            return Err(RkhsError::Usage(format!(
                "model was fitted on {} markers but the genotypes have {}",
                self.encoder.n_markers(),
                geno.n_markers()
            )));
        }
        Ok(self.encoder.transform(geno, rows))
    }

    /// Kernel weights `α_i k(new, i)` of each new line (rows) to each training line (columns).
    fn weights(&self, new: &Mat<f64>, train: &Mat<f64>) -> Mat<f64> {
        let d2 = squared_distances(new, train);
        Mat::from_fn(new.nrows(), self.n_train, |t, i| {
            self.alpha[i] * (-self.bandwidth * d2[(t, i)] / self.median_d2).exp()
        })
    }

    /// Predicted trait values (`β̂ + Σᵢ αᵢ k(x, xᵢ)`) of `rows`.
    pub fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, RkhsError> {
        let new = self.encode(geno, rows)?;
        let w = self.weights(&new, &self.train_matrix());
        Ok((0..rows.len()).map(|t| self.intercept + (0..self.n_train).map(|i| w[(t, i)]).sum::<f64>()).collect())
    }

    /// `|∂ŷ/∂xⱼ|` for each of `rows` and each marker, row-major: the exact gradient of the
    /// kernel predictor, `−(2θ / median d²) Σᵢ αᵢ k(x, xᵢ) (xⱼ − xᵢⱼ)`, in trait units per allele
    /// copy (the centring does not change the slope).
    pub fn gradients(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f32>, RkhsError> {
        let new = self.encode(geno, rows)?;
        let train = self.train_matrix();
        let w = self.weights(&new, &train);
        // Σᵢ wᵢ xᵢⱼ for every new line at once.
        let wx = &w * &train;
        let scale = -2.0 * self.bandwidth / self.median_d2;
        let m = self.encoder.n_markers();
        let mut out = Vec::with_capacity(rows.len() * m);
        for t in 0..rows.len() {
            let sum_w: f64 = (0..self.n_train).map(|i| w[(t, i)]).sum();
            out.extend((0..m).map(|j| (scale * (new[(t, j)] * sum_w - wx[(t, j)])).abs() as f32));
        }
        Ok(out)
    }

    /// Checks a loaded state's sizes against each other.
    fn check_shapes(&self) -> Result<(), String> {
        let m = self.encoder.n_markers();
        if self.train_codes.len() != self.n_train * m {
            return Err(format!("{} stored calls for {} lines × {m} markers", self.train_codes.len(), self.n_train));
        }
        if self.alpha.len() != self.n_train {
            return Err(format!("{} kernel weights for {} lines", self.alpha.len(), self.n_train));
        }
        if !(self.median_d2 > 0.0 && self.bandwidth > 0.0) {
            return Err(format!("kernel scale {} and bandwidth {} must be > 0", self.median_d2, self.bandwidth));
        }
        Ok(())
    }
}

/// Squared Euclidean distances between the rows of `a` and the rows of `b` (`‖a‖² + ‖b‖² −
/// 2abᵀ`, one GEMM; clamped at 0 against rounding).
fn squared_distances(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let norms = |x: &Mat<f64>| -> Vec<f64> {
        (0..x.nrows()).map(|i| (0..x.ncols()).map(|j| x[(i, j)] * x[(i, j)]).sum()).collect()
    };
    let (na, nb) = (norms(a), norms(b));
    let cross = a * b.transpose();
    Mat::from_fn(a.nrows(), b.nrows(), |i, j| (na[i] + nb[j] - 2.0 * cross[(i, j)]).max(0.0))
}

/// The median of the strictly upper triangle (each pair of distinct lines once).
fn median_off_diagonal(d2: &Mat<f64>) -> f64 {
    let n = d2.nrows();
    let mut v: Vec<f64> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).map(|(i, j)| d2[(i, j)]).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let h = v.len() / 2;
    if v.len() % 2 == 1 { v[h] } else { 0.5 * (v[h - 1] + v[h]) }
}

/// What an RKHS fit reports (the model's part of [`FitInfo`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RkhsFitReport {
    /// The bandwidth θ REML chose.
    pub bandwidth: f64,
    /// Median squared distance between training lines (the kernel's scale).
    pub median_d2: f64,
    /// Intercept `β̂`.
    pub intercept: f64,
    /// Variance components at the chosen θ.
    pub reml: RemlSummary,
    /// REML at every θ searched.
    pub profile: Vec<BandwidthFit>,
}

/// RKHS regression as a [`Predictor`].
#[derive(Debug, Clone, Default)]
pub struct Rkhs {
    /// Settings, checked.
    config: RkhsConfig,
    fitted: Option<FittedRkhs>,
}

/// The fitted state in a saved model folder (JSON).
pub const SAVED_FILE: &str = "rkhs.json";

impl Rkhs {
    /// An RKHS model with the given settings, checked here once so the fit can trust them.
    pub fn new(config: RkhsConfig) -> Result<Self, RkhsError> {
        config.check()?;
        Ok(Rkhs { config, fitted: None })
    }

    /// The settings.
    pub fn config(&self) -> &RkhsConfig {
        &self.config
    }

    /// The fitted state, after [`Predictor::fit`].
    pub fn fitted(&self) -> Option<&FittedRkhs> {
        self.fitted.as_ref()
    }

    /// Reads a model saved by [`Predictor::save`] from `dir` (`rkhs.json`).
    pub fn load(config: RkhsConfig, dir: &std::path::Path) -> Result<Self, RkhsError> {
        config.check()?;
        let path = dir.join(SAVED_FILE);
        let fitted: FittedRkhs = read_json_state(dir, SAVED_FILE).map_err(RkhsError::Usage)?;
        fitted.check_shapes().map_err(|e| RkhsError::Usage(format!("{}: {e}", path.display())))?;
        Ok(Rkhs { config, fitted: Some(fitted) })
    }

    fn state(&self, what: &str) -> Result<&FittedRkhs, RkhsError> {
        self.fitted.as_ref().ok_or_else(|| RkhsError::Usage(format!("{what} called before fit")))
    }
}

impl Predictor for Rkhs {
    fn name(&self) -> &str {
        "rkhs"
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
        let f = FittedRkhs::fit(train.geno, train.rows, train.y, &self.config)?;
        let report = RkhsFitReport {
            bandwidth: f.bandwidth,
            median_d2: f.median_d2,
            intercept: f.intercept,
            reml: f.reml,
            profile: f.profile.clone(),
        };
        let info = FitInfo::new(None, &report)?;
        self.fitted = Some(f);
        Ok(info)
    }

    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        Ok(self.state("predict")?.predict(geno, rows)?)
    }

    /// The Gaussian kernel `exp(−θ d² / median d²)` of `rows`, with the dosages centred and the
    /// median distance taken over `train_rows`. θ is the config's bandwidth when it names one,
    /// else 1 (Cuevas et al. 2016, 2017: the median-scaled kernel's bandwidth 1, as their G×E
    /// kernel models use; choosing θ by the multi-environment likelihood is left to a later
    /// change).
    fn genetic_kernel(
        &self,
        geno: &GenotypeMatrix,
        train_rows: &[usize],
        rows: &[usize],
    ) -> Option<Result<Mat<f64>, ModelError>> {
        let encoder = DosageEncoder::fit(geno, train_rows, Scaling::Centred);
        let z_train = encoder.transform(geno, train_rows);
        let median_d2 = median_off_diagonal(&squared_distances(&z_train, &z_train));
        if median_d2.is_nan() || median_d2 <= 0.0 {
            return Some(Err(RkhsError::NoVariation.into()));
        }
        let theta = if self.config.bandwidths.len() == 1 { self.config.bandwidths[0] } else { 1.0 };
        let z = encoder.transform(geno, rows);
        let d2 = squared_distances(&z, &z);
        Some(Ok(Mat::from_fn(rows.len(), rows.len(), |i, j| (-theta * d2[(i, j)] / median_d2).exp())))
    }

    /// The kernel predictor's exact input gradient (SmoothGrad does not apply: the kernel is
    /// already smooth, so `options` are not used).
    fn saliency_blocks(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        _options: &SaliencyOptions,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), ModelError>,
    ) -> Result<bool, ModelError> {
        let state = self.state("saliency")?;
        // Each row's gradient is its own: blocks of about 64 MiB of output.
        let block = ((64usize << 20) / (4 * geno.n_markers()).max(1)).max(1);
        for chunk in rows.chunks(block) {
            sink(&state.gradients(geno, chunk)?)?;
        }
        Ok(true)
    }

    fn save(&self, dir: &std::path::Path) -> Result<(), ModelError> {
        let fitted = self.state("save")?;
        genopred_core::output::write_atomic(&dir.join(SAVED_FILE), &serde_json::to_vec(fitted)?)?;
        Ok(())
    }
}
