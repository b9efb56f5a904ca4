//! The records of a trained model folder (`manifest.json`) and of the model catalogue
//! (`genopred models --json`).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Inputs, read_record, write_record};
use crate::evaluation::CvOptions;
use crate::predictor::FitInfo;
use genopred_data::dataset::MatchReport;
use genopred_data::qc::QcReport;
use genopred_stats::metrics::Metrics;

/// Version of the model folder layout; `predict` refuses folders from a newer layout.
pub const MODEL_FORMAT: u32 = 1;

/// What a model folder's `manifest.json` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Layout version ([`MODEL_FORMAT`]).
    pub format: u32,
    /// genopred version that trained the model.
    pub genopred_version: String,
    /// Model name (`genopred models`).
    pub model: String,
    /// Trait predicted.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Seed of every random choice of the fit.
    pub seed: u64,
    /// Backend the model was trained on (`flex`, `wgpu` ...; `cpu` for GBLUP).
    pub backend: String,
    /// The backend in words.
    pub backend_description: String,
    /// When training finished (seconds since the Unix epoch).
    pub created_unix: u64,
    /// The command line.
    pub command: Vec<String>,
    /// Training inputs: paths, format and SHA-256.
    pub inputs: Inputs,
    /// How genotype and phenotype ids matched.
    pub matching: MatchReport,
    /// Samples with genotypes and a trait value (after sample QC).
    pub n_samples: usize,
    /// Samples the model was fitted on.
    pub n_fit: usize,
    /// Samples held out for early stopping.
    pub n_valid: usize,
    /// Markers QC kept (the model's markers).
    pub n_markers: usize,
    /// What QC removed.
    pub qc: QcReport,
    /// QC thresholds, validation fraction and seed.
    pub options: CvOptions,
    /// What the model reported about its fit (epochs, variance components ...).
    pub fit: FitInfo,
    /// Metrics on the fitted samples (in-sample; cross-validation measures accuracy).
    pub train_metrics: Metrics,
    /// Metrics on the early-stopping subset.
    pub valid_metrics: Option<Metrics>,
    /// Wall time of QC and fit.
    pub fit_seconds: f64,
    /// SHA-256 of every other file of the folder, by relative path.
    pub files: BTreeMap<String, String>,
    /// A model of a multi-environment trial (`genopred train --env`): absent for one trait in
    /// one environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<TrialModel>,
}

/// What a model of a trial was fitted to; its fitted state is the folder's `trial.json`
/// ([`TrialState`]), the training lines' genotypes its `lines.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialModel {
    /// The environment column (or the wide table's columns, comma-joined).
    pub env_column: String,
    /// How environments entered the model.
    pub env_model: crate::env_model::EnvModel,
    /// The trial's environments, each predictable by name (`genopred predict --env`).
    pub envs: Vec<String>,
    /// Training records.
    pub n_records: usize,
}

/// A trial model's fitted state (`trial.json`): the training lines (for a kernel model in the
/// order of their genotypes in `lines.csv`, the kernel's rows at fit time), and the state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialState {
    /// Layout version.
    pub format: u32,
    /// Training lines.
    pub lines: Vec<String>,
    /// The model's fitted state besides its own files.
    pub fit: TrialFit,
}

/// A trial model's fitted state, by kind of model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TrialFit {
    /// A kernel model (GBLUP, RKHS): the genetic covariance between environments, `P y`, the
    /// environments' levels; predicts from a line's kernel with the training lines (`lines.csv`).
    Kernel(crate::env_model::KernelEnvFit),
    /// A network with an output per environment (its weights and head in the model's own
    /// files): each environment's level, head covariates and output weights.
    Network(crate::env_model::NetworkEnvFit),
}

impl TrialState {
    /// The layout this build writes.
    pub const FORMAT: u32 = 1;
}

impl Manifest {
    /// Reads a manifest, refusing a newer layout.
    pub fn read(path: &Path) -> genopred_data::Result<Self> {
        read_record(path, "model manifest", MODEL_FORMAT, |m: &Self| m.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> genopred_data::Result<()> {
        write_record(path, self)
    }
}

/// Where a model computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compute {
    /// On the burn device chosen with `--backend` (neural models).
    Device,
    /// On the CPU in f64, whatever `--backend` says (GBLUP and other classical models).
    Cpu,
}

/// One model of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The `--model` name.
    pub name: String,
    /// One line about it.
    pub about: String,
    /// Where it computes.
    pub compute: Compute,
    /// Whether it ships a search space (`--tune default`).
    #[serde(default)]
    pub tuning_space: bool,
}

/// `genopred models --json`: every model compiled in, in catalogue order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelListing {
    /// Record format ([`ModelListing::FORMAT`]).
    #[serde(default)]
    pub format: u32,
    /// The models.
    pub models: Vec<ModelInfo>,
    /// The backend neural models use by default.
    pub default_backend: String,
}

impl ModelListing {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Parses the listing printed by `genopred models --json`, refusing a newer format.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let listing: ModelListing =
            serde_json::from_str(text).map_err(|e| format!("not a `genopred models --json` listing: {e}"))?;
        if listing.format > Self::FORMAT {
            return Err(format!(
                "the model listing has format {} (this reads up to {}); update the xtask",
                listing.format,
                Self::FORMAT
            ));
        }
        Ok(listing)
    }

    /// The model named `name`, if listed.
    pub fn find(&self, name: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }
}
