//! `genopred cv`: k-fold, repeated, file-defined or grouped cross-validation of one model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use genopred_core::Dataset;
use genopred_core::cv::{self, Fold};
use genopred_core::evaluation::{run_fold, summarise};
use genopred_core::output::{sha256_file, write_atomic};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::backend;
use crate::inputs::{FitArgs, LoadedData};
use crate::registry::{self, BuildOptions};
use crate::report::{RunSummary, read_fold, table, write_fold, write_history, write_predictions, write_summary};

/// Arguments of `genopred cv`.
#[derive(Debug, Args)]
pub struct CvArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Number of folds of k-fold cross-validation.
    #[arg(long, default_value_t = 10, conflicts_with_all = ["folds_file", "group_by"])]
    folds: usize,
    /// Read the folds from a file with columns `id,fold` instead.
    #[arg(long, value_name = "FILE", conflicts_with = "group_by")]
    folds_file: Option<PathBuf>,
    /// Leave-one-group-out folds from this phenotype column (family, tester, population ...).
    #[arg(long, value_name = "COLUMN")]
    group_by: Option<String>,
    /// Repeat k-fold with independent shuffles.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// NDCG's k as a fraction of each test fold.
    #[arg(long, default_value_t = 0.1)]
    ndcg_top: f64,
    /// Run only these folds (1-based; repeatable), e.g. to spread one cross-validation over
    /// several processes or machines. The folds are the same as in the full run.
    #[arg(long, value_name = "N")]
    only_fold: Vec<usize>,
    /// Continue an interrupted run in DIR: folds already finished there are read back instead of
    /// rerun, provided DIR was started with the same data, model, settings and seed. The results
    /// equal those of an uninterrupted run.
    #[arg(long)]
    resume: bool,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs the cross-validation and writes the results.
pub fn run(args: &CvArgs) -> Result<()> {
    let started = Instant::now();
    let entry = registry::find(&args.fit.model)?;
    let backend_name = args.fit.backend()?;
    let device = backend::device(&backend_name)?;
    let build = BuildOptions { config: args.fit.config.as_deref(), device: &device };
    let built = (entry.build)(&build)
        .with_context(|| format!("configuring model {}{}", entry.name, args.fit.config_origin()))?;
    if args.fit.pheno.pheno.is_none() {
        bail!("--pheno is required for cross-validation");
    }
    if args.repeats > 1 && (args.folds_file.is_some() || args.group_by.is_some()) {
        bail!("--repeats applies to k-fold only; folds from a file or from groups are fixed");
    }
    if !(args.ndcg_top > 0.0 && args.ndcg_top <= 1.0) {
        bail!("--ndcg-top must be within (0, 1], got {}", args.ndcg_top);
    }
    let options = args.fit.options(args.ndcg_top)?;
    let qc = options.qc;

    let LoadedData { dataset, matched, read_report, pheno, removed } =
        args.fit.load(qc.max_sample_missing, args.group_by.as_deref())?;

    let (mut folds, scheme) = make_folds(args, &dataset)?;
    if !args.only_fold.is_empty() {
        if let Some(bad) = args.only_fold.iter().find(|&&k| !folds.iter().any(|f| f.index == k)) {
            bail!("--only-fold {bad}: this run has folds 1 to {}", folds.iter().map(|f| f.index).max().unwrap_or(0));
        }
        folds.retain(|f| args.only_fold.contains(&f.index));
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    remove_stale_temporaries(&args.out);
    let backend_label = if built.neural {
        backend::describe(&backend_name)
    } else {
        "cpu (f64, faer; no deep-learning backend)".into()
    };
    let pheno_sha = sha256_file(pheno.path())?;
    let geno_sha = args.fit.geno.hashes(read_report.format)?;
    // Everything that decides a fold's result; `--resume` reuses folds only when it matches.
    let settings = serde_json::json!({
        "genopred_version": env!("CARGO_PKG_VERSION"),
        "model": entry.name,
        "model_config": built.config,
        "backend": backend_label,
        "trait": args.fit.trait_name,
        "seed": args.fit.seed,
        "options": options,
        "scheme": scheme,
        "inputs": { "geno": geno_sha, "pheno": pheno_sha },
    });
    let run_file = args.out.join("run.json");
    if args.resume {
        check_resumable(&run_file, &settings)?;
    }
    write_atomic(&run_file, &serde_json::to_vec_pretty(&settings)?)?;
    write_atomic(&args.out.join("config.toml"), built.config_toml.as_bytes())?;

    let multi = MultiProgress::new();
    genopred_train::progress::attach(multi.clone());
    let bar = multi.add(ProgressBar::new(folds.len() as u64));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} folds {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{} cv", entry.name));
    let mut results = Vec::with_capacity(folds.len());
    let mut resumed = 0;
    for fold in &folds {
        if args.resume
            && let Some(done) = read_fold(&args.out, fold.repeat, fold.index)?
        {
            resumed += 1;
            bar.inc(1);
            results.push(done);
            continue;
        }
        bar.set_message(format!("fold {} (repeat {})", fold.label, fold.repeat));
        let mut model = (entry.build)(&build)?.model;
        let result = run_fold(&dataset, fold, model.as_mut(), &options)?;
        write_fold(&args.out, &result)?;
        if !result.history.is_empty() {
            write_history(&args.out, &result)?;
        }
        bar.inc(1);
        results.push(result);
    }
    bar.finish_and_clear();
    if args.resume {
        eprintln!("resumed: {resumed} of {} fold(s) were already finished in {}", folds.len(), args.out.display());
    }

    let summary = summarise(&results, options.ndcg_top);
    let provenance = serde_json::json!({
        "genopred_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>(),
        "wall_seconds": started.elapsed().as_secs_f64(),
        "peak_rss_bytes": crate::report::peak_rss_bytes(),
        "resumed_folds": resumed,
        "inputs": {
            "geno": { "path": args.fit.geno.geno, "format": read_report.format, "sha256": geno_sha,
                      "skipped": read_report.vcf },
            "pheno": { "path": pheno.path(), "sha256": pheno_sha },
        },
        "matching": matched,
        "samples_removed_by_qc": removed,
        "scheme": scheme,
        "options": options,
        "model_config": built.config,
        "backend": backend_label,
        "resumed_folds": resumed,
    });
    write_predictions(&args.out.join("predictions.csv"), &results)?;
    write_summary(
        &args.out.join("summary.json"),
        &RunSummary {
            model: entry.name,
            r#trait: &args.fit.trait_name,
            n_samples: dataset.len(),
            n_markers: dataset.geno.n_markers(),
            seed: args.fit.seed,
            folds: &results,
            metrics: &summary.metrics,
            pooled: &summary.pooled,
            provenance,
        },
    )?;
    print!("{}", table(&results, &summary));
    eprintln!("wrote {} and {}", args.out.join("predictions.csv").display(), args.out.join("summary.json").display());
    Ok(())
}

/// `--resume` continues only a run started with the same settings and inputs.
fn check_resumable(run_file: &std::path::Path, settings: &serde_json::Value) -> Result<()> {
    let dir = run_file.parent().unwrap_or(std::path::Path::new("."));
    let bytes = match std::fs::read(run_file) {
        Ok(b) => b,
        // Nothing to resume: a fresh run.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", run_file.display())),
    };
    let before: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a genopred run record", run_file.display()))?;
    let differ: Vec<String> = match (settings.as_object(), before.as_object()) {
        (Some(now), Some(then)) => {
            let mut keys: Vec<&String> = now.keys().chain(then.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().filter(|k| now.get(*k) != then.get(*k)).cloned().collect()
        }
        _ => vec!["everything".into()],
    };
    if !differ.is_empty() {
        bail!(
            "--resume: {} holds a run started with other settings or inputs (differs in: {}); \
             rerun with the same arguments and files, drop --resume to start over, or choose another --out",
            dir.display(),
            differ.join(", ")
        );
    }
    Ok(())
}

/// Deletes temporary files an interrupted atomic write left behind (they never carry a final
/// name). A write lasts milliseconds, so only files untouched for ten minutes are stale: another
/// process may be writing into the same folder (`--only-fold` jobs sharing `--out`).
fn remove_stale_temporaries(dir: &std::path::Path) {
    let stale = |e: &std::fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 600)
    };
    for d in [dir.to_path_buf(), dir.join("folds")] {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".genopred-") && stale(&e) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn make_folds(args: &CvArgs, dataset: &Dataset) -> Result<(Vec<Fold>, serde_json::Value)> {
    if let Some(path) = &args.folds_file {
        let folds = cv::folds_from_file(path, dataset.ids())?;
        let scheme =
            serde_json::json!({ "kind": "file", "path": path, "sha256": sha256_file(path)?, "folds": folds.len() });
        return Ok((folds, scheme));
    }
    if let Some(column) = &args.group_by {
        let groups = dataset.groups.as_ref().context("group labels were not loaded")?;
        let folds = cv::grouped_folds(groups)?;
        let scheme = serde_json::json!({ "kind": "grouped", "column": column, "folds": folds.len() });
        return Ok((folds, scheme));
    }
    let folds = cv::repeated_kfold(dataset.len(), args.folds, args.repeats, args.fit.seed)?;
    Ok((folds, serde_json::json!({ "kind": "kfold", "k": args.folds, "repeats": args.repeats })))
}
