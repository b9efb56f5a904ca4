//! The report's figures of one dataset and trait: per-fold accuracy, time per fold, and observed
//! versus predicted (PNG and SVG, drawn by genopred-plot).

use std::path::Path;

use anyhow::{Context, Result};
use genopred_plot::compare::{
    Bar, Group, Interval, Panel, fold_accuracy, observed_predicted, paired_differences, time_by_cell,
};

use super::differences::{BASELINE, Difference};
use super::plan::CellResult;
use super::rows::Row;

/// Draws the three figures of one dataset and trait into `out`, named from `stem`; returns
/// (file stem, description) of each.
pub fn figures_for(
    out: &Path,
    stem: &str,
    dataset: &str,
    trait_name: &str,
    rows: &[&Row],
    results: &[CellResult],
) -> Result<Vec<(String, String)>> {
    let files = |name: &str| (out.join(format!("{name}.png")), out.join(format!("{name}.svg")));
    let cells = |r: &Row| results.iter().filter(|c| r.holds(c)).collect::<Vec<_>>();
    let label = |r: &Row| format!("{} · {}", r.model, r.backend);
    let groups: Vec<Group> = rows
        .iter()
        .map(|r| {
            let cells = cells(r);
            Group {
                label: label(r),
                values: cells.iter().flat_map(|c| c.pearson.iter().copied()).collect(),
                // The folds of one seed are the same for every model: join them across columns.
                keys: cells
                    .iter()
                    .flat_map(|c| (1..=c.pearson.len()).map(move |k| format!("seed {}, fold {k}", c.seed)))
                    .collect(),
            }
        })
        .collect();
    let accuracy = format!("{stem}-accuracy");
    let (png, svg) = files(&accuracy);
    fold_accuracy(&groups, &format!("{dataset} {trait_name}: accuracy per fold"), &png, &svg)?;
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| Bar { model: r.model.clone(), backend: r.backend.clone(), seconds: r.seconds_per_fold })
        .collect();
    let time = format!("{stem}-time");
    let (png, svg) = files(&time);
    time_by_cell(&bars, &format!("{dataset} {trait_name}: wall time per fold"), &png, &svg)?;
    // Observed vs predicted: the first seed's cell of each model × backend.
    let mut panels = Vec::new();
    for r in rows {
        if let Some(c) = cells(r).first() {
            let points = read_predictions(&out.join(&c.dir).join("predictions.csv"))?;
            panels.push(Panel { label: format!("{} (seed {})", label(r), c.seed), points });
        }
    }
    let scatter = format!("{stem}-observed-predicted");
    let (png, svg) = files(&scatter);
    observed_predicted(&panels, &format!("{dataset} {trait_name}: test-fold predictions"), &png, &svg)?;
    Ok(vec![
        (accuracy, "Pearson r per fold by model and backend".into()),
        (time, "Wall time per fold by model and backend".into()),
        (scatter, "Observed vs predicted on the test folds".into()),
    ])
}

/// Draws the paired differences of one dataset and trait against the baseline; returns (file
/// stem, description).
pub fn difference_figure(
    out: &Path,
    stem: &str,
    dataset: &str,
    trait_name: &str,
    diffs: &[&Difference],
) -> Result<(String, String)> {
    let items: Vec<Interval> = diffs
        .iter()
        .map(|d| Interval {
            label: if d.is_tuning() {
                format!("{} · {} − untuned", d.model, d.backend)
            } else {
                format!("{} · {}", d.model, d.backend)
            },
            mean: d.stats.mean,
            low: d.stats.ci_low,
            high: d.stats.ci_high,
        })
        .collect();
    let name = format!("{stem}-differences");
    paired_differences(
        &items,
        &format!("{dataset} {trait_name}: Δ Pearson r on the same folds"),
        "Δ Pearson r (95 % interval)",
        &out.join(format!("{name}.png")),
        &out.join(format!("{name}.svg")),
    )?;
    Ok((
        name,
        format!("Paired differences in Pearson r against {BASELINE} (and tuned against untuned), with 95 % intervals"),
    ))
}

/// `(observed, predicted)` of every test prediction of a `genopred cv` run (first repeat).
fn read_predictions(path: &Path) -> Result<Vec<(f64, f64)>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).with_context(|| format!("{}: no `{name}` column", path.display()))
    };
    let (obs, pred) = (col("observed")?, col("predicted")?);
    let repeat = headers.iter().position(|h| h == "repeat");
    let mut points = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        if repeat.is_some_and(|c| row.get(c) != Some("1")) {
            continue;
        }
        let parse = |c: usize| row.get(c).and_then(|v| v.parse::<f64>().ok());
        if let (Some(o), Some(p)) = (parse(obs), parse(pred)) {
            points.push((o, p));
        }
    }
    Ok(points)
}
