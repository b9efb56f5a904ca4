//! The records of a cross-validation run: its settings (`run.json`), each finished fold
//! (`folds/rRR-fFFF.json`) and the summary (`summary.json`).

use std::path::{Path, PathBuf};

use super::{GenoHashes, Inputs, read_record, write_record};
use crate::cv::Fold;
use crate::evaluation::{CvOptions, FoldResult, Prediction};
use crate::output::sha256_hex;
use genopred_data::dataset::MatchReport;
use genopred_data::error::{CoreError, Result};
use genopred_stats::metrics::{MetricSummaries, Metrics};

/// The first 12 hex digits of a hash, as messages show it.
fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// SHA-256 of a list of ids, in order (each length-prefixed, so no two lists collide).
pub fn ids_digest<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut bytes = Vec::new();
    for id in ids {
        bytes.extend_from_slice(&(id.len() as u64).to_le_bytes());
        bytes.extend_from_slice(id.as_bytes());
    }
    sha256_hex(&bytes)
}

/// SHA-256 of predictions, exactly: ids, folds, repeats and the bits of every value.
pub fn predictions_digest(predictions: &[Prediction]) -> String {
    let mut bytes = Vec::new();
    for p in predictions {
        bytes.extend_from_slice(&(p.id.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p.id.as_bytes());
        for v in [p.fold as u64, p.repeat as u64, p.observed.to_bits(), p.predicted.to_bits()] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    sha256_hex(&bytes)
}

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
    /// A multi-environment scheme over the records of a trial (`genopred cv --env`).
    Trials {
        /// CV1, CV2, CV0 or CV00.
        scheme: crate::cv::schemes::Scheme,
        /// Folds per repeat (CV1, CV2, CV00's folds of lines).
        k: usize,
        /// Repeats.
        repeats: usize,
        /// The environment column (or the wide table's environment columns, comma-joined).
        env_column: String,
        /// How environments enter the model.
        env_model: crate::env_model::EnvModel,
        /// Fixed-effect columns.
        fixed: Vec<String>,
        /// SHA-256 of the environmental-covariate file (`--env-covariates`), if one was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env_covariates: Option<String>,
    },
    /// A multi-environment run whose folds come from a file (`--env` with `--folds-file`).
    TrialsFile {
        /// The file.
        path: PathBuf,
        /// Its SHA-256.
        sha256: String,
        /// Number of folds.
        folds: usize,
        /// The environment column (or the wide table's environment columns, comma-joined).
        env_column: String,
        /// How environments enter the model.
        env_model: crate::env_model::EnvModel,
        /// Fixed-effect columns.
        fixed: Vec<String>,
        /// SHA-256 of the environmental-covariate file (`--env-covariates`), if one was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env_covariates: Option<String>,
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

    /// The run's identity: the SHA-256 of these settings as `run.json` holds them. Every fold
    /// record carries it, so a fold is never read back into another run.
    pub fn identity(&self) -> String {
        crate::output::sha256_hex(&serde_json::to_vec(self).expect("run settings serialise"))
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

/// One finished fold (`folds/rRR-fFFF.json`), written as soon as the fold ends. It carries its
/// run's identity and its own (repeat and fold in `result`, the hash of its test ids, the hash
/// of its predictions), which [`FoldRecord::check`] compares before the fold is reused.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FoldRecord {
    /// Record format ([`FoldRecord::FORMAT`]; 0 before it existed).
    #[serde(default)]
    pub format: u32,
    /// The identity of the run it belongs to ([`RunSettings::identity`]; empty in records
    /// written before format 2, which are never reused).
    #[serde(default)]
    pub run: String,
    /// [`ids_digest`] of the fold's test ids, in the fold's order.
    #[serde(default)]
    pub test_ids_sha256: String,
    /// [`predictions_digest`] of `predictions`.
    #[serde(default)]
    pub predictions_sha256: String,
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
    /// The format this version writes (2: with the run's and the fold's identity).
    pub const FORMAT: u32 = 2;

    /// The record of a finished fold of the run `run` ([`RunSettings::identity`]).
    pub fn of(result: &FoldResult, run: &str, process_peak_rss_bytes: Option<u64>) -> Self {
        FoldRecord {
            format: Self::FORMAT,
            run: run.to_string(),
            test_ids_sha256: ids_digest(result.predictions.iter().map(|p| p.id.as_str())),
            predictions_sha256: predictions_digest(&result.predictions),
            result: result.clone(),
            predictions: result.predictions.clone(),
            process_peak_rss_bytes,
        }
    }

    /// Checks that this record, read from `path`, is fold `fold` of the run `run` with test ids
    /// `test_ids` (in the fold's order), and that it is intact: its predictions hash to what it
    /// says and its metrics are those of its predictions (`ndcg_top` as the run computes them).
    /// The error names the file, what differs, and the way out.
    pub fn check(&self, path: &Path, run: &str, fold: &Fold, test_ids: &[&str], ndcg_top: f64) -> Result<()> {
        let refuse = |what: String| -> Result<()> {
            Err(CoreError::format(
                path,
                format!(
                    "{what}; it cannot be reused in this run. Delete it to rerun that fold, or start the \
                     run over with --force"
                ),
            ))
        };
        if self.run.is_empty() {
            return refuse("this fold record was written by an earlier genopred and names no run".into());
        }
        if self.run != run {
            return refuse(format!(
                "this fold record belongs to another run (run {}, this run {}: other settings or inputs)",
                short(&self.run),
                short(run)
            ));
        }
        if (self.result.repeat, self.result.fold) != (fold.repeat, fold.index) {
            return refuse(format!(
                "this file should hold repeat {} fold {} but holds repeat {} fold {} (copied from another fold?)",
                fold.repeat, fold.index, self.result.repeat, self.result.fold
            ));
        }
        let expected = ids_digest(test_ids.iter().copied());
        if self.test_ids_sha256 != expected {
            return refuse(format!(
                "its test lines differ from this run's fold {} (test ids hash {}, expected {})",
                fold.label,
                short(&self.test_ids_sha256),
                short(&expected)
            ));
        }
        let in_predictions = ids_digest(self.predictions.iter().map(|p| p.id.as_str()));
        if in_predictions != expected || self.predictions.len() != self.result.n_test {
            return refuse(format!(
                "its {} predictions are not of this fold's {} test lines",
                self.predictions.len(),
                test_ids.len()
            ));
        }
        if self.predictions.iter().any(|p| (p.repeat, p.fold) != (fold.repeat, fold.index)) {
            return refuse("some of its predictions are labelled with another repeat or fold".into());
        }
        let digest = predictions_digest(&self.predictions);
        if self.predictions_sha256 != digest {
            return refuse(format!(
                "its predictions were changed after it was written (hash {}, recorded {})",
                short(&digest),
                short(&self.predictions_sha256)
            ));
        }
        let observed: Vec<f64> = self.predictions.iter().map(|p| p.observed).collect();
        let predicted: Vec<f64> = self.predictions.iter().map(|p| p.predicted).collect();
        let metrics = Metrics::compute(&observed, &predicted, ndcg_top);
        let text = |m: &Metrics| serde_json::to_string(m).unwrap_or_default();
        if text(&metrics) != text(&self.result.metrics) {
            return refuse("its metrics are not those of its predictions (edited?)".into());
        }
        Ok(())
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

/// `complete.json`: written last when a run's folds are combined, it names the combined files
/// (`predictions.csv`, `summary.json`, ...) with their hashes. Combining removes it first, so
/// the files are a set from one combination exactly when it is present and every hash matches
/// ([`RunComplete::verify`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunComplete {
    /// Record format ([`RunComplete::FORMAT`]).
    pub format: u32,
    /// The run's identity ([`RunSettings::identity`]).
    pub run: String,
    /// The combined files, relative to the run folder.
    pub files: Vec<CompleteFile>,
}

/// One file named by [`RunComplete`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompleteFile {
    /// Path relative to the run folder.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
}

impl RunComplete {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Reads `complete.json`.
    pub fn read(path: &Path) -> Result<Self> {
        read_record(path, "completion record", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_record(path, self)
    }

    /// Reads `dir/complete.json` and checks every file it names against its hash: `Ok` only
    /// when the combined files in `dir` are whole and from one combination.
    pub fn verify(dir: &Path) -> Result<Self> {
        let path = dir.join(crate::run_dir::COMPLETE);
        if !path.is_file() {
            return Err(CoreError::format(
                &path,
                "missing: the run's folds were never combined, or combining was interrupted; rerun with --resume",
            ));
        }
        let record = Self::read(&path)?;
        for f in &record.files {
            let file = dir.join(&f.path);
            let hash = crate::output::sha256_file(&file)?;
            if hash != f.sha256 {
                return Err(CoreError::format(
                    &path,
                    format!("{} changed after the run was combined; rerun with --resume to combine again", f.path),
                ));
            }
        }
        Ok(record)
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
