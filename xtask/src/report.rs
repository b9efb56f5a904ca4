//! The comparison report: `report.md`, `report.json` and figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

use crate::compare::{CellResult, Plan, Skipped, mean, sd};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so the
/// file is never seen half-written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes).with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// "0.8 s", "12 s", "3.4 min", "1 h 12 min".
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        "—".into()
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{} h {:02.0} min", (seconds / 3600.0).floor(), (seconds % 3600.0) / 60.0)
    }
}

/// One model × backend of one dataset and trait, its seeds pooled.
#[derive(Debug, Serialize)]
struct Row {
    dataset: String,
    #[serde(rename = "trait")]
    trait_name: String,
    model: String,
    backend: String,
    seeds: Vec<u64>,
    folds: usize,
    pearson_mean: f64,
    pearson_sd: f64,
    mse_mean: f64,
    mse_sd: f64,
    ndcg_mean: f64,
    ndcg_sd: f64,
    seconds_per_fold: f64,
    wall_seconds: f64,
    peak_rss_mib: Option<f64>,
    epochs_median: Option<f64>,
    epochs_min: Option<f64>,
    epochs_max: Option<f64>,
}

fn rows(results: &[CellResult]) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, usize, String), Vec<&CellResult>> = BTreeMap::new();
    let order = |m: &str| ["gblup", "dnngp", "deepgs", "dlgwas", "mlp"].iter().position(|x| *x == m).unwrap_or(9);
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

fn pm(m: f64, s: f64, digits: usize) -> String {
    match (m.is_finite(), s.is_finite()) {
        (false, _) => "—".into(),
        (true, false) => format!("{m:.digits$}"),
        (true, true) => format!("{m:.digits$} ± {s:.digits$}"),
    }
}

/// How long a compare run took.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    /// Building (and probing) the binaries.
    pub build_seconds: f64,
    /// Running (or reading from the cache) every cell and nothing else.
    pub cells_seconds: f64,
}

/// Writes the report files into `out`.
pub fn write(
    out: &Path,
    plan: &Plan,
    environment: &Value,
    skipped: &[Skipped],
    results: &[CellResult],
    timing: &Timing,
) -> Result<()> {
    let rows = rows(results);
    let mut md = String::new();
    let seeds = plan.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let scheme = match &plan.folds_file {
        Some(f) => format!("folds from {}", f.display()),
        None => format!("{}-fold cross-validation", plan.folds),
    };
    let cached = results.iter().filter(|r| r.cached).count();
    writeln!(md, "# genopred comparison\n")?;
    if let Some(s) = &plan.suite {
        writeln!(md, "Suite **{s}**: {}\n", plan.description.trim())?;
    }
    writeln!(
        md,
        "{scheme}, seed{} {seeds}; models {}; backends asked for: {}. {} cells ({cached} from the cache), \
         cells run in {} (building the binaries took {}).\n",
        if plan.seeds.len() > 1 { "s" } else { "" },
        plan.models.join(", "),
        plan.backends.join(", "),
        results.len(),
        duration(timing.cells_seconds),
        duration(timing.build_seconds)
    )?;
    writeln!(
        md,
        "Pearson r, MSE and NDCG@10 % are mean ± sd over the folds (of every seed); the test fold never \
         influences training, early stopping, scaling or PCA. Time is the wall time per fold (QC, \
         fit, prediction); peak memory is the `genopred cv` process's peak resident set; epochs \
         are those run per fold (median, range). GBLUP has no deep-learning backend (`cpu`).\n"
    )?;
    writeln!(md, "## Environment\n\n| | |\n|---|---|")?;
    let e = |k: &str| environment[k].as_str().map_or_else(|| environment[k].to_string(), String::from);
    writeln!(
        md,
        "| CPU | {} ({} cores{}) |",
        e("cpu"),
        environment["cores"],
        environment["memory"].as_str().map(|m| format!(", {m}")).unwrap_or_default()
    )?;
    let gpus = environment["gpus"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();
    writeln!(
        md,
        "| GPU adapters | {} |",
        if gpus.is_empty() { "none found by nvidia-smi or vulkaninfo" } else { &gpus }
    )?;
    let drivers = environment["vulkan_drivers"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    if !drivers.is_empty() {
        writeln!(md, "| Vulkan drivers installed | {drivers} |")?;
    }
    if let Some(b) = environment["backends"].as_object() {
        for (name, info) in b {
            writeln!(md, "| backend {name} | {} |", info.as_str().unwrap_or("").replace('\n', "; "))?;
        }
    }
    writeln!(md, "| OS | {} |", e("os"))?;
    writeln!(md, "| genopred | {} (commit {}) |", e("genopred"), e("git_commit"))?;
    writeln!(md, "| burn, faer | {}, {} |", e("burn"), e("faer"))?;
    writeln!(md, "| rustc | {} |", e("rustc"))?;
    if let Some(t) = environment["threads"].as_str() {
        writeln!(md, "| RAYON_NUM_THREADS | {t} |")?;
    }
    writeln!(md)?;

    let mut figures = Vec::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let key = (r.dataset.clone(), r.trait_name.clone());
        if !sections.contains(&key) {
            sections.push(key);
        }
    }
    for (dataset, trait_name) in &sections {
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.dataset == dataset && &r.trait_name == trait_name).collect();
        writeln!(md, "## {dataset} · {trait_name}\n")?;
        if let Some(inputs) = results.iter().find(|r| &r.dataset == dataset && r.error.is_none()).map(|r| &r.inputs) {
            writeln!(md, "Data: {}\n", describe_inputs(inputs))?;
        }
        let published: Vec<_> =
            plan.published.iter().filter(|p| &p.dataset == dataset && &p.trait_name == trait_name).collect();
        writeln!(
            md,
            "| model | backend | Pearson r | MSE | NDCG@10 % | time / fold | peak memory | epochs | folds |{}",
            if published.is_empty() { "" } else { " published r |" }
        )?;
        writeln!(md, "|---|---|---|---|---|---|---|---|---|{}", if published.is_empty() { "" } else { "---|" })?;
        for r in &mine {
            let epochs = match (r.epochs_median, r.epochs_min, r.epochs_max) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:.0} ({lo:.0}–{hi:.0})"),
                _ => "—".into(),
            };
            let mem = r.peak_rss_mib.map_or("—".into(), |m| format!("{m:.0} MiB"));
            let publ = if published.is_empty() {
                String::new()
            } else {
                let p: Vec<String> = published
                    .iter()
                    .filter(|p| p.model == r.model)
                    .map(|p| format!("{} ({}; [{}])", p.value, p.what, p.source))
                    .collect();
                format!(" {} |", if p.is_empty() { "—".into() } else { p.join("; ") })
            };
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {mem} | {epochs} | {} |{publ}",
                r.model,
                r.backend,
                pm(r.pearson_mean, r.pearson_sd, 3),
                pm(r.mse_mean, r.mse_sd, 3),
                pm(r.ndcg_mean, r.ndcg_sd, 3),
                duration(r.seconds_per_fold),
                r.folds
            )?;
        }
        if !published.is_empty() {
            writeln!(md, "\nPublished numbers and their sources: `docs/published-results.md`.")?;
        }
        let stem = format!("{}-{}", sanitize(dataset), sanitize(trait_name));
        match figures_for(out, &stem, dataset, trait_name, &mine, results) {
            Ok(names) => {
                writeln!(md)?;
                for (name, alt) in &names {
                    writeln!(md, "![{alt}]({name}.png)\n")?;
                }
                writeln!(md, "(SVG versions beside the PNGs.)\n")?;
                figures.extend(names.into_iter().map(|(n, _)| n));
            }
            Err(err) => writeln!(md, "\nFigures could not be drawn: {err:#}\n")?,
        }
    }
    if !skipped.is_empty() {
        writeln!(md, "## Skipped backends\n")?;
        for s in skipped {
            writeln!(md, "- **{}**: {}", s.backend, s.reason)?;
        }
        writeln!(md)?;
    }
    let failed: Vec<&CellResult> = results.iter().filter(|r| r.error.is_some()).collect();
    if !failed.is_empty() {
        writeln!(md, "## Failed cells\n")?;
        for f in failed {
            writeln!(
                md,
                "- {} {} {} on {}, seed {}: {}",
                f.dataset,
                f.trait_name,
                f.model,
                f.backend,
                f.seed,
                f.error.as_deref().unwrap_or("")
            )?;
        }
        writeln!(md)?;
    }
    writeln!(
        md,
        "## Cells\n\nEach cell is a `genopred cv` run; its folder holds `summary.json`, `predictions.csv`, `config.toml`, the per-fold histories and `log.txt`.\n"
    )?;
    writeln!(
        md,
        "| dataset | trait | model | backend | seed | r | wall | folder |\n|---|---|---|---|---|---|---|---|"
    )?;
    for c in results {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {}{} | `{}` |",
            c.dataset,
            c.trait_name,
            c.model,
            c.backend,
            c.seed,
            if c.error.is_some() { "failed".to_string() } else { format!("{:.3}", mean(&c.pearson)) },
            duration(c.wall_seconds),
            if c.cached { " (cached)" } else { "" },
            c.dir
        )?;
    }

    let report = json!({
        "plan": plan,
        "environment": environment,
        "timing": timing,
        "summary": rows,
        "skipped": skipped,
        "cells": results,
        "figures": figures,
    });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    Ok(())
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

fn describe_inputs(inputs: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(path) = inputs["geno"]["path"].as_str() {
        let hashes = match &inputs["geno"]["sha256"] {
            Value::String(h) => format!("sha256 {}", &h[..h.len().min(16)]),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().map_or("", |h| &h[..h.len().min(16)])))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        parts.push(format!("`{path}` ({hashes}…)"));
    }
    if let (Some(path), Some(h)) = (inputs["pheno"]["path"].as_str(), inputs["pheno"]["sha256"].as_str()) {
        parts.push(format!("`{path}` (sha256 {}…)", &h[..h.len().min(16)]));
    }
    parts.join("; ")
}

/// Draws the three figures of one dataset and trait; returns (file stem, description).
fn figures_for(
    out: &Path,
    stem: &str,
    dataset: &str,
    trait_name: &str,
    rows: &[&Row],
    results: &[CellResult],
) -> Result<Vec<(String, String)>> {
    use genopred_plot::compare::{Bar, Group, Panel, fold_accuracy, observed_predicted, time_by_cell};
    let files = |name: &str| (out.join(format!("{name}.png")), out.join(format!("{name}.svg")));
    fn cells<'a>(results: &'a [CellResult], r: &'a Row) -> impl Iterator<Item = &'a CellResult> + 'a {
        results.iter().filter(move |c| {
            c.error.is_none()
                && c.dataset == r.dataset
                && c.trait_name == r.trait_name
                && c.model == r.model
                && c.backend == r.backend
        })
    }
    let label = |r: &Row| format!("{} · {}", r.model, r.backend);
    let groups: Vec<Group> = rows
        .iter()
        .map(|r| Group { label: label(r), values: cells(results, r).flat_map(|c| c.pearson.iter().copied()).collect() })
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
        if let Some(c) = cells(results, r).next() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(model: &str, backend: &str, seed: u64, pearson: Vec<f64>, dir: &str) -> CellResult {
        CellResult {
            dataset: "wheat599".into(),
            trait_name: "yield_env1".into(),
            model: model.into(),
            backend: backend.into(),
            seed,
            dir: dir.into(),
            key: "k".into(),
            cached: false,
            wall_seconds: 10.0,
            error: None,
            mse: pearson.iter().map(|r| 1.0 - r).collect(),
            ndcg: pearson.iter().map(|r| 0.5 + r / 2.0).collect(),
            fold_seconds: vec![2.0; pearson.len()],
            epochs: if model == "gblup" { vec![] } else { vec![10.0, 30.0, 20.0][..pearson.len()].to_vec() },
            peak_rss_bytes: Some(50 << 20),
            inputs: json!({"pheno": {"path": "pheno.csv", "sha256": "e5dad51b211b3ad336a4"}}),
            pearson,
        }
    }

    #[test]
    fn report_pools_seeds_lists_skips_and_failures_and_draws_figures() {
        let out = tempfile::tempdir().unwrap();
        for d in ["cells/a", "cells/b", "cells/c"] {
            std::fs::create_dir_all(out.path().join(d)).unwrap();
            std::fs::write(
                out.path().join(d).join("predictions.csv"),
                "id,fold,observed,predicted,repeat\nx,1,1.0,0.8,1\ny,1,2.0,1.9,1\nz,2,0.5,0.7,1\n",
            )
            .unwrap();
        }
        let mut failed = cell("dlgwas", "flex", 1, vec![], "cells/d");
        failed.error = Some("genopred cv exited with 2: boom".into());
        let results = vec![
            cell("gblup", "cpu", 1, vec![0.5, 0.4, 0.6], "cells/a"),
            cell("dnngp", "flex", 1, vec![0.4, 0.5, 0.3], "cells/b"),
            cell("dnngp", "flex", 2, vec![0.6, 0.5, 0.7], "cells/c"),
            failed,
        ];
        let plan = Plan {
            suite: Some("paper".into()),
            description: "test suite".into(),
            models: vec!["gblup".into(), "dnngp".into(), "dlgwas".into()],
            backends: vec!["flex".into(), "wgpu".into()],
            datasets: vec![],
            folds: 3,
            folds_file: None,
            seeds: vec![1, 2],
            configs: BTreeMap::new(),
            extra: vec![],
            published: vec![crate::compare::Published {
                dataset: "wheat599".into(),
                trait_name: "yield_env1".into(),
                model: "gblup".into(),
                value: "0.480".into(),
                what: "marker BLUP".into(),
                source: "crossa2010".into(),
            }],
            commit: "0123456789ab".into(),
        };
        let skipped = vec![Skipped { backend: "wgpu".into(), reason: "no adapter".into() }];
        let env = json!({"cpu": "Test CPU", "cores": 2, "gpus": [], "backends": {"flex": "ok"}});
        write(out.path(), &plan, &env, &skipped, &results, &Timing { build_seconds: 60.0, cells_seconds: 30.0 })
            .unwrap();

        let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
        // dnngp's two seeds pooled: 6 folds, mean 0.5.
        let dnngp = md.lines().find(|l| l.starts_with("| dnngp | flex |")).expect("dnngp row");
        assert!(dnngp.contains("0.500 ± 0.141") && dnngp.contains("| 6 |") && dnngp.contains("20 (10–30)"), "{dnngp}");
        let gblup = md.lines().find(|l| l.starts_with("| gblup | cpu |")).expect("gblup row");
        assert!(gblup.contains("0.480 (marker BLUP; [crossa2010])") && gblup.contains("50 MiB"), "{gblup}");
        assert!(md.contains("**wgpu**: no adapter"));
        assert!(md.contains("dlgwas on flex, seed 1: genopred cv exited with 2: boom"));
        assert!(md.contains("cells run in 30 s (building the binaries took 60 s)"));
        for f in ["accuracy", "time", "observed-predicted"] {
            for ext in ["png", "svg"] {
                let path = out.path().join(format!("wheat599-yield_env1-{f}.{ext}"));
                assert!(path.is_file(), "{}", path.display());
            }
            assert!(md.contains(&format!("(wheat599-yield_env1-{f}.png)")));
        }
        let json: Value = serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(json["summary"].as_array().unwrap().len(), 2);
        assert_eq!(json["skipped"][0]["backend"], "wgpu");
        assert_eq!(json["cells"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.31), "0.3 s");
        assert_eq!(duration(42.0), "42 s");
        assert_eq!(duration(600.0), "10.0 min");
        assert_eq!(duration(4000.0), "1 h 07 min");
    }
}
