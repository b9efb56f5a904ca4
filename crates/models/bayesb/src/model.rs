//! BayesB as a [`Predictor`]: centred dosages, a standardised trait, one Gibbs chain; posterior
//! mean effects predict and feed `importance`.

use genopred_core::cv::{Purpose, derive_seed, seed::rng};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::output::read_json_state;
use genopred_core::{FitContext, FitInfo, GenotypeMatrix, ModelError, Predictor, TrainSet};

use crate::error::BayesBError;
use crate::hyperparams::BayesBConfig;
use crate::sampler::{Data, Fixed, effective_sample_size, run};

/// Fewest training samples accepted.
pub const MIN_TRAIN: usize = 10;

/// A fitted BayesB model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FittedBayesB {
    /// Centring (and mean imputation) fitted on the training lines.
    pub encoder: DosageEncoder,
    /// The trait's training mean.
    pub y_mean: f64,
    /// The trait's training sd (the chain runs on the standardised trait).
    pub y_sd: f64,
    /// Posterior mean intercept, trait units.
    pub intercept: f64,
    /// Posterior mean marker effects, trait units per allele copy.
    pub effects: Vec<f64>,
    /// Posterior probability that each marker has an effect.
    pub inclusion: Vec<f64>,
    /// What the chain reports.
    pub report: BayesBFitReport,
}

/// What a BayesB fit reports (the model's part of [`FitInfo`]): the chain and its convergence.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BayesBFitReport {
    /// Iterations, burn-in and thinning as run.
    pub iterations: usize,
    /// Iterations discarded.
    pub burn_in: usize,
    /// Thinning interval.
    pub thin: usize,
    /// Samples kept.
    pub samples: usize,
    /// Posterior mean residual variance, trait units².
    pub sigma2_e: f64,
    /// Posterior mean variance of the training lines' genetic values, trait units².
    pub genetic_variance: f64,
    /// Posterior mean share of markers with an effect.
    pub model_size: f64,
    /// Effective sample size of the residual variance's trace (Geyer's initial monotone
    /// sequence): far below `samples` means a slowly mixing chain; below about 100, run longer.
    pub ess_sigma2_e: f64,
    /// Effective sample size of the genetic variance's trace.
    pub ess_genetic_variance: f64,
}

impl FittedBayesB {
    /// Fits BayesB on `rows` of `geno` with trait values `y`, drawing from a chain seeded by
    /// `seed`. `config` must have passed [`BayesBConfig::check`].
    pub fn fit(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &BayesBConfig,
        seed: u64,
    ) -> Result<Self, BayesBError> {
        Self::fit_with(geno, rows, y, config, seed, Fixed::default())
    }

    pub(crate) fn fit_with(
        geno: &GenotypeMatrix,
        rows: &[usize],
        y: &[f64],
        config: &BayesBConfig,
        seed: u64,
        fixed: Fixed,
    ) -> Result<Self, BayesBError> {
        debug_assert!(config.check().is_ok(), "FittedBayesB::fit with an unchecked config: {config:?}");
        let n = rows.len();
        if n < MIN_TRAIN {
            return Err(BayesBError::TooFewSamples { got: n, needed: MIN_TRAIN });
        }
        assert_eq!(y.len(), n, "one trait value per training row");
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let y_sd = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        if !(y_sd > 0.0 && y_sd.is_finite()) {
            return Err(BayesBError::NoVariation("the trait is constant"));
        }
        let encoder = DosageEncoder::fit(geno, rows, Scaling::Centred);
        let m = encoder.n_markers();
        let mut x = vec![0.0; n * m];
        let mut buf = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            for (j, &c) in geno.calls(r, 0..m, &mut buf).iter().enumerate() {
                x[j * n + i] = encoder.value(c, j);
            }
        }
        if x.iter().all(|v| v.abs() < 1e-12) {
            return Err(BayesBError::NoVariation("every marker is constant"));
        }
        let data = Data { x, n, m, y: y.iter().map(|v| (v - y_mean) / y_sd).collect() };
        let mut rng = rng(derive_seed(seed, Purpose::Mcmc, &[]));
        let chain = run(&data, config, fixed, &mut rng)?;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let report = BayesBFitReport {
            iterations: config.iterations,
            burn_in: config.burn_in,
            thin: config.thin,
            samples: chain.sigma2_e.len(),
            sigma2_e: mean(&chain.sigma2_e) * y_sd * y_sd,
            genetic_variance: mean(&chain.genetic_variance) * y_sd * y_sd,
            model_size: mean(&chain.model_size),
            ess_sigma2_e: effective_sample_size(&chain.sigma2_e),
            ess_genetic_variance: effective_sample_size(&chain.genetic_variance),
        };
        let effects: Vec<f64> = chain.effects.iter().map(|b| b * y_sd).collect();
        if effects.iter().any(|b| !b.is_finite()) {
            return Err(BayesBError::Numerical("non-finite posterior mean effects".into()));
        }
        Ok(FittedBayesB {
            encoder,
            y_mean,
            y_sd,
            intercept: y_mean + chain.mu * y_sd,
            effects,
            inclusion: chain.inclusion,
            report,
        })
    }

    /// Predicted trait values (`intercept + Σⱼ xⱼ βⱼ`, centred dosages) of `rows`.
    pub fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, BayesBError> {
        self.encoder.linear(geno, rows, self.intercept, &self.effects).map_err(BayesBError::Usage)
    }
}

/// BayesB as a [`Predictor`].
#[derive(Debug, Clone, Default)]
pub struct BayesB {
    /// Settings, checked.
    config: BayesBConfig,
    fitted: Option<FittedBayesB>,
}

/// The fitted state in a saved model folder (JSON).
pub const SAVED_FILE: &str = "bayesb.json";

impl BayesB {
    /// A BayesB model with the given settings, checked here once so the fit can trust them.
    pub fn new(config: BayesBConfig) -> Result<Self, BayesBError> {
        config.check()?;
        Ok(BayesB { config, fitted: None })
    }

    /// The settings.
    pub fn config(&self) -> &BayesBConfig {
        &self.config
    }

    /// The fitted state, after [`Predictor::fit`].
    pub fn fitted(&self) -> Option<&FittedBayesB> {
        self.fitted.as_ref()
    }

    /// Reads a model saved by [`Predictor::save`] from `dir` (`bayesb.json`).
    pub fn load(config: BayesBConfig, dir: &std::path::Path) -> Result<Self, BayesBError> {
        config.check()?;
        let path = dir.join(SAVED_FILE);
        let fitted: FittedBayesB = read_json_state(dir, SAVED_FILE).map_err(BayesBError::Usage)?;
        let m = fitted.encoder.n_markers();
        if fitted.effects.len() != m || fitted.inclusion.len() != m {
            return Err(BayesBError::Usage(format!(
                "{}: {} effects and {} inclusion probabilities for {m} markers",
                path.display(),
                fitted.effects.len(),
                fitted.inclusion.len()
            )));
        }
        Ok(BayesB { config, fitted: Some(fitted) })
    }

    fn state(&self, what: &str) -> Result<&FittedBayesB, BayesBError> {
        self.fitted.as_ref().ok_or_else(|| BayesBError::Usage(format!("{what} called before fit")))
    }
}

impl Predictor for BayesB {
    fn name(&self) -> &str {
        "bayesb"
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
        let fitted = FittedBayesB::fit(train.geno, train.rows, train.y, &self.config, context.seed)?;
        let info = FitInfo::new(None, &fitted.report)?;
        self.fitted = Some(fitted);
        Ok(info)
    }

    fn predict(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        Ok(self.state("predict")?.predict(geno, rows)?)
    }

    fn marker_effects(&self) -> Option<Vec<f64>> {
        self.fitted.as_ref().map(|f| f.effects.clone())
    }

    fn save(&self, dir: &std::path::Path) -> Result<(), ModelError> {
        let fitted = self.state("save")?;
        genopred_core::output::write_atomic(&dir.join(SAVED_FILE), &serde_json::to_vec(fitted)?)?;
        Ok(())
    }
}
