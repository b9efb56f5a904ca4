//! What a cross-validation run writes: `predictions.csv`, `summary.json`, per-fold records, and
//! the table printed at the end.

use std::path::Path;

use anyhow::{Context, Result};
use genopred_core::evaluation::{CvSummary, FoldResult, Prediction};
use genopred_core::output::write_atomic;

/// Everything `summary.json` holds.
#[derive(Debug, serde::Serialize)]
pub struct RunSummary<'a> {
    /// Model name.
    pub model: &'a str,
    /// Trait name.
    pub r#trait: &'a str,
    /// Samples used (genotyped, phenotyped for the trait, past sample QC).
    pub n_samples: usize,
    /// Markers in the genotype file (before per-fold QC).
    pub n_markers: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Per-fold results.
    pub folds: &'a [FoldResult],
    /// Mean and sd over folds of each metric.
    pub metrics: &'a genopred_core::metrics::MetricSummaries,
    /// Metrics of the pooled predictions of each repeat (mean and sd over repeats).
    pub pooled: &'a genopred_core::metrics::MetricSummaries,
    /// How the run was set up: inputs and their hashes, scheme, QC, model settings, versions.
    pub provenance: serde_json::Value,
}

/// Writes `predictions.csv` (`id,fold,observed,predicted,repeat`) atomically.
pub fn write_predictions(path: &Path, folds: &[FoldResult]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for p in folds.iter().flat_map(|f| &f.predictions) {
        w.serialize(p)?;
    }
    let bytes = w.into_inner().context("serialising predictions")?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// Writes a fold's training history (`epoch,train_loss,val_loss,val_metric,lr`) atomically to
/// `DIR/folds/rRR-fFFF.history.csv`.
pub fn write_history(dir: &Path, fold: &FoldResult) -> Result<()> {
    let path = dir.join("folds").join(format!("r{:02}-f{:03}.history.csv", fold.repeat, fold.fold));
    write_history_csv(&path, &fold.history)
}

/// Writes a training history (`epoch,train_loss,val_loss,val_metric,lr`) atomically to `path`.
pub fn write_history_csv(path: &Path, history: &[genopred_core::EpochRecord]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for record in history {
        w.serialize(record)?;
    }
    write_atomic(path, &w.into_inner().context("serialising history")?)?;
    Ok(())
}

/// One finished fold as written under `DIR/folds/`.
#[derive(Debug, serde::Serialize)]
pub struct FoldRecord<'a> {
    /// The fold's result.
    pub result: &'a FoldResult,
    /// Its test predictions.
    pub predictions: &'a [Prediction],
}

/// Where a finished fold is recorded: `DIR/folds/rRR-fFFF.json`.
pub fn fold_path(dir: &Path, repeat: usize, fold: usize) -> std::path::PathBuf {
    dir.join("folds").join(format!("r{repeat:02}-f{fold:03}.json"))
}

/// Writes one finished fold atomically, so an interrupted run keeps it. It is written last of a
/// fold's files: its presence means the fold finished.
pub fn write_fold(dir: &Path, fold: &FoldResult) -> Result<()> {
    let path = fold_path(dir, fold.repeat, fold.fold);
    let record = FoldRecord { result: fold, predictions: &fold.predictions };
    write_atomic(&path, &serde_json::to_vec_pretty(&record)?)?;
    Ok(())
}

/// Reads back a fold written by [`write_fold`] (for `--resume`); `None` when it is not there.
pub fn read_fold(dir: &Path, repeat: usize, fold: usize) -> Result<Option<FoldResult>> {
    #[derive(serde::Deserialize)]
    struct Owned {
        result: FoldResult,
        predictions: Vec<Prediction>,
    }
    let path = fold_path(dir, repeat, fold);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let record: Owned = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a fold record written by genopred; delete it to rerun that fold", path.display())
    })?;
    let mut result = record.result;
    result.predictions = record.predictions;
    Ok(Some(result))
}

/// Writes `summary.json` atomically.
pub fn write_summary(path: &Path, summary: &RunSummary<'_>) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(summary)?)?;
    Ok(())
}

/// The table printed after a run.
pub fn table(folds: &[FoldResult], summary: &CvSummary) -> String {
    let mut out = String::new();
    let repeats = folds.iter().map(|f| f.repeat).max().unwrap_or(1);
    out.push_str(&format!(
        "{:>6} {:>12} {:>6} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "repeat", "fold", "train", "test", "pearson", "spearman", "mse", "mae", "r2", "ndcg", "seconds"
    ));
    for f in folds {
        out.push_str(&format!(
            "{:>6} {:>12} {:>6} {:>6} {:>8.4} {:>9.4} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>8.2}\n",
            f.repeat,
            f.label,
            f.n_train,
            f.n_test,
            f.metrics.pearson,
            f.metrics.spearman,
            f.metrics.mse,
            f.metrics.mae,
            f.metrics.r2,
            f.metrics.ndcg,
            f.seconds
        ));
    }
    let m = &summary.metrics;
    out.push_str(&format!(
        "mean ± sd over {} fold(s){}: pearson {:.4} ± {:.4}, spearman {:.4} ± {:.4}, mse {:.4} ± {:.4}, ndcg {:.4} ± {:.4}\n",
        folds.len(),
        if repeats > 1 { format!(" in {repeats} repeats") } else { String::new() },
        m.pearson.mean,
        m.pearson.sd,
        m.spearman.mean,
        m.spearman.sd,
        m.mse.mean,
        m.mse.sd,
        m.ndcg.mean,
        m.ndcg.sd
    ));
    out.push_str(&format!("pooled predictions: pearson {:.4}\n", summary.pooled.pearson.mean));
    out
}

/// This process's peak resident memory (Linux `VmHWM`), if the system tells. For a resumed run it
/// covers only the folds run by this process.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|kb| kb * 1024)
}
