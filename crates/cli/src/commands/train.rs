//! `genopred train`: fit one model on every phenotyped sample and save it as a self-contained
//! folder that `genopred predict` applies to new genotypes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use genopred_core::evaluation::{CvOptions, fit_final};
use genopred_core::output::{sha256_file, write_atomic};

use crate::backend;
use crate::inputs::{FitArgs, LoadedData};
use crate::model_dir::{self, MANIFEST, MARKERS, Manifest};
use crate::registry::{self, BuildOptions, STATE_DIR};
use crate::report::write_history_csv;

/// Arguments of `genopred train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    fit: FitArgs,
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
    let entry = registry::find(&args.fit.model)?;
    let backend_name = args.fit.backend()?;
    let device = backend::device(&backend_name)?;
    let build = BuildOptions { config: args.fit.config.as_deref(), device: &device };
    let mut built = (entry.build)(&build)
        .with_context(|| format!("configuring model {}{}", entry.name, args.fit.config_origin()))?;
    let options = args.fit.options(CvOptions::default().ndcg_top)?;
    let qc = options.qc;
    model_dir::check_destination(&args.out, args.force)?;

    let LoadedData { dataset, matched, read_report, pheno, .. } = args.fit.load(qc.max_sample_missing, None)?;

    let fitted = fit_final(&dataset, built.model.as_mut(), &options)?;
    let kept_markers = dataset.geno.select_markers(&fitted.qc.kept).markers().to_vec();

    let tmp = model_dir::staging(&args.out)?;
    let result = (|| -> Result<()> {
        let state = tmp.join(STATE_DIR);
        std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        built.model.save(&state).map_err(|e| anyhow::anyhow!("saving the {} model: {e}", entry.name))?;
        write_atomic(&tmp.join("config.toml"), built.config_toml.as_bytes())?;
        model_dir::write_markers(&tmp.join(MARKERS), &kept_markers, &fitted.marker_means)?;
        if !fitted.history.is_empty() {
            write_history_csv(&tmp.join("history.csv"), &fitted.history)?;
        }
        let (backend_name, backend_description) = if built.neural {
            (backend_name.clone(), backend::describe(&backend_name))
        } else {
            ("cpu".to_string(), "cpu (f64, faer; no deep-learning backend)".to_string())
        };
        let manifest = Manifest {
            format: model_dir::FORMAT,
            genopred_version: env!("CARGO_PKG_VERSION").into(),
            model: entry.name.into(),
            r#trait: args.fit.trait_name.clone(),
            seed: args.fit.seed,
            backend: backend_name,
            backend_description,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: std::env::args().collect(),
            inputs: serde_json::json!({
                "geno": { "path": args.fit.geno.geno, "format": read_report.format,
                          "sha256": args.fit.geno.hashes(read_report.format)? },
                "pheno": { "path": pheno.path(), "sha256": sha256_file(pheno.path())? },
            }),
            matching: serde_json::to_value(&matched)?,
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
        write_atomic(&tmp.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
        model_dir::commit(&tmp, &args.out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;

    let m = &fitted.train_metrics;
    eprintln!(
        "trained {} on {} samples ({} fitted, {} for early stopping) and {} of {} markers in {:.1} s",
        entry.name,
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
    eprintln!("wrote model to {}", args.out.display());
    Ok(())
}
