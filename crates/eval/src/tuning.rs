//! Nested hyperparameter search: the search space (`--tune SPACE.toml`), seeded sampling of
//! trials, the successive-halving schedule on epochs, inner folds carved from an outer fold's
//! training rows, and the records of what was tried and chosen.
//!
//! The search itself runs in the command line (it builds models from the catalogue); what is
//! here has no model in it, so it is tested on its own.
//!
//! A space file names ranges and choices over config keys, in the config file's own layout
//! (model keys at the top, training keys under `[train]`):
//!
//! ```toml
//! dropout = {range = [0.1, 0.5]}
//! [train]
//! learning_rate = {log = [1e-4, 1e-2]}
//! batch_size = {choice = [16, 32, 64]}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::cv::{Fold, derive_seed, kfold};
use crate::cv::{Purpose, seed};
use genopred_data::error::{CoreError, Result};
use genopred_stats::metrics::Metrics;

/// How one key's values are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Log-uniform on `[lo, hi]` (both > 0): learning rates, penalties.
    Log(f64, f64),
    /// Uniform on `[lo, hi]`: dropout rates, momenta.
    Range(f64, f64),
    /// Uniform over the integers `lo..=hi`: units, filters, batch sizes.
    Int(i64, i64),
    /// One of the listed values, equally likely (numbers, strings, booleans or arrays).
    Choice(Vec<serde_json::Value>),
}

/// One key of the space.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The key, dotted (`train.learning_rate`).
    pub key: String,
    /// Its distribution.
    pub dist: Dist,
}

/// A search space: the keys to tune and how to draw them.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    /// The keys, dotted, in sorted order (the order values are drawn in).
    pub params: Vec<Param>,
}

/// One draw from a space: a value per key, by dotted key.
pub type Values = BTreeMap<String, serde_json::Value>;

const KINDS: &str = "`{log = [lo, hi]}`, `{range = [lo, hi]}`, `{int = [lo, hi]}` or `{choice = [a, b, ...]}`";

impl SearchSpace {
    /// Reads a space file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a space from TOML text; errors name `origin` and the key.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let fail = |message: String| CoreError::Format { path: origin.into(), message };
        let table: toml::Table = toml::from_str(text).map_err(|e| fail(format!("not valid TOML: {e}")))?;
        let mut params = Vec::new();
        collect(&table, "", &mut params).map_err(fail)?;
        if params.is_empty() {
            return Err(fail("the space has no keys to tune".into()));
        }
        Ok(SearchSpace { params })
    }

    /// Whether the space tunes `key` (dotted).
    pub fn tunes(&self, key: &str) -> bool {
        self.params.iter().any(|p| p.key == key)
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> Values {
        self.params
            .iter()
            .map(|p| {
                let v = match &p.dist {
                    Dist::Log(lo, hi) => {
                        serde_json::json!((lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp())
                    }
                    Dist::Range(lo, hi) => serde_json::json!(lo + rng.random::<f64>() * (hi - lo)),
                    Dist::Int(lo, hi) => serde_json::json!(rng.random_range(*lo..=*hi)),
                    Dist::Choice(options) => options[rng.random_range(0..options.len())].clone(),
                };
                (p.key.clone(), v)
            })
            .collect()
    }

    /// `trials` draws, seeded.
    pub fn draws(&self, trials: usize, seed: u64) -> Vec<Values> {
        let mut rng = seed::rng(seed);
        (0..trials).map(|_| self.sample(&mut rng)).collect()
    }
}

fn collect(table: &toml::Table, prefix: &str, out: &mut Vec<Param>) -> std::result::Result<(), String> {
    for (key, value) in table {
        let full = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let toml::Value::Table(inner) = value else {
            return Err(format!("`{full}` must be one of {KINDS}, or a table of such keys"));
        };
        let kinds: Vec<&str> =
            ["log", "range", "int", "choice"].into_iter().filter(|k| inner.contains_key(*k)).collect();
        if kinds.is_empty() {
            collect(inner, &full, out)?;
            continue;
        }
        if inner.len() != 1 {
            return Err(format!("`{full}` must have exactly one of log, range, int or choice"));
        }
        let list = inner[kinds[0]].as_array().ok_or_else(|| format!("`{full}.{}` must be a list", kinds[0]))?;
        let dist = match kinds[0] {
            "choice" => {
                if list.is_empty() {
                    return Err(format!("`{full}`: choice needs at least one value"));
                }
                Dist::Choice(
                    list.iter()
                        .map(|v| serde_json::to_value(v).map_err(|e| format!("`{full}`: {e}")))
                        .collect::<std::result::Result<_, _>>()?,
                )
            }
            "int" => {
                let ints: Vec<i64> = list.iter().filter_map(|v| v.as_integer()).collect();
                match ints[..] {
                    [lo, hi] if ints.len() == list.len() && lo <= hi => Dist::Int(lo, hi),
                    _ => return Err(format!("`{full}`: int needs two integers [lo, hi] with lo <= hi")),
                }
            }
            kind => {
                let nums: Vec<f64> =
                    list.iter().filter_map(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))).collect();
                let (lo, hi) = match nums[..] {
                    [lo, hi] if nums.len() == list.len() && lo.is_finite() && hi.is_finite() && lo <= hi => (lo, hi),
                    _ => return Err(format!("`{full}`: {kind} needs two numbers [lo, hi] with lo <= hi")),
                };
                if kind == "log" {
                    if lo <= 0.0 {
                        return Err(format!("`{full}`: log needs lo > 0, got {lo}"));
                    }
                    Dist::Log(lo, hi)
                } else {
                    Dist::Range(lo, hi)
                }
            }
        };
        out.push(Param { key: full, dist });
    }
    Ok(())
}

/// Sets the dotted `key` of a config table (creating tables on the way) to `value`.
pub fn overlay(table: &mut toml::Table, key: &str, value: &serde_json::Value) -> Result<()> {
    let bad = |reason: &str| CoreError::config(key, value, reason);
    let tv: toml::Value = serde_json::from_value(value.clone()).map_err(|_| bad("cannot be written to TOML"))?;
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().ok_or_else(|| bad("empty key"))?;
    let mut at = table;
    for part in parts {
        let slot = at.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = slot.as_table_mut().ok_or_else(|| bad("a table on the way is a plain value"))?;
    }
    at.insert(last.to_string(), tv);
    Ok(())
}

/// The inner score a search maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TuneMetric {
    /// Pearson r between predicted and observed (the field's accuracy).
    Pearson,
    /// Mean squared error (minimised).
    Mse,
    /// NDCG of the top fraction (selection of the best lines).
    Ndcg,
}

impl TuneMetric {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TuneMetric::Pearson => "pearson",
            TuneMetric::Mse => "mse",
            TuneMetric::Ndcg => "ndcg",
        }
    }

    /// The metric's value in `m`, as reported (MSE as is).
    pub fn value(self, m: &Metrics) -> f64 {
        match self {
            TuneMetric::Pearson => m.pearson,
            TuneMetric::Mse => m.mse,
            TuneMetric::Ndcg => m.ndcg,
        }
    }

    /// Mean of the metric over inner folds, as a score where larger is better (MSE negated; an
    /// undefined value, such as r of constant predictions, is the worst).
    pub fn score(self, inner: &[Metrics]) -> f64 {
        let mean = inner.iter().map(|m| self.value(m)).sum::<f64>() / inner.len().max(1) as f64;
        let s = if self == TuneMetric::Mse { -mean } else { mean };
        if s.is_finite() { s } else { f64::NEG_INFINITY }
    }
}

impl std::str::FromStr for TuneMetric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pearson" => Ok(TuneMetric::Pearson),
            "mse" => Ok(TuneMetric::Mse),
            "ndcg" => Ok(TuneMetric::Ndcg),
            _ => Err(format!("unknown tuning metric `{s}`: pearson, mse or ndcg")),
        }
    }
}

/// The settings of a search, as run records keep them (a resumed run must match them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneSettings {
    /// The space: a file path, or `default (MODEL)` for the model's shipped space.
    pub space: String,
    /// The space's text (what was searched, whatever happens to the file later).
    pub space_toml: String,
    /// Trials drawn per search.
    pub trials: usize,
    /// Inner folds per trial.
    pub inner_folds: usize,
    /// The inner score.
    pub metric: TuneMetric,
    /// Successive halving's reduction factor (trials kept per rung: 1/eta).
    pub eta: usize,
}

/// Epochs of each successive-halving rung for `trials` trials and at most `max_epochs`: the
/// last rung trains at `max_epochs`, each earlier one at 1/`eta` of the next (at least one
/// epoch), with as many rungs as the trials allow (⌊log_eta trials⌋ + 1).
pub fn halving_rungs(trials: usize, max_epochs: usize, eta: usize) -> Vec<usize> {
    let eta = eta.max(2);
    let mut rungs = 1;
    let mut n = trials;
    while n >= eta {
        n /= eta;
        rungs += 1;
    }
    let mut epochs: Vec<usize> = (0..rungs).map(|k| (max_epochs / eta.pow((rungs - 1 - k) as u32)).max(1)).collect();
    epochs.dedup();
    epochs
}

/// Trials kept after a rung of `n`: ⌈n / eta⌉.
pub fn survivors(n: usize, eta: usize) -> usize {
    n.div_ceil(eta.max(2))
}

/// The inner folds of a search on `rows` (an outer fold's training rows, dataset indices): a
/// seeded `k`-fold split of them. Each inner fold's train and test rows are dataset rows.
pub fn inner_folds(rows: &[usize], k: usize, seed: u64, repeat: usize) -> Result<Vec<Fold>> {
    let folds = kfold(rows.len(), k, seed).map_err(|e| match e {
        CoreError::Config { value, reason, .. } => CoreError::config("--inner-folds", value, reason),
        other => other,
    })?;
    Ok(folds
        .into_iter()
        .map(|f| Fold {
            repeat,
            index: f.index,
            label: format!("inner {}", f.index),
            train: f.train.iter().map(|&i| rows[i]).collect(),
            test: f.test.iter().map(|&i| rows[i]).collect(),
        })
        .collect())
}

/// The seeds of one search, all derived from the run's seed and the outer fold
/// (`[repeat, fold]`; `[0, 0]` for `train --tune`).
#[derive(Debug, Clone, Copy)]
pub struct SearchSeeds {
    /// Trial draws.
    pub draws: u64,
    /// The inner split.
    pub folds: u64,
    /// The inner fits (their validation subsets, weights, shuffles): one seed for every trial,
    /// so trials differ by their settings, not by their luck.
    pub fits: u64,
}

impl SearchSeeds {
    /// The seeds for the outer fold `path`.
    pub fn new(seed: u64, path: [u64; 2]) -> Self {
        let at = |k: u64| derive_seed(seed, Purpose::Tuning, &[path[0], path[1], k]);
        SearchSeeds { draws: at(0), folds: at(1), fits: at(2) }
    }
}

/// A list of numbers where JSON's `null` (how serde_json writes NaN) reads back as NaN.
fn f64s_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    Ok(<Vec<Option<f64>> as Deserialize>::deserialize(d)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// One trial at one rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial number, 1-based (its draw).
    pub trial: usize,
    /// Rung, 1-based (successive halving; 1 without it).
    pub rung: usize,
    /// Epochs trained at this rung (neural models under halving).
    pub epochs: Option<usize>,
    /// The drawn values.
    pub values: Values,
    /// The metric's mean over inner folds, as reported (MSE not negated; NaN when a fold's is
    /// undefined, e.g. r of constant predictions: JSON writes it `null`).
    #[serde(deserialize_with = "genopred_stats::metrics::f64_or_nan")]
    pub inner_mean: f64,
    /// Its value on each inner fold.
    #[serde(deserialize_with = "f64s_or_nan")]
    pub inner: Vec<f64>,
    /// Wall time of its inner fits.
    pub seconds: f64,
}

/// What a search tried and chose, for one outer fold (or for `train --tune`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningRecord {
    /// The inner score's metric.
    pub metric: TuneMetric,
    /// Inner folds.
    pub inner_folds: usize,
    /// The chosen trial.
    pub chosen_trial: usize,
    /// Its values (the settings the outer fit used, over the base config).
    pub chosen: Values,
    /// Its inner mean at the last rung it ran.
    #[serde(deserialize_with = "genopred_stats::metrics::f64_or_nan")]
    pub inner_mean: f64,
    /// Every trial at every rung it ran.
    pub trials: Vec<TrialRecord>,
    /// Wall time of the search.
    pub seconds: f64,
}

/// A value as a CSV cell: numbers and strings as themselves, anything else as JSON.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Writes `tuning.csv` (per search: repeat, fold, chosen trial, its inner mean, one column per
/// tuned key) and `trials.csv` (per trial and rung: repeat, fold, trial, rung, epochs, inner
/// mean, seconds, one column per key) into `dir`, atomically.
pub fn write_tables(dir: &Path, searches: &[(usize, usize, &TuningRecord)]) -> Result<()> {
    let keys: Vec<String> = searches
        .iter()
        .flat_map(|(_, _, t)| t.chosen.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let get = |values: &Values, k: &str| values.get(k).map(cell).unwrap_or_default();
    let write = |name: &str, header: Vec<String>, rows: Vec<Vec<String>>| -> Result<()> {
        let path = dir.join(name);
        let werr = |e: csv::Error| CoreError::format(&path, format!("cannot write a row: {e}"));
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).map_err(werr)?;
        for row in rows {
            w.write_record(&row).map_err(werr)?;
        }
        let bytes = w.into_inner().map_err(|e| CoreError::format(&path, e.to_string()))?;
        crate::output::write_atomic(&path, &bytes)
    };
    let with_keys = |fixed: &[&str]| fixed.iter().map(|s| s.to_string()).chain(keys.iter().cloned()).collect();
    let keys = &keys;
    let metric = searches.first().map_or("score", |(_, _, t)| t.metric.name());
    let inner = format!("inner_{metric}");
    write(
        "tuning.csv",
        with_keys(&["repeat", "fold", "trial", &inner, "seconds"]),
        searches
            .iter()
            .map(|(r, f, t)| {
                [
                    r.to_string(),
                    f.to_string(),
                    t.chosen_trial.to_string(),
                    t.inner_mean.to_string(),
                    t.seconds.to_string(),
                ]
                .into_iter()
                .chain(keys.iter().map(|k| get(&t.chosen, k)))
                .collect()
            })
            .collect(),
    )?;
    write(
        "trials.csv",
        with_keys(&["repeat", "fold", "trial", "rung", "epochs", &inner, "seconds"]),
        searches
            .iter()
            .flat_map(|(r, f, t)| {
                t.trials.iter().map(move |x| {
                    [
                        r.to_string(),
                        f.to_string(),
                        x.trial.to_string(),
                        x.rung.to_string(),
                        x.epochs.map(|e| e.to_string()).unwrap_or_default(),
                        x.inner_mean.to_string(),
                        x.seconds.to_string(),
                    ]
                    .into_iter()
                    .chain(keys.iter().map(|k| get(&x.values, k)))
                    .collect()
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_parses_in_the_config_layout() {
        let s = SearchSpace::parse(
            "dropout = {range = [0.1, 0.5]}\nunits = {int = [16, 128]}\n[train]\nlearning_rate = {log = [1e-4, 1e-2]}\nbatch_size = {choice = [16, 32, 64]}\n",
            "space.toml",
        )
        .unwrap();
        let keys: Vec<&str> = s.params.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["dropout", "train.batch_size", "train.learning_rate", "units"]);
        assert_eq!(s.params[3].dist, Dist::Int(16, 128));
        assert!(s.tunes("train.learning_rate") && !s.tunes("train.epochs"));
    }

    #[test]
    fn bad_spaces_name_the_file_and_key() {
        for (text, says) in [
            ("x = 3\n", "`x` must be one of"),
            ("x = {log = [0.0, 1.0]}\n", "log needs lo > 0"),
            ("x = {range = [2.0, 1.0]}\n", "lo <= hi"),
            ("x = {int = [1.5, 3]}\n", "two integers"),
            ("x = {choice = []}\n", "at least one value"),
            ("x = {range = [0.1, 0.2], log = [1.0, 2.0]}\n", "exactly one"),
            ("", "no keys to tune"),
            ("x = {range = [0.1, ", "not valid TOML"),
        ] {
            let e = SearchSpace::parse(text, "my/space.toml").unwrap_err().to_string();
            assert!(e.starts_with("my/space.toml: ") && e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn draws_are_seeded_and_stay_in_range() {
        let s = SearchSpace::parse(
            "a = {log = [1e-4, 1e-2]}\nb = {range = [0.1, 0.5]}\nc = {int = [2, 4]}\nd = {choice = [\"x\", \"y\"]}\n",
            "s",
        )
        .unwrap();
        let draws = s.draws(400, 7);
        assert_eq!(draws, s.draws(400, 7));
        assert_ne!(draws, s.draws(400, 8));
        let mut ints = std::collections::BTreeSet::new();
        let mut low_decade = 0;
        for d in &draws {
            let a = d["a"].as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&a));
            low_decade += usize::from(a < 1e-3);
            assert!((0.1..=0.5).contains(&d["b"].as_f64().unwrap()));
            ints.insert(d["c"].as_i64().unwrap());
            assert!(["x", "y"].contains(&d["d"].as_str().unwrap()));
        }
        assert_eq!(ints.into_iter().collect::<Vec<_>>(), [2, 3, 4]);
        // Log-uniform: half the draws in the lower decade (a uniform draw would put 9 % there).
        assert!((150..250).contains(&low_decade), "{low_decade}");
    }

    #[test]
    fn overlay_sets_nested_keys_over_a_base() {
        let mut t: toml::Table = toml::from_str("variant = \"v3\"\n[train]\nepochs = 5\n").unwrap();
        overlay(&mut t, "train.learning_rate", &serde_json::json!(0.01)).unwrap();
        overlay(&mut t, "train.epochs", &serde_json::json!(9)).unwrap();
        overlay(&mut t, "dropout1", &serde_json::json!(0.3)).unwrap();
        let text = toml::to_string(&t).unwrap();
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["train"]["learning_rate"].as_float(), Some(0.01));
        assert_eq!(back["train"]["epochs"].as_integer(), Some(9));
        assert_eq!(back["variant"].as_str(), Some("v3"));
        assert!(overlay(&mut t, "variant.x", &serde_json::json!(1)).is_err());
    }

    #[test]
    fn halving_keeps_a_third_and_ends_at_full_epochs() {
        assert_eq!(halving_rungs(9, 90, 3), [10, 30, 90]);
        assert_eq!(halving_rungs(12, 6000, 3), [666, 2000, 6000]);
        assert_eq!(halving_rungs(2, 50, 3), [50]);
        assert_eq!(halving_rungs(27, 4, 3), [1, 4]);
        assert_eq!(survivors(12, 3), 4);
        assert_eq!(survivors(4, 3), 2);
        assert_eq!(survivors(1, 3), 1);
    }

    #[test]
    fn inner_folds_split_only_the_given_rows() {
        let rows: Vec<usize> = (0..40).map(|i| i * 3 + 1).collect();
        let folds = inner_folds(&rows, 4, 11, 2).unwrap();
        assert_eq!(folds.len(), 4);
        let mut tested: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        tested.sort_unstable();
        assert_eq!(tested, rows);
        for f in &folds {
            assert_eq!(f.repeat, 2);
            assert_eq!(f.train.len() + f.test.len(), rows.len());
            assert!(f.train.iter().all(|r| rows.contains(r) && !f.test.contains(r)));
        }
        let e = inner_folds(&rows[..3], 5, 1, 1).unwrap_err().to_string();
        assert!(e.contains("--inner-folds"), "{e}");
    }

    #[test]
    fn tables_have_a_column_per_key_and_a_row_per_trial() {
        let values = |lr: f64| Values::from([("train.learning_rate".into(), serde_json::json!(lr))]);
        let trial = |trial, rung, lr| TrialRecord {
            trial,
            rung,
            epochs: Some(10 * rung),
            values: values(lr),
            inner_mean: 0.1 * trial as f64,
            inner: vec![0.1 * trial as f64; 2],
            seconds: 1.0,
        };
        let record = TuningRecord {
            metric: TuneMetric::Pearson,
            inner_folds: 2,
            chosen_trial: 2,
            chosen: values(0.01),
            inner_mean: 0.2,
            trials: vec![trial(1, 1, 0.001), trial(2, 1, 0.01), trial(2, 2, 0.01)],
            seconds: 3.0,
        };
        let dir = tempfile::tempdir().unwrap();
        write_tables(dir.path(), &[(1, 3, &record)]).unwrap();
        let tuning = std::fs::read_to_string(dir.path().join("tuning.csv")).unwrap();
        assert_eq!(tuning, "repeat,fold,trial,inner_pearson,seconds,train.learning_rate\n1,3,2,0.2,3,0.01\n");
        let trials = std::fs::read_to_string(dir.path().join("trials.csv")).unwrap();
        assert_eq!(trials.lines().count(), 4);
        assert!(trials.contains("\n1,3,2,2,20,0.2,1,0.01\n"), "{trials}");
    }

    /// A trial whose predictions were constant on an inner fold has an undefined r: its record
    /// (written as JSON null) must read back, or a finished fold could not be resumed.
    #[test]
    fn undefined_scores_survive_the_fold_record() {
        let record = TuningRecord {
            metric: TuneMetric::Pearson,
            inner_folds: 2,
            chosen_trial: 1,
            chosen: Values::new(),
            inner_mean: f64::NAN,
            trials: vec![TrialRecord {
                trial: 1,
                rung: 1,
                epochs: None,
                values: Values::new(),
                inner_mean: f64::NAN,
                inner: vec![0.4, f64::NAN],
                seconds: 1.0,
            }],
            seconds: 1.0,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("null"));
        let back: TuningRecord = serde_json::from_str(&json).unwrap();
        assert!(back.inner_mean.is_nan() && back.trials[0].inner_mean.is_nan());
        assert_eq!(back.trials[0].inner[0], 0.4);
        assert!(back.trials[0].inner[1].is_nan());
    }

    #[test]
    fn scores_prefer_high_r_and_low_mse() {
        let m = |pearson: f64, mse: f64| Metrics { pearson, spearman: 0.0, mse, mae: 0.0, r2: 0.0, ndcg: 0.5 };
        assert!(TuneMetric::Pearson.score(&[m(0.5, 1.0), m(0.3, 1.0)]) > TuneMetric::Pearson.score(&[m(0.2, 1.0)]));
        assert!(TuneMetric::Mse.score(&[m(0.0, 0.5)]) > TuneMetric::Mse.score(&[m(0.0, 0.9)]));
        assert_eq!(TuneMetric::Pearson.score(&[m(f64::NAN, 1.0)]), f64::NEG_INFINITY);
        assert_eq!("ndcg".parse::<TuneMetric>().unwrap(), TuneMetric::Ndcg);
        assert!("r2".parse::<TuneMetric>().is_err());
    }
}
