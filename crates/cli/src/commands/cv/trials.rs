//! `genopred cv --env COLUMN` (or `--env-columns`): cross-validation over the records of a
//! multi-environment trial, with the field's schemes (`--scheme cv1|cv2|cv0|cv00`) and the
//! environments in the model (`--env-model single|across|gxe`, [`genopred_core::env_model`]).
//! The run folder behaves as any run's: one run per folder, `--resume`, `--force`, `--jobs`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use genopred_core::cv::schemes::{Scheme, repeated_trial_folds, trial_folds_from_file};
use genopred_core::env_model::{EnvModel, run_trial_fold};
use genopred_core::folder_lock::LockMode;
use genopred_core::output::{sha256_file, write_atomic};
use genopred_core::records::{
    FileInput, FoldScheme, GenoInput, InputHashes, Inputs, Parallelism, Provenance, RunSettings, TrialRunSummary,
    test_digest,
};
use genopred_core::run_dir::{RunDir, Start};

use super::CvArgs;
use crate::jobs::{cores, run_all};
use crate::progress::Progress;
use crate::provenance::{BUILD, command_line, peak_rss_bytes};
use crate::trial::LoadedTrial;

/// Runs the multi-environment cross-validation.
pub(super) fn run(args: &CvArgs, started: Instant) -> Result<()> {
    if args.tune.tune.is_some() {
        bail!("--tune does not run with environments yet (--env, --env-columns)");
    }
    let setup = args.fit.model()?;
    let pheno_path = args.fit.pheno.pheno.as_ref().context("--pheno is required for cross-validation")?;
    let scheme: Scheme = args.scheme.parse()?;
    let env_model: EnvModel = args.trial.env_model.parse()?;
    if !(args.ndcg_top > 0.0 && args.ndcg_top <= 1.0) {
        bail!("--ndcg-top must be within (0, 1], got {}", args.ndcg_top);
    }
    let options = args.fit.options(args.ndcg_top)?;
    let (geno, read_report, removed) = crate::trial::genotypes(&args.fit, options.qc.max_sample_missing)?;
    let trait_name = &args.fit.trait_name;
    let loaded = crate::trial::load(&args.fit, &args.trial, &geno)?;
    let LoadedTrial { trials, record_rows, lines, env_column, env_covariates_sha256, .. } = &loaded;
    let (record_rows, env_column) = (record_rows.as_slice(), env_column.clone());
    let folds = match &args.folds_file {
        Some(path) => {
            if args.repeats > 1 {
                bail!("--repeats applies to the seeded schemes only; folds from a file are fixed");
            }
            trial_folds_from_file(path, trials)?
        }
        None => repeated_trial_folds(trials, scheme, args.folds, args.repeats, args.fit.seed)?,
    };
    let mut folds = folds;
    if super::select_folds(args, &mut folds)? {
        return Ok(());
    }
    let inputs = Inputs { geno: GenoInput::of(&args.fit.geno.geno, &read_report)?, pheno: FileInput::of(pheno_path)? };
    let fold_scheme = match &args.folds_file {
        Some(path) => FoldScheme::TrialsFile {
            path: path.clone(),
            sha256: sha256_file(path)?,
            folds: folds.len(),
            env_column: env_column.clone(),
            env_model,
            fixed: args.trial.fixed.clone(),
            env_covariates: env_covariates_sha256.clone(),
        },
        None => FoldScheme::Trials {
            scheme,
            k: if scheme == Scheme::Cv0 { trials.envs().len() } else { args.folds },
            repeats: args.repeats,
            env_column: env_column.clone(),
            env_model,
            fixed: args.trial.fixed.clone(),
            env_covariates: env_covariates_sha256.clone(),
        },
    };
    let name = setup.entry.name();
    let dir = RunDir::create(&args.out)?;
    // As for one environment: `--only-fold` jobs of one run share the folder, each writing its
    // own folds; a whole run, or `--force`, holds it alone.
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
            genopred_version: BUILD.into(),
            model: name.into(),
            model_config: setup.built.config.clone(),
            backend: setup.backend_label.clone(),
            trait_name: trait_name.clone(),
            seed: args.fit.seed,
            options,
            scheme: fold_scheme.clone(),
            inputs: InputHashes { geno: inputs.geno.sha256.clone(), pheno: inputs.pheno.sha256.clone() },
            tuning: None,
        },
        start,
        !args.only_fold.is_empty(),
    )?;
    write_atomic(&args.out.join("config.toml"), setup.built.config_toml.as_bytes())?;

    let envs = trials.envs();
    let digest = |fold: &genopred_core::cv::Fold| {
        test_digest(
            fold.test.iter().map(|&r| (trials.records()[r].line.as_str(), envs[trials.records()[r].env].as_str())),
        )
    };
    let mut finished = Vec::with_capacity(folds.len());
    let mut pending = Vec::new();
    for fold in &folds {
        match if args.resume { dir.finished_trial(fold, &run, &digest(fold))? } else { None } {
            Some(done) => finished.push(Some(done)),
            None => {
                finished.push(None);
                pending.push(fold);
            }
        }
    }
    let resumed = folds.len() - pending.len();
    let plan = args.jobs.plan(cores(), pending.len())?;
    let how = if args.folds_file.is_some() { "folds from a file".to_string() } else { format!("{scheme:?}") };
    let progress = Progress::new(format!("{name} cv ({how}, {env_model})"), folds.len());
    progress.already_done(resumed);
    let (entry, device, config) = (setup.entry, &setup.device, args.fit.config.as_deref());
    let fresh = run_all(&pending, plan, |fold| {
        let observer = progress.fold(format!("fold {} (repeat {})", fold.label, fold.repeat));
        let mut model = entry.build(config, device)?.model;
        let result = run_trial_fold(trials, &geno, record_rows, fold, model.as_mut(), env_model, &options, &observer)?;
        dir.record_trial(&result, &run, &digest(fold))?;
        Ok(result)
    });
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

    let (within, environments, pooled) = TrialRunSummary::summarise(&results, envs);
    let peak = peak_rss_bytes();
    let records = trials.records().len();
    let provenance = Provenance {
        genopred_version: BUILD.into(),
        command: command_line(),
        wall_seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak,
        bytes_per_genotype: peak.map(|b| b as f64 / (lines.len() as f64 * geno.n_markers() as f64).max(1.0)),
        genotype_bytes: Some(geno.stored_bytes() as u64),
        resumed_folds: resumed,
        inputs,
        matching: loaded.matching(geno.n_samples()),
        samples_removed_by_qc: removed,
        scheme: fold_scheme,
        options,
        model_config: setup.built.config.clone(),
        backend: setup.backend_label.clone(),
        parallelism: Some(Parallelism { jobs: plan.jobs, threads_per_job: plan.threads }),
    };
    let summary = TrialRunSummary {
        format: TrialRunSummary::FORMAT,
        model: name.into(),
        trait_name: trait_name.clone(),
        env_column,
        env_model,
        n_records: records,
        n_lines: lines.len(),
        n_envs: envs.len(),
        n_markers: geno.n_markers(),
        seed: args.fit.seed,
        within_env_pearson: within,
        environments,
        pooled,
        folds: results
            .iter()
            .map(|f| genopred_core::env_model::TrialFoldResult { predictions: Vec::new(), ..f.clone() })
            .collect(),
        provenance,
    };
    crate::report::write_trials(&args.out, &summary)?;
    dir.combine_trials(&run, &summary, &results)?;
    println!("{name}, {env_model} environments, {how}: Pearson r within environment, mean ± sd over folds");
    println!("{:<24} {:>8} {:>7} {:>8}", "environment", "records", "folds", "r");
    for e in &summary.environments {
        println!(
            "{:<24} {:>8} {:>7} {:>8}",
            e.env,
            e.n_test,
            e.n_folds,
            format!("{:.3} ± {:.3}", e.metrics.pearson.mean, e.metrics.pearson.sd)
        );
    }
    println!(
        "within environment (mean over environments): {:.3} ± {:.3}; pooled over environments: {:.3} ± {:.3}",
        within.mean, within.sd, summary.pooled.pearson.mean, summary.pooled.pearson.sd
    );
    eprintln!(
        "wrote {}, {} and {}",
        dir.predictions_path().display(),
        dir.summary_path().display(),
        args.out.join(crate::report::FILE).display()
    );
    Ok(())
}
