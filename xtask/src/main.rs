//! `cargo xtask`: project automation that needs external tools (PLINK, bgzip) or runs many
//! cargo commands. Never needed by `cargo test`.
//!
//! - `cargo xtask ci` — format check, clippy, tidy, tests (what `.ci/run` does after installing
//!   tools).
//! - `cargo xtask tidy` — check the Architecture Invariants of ARCHITECTURE.md (`tidy.rs`).
//! - `cargo xtask fixtures` — regenerate the VCF and CSV forms of the PLINK fixtures with plink2.
//! - `cargo xtask compare [--models ..] [--backends ..] [--suite paper|quick] ...` — every model
//!   on every backend on one or more datasets, as `genopred cv` runs, into one report
//!   (`compare/`; `cargo xtask compare --help`). `--jobs N` runs fold tasks in parallel here,
//!   `--executor slurm` as a Slurm job array.
//! - `cargo xtask slurm-check` — the Slurm executor of `compare` against the real Slurm of this
//!   machine (`scripts/slurm-single-node.sh`): a task that times out, one cancelled, one killed,
//!   one requeued, a retry, a controller outage; each ends in a clear error and resumes
//!   (`compare/slurm_check.rs`; root, about 100 s).
//! - `cargo xtask env-table [--baseline MODEL/ENV_MODEL] DIR...` — multi-environment runs
//!   (`genopred cv --env`) side by side per scheme: r within each environment and paired
//!   differences against the baseline (`envs.rs`).
//! - `cargo xtask same-results A B` — whether two compare folders hold the same results
//!   (bit-identical metrics and predictions per cell), e.g. a Slurm run against a local one.
//! - `cargo xtask bench-reference [--threads 2] [--runs 4] [--epochs E] [--features tch]` — ms
//!   per training step (and with `--epochs`, per whole epoch) on genopred's backends against the
//!   same networks in PyTorch (`benches/reference/`; needs Python with torch, never run in CI).
//! - `cargo xtask bench-data [--samples N] [--markers M]` — simulate a PLINK file set with
//!   `plink1.9 --simulate-qt` for the reader benchmark, and time `plink2 --make-bed` on it.
//! - `cargo xtask bench-data --large [--sizes NxM,...] [--models gblup,mlp] [--folds 3]
//!   [--only-fold K]` — `genopred cv` at breeding-programme sizes: wall time, peak memory and
//!   bytes per genotype per model and size (`large.rs`; hours, never run in CI).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;

mod compare;
mod envs;
mod large;
mod reference;
mod render;
mod tidy;

/// The workspace root (this crate's parent folder).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo xtask compare`: models × backends × datasets → one report.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask compare", about = "Every model on every backend, as `genopred cv` runs, into one report")]
struct CompareCli {
    #[command(flatten)]
    args: compare::CompareArgs,
}

/// `cargo xtask bench-reference`: genopred's training steps against PyTorch's.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask bench-reference",
    about = "ms per training step: genopred's backends vs PyTorch on the CPU"
)]
struct ReferenceCli {
    #[command(flatten)]
    args: reference::ReferenceArgs,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::run(&workspace_root()),
        Some("compare") => compare::run(CompareCli::parse_from(std::env::args().skip(1)).args),
        Some("slurm-check") => compare::slurm_check(),
        Some("same-results") => match (args.get(1), args.get(2)) {
            (Some(a), Some(b)) => compare::same_results(Path::new(a), Path::new(b)),
            _ => bail!("usage: cargo xtask same-results COMPARE_OUT_A COMPARE_OUT_B"),
        },
        Some("bench-reference") => reference::run(ReferenceCli::parse_from(std::env::args().skip(1)).args),
        Some("render-report") => render::run(&args[1..]),
        Some("env-table") => envs::run(&args[1..]),
        Some("fixtures") => fixtures(),
        Some("bench-data") if args.iter().any(|a| a == "--large") => large::run(&args[1..]),
        Some("bench-data") => {
            let samples = flag(&args, "--samples").unwrap_or(2000);
            let markers = flag(&args, "--markers").unwrap_or(50_000);
            let prefix = bench_data(samples, markers)?;
            time_plink2_make_bed(&prefix)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | tidy | compare [--help] | slurm-check | env-table [--baseline M/E] DIR... | same-results A B | render-report PAGE.html... [--out DIR] | bench-reference [--help] | fixtures | bench-data [--samples N] [--markers M] | bench-data --large [--sizes NxM,...] [--models A,B] [--folds K] [--only-fold K] [--genopred BIN]>"
            );
            bail!("unknown or missing xtask command")
        }
    }
}

fn flag(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?} (is it installed?)"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn ci() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = workspace_root();
    run(Command::new(&cargo).current_dir(&root).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(&cargo).current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    tidy::run(&root)?;
    run(Command::new(&cargo).current_dir(&root).args(["test", "--workspace"]))
}

/// Regenerates `X.vcf.gz` (plink2, BGZF) and `X_dosage.csv` (plink2 `--export A`, reshaped to
/// `id,marker...`) beside each PLINK fixture. wheat599's CSV ships with the original data.
fn fixtures() -> Result<()> {
    for (dir, name, csv) in [("wheat599", "wheat599", false), ("maize300", "maize300", true)] {
        let prefix = workspace_root().join("fixtures").join(dir).join(name);
        run(Command::new("plink2")
            .args(["--bfile"])
            .arg(&prefix)
            .args(["--export", "vcf", "bgz", "id-paste=iid", "--out"])
            .arg(&prefix))?;
        if csv {
            let tmp = std::env::temp_dir().join(format!("genopred-{name}"));
            // Count the .bim's A1 allele, as the .bed and the VCF's ALT do (plink2 would count REF).
            let alleles = tmp.with_extension("a1");
            let bim = std::fs::read_to_string(prefix.with_extension("bim")).context("reading .bim")?;
            let a1: String = bim
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 6).then(|| format!("{}\t{}\n", f[1], f[4]))
                })
                .collect();
            std::fs::write(&alleles, a1).context("writing the allele list")?;
            run(Command::new("plink2")
                .arg("--bfile")
                .arg(&prefix)
                .args(["--export", "A", "--export-allele"])
                .arg(&alleles)
                .arg("--out")
                .arg(&tmp))?;
            raw_to_csv(&tmp.with_extension("raw"), &prefix.with_file_name(format!("{name}_dosage.csv")))?;
        }
        let _ = std::fs::remove_file(prefix.with_extension("log"));
    }
    Ok(())
}

/// PLINK `.raw` (FID IID PAT MAT SEX PHENOTYPE then `MARKER_ALLELE` columns) to genopred's CSV.
fn raw_to_csv(raw: &Path, csv: &Path) -> Result<()> {
    let text = std::fs::read_to_string(raw).with_context(|| format!("reading {}", raw.display()))?;
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 7 {
            bail!("{}: line {} has {} fields", raw.display(), i + 1, fields.len());
        }
        let cells: Vec<String> = if i == 0 {
            std::iter::once("id".to_string())
                .chain(fields[6..].iter().map(|h| h.rsplit_once('_').map_or(*h, |(m, _)| m).to_string()))
                .collect()
        } else {
            std::iter::once(fields[1]).chain(fields[6..].iter().copied()).map(String::from).collect()
        };
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(csv, out).with_context(|| format!("writing {}", csv.display()))
}

/// The simulated PLINK file set of the reader benchmark, made once with `plink1.9
/// --simulate-qt` (20 causal markers). Same folder, names and settings as
/// `genopred_benches::simulated_plink`, so the benchmark finds it (xtask does not depend on the
/// benches crate, which brings burn).
fn bench_data(samples: usize, markers: usize) -> Result<PathBuf> {
    let dir = workspace_root().join("target").join("bench-data");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let prefix = dir.join(format!("sim{samples}x{markers}"));
    if !prefix.with_extension("bed").is_file() {
        let causal = 20.min(markers);
        let sim = dir.join(format!("sim{markers}.txt"));
        std::fs::write(&sim, format!("{} null 0.05 0.95 0 0\n{causal} causal 0.05 0.95 0.05 0\n", markers - causal))
            .with_context(|| format!("writing {}", sim.display()))?;
        run(Command::new("plink1.9")
            .arg("--simulate-qt")
            .arg(&sim)
            .args(["--simulate-n", &samples.to_string(), "--seed", "1", "--make-bed", "--out"])
            .arg(&prefix))?;
    }
    let bed = prefix.with_extension("bed");
    let bytes = std::fs::metadata(&bed).map_or(0, |m| m.len());
    println!("{} ({bytes} bytes)", bed.display());
    Ok(prefix)
}

fn time_plink2_make_bed(prefix: &Path) -> Result<()> {
    let out = prefix.with_file_name("plink2-copy");
    let started = Instant::now();
    run(Command::new("plink2")
        .arg("--bfile")
        .arg(prefix)
        .args(["--make-bed", "--threads", "1", "--silent", "--out"])
        .arg(&out))?;
    let one = started.elapsed().as_secs_f64();
    let started = Instant::now();
    run(Command::new("plink2").arg("--bfile").arg(prefix).args(["--make-bed", "--silent", "--out"]).arg(&out))?;
    let all = started.elapsed().as_secs_f64();
    println!("plink2 --make-bed on {}: {one:.3} s (1 thread), {all:.3} s (default threads)", prefix.display());
    Ok(())
}
