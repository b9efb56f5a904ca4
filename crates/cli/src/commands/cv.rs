//! `genopred cv`: k-fold, repeated, file-defined or grouped cross-validation of one model, or
//! with environments (`--env`, `--env-columns`) the multi-environment schemes of [`trials`].

mod trials;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use genopred_core::cv::{FoldRequest, plan_folds};
use genopred_core::evaluation::run_fold_sharing;
use genopred_core::folder_lock::LockMode;
use genopred_core::gram::SharedWork;
use genopred_core::output::write_atomic;
use genopred_core::records::{InputHashes, Parallelism, Provenance, RunSettings};
use genopred_core::run_dir::{RunDir, RunFacts, Start};

use crate::inputs::{FitArgs, LoadedData};
use crate::jobs::{JobArgs, cores, run_all};
use crate::progress::Progress;
use crate::provenance::{BUILD, command_line, peak_rss_bytes};
use crate::table::table;
use crate::trial::TrialArgs;
use crate::tuning::{Search, TuneArgs};

/// Arguments of `genopred cv`.
#[derive(Debug, Args)]
pub struct CvArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Number of folds of k-fold cross-validation.
    #[arg(long, default_value_t = 10, conflicts_with_all = ["folds_file", "group_by"])]
    folds: usize,
    /// Read the folds from a file with columns `id,fold` instead (with environments: `id,fold`
    /// puts all of a line's records in its fold, `id,ENV,fold` each record in its own).
    #[arg(long, value_name = "FILE", conflicts_with = "group_by")]
    folds_file: Option<PathBuf>,
    /// Leave-one-group-out folds from this phenotype column (family, tester, population ...).
    #[arg(long, value_name = "COLUMN")]
    group_by: Option<String>,
    /// Repeat k-fold with independent shuffles.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    #[command(flatten)]
    trial: TrialArgs,
    /// With environments: `cv1` new lines (all of a line's records in one fold), `cv2`
    /// incomplete trials (a line's records split over folds), `cv0` a new environment (one fold
    /// per environment), `cv00` new lines in a new environment.
    #[arg(long, default_value = "cv1", value_name = "cv1|cv2|cv0|cv00")]
    scheme: String,
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
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Delete the run files (folds, results, run.json) an earlier run left in `--out`, then
    /// start. Without it a folder holding another run's folds or results is refused.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    jobs: JobArgs,
    #[command(flatten)]
    tune: TuneArgs,
    /// Print the folds this run would have (JSON: repeat, index, label, test size) and stop, for
    /// executors that run one fold per process.
    #[arg(long, hide = true)]
    list_folds: bool,
    /// Record the folds run and stop: no `predictions.csv` or `summary.json` (for executors that
    /// run one fold per process and combine afterwards with `--resume`).
    #[arg(long, hide = true, requires = "only_fold")]
    record_only: bool,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs the cross-validation and writes the results.
pub fn run(args: &CvArgs) -> Result<()> {
    let started = Instant::now();
    if args.trial.is_trial() {
        if args.group_by.is_some() {
            bail!("--group-by and environments (--env, --env-columns) do not go together: the schemes split a trial");
        }
        return trials::run(args, started);
    }
    if args.trial.env_covariates.is_some() {
        bail!("--env-covariates describes environments: it needs a trial (--env COLUMN or --env-columns)");
    }
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
    if select_folds(args, &mut folds)? {
        return Ok(());
    }
    let inputs = args.fit.inputs(&read_report, &pheno)?;
    let name = setup.entry.name();
    let tuning = args.tune.settings(setup.entry)?;
    let dir = RunDir::create(&args.out)?;
    // A whole run holds the folder alone; `--only-fold` jobs of one run may share it (each
    // writes its own folds); `--force` deletes files, so it needs the folder alone.
    let mode = if args.only_fold.is_empty() || args.force { LockMode::Exclusive } else { LockMode::Shared };
    let _lock = dir.lock(mode, "start a run there")?;
    let start = match (args.resume, args.force) {
        (true, _) => Start::Resume,
        (false, true) => Start::Force,
        (false, false) => Start::Fresh,
    };
    let run = dir.start(
        &RunSettings {
            format: RunSettings::FORMAT,
            // With the build identity: folds of another build are never reused.
            genopred_version: BUILD.into(),
            model: name.into(),
            model_config: setup.built.config.clone(),
            backend: setup.backend_label.clone(),
            trait_name: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            options,
            scheme: scheme.clone(),
            inputs: InputHashes { geno: inputs.geno.sha256.clone(), pheno: inputs.pheno.sha256.clone() },
            tuning: tuning.as_ref().map(|(settings, _)| settings.clone()),
        },
        start,
        !args.only_fold.is_empty(),
    )?;
    write_atomic(&args.out.join("config.toml"), setup.built.config_toml.as_bytes())?;

    let mut finished = Vec::with_capacity(folds.len());
    let mut pending = Vec::new();
    for fold in &folds {
        let test_ids: Vec<&str> = fold.test.iter().map(|&r| dataset.ids()[r].as_str()).collect();
        match if args.resume { dir.finished(fold, &run, &test_ids, options.ndcg_top)? } else { None } {
            Some(done) => finished.push(Some(done)),
            None => {
                finished.push(None);
                pending.push(fold);
            }
        }
    }
    let resumed = folds.len() - pending.len();
    // Jobs share the folds, or with --tune each search's trials × inner folds.
    let tasks = tuning.as_ref().map_or(pending.len(), |(s, _)| s.trials * s.inner_folds);
    let plan = args.jobs.plan(cores(), tasks)?;
    let progress = Progress::new(format!("{name} cv"), folds.len());
    progress.already_done(resumed);
    let (entry, device, config) = (setup.entry, &setup.device, args.fit.config.as_deref());
    // Folds fitted here share work (GBLUP's X Xᵀ). Always offered, even to one fold: whether a
    // fold takes the shared path then depends on that fold alone (its QC, missing calls,
    // memory), never on which other folds run in this process, so a resumed run or an
    // `--only-fold` job gives the bytes of the uninterrupted run (the two paths agree only to
    // rounding).
    let work = Some(SharedWork::new());
    let fresh = match tuning {
        None => run_all(&pending, plan, |fold| {
            let observer = progress.fold(format!("fold {} (repeat {})", fold.label, fold.repeat));
            let mut model = entry.build(config, device)?.model;
            let result = run_fold_sharing(&dataset, fold, model.as_mut(), &options, &observer, work.as_ref())?;
            dir.record(&result, &run, peak_rss_bytes())?;
            Ok(result)
        }),
        // A search's trials share the jobs; outer folds run one after another.
        Some(tuning) => {
            let search = Search::new(
                entry,
                device,
                config,
                &setup.built.config,
                tuning,
                &dataset,
                options,
                plan,
                args.out.join("tuning"),
            )?;
            let one = crate::jobs::JobPlan { jobs: 1, ..plan };
            pending
                .iter()
                .map(|fold| {
                    let label = format!("fold {} (repeat {})", fold.label, fold.repeat);
                    let (chosen, record) = search.run(&fold.train, [fold.repeat, fold.index], &label)?;
                    let mut result = run_all(&[fold], one, |fold| {
                        let observer = progress.fold(label.clone());
                        let mut model = entry.build(Some(&chosen), device)?.model;
                        let work = Some(&search.work);
                        Ok(run_fold_sharing(&dataset, fold, model.as_mut(), &options, &observer, work)?)
                    })?
                    .remove(0);
                    result.seconds += record.seconds;
                    result.tuning = Some(record);
                    dir.record(&result, &run, peak_rss_bytes())?;
                    Ok(result)
                })
                .collect::<Result<Vec<_>>>()
        }
    };
    progress.finish();
    let mut fresh = fresh?.into_iter();
    let results: Vec<_> =
        finished.into_iter().map(|f| f.or_else(|| fresh.next()).expect("one result per fold")).collect();
    if args.resume {
        eprintln!("resumed: {resumed} of {} fold(s) were already finished in {}", folds.len(), args.out.display());
    }
    if args.record_only {
        eprintln!("recorded {} fold(s) in {}", results.len(), args.out.display());
        return Ok(());
    }

    let peak = peak_rss_bytes();
    let provenance = Provenance {
        genopred_version: BUILD.into(),
        command: command_line(),
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak,
        bytes_per_genotype: peak.map(|b| b as f64 / (dataset.len() as f64 * dataset.geno.n_markers() as f64).max(1.0)),
        genotype_bytes: Some(dataset.geno.stored_bytes() as u64),
        resumed_folds: resumed,
        inputs,
        matching: matched,
        samples_removed_by_qc: removed,
        scheme,
        options,
        model_config: setup.built.config.clone(),
        backend: setup.backend_label.clone(),
        parallelism: Some(Parallelism { jobs: plan.jobs, threads_per_job: plan.threads }),
    };
    let facts = RunFacts {
        model: name,
        trait_name: &args.fit.trait_name,
        n_samples: dataset.len(),
        n_markers: dataset.geno.n_markers(),
        seed: args.fit.seed,
        ndcg_top: options.ndcg_top,
    };
    let (summary, cv) = dir.combine(&run, results, &facts, provenance, |summary| {
        crate::report::write(&args.out, summary)?;
        anyhow::Ok(vec![crate::report::FILE.to_string()])
    })?;
    print!("{}", table(&summary.folds, &cv));
    eprintln!(
        "wrote {}, {} and {}",
        dir.predictions_path().display(),
        dir.summary_path().display(),
        args.out.join(crate::report::FILE).display()
    );
    Ok(())
}

/// Keeps `--only-fold`'s folds (refusing one the run does not have); with `--list-folds`
/// prints them (JSON: repeat, index, label, test size) and returns true: the caller stops.
fn select_folds(args: &CvArgs, folds: &mut Vec<genopred_core::cv::Fold>) -> Result<bool> {
    if !args.only_fold.is_empty() {
        if let Some(bad) = args.only_fold.iter().find(|&&k| !folds.iter().any(|f| f.index == k)) {
            bail!("--only-fold {bad}: this run has folds 1 to {}", folds.iter().map(|f| f.index).max().unwrap_or(0));
        }
        folds.retain(|f| args.only_fold.contains(&f.index));
    }
    if args.list_folds {
        let listing: Vec<serde_json::Value> = folds
            .iter()
            .map(|f| serde_json::json!({"repeat": f.repeat, "index": f.index, "label": f.label, "test": f.test.len()}))
            .collect();
        println!("{}", serde_json::Value::Array(listing));
    }
    Ok(args.list_folds)
}
