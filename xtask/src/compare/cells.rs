//! One cell of the grid (dataset × trait × model × backend × seed): its cache key, its
//! `genopred cv` arguments, its `cell.json`, and merging its folds (run as tasks by an executor,
//! `tasks.rs`) into the cell's results.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use genopred_core::output::{sha256_file, sha256_hex, write_atomic};
use genopred_core::records::{Compute, FoldRecord, RunComplete, RunSummary, TrialRunSummary};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::build::error_lines;
use super::plan::{CellResult, Dataset, Plan, data_files, sanitize};
use super::tasks::{TaskRun, task_runs};

/// One cell of the grid.
pub struct Cell<'a> {
    /// Dataset.
    pub dataset: &'a Dataset,
    /// Trait.
    pub trait_name: &'a str,
    /// Model.
    pub model: &'a str,
    /// Backend label (`cpu` for a model that computes on the CPU).
    pub backend: &'a str,
    /// Where the model computes: only a device model is given `--backend`.
    pub compute: Compute,
    /// Seed.
    pub seed: u64,
    /// Run with `--tune` (a nested search per outer fold).
    pub tuned: bool,
    /// A trial's scheme and environment model (`--scheme`, `--env-model`); `None` for a dataset
    /// of one environment.
    pub trial: Option<(&'a str, &'a str)>,
}

impl Cell<'_> {
    /// The model as the report names it: `dnngp`, or `dnngp (tuned)`.
    pub fn label(&self) -> String {
        if self.tuned { super::plan::tuned_label(self.model) } else { self.model.to_string() }
    }

    /// The trait as the report names it: `yield`, or for a trial `yield [cv2, gxe]` — so each
    /// scheme and environment model is a table of its own, every model in it against GBLUP
    /// fitted the same way on the same folds.
    pub fn trait_label(&self) -> String {
        match self.trial {
            Some((scheme, env_model)) => format!("{} [{scheme}, {env_model}]", self.trait_name),
            None => self.trait_name.to_string(),
        }
    }
}

/// The hash of everything that decides a cell's result.
pub fn cell_key(plan: &Plan, cell: &Cell<'_>, version: &str) -> Result<String> {
    let mut files = Vec::new();
    for f in data_files(&cell.dataset.geno).iter().chain([&cell.dataset.pheno]) {
        files.push(sha256_file(f)?);
    }
    let folds = match plan.folds_file_for(cell.dataset) {
        Some(f) => json!({ "file": sha256_file(f)? }),
        None => json!({ "k": plan.folds }),
    };
    let config = plan.config_for(cell.dataset, cell.model).map(sha256_file).transpose()?;
    let mut key = json!({
        "data": files,
        "trait": cell.trait_name,
        "model": cell.model,
        "backend": cell.backend,
        "seed": cell.seed,
        "folds": folds,
        "config": config,
        "extra": plan.extra,
        "version": version,
    });
    // Only when present, so that cells cached before datasets had arguments keep their keys.
    if !cell.dataset.cv_args.is_empty() {
        key["dataset_args"] = json!(cell.dataset.cv_args);
    }
    if let Some((scheme, env_model)) = cell.trial {
        key["trial"] = json!({
            "env": cell.dataset.env,
            "env_columns": cell.dataset.env_columns,
            "scheme": scheme,
            "env_model": env_model,
        });
    }
    if cell.tuned
        && let Some(t) = &plan.tuning
    {
        let space = t.spaces.get(cell.model).map(|f| sha256_file(f)).transpose()?;
        key["tune"] = json!({
            "space": space.unwrap_or_else(|| "default".into()),
            "trials": t.trials,
            "inner_folds": t.inner_folds,
            "metric": t.metric,
        });
    }
    Ok(sha256_hex(key.to_string().as_bytes()))
}

/// The cell's folder under `OUT/cells/`: what it is, and its key's first digits.
pub fn dir_name(cell: &Cell<'_>, key: &str) -> String {
    let variant = if cell.tuned { format!("{}-tuned", cell.model) } else { cell.model.to_string() };
    let d = cell.dataset;
    let variant = match cell.trial {
        Some((scheme, env_model)) => format!("{scheme}-{}-{variant}", sanitize(env_model)),
        None => variant,
    };
    format!("{}-{}-{}-{}-s{}-{}", d.name, sanitize(cell.trait_name), variant, cell.backend, cell.seed, &key[..10])
}

/// The finished cell made by one of the builds the plan names (`reuse_builds`, other than
/// `version`, this build), marked with that build: its key computed with that build's version
/// line, its folder under `out/cells/`. Never another build's cell unless named.
pub fn from_other_build(plan: &Plan, cell: &Cell<'_>, out: &Path, version: &str) -> Result<Option<CellResult>> {
    for build in plan.reuse_builds.iter().filter(|b| *b != version) {
        let key = cell_key(plan, cell, build)?;
        let name = dir_name(cell, &key);
        let dir = out.join("cells").join(&name);
        if let Some(record) = cached(&dir, &key) {
            let mut r = result(cell, &dir, &name, &key, Ok(record), true);
            r.from_build = Some(build.clone());
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// What `cell.json` records for a finished cell.
#[derive(Debug, Serialize, Deserialize)]
pub struct CellRecord {
    /// The cache key.
    pub key: String,
    /// Wall time of the cell's processes: its fold tasks and the merge, seconds.
    pub wall_seconds: f64,
    /// The command that merged the folds (`genopred cv ... --resume`).
    pub command: Vec<String>,
    /// The commit the binaries were built from.
    pub git_commit: String,
    /// What each fold task took, where it ran (absent in cells of earlier versions).
    #[serde(default)]
    pub tasks: Vec<TaskRun>,
}

/// The `genopred cv` arguments of a cell writing into `dir` (without `--resume`, the fold
/// selection and the threads, which the executors add).
pub fn cv_args(plan: &Plan, cell: &Cell<'_>, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec!["cv".into()];
    let mut push = |k: &str, v: String| {
        args.push(k.into());
        args.push(v);
    };
    push("--geno", cell.dataset.geno.display().to_string());
    push("--pheno", cell.dataset.pheno.display().to_string());
    push("--trait", cell.trait_name.to_string());
    if let Some((scheme, env_model)) = cell.trial {
        match &cell.dataset.env {
            Some(column) => push("--env", column.clone()),
            None => push("--env-columns", cell.dataset.env_columns.join(",")),
        }
        push("--scheme", scheme.to_string());
        push("--env-model", env_model.to_string());
    }
    push("--model", cell.model.to_string());
    if cell.compute == Compute::Device {
        push("--backend", cell.backend.to_string());
    }
    push("--seed", cell.seed.to_string());
    match plan.folds_file_for(cell.dataset) {
        Some(f) => push("--folds-file", f.display().to_string()),
        None => push("--folds", plan.folds.to_string()),
    }
    if let Some(c) = plan.config_for(cell.dataset, cell.model) {
        push("--config", c.display().to_string());
    }
    if cell.tuned
        && let Some(t) = &plan.tuning
    {
        let space = t.spaces.get(cell.model).map_or_else(|| "default".to_string(), |f| f.display().to_string());
        push("--tune", space);
        push("--trials", t.trials.to_string());
        push("--inner-folds", t.inner_folds.to_string());
        push("--tune-metric", t.metric.name().to_string());
    }
    push("--out", dir.display().to_string());
    args.extend(plan.extra.iter().cloned());
    args.extend(cell.dataset.cv_args.iter().cloned());
    args
}

/// The finished cell in `dir`, when it holds one with this key (`cell.json`) whose combined
/// files are whole and from one combination (`complete.json`, [`RunComplete::verify`]).
pub fn cached(dir: &Path, key: &str) -> Option<CellRecord> {
    let record: CellRecord = serde_json::from_slice(&std::fs::read(dir.join("cell.json")).ok()?).ok()?;
    (record.key == key && RunComplete::verify(dir).is_ok()).then_some(record)
}

/// The outcome of a cell: its record (or why it failed) and what its `summary.json` says.
pub fn result(
    cell: &Cell<'_>,
    dir: &Path,
    dir_name: &str,
    key: &str,
    record: Result<CellRecord, String>,
    cached: bool,
) -> CellResult {
    let mut result = CellResult {
        dataset: cell.dataset.name.clone(),
        trait_name: cell.trait_label(),
        model: cell.label(),
        backend: cell.backend.to_string(),
        seed: cell.seed,
        dir: format!("cells/{dir_name}"),
        key: key.to_string(),
        cached,
        from_build: None,
        wall_seconds: 0.0,
        error: None,
        pearson: Vec::new(),
        mse: Vec::new(),
        ndcg: Vec::new(),
        fold_seconds: Vec::new(),
        epochs: Vec::new(),
        peak_rss_bytes: None,
        inputs: None,
        tasks: Vec::new(),
    };
    match record {
        Ok(record) => {
            result.wall_seconds = record.wall_seconds;
            result.tasks = record.tasks;
            let read = if cell.trial.is_some() {
                TrialRunSummary::read(&dir.join("summary.json")).map(|s| read_trial_summary(s, &mut result))
            } else {
                RunSummary::read(&dir.join("summary.json")).map(|s| read_summary(s, &mut result))
            };
            match read {
                Ok(()) => {
                    // The folds ran in processes of their own: the cell's peak is theirs.
                    let folds = fold_peaks(dir);
                    result.peak_rss_bytes = folds.into_iter().chain(result.peak_rss_bytes).max();
                }
                Err(e) => result.error = Some(e.to_string()),
            }
        }
        Err(e) => result.error = Some(e),
    }
    result
}

/// Merges a cell whose folds are all recorded (`genopred cv --resume`, which reads every fold
/// back and writes `predictions.csv` and `summary.json`), then writes `cell.json` with the
/// fold tasks' records. Failures carry the log's error lines.
pub fn merge(
    plan: &Plan,
    cell: &Cell<'_>,
    bin: &Path,
    dir: &Path,
    key: &str,
    threads: usize,
) -> std::result::Result<CellRecord, String> {
    let mut args = cv_args(plan, cell, dir);
    args.extend(["--resume".to_string(), "--threads-per-job".into(), threads.to_string()]);
    let log_path = dir.join("log.txt");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
    let started = Instant::now();
    let status = super::retry_busy(|| {
        Command::new(bin).args(&args).stdout(log.try_clone()?).stderr(log_err.try_clone()?).status()
    })
    .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let merge_seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("genopred cv exited with {status}: {} (log: {})", error_lines(&text), log_path.display()));
    }
    if let Err(e) = RunComplete::verify(dir) {
        return Err(format!("genopred cv exited cleanly but its results are not whole: {e}"));
    }
    let tasks = task_runs(dir);
    let mut command = vec![bin.display().to_string()];
    command.extend(args);
    let record = CellRecord {
        key: key.to_string(),
        wall_seconds: merge_seconds + tasks.iter().map(|t| t.seconds).sum::<f64>(),
        command,
        git_commit: plan.commit.clone(),
        tasks,
    };
    let text = serde_json::to_string_pretty(&record).expect("record serialises");
    write_atomic(&dir.join("cell.json"), text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(record)
}

/// The peak memory each fold record of `dir` holds (of the process that ran the fold).
fn fold_peaks(dir: &Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir.join("folds")) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| FoldRecord::read(&e.path()).ok())
        .filter_map(|r| r.process_peak_rss_bytes)
        .collect()
}

/// Copies a trial run's per-fold numbers into its cell's result: Pearson r within environment
/// (the headline, and what the paired differences compare), the pooled MSE and NDCG.
fn read_trial_summary(summary: TrialRunSummary, result: &mut CellResult) {
    for f in &summary.folds {
        result.pearson.push(f.within_env_pearson);
        result.mse.push(f.pooled.mse);
        result.ndcg.push(f.pooled.ndcg);
        result.fold_seconds.push(f.seconds);
        let epochs = f.fit.pointer("/model/epochs_run").and_then(serde_json::Value::as_f64);
        result.epochs.extend(epochs);
    }
    result.peak_rss_bytes = summary.provenance.peak_rss_bytes;
    result.inputs = Some(summary.provenance.inputs);
}

/// Copies a run's per-fold numbers, peak memory and inputs into its cell's result.
fn read_summary(summary: RunSummary, result: &mut CellResult) {
    for f in &summary.folds {
        result.pearson.push(f.metrics.pearson);
        result.mse.push(f.metrics.mse);
        result.ndcg.push(f.metrics.ndcg);
        result.fold_seconds.push(f.seconds);
        if let Some(e) = f.fit.epochs_run {
            result.epochs.push(e as f64);
        }
    }
    result.peak_rss_bytes = summary.provenance.peak_rss_bytes;
    result.inputs = Some(summary.provenance.inputs);
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;

    use genopred_core::FitInfo;
    use genopred_core::dataset::MatchReport;
    use genopred_core::evaluation::{CvOptions, FoldResult};
    use genopred_core::metrics::{MetricSummaries, Metrics};
    use genopred_core::qc::QcReport;
    use genopred_core::readers::GenotypeFormat;
    use genopred_core::records::{FileInput, FoldScheme, GenoHashes, GenoInput, Inputs, Provenance};

    use super::*;
    use crate::compare::build::tests::{plan, script};

    fn plan_for(dir: &Path) -> Plan {
        let geno = dir.join("g.csv");
        let pheno = dir.join("p.csv");
        std::fs::write(&geno, "id,m1\na,0\n").unwrap();
        std::fs::write(&pheno, "id,y\na,1\n").unwrap();
        Plan {
            datasets: vec![Dataset {
                name: "d".into(),
                geno,
                pheno,
                traits: vec!["y".into()],
                folds_file: None,
                models: None,
                cv_args: Vec::new(),
                configs: Default::default(),
                ..Dataset::default()
            }],
            ..plan(&["mlp"], &["flex"])
        }
    }

    fn cell<'a>(dataset: &'a Dataset, model: &'a str, backend: &'a str, seed: u64) -> Cell<'a> {
        Cell { dataset, trait_name: "y", model, backend, compute: Compute::Device, seed, tuned: false, trial: None }
    }

    #[test]
    fn tuned_cells_pass_the_search_on_and_have_keys_and_labels_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        let ds = plan.datasets[0].clone();
        let plain = cell(&ds, "mlp", "flex", 1);
        let tuned = Cell { tuned: true, ..cell(&ds, "mlp", "flex", 1) };
        let untuned_key = cell_key(&plan, &plain, "v").unwrap();
        plan.tuning = Some(super::super::plan::Tuning {
            spaces: Default::default(),
            trials: 8,
            inner_folds: 4,
            metric: genopred_core::tuning::TuneMetric::Ndcg,
        });
        // --tune leaves the untuned cells' keys (and caches) alone.
        assert_eq!(untuned_key, cell_key(&plan, &plain, "v").unwrap());
        let tuned_key = cell_key(&plan, &tuned, "v").unwrap();
        assert_ne!(untuned_key, tuned_key);
        assert_eq!((plain.label().as_str(), tuned.label().as_str()), ("mlp", "mlp (tuned)"));
        let args = cv_args(&plan, &tuned, dir.path()).join(" ");
        assert!(args.contains("--tune default --trials 8 --inner-folds 4 --tune-metric ndcg"), "{args}");
        assert!(!cv_args(&plan, &plain, dir.path()).join(" ").contains("--tune"));
        // A space from --tune-dir is passed as a file, and its contents are in the key.
        let space = dir.path().join("mlp.toml");
        std::fs::write(&space, "dropout = {range = [0.1, 0.2]}\n").unwrap();
        plan.tuning.as_mut().unwrap().spaces.insert("mlp".into(), space.clone());
        let with_file = cell_key(&plan, &tuned, "v").unwrap();
        assert_ne!(with_file, tuned_key);
        std::fs::write(&space, "dropout = {range = [0.1, 0.3]}\n").unwrap();
        assert_ne!(with_file, cell_key(&plan, &tuned, "v").unwrap());
        assert!(cv_args(&plan, &tuned, dir.path()).join(" ").contains(&format!("--tune {}", space.display())));
        assert!(plan.tunes("mlp", false) && plan.tunes("dnngp", true) && !plan.tunes("gblup", false));
    }

    #[test]
    fn trial_cells_run_their_scheme_and_environment_model_and_are_cells_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan_for(dir.path());
        let ds = Dataset {
            env_columns: vec!["y_e1".into(), "y_e2".into()],
            schemes: vec!["cv1".into(), "cv2".into()],
            ..plan.datasets[0].clone()
        };
        let axes = ds.trial_axes();
        assert_eq!(axes.len(), 2, "two schemes × the default environment model");
        assert_eq!(axes[1], Some(("cv2".to_string(), "gxe".to_string())));
        assert_eq!(plan.datasets[0].trial_axes(), vec![None], "one environment: no axes");
        let one = Cell { trial: Some(("cv1", "gxe")), ..cell(&ds, "mlp", "flex", 1) };
        let two = Cell { trial: Some(("cv2", "gxe")), ..one };
        let args = cv_args(&plan, &two, dir.path()).join(" ");
        assert!(args.contains("--trait y --env-columns y_e1,y_e2 --scheme cv2 --env-model gxe"), "{args}");
        assert_eq!(two.trait_label(), "y [cv2, gxe]");
        let (k1, k2) = (cell_key(&plan, &one, "v").unwrap(), cell_key(&plan, &two, "v").unwrap());
        assert_ne!(k1, k2);
        assert_ne!(k1, cell_key(&plan, &cell(&plan.datasets[0], "mlp", "flex", 1), "v").unwrap());
        assert!(dir_name(&two, &k2).starts_with("d-y-cv2-gxe-mlp-flex-s1-"), "{}", dir_name(&two, &k2));
        let long = Dataset { env: Some("site".into()), env_columns: Vec::new(), ..ds.clone() };
        let args = cv_args(&plan, &Cell { dataset: &long, ..two }, dir.path()).join(" ");
        assert!(args.contains("--env site --scheme cv2"), "{args}");
    }

    #[test]
    fn cell_key_changes_with_every_input_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        let ds = plan.datasets[0].clone();
        let key = |plan: &Plan, model: &str, backend: &str, seed: u64| {
            cell_key(plan, &cell(&ds, model, backend, seed), "genopred 0.1.0").unwrap()
        };
        let base = key(&plan, "mlp", "flex", 1);
        assert_eq!(base, key(&plan, "mlp", "flex", 1));
        assert_ne!(base, key(&plan, "mlp", "flex", 2));
        assert_ne!(base, key(&plan, "mlp", "wgpu", 1));
        assert_ne!(base, key(&plan, "dnngp", "flex", 1));
        std::fs::write(&ds.pheno, "id,y\na,2\n").unwrap();
        assert_ne!(base, key(&plan, "mlp", "flex", 1), "phenotype contents");
        std::fs::write(&ds.pheno, "id,y\na,1\n").unwrap();
        assert_eq!(base, key(&plan, "mlp", "flex", 1));
        plan.folds = 10;
        assert_ne!(base, key(&plan, "mlp", "flex", 1));
        plan.folds = 5;
        let config = dir.path().join("mlp.toml");
        std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
        plan.configs.insert("mlp".into(), config.clone());
        let with_config = key(&plan, "mlp", "flex", 1);
        assert_ne!(base, with_config);
        std::fs::write(&config, "[train]\nepochs = 4\n").unwrap();
        assert_ne!(with_config, key(&plan, "mlp", "flex", 1), "config contents");
        plan.configs.clear();
        plan.extra = vec!["--min-maf".into(), "0.05".into()];
        let with_extra = key(&plan, "mlp", "flex", 1);
        assert_ne!(base, with_extra);
        let own = Dataset { cv_args: vec!["--max-marker-missing".into(), "0.9".into()], ..ds.clone() };
        assert_ne!(
            with_extra,
            cell_key(&plan, &cell(&own, "mlp", "flex", 1), "genopred 0.1.0").unwrap(),
            "dataset args"
        );
        let folds = dir.path().join("folds.csv");
        std::fs::write(&folds, "id,fold\na,1\n").unwrap();
        let fixed = Dataset { folds_file: Some(folds.clone()), ..ds.clone() };
        let with_folds = cell_key(&plan, &cell(&fixed, "mlp", "flex", 1), "genopred 0.1.0").unwrap();
        assert_ne!(with_extra, with_folds, "the dataset's own folds");
        std::fs::write(&folds, "id,fold\na,2\n").unwrap();
        assert_ne!(with_folds, cell_key(&plan, &cell(&fixed, "mlp", "flex", 1), "genopred 0.1.0").unwrap());
        let args = cv_args(&plan, &cell(&own, "mlp", "flex", 1), dir.path());
        assert!(args.ends_with(&["--min-maf".into(), "0.05".into(), "--max-marker-missing".into(), "0.9".into()]));
    }

    /// A `summary.json` of two folds, as `genopred cv` writes it.
    pub fn summary() -> RunSummary {
        let fold = |fold: usize, pearson: f64, mse: f64, ndcg: f64, seconds: f64, epochs: usize| FoldResult {
            repeat: 1,
            fold,
            label: fold.to_string(),
            n_train: 8,
            n_valid: 1,
            n_test: 1,
            n_markers: 1,
            kept: Vec::new(),
            metrics: Metrics { pearson, spearman: pearson, mse, mae: mse, r2: 0.0, ndcg },
            seconds,
            qc: QcReport::default(),
            fit: FitInfo { epochs_run: Some(epochs), details: Default::default() },
            predictions: Vec::new(),
            history: Vec::new(),
            tuning: None,
        };
        let folds = vec![fold(1, 0.5, 0.8, 0.7, 1.5, 12), fold(2, 0.3, 0.9, 0.6, 2.5, 20)];
        let metrics = MetricSummaries::of(&folds.iter().map(|f| f.metrics).collect::<Vec<_>>());
        RunSummary {
            format: RunSummary::FORMAT,
            model: "mlp".into(),
            trait_name: "y".into(),
            n_samples: 2,
            n_markers: 1,
            seed: 1,
            folds,
            metrics,
            pooled: metrics,
            provenance: Provenance {
                genopred_version: "genopred 0.1.0".into(),
                command: vec!["genopred".into(), "cv".into()],
                wall_seconds: 4.0,
                peak_rss_bytes: Some(1_048_576),
                bytes_per_genotype: None,
                genotype_bytes: None,
                resumed_folds: 0,
                inputs: Inputs {
                    geno: GenoInput {
                        path: "g.csv".into(),
                        format: GenotypeFormat::Csv,
                        sha256: GenoHashes::File("0123456789abcdef0123".into()),
                        skipped: None,
                    },
                    pheno: FileInput { path: "p.csv".into(), sha256: "abc".into() },
                },
                matching: MatchReport {
                    genotyped: 2,
                    phenotyped: 2,
                    matched: 2,
                    missing_trait: 0,
                    used: 2,
                    unmatched_examples: Vec::new(),
                },
                samples_removed_by_qc: Vec::new(),
                scheme: FoldScheme::Kfold { k: 2, repeats: 1 },
                options: CvOptions::default(),
                model_config: serde_json::Value::Null,
                backend: "flex".into(),
                parallelism: None,
            },
        }
    }

    /// A stand-in for `genopred`: counts its runs and writes what `cv` writes (the summary of
    /// [`summary`] and a predictions file).
    fn fake_genopred(dir: &Path) -> PathBuf {
        std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary()).unwrap()).unwrap();
        script(
            &dir.join("fake-genopred"),
            r#"#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ]; then out="$2"; fi
  shift
done
cp "$(dirname "$0")/summary.json" "$out/summary.json"
printf 'id,fold,observed,predicted,repeat\na,1,1.0,0.9,1\nb,2,2.0,1.5,1\n' > "$out/predictions.csv"
hash() { sha256sum "$out/$1" | cut -d' ' -f1; }
printf '{"format":1,"run":"r","files":[{"path":"predictions.csv","sha256":"%s"},{"path":"summary.json","sha256":"%s"}]}' \
  "$(hash predictions.csv)" "$(hash summary.json)" > "$out/complete.json"
"#,
        )
    }

    #[test]
    fn cells_of_another_build_are_reused_only_when_named_and_are_marked() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        let bin = fake_genopred(dir.path());
        let ds = plan.datasets[0].clone();
        let cell = cell(&ds, "mlp", "flex", 1);
        let (old, new) = ("genopred 0.1.0 (source aaaaaaaaaaaa)", "genopred 0.1.0 (source bbbbbbbbbbbb)");
        // A cell finished by the old build, in its own folder.
        let old_key = cell_key(&plan, &cell, old).unwrap();
        assert_ne!(old_key, cell_key(&plan, &cell, new).unwrap(), "the build is part of the key");
        let old_dir = dir.path().join("cells").join(dir_name(&cell, &old_key));
        std::fs::create_dir_all(&old_dir).unwrap();
        merge(&plan, &cell, &bin, &old_dir, &old_key, 1).unwrap();
        // The new build does not reuse it unless the plan names the old build.
        assert!(from_other_build(&plan, &cell, dir.path(), new).unwrap().is_none());
        plan.reuse_builds = vec![old.into()];
        let r = from_other_build(&plan, &cell, dir.path(), new).unwrap().expect("named: reused");
        assert_eq!(r.from_build.as_deref(), Some(old));
        assert!(r.cached && r.error.is_none());
        assert_eq!(r.dir, format!("cells/{}", dir_name(&cell, &old_key)));
        // Its own build finds it as an ordinary cached cell, not "another build".
        assert!(from_other_build(&plan, &cell, dir.path(), old).unwrap().is_none());
    }

    #[test]
    fn merged_cells_are_cached_by_key_with_their_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        plan.commit = "0123456789ab (with uncommitted changes)".into();
        let bin = fake_genopred(dir.path());
        let ds = plan.datasets[0].clone();
        let cell = cell(&ds, "mlp", "flex", 1);
        let cell_dir = dir.path().join("cells").join("c");
        std::fs::create_dir_all(cell_dir.join("tasks")).unwrap();
        let task = TaskRun {
            repeat: 1,
            fold: 2,
            node: "n1".into(),
            seconds: 4.0,
            exit_code: 0,
            threads: 1,
            executor: "local".into(),
            slurm_job: None,
        };
        crate::compare::tasks::write_run(&cell_dir.join("tasks").join("r01-f002.json"), &task).unwrap();
        assert!(cached(&cell_dir, "key1").is_none());

        let record = merge(&plan, &cell, &bin, &cell_dir, "key1", 3).unwrap();
        assert_eq!(record.tasks, vec![task]);
        assert!(record.wall_seconds >= 4.0);
        // The commit recorded is the one the binaries were built from, not the tree's state now.
        assert_eq!(record.git_commit, plan.commit);
        for want in [["--backend", "flex"], ["--threads-per-job", "3"]] {
            assert!(record.command.windows(2).any(|w| w == want), "{want:?} in {:?}", record.command);
        }
        assert!(record.command.iter().any(|a| a == "--resume"));
        let again = cached(&cell_dir, "key1").expect("same key: from the cache");
        assert_eq!(again.tasks.len(), 1);
        assert!(cached(&cell_dir, "key2").is_none(), "another key runs again");
        // Combined files that complete.json does not vouch for are not reused.
        let predictions = std::fs::read(cell_dir.join("predictions.csv")).unwrap();
        std::fs::write(cell_dir.join("predictions.csv"), b"id,fold,observed,predicted,repeat\n").unwrap();
        assert!(cached(&cell_dir, "key1").is_none(), "a changed predictions.csv is not reused");
        std::fs::write(cell_dir.join("predictions.csv"), predictions).unwrap();
        assert!(cached(&cell_dir, "key1").is_some());

        // The fold tasks' own peaks count: here 5 MiB against the merge's 1 MiB.
        let fold = summary().folds[0].clone();
        std::fs::create_dir_all(cell_dir.join("folds")).unwrap();
        FoldRecord::of(&fold, "run", Some(5 << 20)).write(&cell_dir.join("folds").join("r01-f001.json")).unwrap();
        let r = result(&cell, &cell_dir, "c", "key1", Ok(again), true);
        assert_eq!(r.error, None);
        assert!(r.cached);
        assert_eq!(r.peak_rss_bytes, Some(5 << 20));
        assert_eq!((r.pearson.clone(), r.epochs.clone()), (vec![0.5, 0.3], vec![12.0, 20.0]));
        assert_eq!((r.mse.clone(), r.fold_seconds.clone()), (vec![0.8, 0.9], vec![1.5, 2.5]));
        assert_eq!(r.inputs.as_ref().map(|i| i.pheno.sha256.as_str()), Some("abc"));
        assert_eq!(r.tasks.len(), 1);

        // A CPU model is given no --backend.
        let cpu = Cell { backend: "cpu", compute: Compute::Cpu, model: "gblup", ..cell };
        let args = cv_args(&plan, &cpu, &cell_dir);
        assert!(!args.iter().any(|a| a == "--backend"), "{args:?}");

        // A failing merge is reported with its log, not cached.
        let failing = script(&dir.path().join("failing"), "#!/bin/sh\necho 'error: something broke' >&2\nexit 2\n");
        let bad_dir = dir.path().join("cells").join("bad");
        std::fs::create_dir_all(&bad_dir).unwrap();
        let e = merge(&plan, &cell, &failing, &bad_dir, "k", 1).unwrap_err();
        assert!(e.contains("something broke") && e.contains("log.txt"), "{e}");
        assert!(!bad_dir.join("cell.json").exists());
        let r = result(&cell, &bad_dir, "bad", "k", Err(e), false);
        assert!(r.error.is_some() && r.pearson.is_empty());
    }
}
