//! Models of multi-environment trials, and the cross-validation fold that runs them over the
//! records of a [`Trials`] (`genopred cv --env`).
//!
//! Three forms, for `--env-model`:
//!
//! - **single**: one fit per environment on that environment's training records only, with the
//!   model as it is — any model of the catalogue (the baseline of Crossa et al. 2010). It cannot
//!   predict an environment without training records (CV0, CV00).
//! - **across**: `y = Xβ + g + e`, environments (and any fixed effects) in `X`, one genetic effect
//!   `g ~ N(0, σ²_g Z K Zᵀ)` shared by all environments, over every training record.
//! - **gxe**: `y = Xβ + g + ge + e`, `ge ~ N(0, σ²_ge (Z K Zᵀ) ⊙ (Z_E Z_Eᵀ))`: the line × environment
//!   interaction as the Hadamard product of the lines' kernel with the environments' (here the
//!   identity: environments independent), Jarquín et al. (2014), Lopez-Cruz et al. (2015).
//! - **gxe-het**: as gxe with one interaction variance per environment, `ge_e ~ N(0, σ²_ge,e K)`
//!   on environment e's records (Cuevas et al. 2017's environment-specific deviations): an
//!   environment whose lines rank differently from the others' gets a larger share of its own.
//! - **gxe-us**: the lines' genetic values in each environment with an unstructured covariance
//!   between environments, `Σ_E ⊗ K` (a variance per environment, a covariance of any sign per
//!   pair; the genetic part of Cuevas et al. 2017's model 3, without its extra `f` term): an
//!   environment negatively correlated with the others is predicted from them with the sign
//!   turned. It cannot predict an environment without training records.
//!
//! across and gxe need the model's genetic kernel `K` over lines ([`Predictor::genetic_kernel`]:
//! GBLUP's genomic relationship, RKHS's Gaussian kernel); the variance components come from
//! [`genopred_stats::reml::multi`]. A test record in an environment without training records (CV0,
//! CV00) gets the mean of the trained environments' effects and no interaction term (its
//! environment's `ge` has no training record to borrow from).
//!
//! Honesty: the fold's test records reach nothing but the prediction step — QC, allele
//! frequencies and kernels' scaling come from the training lines, the fixed-effect design from
//! labels, variance components and effects from the training records.

use std::time::Instant;

use faer::Mat;

use crate::cv::{Fold, Purpose, derive_seed, validation_split};
use crate::evaluation::{CvOptions, kept_markers};
use crate::predictor::{FitContext, FitInfo, FitObserver, Predictor, RecordSet, TrainSet};
use genopred_data::error::{CoreError, Result};
use genopred_data::genotype::GenotypeMatrix;
use genopred_data::qc::{MarkerQc, QcReport};
use genopred_data::trials::{FixedEffect, Trials};
use genopred_stats::metrics::Metrics;
use genopred_stats::reml::multi::{ComponentEstimate, Constraint, MultiRemlConfig};

/// How environments enter a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvModel {
    /// One fit per environment on its own records.
    Single,
    /// Environments as fixed effects, one genetic effect.
    Across,
    /// Environments as fixed effects, a genetic effect and a line × environment effect.
    Gxe,
    /// As [`EnvModel::Gxe`], with the interaction's variance estimated per environment.
    #[serde(rename = "gxe-het")]
    GxeHet,
    /// The lines' genetic values per environment with an unstructured covariance between
    /// environments (`Σ_E ⊗ K`): a genetic variance per environment and a covariance, of any
    /// sign, per pair.
    #[serde(rename = "gxe-us")]
    GxeUs,
}

impl std::str::FromStr for EnvModel {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "single" => Ok(EnvModel::Single),
            "across" => Ok(EnvModel::Across),
            "gxe" => Ok(EnvModel::Gxe),
            "gxe-het" | "gxe_het" => Ok(EnvModel::GxeHet),
            "gxe-us" | "gxe_us" => Ok(EnvModel::GxeUs),
            _ => Err(CoreError::config("env-model", s, "must be one of single, across, gxe, gxe-het, gxe-us")),
        }
    }
}

impl std::fmt::Display for EnvModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvModel::Single => "single",
            EnvModel::Across => "across",
            EnvModel::Gxe => "gxe",
            EnvModel::GxeHet => "gxe-het",
            EnvModel::GxeUs => "gxe-us",
        })
    }
}

/// The fixed-effect matrices of a fold's training and test records.
#[derive(Debug, Clone)]
pub struct RecordDesign {
    /// Column names: `ENV=level` for each trained environment, `NAME=level` for each
    /// non-reference trained level of a factor, `NAME` for a covariate.
    pub names: Vec<String>,
    /// Training records × columns.
    pub train: Mat<f64>,
    /// Test records × columns.
    pub test: Mat<f64>,
}

/// The design of a split: a column per environment with training records (no intercept), the
/// factors' trained levels against their first trained level, the covariates; columns the
/// training records cannot tell from earlier ones (a factor nested in the environments, say) are
/// dropped. A test record in an untrained environment weighs every environment column equally;
/// one with another untrained factor level is refused.
pub fn record_design(trials: &Trials, train: &[usize], test: &[usize]) -> Result<RecordDesign> {
    let records = trials.records();
    let envs = trials.envs();
    let mut trained_env = vec![false; envs.len()];
    train.iter().for_each(|&r| trained_env[records[r].env] = true);
    let env_cols: Vec<usize> = (0..envs.len()).filter(|&e| trained_env[e]).collect();
    // Columns as functions of a record: (name, value of record r).
    let mut names: Vec<String> = env_cols.iter().map(|&e| format!("{}={}", trials.env_name(), envs[e])).collect();
    let env_weight = 1.0 / env_cols.len() as f64;
    let env_value = |r: usize, c: usize| -> f64 {
        let e = records[r].env;
        if trained_env[e] { f64::from(u8::from(env_cols[c] == e)) } else { env_weight }
    };
    enum Extra<'a> {
        Level(&'a [usize], usize),
        Value(&'a [f64]),
    }
    let mut extras: Vec<Extra<'_>> = Vec::new();
    for f in trials.fixed() {
        match f {
            FixedEffect::Factor { name, levels, codes } => {
                let mut trained = vec![false; levels.len()];
                train.iter().for_each(|&r| trained[codes[r]] = true);
                if let Some(&r) = test.iter().find(|&&r| !trained[codes[r]]) {
                    return Err(CoreError::Data(format!(
                        "{}: {name} '{}' is in the test records (line '{}' first) but in no training record: its \
                         effect cannot be estimated",
                        trials.path().display(),
                        levels[codes[r]],
                        records[r].line
                    )));
                }
                for (l, level) in levels.iter().enumerate().filter(|&(l, _)| trained[l]).skip(1) {
                    names.push(format!("{name}={level}"));
                    extras.push(Extra::Level(codes, l));
                }
            }
            FixedEffect::Covariate { name, values } => {
                names.push(name.clone());
                extras.push(Extra::Value(values));
            }
        }
    }
    let n_env = env_cols.len();
    let value = |r: usize, c: usize| -> f64 {
        if c < n_env {
            env_value(r, c)
        } else {
            match extras[c - n_env] {
                Extra::Level(codes, l) => f64::from(u8::from(codes[r] == l)),
                Extra::Value(values) => values[r],
            }
        }
    };
    // Keep the columns that add to the span of the earlier ones over the training records
    // (Gram–Schmidt, twice for stability).
    let n_cols = names.len();
    let mut basis: Vec<Vec<f64>> = Vec::new();
    let mut keep = Vec::new();
    for c in 0..n_cols {
        let col: Vec<f64> = train.iter().map(|&r| value(r, c)).collect();
        let norm0 = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        let mut v = col;
        for _ in 0..2 {
            for b in &basis {
                let d: f64 = v.iter().zip(b).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(b).for_each(|(a, b)| *a -= d * b);
            }
        }
        let norm = v.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm0 > 0.0 && norm > 1e-9 * norm0 {
            v.iter_mut().for_each(|a| *a /= norm);
            basis.push(v);
            keep.push(c);
        }
    }
    let build = |rows: &[usize]| Mat::from_fn(rows.len(), keep.len(), |i, j| value(rows[i], keep[j]));
    Ok(RecordDesign { names: keep.iter().map(|&c| names[c].clone()).collect(), train: build(train), test: build(test) })
}

/// What an across or G×E fit reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KernelEnvReport {
    /// `g`, then `ge` (G×E), then `residual`.
    pub components: Vec<ComponentEstimate>,
    /// Mean of the lines' kernel diagonal: `σ²_g` times it is the genetic variance.
    pub kernel_mean_diagonal: f64,
    /// Restricted log-likelihood at the optimum.
    pub log_likelihood: f64,
    /// REML iterations.
    pub iterations: usize,
    /// The fixed effects' names and estimates.
    pub fixed: Vec<(String, f64)>,
}

/// Fits an across or G×E model on the training records and predicts the test records.
/// `kernel` is the lines' kernel over `kernel_rows` positions; `position[r]` is record `r`'s
/// line's position in it.
pub fn fit_kernel_model(
    model: EnvModel,
    trials: &Trials,
    kernel: &Mat<f64>,
    position: &[usize],
    train: &[usize],
    test: &[usize],
    config: &MultiRemlConfig,
) -> Result<(Vec<f64>, KernelEnvReport)> {
    let (predicted, report, _) = fit_kernel_env(model, trials, kernel, position, train, test, config)?;
    Ok((predicted, report))
}

/// [`fit_kernel_model`], with the fitted state that predicts any line in any environment
/// ([`KernelEnvFit`]: what `genopred train --env` saves).
pub fn fit_kernel_env(
    model: EnvModel,
    trials: &Trials,
    kernel: &Mat<f64>,
    position: &[usize],
    train: &[usize],
    test: &[usize],
    config: &MultiRemlConfig,
) -> Result<(Vec<f64>, KernelEnvReport, KernelEnvFit)> {
    assert!(model != EnvModel::Single, "single-environment fits go through the model itself");
    let records = trials.records();
    let design = record_design(trials, train, test)?;
    let y: Vec<f64> = train.iter().map(|&r| records[r].value).collect();
    // The environments with training records.
    let trained: Vec<usize> = {
        let mut e: Vec<usize> = train.iter().map(|&r| records[r].env).collect();
        e.sort_unstable();
        e.dedup();
        e
    };
    let n_envs = trained.len();
    // The environments' similarity from their covariates, for the reaction-norm term.
    let omega = match (model, trials.env_covariates()) {
        (EnvModel::Gxe, Some((names, rows))) => {
            Some(genopred_data::trials::env_covariates::similarity(rows, &trained).ok_or_else(|| {
                CoreError::Data(format!(
                    "the environmental covariates ({}) are constant over this fold's {} trained environment(s): they \
                     cannot tell environments apart",
                    names.join(", "),
                    trained.len()
                ))
            })?)
        }
        _ => None,
    };
    let n_kernels = match model {
        EnvModel::Across | EnvModel::Single => 1,
        EnvModel::Gxe => 2 + usize::from(omega.is_some()),
        EnvModel::GxeHet => 1 + n_envs,
        EnvModel::GxeUs => n_envs * (n_envs + 1) / 2,
    };
    genopred_stats::reml::multi::check_memory(train.len(), n_kernels, config)?;
    let kg = |a: &[usize], b: &[usize]| Mat::from_fn(a.len(), b.len(), |i, j| kernel[(position[a[i]], position[b[j]])]);
    let interaction = |k: &Mat<f64>, a: &[usize], b: &[usize]| {
        Mat::from_fn(a.len(), b.len(), |i, j| if records[a[i]].env == records[b[j]].env { k[(i, j)] } else { 0.0 })
    };
    let (k_train, k_cross) = (kg(train, train), kg(test, train));
    let (fit, predicted) = match model {
        EnvModel::Across => {
            let fit = genopred_stats::reml::multi::fit(&[&k_train], &["g"], &design.train, &y, &[], config)?;
            let p = fit.predict(&[&k_cross], &design.test);
            (fit, p)
        }
        EnvModel::Gxe => {
            let (ge_train, ge_cross) = (interaction(&k_train, train, train), interaction(&k_cross, test, train));
            match &omega {
                None => {
                    let fit = genopred_stats::reml::multi::fit(
                        &[&k_train, &ge_train],
                        &["g", "ge"],
                        &design.train,
                        &y,
                        &[],
                        config,
                    )?;
                    let p = fit.predict(&[&k_cross, &ge_cross], &design.test);
                    (fit, p)
                }
                Some(omega) => {
                    // Jarquín et al. (2014)'s reaction norm: `gw ~ N(0, σ²_gw (Z K Zᵀ) ⊙ (Z_E Ω Z_Eᵀ))`,
                    // through which a new environment borrows from those its covariates resemble.
                    let reaction = |k: &Mat<f64>, a: &[usize], b: &[usize]| {
                        Mat::from_fn(a.len(), b.len(), |i, j| k[(i, j)] * omega[(records[a[i]].env, records[b[j]].env)])
                    };
                    let (gw_train, gw_cross) = (reaction(&k_train, train, train), reaction(&k_cross, test, train));
                    let fit = genopred_stats::reml::multi::fit(
                        &[&k_train, &gw_train, &ge_train],
                        &["g", "gw", "ge"],
                        &design.train,
                        &y,
                        &[],
                        config,
                    )?;
                    let p = fit.predict(&[&k_cross, &gw_cross, &ge_cross], &design.test);
                    (fit, p)
                }
            }
        }
        EnvModel::GxeUs => {
            // The lines' genetic values in the trained environments with an unstructured
            // covariance Σ_E ⊗ K: a variance per environment, a covariance per pair (any sign).
            if let Some(&r) = test.iter().find(|&&r| trained.binary_search(&records[r].env).is_err()) {
                return Err(CoreError::Data(format!(
                    "{}: environment '{}' has no training records, and an unstructured model has no covariance with an \
                     environment it never saw (line '{}'); use --env-model gxe or across for new environments",
                    trials.path().display(),
                    trials.envs()[records[r].env],
                    records[r].line
                )));
            }
            let pairs: Vec<(usize, usize)> =
                trained.iter().enumerate().flat_map(|(i, &e)| trained[i..].iter().map(move |&f| (e, f))).collect();
            let pair_block = |k: &Mat<f64>, a: &[usize], b: &[usize], (e, f): (usize, usize)| {
                Mat::from_fn(a.len(), b.len(), |i, j| {
                    let p = (records[a[i]].env, records[b[j]].env);
                    if p == (e, f) || p == (f, e) { k[(i, j)] } else { 0.0 }
                })
            };
            let envs = trials.envs();
            let names: Vec<String> = pairs
                .iter()
                .map(|&(e, f)| if e == f { format!("g:{}", envs[e]) } else { format!("g:{},{}", envs[e], envs[f]) })
                .collect();
            let constraints: Vec<Constraint> =
                pairs.iter().map(|&(e, f)| if e == f { Constraint::NonNegative } else { Constraint::Free }).collect();
            let blocks: Vec<Mat<f64>> = pairs.iter().map(|&p| pair_block(&k_train, train, train, p)).collect();
            let crosses: Vec<Mat<f64>> = pairs.iter().map(|&p| pair_block(&k_cross, test, train, p)).collect();
            let kernels: Vec<&Mat<f64>> = blocks.iter().collect();
            let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
            // Σ_E stays positive semi-definite: REML's unconstrained optimum can lie outside
            // (measured on wheat599: a correlation above 1 between two environments), where the
            // "BLUP" of an environment turns to noise.
            let d = trained.len();
            let sigma = |theta: &[f64]| {
                let mut m = Mat::<f64>::zeros(d, d);
                for (k, &(e, f)) in pairs.iter().enumerate() {
                    let (i, j) = (trained.binary_search(&e).unwrap_or(0), trained.binary_search(&f).unwrap_or(0));
                    m[(i, j)] = theta[k];
                    m[(j, i)] = theta[k];
                }
                m
            };
            let psd = |theta: &[f64]| {
                let mut m = sigma(theta);
                let jitter = 1e-9 * (0..d).map(|i| m[(i, i)].abs()).sum::<f64>().max(1e-300);
                (0..d).for_each(|i| m[(i, i)] += jitter);
                m.llt(faer::Side::Lower).is_ok()
            };
            let fit = genopred_stats::reml::multi::fit_within(
                &kernels,
                &name_refs,
                &design.train,
                &y,
                &constraints,
                &psd,
                config,
            )?;
            let p = fit.predict(&crosses.iter().collect::<Vec<_>>(), &design.test);
            (fit, p)
        }
        EnvModel::GxeHet | EnvModel::Single => {
            // One interaction variance per trained environment: `ge_e ~ N(0, σ²_ge,e K)` on the
            // records of environment e (Cuevas et al. 2017's environment-specific deviations).
            let only = |k: &Mat<f64>, a: &[usize], b: &[usize], e: usize| {
                Mat::from_fn(a.len(), b.len(), |i, j| {
                    if records[a[i]].env == e && records[b[j]].env == e { k[(i, j)] } else { 0.0 }
                })
            };
            let names: Vec<String> = trained.iter().map(|&e| format!("ge:{}", trials.envs()[e])).collect();
            let ge_train: Vec<Mat<f64>> = trained.iter().map(|&e| only(&k_train, train, train, e)).collect();
            let ge_cross: Vec<Mat<f64>> = trained.iter().map(|&e| only(&k_cross, test, train, e)).collect();
            let mut kernels = vec![&k_train];
            kernels.extend(ge_train.iter());
            let mut all_names = vec!["g"];
            all_names.extend(names.iter().map(String::as_str));
            let fit = genopred_stats::reml::multi::fit(&kernels, &all_names, &design.train, &y, &[], config)?;
            let mut cross = vec![&k_cross];
            cross.extend(ge_cross.iter());
            let p = fit.predict(&cross, &design.test);
            (fit, p)
        }
    };
    let mut lines: Vec<usize> = train.iter().map(|&r| position[r]).collect();
    lines.sort_unstable();
    lines.dedup();
    let kernel_mean_diagonal = lines.iter().map(|&l| kernel[(l, l)]).sum::<f64>() / lines.len() as f64;
    let report = KernelEnvReport {
        components: fit.components.clone(),
        kernel_mean_diagonal,
        log_likelihood: fit.log_likelihood,
        iterations: fit.iterations,
        fixed: design.names.iter().cloned().zip(fit.beta.iter().copied()).collect(),
    };
    // The genetic covariance between environments that the components add up to: every
    // component's kernel is the lines' kernel times a function of the two records' environments.
    let n_all = trials.envs().len();
    let theta: Vec<f64> = fit.components.iter().map(|c| c.sigma2).collect();
    let mut env_cov = vec![vec![0.0; n_all]; n_all];
    let mut add = |e: usize, f: usize, v: f64| {
        env_cov[e][f] += v;
        if e != f {
            env_cov[f][e] += v;
        }
    };
    match model {
        EnvModel::Across | EnvModel::Single => (0..n_all).for_each(|e| (e..n_all).for_each(|f| add(e, f, theta[0]))),
        EnvModel::Gxe => {
            (0..n_all).for_each(|e| (e..n_all).for_each(|f| add(e, f, theta[0])));
            let ge = if omega.is_some() { theta[2] } else { theta[1] };
            (0..n_all).for_each(|e| add(e, e, ge));
            if let Some(omega) = &omega {
                (0..n_all).for_each(|e| (e..n_all).for_each(|f| add(e, f, theta[1] * omega[(e, f)])));
            }
        }
        EnvModel::GxeHet => {
            (0..n_all).for_each(|e| (e..n_all).for_each(|f| add(e, f, theta[0])));
            trained.iter().enumerate().for_each(|(k, &e)| add(e, e, theta[1 + k]));
        }
        EnvModel::GxeUs => {
            let pairs = trained.iter().enumerate().flat_map(|(i, &e)| trained[i..].iter().map(move |&f| (e, f)));
            pairs.enumerate().for_each(|(k, (e, f))| add(e, f, theta[k]));
        }
    }
    let state = KernelEnvFit {
        env_model: model,
        envs: trials.envs().to_vec(),
        env_cov,
        fixed: design.names.iter().cloned().zip(fit.beta.iter().copied()).collect(),
        env_levels: {
            let xb = |i: usize| (0..fit.beta.len()).map(|j| design.train[(i, j)] * fit.beta[j]).sum::<f64>();
            let level = |e: usize| {
                let at: Vec<usize> = (0..train.len()).filter(|&i| records[train[i]].env == e).collect();
                (!at.is_empty()).then(|| at.iter().map(|&i| xb(i)).sum::<f64>() / at.len() as f64)
            };
            let trained_levels: Vec<f64> = trained.iter().filter_map(|&e| level(e)).collect();
            let mean = trained_levels.iter().sum::<f64>() / trained_levels.len().max(1) as f64;
            (0..n_all).map(|e| level(e).unwrap_or(mean)).collect()
        },
        records: train.iter().map(|&r| (position[r], records[r].env)).collect(),
        alpha: fit.alpha.clone(),
        reaction: match (model, trials.env_covariates()) {
            (EnvModel::Gxe, Some((names, rows))) => {
                let standardised = genopred_data::trials::env_covariates::Standardised::fit(rows, &trained)
                    .expect("Ω was built from it");
                Some(ReactionNorm {
                    names: names.to_vec(),
                    rows: rows.iter().map(|r| standardised.apply(r)).collect(),
                    standardised,
                    g: theta[0],
                    gw: theta[1],
                })
            }
            _ => None,
        },
    };
    Ok((predicted, report, state))
}

/// The fitted state of a kernel model over a trial: what predicts a line — trained or new — in
/// any environment, given the lines' kernel between it and the training lines.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KernelEnvFit {
    /// The form fitted.
    pub env_model: EnvModel,
    /// The trial's environments.
    pub envs: Vec<String>,
    /// The genetic covariance between environments, `envs × envs`: the genetic values of a line
    /// in environments `e` and `f` covary by `K · env_cov[e][f]` (an environment without
    /// training records shares only what the components give it: `g`, and `gw` through its
    /// covariates).
    pub env_cov: Vec<Vec<f64>>,
    /// The fixed effects' names and estimates (the environments' first).
    pub fixed: Vec<(String, f64)>,
    /// Each environment's level: the mean fixed part `xβ` of its training records (its
    /// least-squares mean over the other fixed effects as the trial had them); for an
    /// environment without training records, the mean of the trained ones'.
    pub env_levels: Vec<f64>,
    /// Each training record's line (its row in the lines' kernel the fit was given) and
    /// environment.
    pub records: Vec<(usize, usize)>,
    /// `P y` over the training records.
    pub alpha: Vec<f64>,
    /// The reaction norm through the environmental covariates, when the model has one: what
    /// places an environment outside the trial ([`KernelEnvFit::add_env`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionNorm>,
}

/// A reaction norm's parts: how the environmental covariates were standardised, each trial
/// environment's standardised row, and the `g` and `gw` variances.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReactionNorm {
    /// The covariates' names, in the file's order.
    pub names: Vec<String>,
    /// Their standardisation (over the trained environments).
    pub standardised: genopred_data::trials::env_covariates::Standardised,
    /// Each trial environment's standardised covariates.
    pub rows: Vec<Vec<f64>>,
    /// `σ²_g`.
    pub g: f64,
    /// `σ²_gw`.
    pub gw: f64,
}

impl KernelEnvFit {
    /// The genetic value of a line in environment `env`, given `cross(l)`: the lines' kernel
    /// between it and the line of kernel row `l` (a training line).
    pub fn genetic(&self, env: usize, cross: impl Fn(usize) -> f64) -> f64 {
        self.records.iter().zip(&self.alpha).map(|(&(l, e), a)| cross(l) * self.env_cov[env][e] * a).sum()
    }

    /// Places environment `name`, outside the trial, by its covariates (`row`, in the order of
    /// the trial's covariate file): its genetic covariance with each trial environment is
    /// `σ²_g + σ²_gw Ω`, `Ω` from the covariates standardised as in training; its level the
    /// mean of the trained environments'. Returns its index. Refused for a model without a
    /// reaction norm (trained without `--env-covariates`, or not `gxe`).
    pub fn add_env(&mut self, name: &str, row: &[f64]) -> Result<usize> {
        let Some(reaction) = &mut self.reaction else {
            return Err(CoreError::Data(format!(
                "environment '{name}' is not one of the model's ({}), and the model has no reaction norm to place \
                 it: train with --env-model gxe and --env-covariates",
                self.envs.join(", ")
            )));
        };
        if self.envs.iter().any(|e| e == name) {
            return Err(CoreError::Data(format!("environment '{name}' is already one of the model's")));
        }
        if row.len() != reaction.names.len() {
            return Err(CoreError::Data(format!(
                "environment '{name}' has {} covariates; the model was trained with {} ({})",
                row.len(),
                reaction.names.len(),
                reaction.names.join(", ")
            )));
        }
        let w = reaction.standardised.apply(row);
        let cov: Vec<f64> =
            reaction.rows.iter().map(|r| reaction.g + reaction.gw * reaction.standardised.similarity(&w, r)).collect();
        let own = reaction.g + reaction.gw * reaction.standardised.similarity(&w, &w);
        for (existing, c) in self.env_cov.iter_mut().zip(&cov) {
            existing.push(*c);
        }
        let mut new_row = cov;
        new_row.push(own);
        self.env_cov.push(new_row);
        reaction.rows.push(w);
        let mut trained: Vec<usize> = self.records.iter().map(|&(_, e)| e).collect();
        trained.sort_unstable();
        trained.dedup();
        let level = trained.iter().map(|&e| self.env_levels[e]).sum::<f64>() / trained.len().max(1) as f64;
        self.env_levels.push(level);
        self.envs.push(name.to_string());
        Ok(self.envs.len() - 1)
    }

    /// The prediction of a line in environment `env`: the environment's level plus the line's
    /// genetic value there.
    pub fn predict(&self, env: usize, cross: impl Fn(usize) -> f64) -> f64 {
        self.env_levels[env] + self.genetic(env, cross)
    }
}

/// One test prediction of a record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialPrediction {
    /// Line id.
    pub id: String,
    /// Environment.
    pub env: String,
    /// Fold number.
    pub fold: usize,
    /// Observed value.
    pub observed: f64,
    /// Predicted value.
    pub predicted: f64,
    /// Repeat number.
    pub repeat: usize,
}

/// Metrics of one environment's test records in a fold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvMetrics {
    /// Environment.
    pub env: String,
    /// Test records.
    pub n_test: usize,
    /// Pearson r and the rest, within this environment.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// The outcome of one fold of a multi-environment cross-validation.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrialFoldResult {
    /// Repeat number, 1-based.
    pub repeat: usize,
    /// Fold number, 1-based.
    pub fold: usize,
    /// The fold's label.
    pub label: String,
    /// Training records.
    pub n_train: usize,
    /// Lines with training records.
    pub n_train_lines: usize,
    /// Test records.
    pub n_test: usize,
    /// Markers kept by this fold's QC.
    pub n_markers: usize,
    /// Pearson r within each environment, averaged over the environments that have one (the
    /// field's headline accuracy).
    #[serde(deserialize_with = "genopred_stats::metrics::f64_or_nan")]
    pub within_env_pearson: f64,
    /// Metrics of the fold's test records pooled over environments.
    pub pooled: Metrics,
    /// Metrics per environment.
    pub environments: Vec<EnvMetrics>,
    /// Wall time.
    pub seconds: f64,
    /// This fold's QC counts.
    pub qc: QcReport,
    /// What the fit reported: the kernel model's components, or each environment's fit.
    pub fit: serde_json::Value,
    /// The test predictions (in the fold's record; `summary.json` leaves them to
    /// `predictions.csv`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predictions: Vec<TrialPrediction>,
}

/// Runs one fold over the records: QC on the training lines' genotypes, the fit, the test
/// records' predictions and metrics within and across environments. `record_rows[r]` is record
/// `r`'s row in `geno`.
#[allow(clippy::too_many_arguments)]
pub fn run_trial_fold(
    trials: &Trials,
    geno: &GenotypeMatrix,
    record_rows: &[usize],
    fold: &Fold,
    model: &mut dyn Predictor,
    env_model: EnvModel,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<TrialFoldResult> {
    let started = Instant::now();
    let records = trials.records();
    let name = model.name().to_string();
    let during = |what: String| format!("fold {} (repeat {}){what}", fold.label, fold.repeat);
    let unique = |rs: &[usize]| lines_of(rs, record_rows);
    let train_lines = unique(&fold.train);
    let qc = MarkerQc::fit(geno, &train_lines, &options.qc)?;
    let kept = kept_markers(geno, &qc.kept);
    let mut predicted = vec![f64::NAN; fold.test.len()];
    if let Some((names, _)) = trials.env_covariates()
        && env_model != EnvModel::Gxe
    {
        return Err(CoreError::Data(format!(
            "--env-model {env_model} does not use environmental covariates ({}); --env-model gxe does (the kernel \
             models' reaction-norm term, the networks' dense head)",
            names.join(", ")
        )));
    }
    let fit_report = match env_model {
        EnvModel::Single => {
            if !trials.fixed().is_empty() {
                return Err(CoreError::Data(format!(
                    "--env-model single fits each environment with the model alone and cannot fit the fixed effects \
                     ({}); use --env-model across or gxe",
                    trials.fixed().iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
                )));
            }
            let mut per_env = serde_json::Map::new();
            for (e, env) in trials.envs().iter().enumerate() {
                let test_at: Vec<usize> = (0..fold.test.len()).filter(|&i| records[fold.test[i]].env == e).collect();
                if test_at.is_empty() {
                    continue;
                }
                let env_train: Vec<usize> = fold.train.iter().copied().filter(|&r| records[r].env == e).collect();
                if env_train.len() < crate::cv::MIN_TRAIN {
                    return Err(CoreError::Data(format!(
                        "{}: environment '{env}' has {} training record(s) in fold {} (repeat {}): too few for a \
                         single-environment fit{}",
                        trials.path().display(),
                        env_train.len(),
                        fold.label,
                        fold.repeat,
                        if env_train.is_empty() {
                            " (a scheme that leaves environments out needs --env-model across or gxe)"
                        } else {
                            ""
                        }
                    )));
                }
                let rows: Vec<usize> = env_train.iter().map(|&r| record_rows[r]).collect();
                let y: Vec<f64> = env_train.iter().map(|&r| records[r].value).collect();
                let test_rows: Vec<usize> = test_at.iter().map(|&i| record_rows[fold.test[i]]).collect();
                let path = [fold.repeat as u64, fold.index as u64, e as u64];
                let (info, p) = fit_and_predict(
                    model,
                    &kept,
                    (&rows, &y),
                    &test_rows,
                    &path,
                    options,
                    observer,
                    during(format!(", {env}")),
                )?;
                for (&i, v) in test_at.iter().zip(p) {
                    predicted[i] = v;
                }
                per_env
                    .insert(env.clone(), serde_json::to_value(&info).map_err(|e| CoreError::Numerical(e.to_string()))?);
            }
            serde_json::json!({ "env_model": "single", "environments": per_env })
        }
        EnvModel::Across | EnvModel::Gxe | EnvModel::GxeHet | EnvModel::GxeUs => {
            // The lines' kernel over the training lines, then the test records' other lines.
            let mut rows = train_lines.clone();
            let in_train: std::collections::HashSet<usize> = train_lines.iter().copied().collect();
            for r in unique(&fold.test) {
                if !in_train.contains(&r) {
                    rows.push(r);
                }
            }
            let position_of: std::collections::HashMap<usize, usize> =
                rows.iter().enumerate().map(|(p, &r)| (r, p)).collect();
            let position: Vec<usize> =
                (0..records.len()).map(|r| position_of.get(&record_rows[r]).copied().unwrap_or(usize::MAX)).collect();
            let kernel = match model.genetic_kernel(&kept, &train_lines, &rows) {
                Some(kernel) => kernel,
                None if env_model == EnvModel::Across => {
                    let (p, value) = two_stage(trials, &kept, record_rows, fold, model, options, observer)?;
                    predicted = p;
                    return finish(trials, fold, predicted, value, qc, train_lines.len(), options, started, &name);
                }
                None if env_model == EnvModel::Gxe && model.fits_records() => {
                    let (p, value) = network_gxe(trials, &kept, record_rows, fold, model, options, observer)?;
                    predicted = p;
                    return finish(trials, fold, predicted, value, qc, train_lines.len(), options, started, &name);
                }
                None if model.fits_records() => {
                    return Err(CoreError::Data(format!(
                        "model {name} fits G×E as one output per environment (--env-model gxe); --env-model \
                         {env_model} needs a genetic kernel (GBLUP, RKHS)"
                    )));
                }
                None => {
                    return Err(CoreError::Data(format!(
                        "model {name} has neither a genetic kernel nor an output per environment, so it cannot fit \
                         --env-model {env_model}; use --env-model across or single"
                    )));
                }
            };
            let kernel = kernel.map_err(|source| CoreError::Model {
                model: name.clone(),
                during: during(String::new()),
                source,
            })?;
            let (p, report) = fit_kernel_model(
                env_model,
                trials,
                &kernel,
                &position,
                &fold.train,
                &fold.test,
                &MultiRemlConfig::default(),
            )?;
            predicted = p;
            let mut value = serde_json::to_value(&report).map_err(|e| CoreError::Numerical(e.to_string()))?;
            value["env_model"] = serde_json::json!(env_model.to_string());
            value
        }
    };
    finish(trials, fold, predicted, fit_report, qc, train_lines.len(), options, started, &name)
}

/// The distinct lines (genotype rows, sorted) of `records`, `record_rows[r]` being record `r`'s.
pub fn lines_of(records: &[usize], record_rows: &[usize]) -> Vec<usize> {
    let mut rows: Vec<usize> = records.iter().map(|&r| record_rows[r]).collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The fold's result from its predictions: metrics within each environment and pooled.
#[allow(clippy::too_many_arguments)]
fn finish(
    trials: &Trials,
    fold: &Fold,
    predicted: Vec<f64>,
    fit_report: serde_json::Value,
    qc: MarkerQc,
    n_train_lines: usize,
    options: &CvOptions,
    started: Instant,
    name: &str,
) -> Result<TrialFoldResult> {
    let records = trials.records();
    if predicted.iter().any(|p| !p.is_finite()) {
        return Err(CoreError::Numerical(format!(
            "model {name} returned a non-finite prediction on fold {}",
            fold.label
        )));
    }
    let observed: Vec<f64> = fold.test.iter().map(|&r| records[r].value).collect();
    let environments: Vec<EnvMetrics> = trials
        .envs()
        .iter()
        .enumerate()
        .filter_map(|(e, env)| {
            let at: Vec<usize> = (0..fold.test.len()).filter(|&i| records[fold.test[i]].env == e).collect();
            (!at.is_empty()).then(|| {
                let o: Vec<f64> = at.iter().map(|&i| observed[i]).collect();
                let p: Vec<f64> = at.iter().map(|&i| predicted[i]).collect();
                EnvMetrics { env: env.clone(), n_test: at.len(), metrics: Metrics::compute(&o, &p, options.ndcg_top) }
            })
        })
        .collect();
    let within = genopred_stats::metrics::Summary::of(environments.iter().map(|e| e.metrics.pearson)).mean;
    let predictions = fold
        .test
        .iter()
        .zip(observed.iter().zip(&predicted))
        .map(|(&r, (&o, &p))| TrialPrediction {
            id: records[r].line.clone(),
            env: trials.envs()[records[r].env].clone(),
            fold: fold.index,
            observed: o,
            predicted: p,
            repeat: fold.repeat,
        })
        .collect();
    Ok(TrialFoldResult {
        repeat: fold.repeat,
        fold: fold.index,
        label: fold.label.clone(),
        n_train: fold.train.len(),
        n_train_lines,
        n_test: fold.test.len(),
        n_markers: qc.kept.len(),
        within_env_pearson: within,
        pooled: Metrics::compute(&observed, &predicted, options.ndcg_top),
        environments,
        seconds: started.elapsed().as_secs_f64(),
        qc: qc.report,
        fit: fit_report,
        predictions,
    })
}

/// Across-environment fits of a model without a genetic kernel (the networks, BayesB), in two
/// stages: the fixed effects (environments, factors, covariates) and a fixed effect per line
/// by least squares on the training records (backfitting, exact for unbalanced data: the
/// environments' effects are not confounded with which lines they tested), then the model
/// fitted to each training line's effect — its mean over environments, adjusted for them. A
/// test record's prediction is its fixed effects plus the model's prediction of its line.
fn two_stage(
    trials: &Trials,
    geno: &GenotypeMatrix,
    record_rows: &[usize],
    fold: &Fold,
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<(Vec<f64>, serde_json::Value)> {
    let records = trials.records();
    let design = record_design(trials, &fold.train, &fold.test)?;
    let n = fold.train.len();
    let y: Vec<f64> = fold.train.iter().map(|&r| records[r].value).collect();
    // Training lines (genotype rows) and each training record's line.
    let lines = lines_of(&fold.train, record_rows);
    let line_of: Vec<usize> =
        fold.train.iter().map(|&r| lines.binary_search(&record_rows[r]).expect("a training line")).collect();
    let mut count = vec![0usize; lines.len()];
    line_of.iter().for_each(|&l| count[l] += 1);
    let x = &design.train;
    let p = x.ncols();
    let xtx = x.transpose() * x;
    let llt =
        xtx.llt(faer::Side::Lower).map_err(|_| CoreError::Numerical("two-stage: rank-deficient design".into()))?;
    let scale = {
        let m = y.iter().sum::<f64>() / n as f64;
        (y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-300)
    };
    let mut u = vec![0.0; lines.len()];
    let mut b = vec![0.0; p];
    let mut iterations = 0;
    loop {
        iterations += 1;
        let r = Mat::from_fn(n, 1, |i, _| y[i] - u[line_of[i]]);
        let sol = faer::linalg::solvers::Solve::solve(&llt, x.transpose() * &r);
        b = (0..p).map(|j| sol[(j, 0)]).collect();
        let mut sum = vec![0.0; lines.len()];
        for i in 0..n {
            sum[line_of[i]] += y[i] - (0..p).map(|j| x[(i, j)] * b[j]).sum::<f64>();
        }
        let new: Vec<f64> = sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect();
        let moved = new.iter().zip(&u).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        u = new;
        if moved <= 1e-12 * scale {
            break;
        }
        if iterations == 10_000 {
            return Err(CoreError::Numerical(
                "two-stage: the environments' and lines' effects did not converge (a disconnected trial?)".into(),
            ));
        }
    }
    let test_rows = lines_of(&fold.test, record_rows);
    let path = [fold.repeat as u64, fold.index as u64];
    let during = format!("fold {} (repeat {})", fold.label, fold.repeat);
    let (info, genetic) = fit_and_predict(model, geno, (&lines, &u), &test_rows, &path, options, observer, during)?;
    let predicted = fold
        .test
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let g = genetic[test_rows.binary_search(&record_rows[r]).expect("a test line")];
            (0..p).map(|j| design.test[(i, j)] * b[j]).sum::<f64>() + g
        })
        .collect();
    let value = serde_json::json!({
        "env_model": "across",
        "form": "two-stage",
        "fixed": design.names.iter().zip(&b).map(|(n, v)| (n.clone(), *v)).collect::<Vec<_>>(),
        "iterations": iterations,
        "lines": lines.len(),
        "model": info,
    });
    Ok((predicted, value))
}

/// G×E for a network (any model that fits records, [`Predictor::fit_records`]): the fixed
/// effects (environments, factors, covariates) by least squares on the training records, then
/// the network on what they leave, with one output per trained environment (each record's loss
/// on its own environment's output, whose bias is that environment's intercept) and the
/// fold's design as covariates in its dense head. The body is shared by the environments, so
/// an environment borrows from the others as far as the data say the lines rank alike; its own
/// output layer turns the shared features into its own genetic values. A test record in an
/// environment without training records reads the mean of the trained environments' outputs
/// (as the design weighs it).
///
/// The early-stopping subset is drawn by lines: every training record of a validation line is
/// held out, so the network stops where it predicts lines it has not seen — the harder of the
/// two questions (CV1), and the honest one for both.
fn network_gxe(
    trials: &Trials,
    geno: &GenotypeMatrix,
    record_rows: &[usize],
    fold: &Fold,
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<(Vec<f64>, serde_json::Value)> {
    let design = record_design(trials, &fold.train, &fold.test)?;
    let path = [fold.repeat as u64, fold.index as u64];
    let during = format!("fold {} (repeat {})", fold.label, fold.repeat);
    let fit =
        fit_network_records(trials, geno, record_rows, &fold.train, &design.train, &path, model, options, observer)
            .map_err(|e| e.during(model.name(), &during))?;
    let test_at: Vec<usize> = (0..fold.test.len()).collect();
    let test_rows: Vec<usize> = fold.test.iter().map(|&r| record_rows[r]).collect();
    let (test_cov, test_w) =
        (fit.covariates(trials, &design.test, &test_at, &fold.test), fit.weights(trials, &fold.test));
    let test = RecordSet {
        geno,
        rows: &test_rows,
        y: &[],
        covariates: &test_cov,
        n_covariates: fit.q,
        weights: &test_w,
        outputs: fit.k,
    };
    let genetic = model.predict_records(&test).map_err(|source| CoreError::Model {
        model: model.name().to_string(),
        during: during.clone(),
        source,
    })?;
    let predicted = (0..fold.test.len()).map(|i| fit.fixed(&design.test, i) + genetic[i]).collect();
    let value = serde_json::json!({
        "env_model": "gxe",
        "form": "network outputs per environment",
        "fixed": design.names.iter().zip(&fit.b).map(|(n, v)| (n.clone(), *v)).collect::<Vec<_>>(),
        "outputs": fit.k,
        "lines": fit.lines,
        "model": fit.info,
    });
    Ok((predicted, value))
}

/// A network fitted to a trial's training records ([`fit_network_records`]): the fixed
/// effects taken off first, and how a record reads the network (its covariates and weights).
struct NetworkRecords {
    /// Fixed effects (the design's columns).
    b: Vec<f64>,
    /// Each environment's output (`usize::MAX` for one without training records).
    output_of: Vec<usize>,
    /// Outputs.
    k: usize,
    /// Design columns.
    p: usize,
    /// Covariates in the head: the design's columns, then the environmental covariates.
    q: usize,
    /// Distinct training lines.
    lines: usize,
    /// The model's report.
    info: FitInfo,
}

/// A [`CoreError`] for a model's failure, once its caller says where.
enum NetworkError {
    Core(CoreError),
    Model(crate::predictor::ModelError),
}

impl NetworkError {
    fn during(self, model: &str, during: &str) -> CoreError {
        match self {
            NetworkError::Core(e) => e,
            NetworkError::Model(source) => CoreError::Model { model: model.into(), during: during.into(), source },
        }
    }
}

impl From<CoreError> for NetworkError {
    fn from(e: CoreError) -> Self {
        NetworkError::Core(e)
    }
}

impl NetworkRecords {
    /// The fixed part `x_i b` of row `i` of a design matrix.
    fn fixed(&self, m: &Mat<f64>, i: usize) -> f64 {
        (0..self.p).map(|j| m[(i, j)] * self.b[j]).sum()
    }

    /// Rows `at` of design `m` for records `rs`, with each record's environmental covariates.
    fn covariates(&self, trials: &Trials, m: &Mat<f64>, at: &[usize], rs: &[usize]) -> Vec<f64> {
        let env_rows = trials.env_covariates().map(|(_, rows)| rows);
        let records = trials.records();
        at.iter()
            .zip(rs)
            .flat_map(|(&i, &r)| {
                let env = env_rows.map(|rows| rows[records[r].env].as_slice()).unwrap_or_default();
                (0..self.p).map(move |j| m[(i, j)]).chain(env.iter().copied())
            })
            .collect()
    }

    /// The output weights of environment `e`: one-hot for a trained one, equal weights otherwise.
    fn env_weights(&self, e: usize) -> Vec<f64> {
        let o = self.output_of[e];
        (0..self.k).map(|j| if o == usize::MAX { 1.0 / self.k as f64 } else { f64::from(u8::from(j == o)) }).collect()
    }

    /// The output weights of records `rs`.
    fn weights(&self, trials: &Trials, rs: &[usize]) -> Vec<f64> {
        rs.iter().flat_map(|&r| self.env_weights(trials.records()[r].env)).collect()
    }
}

/// Fits a network (any model that fits records) to a trial's `train` records with design
/// `x`: the fixed effects by least squares, then the network on what they leave, with an output
/// per trained environment and the design (and environmental covariates) in its head; the
/// early-stopping subset drawn by lines, seeds under `path`.
#[allow(clippy::too_many_arguments)]
fn fit_network_records(
    trials: &Trials,
    geno: &GenotypeMatrix,
    record_rows: &[usize],
    train: &[usize],
    x: &Mat<f64>,
    path: &[u64],
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> std::result::Result<NetworkRecords, NetworkError> {
    let records = trials.records();
    let (n, p) = (train.len(), x.ncols());
    let y: Vec<f64> = train.iter().map(|&r| records[r].value).collect();
    let llt = (x.transpose() * x)
        .llt(faer::Side::Lower)
        .map_err(|_| CoreError::Numerical("G×E network: rank-deficient fixed-effect design".into()))?;
    let sol = faer::linalg::solvers::Solve::solve(&llt, x.transpose() * Mat::from_fn(n, 1, |i, _| y[i]));
    let b: Vec<f64> = (0..p).map(|j| sol[(j, 0)]).collect();
    // One output per trained environment; an untrained one reads them all equally.
    let mut output_of = vec![usize::MAX; trials.envs().len()];
    let mut k = 0;
    for (e, o) in output_of.iter_mut().enumerate() {
        if train.iter().any(|&r| records[r].env == e) {
            *o = k;
            k += 1;
        }
    }
    let q = p + trials.env_covariates().map_or(0, |(names, _)| names.len());
    let mut fit = NetworkRecords { b, output_of, k, p, q, lines: 0, info: FitInfo::default() };
    let residual: Vec<f64> = (0..n).map(|i| y[i] - fit.fixed(x, i)).collect();
    // The early-stopping subset, by lines.
    let lines = lines_of(train, record_rows);
    fit.lines = lines.len();
    let (fit_at, valid_at): (Vec<usize>, Vec<usize>) = if model.wants_validation() {
        let (_, held) =
            validation_split(&lines, options.valid_fraction, derive_seed(options.seed, Purpose::Validation, path))?;
        let held: std::collections::HashSet<usize> = held.into_iter().collect();
        (0..n).partition(|&i| !held.contains(&record_rows[train[i]]))
    } else {
        ((0..n).collect(), Vec::new())
    };
    let pick = |at: &[usize]| {
        let rs: Vec<usize> = at.iter().map(|&i| train[i]).collect();
        (
            rs.iter().map(|&r| record_rows[r]).collect::<Vec<_>>(),
            at.iter().map(|&i| residual[i]).collect::<Vec<_>>(),
            fit.covariates(trials, x, at, &rs),
            fit.weights(trials, &rs),
        )
    };
    let (fitting, valid) = (pick(&fit_at), pick(&valid_at));
    type Parts = (Vec<usize>, Vec<f64>, Vec<f64>, Vec<f64>);
    fn set<'s>(geno: &'s GenotypeMatrix, (rows, y, c, w): &'s Parts, q: usize, k: usize) -> RecordSet<'s> {
        RecordSet { geno, rows, y, covariates: c, n_covariates: q, weights: w, outputs: k }
    }
    let genotyped: Vec<usize> = (0..geno.n_samples()).collect();
    let context = FitContext {
        seed: derive_seed(options.seed, Purpose::Fit, path),
        genotyped_rows: &genotyped,
        observer,
        shared: None,
    };
    let valid_set = (!valid_at.is_empty()).then(|| set(geno, &valid, q, k));
    fit.info =
        model.fit_records(&set(geno, &fitting, q, k), valid_set.as_ref(), &context).map_err(NetworkError::Model)?;
    model.take_history();
    Ok(fit)
}

/// The fitted state of a network over a whole trial (`genopred train --env` with a network):
/// what a new line's prediction in each environment reads besides its genotypes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkEnvFit {
    /// The trial's environments.
    pub envs: Vec<String>,
    /// The fixed effects' names and estimates.
    pub fixed: Vec<(String, f64)>,
    /// Each environment's level: the mean fixed part `xβ` of its records.
    pub env_levels: Vec<f64>,
    /// Each environment's covariates in the network's head: the mean design row of its records
    /// (over the other fixed effects as the trial had them), then its environmental covariates.
    pub covariates: Vec<Vec<f64>>,
    /// Each environment's output weights.
    pub weights: Vec<Vec<f64>>,
}

/// Fits a network to every record of a trial (`genopred train --env`), seeds under `path`;
/// the fitted model stays in `model`, what else predicts a line in an environment is returned.
pub fn fit_network_trial(
    trials: &Trials,
    geno: &GenotypeMatrix,
    record_rows: &[usize],
    model: &mut dyn Predictor,
    options: &CvOptions,
    observer: &dyn FitObserver,
) -> Result<(NetworkEnvFit, FitInfo)> {
    let all: Vec<usize> = (0..trials.records().len()).collect();
    let design = record_design(trials, &all, &[])?;
    let fit = fit_network_records(trials, geno, record_rows, &all, &design.train, &[], model, options, observer)
        .map_err(|e| e.during(model.name(), "the final fit"))?;
    let records = trials.records();
    let mut env_levels = Vec::new();
    let mut covariates = Vec::new();
    for e in 0..trials.envs().len() {
        let at: Vec<usize> = (0..all.len()).filter(|&i| records[i].env == e).collect();
        let rows = fit.covariates(trials, &design.train, &at, &at);
        let mean = (0..fit.q)
            .map(|j| at.iter().enumerate().map(|(i, _)| rows[i * fit.q + j]).sum::<f64>() / at.len() as f64)
            .collect();
        env_levels.push(at.iter().map(|&i| fit.fixed(&design.train, i)).sum::<f64>() / at.len() as f64);
        covariates.push(mean);
    }
    let state = NetworkEnvFit {
        envs: trials.envs().to_vec(),
        fixed: design.names.iter().cloned().zip(fit.b.iter().copied()).collect(),
        env_levels,
        covariates,
        weights: (0..trials.envs().len()).map(|e| fit.env_weights(e)).collect(),
    };
    Ok((state, fit.info))
}

impl NetworkEnvFit {
    /// Predicts `rows` of `geno` in environment `env` with the network `model` was fitted to.
    pub fn predict(
        &self,
        model: &dyn Predictor,
        geno: &GenotypeMatrix,
        rows: &[usize],
        env: usize,
    ) -> std::result::Result<Vec<f64>, crate::predictor::ModelError> {
        let n = rows.len();
        let covariates: Vec<f64> = (0..n).flat_map(|_| self.covariates[env].iter().copied()).collect();
        let weights: Vec<f64> = (0..n).flat_map(|_| self.weights[env].iter().copied()).collect();
        let set = RecordSet {
            geno,
            rows,
            y: &[],
            covariates: &covariates,
            n_covariates: self.covariates[env].len(),
            weights: &weights,
            outputs: self.weights[env].len(),
        };
        Ok(model.predict_records(&set)?.into_iter().map(|g| self.env_levels[env] + g).collect())
    }
}

/// Fits `model` on `rows` of `geno` with values `y` — less a validation subset, for a model that
/// wants one, drawn with the seed under `path` — and predicts `test_rows`; the fit's seed is
/// derived under `path` too. `during` names the fit in errors.
#[allow(clippy::too_many_arguments)]
fn fit_and_predict(
    model: &mut dyn Predictor,
    geno: &GenotypeMatrix,
    (rows, y): (&[usize], &[f64]),
    test_rows: &[usize],
    path: &[u64],
    options: &CvOptions,
    observer: &dyn FitObserver,
    during: String,
) -> Result<(FitInfo, Vec<f64>)> {
    let positions: Vec<usize> = (0..rows.len()).collect();
    let (fit_at, valid_at) = if model.wants_validation() {
        validation_split(&positions, options.valid_fraction, derive_seed(options.seed, Purpose::Validation, path))?
    } else {
        (positions, Vec::new())
    };
    let pick =
        |at: &[usize]| (at.iter().map(|&i| rows[i]).collect::<Vec<_>>(), at.iter().map(|&i| y[i]).collect::<Vec<_>>());
    let ((fit_rows, y_fit), (valid_rows, y_valid)) = (pick(&fit_at), pick(&valid_at));
    let genotyped: Vec<usize> = (0..geno.n_samples()).collect();
    let context = FitContext {
        seed: derive_seed(options.seed, Purpose::Fit, path),
        genotyped_rows: &genotyped,
        observer,
        shared: None,
    };
    let name = model.name().to_string();
    let model_err = |source| CoreError::Model { model: name.clone(), during: during.clone(), source };
    let train = TrainSet { geno, rows: &fit_rows, y: &y_fit };
    let valid = TrainSet { geno, rows: &valid_rows, y: &y_valid };
    let info = model.fit(&train, (!valid_rows.is_empty()).then_some(&valid), &context).map_err(model_err)?;
    model.take_history();
    let predicted = model.predict(geno, test_rows).map_err(model_err)?;
    Ok((info, predicted))
}

#[cfg(test)]
mod tests;
