//! `cargo xtask env-table [--baseline MODEL/ENV_MODEL] DIR...`: the accuracy tables of
//! multi-environment runs (`genopred cv --env`, their `summary.json`) side by side, per scheme:
//! Pearson r within each environment (mean ± sd over folds × seeds) and the paired difference of
//! each run against the baseline on the same folds (the corrected resampled t interval of
//! Nadeau & Bengio 2003, as `compare` reports it). Markdown on stdout, for the docs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use genopred_core::paired::corrected_paired_t;
use genopred_core::records::{FoldScheme, TrialRunSummary};

/// One configuration (model and environment model) under one scheme: per environment, the r of
/// each fold keyed by (seed, repeat, fold).
#[derive(Default)]
struct Config {
    per_env: BTreeMap<String, BTreeMap<(u64, usize, usize), f64>>,
    within: BTreeMap<(u64, usize, usize), f64>,
    test_train: Vec<f64>,
    seeds: Vec<u64>,
}

/// Runs the command on `args` (after `env-table`).
pub fn run(args: &[String]) -> Result<()> {
    let mut baseline = "gblup/single".to_string();
    let mut dirs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--baseline" => baseline = it.next().context("--baseline needs MODEL/ENV_MODEL")?.clone(),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    if dirs.is_empty() {
        bail!("usage: cargo xtask env-table [--baseline MODEL/ENV_MODEL] RUN_DIR...");
    }
    print!("{}", tables(&dirs, &baseline)?);
    Ok(())
}

/// The Markdown tables of the runs in `dirs`, per scheme, with paired differences against
/// `baseline` (`MODEL/ENV_MODEL`) where a run of it is among them (`cargo xtask compare`'s
/// report uses them for its trial datasets).
pub fn tables(dirs: &[PathBuf], baseline: &str) -> Result<String> {
    use std::fmt::Write;
    let mut md = String::new();
    // scheme → configuration label → folds.
    let mut tables: BTreeMap<String, BTreeMap<String, Config>> = BTreeMap::new();
    let mut envs: Vec<String> = Vec::new();
    for dir in dirs {
        let s = TrialRunSummary::read(&dir.join("summary.json"))
            .with_context(|| format!("{}: not a finished multi-environment run", dir.display()))?;
        let scheme = match &s.provenance.scheme {
            FoldScheme::Trials { scheme, .. } => format!("{scheme:?}").to_uppercase(),
            FoldScheme::TrialsFile { path, .. } => format!("folds of {}", path.display()),
            other => bail!("{}: not a multi-environment run ({other:?})", dir.display()),
        };
        let label = format!("{}/{}", s.model, s.env_model);
        let config = tables.entry(scheme).or_default().entry(label).or_default();
        config.seeds.push(s.seed);
        for f in &s.folds {
            let key = (s.seed, f.repeat, f.fold);
            config.within.insert(key, f.within_env_pearson);
            config.test_train.push(f.n_test as f64 / f.n_train.max(1) as f64);
            for e in &f.environments {
                if !envs.contains(&e.env) {
                    envs.push(e.env.clone());
                }
                config.per_env.entry(e.env.clone()).or_default().insert(key, e.metrics.pearson);
            }
        }
    }
    for (scheme, configs) in &tables {
        writeln!(md, "### {scheme}\n")?;
        let mut header = String::from("| model | seeds |");
        envs.iter().for_each(|e| header.push_str(&format!(" {e} |")));
        header.push_str(" within environment |");
        writeln!(md, "{header}\n|{}", "---|".repeat(envs.len() + 3))?;
        let mean_sd = |v: &BTreeMap<(u64, usize, usize), f64>| {
            let s = genopred_core::metrics::Summary::of(v.values().copied());
            if s.sd.is_finite() { format!("{:.3} ± {:.3}", s.mean, s.sd) } else { format!("{:.3}", s.mean) }
        };
        for (label, c) in configs {
            let mut seeds = c.seeds.clone();
            seeds.sort_unstable();
            seeds.dedup();
            let mut row = format!("| {label} | {} |", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
            for e in &envs {
                row.push_str(&format!(" {} |", c.per_env.get(e).map(mean_sd).unwrap_or_default()));
            }
            row.push_str(&format!(" {} |", mean_sd(&c.within)));
            writeln!(md, "{row}")?;
        }
        let Some(base) = configs.get(baseline) else {
            writeln!(md, "\n(no {baseline} run under {scheme}: no paired differences)\n")?;
            continue;
        };
        writeln!(md, "\nΔ r against {baseline} on the same folds (95 % interval):\n")?;
        writeln!(md, "{header}\n|{}", "---|".repeat(envs.len() + 3))?;
        for (label, c) in configs.iter().filter(|(l, _)| l.as_str() != baseline) {
            let ratio = c.test_train.iter().sum::<f64>() / c.test_train.len().max(1) as f64;
            let diff = |a: &BTreeMap<(u64, usize, usize), f64>, b: &BTreeMap<(u64, usize, usize), f64>| {
                let d: Vec<f64> = a.iter().filter_map(|(k, v)| b.get(k).map(|w| v - w)).collect();
                match corrected_paired_t(&d, ratio) {
                    Some(p) => format!("{:+.3} ({:+.3}, {:+.3})", p.mean, p.ci_low, p.ci_high),
                    None => "—".into(),
                }
            };
            let mut seeds = c.seeds.clone();
            seeds.sort_unstable();
            seeds.dedup();
            let mut row = format!("| {label} | {} |", seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
            for e in &envs {
                let cell = match (c.per_env.get(e), base.per_env.get(e)) {
                    (Some(a), Some(b)) => diff(a, b),
                    _ => "—".into(),
                };
                row.push_str(&format!(" {cell} |"));
            }
            row.push_str(&format!(" {} |", diff(&c.within, &base.within)));
            writeln!(md, "{row}")?;
        }
        writeln!(md)?;
    }
    Ok(md)
}
