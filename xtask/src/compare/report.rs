//! The comparison report: `report.md` and `report.json` (the figures are `figures.rs`'s).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use genopred_core::metrics::mean;
use genopred_core::output::{format_duration as duration, write_atomic};
use genopred_core::records::{GenoHashes, Inputs};
use serde::Serialize;
use serde_json::json;

use super::differences::{BASELINE, Difference, differences};
use super::environment::Environment;
use super::figures::{difference_figure, figures_for};
use super::plan::{CellResult, Plan, Skipped, TaskRun, sanitize};
use super::rows::{Row, rows};

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

/// Where and how the fold tasks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// `local` or `slurm`.
    pub executor: String,
    /// Fold tasks at once (local executor).
    pub jobs: Option<usize>,
    /// Threads each fold task computed with.
    pub threads_per_job: usize,
    /// Slurm job ids of the arrays submitted for this output folder.
    pub slurm_jobs: Vec<String>,
}

/// Writes the report files into `out`; rows list models in `model_order` (the catalogue's).
#[allow(clippy::too_many_arguments)]
pub fn write(
    out: &Path,
    plan: &Plan,
    environment: &Environment,
    skipped: &[Skipped],
    results: &[CellResult],
    timing: &Timing,
    execution: &Execution,
    model_order: &[String],
) -> Result<()> {
    let rows = rows(results, model_order);
    let diffs = differences(&rows, results);
    let mut md = String::new();
    let seeds = plan.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let mut scheme = match &plan.folds_file {
        Some(f) => format!("folds from {}", f.display()),
        None => format!("{}-fold cross-validation", plan.folds),
    };
    let own: Vec<&str> = plan.datasets.iter().filter(|d| d.folds_file.is_some()).map(|d| d.name.as_str()).collect();
    if !own.is_empty() {
        scheme.push_str(&format!(" ({}: {} own folds)", own.join(", "), if own.len() > 1 { "their" } else { "its" }));
    }
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
    let mut builds: Vec<&str> = results.iter().filter_map(|r| r.from_build.as_deref()).collect();
    builds.sort_unstable();
    builds.dedup();
    for build in builds {
        let n = results.iter().filter(|r| r.from_build.as_deref() == Some(build)).count();
        writeln!(
            md,
            "**{n} cell(s) were made by another build, `{build}`**, and reused as the suite or \
             `--reuse-build` declares (marked in the task table); this build would rerun them \
             with `--rerun`.\n"
        )?;
    }
    writeln!(
        md,
        "Pearson r, MSE and NDCG@10 % are mean ± sd over the folds (of every seed); the test fold never \
         influences training, early stopping, scaling or PCA. Time is the wall time per fold (QC, \
         fit, prediction); peak memory is the largest peak resident set of the cell's `genopred cv` processes (one per fold task); epochs \
         are those run per fold (median, range). GBLUP has no deep-learning backend (`cpu`).\n"
    )?;
    let mut figures = Vec::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let key = (r.dataset.clone(), r.trait_name.clone());
        if !sections.contains(&key) {
            sections.push(key);
        }
    }
    // In the plan's order: datasets as listed, each dataset's traits as listed.
    let position = |(d, t): &(String, String)| {
        plan.datasets
            .iter()
            .position(|ds| &ds.name == d)
            .map(|i| (i, plan.datasets[i].traits.iter().position(|x| x == t).unwrap_or(usize::MAX)))
            .unwrap_or((usize::MAX, usize::MAX))
    };
    sections.sort_by_key(|s| position(s));
    for (dataset, trait_name) in &sections {
        let mine: Vec<&Row> = rows.iter().filter(|r| &r.dataset == dataset && &r.trait_name == trait_name).collect();
        writeln!(md, "## {dataset} · {trait_name}\n")?;
        if let Some(inputs) =
            results.iter().find(|r| &r.dataset == dataset && r.error.is_none()).and_then(|r| r.inputs.as_ref())
        {
            writeln!(md, "Data: {}\n", describe_inputs(inputs))?;
        }
        let published: Vec<_> =
            plan.published.iter().filter(|p| &p.dataset == dataset && &p.trait_name == trait_name).collect();
        writeln!(
            md,
            "| model | backend | Pearson r | MSE | NDCG@10 % | folds |{}",
            if published.is_empty() { "" } else { " published r |" }
        )?;
        writeln!(md, "|---|---|---|---|---|---|{}", if published.is_empty() { "" } else { "---|" })?;
        for r in &mine {
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
                "| {} | {} | {} | {} | {} | {} |{publ}",
                r.model,
                r.backend,
                pm(r.pearson_mean, r.pearson_sd, 3),
                pm(r.mse_mean, r.mse_sd, 3),
                pm(r.ndcg_mean, r.ndcg_sd, 3),
                r.folds
            )?;
        }
        writeln!(md, "\n**Time and memory.**\n")?;
        writeln!(md, "| model | backend | time / fold | peak memory | epochs | cells |\n|---|---|---|---|---|---|")?;
        for r in &mine {
            let epochs = match (r.epochs_median, r.epochs_min, r.epochs_max) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:.0} ({lo:.0}–{hi:.0})"),
                _ => "—".into(),
            };
            let mem = r.peak_rss_mib.map_or("—".into(), |m| format!("{m:.0} MiB"));
            // Each seed's cell: its own page where it has one (cells cached before pages existed
            // have none), else its folder.
            let cells: Vec<String> = results
                .iter()
                .filter(|c| r.holds(c))
                .map(|c| {
                    let page = format!("{}/report.html", c.dir);
                    let target = if out.join(&page).is_file() { page } else { format!("{}/", c.dir) };
                    format!("[seed {}]({target})", c.seed)
                })
                .collect();
            writeln!(
                md,
                "| {} | {} | {} | {mem} | {epochs} | {} |",
                r.model,
                r.backend,
                duration(r.seconds_per_fold),
                cells.join(", ")
            )?;
        }
        if !published.is_empty() {
            writeln!(md, "\nPublished numbers and their sources: `docs/published-results.md`.")?;
        }
        let stem = format!("{}-{}", sanitize(dataset), sanitize(trait_name));
        let mine_diffs: Vec<&Difference> =
            diffs.iter().filter(|d| &d.dataset == dataset && &d.trait_name == trait_name).collect();
        if !mine_diffs.is_empty() {
            difference_section(&mut md, &mine_diffs)?;
            match difference_figure(out, &stem, dataset, trait_name, &mine_diffs) {
                Ok((name, alt)) => {
                    writeln!(md, "![{alt}]({name}.png)\n")?;
                    figures.push(name);
                }
                Err(err) => writeln!(md, "The differences could not be drawn: {err:#}\n")?,
            }
        }
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
    // Trial datasets: every environment's accuracy, each model and environment model against
    // single-environment GBLUP on the same folds (`cargo xtask env-table`'s tables).
    for d in plan.datasets.iter().filter(|d| d.is_trial()) {
        let dirs: Vec<std::path::PathBuf> = results
            .iter()
            .filter(|r| r.dataset == d.name && r.error.is_none() && !r.pearson.is_empty())
            .map(|r| out.join(&r.dir))
            .collect();
        if dirs.is_empty() {
            continue;
        }
        writeln!(
            md,
            "## {} · per environment\n\nThe tables above give Pearson r within environment (per fold, the mean \
             over the fold's environments; the field's headline) and compare each model with GBLUP under the same \
             scheme and environment model. Here, each environment, and each model and environment model against \
             single-environment GBLUP (`gblup/single`) on the same folds.\n",
            d.name
        )?;
        match crate::envs::tables(&dirs, "gblup/single") {
            Ok(tables) => writeln!(md, "{tables}")?,
            Err(e) => writeln!(md, "The per-environment tables could not be made: {e:#}\n")?,
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
    // Where and with what it ran, after the results (the first screen shows the results).
    execution_section(&mut md, execution, results)?;
    environment_section(&mut md, environment)?;
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
            "| {} | {} | {} | {} | {} | {} | {}{} | [`{}`]({}/) |",
            c.dataset,
            c.trait_name,
            c.model,
            c.backend,
            c.seed,
            if c.error.is_some() { "failed".to_string() } else { format!("{:.3}", mean(&c.pearson)) },
            duration(c.wall_seconds),
            match (&c.from_build, c.cached) {
                (Some(build), _) => format!(" (cached, made by {build})"),
                (None, true) => " (cached)".to_string(),
                (None, false) => String::new(),
            },
            c.dir,
            c.dir
        )?;
    }

    let report = json!({
        "plan": plan,
        "environment": environment,
        "timing": timing,
        "execution": execution,
        "summary": rows,
        "differences": diffs,
        "skipped": skipped,
        "cells": results,
        "figures": figures,
    });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    // The same text as one self-contained page, each figure's SVG inlined in place of its PNG.
    let html = genopred_plot::html::page("genopred comparison", &md, |png| {
        let name = png.strip_suffix(".png")?;
        figures.iter().any(|f| f == name).then(|| std::fs::read_to_string(out.join(format!("{name}.svg"))).ok())?
    });
    write_atomic(&out.join("report.html"), html.as_bytes())?;
    Ok(())
}

/// The machine and versions the cells ran with.
fn environment_section(md: &mut String, env: &Environment) -> Result<()> {
    writeln!(md, "## Environment\n\n| | |\n|---|---|")?;
    writeln!(
        md,
        "| CPU | {} ({} cores{}) |",
        env.cpu,
        env.cores,
        env.memory.as_ref().map(|m| format!(", {m}")).unwrap_or_default()
    )?;
    let gpus = env.gpus.join("; ");
    writeln!(
        md,
        "| GPU adapters | {} |",
        if gpus.is_empty() { "none found by nvidia-smi or vulkaninfo" } else { &gpus }
    )?;
    if !env.vulkan_drivers.is_empty() {
        writeln!(md, "| Vulkan drivers installed | {} |", env.vulkan_drivers.join(", "))?;
    }
    for (name, info) in &env.backends {
        writeln!(md, "| backend {name} | {} |", info.replace('\n', "; "))?;
    }
    // A version not found reads as report.json writes it.
    let found = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
    writeln!(md, "| OS | {} |", env.os)?;
    writeln!(md, "| genopred | {} (commit {}) |", env.genopred, env.git_commit)?;
    writeln!(md, "| burn, faer | {}, {} |", found(&env.burn), found(&env.faer))?;
    writeln!(md, "| rustc | {} |", found(&env.rustc))?;
    if let Some(t) = &env.threads {
        writeln!(md, "| RAYON_NUM_THREADS | {t} |")?;
    }
    writeln!(md)?;
    Ok(())
}

/// The paired differences of one dataset and trait against the baseline (and of tuned rows
/// against untuned ones), as tables.
fn difference_section(md: &mut String, diffs: &[&Difference]) -> Result<()> {
    let (tuning, baseline): (Vec<&Difference>, Vec<&Difference>) = diffs.iter().partition(|d| d.is_tuning());
    if !baseline.is_empty() {
        writeln!(
            md,
            "\n**Against {BASELINE}, fold by fold.** Mean difference in Pearson r on the same test folds \
             (same seeds), with a 95 % interval from the corrected resampled t-test (Nadeau & Bengio 2003): \
             the folds share most of their training lines, so the plain paired t-test would be far too \
             confident. A difference is *distinguishable* when its interval excludes zero.\n"
        )?;
        difference_table(md, &baseline)?;
    }
    if !tuning.is_empty() {
        writeln!(
            md,
            "\n**Tuned against untuned, fold by fold.** Each tuned model's Pearson r minus its own \
             untuned r on the same test folds (the search saw only each fold's training lines), with \
             the same corrected interval.\n"
        )?;
        difference_table(md, &tuning)?;
    }
    Ok(())
}

fn difference_table(md: &mut String, diffs: &[&Difference]) -> Result<()> {
    writeln!(
        md,
        "| model | backend | against | Δ r | 95 % interval | p | pairs | |\n|---|---|---|---|---|---|---|---|"
    )?;
    for d in diffs {
        let s = &d.stats;
        writeln!(
            md,
            "| {} | {} | {} | {:+.3} | {:+.3} to {:+.3} | {:.3} | {} | {} |",
            d.model,
            d.backend,
            d.baseline,
            s.mean,
            s.ci_low,
            s.ci_high,
            s.p,
            s.n,
            if d.distinguishable { "**distinguishable**" } else { "not distinguishable" }
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// Where the fold tasks ran: the executor, Slurm's job ids, tasks per node, and per task its
/// node and wall time (in a folded table).
fn execution_section(md: &mut String, e: &Execution, results: &[CellResult]) -> Result<()> {
    writeln!(md, "## Execution\n")?;
    let how = match (e.executor.as_str(), e.jobs) {
        ("slurm", _) => format!(
            "Slurm job array{} {}",
            if e.slurm_jobs.len() > 1 { "s" } else { "" },
            if e.slurm_jobs.is_empty() { "(none submitted from this folder)".into() } else { e.slurm_jobs.join(", ") }
        ),
        (_, Some(j)) => format!("this machine, {j} fold task(s) at once"),
        _ => "this machine".into(),
    };
    writeln!(md, "Executor **{}**: {how}; {} thread(s) per fold task.\n", e.executor, e.threads_per_job)?;
    let tasks: Vec<(&CellResult, &TaskRun)> =
        results.iter().flat_map(|c| c.tasks.iter().map(move |t| (c, t))).collect();
    if tasks.is_empty() {
        return Ok(());
    }
    let mut nodes: std::collections::BTreeMap<&str, (usize, f64)> = std::collections::BTreeMap::new();
    for (_, t) in &tasks {
        let n = nodes.entry(t.node.as_str()).or_default();
        n.0 += 1;
        n.1 += t.seconds;
    }
    writeln!(md, "| node | tasks | task time |\n|---|---|---|")?;
    for (node, (n, secs)) in &nodes {
        writeln!(md, "| {node} | {n} | {} |", duration(*secs))?;
    }
    writeln!(md, "\n<details><summary>Every fold task ({})</summary>\n", tasks.len())?;
    writeln!(md, "| cell | fold | node | wall | threads | executor | Slurm id |\n|---|---|---|---|---|---|---|")?;
    for (c, t) in &tasks {
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            c.dir,
            t.fold,
            t.node,
            duration(t.seconds),
            t.threads,
            t.executor,
            t.slurm_job.as_deref().unwrap_or("—")
        )?;
    }
    writeln!(md, "\n</details>\n")?;
    Ok(())
}

fn describe_inputs(inputs: &Inputs) -> String {
    let short = |h: &str| h[..h.len().min(16)].to_string();
    let hashes = match &inputs.geno.sha256 {
        GenoHashes::File(h) => format!("sha256 {}", short(h)),
        GenoHashes::Plink { bed, bim, fam } => {
            format!("bed {}, bim {}, fam {}", short(bed), short(bim), short(fam))
        }
    };
    format!(
        "`{}` ({hashes}…); `{}` (sha256 {}…)",
        inputs.geno.path.display(),
        inputs.pheno.path.display(),
        short(&inputs.pheno.sha256)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use genopred_core::readers::GenotypeFormat;
    use genopred_core::records::{FileInput, GenoInput};
    use serde_json::Value;

    use super::*;
    use crate::compare::plan::Published;

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
            from_build: None,
            wall_seconds: 10.0,
            error: None,
            mse: pearson.iter().map(|r| 1.0 - r).collect(),
            ndcg: pearson.iter().map(|r| 0.5 + r / 2.0).collect(),
            fold_seconds: vec![2.0; pearson.len()],
            epochs: if model == "gblup" { vec![] } else { vec![10.0, 30.0, 20.0][..pearson.len()].to_vec() },
            peak_rss_bytes: Some(50 << 20),
            tasks: vec![TaskRun {
                repeat: 1,
                fold: 1,
                node: "node7".into(),
                seconds: 2.5,
                exit_code: 0,
                threads: 1,
                executor: "slurm".into(),
                slurm_job: Some("41_3".into()),
            }],
            inputs: Some(Inputs {
                geno: GenoInput {
                    path: "wheat599.bed".into(),
                    format: GenotypeFormat::Plink,
                    sha256: GenoHashes::Plink {
                        bed: "0a1b2c3d4e5f60718293".into(),
                        bim: "1a1b2c3d4e5f60718293".into(),
                        fam: "2a1b2c3d4e5f60718293".into(),
                    },
                    skipped: None,
                },
                pheno: FileInput { path: "pheno.csv".into(), sha256: "e5dad51b211b3ad336a4".into() },
            }),
            pearson,
        }
    }

    #[test]
    fn report_pools_seeds_lists_skips_and_failures_and_draws_figures() {
        let out = tempfile::tempdir().unwrap();
        for d in ["cells/a", "cells/b", "cells/c"] {
            std::fs::create_dir_all(out.path().join(d)).unwrap();
            if d == "cells/c" {
                std::fs::write(out.path().join(d).join("report.html"), "<html></html>").unwrap();
            }
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
            tuning: None,
            published: vec![Published {
                dataset: "wheat599".into(),
                trait_name: "yield_env1".into(),
                model: "gblup".into(),
                value: "0.480".into(),
                what: "marker BLUP".into(),
                source: "crossa2010".into(),
            }],
            commit: "0123456789ab".into(),
            reuse_builds: Vec::new(),
        };
        let skipped = vec![Skipped { backend: "wgpu".into(), reason: "no adapter".into() }];
        let env = Environment {
            cpu: "Test CPU".into(),
            cores: 2,
            backends: [("flex".to_string(), "ok".to_string())].into(),
            ..Environment::default()
        };
        let order: Vec<String> = ["gblup", "dnngp", "deepgs", "dlgwas", "mlp"].map(String::from).to_vec();
        let timing = Timing { build_seconds: 60.0, cells_seconds: 30.0 };
        let execution =
            Execution { executor: "slurm".into(), jobs: None, threads_per_job: 1, slurm_jobs: vec!["41".into()] };
        write(out.path(), &plan, &env, &skipped, &results, &timing, &execution, &order).unwrap();

        let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
        // dnngp's two seeds pooled: 6 folds, mean 0.5.
        let rows_of = |start: &str| md.lines().filter(|l| l.starts_with(start)).collect::<Vec<_>>();
        let [dnngp, dnngp_time, ..] = rows_of("| dnngp | flex |")[..] else { panic!("two dnngp rows:\n{md}") };
        assert!(dnngp.contains("0.500 ± 0.141") && dnngp.contains("| 6 |"), "{dnngp}");
        assert!(
            dnngp_time.contains("20 (10–30)")
                && dnngp_time.contains("| [seed 1](cells/b/), [seed 2](cells/c/report.html) |"),
            "{dnngp_time}"
        );
        let [gblup, gblup_time, ..] = rows_of("| gblup | cpu |")[..] else { panic!("two gblup rows:\n{md}") };
        assert!(gblup.contains("0.480 (marker BLUP; [crossa2010])"), "{gblup}");
        assert!(gblup_time.contains("50 MiB"), "{gblup_time}");
        // Rows follow the catalogue's order (gblup first), not the alphabet.
        let at = |row: &str| md.find(row).unwrap();
        assert!(at("| gblup | cpu |") < at("| dnngp | flex |"));
        assert!(md.contains(
            "Data: `wheat599.bed` (bed 0a1b2c3d4e5f6071, bim 1a1b2c3d4e5f6071, fam 2a1b2c3d4e5f6071…); \
             `pheno.csv` (sha256 e5dad51b211b3ad3…)"
        ));
        assert!(md.contains("**wgpu**: no adapter"));
        assert!(md.contains("dlgwas on flex, seed 1: genopred cv exited with 2: boom"));
        assert!(md.contains("cells run in 30 s (building the binaries took 60 s)"));
        assert!(md.contains("Executor **slurm**: Slurm job array 41; 1 thread(s) per fold task."), "{md}");
        assert!(md.contains("| node7 | 4 | 10 s |"), "{md}");
        assert!(md.contains("| `cells/a` | 1 | node7 | 2.5 s | 1 | slurm | 41_3 |"), "{md}");
        for f in ["accuracy", "time", "observed-predicted"] {
            for ext in ["png", "svg"] {
                let path = out.path().join(format!("wheat599-yield_env1-{f}.{ext}"));
                assert!(path.is_file(), "{}", path.display());
            }
            assert!(md.contains(&format!("(wheat599-yield_env1-{f}.png)")));
        }
        // dnngp against gblup on seed 1's three folds (seed 2 has no gblup cell): −0.1, +0.1, −0.3.
        let diff =
            md.lines().find(|l| l.starts_with("| dnngp | flex | gblup · cpu | -0.100 |")).expect("difference row");
        assert!(diff.contains("| 3 | not distinguishable |"), "{diff}");
        assert!(md.contains("**Against gblup, fold by fold.**"));
        assert!(out.path().join("wheat599-yield_env1-differences.svg").is_file());
        assert!(md.contains("(wheat599-yield_env1-differences.png)"));
        // The page: the same text, the figures inlined (none left as files to fetch).
        let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
        assert!(html.contains("<td>dnngp</td>") && html.contains("<a href=\"cells/b/\">seed 1</a>"), "{html}");
        assert!(html.contains("<a href=\"cells/a/\"><code>cells/a</code></a>"), "{html}");
        assert_eq!(html.matches("<span class=\"figure\"").count(), 4, "{html}");
        assert_eq!(html.matches("<svg ").count(), 4);
        assert!(html.contains("Test CPU") && html.contains("Time and memory"));
        assert!(!html.contains("<img") && !html.contains(".png\"") && !html.contains("not available"));
        let json: Value = serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(json["differences"][0]["n"], 3);
        assert_eq!(json["differences"][0]["seeds"], serde_json::json!([1]));
        assert_eq!(json["summary"].as_array().unwrap().len(), 2);
        assert_eq!(json["skipped"][0]["backend"], "wgpu");
        assert_eq!(json["cells"].as_array().unwrap().len(), 4);
        assert_eq!(json["execution"]["slurm_jobs"][0], "41");
        assert_eq!(json["cells"][0]["tasks"][0]["node"], "node7");
    }
}
