//! `genopred cv`: k-fold, repeated, file-defined or grouped cross-validation of one model.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use genopred_core::cv::{FoldRequest, plan_folds};
use genopred_core::evaluation::run_fold;
use genopred_core::output::write_atomic;
use genopred_core::records::{InputHashes, Provenance, RunSettings};
use genopred_core::run_dir::{RunDir, RunFacts};

use crate::inputs::{FitArgs, LoadedData};
use crate::progress::Progress;
use crate::provenance::{VERSION, command_line, peak_rss_bytes};
use crate::table::table;

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
    let setup = args.fit.model()?;
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
    let LoadedData { dataset, matched, read_report, pheno, removed } =
        args.fit.load(options.qc.max_sample_missing, args.group_by.as_deref())?;

    let request = match (&args.folds_file, &args.group_by) {
        (Some(path), _) => FoldRequest::File(path.clone()),
        (None, Some(column)) => FoldRequest::Grouped(column.clone()),
        (None, None) => FoldRequest::Kfold { k: args.folds, repeats: args.repeats, seed: args.fit.seed },
    };
    let (mut folds, scheme) = plan_folds(&dataset, &request)?;
    if !args.only_fold.is_empty() {
        if let Some(bad) = args.only_fold.iter().find(|&&k| !folds.iter().any(|f| f.index == k)) {
            bail!("--only-fold {bad}: this run has folds 1 to {}", folds.iter().map(|f| f.index).max().unwrap_or(0));
        }
        folds.retain(|f| args.only_fold.contains(&f.index));
    }
    let inputs = args.fit.inputs(&read_report, &pheno)?;
    let name = setup.entry.name();
    let dir = RunDir::create(&args.out)?;
    dir.start(
        &RunSettings {
            format: RunSettings::FORMAT,
            genopred_version: VERSION.into(),
            model: name.into(),
            model_config: setup.built.config.clone(),
            backend: setup.backend_label.clone(),
            trait_name: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            options,
            scheme: scheme.clone(),
            inputs: InputHashes { geno: inputs.geno.sha256.clone(), pheno: inputs.pheno.sha256.clone() },
        },
        args.resume,
    )?;
    write_atomic(&args.out.join("config.toml"), setup.built.config_toml.as_bytes())?;

    let progress = Progress::new(format!("{name} cv"), folds.len());
    let mut results = Vec::with_capacity(folds.len());
    let mut resumed = 0;
    for fold in &folds {
        if args.resume
            && let Some(done) = dir.finished(fold)?
        {
            resumed += 1;
            progress.fold_done();
            results.push(done);
            continue;
        }
        progress.fold_started(format!("fold {} (repeat {})", fold.label, fold.repeat));
        let mut model = args.fit.fresh(&setup)?;
        let result = run_fold(&dataset, fold, model.as_mut(), &options, &progress)?;
        dir.record(&result)?;
        progress.fold_done();
        results.push(result);
    }
    progress.finish();
    if args.resume {
        eprintln!("resumed: {resumed} of {} fold(s) were already finished in {}", folds.len(), args.out.display());
    }

    let provenance = Provenance {
        genopred_version: VERSION.into(),
        command: command_line(),
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        resumed_folds: resumed,
        inputs,
        matching: matched,
        samples_removed_by_qc: removed,
        scheme,
        options,
        model_config: setup.built.config.clone(),
        backend: setup.backend_label.clone(),
    };
    let facts = RunFacts {
        model: name,
        trait_name: &args.fit.trait_name,
        n_samples: dataset.len(),
        n_markers: dataset.geno.n_markers(),
        seed: args.fit.seed,
        ndcg_top: options.ndcg_top,
    };
    let (summary, cv) = dir.combine(results, &facts, provenance)?;
    print!("{}", table(&summary.folds, &cv));
    eprintln!("wrote {} and {}", dir.predictions_path().display(), dir.summary_path().display());
    Ok(())
}
