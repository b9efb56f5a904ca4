//! The records genopred writes and reads back: one serde type per file, used by the writer and
//! every reader alike (the CLI, `cargo xtask compare`, later runs with `--resume`), so no reader
//! looks values up by string keys.
//!
//! | file | type |
//! |---|---|
//! | `OUT/run.json` | [`RunSettings`] |
//! | `OUT/folds/rRR-fFFF.json` | [`FoldRecord`] |
//! | `OUT/summary.json` | [`RunSummary`] |
//! | `OUT/folds/…`, `OUT/summary.json` of `cv --env` | [`TrialFoldRecord`], [`TrialRunSummary`] |
//! | `OUT/complete.json` | [`RunComplete`] |
//! | `MODEL_DIR/manifest.json` | [`Manifest`] |
//! | `OUT/importance.json` | [`ImportanceRecord`] |
//! | `genopred models --json` | [`ModelListing`] |
//!
//! Each carries a `format` number. A reader accepts every format up to its own and refuses a
//! newer one with a message saying to upgrade; files written before the field existed read as
//! format 0 where their fields are compatible.

mod cv;
mod importance;
mod model;
mod trials;

use std::path::{Path, PathBuf};

pub use cv::{
    CompleteFile, FoldRecord, FoldScheme, InputHashes, Parallelism, Provenance, RunComplete, RunSettings, RunSummary,
    ids_digest, predictions_digest,
};
pub use importance::{GwasSummary, ImportanceRecord, Recall};
pub use model::{Compute, MODEL_FORMAT, Manifest, ModelInfo, ModelListing, TrialFit, TrialModel, TrialState};
pub use trials::{EnvSummary, TrialFoldRecord, TrialRunSummary, test_digest};

use crate::output::sha256_file;
use genopred_data::error::{CoreError, Result};
use genopred_data::readers::plink::PlinkPaths;

/// The CPU's model name as `/proc/cpuinfo` gives it (Linux); `None` elsewhere. For the machine
/// facts reports print beside their numbers.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}
use genopred_data::readers::vcf::VcfReport;
use genopred_data::readers::{GenotypeFormat, ReadReport};

/// SHA-256 of the files a genotype input is made of.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum GenoHashes {
    /// PLINK 1: the three files.
    Plink {
        /// `.bed`.
        bed: String,
        /// `.bim`.
        bim: String,
        /// `.fam`.
        fam: String,
    },
    /// One file (VCF, CSV).
    File(String),
}

impl GenoHashes {
    /// Hashes the files behind the genotype argument `path`, read as `format`.
    pub fn of(path: &Path, format: GenotypeFormat) -> Result<Self> {
        Ok(match format {
            GenotypeFormat::Plink => {
                let p = PlinkPaths::from_any(path);
                GenoHashes::Plink { bed: sha256_file(&p.bed)?, bim: sha256_file(&p.bim)?, fam: sha256_file(&p.fam)? }
            }
            _ => GenoHashes::File(sha256_file(path)?),
        })
    }
}

/// The genotype input of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GenoInput {
    /// The path as given.
    pub path: PathBuf,
    /// The format read.
    pub format: GenotypeFormat,
    /// SHA-256 of its files.
    pub sha256: GenoHashes,
    /// Sites the VCF reader skipped (zero for other formats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<VcfReport>,
}

impl GenoInput {
    /// Describes (and hashes) the genotype file a run read.
    pub fn of(path: &Path, report: &ReadReport) -> Result<Self> {
        Ok(GenoInput {
            path: path.to_path_buf(),
            format: report.format,
            sha256: GenoHashes::of(path, report.format)?,
            skipped: Some(report.vcf.clone()),
        })
    }
}

/// A file input and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInput {
    /// The path as given.
    pub path: PathBuf,
    /// SHA-256 of its contents.
    pub sha256: String,
}

impl FileInput {
    /// Hashes `path`.
    pub fn of(path: &Path) -> Result<Self> {
        Ok(FileInput { path: path.to_path_buf(), sha256: sha256_file(path)? })
    }
}

/// Genotype and phenotype inputs of a run or a trained model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inputs {
    /// Genotypes.
    pub geno: GenoInput,
    /// Phenotypes.
    pub pheno: FileInput,
}

/// Reads a JSON record of type `T` from `path`, refusing a format newer than `current` with a
/// message naming the file. `format` tells where the record keeps its format number.
pub(crate) fn read_record<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    current: u32,
    format: impl Fn(&T) -> u32,
) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    let record: T = serde_json::from_slice(&bytes).map_err(|e| {
        // A newer format may not parse at all: say so rather than only what failed.
        let newer = serde_json::from_slice::<FormatOnly>(&bytes).ok().filter(|f| f.format > current);
        match newer {
            Some(f) => newer_error(path, what, f.format, current),
            None => CoreError::format(path, format!("not a {what} written by genopred: {e}")),
        }
    })?;
    let found = format(&record);
    if found > current {
        return Err(newer_error(path, what, found, current));
    }
    Ok(record)
}

#[derive(serde::Deserialize)]
struct FormatOnly {
    #[serde(default)]
    format: u32,
}

fn newer_error(path: &Path, what: &str, found: u32, current: u32) -> CoreError {
    CoreError::format(
        path,
        format!(
            "this {what} was written by a newer genopred (format {found}; this one reads up to {current}); \
             upgrade genopred"
        ),
    )
}

/// Writes a record as pretty JSON, atomically.
pub(crate) fn write_record<T: serde::Serialize>(path: &Path, record: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| CoreError::format(path, format!("cannot serialise the record: {e}")))?;
    crate::output::write_atomic(path, &bytes)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_cpu_model_is_read_on_linux() {
        let cpu = super::cpu_model().expect("/proc/cpuinfo names the CPU");
        assert!(!cpu.is_empty() && !cpu.contains(':') && cpu == cpu.trim(), "{cpu:?}");
    }
}
