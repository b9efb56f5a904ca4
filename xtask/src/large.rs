//! `cargo xtask bench-data --large`: `genopred cv` on simulated data at sizes a breeding
//! programme has, recording wall time, peak memory and bytes per genotype (a benchmark, not a
//! test: hours on a laptop).
//!
//! Each size is simulated once with `plink1.9 --simulate-qt` (the trait is the `.fam`'s
//! phenotype column, written to `PREFIX.pheno.csv`), then each model runs `genopred cv` from a
//! release build into `target/bench-data/large/SIZE-MODEL/`. A finished cell (its
//! `summary.json` exists) is read back, not rerun. The table goes to stdout and to
//! `target/bench-data/large.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{bench_data, workspace_root};

/// Sizes run when `--sizes` is not given: the two anchors.
const DEFAULT_SIZES: &str = "10000x50000,30000x30000";

/// Parsed `--large` arguments.
#[derive(Debug)]
struct Large {
    sizes: Vec<(usize, usize)>,
    models: Vec<String>,
    folds: usize,
    only_fold: Option<usize>,
    genopred: Option<PathBuf>,
}

fn value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn parse(args: &[String]) -> Result<Large> {
    let sizes = value(args, "--sizes")
        .unwrap_or(DEFAULT_SIZES)
        .split(',')
        .map(|s| {
            let (n, m) = s.split_once('x').with_context(|| format!("--sizes: '{s}' is not SAMPLESxMARKERS"))?;
            Ok((n.trim().parse()?, m.trim().parse()?))
        })
        .collect::<Result<Vec<(usize, usize)>>>()?;
    let models = value(args, "--models").unwrap_or("gblup,mlp").split(',').map(str::to_string).collect();
    let folds = value(args, "--folds").map(str::parse).transpose()?.unwrap_or(3);
    let only_fold = value(args, "--only-fold").map(str::parse).transpose()?;
    let genopred = value(args, "--genopred").map(PathBuf::from);
    if sizes.iter().any(|&(n, m)| n < 10 || m < 20) {
        bail!("--sizes: at least 10 samples and 20 markers");
    }
    Ok(Large { sizes, models, folds, only_fold, genopred })
}

/// The release `genopred`, built here unless `--genopred` names one.
fn binary(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let root = workspace_root();
    crate::run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(&root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "genopred",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("genopred"))
}

/// `PREFIX.pheno.csv` from the `.fam`'s sixth column (what `--simulate-qt` wrote).
fn phenotypes(prefix: &Path) -> Result<PathBuf> {
    let out = prefix.with_extension("pheno.csv");
    if out.is_file() {
        return Ok(out);
    }
    let fam = prefix.with_extension("fam");
    let text = std::fs::read_to_string(&fam).with_context(|| format!("reading {}", fam.display()))?;
    let mut csv = String::from("id,pheno\n");
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 {
            bail!("{}:{}: expected 6 fields", fam.display(), i + 1);
        }
        writeln!(csv, "{},{}", fields[1], fields[5])?;
    }
    std::fs::write(&out, csv).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// One row of the table, from a finished cell's `summary.json`.
fn row(size: (usize, usize), model: &str, out: &Path) -> Result<String> {
    let path = out.join("summary.json");
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path)?).with_context(|| format!("reading {}", path.display()))?;
    let p = &s["provenance"];
    let gb = |v: &serde_json::Value| v.as_f64().map_or("—".into(), |b| format!("{:.2}", b / 1e9));
    let folds = s["folds"].as_array().map_or(&[][..], Vec::as_slice);
    let mut methods: Vec<&str> = folds.iter().filter_map(|f| f["fit"]["method"].as_str()).collect();
    methods.dedup();
    let per_fold: Vec<f64> = folds.iter().filter_map(|f| f["seconds"].as_f64()).collect();
    Ok(format!(
        "| {} × {} | {model} | {} | {} | {:.0} s | {:.0} s | {} GB | {} | {:.3} |",
        size.0,
        size.1,
        folds.len(),
        if methods.is_empty() { "—".into() } else { methods.join(", ") },
        p["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        per_fold.iter().sum::<f64>() / per_fold.len().max(1) as f64,
        gb(&p["peak_rss_bytes"]),
        p["bytes_per_genotype"].as_f64().map_or("—".into(), |b| format!("{b:.2}")),
        s["metrics"]["pearson"]["mean"].as_f64().unwrap_or(f64::NAN),
    ))
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let large = parse(args)?;
    let genopred = binary(large.genopred.clone())?;
    let dir = workspace_root().join("target").join("bench-data").join("large");
    std::fs::create_dir_all(&dir)?;
    let mut table = String::from(
        "| lines × markers | model | folds run | REML | wall | per fold | peak RSS | bytes/genotype | r |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for &(n, m) in &large.sizes {
        let prefix = bench_data(n, m)?;
        let pheno = phenotypes(&prefix)?;
        for model in &large.models {
            let out = dir.join(format!("{n}x{m}-{model}"));
            if !out.join("summary.json").is_file() {
                let mut cmd = Command::new(&genopred);
                cmd.arg("cv")
                    .arg("--geno")
                    .arg(prefix.with_extension("bed"))
                    .arg("--pheno")
                    .arg(&pheno)
                    .args(["--trait", "pheno", "--model", model, "--folds", &large.folds.to_string(), "--out"])
                    .arg(&out);
                if let Some(k) = large.only_fold {
                    cmd.args(["--only-fold", &k.to_string()]);
                }
                println!("{n} × {m}, {model}: {cmd:?}");
                crate::run(&mut cmd)?;
            }
            let line = row((n, m), model, &out)?;
            println!("{line}");
            table.push_str(&line);
            table.push('\n');
        }
    }
    let md = workspace_root().join("target").join("bench-data").join("large.md");
    std::fs::write(&md, &table).with_context(|| format!("writing {}", md.display()))?;
    println!("\n{table}\nwritten to {}", md.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_sizes_models_and_folds() {
        let l = parse(&args("--large --sizes 100x2000,50x30 --models gblup --folds 5 --only-fold 2")).unwrap();
        assert_eq!(l.sizes, [(100, 2000), (50, 30)]);
        assert_eq!((l.models.as_slice(), l.folds, l.only_fold), (&["gblup".to_string()][..], 5, Some(2)));
        let d = parse(&args("--large")).unwrap();
        assert_eq!(d.sizes, [(10_000, 50_000), (30_000, 30_000)]);
        assert_eq!((d.models.len(), d.folds, d.only_fold), (2, 3, None));
        assert!(parse(&args("--sizes 100")).unwrap_err().to_string().contains("SAMPLESxMARKERS"));
        assert!(parse(&args("--sizes 5x100")).is_err());
    }

    #[test]
    fn phenotypes_come_from_the_fam_and_a_short_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("sim");
        std::fs::write(prefix.with_extension("fam"), "a a 0 0 2 0.5\nb b 0 0 1 -1.25\n").unwrap();
        let csv = phenotypes(&prefix).unwrap();
        assert_eq!(std::fs::read_to_string(csv).unwrap(), "id,pheno\na,0.5\nb,-1.25\n");
        let bad = dir.path().join("bad");
        std::fs::write(bad.with_extension("fam"), "a a 0 0 2\n").unwrap();
        assert!(phenotypes(&bad).unwrap_err().to_string().contains("bad.fam:1"));
    }

    #[test]
    fn a_row_reads_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let summary = serde_json::json!({
            "folds": [
                {"seconds": 10.0, "fit": {"method": "matrix-free"}},
                {"seconds": 30.0, "fit": {"method": "matrix-free"}}
            ],
            "metrics": {"pearson": {"mean": 0.41234}},
            "provenance": {"wall_seconds": 45.2, "peak_rss_bytes": 1.5e9, "bytes_per_genotype": 2.5}
        });
        std::fs::write(dir.path().join("summary.json"), summary.to_string()).unwrap();
        let line = row((1000, 600), "gblup", dir.path()).unwrap();
        assert_eq!(line, "| 1000 × 600 | gblup | 2 | matrix-free | 45 s | 20 s | 1.50 GB | 2.50 | 0.412 |");
    }
}
