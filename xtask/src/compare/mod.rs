//! `cargo xtask compare`: models × backends × datasets → one report.
//!
//! Builds the `genopred` binary once per backend feature set, asks it which models it has
//! (`genopred models --json`), checks that each backend runs on this machine (a backend that
//! does not build or start is skipped, with the reason in the report), runs every cell (dataset
//! × trait × model × backend × seed) as a `genopred cv` run in its own folder, and writes
//! `report.md`, `report.json` and figures (PNG and SVG) to `--out`.
//!
//! Cells are cached by the hash of everything that decides their result (data files, trait,
//! model, backend, seed, fold scheme, config file, extra `cv` arguments, genopred version): a
//! rerun of a larger grid runs only the new cells, and an interrupted cell resumes from its
//! finished folds (`genopred cv --resume`).
//!
//! Modules, each depending only on those listed after it: this one (`run`: the order of
//! things), `report` (`report.md`, `report.json`) with `figures` and `rows`, `build` (binaries,
//! model listing, backend probes), `args` (arguments, suites → [`plan::Plan`]), `cells` (cache
//! key, `cell.json`, one `genopred cv` run), `environment` (machine and versions), and `plan`
//! (the data they share).

mod args;
mod build;
mod cells;
mod environment;
mod figures;
mod plan;
mod report;
mod rows;

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use genopred_core::metrics::mean;
use genopred_core::output::format_duration;

pub use args::CompareArgs;
use cells::{Cell, cell_key, run_cell};
use plan::sanitize;

/// `cargo xtask compare`.
pub fn run(args: CompareArgs) -> Result<()> {
    let root = crate::workspace_root().canonicalize().context("workspace root")?;
    let mut plan = args::plan(&args, &root)?;
    // Recorded now, not when a cell finishes: edits made while the grid runs do not change the
    // binaries already built.
    plan.commit = environment::git_commit(&root);
    let out = if args.out.is_absolute() { args.out.clone() } else { std::env::current_dir()?.join(&args.out) };
    std::fs::create_dir_all(out.join("cells")).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();

    let binaries = build::binaries(&root, &plan)?;
    let mut cells = Vec::new();
    for ds in &plan.datasets {
        for t in &ds.traits {
            for model in &plan.models {
                for (backend, bin) in binaries.for_model(model) {
                    for &seed in &plan.seeds {
                        cells.push((ds, t, model, backend.clone(), bin.clone(), seed));
                    }
                }
            }
        }
    }
    let build_seconds = started.elapsed().as_secs_f64();
    let version = build::genopred_version(&binaries.cpu);
    let total = cells.len();
    let mut results = Vec::with_capacity(total);
    for (i, (ds, t, model, backend, bin, seed)) in cells.into_iter().enumerate() {
        let compute = binaries.compute(model);
        let cell = Cell { dataset: ds, trait_name: t, model, backend: &backend, compute, seed };
        let key = cell_key(&plan, &cell, &version)?;
        let dir_name = format!("{}-{}-{}-{}-s{}-{}", ds.name, sanitize(t), model, backend, seed, &key[..10]);
        let dir = out.join("cells").join(&dir_name);
        print!("[{}/{total}] {} {t}: {model} on {backend}, seed {seed} ... ", i + 1, ds.name);
        std::io::stdout().flush().ok();
        let result = run_cell(&plan, &cell, &bin, &dir, &dir_name, &key, args.rerun);
        match &result.error {
            None => println!(
                "{}r = {:.3}, {}",
                if result.cached { "cached, " } else { "" },
                mean(&result.pearson),
                format_duration(result.wall_seconds)
            ),
            Some(e) => println!("failed: {}", e.lines().last().unwrap_or(e)),
        }
        results.push(result);
    }

    let environment = environment::environment(&root, &binaries.probes, &version, &plan.commit);
    let wall = started.elapsed().as_secs_f64();
    let timing = report::Timing { build_seconds, cells_seconds: wall - build_seconds };
    let model_order: Vec<String> = binaries.listing.models.iter().map(|m| m.name.clone()).collect();
    report::write(&out, &plan, &environment, &binaries.skipped, &results, &timing, &model_order)?;
    println!(
        "report: {} ({} cells in {}, after {} building)",
        out.join("report.md").display(),
        results.len(),
        format_duration(timing.cells_seconds),
        format_duration(build_seconds)
    );
    if results.iter().any(|r| r.error.is_some()) {
        bail!("some cells failed; see the report");
    }
    Ok(())
}
