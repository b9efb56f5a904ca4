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
    /// Describe `--pheno` as a multi-environment trial: a long table whose environments are in
    /// this column (with `--trait`), or, with `--env-columns`, a wide one.
    #[arg(long, value_name = "COLUMN", requires = "trait_name", conflicts_with = "env_columns")]
    env: Option<String>,
    /// The wide table's environment columns (comma-separated), with `--trait`.
    #[arg(long, value_name = "COL,COL...", value_delimiter = ',', requires = "trait_name")]
    env_columns: Vec<String>,
    /// The trait measured in the trial.
    #[arg(long = "trait", value_name = "NAME")]
    trait_name: Option<String>,
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
    if args.env.is_some() || !args.env_columns.is_empty() {
        return describe_trial(args, &g);
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

/// The trial: records, lines and values per environment, how many environments a line was tested
/// in, and each pair of environments' shared lines and phenotypic correlation on them (what a G×E
/// model can borrow between them; a negative one is what `--env-model gxe-us` is for).
fn describe_trial(args: &InfoArgs, g: &genopred_core::GenotypeMatrix) -> Result<()> {
    use anyhow::Context;
    use genopred_core::trials::{TrialOptions, Trials};
    let path = args.pheno.pheno.as_ref().context("--env needs --pheno")?;
    let trait_name = args.trait_name.clone().unwrap_or_default();
    let trials = match &args.env {
        Some(column) => Trials::read(
            path,
            &TrialOptions {
                id_column: args.pheno.id_column.clone(),
                env_column: column.clone(),
                trait_name: trait_name.clone(),
                fixed: Vec::new(),
                missing: args.pheno.pheno_missing.clone(),
            },
        )?,
        None => {
            let pheno = args.pheno.read()?.context("--pheno is required")?;
            let columns: Vec<&str> = args.env_columns.iter().map(String::as_str).collect();
            Trials::from_wide(&pheno, &columns, &trait_name)?
        }
    };
    let genotyped: HashSet<&str> = g.samples().iter().map(String::as_str).collect();
    let envs = trials.envs();
    let lines = trials.lines();
    println!();
    println!("trial           {}", path.display());
    println!(
        "records         {} of {} lines in {} environments ({} missing values); {} lines genotyped",
        trials.records().len(),
        lines.len(),
        envs.len(),
        trials.missing_values(),
        lines.iter().filter(|l| genotyped.contains(l.as_str())).count()
    );
    // Each environment's values by line.
    let mut by_env: Vec<std::collections::HashMap<&str, Vec<f64>>> = vec![Default::default(); envs.len()];
    for r in trials.records() {
        by_env[r.env].entry(r.line.as_str()).or_default().push(r.value);
    }
    println!("environments");
    for (e, env) in envs.iter().enumerate() {
        let values: Vec<f64> = by_env[e].values().flatten().copied().collect();
        let s = Summary::of(values.iter().copied());
        let not_genotyped = by_env[e].keys().filter(|l| !genotyped.contains(*l)).count();
        println!(
            "  {env:<16} records={:<6} lines={:<6} not genotyped={not_genotyped:<5} mean={:.4} sd={:.4}",
            values.len(),
            by_env[e].len(),
            s.mean,
            s.sd
        );
    }
    let mut tested = vec![0usize; envs.len() + 1];
    for l in &lines {
        tested[by_env.iter().filter(|m| m.contains_key(l.as_str())).count()] += 1;
    }
    println!("lines tested in");
    for (k, n) in tested.iter().enumerate().skip(1).filter(|(_, n)| **n > 0) {
        println!("  {k} environment(s)  {n}");
    }
    if envs.len() > 1 {
        println!("pairs of environments (lines in both; phenotypic r of the lines' means)");
        let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        for a in 0..envs.len() {
            for b in a + 1..envs.len() {
                let shared: Vec<(f64, f64)> =
                    by_env[a].iter().filter_map(|(l, v)| by_env[b].get(l).map(|w| (mean(v), mean(w)))).collect();
                let (x, y): (Vec<f64>, Vec<f64>) = shared.iter().copied().unzip();
                let r = genopred_core::metrics::pearson(&x, &y);
                println!("  {:<16} {:<16} shared={:<6} r={r:.3}", envs[a], envs[b], shared.len());
            }
        }
    }
    Ok(())
}
