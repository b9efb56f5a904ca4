//! Reading the genotype and phenotype files named on the command line, with the summary lines a
//! user needs to see that the right data went in.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::Device;
use clap::Args;
use genopred_core::qc::QcConfig;
use genopred_core::readers::ReadReport;
use genopred_core::records::{FileInput, GenoInput, Inputs};
use genopred_core::{GenotypeFormat, GenotypeMatrix, PhenoOptions, Phenotypes};
use genopred_zoo::{Built, ModelEntry};

/// Flags naming the genotype file.
#[derive(Debug, Clone, Args)]
pub struct GenoArgs {
    /// Genotypes: PLINK .bed (or prefix), .vcf / .vcf.gz, or a numeric .csv / .tsv.
    #[arg(long, value_name = "FILE")]
    pub geno: PathBuf,
    /// Genotype format, when the file name does not tell.
    #[arg(long, value_name = "plink|vcf|csv")]
    pub format: Option<GenotypeFormat>,
}

/// Flags naming the phenotype file and how to read it.
#[derive(Debug, Clone, Args)]
pub struct PhenoArgs {
    /// Phenotypes: CSV/TSV with an id column and trait columns.
    #[arg(long, value_name = "FILE")]
    pub pheno: Option<PathBuf>,
    /// Name of the id column of the phenotype file (default: `id`, else the first column).
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,
    /// Extra phenotype value meaning "missing" (repeatable), e.g. `--pheno-missing -9`.
    #[arg(long = "pheno-missing", value_name = "VALUE", allow_hyphen_values = true)]
    pub pheno_missing: Vec<String>,
}

/// What every command that fits a model reads: the data, the trait, the model and its settings.
#[derive(Debug, Clone, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub geno: GenoArgs,
    #[command(flatten)]
    pub pheno: PhenoArgs,
    /// Trait (phenotype column) to predict.
    #[arg(long = "trait", value_name = "NAME")]
    pub trait_name: String,
    /// Model (see `genopred models`).
    #[arg(long, default_value = "gblup")]
    pub model: String,
    /// Model settings (TOML) overriding the defaults; the resolved settings are saved as
    /// `config.toml` next to the results, which `--config` reads back.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    /// Seed of every random choice (folds, validation subsets, initial weights, shuffles, dropout).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of the training samples held out for early stopping (models that use it).
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    #[command(flatten)]
    pub qc: QcArgs,
    /// Deep-learning backend for neural models (`genopred backends`): flex, wgpu, cuda or tch,
    /// as compiled in. Default: the config file's `backend = "NAME"`, else the first compiled in.
    #[arg(long)]
    pub backend: Option<String>,
}

/// The model a command fits, resolved: its catalogue entry, backend and settings.
pub struct ModelSetup {
    /// The catalogue entry.
    pub entry: &'static dyn ModelEntry,
    /// The backend name (`flex` ...; for CPU models the one they ignore).
    pub backend: String,
    /// The backend in words, as records state it (`cpu (f64, faer ...)` for CPU models).
    pub backend_label: String,
    /// The burn device.
    pub device: Device,
    /// A first model built from the settings, and the resolved settings.
    pub built: Built,
}

impl FitArgs {
    /// Finds the model in the catalogue, picks the backend and resolves the settings (an error
    /// names the config file).
    pub fn model(&self) -> Result<ModelSetup> {
        let entry = genopred_zoo::find(&self.model)?;
        let backend = self.backend()?;
        let device = crate::backend::device(&backend)?;
        let built = entry
            .build(self.config.as_deref(), &device)
            .with_context(|| format!("configuring model {}{}", entry.name(), self.config_origin()))?;
        let backend_label = crate::backend::describe_for(entry.compute(), &backend);
        Ok(ModelSetup { entry, backend, backend_label, device, built })
    }

    /// The inputs as records state them (paths, format, SHA-256).
    pub fn inputs(&self, read_report: &ReadReport, pheno: &Phenotypes) -> Result<Inputs> {
        Ok(Inputs { geno: GenoInput::of(&self.geno.geno, read_report)?, pheno: FileInput::of(pheno.path())? })
    }

    /// QC thresholds, validation fraction and seed, range-checked (`ndcg_top` as given).
    pub fn options(&self, ndcg_top: f64) -> Result<genopred_core::evaluation::CvOptions> {
        let qc = self.qc.config()?;
        if !(0.0..1.0).contains(&self.valid_fraction) {
            anyhow::bail!("--valid-fraction must be within [0, 1), got {}", self.valid_fraction);
        }
        Ok(genopred_core::evaluation::CvOptions { qc, valid_fraction: self.valid_fraction, ndcg_top, seed: self.seed })
    }

    /// Reads the genotypes, drops samples failing sample QC, reads the phenotypes and matches
    /// them with the trait (and `group_by` labels), printing what matched.
    pub fn load(&self, max_sample_missing: f64, group_by: Option<&str>) -> Result<LoadedData> {
        let (geno_all, read_report) = self.geno.read()?;
        let (kept_rows, removed) = genopred_core::qc::filter_samples(&geno_all, max_sample_missing);
        if !removed.is_empty() {
            eprintln!("sample QC: removed {} sample(s) with missing rate > {max_sample_missing}", removed.len());
        }
        let geno = if removed.is_empty() { geno_all } else { geno_all.retain_samples(&kept_rows) };
        let pheno = self.pheno.read()?.context("--pheno is required")?;
        let (dataset, matched) = genopred_core::Dataset::assemble_owned(geno, &pheno, &self.trait_name, group_by)?;
        eprintln!(
            "matched: {} of {} genotyped and {} phenotyped samples; {} without '{}'; using {}",
            matched.matched,
            matched.genotyped,
            matched.phenotyped,
            matched.missing_trait,
            self.trait_name,
            matched.used
        );
        Ok(LoadedData { dataset, matched, read_report, pheno, removed })
    }

    /// The backend to run on: `--backend`, else the config file's top-level `backend` key, else
    /// the build's default. Lower-cased.
    pub fn backend(&self) -> Result<String> {
        if let Some(b) = &self.backend {
            return Ok(b.to_ascii_lowercase());
        }
        if let Some(path) = &self.config {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            let table: toml::Table =
                toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
            if let Some(v) = table.get("backend") {
                let name = v.as_str().with_context(|| format!("{}: `backend` must be a string", path.display()))?;
                return Ok(name.to_ascii_lowercase());
            }
        }
        Ok(crate::backend::default_name().to_string())
    }

    /// ` from FILE` when `--config` was given, for error context.
    pub fn config_origin(&self) -> String {
        self.config.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default()
    }
}

/// The data a command fits on, as [`FitArgs::load`] read and matched it.
pub struct LoadedData {
    /// Genotypes and trait values of the samples used.
    pub dataset: genopred_core::Dataset,
    /// How ids matched.
    pub matched: genopred_core::MatchReport,
    /// What the genotype reader reported (format, skipped sites).
    pub read_report: ReadReport,
    /// The phenotype file as read.
    pub pheno: Phenotypes,
    /// Ids removed by sample QC.
    pub removed: Vec<String>,
}

/// Quality-control thresholds (marker filters are fitted on training samples only).
#[derive(Debug, Clone, Args)]
pub struct QcArgs {
    /// Drop markers with minor-allele frequency below this (fitted on the training samples).
    #[arg(long, default_value_t = QcConfig::default().min_maf)]
    pub min_maf: f64,
    /// Drop markers with a larger fraction of missing calls (fitted on the training samples).
    #[arg(long, default_value_t = QcConfig::default().max_marker_missing)]
    pub max_marker_missing: f64,
    /// Drop samples with a larger fraction of missing calls.
    #[arg(long, default_value_t = QcConfig::default().max_sample_missing)]
    pub max_sample_missing: f64,
}

impl QcArgs {
    /// The thresholds, range-checked.
    pub fn config(&self) -> Result<QcConfig> {
        let qc = QcConfig {
            min_maf: self.min_maf,
            max_marker_missing: self.max_marker_missing,
            max_sample_missing: self.max_sample_missing,
        };
        qc.check()?;
        Ok(qc)
    }
}

impl GenoArgs {
    /// Reads the genotypes.
    pub fn read(&self) -> Result<(GenotypeMatrix, ReadReport)> {
        let (g, report) = genopred_core::read_genotypes(&self.geno, self.format)
            .with_context(|| format!("reading genotypes from {}", self.geno.display()))?;
        eprintln!(
            "genotypes: {} samples × {} markers ({}{}) from {}",
            g.n_samples(),
            g.n_markers(),
            report.format,
            if report.vcf.skipped_multiallelic > 0 {
                format!(", {} multi-allelic sites skipped", report.vcf.skipped_multiallelic)
            } else {
                String::new()
            },
            self.geno.display()
        );
        Ok((g, report))
    }
}

impl PhenoArgs {
    /// Reads the phenotypes, if a file was given.
    pub fn read(&self) -> Result<Option<Phenotypes>> {
        let Some(path) = &self.pheno else { return Ok(None) };
        let options = PhenoOptions { id_column: self.id_column.clone(), missing: self.pheno_missing.clone() };
        let p =
            Phenotypes::read(path, &options).with_context(|| format!("reading phenotypes from {}", path.display()))?;
        Ok(Some(p))
    }
}
