//! `genopred info`: what is in a genotype file, and how a phenotype file matches it.

use std::collections::{BTreeSet, HashSet};

use anyhow::Result;
use clap::Args;
use genopred_core::metrics::Summary;
use genopred_core::qc::MarkerStats;

use crate::inputs::{GenoArgs, PhenoArgs};

/// Arguments of `genopred info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    geno: GenoArgs,
    #[command(flatten)]
    pheno: PhenoArgs,
}

/// Upper edges of the minor-allele-frequency bins shown.
const MAF_BINS: [f64; 7] = [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5];

/// Prints the description.
pub fn run(args: &InfoArgs) -> Result<()> {
    let (g, report) = args.geno.read()?;
    let rows: Vec<usize> = (0..g.n_samples()).collect();
    let stats = MarkerStats::compute(&g, &rows);
    let chroms: BTreeSet<&str> = g.markers().iter().map(|m| m.chrom.as_str()).collect();
    println!("file            {}", args.geno.geno.display());
    println!("format          {}", report.format);
    println!("samples         {}", g.n_samples());
    println!("markers         {}", g.n_markers());
    if report.vcf.skipped_multiallelic + report.vcf.skipped_monomorphic_ref > 0 {
        println!(
            "skipped sites   {} multi-allelic, {} without ALT",
            report.vcf.skipped_multiallelic, report.vcf.skipped_monomorphic_ref
        );
    }
    println!("chromosomes     {}", chroms.len());
    println!("missing rate    {:.4}", g.missing_rate());
    println!(
        "held in memory  {:.1} MiB ({})",
        g.stored_bytes() as f64 / (1 << 20) as f64,
        if g.is_packed() { "2 bits per call" } else { "1 byte per call: fractional dosages" }
    );
    let monomorphic = stats.sd.iter().filter(|&&s| s < 1e-9).count();
    println!("monomorphic     {monomorphic}");
    println!("MAF spectrum");
    let mafs: Vec<f64> = (0..g.n_markers()).filter(|&j| stats.sd[j] >= 1e-9).map(|j| stats.maf(j)).collect();
    for w in MAF_BINS.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let count = mafs.iter().filter(|&&f| f >= lo && (f < hi || (hi == 0.5 && f <= hi))).count();
        println!("  [{lo:.2}, {hi:.2}{}  {count}", if hi == 0.5 { "]" } else { ")" });
    }
    let Some(pheno) = args.pheno.read()? else { return Ok(()) };
    let geno_ids: HashSet<&str> = g.samples().iter().map(String::as_str).collect();
    let matched = pheno.ids().iter().filter(|id| geno_ids.contains(id.as_str())).count();
    println!();
    println!("phenotypes      {}", pheno.path().display());
    println!("samples         {} ({matched} also genotyped)", pheno.ids().len());
    println!("id column       {}", pheno.id_column());
    println!("columns");
    for name in pheno.columns() {
        match pheno.trait_values(name) {
            Ok(values) => {
                let s = Summary::of(values.iter().flatten().copied());
                let missing = values.iter().filter(|v| v.is_none()).count();
                println!("  {name:<16} numeric  n={:<6} missing={missing:<5} mean={:.4} sd={:.4}", s.n, s.mean, s.sd);
            }
            Err(_) => {
                let labels = pheno.labels(name)?;
                let levels: BTreeSet<&String> = labels.iter().flatten().collect();
                println!("  {name:<16} labels   levels={} (usable with --group-by)", levels.len());
            }
        }
    }
    Ok(())
}
