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
}

/// Trains and saves the model.
pub fn run(args: &TrainArgs) -> Result<()> {
    let started = std::time::Instant::now();
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
        let backend = match setup.entry.compute() {
            genopred_core::records::Compute::Device => setup.backend.clone(),
            genopred_core::records::Compute::Cpu => "cpu".to_string(),
        };
        let manifest = Manifest {
            format: MODEL_FORMAT,
            genopred_version: VERSION.into(),
            model: name.into(),
            trait_name: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            backend,
            backend_description: setup.backend_label.clone(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
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
