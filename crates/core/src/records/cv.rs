//! The records of a cross-validation run: its settings (`run.json`), each finished fold
//! (`folds/rRR-fFFF.json`) and the summary (`summary.json`).

use std::path::{Path, PathBuf};

use super::{GenoHashes, Inputs, read_record, write_record};
use crate::dataset::MatchReport;
use crate::error::Result;
use crate::evaluation::{CvOptions, FoldResult, Prediction};
use crate::metrics::MetricSummaries;

/// How the folds of a run were made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FoldScheme {
    /// Seeded k-fold, repeated.
    Kfold {
        /// Folds per repeat.
        k: usize,
        /// Repeats.
        repeats: usize,
    },
    /// Folds read from an `id,fold` file.
    File {
        /// The file.
        path: PathBuf,
        /// Its SHA-256.
        sha256: String,
        /// Number of folds.
        folds: usize,
    },
    /// Leave one group out.
    Grouped {
        /// The phenotype column holding the groups.
        column: String,
        /// Number of groups (folds).
        folds: usize,
    },
}

/// The inputs' hashes as `run.json` compares them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputHashes {
    /// Genotype files.
    pub geno: GenoHashes,
    /// Phenotype file.
    pub pheno: String,
}

/// Everything that decides a fold's result (`run.json`): `--resume` and `--only-fold` jobs
/// reuse finished folds only when it matches.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSettings {
    /// Record format ([`RunSettings::FORMAT`]; 0 for files written before it existed).
    #[serde(default)]
    pub format: u32,
    /// genopred version.
    pub genopred_version: String,
    /// Model name.
    pub model: String,
    /// The model's resolved settings.
    pub model_config: serde_json::Value,
    /// The backend in words.
    pub backend: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// QC, validation fraction, NDCG's k and seed.
    pub options: CvOptions,
    /// How the folds are made.
    pub scheme: FoldScheme,
    /// Hashes of the data files.
    pub inputs: InputHashes,
    /// The nested search (`--tune`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<crate::tuning::TuneSettings>,
}

impl RunSettings {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Names of the settings that differ between two runs (empty when they match).
    pub fn differences(&self, other: &RunSettings) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |same: bool, name: &'static str| {
            if !same {
                out.push(name);
            }
        };
        check(self.format == other.format, "format");
        check(self.genopred_version == other.genopred_version, "genopred_version");
        check(self.model == other.model, "model");
        check(self.model_config == other.model_config, "model_config");
        check(self.backend == other.backend, "backend");
        check(self.trait_name == other.trait_name, "trait");
        check(self.seed == other.seed, "seed");
        check(self.options == other.options, "options");
        check(self.scheme == other.scheme, "scheme");
        check(self.inputs == other.inputs, "inputs");
        check(self.tuning == other.tuning, "tuning");
        out
    }

    /// Reads `run.json`.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "run record", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes `run.json` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }
}

/// One finished fold (`folds/rRR-fFFF.json`), written as soon as the fold ends.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FoldRecord {
    /// Record format ([`FoldRecord::FORMAT`]; 0 before it existed).
    #[serde(default)]
    pub format: u32,
    /// The fold's result.
    pub result: FoldResult,
    /// Its test predictions.
    pub predictions: Vec<Prediction>,
    /// Peak resident memory of the process that ran the fold, bytes, when the fold was recorded
    /// (with `--jobs`, of all the folds it ran until then). Lets a run merged from one process
    /// per fold report its memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_peak_rss_bytes: Option<u64>,
}

impl FoldRecord {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// The record of a finished fold.
    pub fn of(result: &FoldResult, process_peak_rss_bytes: Option<u64>) -> Self {
        FoldRecord {
            format: Self::FORMAT,
            result: result.clone(),
            predictions: result.predictions.clone(),
            process_peak_rss_bytes,
        }
    }

    /// The fold's result with its predictions put back.
    pub fn into_result(self) -> FoldResult {
        let mut result = self.result;
        result.predictions = self.predictions;
        result
    }

    /// Reads a fold record.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "fold record", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }
}

/// How a run was set up and what it cost (`summary.json`'s `provenance`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// genopred version.
    pub genopred_version: String,
    /// The command line.
    pub command: Vec<String>,
    /// Wall time of this process.
    pub wall_seconds: f64,
    /// This process's peak resident memory (Linux `VmHWM`), bytes; for a resumed run it covers
    /// only the folds this process ran.
    pub peak_rss_bytes: Option<u64>,
    /// `peak_rss_bytes` per genotype call the run holds (its samples × markers), how memory
    /// grows with the data; absent when the peak is unknown, and in records written
    /// before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_genotype: Option<f64>,
    /// Bytes the genotype calls themselves take in memory (2 bits a call when every call is a
    /// hard call, one byte otherwise); absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genotype_bytes: Option<u64>,
    /// Folds read back from an earlier process instead of run.
    pub resumed_folds: usize,
    /// Inputs and their hashes.
    pub inputs: Inputs,
    /// How genotype and phenotype ids matched.
    pub matching: MatchReport,
    /// Ids removed by sample QC.
    pub samples_removed_by_qc: Vec<String>,
    /// How the folds were made.
    pub scheme: FoldScheme,
    /// QC, validation fraction, NDCG's k and seed.
    pub options: CvOptions,
    /// The model's resolved settings.
    pub model_config: serde_json::Value,
    /// The backend in words.
    pub backend: String,
    /// Folds run at once and threads per fold (`--jobs`, `--threads-per-job`) by this process;
    /// absent in records written before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<Parallelism>,
}

/// How a process ran its folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Parallelism {
    /// Folds at once.
    pub jobs: usize,
    /// Threads each fold computed with (results may differ in the last digits between thread
    /// counts, never between job counts).
    pub threads_per_job: usize,
}

/// `summary.json`: per-fold results, mean ± sd over folds, pooled metrics and provenance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// Record format ([`RunSummary::FORMAT`]; 0 before it existed).
    #[serde(default)]
    pub format: u32,
    /// Model name.
    pub model: String,
    /// Trait name.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Samples used (genotyped, phenotyped for the trait, past sample QC).
    pub n_samples: usize,
    /// Markers in the genotype file (before per-fold QC).
    pub n_markers: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Per-fold results.
    pub folds: Vec<FoldResult>,
    /// Mean and sd over folds of each metric.
    pub metrics: MetricSummaries,
    /// Metrics of the pooled predictions of each repeat (mean and sd over repeats).
    pub pooled: MetricSummaries,
    /// How the run was set up.
    pub provenance: Provenance,
}

impl RunSummary {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Reads `summary.json`.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "run summary", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }
}
