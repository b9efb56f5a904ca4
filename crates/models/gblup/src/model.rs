//! GBLUP: VanRaden's genomic relationship matrix, REML variance components, BLUP of the test
//! samples — stored as the equivalent marker effects so prediction needs no training genotypes.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, get_global_parallelism};
use genopred_core::encoding::dosage::{lines_per_block, markers_per_block};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::gram::{MAX_MISSING_RATE, Shared, SharedWork, missing_rate};
use genopred_core::output::read_json_state;
pub use genopred_core::reml::RemlSummary;
use genopred_core::reml::Spectral;
use genopred_core::reml::matrix_free::{Covariance, MatrixFreeReml, MatrixFreeSettings};
use genopred_core::{FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, TrainSet};

use crate::error::GblupError;
use crate::hyperparams::{EXACT_BYTES_PER_LINE_SQUARED, GblupConfig};

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
    /// Which REML computation ran (models saved before it was recorded ran the exact one).
    #[serde(default)]
    pub method: RemlMethod,
    /// What the matrix-free computation cost, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix_free: Option<MatrixFreeReport>,
}

/// Which REML computation a fit ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemlMethod {
    /// Exact REML in G's eigenbasis (n × n, the space of lines).
    #[default]
    Individual,
    /// Exact REML in the eigenbasis of `ZᵀZ` (m × m, the space of markers): the same REML and
    /// BLUP, for fewer markers than lines.
    Marker,
    /// Conjugate gradients on `G + δI` and a stochastic trace, G applied from the genotypes.
    MatrixFree,
}

/// The matrix-free computation's cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatrixFreeReport {
    /// Random probes of the trace estimate.
    pub probes: usize,
    /// Searches over δ on the Lanczos tridiagonals (none passes over the genotypes).
    pub evaluations: usize,
    /// Solver iterations, Lanczos steps plus the final solve's: each is one pass over the
    /// training genotypes.
    pub iterations: usize,
}

impl FittedGblup {
    /// Fits GBLUP on `rows` of `geno` with trait values `y`. `seed` draws the matrix-free
    /// method's probes (the exact method uses no random numbers).
    ///
    /// `config` is trusted: it must have passed [`GblupConfig::check`] (as every config a
    /// [`Gblup`] holds has; the default does).
    pub fn fit(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        seed: u64,
    ) -> Result<Self, GblupError> {
        Self::fit_with(geno, rows, y, config, seed, config.method_for(rows.len(), geno.n_markers()))
    }

    /// [`fit`](Self::fit) inside a run that shares work between its fits: the exact form in the
    /// space of lines derives G from the run's `X Xᵀ` ([`genopred_core::gram`]) instead of a GEMM
    /// of its own, when that matrix (8 bytes per pair of the run's lines) fits in
    /// `exact_memory_gb` beside the exact form's own working set, the fold's QC dropped at most
    /// a fifth of the markers and at most 5 % of its genotypes are missing calls. The fit equals
    /// [`fit`](Self::fit)'s to rounding.
    pub fn fit_sharing(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        seed: u64,
        shared: Option<Shared<'_>>,
    ) -> Result<Self, GblupError> {
        let method = config.method_for(rows.len(), geno.n_markers());
        Self::fit_full(geno, rows, y, config, seed, method, shared)
    }

    /// [`fit`](Self::fit) with the computation given instead of chosen by `config.method`.
    pub fn fit_with(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        seed: u64,
        method: RemlMethod,
    ) -> Result<Self, GblupError> {
        Self::fit_full(geno, rows, y, config, seed, method, None)
    }

    fn fit_full(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        seed: u64,
        method: RemlMethod,
        shared: Option<Shared<'_>>,
    ) -> Result<Self, GblupError> {
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
        let block = markers_per_block(n);
        match method {
            RemlMethod::Individual => {}
            RemlMethod::Marker => return Self::fit_marker(geno, rows, y, config, encoder, scale),
            RemlMethod::MatrixFree => return Self::fit_matrix_free(geno, rows, y, config, seed, encoder, scale),
        }
        let shared = shared.filter(|s| {
            let (lines, exact) = (s.geno.n_samples() as f64, n as f64);
            s.kept.len() == geno.n_markers()
                && s.geno.n_samples() == geno.n_samples()
                && SharedWork::worth_it(s.kept.len(), s.geno.n_markers())
                && 8.0 * lines * lines + EXACT_BYTES_PER_LINE_SQUARED * exact * exact <= config.exact_memory_gb * 1e9
                && missing_rate(geno, rows) <= MAX_MISSING_RATE
        });
        let derived = shared.and_then(|s| s.work.gram(s.geno).centred(s.geno, s.kept, rows, &encoder.means));
        let g = match derived {
            Some(mut g) => {
                g *= faer::Scale(1.0 / scale);
                g
            }
            None => relationship(&encoder, geno, rows, scale, block),
        };
        let mean_diag = (0..n).map(|i| g[(i, i)]).sum::<f64>() / n as f64;
        check_variation(mean_diag)?;
        let spectral = Spectral::new(&g, y)?;
        let (fit, beta) = spectral.fit(&config.search())?;
        // b = Zᵀ α / scale, with α = (G + δI)⁻¹ (y − 1β̂).
        let alpha = spectral.alpha(&fit, beta);
        let effects = marker_effects(&encoder, geno, rows, &alpha, scale, block);
        FittedGblup::checked(
            encoder,
            scale,
            beta,
            effects,
            RemlSummary::new(&fit, mean_diag),
            RemlMethod::Individual,
            None,
        )
    }

    /// The fitted state, refusing non-finite marker effects (the one check every form ends with).
    fn checked(
        encoder: DosageEncoder,
        scale: f64,
        intercept: f64,
        effects: Vec<f64>,
        reml: RemlSummary,
        method: RemlMethod,
        matrix_free: Option<MatrixFreeReport>,
    ) -> Result<Self, GblupError> {
        if effects.iter().any(|e| !e.is_finite()) {
            return Err(GblupError::Numerical("non-finite marker effects".into()));
        }
        Ok(FittedGblup { encoder, scale, intercept, effects, reml: Some(reml), method, matrix_free })
    }

    /// Exact REML in marker space, for fewer markers than lines (FaST-LMM's low-rank form; the
    /// BLUP as rrBLUP): `ZᵀZ = V D Vᵀ` (m × m) gives G's non-zero eigenpairs, `λᵢ = dᵢ / scale`
    /// with eigenvectors `Z vᵢ / √dᵢ`, and the rest of the space (G's null space) enters REML
    /// through sums only. The effects are `b = V (D + δ·scale)⁻¹ Vᵀ Zᵀ (y − 1β̂)`, which equal
    /// the individual form's `Zᵀ α / scale`.
    fn fit_marker(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        encoder: DosageEncoder,
        scale: f64,
    ) -> Result<Self, GblupError> {
        let (n, m) = (rows.len(), encoder.n_markers());
        // The trait centred on its mean (REML is unchanged; the null space's sums are then
        // differences of sums of squares about the mean, not of raw squares).
        let mean_y = y.iter().sum::<f64>() / n as f64;
        let yc: Vec<f64> = y.iter().map(|v| v - mean_y).collect();
        // ZᵀZ, then Zᵀ[y 1] (a second pass, O(nm) against the GEMM's O(nm²)), a block of lines
        // at a time.
        let per_block = lines_per_block(m);
        let gram = encoder.gram_of_markers(geno, rows, per_block);
        let mut zt_v = Mat::<f64>::zeros(m, 2);
        for (chunk, ys) in rows.chunks(per_block).zip(yc.chunks(per_block)) {
            let wt = encoder.transform_markers_t(geno, chunk, 0..m);
            let v = Mat::from_fn(chunk.len(), 2, |i, j| if j == 0 { ys[i] } else { 1.0 });
            matmul(zt_v.as_mut(), Accum::Add, wt.as_ref(), v.as_ref(), 1.0, get_global_parallelism());
        }
        let trace = (0..m).map(|j| gram[(j, j)]).sum::<f64>();
        let mean_diag = trace / (n as f64 * scale);
        check_variation(mean_diag)?;
        let evd = gram
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|e| GblupError::Numerical(format!("eigendecomposition of ZᵀZ failed: {e:?}")))?;
        drop(gram);
        let (v, d) = (evd.U(), evd.S().column_vector());
        // Project Zᵀ[y 1] on the eigenvectors once.
        let vt_ztv = v.transpose() * &zt_v;
        let d_max = d.iter().fold(0.0f64, |a, &b| a.max(b));
        // Eigenvalues at round-off level belong to the null space (collinear markers).
        let held: Vec<usize> = (0..m).filter(|&i| d[i] > d_max * 1e-12 * m as f64).collect();
        let lambda = held.iter().map(|&i| d[i] / scale).collect();
        let uy = held.iter().map(|&i| vt_ztv[(i, 0)] / d[i].sqrt()).collect();
        let ux = Mat::from_fn(held.len(), 1, |k, _| vt_ztv[(held[k], 1)] / d[held[k]].sqrt());
        let yy = yc.iter().map(|v| v * v).sum::<f64>();
        let total_xx = Mat::from_fn(1, 1, |_, _| n as f64);
        let rotated = genopred_core::reml::Rotated::low_rank(lambda, uy, ux, n, (yy, &[yc.iter().sum()], &total_xx));
        let (fit, beta) = rotated.fit(&config.search())?;
        let beta_c = beta[0];
        // Vᵀ Zᵀ (yc − 1β̂c), weighted by (dᵢ + δ·scale)⁻¹, back through V.
        let weighted =
            Mat::from_fn(m, 1, |i, _| (vt_ztv[(i, 0)] - beta_c * vt_ztv[(i, 1)]) / (d[i].max(0.0) + fit.delta * scale));
        let b = v * &weighted;
        let effects: Vec<f64> = (0..m).map(|j| b[(j, 0)]).collect();
        let reml = RemlSummary::new(&fit, mean_diag);
        FittedGblup::checked(encoder, scale, beta_c + mean_y, effects, reml, RemlMethod::Marker, None)
    }

    /// The matrix-free fit: G is never formed; it is applied from the stored genotypes.
    fn fit_matrix_free(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &GblupConfig,
        seed: u64,
        encoder: DosageEncoder,
        scale: f64,
    ) -> Result<Self, GblupError> {
        let n = rows.len();
        let operator = GenomicOperator::new(&encoder, geno, rows, scale);
        let mean_diag = operator.mean_diagonal();
        check_variation(mean_diag)?;
        let settings = MatrixFreeSettings { probes: config.probes, seed, ..MatrixFreeSettings::default() };
        let solved = MatrixFreeReml::new(&operator, y, settings).fit(&config.search())?;
        let effects = marker_effects(&encoder, geno, rows, &solved.alpha, scale, markers_per_block(n));
        let cost =
            MatrixFreeReport { probes: config.probes, evaluations: solved.evaluations, iterations: solved.iterations };
        let reml = RemlSummary::new(&solved.fit, mean_diag);
        FittedGblup::checked(encoder, scale, solved.beta, effects, reml, RemlMethod::MatrixFree, Some(cost))
    }

    /// Predicted trait values (`β̂ + z b`) of `rows`.
    pub fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, GblupError> {
        self.encoder.linear(geno, rows, self.intercept, &self.effects).map_err(GblupError::Usage)
    }
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
    let mut g = encoder.gram_of_rows(geno, rows, block);
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

/// G's mean diagonal is 0 when every marker is constant in the training set (e.g. all
/// heterozygous): Z = 0 and there is no relationship to fit.
fn check_variation(mean_diag: f64) -> Result<(), GblupError> {
    if mean_diag.is_nan() || mean_diag <= 1e-12 { Err(GblupError::NoVariation) } else { Ok(()) }
}

/// VanRaden's G of `rows` as an operator: `G X = Z (Zᵀ X) / scale`, with `Z` decoded from the
/// stored genotypes a block of markers at a time, so G never exists (matrix-free REML).
pub struct GenomicOperator<'a> {
    encoder: &'a DosageEncoder,
    geno: &'a GenotypeMatrix,
    rows: &'a [usize],
    scale: f64,
    block: usize,
    /// The decoded block, reused across blocks and applications.
    buffer: std::cell::RefCell<Mat<f64>>,
}

impl<'a> GenomicOperator<'a> {
    /// The operator of `rows`, centred by `encoder`, scaled by `1 / scale`.
    pub fn new(encoder: &'a DosageEncoder, geno: &'a GenotypeMatrix, rows: &'a [usize], scale: f64) -> Self {
        GenomicOperator {
            encoder,
            geno,
            rows,
            scale,
            block: markers_per_block(rows.len()),
            buffer: std::cell::RefCell::new(Mat::zeros(0, 0)),
        }
    }

    /// The same operator decoding `block` markers at a time (the default is [`markers_per_block`] of the lines).
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block.max(1);
        self
    }

    /// The mean of G's diagonal (`Σᵢ ‖zᵢ‖² / (n · scale)`), one pass over the genotypes.
    pub fn mean_diagonal(&self) -> f64 {
        let m = self.encoder.n_markers();
        let mut sum = 0.0;
        for start in (0..m).step_by(self.block) {
            let zt = self.encoder.transform_markers_t(self.geno, self.rows, start..(start + self.block).min(m));
            sum += zt.squared_norm_l2();
        }
        sum / (self.rows.len() as f64 * self.scale)
    }
}

impl Covariance for GenomicOperator<'_> {
    fn n(&self) -> usize {
        self.rows.len()
    }

    fn apply(&self, x: faer::MatRef<'_, f64>) -> Mat<f64> {
        let m = self.encoder.n_markers();
        let mut out = Mat::<f64>::zeros(x.nrows(), x.ncols());
        // One decoding buffer for every block (a fresh 64 MiB matrix per block cost page faults).
        let mut buffer = self.buffer.borrow_mut();
        if buffer.nrows() != self.block.min(m) || buffer.ncols() != self.rows.len() {
            *buffer = Mat::zeros(self.block.min(m), self.rows.len());
        }
        for start in (0..m).step_by(self.block) {
            let end = (start + self.block).min(m);
            let mut zt = buffer.get_mut(0..end - start, ..);
            self.encoder.transform_markers_t_into(self.geno, self.rows, start..end, zt.as_mut());
            let t = zt.as_ref() * x;
            matmul(
                out.as_mut(),
                Accum::Add,
                zt.as_ref().transpose(),
                t.as_ref(),
                1.0 / self.scale,
                get_global_parallelism(),
            );
        }
        out
    }
}

/// What a GBLUP fit reports (the model's part of [`FitInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GblupFitReport {
    /// Intercept `β̂`.
    pub intercept: f64,
    /// Variance components.
    pub reml: Option<RemlSummary>,
    /// Which REML computation ran.
    #[serde(default)]
    pub method: RemlMethod,
    /// The matrix-free computation's cost, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix_free: Option<MatrixFreeReport>,
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
        context: &FitContext<'_>,
    ) -> Result<FitInfo, ModelError> {
        let fitted =
            FittedGblup::fit_sharing(train.geno, train.rows, train.y, &self.config, context.seed, context.shared)?;
        let info = FitInfo::new(
            None,
            &GblupFitReport {
                intercept: fitted.intercept,
                reml: fitted.reml,
                method: fitted.method,
                matrix_free: fitted.matrix_free,
            },
        )?;
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

    /// VanRaden's `G` of `rows`, centred and scaled by the allele frequencies of `train_rows`.
    fn genetic_kernel(
        &self,
        geno: &GenotypeMatrix,
        train_rows: &[usize],
        rows: &[usize],
    ) -> Option<Result<Mat<f64>, ModelError>> {
        let encoder = DosageEncoder::fit(geno, train_rows, Scaling::Centred);
        let scale: f64 = encoder.means.iter().map(|&m| m * (1.0 - m / 2.0)).sum::<f64>();
        if scale.is_nan() || scale <= 0.0 {
            return Some(Err(GblupError::NoVariation.into()));
        }
        Some(Ok(relationship(&encoder, geno, rows, scale, markers_per_block(rows.len()))))
    }

    fn save(&self, dir: &std::path::Path) -> Result<(), ModelError> {
        let fitted = self.fitted.as_ref().ok_or_else(|| GblupError::Usage("save called before fit".into()))?;
        genopred_core::output::write_atomic(&dir.join(SAVED_FILE), &serde_json::to_vec(fitted)?)?;
        Ok(())
    }
}
