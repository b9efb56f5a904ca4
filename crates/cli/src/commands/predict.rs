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
    /// Output CSV: `id,predicted,rank`, best first.
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
