//! `report.html` of a `genopred cv` run: the run's accuracy, its folds, two figures, time and
//! memory, and where it ran, in one self-contained page (genopred-plot's `html`), beside
//! `summary.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use genopred_core::evaluation::FoldResult;
use genopred_core::metrics::Summary;
use genopred_core::output::{format_duration as duration, write_atomic};
use genopred_core::records::{FoldScheme, GenoHashes, RunSummary};
use genopred_plot::{Group, Panel, fold_accuracy_svg, html, observed_predicted_svg};

/// The page's file name.
pub const FILE: &str = "report.html";

/// Writes `out/report.html` for a finished run. Figures that cannot be drawn (no finite score)
/// are named as missing on the page; they never stop the run.
pub fn write(out: &Path, summary: &RunSummary) -> Result<()> {
    let (md, figures) = markdown(summary)?;
    let page = html::page(&format!("genopred cv: {} on {}", summary.model, summary.trait_name), &md, |name| {
        figures.iter().find(|(n, _)| n == name).and_then(|(_, svg)| svg.clone())
    });
    write_atomic(&out.join(FILE), page.as_bytes())?;
    Ok(())
}

/// A figure's address in the Markdown and its SVG (none when it could not be drawn).
type Figure = (String, Option<String>);

/// The report's Markdown, and its figures.
fn markdown(s: &RunSummary) -> Result<(String, Vec<Figure>)> {
    let p = &s.provenance;
    let mut md = String::new();
    let tuned = s.folds.iter().any(|f| f.tuning.is_some());
    writeln!(md, "# genopred cv: {} on {}\n", text(&s.model), text(&s.trait_name))?;
    let scheme = match &p.scheme {
        FoldScheme::Kfold { k, repeats: 1 } => format!("{k}-fold cross-validation"),
        FoldScheme::Kfold { k, repeats } => format!("{k}-fold cross-validation, {repeats} repeats"),
        FoldScheme::File { path, folds, .. } => format!("{folds} folds from `{}`", code(&path.display().to_string())),
        FoldScheme::Grouped { column, folds } => format!("leave one group out by `{}` ({folds} groups)", code(column)),
        FoldScheme::TrialsFile { path, folds, env_column, env_model, .. } => format!(
            "{folds} folds of the records of `{}` from `{}`, environments {env_model}",
            code(env_column),
            code(&path.display().to_string())
        ),
        FoldScheme::Trials { scheme, k, repeats, env_column, env_model, .. } => format!(
            "{scheme:?} over the records of `{}` ({k} folds, {repeats} repeat(s)), environments {env_model}",
            code(env_column)
        ),
    };
    // What of each fold's fit could have seen its test lines, and did not.
    let mut steps = vec!["QC", "scaling"];
    if s.folds.iter().any(|f| f.fit.epochs_run.is_some()) {
        steps.push("early stopping");
    }
    if tuned {
        steps.push("the search");
    }
    let last = steps.pop().unwrap_or_default();
    writeln!(
        md,
        "{} lines with a value for the trait, {} markers; {scheme}, seed {}; backend {}{}. \
         Each fold's {} and {last} saw only its training lines.\n",
        s.n_samples,
        s.n_markers,
        s.seed,
        text(&p.backend),
        if tuned { "; settings tuned per fold by a nested search (`tuning.csv`)" } else { "" },
        steps.join(", ")
    )?;

    writeln!(md, "## Accuracy\n")?;
    writeln!(md, "| metric | mean ± sd over folds | pooled predictions |\n|---|---|---|")?;
    let m = &s.metrics;
    let pooled = &s.pooled;
    let ndcg = format!("NDCG@{:.0} %", p.options.ndcg_top * 100.0);
    for (name, over, all) in [
        ("Pearson r", &m.pearson, &pooled.pearson),
        ("Spearman ρ", &m.spearman, &pooled.spearman),
        ("MSE", &m.mse, &pooled.mse),
        ("MAE", &m.mae, &pooled.mae),
        ("R²", &m.r2, &pooled.r2),
        (ndcg.as_str(), &m.ndcg, &pooled.ndcg),
    ] {
        writeln!(md, "| {name} | {} | {} |", pm(over), number(all.mean))?;
    }
    writeln!(md, "\n## Folds\n")?;
    writeln!(
        md,
        "| repeat | fold | train | test | Pearson r | MSE | {ndcg} | time | epochs |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    for f in &s.folds {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            f.repeat,
            text(&f.label),
            f.n_train,
            f.n_test,
            number(f.metrics.pearson),
            number(f.metrics.mse),
            number(f.metrics.ndcg),
            duration(f.seconds),
            f.fit.epochs_run.map_or("—".into(), |e| e.to_string())
        )?;
    }
    let mut figures = Vec::new();
    writeln!(md)?;
    for (name, alt, svg) in [
        ("accuracy.png", "Pearson r per fold", accuracy_figure(s)),
        ("observed-predicted.png", "Observed against predicted on the test folds", scatter_figure(s)),
    ] {
        writeln!(md, "![{alt}]({name})\n")?;
        figures.push((name.to_string(), svg));
    }

    writeln!(md, "## Time and memory\n\n| | |\n|---|---|")?;
    writeln!(md, "| wall time of the run | {} |", duration(p.wall_seconds))?;
    let per_fold: Vec<f64> = s.folds.iter().map(|f| f.seconds).collect();
    writeln!(md, "| time per fold (QC, fit, prediction) | {} |", time_range(&per_fold))?;
    writeln!(
        md,
        "| peak memory | {} |",
        match (p.peak_rss_bytes, p.bytes_per_genotype) {
            (Some(b), Some(per)) => format!("{:.0} MiB ({per:.1} bytes per genotype)", b as f64 / (1 << 20) as f64),
            (Some(b), None) => format!("{:.0} MiB", b as f64 / (1 << 20) as f64),
            _ => "not measured".into(),
        }
    )?;
    if let Some(bytes) = p.genotype_bytes {
        writeln!(md, "| genotypes held in memory | {:.1} MiB |", bytes as f64 / (1 << 20) as f64)?;
    }
    if let Some(par) = &p.parallelism {
        writeln!(md, "| folds at once × threads each | {} × {} |", par.jobs, par.threads_per_job)?;
    }
    // Models that compute REML more than one way (GBLUP) say which ran in their fit report.
    let methods: std::collections::BTreeMap<&str, usize> =
        s.folds.iter().filter_map(|f| f.fit.details.get("method")?.as_str()).fold(Default::default(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    if !methods.is_empty() {
        let list: Vec<String> = methods.iter().map(|(k, n)| format!("{} ({n} folds)", text(k))).collect();
        writeln!(md, "| REML computation | {} |", list.join(", "))?;
    }
    if p.resumed_folds > 0 {
        writeln!(md, "| folds read back from an earlier run | {} |", p.resumed_folds)?;
    }

    writeln!(md, "\n## Data and environment\n\n| | |\n|---|---|")?;
    let geno = &p.inputs.geno;
    let hash = match &geno.sha256 {
        GenoHashes::File(h) => short(h),
        GenoHashes::Plink { bed, .. } => format!("bed {}", short(bed)),
    };
    writeln!(md, "| genotypes | `{}` (sha256 {hash}…) |", code(&geno.path.display().to_string()))?;
    writeln!(
        md,
        "| phenotypes | `{}` (sha256 {}…) |",
        code(&p.inputs.pheno.path.display().to_string()),
        short(&p.inputs.pheno.sha256)
    )?;
    let mt = &p.matching;
    writeln!(
        md,
        "| lines | {} genotyped, {} phenotyped, {} in both, {} without a value, {} removed by QC |",
        mt.genotyped,
        mt.phenotyped,
        mt.matched,
        mt.missing_trait,
        p.samples_removed_by_qc.len()
    )?;
    writeln!(md, "| genopred | {} |", text(&p.genopred_version))?;
    writeln!(md, "| backend | {} |", text(&p.backend))?;
    writeln!(md, "| machine | {} |", text(&machine()))?;
    writeln!(md, "| command | `{}` |", code(&p.command.join(" ")))?;

    writeln!(md, "\n## Files\n")?;
    let mut files = vec![
        ("predictions.csv", "every test prediction"),
        ("summary.json", "this page's numbers, per fold, with provenance"),
        ("run.json", "the settings a resumed run must match"),
        ("config.toml", "the model's resolved settings"),
        ("folds/", "each fold's record and training history"),
        ("complete.json", "the files above with their SHA-256, written last: they are one run's, whole"),
    ];
    if tuned {
        files.extend([("tuning.csv", "each fold's chosen settings"), ("trials.csv", "every trial of the searches")]);
    }
    for (file, what) in files {
        writeln!(md, "- [`{file}`]({file}): {what}")?;
    }
    Ok((md, figures))
}

/// One column per repeat of Pearson r per fold.
fn accuracy_figure(s: &RunSummary) -> Option<String> {
    let mut repeats: Vec<usize> = s.folds.iter().map(|f| f.repeat).collect();
    repeats.dedup();
    let groups: Vec<Group> = repeats
        .iter()
        .map(|&r| {
            let folds: Vec<&FoldResult> = s.folds.iter().filter(|f| f.repeat == r).collect();
            Group {
                label: if repeats.len() > 1 { format!("{} · repeat {r}", s.model) } else { s.model.clone() },
                values: folds.iter().map(|f| f.metrics.pearson).collect(),
                keys: vec![],
            }
        })
        .collect();
    fold_accuracy_svg(&groups, &format!("{} {}: Pearson r per fold", s.model, s.trait_name)).ok()
}

/// The first repeat's test predictions.
fn scatter_figure(s: &RunSummary) -> Option<String> {
    let first = s.folds.first()?.repeat;
    let points = s
        .folds
        .iter()
        .filter(|f| f.repeat == first)
        .flat_map(|f| &f.predictions)
        .map(|p| (p.observed, p.predicted))
        .collect();
    let panel = Panel { label: s.model.clone(), points };
    observed_predicted_svg(&[panel], &format!("{} {}: test-fold predictions", s.model, s.trait_name)).ok()
}

/// CPU model and logical cores, from /proc/cpuinfo where there is one.
fn machine() -> String {
    let cpu = genopred_core::records::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} logical cores, {}", std::env::consts::OS)
}

fn pm(s: &Summary) -> String {
    match (s.mean.is_finite(), s.sd.is_finite()) {
        (false, _) => "—".into(),
        (true, false) => format!("{:.3}", s.mean),
        (true, true) => format!("{:.3} ± {:.3}", s.mean, s.sd),
    }
}

fn number(v: f64) -> String {
    if v.is_finite() { format!("{v:.3}") } else { "—".into() }
}

fn time_range(seconds: &[f64]) -> String {
    let lo = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = seconds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match seconds.len() {
        0 => "—".into(),
        1 => duration(lo),
        n => format!(
            "{} on average ({} to {})",
            duration(seconds.iter().sum::<f64>() / n as f64),
            duration(lo),
            duration(hi)
        ),
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// Free text for Markdown: characters that would start markup, or end a table cell, escaped.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>|#!".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for a code span inside a table cell: backticks cannot be escaped there, so they become
/// quotes; `|` must be.
fn code(s: &str) -> String {
    s.replace('`', "'").replace('|', "\\|")
}

/// Writes `out/report.html` for a finished multi-environment run (`genopred cv --env`): the
/// headline accuracy within environments, each environment, the variance components and the
/// folds.
pub fn write_trials(out: &Path, s: &genopred_core::records::TrialRunSummary) -> Result<()> {
    let p = &s.provenance;
    let mut md = String::new();
    writeln!(md, "# genopred cv: {} on {}, environments {}\n", text(&s.model), text(&s.trait_name), s.env_model)?;
    let scheme = match &p.scheme {
        FoldScheme::Trials { scheme, k, repeats, .. } => format!("{scheme:?}, {k} folds, {repeats} repeat(s)"),
        FoldScheme::TrialsFile { path, folds, .. } => {
            format!("{folds} folds from `{}`", code(&path.display().to_string()))
        }
        other => format!("{other:?}"),
    };
    writeln!(
        md,
        "{} records of {} lines in {} environments (column `{}`), {} markers; {scheme}; seed {}. Each fold's QC, \
         kernels, fixed effects and variance components saw only its training records.\n",
        s.n_records,
        s.n_lines,
        s.n_envs,
        code(&s.env_column),
        s.n_markers,
        s.seed
    )?;
    writeln!(md, "## Accuracy\n")?;
    let w = &s.within_env_pearson;
    writeln!(
        md,
        "Pearson r within environment, averaged over each fold's environments: **{:.3} ± {:.3}** over {} folds \
         (pooled over environments: {:.3} ± {:.3}, inflated by the environments' means).\n",
        w.mean, w.sd, w.n, s.pooled.pearson.mean, s.pooled.pearson.sd
    )?;
    writeln!(md, "| environment | test records | folds | Pearson r | Spearman rho | MSE |\n|---|---|---|---|---|---|")?;
    for e in &s.environments {
        let m = &e.metrics;
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            text(&e.env),
            e.n_test,
            e.n_folds,
            ms(&m.pearson),
            ms(&m.spearman),
            ms(&m.mse)
        )?;
    }
    // Variance components, when the fit has them (the kernel models' across and G×E forms).
    let mut components: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for f in &s.folds {
        for c in f.fit.get("components").and_then(|c| c.as_array()).into_iter().flatten() {
            let (Some(name), Some(v)) =
                (c.get("name").and_then(|n| n.as_str()), c.get("sigma2").and_then(|v| v.as_f64()))
            else {
                continue;
            };
            let se = c.get("se").and_then(|v| v.as_f64());
            match components.iter_mut().find(|(n, _, _)| n == name) {
                Some((_, vs, ses)) => {
                    vs.push(v);
                    ses.extend(se);
                }
                None => components.push((name.to_string(), vec![v], se.into_iter().collect())),
            }
        }
    }
    if !components.is_empty() {
        writeln!(md, "\n## Variance components\n")?;
        writeln!(md, "| component | estimate, mean ± sd over folds | mean standard error |\n|---|---|---|")?;
        for (name, vs, ses) in &components {
            let se = if ses.is_empty() {
                "—".to_string()
            } else {
                format!("{:.4}", ses.iter().sum::<f64>() / ses.len() as f64)
            };
            writeln!(md, "| {} | {} | {se} |", text(name), ms(&Summary::of(vs.iter().copied())))?;
        }
    }
    writeln!(md, "\n## Folds\n")?;
    writeln!(
        md,
        "| repeat | fold | training records | test records | r within environment | time |\n|---|---|---|---|---|---|"
    )?;
    for f in &s.folds {
        writeln!(
            md,
            "| {} | {} | {} | {} | {:.3} | {} |",
            f.repeat,
            text(&f.label),
            f.n_train,
            f.n_test,
            f.within_env_pearson,
            duration(f.seconds)
        )?;
    }
    writeln!(md, "\n## Where it ran\n")?;
    writeln!(md, "{}; {}; `{}`.", text(&p.genopred_version), duration(p.wall_seconds), code(&p.command.join(" ")))?;
    let page = html::page(&format!("genopred cv: {} on {}", s.model, s.trait_name), &md, |_| None);
    write_atomic(&out.join(FILE), page.as_bytes())?;
    Ok(())
}

/// `mean ± sd` with three decimals.
fn ms(s: &Summary) -> String {
    format!("{:.3} ± {:.3}", s.mean, s.sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_stays_text() {
        assert_eq!(text("a|b*c_[d]<e>"), "a\\|b\\*c\\_\\[d\\]\\<e\\>");
        assert_eq!(code("x`y|z"), "x'y\\|z");
        assert_eq!(time_range(&[1.0, 3.0]), "2.0 s on average (1.0 s to 3.0 s)");
        assert_eq!(time_range(&[]), "—");
    }
}
