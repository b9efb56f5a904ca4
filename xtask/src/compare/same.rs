//! `cargo xtask same-results A B`: do two comparison folders hold the same results? Every cell
//! of A's report must be in B's with bit-identical per-fold metrics and byte-identical
//! `predictions.csv`, whatever executor ran them (a Slurm run against a local one, say).

use std::path::Path;

use anyhow::{Context, Result, bail};
use genopred_core::records::RunSummary;
use serde::Deserialize;

#[derive(Deserialize)]
struct Report {
    cells: Vec<ReportCell>,
}

#[derive(Deserialize)]
struct ReportCell {
    dir: String,
    error: Option<String>,
}

fn cells(out: &Path) -> Result<Vec<ReportCell>> {
    let path = out.join("report.json");
    let report: Report =
        serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("{}", path.display()))?;
    Ok(report.cells)
}

/// Compares the cells of the reports in `a` and `b`; an error lists every difference.
pub fn run(a: &Path, b: &Path) -> Result<()> {
    let (ca, cb) = (cells(a)?, cells(b)?);
    let mut differences = Vec::new();
    let names = |c: &[ReportCell]| c.iter().map(|c| c.dir.clone()).collect::<std::collections::BTreeSet<_>>();
    if names(&ca) != names(&cb) {
        differences.push(format!("the reports hold other cells: {:?} vs {:?}", names(&ca), names(&cb)));
    }
    for cell in &ca {
        if let Some(e) = &cell.error {
            differences.push(format!("{}: failed in {}: {e}", cell.dir, a.display()));
            continue;
        }
        let (da, db) = (a.join(&cell.dir), b.join(&cell.dir));
        if !db.join("summary.json").is_file() {
            continue; // already listed as another cell set
        }
        let (sa, sb) = (RunSummary::read(&da.join("summary.json"))?, RunSummary::read(&db.join("summary.json"))?);
        if sa.folds.len() != sb.folds.len() {
            differences.push(format!("{}: {} folds vs {}", cell.dir, sa.folds.len(), sb.folds.len()));
        }
        for (fa, fb) in sa.folds.iter().zip(&sb.folds) {
            let (ma, mb) = (fa.metrics, fb.metrics);
            let pairs = [
                ("pearson", ma.pearson, mb.pearson),
                ("spearman", ma.spearman, mb.spearman),
                ("mse", ma.mse, mb.mse),
                ("mae", ma.mae, mb.mae),
                ("r2", ma.r2, mb.r2),
                ("ndcg", ma.ndcg, mb.ndcg),
            ];
            for (name, x, y) in pairs {
                if x.to_bits() != y.to_bits() {
                    differences.push(format!("{}: fold {} {name} {x} vs {y}", cell.dir, fa.fold));
                }
            }
        }
        let read = |d: &Path| std::fs::read(d.join("predictions.csv")).with_context(|| format!("{}", d.display()));
        if read(&da)? != read(&db)? {
            differences.push(format!("{}: predictions.csv differs", cell.dir));
        }
    }
    if !differences.is_empty() {
        bail!("{} and {} differ:\n  {}", a.display(), b.display(), differences.join("\n  "));
    }
    println!("{} and {}: the same results in all {} cells", a.display(), b.display(), ca.len());
    Ok(())
}
