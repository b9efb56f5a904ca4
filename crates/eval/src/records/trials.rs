//! The records of a multi-environment cross-validation run (`genopred cv --env`): each finished
//! fold (`folds/rRR-fFFF.json`, [`TrialFoldRecord`]) and the summary (`summary.json`,
//! [`TrialRunSummary`]); `run.json` is the same [`super::RunSettings`] as any run's, its scheme a
//! [`super::FoldScheme::Trials`].

use std::path::Path;

use super::{Provenance, read_record, write_record};
use crate::cv::Fold;
use crate::env_model::{EnvModel, TrialFoldResult};
use genopred_data::error::{CoreError, Result};
use genopred_stats::metrics::{MetricSummaries, Metrics, Summary};

/// One finished fold of a multi-environment run, with its run's identity and the digest of its
/// test records (line and environment, in order).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrialFoldRecord {
    /// Record format ([`TrialFoldRecord::FORMAT`]).
    pub format: u32,
    /// The run's identity.
    pub run: String,
    /// [`test_digest`] of the fold's test records.
    pub test_records: String,
    /// The fold.
    pub result: TrialFoldResult,
}

/// The digest of a fold's test records (`line`, `env` pairs in order).
pub fn test_digest<'a>(records: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let keys: Vec<String> = records.into_iter().map(|(l, e)| format!("{l}\u{1f}{e}")).collect();
    super::ids_digest(keys.iter().map(String::as_str))
}

impl TrialFoldRecord {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Reads a fold record.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "multi-environment fold record", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }

    /// Refuses a record that is not this fold of the run `run`.
    pub fn check(&self, path: &Path, run: &str, fold: &Fold, test_records: &str) -> Result<()> {
        let bad = |what: &str| {
            Err(CoreError::format(path, format!("{what}; delete it (or start over with --force) to rerun that fold")))
        };
        if self.run != run {
            return bad("a fold of another run");
        }
        if (self.result.repeat, self.result.fold) != (fold.repeat, fold.index) {
            return bad("the record of another fold");
        }
        if self.test_records != test_records || self.result.predictions.len() != fold.test.len() {
            return bad("its test records are not this fold's");
        }
        Ok(())
    }
}

/// One environment over the folds that tested it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EnvSummary {
    /// Environment.
    pub env: String,
    /// Test records over all folds and repeats.
    pub n_test: usize,
    /// Folds that tested it.
    pub n_folds: usize,
    /// Each metric within this environment, mean and sd over those folds.
    pub metrics: MetricSummaries,
}

/// `summary.json` of a multi-environment run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrialRunSummary {
    /// Record format ([`TrialRunSummary::FORMAT`]).
    pub format: u32,
    /// Model name.
    pub model: String,
    /// Trait name.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// The environment column.
    pub env_column: String,
    /// How environments entered the model.
    pub env_model: EnvModel,
    /// Records used (genotyped lines with a value).
    pub n_records: usize,
    /// Lines used.
    pub n_lines: usize,
    /// Environments.
    pub n_envs: usize,
    /// Markers in the genotype file (before per-fold QC).
    pub n_markers: usize,
    /// Seed.
    pub seed: u64,
    /// The headline: Pearson r within environment, averaged over a fold's environments, then
    /// mean and sd over folds.
    pub within_env_pearson: Summary,
    /// Per environment.
    pub environments: Vec<EnvSummary>,
    /// Each metric of a fold's test records pooled over environments, mean and sd over folds.
    pub pooled: MetricSummaries,
    /// Per-fold results (their predictions are in `predictions.csv`).
    pub folds: Vec<TrialFoldResult>,
    /// How the run was set up.
    pub provenance: Provenance,
}

impl TrialRunSummary {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Reads `summary.json`.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "multi-environment run summary", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }

    /// The per-environment and headline summaries of `folds`, in the order of `envs`.
    pub fn summarise(folds: &[TrialFoldResult], envs: &[String]) -> (Summary, Vec<EnvSummary>, MetricSummaries) {
        let within = Summary::of(folds.iter().map(|f| f.within_env_pearson));
        let per_env = envs
            .iter()
            .filter_map(|env| {
                let at: Vec<(usize, Metrics)> = folds
                    .iter()
                    .flat_map(|f| f.environments.iter().filter(|e| &e.env == env).map(|e| (e.n_test, e.metrics)))
                    .collect();
                (!at.is_empty()).then(|| EnvSummary {
                    env: env.clone(),
                    n_test: at.iter().map(|a| a.0).sum(),
                    n_folds: at.len(),
                    metrics: MetricSummaries::of(&at.iter().map(|a| a.1).collect::<Vec<_>>()),
                })
            })
            .collect();
        let pooled = MetricSummaries::of(&folds.iter().map(|f| f.pooled).collect::<Vec<_>>());
        (within, per_env, pooled)
    }
}
