//! `genopred predict`: apply a saved model to new genotypes (the candidates of the next cycle),
//! after lining their markers up with the model's.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use genopred_core::align::{AlignOptions, MarkerStatus, MatchBy, align};
use genopred_core::genotype::{GenotypeMatrix, MISSING, dosage_to_code};
use genopred_core::output::write_csv;

use crate::backend;
use crate::inputs::GenoArgs;
use crate::model_dir::{self, CONFIG, MARKERS, STATE_DIR};

/// Arguments of `genopred predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model folder written by `genopred train`.
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    #[command(flatten)]
    geno: GenoArgs,
    /// How the model's markers are found in the genotype file: by marker id, or by chromosome
    /// and position (`chr1` = `1`).
    #[arg(long, default_value = "id", value_name = "id|chrom-pos")]
    match_by: MatchBy,
    /// Refuse when fewer than this fraction of the model's markers are found with compatible
    /// alleles (the rest are imputed with training means).
    #[arg(long, default_value_t = AlignOptions::default().min_overlap)]
    min_marker_overlap: f64,
    /// Rank 1 is the lowest prediction (for traits where less is better: days to flowering,
    /// disease score). By default rank 1 is the highest.
    #[arg(long)]
    lower_is_better: bool,
    /// Also write, per model marker, how it was found (matched, flipped, absent ...) to this file.
    #[arg(long, value_name = "FILE.csv")]
    alignment: Option<PathBuf>,
    /// Deep-learning backend to predict on (any backend, whatever the model was trained on).
    #[arg(long, default_value = backend::default_name())]
    backend: String,
    /// With a model of a trial (`genopred train --env`): predict in this environment only (by
    /// default in each of the trial's environments).
    #[arg(long, value_name = "NAME")]
    env: Option<String>,
    /// With `--env NAME` outside a trial model's environments: the file of environmental
    /// covariates with NAME's row (the columns the model was trained with), which places it by
    /// the model's reaction norm (GBLUP or RKHS trained with `--env-model gxe` and
    /// `--env-covariates`).
    #[arg(long, value_name = "FILE", requires = "env")]
    env_covariates: Option<PathBuf>,
    /// Output CSV: `id,predicted,rank`, best first; for a model of a trial
    /// `id,env,predicted,rank`, ranked within each environment.
    #[arg(long, value_name = "FILE.csv")]
    out: PathBuf,
}

/// One line of the output.
#[derive(Debug, serde::Serialize)]
struct Gebv<'a> {
    id: &'a str,
    predicted: f64,
    rank: usize,
}

/// Predicts and writes the ranked breeding values.
pub fn run(args: &PredictArgs) -> Result<()> {
    let manifest = model_dir::open(&args.model)?;
    let entry = genopred_zoo::find(&manifest.model)
        .with_context(|| format!("the model in {} was trained as '{}'", args.model.display(), manifest.model))?;
    let device = backend::device(&args.backend)?;
    if let Some(trial) = &manifest.trial {
        return predict_trial(args, &manifest, trial, entry, &device);
    }
    if let Some(env) = &args.env {
        bail!("--env {env}: the model in {} is of one environment (trained without --env)", args.model.display());
    }
    let model = entry
        .load(&args.model.join(CONFIG), &args.model.join(STATE_DIR), &device)
        .with_context(|| format!("loading the {} model from {}", entry.name(), args.model.display()))?;
    let (reference, means) = model_dir::read_markers(&args.model.join(MARKERS))?;
    if reference.len() != manifest.n_markers {
        bail!(
            "{}: {} lists {} markers but the manifest says {}",
            args.model.display(),
            MARKERS,
            reference.len(),
            manifest.n_markers
        );
    }
    eprintln!(
        "model: {} for '{}' on {} markers, trained on {} samples ({})",
        manifest.model, manifest.trait_name, manifest.n_markers, manifest.n_samples, manifest.backend
    );

    let (new, _) = args.geno.read()?;
    let options = AlignOptions { match_by: args.match_by, min_overlap: args.min_marker_overlap };
    let (mut aligned, report) = align(&reference, &new, &options)
        .with_context(|| format!("aligning {} to the model's markers", args.geno.geno.display()))?;
    eprintln!(
        "markers: {} of the model's {} found — {} matched, {} flipped (alleles swapped){}{}; {} imputed \
         with training means ({} absent, {} with other alleles); {} of the file's {} markers unused",
        report.matched + report.flipped + report.unchecked,
        report.model_markers,
        report.matched,
        report.flipped,
        if report.strand > 0 { format!(", {} of them on the opposite strand", report.strand) } else { String::new() },
        if report.unchecked > 0 { format!(", {} without alleles to check", report.unchecked) } else { String::new() },
        report.imputed(),
        report.absent,
        report.allele_mismatch,
        report.unused,
        report.file_markers
    );
    if report.unchecked > 0 {
        eprintln!(
            "warning: {} marker(s) could not be checked for allele orientation because the model's training file \
             or this file names no alleles (numeric CSV); their dosages are used as they are, so both files must \
             count the same allele",
            report.unchecked
        );
    }
    if !model.mean_imputes_missing() && report.imputed() > 0 {
        aligned = fill_with_means(&aligned, &report.markers, &means)?;
    }
    warn_about_missing(&aligned);

    let rows: Vec<usize> = (0..aligned.n_samples()).collect();
    let predicted = model.predict(&aligned, &rows).map_err(|e| anyhow!("model {} failed: {e}", entry.name()))?;
    if predicted.len() != rows.len() {
        bail!("model {} returned {} predictions for {} samples", entry.name(), predicted.len(), rows.len());
    }
    if let Some(i) = predicted.iter().position(|p| !p.is_finite()) {
        bail!("model {} predicted a non-finite value for sample '{}'", entry.name(), aligned.samples()[i]);
    }
    let mut order = rows.clone();
    // Stable: ties keep the file's order.
    order.sort_by(|&a, &b| {
        let c = predicted[b].total_cmp(&predicted[a]);
        if args.lower_is_better { c.reverse() } else { c }
    });
    let ranked = order.iter().enumerate().map(|(rank, &i)| Gebv {
        id: &aligned.samples()[i],
        predicted: predicted[i],
        rank: rank + 1,
    });
    write_csv(&args.out, ranked, b',')?;
    if let Some(path) = &args.alignment {
        write_alignment(path, &reference, &new, &report.markers)?;
    }
    eprintln!("wrote predictions for {} samples to {}", rows.len(), args.out.display());
    Ok(())
}

/// Fills imputed markers with the dosage nearest the training mean, for models whose encoding
/// does not impute missing calls with it (DLGWAS's one-hot "missing" class is for calls missing
/// in training too; a marker absent from the whole file is imputed instead).
fn fill_with_means(
    aligned: &GenotypeMatrix,
    markers: &[(MarkerStatus, Option<usize>)],
    means: &[f64],
) -> Result<GenotypeMatrix> {
    let m = aligned.n_markers();
    let mut codes = Vec::with_capacity(aligned.n_samples() * m);
    for s in 0..aligned.n_samples() {
        codes.extend_from_slice(&aligned.row(s));
    }
    for (j, (status, _)) in markers.iter().enumerate() {
        if status.is_used() {
            continue;
        }
        let code = dosage_to_code(means[j]).unwrap_or(MISSING);
        for s in 0..aligned.n_samples() {
            codes[s * m + j] = code;
        }
    }
    Ok(GenotypeMatrix::new(aligned.samples().to_vec(), aligned.markers().to_vec(), codes)?)
}

/// Warns about samples most of whose model markers are missing: their predictions are close to
/// the population mean and say little.
fn warn_about_missing(aligned: &GenotypeMatrix) {
    let m = aligned.n_markers().max(1) as f64;
    let poor: Vec<&str> = (0..aligned.n_samples())
        .filter(|&s| aligned.missing_in_sample(s) as f64 / m > 0.5)
        .map(|s| aligned.samples()[s].as_str())
        .collect();
    if !poor.is_empty() {
        eprintln!(
            "warning: {} sample(s) miss more than half of the model's markers (imputed with training means); \
             their predictions are unreliable: {}{}",
            poor.len(),
            poor.iter().take(5).copied().collect::<Vec<_>>().join(", "),
            if poor.len() > 5 { ", ..." } else { "" }
        );
    }
}

/// Writes `marker,chrom,pos,status,file_marker` per model marker.
fn write_alignment(
    path: &std::path::Path,
    reference: &[genopred_core::Marker],
    new: &GenotypeMatrix,
    markers: &[(MarkerStatus, Option<usize>)],
) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        marker: &'a str,
        chrom: &'a str,
        pos: u64,
        status: MarkerStatus,
        file_marker: &'a str,
    }
    let rows = reference.iter().zip(markers).map(|(t, (status, source))| Row {
        marker: &t.id,
        chrom: &t.chrom,
        pos: t.pos,
        status: *status,
        file_marker: source.map(|j| new.markers()[j].id.as_str()).unwrap_or(""),
    });
    write_csv(path, rows, b',')?;
    Ok(())
}

/// One line of a trial model's output.
#[derive(Debug, serde::Serialize)]
struct TrialGebv<'a> {
    id: &'a str,
    env: &'a str,
    predicted: f64,
    rank: usize,
}

/// Predicts new lines in the environments of a trial model: the lines' kernel with the training
/// lines (the model's, on the training lines' allele frequencies and scaling) through the fitted
/// state, plus each environment's level.
fn predict_trial(
    args: &PredictArgs,
    manifest: &genopred_core::records::Manifest,
    trial: &genopred_core::records::TrialModel,
    entry: &'static dyn genopred_zoo::ModelEntry,
    device: &burn::prelude::Device,
) -> Result<()> {
    use genopred_core::records::{TrialFit, TrialState};

    let mut state: TrialState = serde_json::from_slice(
        &std::fs::read(args.model.join(super::train::TRIAL_STATE))
            .with_context(|| format!("reading {}", args.model.join(super::train::TRIAL_STATE).display()))?,
    )
    .with_context(|| format!("{}", args.model.join(super::train::TRIAL_STATE).display()))?;
    let envs: Vec<usize> = match &args.env {
        Some(name) => match trial.envs.iter().position(|e| e == name) {
            Some(e) => vec![e],
            // An environment outside the trial, placed by its covariates (a kernel model with a
            // reaction norm).
            None if let Some(path) = &args.env_covariates => {
                let TrialFit::Kernel(fit) = &mut state.fit else {
                    bail!("--env {name}: a network places no environment outside its trial ({})", trial.envs.join(", "))
                };
                let table = genopred_core::trials::EnvCovariates::read(path, &trial.env_column)?;
                let names = fit.reaction.as_ref().map(|r| r.names.clone()).unwrap_or_default();
                if table.names() != names.as_slice() {
                    bail!(
                        "{}: covariates {}; the model was trained with {}",
                        path.display(),
                        table.names().join(", "),
                        names.join(", ")
                    );
                }
                let row = table.rows_for(std::slice::from_ref(name))?.remove(0);
                vec![fit.add_env(name, &row)?]
            }
            None => bail!(
                "--env {name}: the model's environments are {} (an environment outside them needs \
                 --env-covariates and a model trained with them)",
                trial.envs.join(", ")
            ),
        },
        None => (0..trial.envs.len()).collect(),
    };
    let env_names: Vec<String> = match &state.fit {
        TrialFit::Kernel(fit) => fit.envs.clone(),
        TrialFit::Network(fit) => fit.envs.clone(),
    };
    let (reference, means) = model_dir::read_markers(&args.model.join(MARKERS))?;
    eprintln!(
        "model: {} ({} environments) for '{}' on {} markers, trained on {} records of {} lines in {}",
        manifest.model,
        trial.env_model,
        manifest.trait_name,
        manifest.n_markers,
        trial.n_records,
        state.lines.len(),
        trial.envs.join(", ")
    );
    let (new, _) = args.geno.read()?;
    let options = AlignOptions { match_by: args.match_by, min_overlap: args.min_marker_overlap };
    let (mut aligned, report) = align(&reference, &new, &options)
        .with_context(|| format!("aligning {} to the model's markers", args.geno.geno.display()))?;
    eprintln!(
        "markers: {} of the model's {} found; {} imputed with training means",
        report.matched + report.flipped + report.unchecked,
        report.model_markers,
        report.imputed()
    );
    warn_about_missing(&aligned);
    let n_new = aligned.n_samples();
    let predictions: Vec<Vec<f64>> = match &state.fit {
        TrialFit::Kernel(fit) => {
            let model = entry
                .build(Some(&args.model.join(CONFIG)), device)
                .with_context(|| format!("configuring the {} model of {}", entry.name(), args.model.display()))?
                .model;
            kernel_predictions(args, &state, fit, model.as_ref(), &aligned, reference.len(), &envs)?
        }
        TrialFit::Network(fit) => {
            let model = entry
                .load(&args.model.join(CONFIG), &args.model.join(STATE_DIR), device)
                .with_context(|| format!("loading the {} model from {}", entry.name(), args.model.display()))?;
            if !model.mean_imputes_missing() && report.imputed() > 0 {
                aligned = fill_with_means(&aligned, &report.markers, &means)?;
            }
            let rows: Vec<usize> = (0..n_new).collect();
            envs.iter()
                .map(|&e| {
                    fit.predict(model.as_ref(), &aligned, &rows, e)
                        .map_err(|err| anyhow!("model {}: {err}", entry.name()))
                })
                .collect::<Result<_>>()?
        }
    };
    let mut rows = Vec::with_capacity(envs.len() * n_new);
    for (&e, predicted) in envs.iter().zip(&predictions) {
        if let Some(i) = predicted.iter().position(|p| !p.is_finite()) {
            bail!("model {} predicted a non-finite value for sample '{}'", entry.name(), aligned.samples()[i]);
        }
        let mut order: Vec<usize> = (0..n_new).collect();
        order.sort_by(|&a, &b| {
            let c = predicted[b].total_cmp(&predicted[a]);
            if args.lower_is_better { c.reverse() } else { c }
        });
        for (rank, &i) in order.iter().enumerate() {
            rows.push(TrialGebv {
                id: &aligned.samples()[i],
                env: &env_names[e],
                predicted: predicted[i],
                rank: rank + 1,
            });
        }
    }
    write_csv(&args.out, rows, b',')?;
    if let Some(path) = &args.alignment {
        write_alignment(path, &reference, &new, &report.markers)?;
    }
    eprintln!("wrote predictions for {} samples in {} environment(s) to {}", n_new, envs.len(), args.out.display());
    Ok(())
}

/// A kernel trial model's predictions of the aligned candidates in each of `envs`: through the
/// lines' kernel over its training lines (`lines.csv`) then the candidates, on the training
/// lines' allele frequencies and scaling.
fn kernel_predictions(
    args: &PredictArgs,
    state: &genopred_core::records::TrialState,
    fit: &genopred_core::env_model::KernelEnvFit,
    model: &dyn genopred_core::Predictor,
    aligned: &GenotypeMatrix,
    n_markers: usize,
    envs: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let (lines, _) = genopred_core::read_genotypes(&args.model.join(super::train::LINES), None)?;
    if lines.n_markers() != n_markers || lines.samples() != state.lines.as_slice() {
        bail!("{}: lines.csv does not match the model's markers and training lines", args.model.display());
    }
    // The training lines then the new ones, on the model's markers (new lines renamed inside:
    // a candidate may share a training line's id).
    let (n_train, n_new) = (lines.n_samples(), aligned.n_samples());
    let mut codes = Vec::with_capacity((n_train + n_new) * n_markers);
    for s in 0..n_train {
        codes.extend_from_slice(&lines.row(s));
    }
    for s in 0..n_new {
        codes.extend_from_slice(&aligned.row(s));
    }
    let samples: Vec<String> =
        (0..n_train).map(|i| format!("train:{i}")).chain((0..n_new).map(|i| format!("new:{i}"))).collect();
    let stacked = GenotypeMatrix::new(samples, aligned.markers().to_vec(), codes)?;
    let train_rows: Vec<usize> = (0..n_train).collect();
    let all_rows: Vec<usize> = (0..n_train + n_new).collect();
    let kernel = model
        .genetic_kernel(&stacked, &train_rows, &all_rows)
        .with_context(|| format!("model {} has no genetic kernel", model.name()))?
        .map_err(|e| anyhow!("model {} failed: {e}", model.name()))?;
    Ok(envs.iter().map(|&e| (0..n_new).map(|i| fit.predict(e, |l| kernel[(n_train + i, l)])).collect()).collect())
}
