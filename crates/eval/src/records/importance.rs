//! The record of a marker-importance analysis (`importance.json`).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Inputs, read_record, write_record};
use crate::predictor::SaliencyOptions;
use genopred_stats::metrics::MetricSummaries;

/// The single-marker tests' set-up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GwasSummary {
    /// Samples tested.
    pub samples: usize,
    /// Principal components used as covariates.
    pub pcs: usize,
    /// Residual degrees of freedom.
    pub df: usize,
    /// Markers with a test.
    pub markers_tested: usize,
}

/// Recall of known causal markers (simulations), at k = 1, 2 and 5 × their number.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recall {
    /// Number of causal markers.
    pub causal: usize,
    /// Recall by chance, `k / markers`, by k.
    pub chance_at_k: BTreeMap<String, f64>,
    /// Recall of the model's importance ranking, by k.
    pub importance: BTreeMap<String, f64>,
    /// Recall of the single-marker tests' ranking, by k.
    pub gwas: BTreeMap<String, f64>,
}

/// `importance.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportanceRecord {
    /// Record format ([`ImportanceRecord::FORMAT`]; 0 before it existed).
    #[serde(default)]
    pub format: u32,
    /// genopred version.
    pub genopred_version: String,
    /// The command line.
    pub command: Vec<String>,
    /// Model name.
    pub model: String,
    /// The model's resolved settings.
    pub model_config: serde_json::Value,
    /// The backend in words.
    pub backend: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// `saliency`, `smoothgrad` or `marker_effects`.
    pub method: String,
    /// SmoothGrad's settings, when used.
    pub smoothgrad: Option<SaliencyOptions>,
    /// Cross-validation folds.
    pub folds: usize,
    /// Seed.
    pub seed: u64,
    /// Cross-validated accuracy of the model whose importance this is.
    pub cv_metrics: MetricSummaries,
    /// The single-marker tests.
    pub gwas: GwasSummary,
    /// Spearman correlation of the importance and single-marker rankings.
    #[serde(deserialize_with = "genopred_stats::metrics::f64_or_nan")]
    pub spearman_importance_vs_gwas: f64,
    /// Markers ranked by both.
    pub markers_compared: usize,
    /// Recall of known causal markers, when given.
    pub recall: Option<Recall>,
    /// Inputs and their hashes.
    pub inputs: Inputs,
    /// Wall time.
    pub wall_seconds: f64,
}

impl ImportanceRecord {
    /// The format this version writes.
    pub const FORMAT: u32 = 1;

    /// Reads `importance.json`.
    pub fn read(path: &Path) -> genopred_data::Result<Self> {
        read_record(path, "importance record", Self::FORMAT, |r: &Self| r.format)
    }

    /// Writes it atomically.
    pub fn write(&self, path: &Path) -> genopred_data::Result<()> {
        write_record(path, self)
    }
}
