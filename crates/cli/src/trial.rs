//! A multi-environment trial as `genopred cv` and `genopred train` read it: the arguments
//! (`--env`, `--env-columns`, `--fixed`, `--env-covariates`, `--env-model`) and the records of
//! the genotyped lines.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use genopred_core::GenotypeMatrix;
use genopred_core::output::sha256_file;
use genopred_core::trials::{EnvCovariates, TrialOptions, Trials};

use crate::inputs::FitArgs;

/// The trial's arguments.
#[derive(Debug, Args)]
pub struct TrialArgs {
    /// Multi-environment trials: `--pheno` is a long table, a record per line × environment
    /// (unbalanced, missing cells allowed), and this column names the environment. With `cv`
    /// the folds are over the records (`--scheme`) and predictions.csv gains an `env` column.
    #[arg(long, value_name = "COLUMN", conflicts_with = "env_columns")]
    pub env: Option<String>,
    /// Multi-environment trials from a wide table: these trait columns (comma-separated) are
    /// the environments, `--trait` names the trait they measure (wheat599's
    /// `yield_env1,...,yield_env4`).
    #[arg(long, value_name = "COL,COL...", value_delimiter = ',')]
    pub env_columns: Vec<String>,
    /// Fixed effects beside the environment (with `--env`): columns of the long table,
    /// comma-separated; a column of numbers is a covariate, any other a factor.
    #[arg(long, value_name = "COL,COL...", value_delimiter = ',', requires = "env")]
    pub fixed: Vec<String>,
    /// Environmental covariates (with environments): a table with a row per environment — its
    /// name in the column named like the environment column (or the first column), then numeric
    /// columns (weather, soil, management). `--env-model gxe` then adds the reaction-norm term
    /// `gw ~ N(0, σ²_gw K ⊙ Ω)`, `Ω` the environments' similarity from their standardised
    /// covariates (Jarquín et al. 2014), through which an environment without training records
    /// (`cv0`, `cv00`) borrows from those it resembles; the networks get them in their dense head.
    #[arg(long, value_name = "FILE")]
    pub env_covariates: Option<PathBuf>,
    /// With environments: `single` (one fit per environment, any model), `across` (one genetic
    /// effect, environments fixed; two-stage for models without a genetic kernel), `gxe` (plus a
    /// line × environment effect), `gxe-het` (its variance per environment) or `gxe-us` (an
    /// unstructured genetic covariance between environments). GBLUP and RKHS fit every form; the
    /// networks fit `gxe` as an output per environment and `across` in two stages; BayesB and
    /// the ensemble fit `across` and `single`.
    #[arg(long, default_value = "gxe", value_name = "single|across|gxe|gxe-het|gxe-us")]
    pub env_model: String,
}

impl LoadedTrial {
    /// How the trial's lines matched the `genotyped` samples.
    pub fn matching(&self, genotyped: usize) -> genopred_core::dataset::MatchReport {
        genopred_core::dataset::MatchReport {
            genotyped,
            phenotyped: self.lines_all.len(),
            matched: self.lines.len(),
            missing_trait: 0,
            used: self.lines.len(),
            unmatched_examples: self.unmatched.clone(),
        }
    }
}

impl TrialArgs {
    /// Whether a trial was asked for.
    pub fn is_trial(&self) -> bool {
        self.env.is_some() || !self.env_columns.is_empty()
    }
}

/// A trial's records of genotyped lines, and what was left out.
#[derive(Debug)]
pub struct LoadedTrial {
    /// The records of genotyped lines.
    pub trials: Trials,
    /// Each record's row in the genotypes.
    pub record_rows: Vec<usize>,
    /// The genotyped lines with records.
    pub lines: Vec<String>,
    /// Every line of the table.
    pub lines_all: Vec<String>,
    /// A few lines without genotypes.
    pub unmatched: Vec<String>,
    /// The environment column (or the wide table's columns, comma-joined).
    pub env_column: String,
    /// SHA-256 of the environmental-covariate file, if one was given.
    pub env_covariates_sha256: Option<String>,
}

/// `fit`'s genotypes less the samples missing more than `max_missing` of their calls (sample
/// QC, said on stderr), the read report and the samples removed.
pub fn genotypes(
    fit: &FitArgs,
    max_missing: f64,
) -> Result<(GenotypeMatrix, genopred_core::readers::ReadReport, Vec<String>)> {
    let (geno_all, read_report) = fit.geno.read()?;
    let (kept_rows, removed) = genopred_core::qc::filter_samples(&geno_all, max_missing);
    if !removed.is_empty() {
        eprintln!("sample QC: removed {} sample(s) with missing rate > {max_missing}", removed.len());
    }
    let geno = if removed.is_empty() { geno_all } else { geno_all.retain_samples(&kept_rows) };
    Ok((geno, read_report, removed))
}

/// Reads the trial of `fit`'s phenotype file and keeps the records of lines in `geno`.
pub fn load(fit: &FitArgs, trial: &TrialArgs, geno: &GenotypeMatrix) -> Result<LoadedTrial> {
    let pheno_path = fit.pheno.pheno.as_ref().context("--pheno is required with environments")?;
    let trait_name = &fit.trait_name;
    let (all, env_column) = match &trial.env {
        Some(column) => {
            let options = TrialOptions {
                id_column: fit.pheno.id_column.clone(),
                env_column: column.clone(),
                trait_name: trait_name.clone(),
                fixed: trial.fixed.clone(),
                missing: fit.pheno.pheno_missing.clone(),
            };
            let t = Trials::read(pheno_path, &options)
                .with_context(|| format!("reading the trial from {}", pheno_path.display()))?;
            (t, column.clone())
        }
        None => {
            if !trial.fixed.is_empty() {
                bail!("--fixed needs a long table (--env COLUMN); a wide table has no other columns per record");
            }
            let pheno = fit.pheno.read()?.context("--pheno is required")?;
            let columns: Vec<&str> = trial.env_columns.iter().map(String::as_str).collect();
            (Trials::from_wide(&pheno, &columns, trait_name)?, trial.env_columns.join(","))
        }
    };
    let (all, env_covariates_sha256) = match &trial.env_covariates {
        Some(path) => {
            let table = EnvCovariates::read(path, all.env_name())?;
            eprintln!("environmental covariates: {} from {}", table.names().join(", "), path.display());
            (all.with_env_covariates(&table)?, Some(sha256_file(path)?))
        }
        None => (all, None),
    };
    let index: HashMap<&str, usize> = geno.samples().iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let lines_all = all.lines();
    let trials = all.retain(|r| index.contains_key(r.line.as_str()));
    let lines = trials.lines();
    let unmatched: Vec<String> =
        lines_all.iter().filter(|l| !index.contains_key(l.as_str())).take(5).cloned().collect();
    if trials.records().is_empty() {
        bail!(
            "no line of {} is in the genotype file {} (e.g. {}); check the id column",
            pheno_path.display(),
            fit.geno.geno.display(),
            unmatched.join(", ")
        );
    }
    let record_rows: Vec<usize> = trials.records().iter().map(|r| index[r.line.as_str()]).collect();
    eprintln!(
        "trial: {} records of {} lines in {} environments ({}); {} record(s) of {} line(s) without genotypes left \
         out; {} missing value(s)",
        trials.records().len(),
        lines.len(),
        trials.envs().len(),
        trials
            .envs()
            .iter()
            .zip(trials.records_per_env())
            .map(|(e, n)| format!("{e}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        all.records().len() - trials.records().len(),
        lines_all.len() - lines.len(),
        trials.missing_values()
    );
    Ok(LoadedTrial { trials, record_rows, lines, lines_all, unmatched, env_column, env_covariates_sha256 })
}
