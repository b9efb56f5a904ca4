//! `--tune`: nested hyperparameter search. For each outer fold, random trials drawn from the
//! space are scored by an inner k-fold cross-validation on that fold's training rows only, with
//! successive halving on epochs for neural models (every trial trains a few epochs, the best
//! third goes on to three times as many, and so on up to the configured maximum; a trial that
//! goes on is retrained from scratch, so its score never depends on the rung schedule). The best
//! trial's settings are then fitted on the whole outer training fold and scored once on its test
//! fold, which the search never sees.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use clap::Args;
use genopred_core::Dataset;
use genopred_core::evaluation::{CvOptions, run_fold_sharing};
use genopred_core::gram::SharedWork;
use genopred_core::output::write_atomic;
use genopred_core::tuning::{
    SearchSeeds, SearchSpace, TrialRecord, TuneMetric, TuneSettings, TuningRecord, Values, halving_rungs, inner_folds,
    overlay, survivors,
};
use genopred_zoo::ModelEntry;

use crate::jobs::{JobPlan, run_all};

/// `--tune` and its settings.
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// Tune the model's settings by a nested search: SPACE.toml names ranges over config keys
    /// (`key = {log = [lo, hi]}`, `{range = [lo, hi]}`, `{int = [lo, hi]}`, `{choice = [...]}`,
    /// training keys under `[train]`); `default` uses the model's shipped space. The search runs
    /// an inner cross-validation on each outer fold's training lines only.
    #[arg(long, value_name = "SPACE.toml|default")]
    pub tune: Option<String>,
    /// Trials drawn per search.
    #[arg(long, default_value_t = 12, requires = "tune", value_name = "N")]
    pub trials: usize,
    /// Inner folds per trial.
    #[arg(long, default_value_t = 3, requires = "tune", value_name = "K")]
    pub inner_folds: usize,
    /// The inner score: pearson, mse or ndcg.
    #[arg(long, default_value = "pearson", requires = "tune", value_name = "METRIC")]
    pub tune_metric: TuneMetric,
    /// Successive halving's factor: after each rung 1/ETA of the trials go on with ETA times
    /// the epochs (neural models whose space does not tune `train.epochs`).
    #[arg(long, default_value_t = 3, requires = "tune", value_name = "ETA")]
    pub halving_eta: usize,
}

impl TuneArgs {
    /// The search's settings and space, or `None` without `--tune`.
    pub fn settings(&self, entry: &dyn ModelEntry) -> Result<Option<(TuneSettings, SearchSpace)>> {
        let Some(tune) = &self.tune else { return Ok(None) };
        if self.trials == 0 {
            bail!("--trials must be at least 1");
        }
        if self.inner_folds < 2 {
            bail!("--inner-folds must be at least 2, got {}", self.inner_folds);
        }
        if self.halving_eta < 2 {
            bail!("--halving-eta must be at least 2, got {}", self.halving_eta);
        }
        let (label, text) = if tune == "default" {
            let text = entry.tuning_space().with_context(|| {
                format!("model {} has no shipped search space; give one with --tune SPACE.toml", entry.name())
            })?;
            (format!("default ({})", entry.name()), text.to_string())
        } else {
            let text = std::fs::read_to_string(tune).with_context(|| format!("reading the search space {tune}"))?;
            (tune.clone(), text)
        };
        let space = SearchSpace::parse(&text, &label)?;
        let settings = TuneSettings {
            space: label,
            space_toml: text,
            trials: self.trials,
            inner_folds: self.inner_folds,
            metric: self.tune_metric,
            eta: self.halving_eta,
        };
        Ok(Some((settings, space)))
    }
}

/// What a search needs besides the rows it searches on.
pub struct Search<'a> {
    /// The model.
    pub entry: &'static dyn ModelEntry,
    /// Where it computes.
    pub device: &'a Device,
    /// The user's `--config` (the base every trial overrides).
    pub base: toml::Table,
    /// The space.
    pub space: SearchSpace,
    /// Trials, inner folds, metric, halving factor.
    pub settings: TuneSettings,
    /// The base config's `train.epochs`, for neural models (halving's last rung).
    pub max_epochs: Option<usize>,
    /// The data.
    pub dataset: &'a Dataset,
    /// The run's options (QC, validation fraction, seed).
    pub options: CvOptions,
    /// Jobs and threads for the trials' inner fits.
    pub plan: JobPlan,
    /// Folder for the trials' config files (`OUT/tuning`).
    pub dir: PathBuf,
    /// What the fits of every trial, inner fold and outer fold share (GBLUP's `X Xᵀ`).
    pub work: SharedWork,
}

impl<'a> Search<'a> {
    /// Prepares a search for `entry` with the base config `config` (its `train.epochs` caps
    /// halving) and checks one draw builds, so a misspelt key fails before any training.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        entry: &'static dyn ModelEntry,
        device: &'a Device,
        config: Option<&Path>,
        resolved: &serde_json::Value,
        (settings, space): (TuneSettings, SearchSpace),
        dataset: &'a Dataset,
        options: CvOptions,
        plan: JobPlan,
        dir: PathBuf,
    ) -> Result<Self> {
        let base: toml::Table = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        let max_epochs =
            resolved.get("train").and_then(|t| t.get("epochs")).and_then(|e| e.as_u64()).map(|e| e as usize);
        let search = Search {
            entry,
            device,
            base,
            space,
            settings,
            max_epochs,
            dataset,
            options,
            plan,
            dir,
            work: SharedWork::new(),
        };
        // One draw over the base, built in memory (no file: fold tasks of one run may share
        // the folder).
        let probe = search.space.draws(1, 0).remove(0);
        let table = search.config_table(&probe, None)?;
        search.entry.build_table(Some((&table, Path::new(&search.settings.space))), device).with_context(|| {
            format!("the search space {} does not fit model {}", search.settings.space, entry.name())
        })?;
        Ok(search)
    }

    /// The base config with `values` (and `epochs`, if given) written over it.
    fn config_table(&self, values: &Values, epochs: Option<usize>) -> Result<toml::Table> {
        let mut table = self.base.clone();
        for (k, v) in values {
            overlay(&mut table, k, v)?;
        }
        if let Some(e) = epochs {
            overlay(&mut table, "train.epochs", &serde_json::json!(e))?;
        }
        Ok(table)
    }

    /// [`Search::config_table`], saved at `path` (every trial's file is kept).
    fn write_config(&self, path: &Path, values: &Values, epochs: Option<usize>) -> Result<PathBuf> {
        let table = self.config_table(values, epochs)?;
        write_atomic(path, toml::to_string(&table)?.as_bytes())?;
        Ok(path.to_path_buf())
    }

    /// Searches on `rows` (dataset rows: an outer fold's training rows, or every row for
    /// `train --tune`); `outer` is `[repeat, fold]` (`[0, 0]` for `train`). Returns the chosen
    /// settings' config file (the base with the chosen values; epochs as the base) and the record.
    pub fn run(&self, rows: &[usize], outer: [usize; 2], label: &str) -> Result<(PathBuf, TuningRecord)> {
        let started = Instant::now();
        let s = &self.settings;
        let seeds = SearchSeeds::new(self.options.seed, [outer[0] as u64, outer[1] as u64]);
        let draws = self.space.draws(s.trials, seeds.draws);
        let inner = inner_folds(rows, s.inner_folds, seeds.folds, outer[0].max(1))?;
        let inner_options = CvOptions { seed: seeds.fits, ..self.options };
        let rungs: Vec<Option<usize>> = match self.max_epochs {
            Some(e) if !self.space.tunes("train.epochs") => {
                halving_rungs(s.trials, e, s.eta).into_iter().map(Some).collect()
            }
            _ => vec![None],
        };
        let dir = self.dir.join(format!("r{:02}-f{:03}", outer[0], outer[1]));
        let mut alive: Vec<usize> = (0..s.trials).collect();
        let mut trials = Vec::new();
        let mut last: Vec<(usize, f64)> = Vec::new();
        for (r, &epochs) in rungs.iter().enumerate() {
            let configs = alive
                .iter()
                .map(|&t| {
                    let name = match epochs {
                        Some(e) => format!("trial-{:03}-e{e}.toml", t + 1),
                        None => format!("trial-{:03}.toml", t + 1),
                    };
                    self.write_config(&dir.join(name), &draws[t], epochs)
                })
                .collect::<Result<Vec<_>>>()?;
            let tasks: Vec<(usize, usize)> =
                (0..alive.len()).flat_map(|a| (0..inner.len()).map(move |k| (a, k))).collect();
            let fits = run_all(&tasks, self.plan, |&(a, k)| {
                let t0 = Instant::now();
                let mut model = self.entry.build(Some(&configs[a]), self.device)?.model;
                let quiet = &genopred_core::Quiet;
                let result =
                    run_fold_sharing(self.dataset, &inner[k], model.as_mut(), &inner_options, quiet, Some(&self.work))
                        .with_context(|| format!("{label}: trial {} on inner fold {}", alive[a] + 1, k + 1))?;
                Ok((result.metrics, t0.elapsed().as_secs_f64()))
            })?;
            last.clear();
            for (a, &t) in alive.iter().enumerate() {
                let mine = &fits[a * inner.len()..(a + 1) * inner.len()];
                let metrics: Vec<_> = mine.iter().map(|(m, _)| *m).collect();
                let score = s.metric.score(&metrics);
                last.push((t, score));
                trials.push(TrialRecord {
                    trial: t + 1,
                    rung: r + 1,
                    epochs,
                    values: draws[t].clone(),
                    inner_mean: metrics.iter().map(|m| s.metric.value(m)).sum::<f64>() / metrics.len() as f64,
                    inner: metrics.iter().map(|m| s.metric.value(m)).collect(),
                    seconds: mine.iter().map(|(_, secs)| secs).sum(),
                });
            }
            // Best first; ties go to the earlier draw.
            last.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            eprintln!(
                "{label}: rung {}/{}{}: {} trial(s) × {} inner folds, best inner {} {:.4} (trial {})",
                r + 1,
                rungs.len(),
                epochs.map(|e| format!(" ({e} epochs)")).unwrap_or_default(),
                alive.len(),
                inner.len(),
                s.metric.name(),
                trials.iter().rev().find(|x| x.trial == last[0].0 + 1).map_or(f64::NAN, |x| x.inner_mean),
                last[0].0 + 1
            );
            if r + 1 < rungs.len() {
                let keep = survivors(alive.len(), s.eta);
                alive = last.iter().take(keep).map(|&(t, _)| t).collect();
                alive.sort_unstable();
            }
        }
        let best = last[0].0;
        let chosen_mean = trials.iter().rev().find(|x| x.trial == best + 1).map_or(f64::NAN, |x| x.inner_mean);
        let path = self.write_config(&dir.join("chosen.toml"), &draws[best], None)?;
        let record = TuningRecord {
            metric: s.metric,
            inner_folds: inner.len(),
            chosen_trial: best + 1,
            chosen: draws[best].clone(),
            inner_mean: chosen_mean,
            trials,
            seconds: started.elapsed().as_secs_f64(),
        };
        Ok((path, record))
    }
}
