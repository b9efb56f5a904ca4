//! Is a model's accuracy really different from the baseline's? Per dataset and trait, each
//! model × backend's Pearson r minus GBLUP's on the same folds (same seed, same fold), and each
//! tuned model's minus its untuned self's, with the
//! corrected resampled t interval (`genopred_core::paired`: the folds' training sets overlap,
//! so the plain paired t-test is far too confident).

use genopred_core::paired::{PairedDifference, corrected_paired_t};
use serde::Serialize;

use super::plan::CellResult;
use super::rows::Row;

/// The model every other is compared with.
pub const BASELINE: &str = "gblup";

/// One model × backend against the baseline on one dataset and trait.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub dataset: String,
    #[serde(rename = "trait")]
    pub trait_name: String,
    pub model: String,
    pub backend: String,
    /// `gblup · cpu`.
    pub baseline: String,
    /// The metric differenced (`pearson`).
    pub metric: &'static str,
    /// Seeds both ran with.
    pub seeds: Vec<u64>,
    /// The mean paired difference and its 95 % interval.
    #[serde(flatten)]
    pub stats: PairedDifference,
    /// Whether the interval excludes zero.
    pub distinguishable: bool,
}

/// Every row of `rows` that is not the baseline, against the baseline row of its dataset and
/// trait; and every tuned row against its untuned row (same model and backend); paired fold by
/// fold within each seed both ran. Rows without a partner, or with fewer than two pairs, are
/// left out.
pub fn differences(rows: &[Row], results: &[CellResult]) -> Vec<Difference> {
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.model != BASELINE) {
        let same_data = |b: &&Row| b.dataset == row.dataset && b.trait_name == row.trait_name;
        if let Some(base) = rows.iter().filter(same_data).find(|b| b.model == BASELINE)
            && let Some(d) = paired(row, base, results, format!("{} · {}", base.model, base.backend))
        {
            out.push(d);
        }
    }
    for row in rows {
        let Some(model) = row.model.strip_suffix(TUNED_SUFFIX) else { continue };
        if let Some(base) = rows.iter().find(|b| {
            b.model == model && b.backend == row.backend && b.dataset == row.dataset && b.trait_name == row.trait_name
        }) && let Some(d) = paired(row, base, results, format!("{} · {} (untuned)", base.model, base.backend))
        {
            out.push(d);
        }
    }
    out
}

/// What marks a tuned row's model ([`super::plan::tuned_label`]).
const TUNED_SUFFIX: &str = " (tuned)";

/// `row` minus `base`, fold by fold within the seeds both ran.
fn paired(row: &Row, base: &Row, results: &[CellResult], baseline: String) -> Option<Difference> {
    let mut diffs = Vec::new();
    let mut seeds = Vec::new();
    let mut folds = 0;
    for cell in results.iter().filter(|c| row.holds(c)) {
        let Some(b) = results.iter().find(|c| base.holds(c) && c.seed == cell.seed) else { continue };
        // Same seed and same fold count: the same test sets, fold by fold.
        if b.pearson.len() != cell.pearson.len() || cell.pearson.len() < 2 {
            continue;
        }
        diffs.extend(cell.pearson.iter().zip(&b.pearson).map(|(m, g)| m - g));
        seeds.push(cell.seed);
        folds = cell.pearson.len();
    }
    // k-fold: each test fold is 1/(k − 1) of its training set.
    let stats = corrected_paired_t(&diffs, 1.0 / (folds.max(2) - 1) as f64)?;
    Some(Difference {
        dataset: row.dataset.clone(),
        trait_name: row.trait_name.clone(),
        model: row.model.clone(),
        backend: row.backend.clone(),
        baseline,
        metric: "pearson",
        seeds,
        distinguishable: stats.distinguishable(),
        stats,
    })
}

impl Difference {
    /// Whether this is a tuned row against its untuned one (not against the baseline).
    pub fn is_tuning(&self) -> bool {
        self.baseline.ends_with("(untuned)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::rows::rows;

    fn cell(model: &str, seed: u64, pearson: Vec<f64>) -> CellResult {
        CellResult {
            dataset: "d".into(),
            trait_name: "t".into(),
            model: model.into(),
            backend: if model == BASELINE { "cpu".into() } else { "flex".into() },
            seed,
            dir: String::new(),
            key: String::new(),
            cached: false,
            from_build: None,
            wall_seconds: 1.0,
            error: None,
            mse: vec![1.0; pearson.len()],
            ndcg: vec![1.0; pearson.len()],
            fold_seconds: vec![1.0; pearson.len()],
            epochs: Vec::new(),
            peak_rss_bytes: None,
            inputs: None,
            tasks: Vec::new(),
            pearson,
        }
    }

    #[test]
    fn pairs_folds_within_seeds_and_marks_clear_differences() {
        let base1 = vec![0.40, 0.55, 0.30, 0.62, 0.48];
        let base2 = vec![0.45, 0.35, 0.58, 0.50, 0.41];
        let plus = |v: &[f64], d: f64| v.iter().enumerate().map(|(i, x)| x + d + 0.002 * i as f64).collect::<Vec<_>>();
        let results = vec![
            cell("gblup", 1, base1.clone()),
            cell("gblup", 2, base2.clone()),
            // Better on every fold by about 0.1: distinguishable.
            cell("rkhs", 1, plus(&base1, 0.1)),
            cell("rkhs", 2, plus(&base2, 0.1)),
            // Noise around zero: not distinguishable.
            cell("mlp", 1, vec![0.45, 0.50, 0.31, 0.60, 0.52]),
            // Only seed 3, which the baseline lacks: no pairs.
            cell("dnngp", 3, base1.clone()),
        ];
        let order: Vec<String> = ["gblup", "rkhs", "mlp", "dnngp"].map(String::from).to_vec();
        let diffs = differences(&rows(&results, &order), &results);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        let rkhs = &diffs[0];
        assert_eq!(
            (rkhs.model.as_str(), rkhs.baseline.as_str(), rkhs.seeds.as_slice()),
            ("rkhs", "gblup · cpu", &[1, 2][..])
        );
        assert_eq!(rkhs.stats.n, 10);
        assert!((rkhs.stats.mean - 0.104).abs() < 1e-12 && rkhs.distinguishable, "{rkhs:?}");
        let mlp = &diffs[1];
        assert_eq!(mlp.stats.n, 5);
        assert!(!mlp.distinguishable && mlp.stats.ci_low < 0.0 && mlp.stats.ci_high > 0.0, "{mlp:?}");
        // A tuned row is compared with gblup and with its untuned self.
        let mut tuned = results.clone();
        tuned.push(cell("mlp (tuned)", 1, vec![0.55, 0.60, 0.41, 0.70, 0.62]));
        let diffs = differences(&rows(&tuned, &order), &tuned);
        let self_diff = diffs.iter().find(|d| d.is_tuning()).expect("tuned vs untuned");
        assert_eq!((self_diff.model.as_str(), self_diff.baseline.as_str()), ("mlp (tuned)", "mlp · flex (untuned)"));
        assert!((self_diff.stats.mean - 0.1).abs() < 1e-12 && self_diff.stats.n == 5, "{self_diff:?}");
        assert!(diffs.iter().any(|d| d.model == "mlp (tuned)" && d.baseline == "gblup · cpu"));
        let json = serde_json::to_value(mlp).unwrap();
        assert!(json["ci_low"].is_f64() && json["trait"] == "t" && json["metric"] == "pearson");
    }
}
