//! The data every part of `compare` shares: the grid ([`Plan`]), the outcome of each cell
//! ([`CellResult`]) and the backends left out ([`Skipped`]). The other modules depend on this
//! one, never the reverse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use genopred_core::records::Inputs;
use serde::{Deserialize, Serialize};

/// One dataset of the grid.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dataset {
    /// Short name, used in folder names and the report.
    pub name: String,
    /// Genotype file.
    pub geno: PathBuf,
    /// Phenotype file.
    pub pheno: PathBuf,
    /// Traits to predict.
    pub traits: Vec<String>,
    /// Fixed folds of this dataset (`id,fold`), instead of the plan's k-fold (a paper's own
    /// folds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folds_file: Option<PathBuf>,
    /// This dataset's models, instead of the plan's (a suite runs each paper's model and the
    /// baseline on that paper's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Arguments passed on to this dataset's `genopred cv` runs, after the plan's (e.g.
    /// `["--max-marker-missing", "0.95"]` for data whose missing calls carry information).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cv_args: Vec<String>,
    /// Config files of this dataset's cells, by model, instead of the plan's (settings that
    /// follow from how the data are coded: DeepGS is fed 0/1 where its paper's markers were 0/1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, PathBuf>,
    /// A multi-environment trial: the long table's environment column (`genopred cv --env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A multi-environment trial from a wide table: these columns are the environments of the
    /// one trait in `traits` (`genopred cv --env-columns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_columns: Vec<String>,
    /// A trial's schemes (`cv1`, `cv2`, `cv0`, `cv00`): a grid axis; default `cv1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<String>,
    /// A trial's environment models (`single`, `across`, `gxe` ...): a grid axis; default `gxe`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_models: Vec<String>,
}

impl Dataset {
    /// Whether the dataset is a multi-environment trial.
    pub fn is_trial(&self) -> bool {
        self.env.is_some() || !self.env_columns.is_empty()
    }

    /// The (scheme, environment model) pairs its cells run: one `None` for a dataset of one
    /// environment.
    pub fn trial_axes(&self) -> Vec<Option<(String, String)>> {
        if !self.is_trial() {
            return vec![None];
        }
        let or = |v: &[String], d: &str| if v.is_empty() { vec![d.to_string()] } else { v.to_vec() };
        let (schemes, models) = (or(&self.schemes, "cv1"), or(&self.env_models, "gxe"));
        schemes.iter().flat_map(|s| models.iter().map(move |m| Some((s.clone(), m.clone())))).collect()
    }
}

impl Plan {
    /// The models run on `dataset`.
    pub fn models_for<'a>(&'a self, dataset: &'a Dataset) -> &'a [String] {
        dataset.models.as_deref().unwrap_or(&self.models)
    }

    /// Every model of the grid, once, in the order first named.
    pub fn all_models(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for m in self.models.iter().chain(self.datasets.iter().flat_map(|d| d.models.iter().flatten())) {
            if !all.contains(m) {
                all.push(m.clone());
            }
        }
        all
    }

    /// The config file of `model` on `dataset`: the dataset's own, else the plan's.
    pub fn config_for<'a>(&'a self, dataset: &'a Dataset, model: &str) -> Option<&'a Path> {
        dataset.configs.get(model).or_else(|| self.configs.get(model)).map(PathBuf::as_path)
    }

    /// The folds file of `dataset`'s cells: its own, else the plan's.
    pub fn folds_file_for<'a>(&'a self, dataset: &'a Dataset) -> Option<&'a Path> {
        dataset.folds_file.as_deref().or(self.folds_file.as_deref())
    }
}

/// `--tune`: which models are also run tuned, and how.
#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    /// Search spaces from `--tune-dir`, by model (others use their shipped space).
    pub spaces: BTreeMap<String, PathBuf>,
    /// Trials per search.
    pub trials: usize,
    /// Inner folds.
    pub inner_folds: usize,
    /// Inner score.
    pub metric: genopred_core::tuning::TuneMetric,
}

/// The report's name of a model run tuned.
pub fn tuned_label(model: &str) -> String {
    format!("{model} (tuned)")
}

impl Plan {
    /// Whether `model` is also run tuned: with `--tune`, when it has a space (its own in
    /// `--tune-dir`, or a shipped one).
    pub fn tunes(&self, model: &str, has_shipped_space: bool) -> bool {
        self.tuning.as_ref().is_some_and(|t| has_shipped_space || t.spaces.contains_key(model))
    }
}

/// A published accuracy printed beside ours (`--suite paper`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    /// Dataset name.
    pub dataset: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Model (ours) it compares with.
    pub model: String,
    /// The published Pearson r (or a range as text).
    pub value: String,
    /// What was published (the model as named there, and its CV scheme).
    pub what: String,
    /// Citation key of docs/published-results.md.
    pub source: String,
}

/// The whole grid after suite and arguments are resolved.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// Suite name, if any.
    pub suite: Option<String>,
    /// Suite description.
    pub description: String,
    /// Models.
    pub models: Vec<String>,
    /// Backends asked for.
    pub backends: Vec<String>,
    /// Datasets and traits.
    pub datasets: Vec<Dataset>,
    /// k of k-fold CV (unless `folds_file`).
    pub folds: usize,
    /// Folds file.
    pub folds_file: Option<PathBuf>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Config file per model.
    pub configs: BTreeMap<String, PathBuf>,
    /// Extra `cv` arguments.
    pub extra: Vec<String>,
    /// Published numbers to print beside ours.
    pub published: Vec<Published>,
    /// `--tune`: run each tunable model tuned as well.
    pub tuning: Option<Tuning>,
    /// The git commit the binaries are built from (and whether the tree had uncommitted
    /// changes then); `run` fills it in just before building.
    pub commit: String,
    /// Other genopred builds (`genopred --version` lines) whose finished cells are reported
    /// instead of rerun, as the suite file or `--reuse-build` declares them; the report names
    /// the build of each such cell.
    pub reuse_builds: Vec<String>,
}

/// What running one task took, as `tasks/rRR-fFFF.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    /// Repeat of the fold.
    pub repeat: usize,
    /// Fold index (1-based).
    pub fold: usize,
    /// Host the task ran on.
    pub node: String,
    /// Wall time of the task's process, seconds.
    pub seconds: f64,
    /// Exit code of the process (0: the fold is recorded).
    pub exit_code: i32,
    /// Threads the fold computed with.
    pub threads: usize,
    /// `local` or `slurm`.
    pub executor: String,
    /// Slurm's `ARRAYJOB_TASK` id, when Slurm ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

/// A backend that could not be used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Backend.
    pub backend: String,
    /// Why (the build's or the probe's error).
    pub reason: String,
}

/// One cell's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// Dataset name.
    pub dataset: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Model.
    pub model: String,
    /// Backend (`cpu` for models that compute on the CPU whatever the backend, as GBLUP).
    pub backend: String,
    /// Seed.
    pub seed: u64,
    /// The cell's folder, relative to the output folder.
    pub dir: String,
    /// Input hash the cell is cached by.
    pub key: String,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// The build that made a cached cell, when it is another build than this one (one the
    /// plan's `reuse_builds` declares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_build: Option<String>,
    /// Wall time of the `genopred cv` process (of the run that produced it).
    pub wall_seconds: f64,
    /// Error, when the run failed.
    pub error: Option<String>,
    /// Per-fold Pearson r.
    pub pearson: Vec<f64>,
    /// Per-fold MSE.
    pub mse: Vec<f64>,
    /// Per-fold NDCG.
    pub ndcg: Vec<f64>,
    /// Per-fold wall time of QC, fit and prediction.
    pub fold_seconds: Vec<f64>,
    /// Per-fold epochs run (neural models).
    pub epochs: Vec<f64>,
    /// Peak resident memory of the `cv` process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Inputs and their hashes as `genopred cv` recorded them (none when the run failed).
    pub inputs: Option<Inputs>,
    /// What each fold task took and where it ran.
    pub tasks: Vec<TaskRun>,
}

/// `s` with every character other than ASCII letters, digits, `_` and `.` replaced by `_`, for
/// folder and file names.
pub fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The files a genotype argument stands for (PLINK: `.bed`, `.bim`, `.fam`).
pub fn data_files(geno: &Path) -> Vec<PathBuf> {
    let ext = geno.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "bed" | "bim" | "fam") || (!geno.is_file() && geno.with_extension("bed").is_file()) {
        let prefix = if matches!(ext, "bed" | "bim" | "fam") { geno.with_extension("") } else { geno.to_path_buf() };
        ["bed", "bim", "fam"]
            .iter()
            .map(|e| {
                let mut p = prefix.clone().into_os_string();
                p.push(format!(".{e}"));
                PathBuf::from(p)
            })
            .collect()
    } else {
        vec![geno.to_path_buf()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plink_arguments_stand_for_three_files() {
        let files = data_files(Path::new("/data/x.bed"));
        assert_eq!(files, ["/data/x.bed", "/data/x.bim", "/data/x.fam"].map(PathBuf::from));
        assert_eq!(data_files(Path::new("/data/x.vcf.gz")), vec![PathBuf::from("/data/x.vcf.gz")]);
        assert_eq!(sanitize("my set/1"), "my_set_1");
    }
}
