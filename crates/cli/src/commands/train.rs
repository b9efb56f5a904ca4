//! `genopred train`: fit one model on every phenotyped sample and save it as a self-contained
//! folder that `genopred predict` applies to new genotypes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use genopred_core::evaluation::{CvOptions, fit_final};
use genopred_core::output::{write_atomic, write_csv};
use genopred_core::records::{MODEL_FORMAT, Manifest};

use crate::inputs::{FitArgs, LoadedData};
use crate::jobs::{JobArgs, cores};
use crate::model_dir::{self, MANIFEST, MARKERS, STATE_DIR};
use crate::provenance::{VERSION, command_line};
use crate::trial::{LoadedTrial, TrialArgs};
use crate::tuning::{Search, TuneArgs};

/// Arguments of `genopred train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    fit: FitArgs,
    #[command(flatten)]
    tune: TuneArgs,
    #[command(flatten)]
    jobs: JobArgs,
    /// Replace the model folder if it exists.
    #[arg(long)]
    force: bool,
    /// Model folder to create.
    #[arg(long, value_name = "MODEL_DIR")]
    out: PathBuf,
    #[command(flatten)]
    trial: TrialArgs,
}

/// Trains and saves the model.
pub fn run(args: &TrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
    if args.trial.is_trial() {
        return train_trial(args, started);
    }
    if args.trial.env_covariates.is_some() {
        anyhow::bail!("--env-covariates describes environments: it needs a trial (--env COLUMN or --env-columns)");
    }
    let mut setup = args.fit.model()?;
    let name = setup.entry.name();
    let options = args.fit.options(CvOptions::default().ndcg_top)?;
    let qc = options.qc;
    model_dir::check_destination(&args.out, args.force)?;

    let LoadedData { dataset, matched, read_report, pheno, .. } = args.fit.load(qc.max_sample_missing, None)?;

    // With --tune: an inner cross-validation on every sample chooses the settings the model is
    // then trained with (and saved with, so `predict` uses them).
    let tmp = model_dir::staging(&args.out)?;
    let discard = |e: anyhow::Error| {
        let _ = std::fs::remove_dir_all(&tmp);
        e
    };
    let tuned = (|| -> Result<_> {
        Ok(match args.tune.settings(setup.entry)? {
            None => None,
            Some(tuning) => {
                let plan = args.jobs.plan(cores(), tuning.0.trials * tuning.0.inner_folds)?;
                let search = Search::new(
                    setup.entry,
                    &setup.device,
                    args.fit.config.as_deref(),
                    &setup.built.config,
                    tuning,
                    &dataset,
                    options,
                    plan,
                    tmp.join("tuning"),
                )?;
                let all: Vec<usize> = (0..dataset.len()).collect();
                let (chosen, record) = search.run(&all, [0, 0], "search")?;
                setup.built = setup
                    .entry
                    .build(Some(&chosen), &setup.device)
                    .with_context(|| format!("configuring model {name} with the chosen settings"))?;
                genopred_core::tuning::write_tables(&tmp, &[(0, 0, &record)])?;
                Some(record)
            }
        })
    })()
    .map_err(discard)?;

    let fitted = fit_final(&dataset, setup.built.model.as_mut(), &options, &genopred_core::Quiet)
        .map_err(|e| discard(e.into()))?;
    let kept_markers = dataset.geno.select_markers(&fitted.qc.kept).markers().to_vec();

    let result = (|| -> Result<()> {
        let state = tmp.join(STATE_DIR);
        std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        setup.built.model.save(&state).map_err(|e| anyhow::anyhow!("saving the {name} model: {e}"))?;
        write_atomic(&tmp.join("config.toml"), setup.built.config_toml.as_bytes())?;
        model_dir::write_markers(&tmp.join(MARKERS), &kept_markers, &fitted.marker_means)?;
        if !fitted.history.is_empty() {
            write_csv(&tmp.join("history.csv"), &fitted.history, b',')?;
        }
        let manifest = Manifest {
            format: MODEL_FORMAT,
            genopred_version: VERSION.into(),
            model: name.into(),
            trait_name: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            backend: backend_of(&setup),
            backend_description: setup.backend_label.clone(),
            created_unix: now_unix(),
            command: command_line(),
            inputs: args.fit.inputs(&read_report, &pheno)?,
            matching: matched.clone(),
            n_samples: dataset.len(),
            n_fit: fitted.n_fit,
            n_valid: fitted.n_valid,
            n_markers: kept_markers.len(),
            qc: fitted.qc.report.clone(),
            options,
            fit: fitted.fit.clone(),
            train_metrics: fitted.train_metrics,
            valid_metrics: fitted.valid_metrics,
            fit_seconds: fitted.seconds,
            files: model_dir::hash_files(&tmp)?,
            trial: None,
        };
        manifest.write(&tmp.join(MANIFEST))?;
        model_dir::commit(&tmp, &args.out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;

    let m = &fitted.train_metrics;
    eprintln!(
        "trained {name} on {} samples ({} fitted, {} for early stopping) and {} of {} markers in {:.1} s",
        dataset.len(),
        fitted.n_fit,
        fitted.n_valid,
        kept_markers.len(),
        dataset.geno.n_markers(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "in-sample r = {:.3}{} (optimistic: `genopred cv` measures accuracy on unseen samples)",
        m.pearson,
        fitted.valid_metrics.map(|v| format!(", early-stopping subset r = {:.3}", v.pearson)).unwrap_or_default()
    );
    if let Some(t) = &tuned {
        eprintln!(
            "tuned: trial {} of {} chosen by inner {} {:.4} ({}); see tuning.csv",
            t.chosen_trial,
            args.tune.trials,
            t.metric.name(),
            t.inner_mean,
            t.chosen.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ")
        );
    }
    eprintln!("wrote model to {}", args.out.display());
    Ok(())
}

/// `genopred train --env`: a model of a whole trial — its environments, fixed effects and G×E
/// as `--env-model` says — saved with what predicts any line in any of the trial's
/// environments: the fitted state (`trial.json`), and for a kernel model (GBLUP, RKHS) the
/// training lines' genotypes (`lines.csv`, the kernel's other side), for a network (G×E: an
/// output per environment) its weights and head (`model/`).
fn train_trial(args: &TrainArgs, started: std::time::Instant) -> Result<()> {
    use genopred_core::env_model::{EnvModel, fit_kernel_env, fit_network_trial};
    use genopred_core::evaluation::kept_markers;
    use genopred_core::metrics::Metrics;
    use genopred_core::qc::MarkerQc;
    use genopred_core::records::{FileInput, GenoInput, Inputs, TrialFit, TrialModel, TrialState};
    use genopred_core::reml::multi::MultiRemlConfig;

    if args.tune.tune.is_some() {
        anyhow::bail!("--tune does not run with environments yet (--env, --env-columns)");
    }
    let mut setup = args.fit.model()?;
    let name = setup.entry.name();
    let env_model: EnvModel = args.trial.env_model.parse()?;
    if env_model == EnvModel::Single {
        anyhow::bail!(
            "--env-model single is one model per environment: train each environment on its own (`genopred train \
             --trait COLUMN` of a wide table), or a trial model with --env-model across or gxe"
        );
    }
    let options = args.fit.options(CvOptions::default().ndcg_top)?;
    model_dir::check_destination(&args.out, args.force)?;
    let pheno_path = args.fit.pheno.pheno.clone().context("--pheno is required")?;
    let (geno, read_report, _) = crate::trial::genotypes(&args.fit, options.qc.max_sample_missing)?;
    let loaded = crate::trial::load(&args.fit, &args.trial, &geno)?;
    let LoadedTrial { trials, record_rows, env_column, .. } = &loaded;
    let record_rows = record_rows.as_slice();
    let all: Vec<usize> = (0..record_rows.len()).collect();
    let train_lines = genopred_core::env_model::lines_of(&all, record_rows);
    let qc = MarkerQc::fit(&geno, &train_lines, &options.qc)?;
    let kept = kept_markers(&geno, &qc.kept);
    let records = trials.records();
    let observed: Vec<f64> = records.iter().map(|r| r.value).collect();
    let ids: Vec<String> = train_lines.iter().map(|&r| kept.samples()[r].clone()).collect();
    let model = setup.built.model.as_mut();
    // A kernel model keeps the training lines' genotypes (its kernel's other side); a network
    // its weights and head.
    let (trial_fit, fit_info, fitted, keeps_lines) = match model.genetic_kernel(&kept, &train_lines, &train_lines) {
        Some(kernel) => {
            let kernel = kernel.map_err(|e| anyhow::anyhow!("model {name}: {e}"))?;
            let position: Vec<usize> =
                record_rows.iter().map(|r| train_lines.binary_search(r).expect("a training line")).collect();
            let (_, report, state) =
                fit_kernel_env(env_model, trials, &kernel, &position, &all, &[], &MultiRemlConfig::default())?;
            let fitted: Vec<f64> =
                (0..records.len()).map(|r| state.predict(records[r].env, |l| kernel[(position[r], l)])).collect();
            let info = genopred_core::FitInfo::new(None, &report).map_err(|e| anyhow::anyhow!("{e}"))?;
            (TrialFit::Kernel(state), info, fitted, true)
        }
        None if model.fits_records() && env_model == EnvModel::Gxe => {
            let (state, info) = fit_network_trial(trials, &kept, record_rows, model, &options, &genopred_core::Quiet)?;
            let mut fitted = vec![0.0; records.len()];
            for e in 0..trials.envs().len() {
                let at: Vec<usize> = (0..records.len()).filter(|&r| records[r].env == e).collect();
                let rows: Vec<usize> = at.iter().map(|&r| record_rows[r]).collect();
                let p = state.predict(model, &kept, &rows, e).map_err(|err| anyhow::anyhow!("model {name}: {err}"))?;
                at.iter().zip(p).for_each(|(&r, v)| fitted[r] = v);
            }
            (TrialFit::Network(state), info, fitted, false)
        }
        None if model.fits_records() => anyhow::bail!(
            "model {name} fits a trial as an output per environment: `genopred train --env` saves it with \
             --env-model gxe"
        ),
        None => anyhow::bail!(
            "model {name} has neither a genetic kernel nor an output per environment: `genopred train --env` saves \
             GBLUP, RKHS and the networks"
        ),
    };
    let train_metrics = Metrics::compute(&observed, &fitted, options.ndcg_top);

    let tmp = model_dir::staging(&args.out)?;
    let result = (|| -> Result<()> {
        write_atomic(&tmp.join("config.toml"), setup.built.config_toml.as_bytes())?;
        let means: Vec<f64> = (0..kept.n_markers())
            .map(|j| {
                let calls: Vec<f64> = train_lines.iter().filter_map(|&r| kept.dosage(r, j)).collect();
                calls.iter().sum::<f64>() / calls.len().max(1) as f64
            })
            .collect();
        model_dir::write_markers(&tmp.join(MARKERS), kept.markers(), &means)?;
        if keeps_lines {
            // The training lines' genotypes on the model's markers, in the kernel's row order.
            write_lines(&tmp.join(LINES), &kept, &train_lines)?;
        } else {
            let state = tmp.join(STATE_DIR);
            std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
            setup.built.model.save(&state).map_err(|e| anyhow::anyhow!("saving the {name} model: {e}"))?;
        }
        let trial_state = TrialState { format: TrialState::FORMAT, lines: ids, fit: trial_fit };
        write_atomic(&tmp.join(TRIAL_STATE), serde_json::to_vec(&trial_state)?.as_slice())?;
        let manifest = Manifest {
            format: MODEL_FORMAT,
            genopred_version: VERSION.into(),
            model: name.into(),
            trait_name: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            backend: backend_of(&setup),
            backend_description: setup.backend_label.clone(),
            created_unix: now_unix(),
            command: command_line(),
            inputs: Inputs {
                geno: GenoInput::of(&args.fit.geno.geno, &read_report)?,
                pheno: FileInput::of(&pheno_path)?,
            },
            matching: loaded.matching(geno.n_samples()),
            n_samples: train_lines.len(),
            n_fit: records.len(),
            n_valid: 0,
            n_markers: kept.n_markers(),
            qc: qc.report.clone(),
            options,
            fit: fit_info,
            train_metrics,
            valid_metrics: None,
            fit_seconds: started.elapsed().as_secs_f64(),
            files: model_dir::hash_files(&tmp)?,
            trial: Some(TrialModel {
                env_column: env_column.clone(),
                env_model,
                envs: trials.envs().to_vec(),
                n_records: records.len(),
            }),
        };
        manifest.write(&tmp.join(MANIFEST))?;
        model_dir::commit(&tmp, &args.out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    eprintln!(
        "trained {name} ({env_model} environments) on {} records of {} lines in {} environments and {} of {} markers \
         in {:.1} s",
        records.len(),
        train_lines.len(),
        trials.envs().len(),
        kept.n_markers(),
        geno.n_markers(),
        started.elapsed().as_secs_f64()
    );
    eprintln!(
        "in-sample r = {:.3} pooled over environments (optimistic: `genopred cv --env` measures accuracy on unseen \
         records)",
        train_metrics.pearson
    );
    eprintln!("wrote model to {}", args.out.display());
    Ok(())
}

/// A trial model's training lines' genotypes (`lines.csv`: id, then a dosage per model marker).
pub const LINES: &str = "lines.csv";
/// A trial model's fitted state.
pub const TRIAL_STATE: &str = "trial.json";

/// `rows` of `geno` as a dosage table (`NA` for a missing call), which the dosage-CSV reader reads
/// back call for call.
fn write_lines(path: &std::path::Path, geno: &genopred_core::GenotypeMatrix, rows: &[usize]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["id".to_string()];
    header.extend(geno.markers().iter().map(|m| m.id.clone()));
    w.write_record(&header)?;
    for &r in rows {
        let mut row = vec![geno.samples()[r].clone()];
        row.extend(
            (0..geno.n_markers()).map(|j| geno.dosage(r, j).map_or_else(|| "NA".to_string(), |d| d.to_string())),
        );
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    write_atomic(path, &bytes)?;
    Ok(())
}

/// The backend a model folder names: the device's, or `cpu` for a model that computes there.
fn backend_of(setup: &crate::inputs::ModelSetup) -> String {
    match setup.entry.compute() {
        genopred_core::records::Compute::Device => setup.backend.clone(),
        genopred_core::records::Compute::Cpu => "cpu".to_string(),
    }
}

/// Seconds since the Unix epoch.
fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
