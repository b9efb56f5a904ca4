//! `cargo xtask compare`: models × backends × datasets → one report.
//!
//! Builds the `genopred` binary once per backend feature set, asks it which models it has
//! (`genopred models --json`), checks that each backend runs on this machine (a backend that
//! does not build or start is skipped, with the reason in the report), runs every cell (dataset
//! × trait × model × backend × seed) in its own folder as fold tasks (`genopred cv --only-fold K
//! --record-only`), merges each cell's folds (`genopred cv --resume`), and writes `report.md`, `report.html`,
//! `report.json` and figures (PNG and SVG) to `--out`. The tasks run on this machine, `--jobs`
//! at a time and longest first (`local`), or as one Slurm job array (`slurm`); the merged
//! results are the same files either way. One comparison at a time writes into `--out`: it
//! holds the folder's lock for its whole run, and a second is refused, naming the holder.
//!
//! Cells are cached by the hash of everything that decides their result (data files, trait,
//! model, backend, seed, fold scheme, config file, extra `cv` arguments, genopred version): a
//! rerun of a larger grid runs only the new cells, and an interrupted cell reruns only its
//! missing folds.
//!
//! Modules, each depending only on those listed after it: `slurm_check` (`cargo xtask
//! slurm-check`: the Slurm executor against a real Slurm), this one (`run`: the order of
//! things), `report` (`report.md`, `report.json`) with `figures` and `rows`, `build` (binaries,
//! model listing, backend probes), `args` (arguments, suites → [`plan::Plan`]), `local` and
//! `slurm` (the executors; `slurm` asks `slurm_queue` what Slurm says of its tasks and
//! `slurm_failure` how one failed), `cells` (cache key, `cv` arguments, `cell.json`, merging),
//! `tasks` (fold tasks, their records and costs), `environment` (machine and versions), and
//! `plan` (the data they share).

mod args;
mod build;
mod cells;
mod differences;
mod environment;
mod figures;
mod local;
mod plan;
mod report;
mod rows;
mod same;
mod slurm;
mod slurm_check;
mod slurm_failure;
mod slurm_queue;
mod tasks;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use genopred_core::folder_lock::{FolderLock, LockMode};
use genopred_core::metrics::mean;
use genopred_core::output::{format_duration, write_atomic};

pub use args::CompareArgs;
use cells::{Cell, cached, cell_key, cv_args, dir_name, from_other_build, merge, result};
use plan::CellResult;
pub use same::run as same_results;
pub use slurm_check::run as slurm_check;
use tasks::{CellSpec, Task, fold_done, fold_failure, folds_of, task_path};

/// A cell to run, owned.
struct Pending<'a> {
    cell: Cell<'a>,
    bin: PathBuf,
    dir: PathBuf,
    dir_name: String,
    key: String,
    /// Index of the cell's slot in the results.
    slot: usize,
    /// Why its tasks could not be made, if so.
    error: Option<String>,
}

/// `cargo xtask compare`.
pub fn run(args: CompareArgs) -> Result<()> {
    let root = crate::workspace_root().canonicalize().context("workspace root")?;
    let mut plan = args::plan(&args, &root)?;
    // Recorded now, not when a cell finishes: edits made while the grid runs do not change the
    // binaries already built.
    plan.commit = environment::git_commit(&root);
    let out = if args.out.is_absolute() { args.out.clone() } else { std::env::current_dir()?.join(&args.out) };
    let _lock = lock_output(&out)?;
    let started = Instant::now();
    let slurm = args.executor == "slurm";
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = if args.jobs == 0 { cores } else { args.jobs };
    let threads = match (args.threads_per_job, slurm) {
        (Some(0), _) => bail!("--threads-per-job must be at least 1"),
        (Some(t), _) => t,
        (None, true) => args.slurm.slurm_cpus.max(1),
        (None, false) => (cores / jobs).max(1),
    };

    let binaries = match &args.genopred {
        Some(bin) => build::given(bin, &plan)?,
        None => build::binaries(&root, &plan, &args.profile)?,
    };
    let build_seconds = started.elapsed().as_secs_f64();
    let version = build::genopred_version(&binaries.cpu);
    let mut grid = Vec::new();
    let axes: Vec<Vec<Option<(String, String)>>> = plan.datasets.iter().map(|d| d.trial_axes()).collect();
    for (ds, axes) in plan.datasets.iter().zip(&axes) {
        for t in &ds.traits {
            for trial in axes {
                for model in plan.models_for(ds) {
                    let variants: &[bool] =
                        if plan.tunes(model, binaries.has_space(model)) { &[false, true] } else { &[false] };
                    for &tuned in variants {
                        for (backend, bin) in binaries.for_model(model) {
                            for &seed in &plan.seeds {
                                let trial = trial.as_ref().map(|(s, m)| (s.as_str(), m.as_str()));
                                grid.push((ds, t, trial, model, tuned, backend.clone(), bin.clone(), seed));
                            }
                        }
                    }
                }
            }
        }
    }

    // Cached cells are read back; the others become fold tasks.
    let mut results: Vec<Option<CellResult>> = Vec::with_capacity(grid.len());
    let mut pending: Vec<Pending<'_>> = Vec::new();
    let backends: Vec<String> = grid.iter().map(|g| g.5.clone()).collect();
    for (i, (ds, t, trial, model, tuned, _, bin, seed)) in grid.iter().enumerate() {
        let compute = binaries.compute(model);
        let (backend, seed, tuned, trial) = (&backends[i], *seed, *tuned, *trial);
        let cell = Cell { dataset: ds, trait_name: t, model, backend, compute, seed, tuned, trial };
        let key = cell_key(&plan, &cell, &version)?;
        let dir_name = dir_name(&cell, &key);
        let dir = out.join("cells").join(&dir_name);
        if args.rerun && dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {} for --rerun", dir.display()))?;
        }
        match cached(&dir, &key) {
            Some(record) => results.push(Some(result(&cell, &dir, &dir_name, &key, Ok(record), true))),
            None if !args.rerun
                && let Some(r) = from_other_build(&plan, &cell, &out, &version)? =>
            {
                results.push(Some(r))
            }
            None => {
                results.push(None);
                pending.push(Pending { cell, bin: bin.clone(), dir, dir_name, key, slot: i, error: None });
            }
        }
    }
    let cached_count = results.iter().flatten().count();
    let history = tasks::history(&out);
    let mut work: Vec<Task> = Vec::new();
    for (p_index, p) in pending.iter_mut().enumerate() {
        match cell_tasks(&plan, p, p_index, threads, &history) {
            Ok(t) => work.extend(t),
            Err(e) => p.error = Some(e),
        }
    }
    tasks::longest_first(&mut work);
    println!(
        "{} cells: {cached_count} from the cache, {} to run as {} fold task(s) ({}, {threads} thread(s) each)",
        grid.len(),
        pending.len(),
        work.len(),
        if slurm { "Slurm job array".to_string() } else { format!("{jobs} at once on this machine") }
    );

    let failures = if slurm {
        let missing = |t: &Task| !fold_done(&pending[t.cell].dir, t.repeat, t.fold);
        match slurm::run(&out, &work, &args.slurm, &missing)? {
            slurm::Outcome::Stopped => return Ok(()),
            slurm::Outcome::Ended(failures) => failures,
        }
    } else {
        local::run(&work, jobs);
        slurm::Failures::new()
    };

    // Merge every cell whose folds are all recorded.
    for (index, p) in pending.iter().enumerate() {
        let outcome = match &p.error {
            Some(e) => Err(e.clone()),
            None => match unfinished(index, p, &work, &failures) {
                Some(e) => Err(e),
                None => merge(&plan, &p.cell, &p.bin, &p.dir, &p.key, threads),
            },
        };
        let r = result(&p.cell, &p.dir, &p.dir_name, &p.key, outcome, false);
        let what = match &r.error {
            None => format!("r = {:.3}", mean(&r.pearson)),
            Some(e) => format!("failed: {}", e.lines().last().unwrap_or(e)),
        };
        println!("{} {}: {} on {}, seed {}: {what}", r.dataset, r.trait_name, r.model, r.backend, r.seed);
        results[p.slot] = Some(r);
    }
    let results: Vec<CellResult> = results.into_iter().flatten().collect();

    let environment = environment::environment(&root, &binaries.probes, &version, &plan.commit);
    let wall = started.elapsed().as_secs_f64();
    let timing = report::Timing { build_seconds, cells_seconds: wall - build_seconds };
    let execution = report::Execution {
        executor: args.executor.clone(),
        jobs: if slurm { None } else { Some(jobs) },
        threads_per_job: threads,
        slurm_jobs: if slurm { slurm::Submissions::read(&out)?.job_ids() } else { Vec::new() },
    };
    // The catalogue's order, each tuned row right after its model's.
    let model_order: Vec<String> =
        binaries.listing.models.iter().flat_map(|m| [m.name.clone(), plan::tuned_label(&m.name)]).collect();
    report::write(&out, &plan, &environment, &binaries.skipped, &results, &timing, &execution, &model_order)?;
    println!(
        "report: {} and {} ({} cells in {}, after {} building)",
        out.join("report.md").display(),
        out.join("report.html").display(),
        results.len(),
        format_duration(timing.cells_seconds),
        format_duration(build_seconds)
    );
    if results.iter().any(|r| r.error.is_some()) {
        bail!("some cells failed; see the report");
    }
    Ok(())
}

/// The fold tasks of a cell still to run (folds recorded by an earlier, interrupted run are
/// kept), after writing its `cell-spec.json`.
fn cell_tasks(
    plan: &plan::Plan,
    p: &Pending<'_>,
    index: usize,
    threads: usize,
    history: &[(CellSpec, plan::TaskRun)],
) -> std::result::Result<Vec<Task>, String> {
    std::fs::create_dir_all(p.dir.join("tasks")).map_err(|e| format!("creating {}: {e}", p.dir.display()))?;
    let spec = CellSpec {
        dataset: p.cell.dataset.name.clone(),
        trait_name: p.cell.trait_label(),
        model: p.cell.label(),
        backend: p.cell.backend.to_string(),
        seed: p.cell.seed,
    };
    write_atomic(&p.dir.join("cell-spec.json"), serde_json::to_string_pretty(&spec).expect("spec").as_bytes())
        .map_err(|e| e.to_string())?;
    let base = cv_args(plan, &p.cell, &p.dir);
    // A trial's folds depend on its scheme (CV0: one per environment): listed by the binary.
    let listed = plan.folds_file_for(p.cell.dataset).is_some() || p.cell.trial.is_some();
    let folds = folds_of(&p.bin, &base, listed, plan.folds)?;
    let estimate = tasks::estimate(&spec, history);
    let label = format!("{} {} {} {} s{}", spec.dataset, spec.trait_name, spec.model, spec.backend, spec.seed);
    Ok(folds
        .into_iter()
        .filter(|&(repeat, fold)| !fold_done(&p.dir, repeat, fold))
        .map(|(repeat, fold)| {
            let mut args = base.clone();
            args.extend([
                "--only-fold".to_string(),
                fold.to_string(),
                "--record-only".into(),
                "--resume".into(),
                "--threads-per-job".into(),
                threads.to_string(),
            ]);
            Task {
                cell: index,
                label: label.clone(),
                repeat,
                fold,
                program: p.bin.clone(),
                args,
                threads,
                log: task_path(&p.dir, repeat, fold, "log"),
                record: task_path(&p.dir, repeat, fold, "json"),
                estimate,
            }
        })
        .collect())
}

/// Creates the output folder and takes its lock, to be held for the life of the process: two
/// comparisons in one folder would share cells, Slurm submission folders and the task tables
/// an array still reads. The error names the process holding it.
pub(crate) fn lock_output(out: &Path) -> Result<FolderLock> {
    std::fs::create_dir_all(out.join("cells")).with_context(|| format!("creating {}", out.display()))?;
    // The error names the folder and its holder already.
    Ok(FolderLock::acquire(out, LockMode::Exclusive, "run a comparison")?)
}

/// Why a cell cannot be merged yet: the first of its tasks whose fold is not recorded, with how
/// the executor saw it end (a Slurm task's id, state and log) and its log's error lines.
fn unfinished(index: usize, p: &Pending<'_>, work: &[Task], failures: &slurm::Failures) -> Option<String> {
    let t = work.iter().find(|t| t.cell == index && !fold_done(&p.dir, t.repeat, t.fold))?;
    Some(fold_failure(t, failures.get(&t.record).map(|f| f as &dyn std::fmt::Display)))
}

/// `run()` — a process start — again while it fails with "text file busy" (ETXTBSY): Linux
/// refuses to start a program some process holds open for writing, which a child forked by
/// another thread between a build or script write and its own `exec` briefly does. Ten tries
/// 50 ms apart; any other outcome is returned as it is.
pub(crate) fn retry_busy<T>(mut run: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 0;
    loop {
        match run() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}
