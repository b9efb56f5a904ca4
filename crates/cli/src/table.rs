//! The table `genopred cv` prints at the end.

use genopred_core::evaluation::{CvSummary, FoldResult};

/// Per-fold metrics, then mean ± sd and the pooled Pearson r.
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
