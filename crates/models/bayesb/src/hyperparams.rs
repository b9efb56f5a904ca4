//! BayesB settings: the prior, and the length of the chain. Defaults follow BGLR's BayesB
//! (Pérez & de los Campos 2014), the implementation the Crossa/de los Campos group's wheat
//! comparisons use.

use genopred_core::check::{ConfigError, at_least, open_unit};

use crate::error::BayesBError;

/// Settings of a BayesB fit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BayesBConfig {
    /// Prior probability that a marker has an effect (1 − π). BGLR's `probIn` default, 0.5.
    pub prob_in: f64,
    /// Prior counts of the Beta prior on `prob_in` (BGLR's `counts`, 10): the share of markers
    /// with an effect is sampled, the prior weighing as many markers. 0 fixes it at `prob_in`
    /// (Meuwissen et al.'s original BayesB fixes π).
    pub prob_in_counts: f64,
    /// Degrees of freedom of the scaled-inverse-χ² prior of each marker's variance (BGLR's `df0`, 5).
    pub df_marker: f64,
    /// Degrees of freedom of the residual variance's prior (BGLR's 5).
    pub df_residual: f64,
    /// Share of the trait's variance the prior expects the markers to explain (BGLR's `R2`,
    /// 0.5): sets the priors' scales.
    pub prior_r2: f64,
    /// Gibbs iterations in all (BGLR's `nIter` is 1,500 in its examples; more here, as markers
    /// mix slowly).
    pub iterations: usize,
    /// Iterations discarded before samples are kept (BGLR's `burnIn`).
    pub burn_in: usize,
    /// Keep every `thin`-th iteration after the burn-in (BGLR's `thin`, 5).
    pub thin: usize,
}

impl Default for BayesBConfig {
    fn default() -> Self {
        BayesBConfig {
            prob_in: 0.5,
            prob_in_counts: 10.0,
            df_marker: 5.0,
            df_residual: 5.0,
            prior_r2: 0.5,
            iterations: 6000,
            burn_in: 1000,
            thin: 5,
        }
    }
}

impl BayesBConfig {
    /// Validates the settings once ([`BayesB::new`](crate::BayesB::new) and
    /// [`BayesB::load`](crate::BayesB::load) call it), so the fit can trust them.
    pub fn check(&self) -> Result<(), BayesBError> {
        open_unit("prob_in", self.prob_in)?;
        if !(self.prob_in_counts.is_finite() && self.prob_in_counts >= 0.0) {
            return Err(ConfigError::new("prob_in_counts", self.prob_in_counts, "must be >= 0").into());
        }
        // A scaled-inverse-χ² prior needs more than 2 degrees of freedom for a finite mean.
        for (key, df) in [("df_marker", self.df_marker), ("df_residual", self.df_residual)] {
            if !(df.is_finite() && df > 2.0) {
                return Err(ConfigError::new(key, df, "must be > 2").into());
            }
        }
        open_unit("prior_r2", self.prior_r2)?;
        at_least("thin", self.thin, 1)?;
        if self.iterations < self.burn_in + 10 * self.thin {
            return Err(ConfigError::new(
                "iterations",
                self.iterations,
                format!("must leave at least 10 kept samples after burn_in = {} (thin = {})", self.burn_in, self.thin),
            )
            .into());
        }
        Ok(())
    }
}
