//! The report's rows: the cells of one dataset, trait, model and backend, their seeds pooled.

use std::collections::BTreeMap;

use genopred_core::metrics::{mean, sd};
use serde::Serialize;

use super::plan::CellResult;

/// One model × backend of one dataset and trait, its seeds pooled.
#[derive(Debug, Serialize)]
pub struct Row {
    pub dataset: String,
    #[serde(rename = "trait")]
    pub trait_name: String,
    pub model: String,
    pub backend: String,
    pub seeds: Vec<u64>,
    pub folds: usize,
    pub pearson_mean: f64,
    pub pearson_sd: f64,
    pub mse_mean: f64,
    pub mse_sd: f64,
    pub ndcg_mean: f64,
    pub ndcg_sd: f64,
    pub seconds_per_fold: f64,
    pub wall_seconds: f64,
    pub peak_rss_mib: Option<f64>,
    pub epochs_median: Option<f64>,
    pub epochs_min: Option<f64>,
    pub epochs_max: Option<f64>,
}

impl Row {
    /// Whether `cell` is one of this row's (and finished).
    pub fn holds(&self, cell: &CellResult) -> bool {
        cell.error.is_none()
            && cell.dataset == self.dataset
            && cell.trait_name == self.trait_name
            && cell.model == self.model
            && cell.backend == self.backend
    }
}

/// The rows of the finished cells, by dataset and trait, then models in `model_order` (the
/// catalogue's order), then backend.
pub fn rows(results: &[CellResult], model_order: &[String]) -> Vec<Row> {
    let order = |m: &str| model_order.iter().position(|x| x == m).unwrap_or(usize::MAX);
    let mut groups: BTreeMap<(String, String, usize, String), Vec<&CellResult>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.error.is_none()) {
        groups
            .entry((format!("{}\u{0}{}", r.dataset, r.trait_name), r.model.clone(), order(&r.model), r.backend.clone()))
            .or_default()
            .push(r);
    }
    let mut out: Vec<Row> = groups
        .into_values()
        .map(|cells| {
            let all =
                |f: fn(&CellResult) -> &Vec<f64>| cells.iter().flat_map(|c| f(c).iter().copied()).collect::<Vec<f64>>();
            let (pearson, mse, ndcg, secs, mut epochs) =
                (all(|c| &c.pearson), all(|c| &c.mse), all(|c| &c.ndcg), all(|c| &c.fold_seconds), all(|c| &c.epochs));
            epochs.sort_by(f64::total_cmp);
            let first = cells[0];
            Row {
                dataset: first.dataset.clone(),
                trait_name: first.trait_name.clone(),
                model: first.model.clone(),
                backend: first.backend.clone(),
                seeds: cells.iter().map(|c| c.seed).collect(),
                folds: pearson.len(),
                pearson_mean: mean(&pearson),
                pearson_sd: sd(&pearson),
                mse_mean: mean(&mse),
                mse_sd: sd(&mse),
                ndcg_mean: mean(&ndcg),
                ndcg_sd: sd(&ndcg),
                seconds_per_fold: mean(&secs),
                wall_seconds: cells.iter().map(|c| c.wall_seconds).sum(),
                peak_rss_mib: cells.iter().filter_map(|c| c.peak_rss_bytes).max().map(|b| b as f64 / 1048576.0),
                epochs_median: (!epochs.is_empty()).then(|| epochs[epochs.len() / 2]),
                epochs_min: epochs.first().copied(),
                epochs_max: epochs.last().copied(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.dataset, &a.trait_name, order(&a.model), &a.backend).cmp(&(
            &b.dataset,
            &b.trait_name,
            order(&b.model),
            &b.backend,
        ))
    });
    out
}
