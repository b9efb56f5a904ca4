//! The Gibbs sampler: one chain over the intercept, each marker's inclusion, effect and
//! variance, the share of markers included, and the residual variance; and the effective sample
//! size of a trace.
//!
//! Per iteration, for each marker j with centred dosages `xⱼ` and the residual `e` without its
//! own effect (`r = e + xⱼβⱼ`):
//! - inclusion δⱼ from its conditional with the effect integrated out: `xⱼᵀr` is normal with
//!   variance `v₀ = xⱼᵀxⱼ σ²ₑ` when δⱼ = 0 and `v₁ = v₀ + (xⱼᵀxⱼ)² σ²ⱼ` when δⱼ = 1;
//! - the effect αⱼ from its normal full conditional when included, from its prior otherwise
//!   (βⱼ = δⱼαⱼ enters the residual);
//! - the marker's variance `σ²ⱼ = (S_b + αⱼ²) / χ²(ν_b + 1)`;
//!
//! then the intercept, `σ²ₑ = (S_e + eᵀe) / χ²(n + ν_e)`, and the inclusion probability from its
//! Beta full conditional (Habier et al. 2011; BGLR's BayesB).

use rand::Rng;
use rand_distr::{Beta, ChiSquared, Distribution, StandardNormal};

use crate::error::BayesBError;
use crate::hyperparams::BayesBConfig;

/// Centred genotypes (column-major: marker j is `x[j·n .. (j+1)·n]`) and a standardised trait.
pub(crate) struct Data {
    pub x: Vec<f64>,
    pub n: usize,
    pub m: usize,
    pub y: Vec<f64>,
}

/// Variances held fixed instead of sampled (the tests' ridge-regression check).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fixed {
    pub marker_variance: Option<f64>,
    pub residual_variance: Option<f64>,
}

/// What one chain gives: posterior means and the traces of the kept samples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Chain {
    /// Posterior mean of the intercept.
    pub mu: f64,
    /// Posterior mean of each marker's effect βⱼ = δⱼαⱼ.
    pub effects: Vec<f64>,
    /// Posterior probability that each marker has an effect.
    pub inclusion: Vec<f64>,
    /// Residual variance, per kept sample.
    pub sigma2_e: Vec<f64>,
    /// Variance of the genetic values `Xβ` over the training lines, per kept sample.
    pub genetic_variance: Vec<f64>,
    /// Share of markers with an effect, per kept sample.
    pub model_size: Vec<f64>,
}

/// Runs one chain on `data` with `config`'s prior and length, drawing from `rng`.
pub(crate) fn run(data: &Data, config: &BayesBConfig, fixed: Fixed, rng: &mut impl Rng) -> Result<Chain, BayesBError> {
    let (n, m) = (data.n, data.m);
    let column = |j: usize| &data.x[j * n..(j + 1) * n];
    let xx: Vec<f64> = (0..m).map(|j| column(j).iter().map(|v| v * v).sum()).collect();
    // Prior scales in BGLR's parametrisation (σ² = S / χ²_ν, prior mode S / (ν + 2)): the
    // residual's mode is (1 − R²) of the trait's variance, each included marker's is R² shared
    // over the expected number of markers in, by their mean square.
    let var_y = data.y.iter().map(|v| v * v).sum::<f64>() / (n - 1).max(1) as f64;
    let sum_var_x: f64 = xx.iter().sum::<f64>() / (n - 1).max(1) as f64;
    let s_e = var_y * (1.0 - config.prior_r2) * (config.df_residual + 2.0);
    let s_b = var_y * config.prior_r2 / (sum_var_x * config.prob_in) * (config.df_marker + 2.0);
    let chi_b = ChiSquared::new(config.df_marker + 1.0).map_err(|e| BayesBError::Numerical(e.to_string()))?;
    let chi_e = ChiSquared::new(n as f64 + config.df_residual).map_err(|e| BayesBError::Numerical(e.to_string()))?;

    let mut mu = data.y.iter().sum::<f64>() / n as f64;
    let mut e: Vec<f64> = data.y.iter().map(|v| v - mu).collect();
    let mut beta = vec![0.0; m];
    let mut s2b = vec![fixed.marker_variance.unwrap_or(s_b / (config.df_marker + 2.0)); m];
    let mut s2e = fixed.residual_variance.unwrap_or(var_y * (1.0 - config.prior_r2));
    let mut prob_in = config.prob_in;
    let kept = (config.iterations - config.burn_in) / config.thin;
    let mut chain = Chain {
        mu: 0.0,
        effects: vec![0.0; m],
        inclusion: vec![0.0; m],
        sigma2_e: Vec::with_capacity(kept),
        genetic_variance: Vec::with_capacity(kept),
        model_size: Vec::with_capacity(kept),
    };
    for iteration in 1..=config.iterations {
        let mut included = 0usize;
        let log_prior_odds = (prob_in / (1.0 - prob_in)).ln();
        for j in 0..m {
            if xx[j] <= 1e-12 {
                continue;
            }
            let xj = column(j);
            let old = beta[j];
            let rhs = xj.iter().zip(&e).map(|(a, b)| a * b).sum::<f64>() + xx[j] * old;
            let v0 = xx[j] * s2e;
            let v1 = v0 + xx[j] * xx[j] * s2b[j];
            let log_odds = log_prior_odds + 0.5 * (v0 / v1).ln() + 0.5 * rhs * rhs * (1.0 / v0 - 1.0 / v1);
            let p1 = 1.0 / (1.0 + (-log_odds).exp());
            let alpha = if rng.random::<f64>() < p1 {
                included += 1;
                let c = xx[j] + s2e / s2b[j];
                rhs / c + (s2e / c).sqrt() * normal(rng)
            } else {
                // Out of the model: the effect is drawn from its prior and does not enter the residual.
                beta[j] = 0.0;
                if old != 0.0 {
                    e.iter_mut().zip(xj).for_each(|(r, x)| *r += x * old);
                }
                let alpha = s2b[j].sqrt() * normal(rng);
                if fixed.marker_variance.is_none() {
                    s2b[j] = (s_b + alpha * alpha) / chi_b.sample(rng);
                }
                continue;
            };
            beta[j] = alpha;
            let change = alpha - old;
            e.iter_mut().zip(xj).for_each(|(r, x)| *r -= x * change);
            if fixed.marker_variance.is_none() {
                s2b[j] = (s_b + alpha * alpha) / chi_b.sample(rng);
            }
        }
        // Intercept (flat prior).
        let mean_e = e.iter().sum::<f64>() / n as f64;
        let new_mu = mu + mean_e + (s2e / n as f64).sqrt() * normal(rng);
        e.iter_mut().for_each(|r| *r -= new_mu - mu);
        mu = new_mu;
        let sse: f64 = e.iter().map(|r| r * r).sum();
        if fixed.residual_variance.is_none() {
            s2e = (s_e + sse) / chi_e.sample(rng);
        }
        if config.prob_in_counts > 0.0 {
            let a = included as f64 + config.prob_in_counts * config.prob_in;
            let b = (m - included) as f64 + config.prob_in_counts * (1.0 - config.prob_in);
            prob_in = Beta::new(a, b).map_err(|e| BayesBError::Numerical(e.to_string()))?.sample(rng);
            prob_in = prob_in.clamp(1e-12, 1.0 - 1e-12);
        }
        if !(s2e.is_finite() && mu.is_finite() && sse.is_finite()) {
            return Err(BayesBError::Numerical(format!("the chain left the finite numbers at iteration {iteration}")));
        }
        if iteration > config.burn_in && (iteration - config.burn_in).is_multiple_of(config.thin) {
            chain.mu += mu;
            for j in 0..m {
                chain.effects[j] += beta[j];
                chain.inclusion[j] += f64::from(u8::from(beta[j] != 0.0));
            }
            // Genetic values Xβ = y − μ − e.
            let g: Vec<f64> = data.y.iter().zip(&e).map(|(y, r)| y - mu - r).collect();
            let g_mean = g.iter().sum::<f64>() / n as f64;
            chain.genetic_variance.push(g.iter().map(|v| (v - g_mean).powi(2)).sum::<f64>() / (n - 1).max(1) as f64);
            chain.sigma2_e.push(s2e);
            chain.model_size.push(included as f64 / m as f64);
        }
    }
    let k = chain.sigma2_e.len().max(1) as f64;
    chain.mu /= k;
    chain.effects.iter_mut().for_each(|b| *b /= k);
    chain.inclusion.iter_mut().for_each(|p| *p /= k);
    Ok(chain)
}

fn normal(rng: &mut impl Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// Effective sample size of a trace by Geyer's (1992) initial monotone sequence estimator: the
/// autocorrelations summed in pairs while the pairs stay positive, kept non-increasing. Equals the
/// trace's length for independent draws; NaN for fewer than four values or a constant trace.
pub fn effective_sample_size(trace: &[f64]) -> f64 {
    let n = trace.len();
    if n < 4 {
        return f64::NAN;
    }
    let mean = trace.iter().sum::<f64>() / n as f64;
    let c0 = trace.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    if c0.is_nan() || c0 <= 0.0 {
        return f64::NAN;
    }
    let rho = |k: usize| (0..n - k).map(|i| (trace[i] - mean) * (trace[i + k] - mean)).sum::<f64>() / n as f64 / c0;
    let mut tau = -1.0;
    let mut previous = f64::INFINITY;
    let mut k = 0;
    while k + 1 < n {
        let pair = (rho(k) + rho(k + 1)).min(previous);
        if pair <= 0.0 {
            break;
        }
        tau += 2.0 * pair;
        previous = pair;
        k += 2;
    }
    n as f64 / tau.max(1e-12)
}
