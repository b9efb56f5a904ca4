//! The unit every executor runs: one fold of one cell, as a `genopred cv --only-fold K
//! --record-only` process writing into the cell's folder. What each task took is recorded beside
//! the fold (`cells/CELL/tasks/rRR-fFFF.json`), whichever executor ran it; later runs read those
//! records to start the longest tasks first.

use std::path::{Path, PathBuf};
use std::process::Command;

use genopred_core::output::write_atomic;
use serde::{Deserialize, Serialize};

use super::build::error_lines;
pub use super::plan::TaskRun;

/// Which cell a folder holds (`cells/CELL/cell-spec.json`), for reading task times back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellSpec {
    /// Dataset name.
    pub dataset: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Model.
    pub model: String,
    /// Backend label.
    pub backend: String,
    /// Seed.
    pub seed: u64,
}

/// One fold of one cell to run.
#[derive(Debug, Clone)]
pub struct Task {
    /// Index of the cell in the list of cells being run.
    pub cell: usize,
    /// Label for progress lines (`wheat599 yield_env1 dnngp flex s1`).
    pub label: String,
    /// Repeat and fold index.
    pub repeat: usize,
    /// Fold index (1-based, as `--only-fold` takes it).
    pub fold: usize,
    /// The binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Threads the fold computes with.
    pub threads: usize,
    /// Where the process's output goes.
    pub log: PathBuf,
    /// Where the [`TaskRun`] goes.
    pub record: PathBuf,
    /// Expected seconds, from earlier runs of the same kind of cell (`None`: unknown).
    pub estimate: Option<f64>,
}

/// `cells/CELL/tasks/rRR-fFFF` + `ext`.
pub fn task_path(cell_dir: &Path, repeat: usize, fold: usize, ext: &str) -> PathBuf {
    cell_dir.join("tasks").join(format!("r{repeat:02}-f{fold:03}.{ext}"))
}

/// Whether the cell's fold is recorded (`folds/rRR-fFFF.json`, as `genopred cv` names it).
pub fn fold_done(cell_dir: &Path, repeat: usize, fold: usize) -> bool {
    cell_dir.join("folds").join(format!("r{repeat:02}-f{fold:03}.json")).is_file()
}

/// The `(repeat, fold)` pairs of a cell: `1..=k` for k-fold, else whatever the binary plans from
/// the folds file (`genopred cv --list-folds`, so the folds are exactly the run's).
pub fn folds_of(bin: &Path, base_args: &[String], folds_file: bool, k: usize) -> Result<Vec<(usize, usize)>, String> {
    if !folds_file {
        return Ok((1..=k).map(|f| (1, f)).collect());
    }
    let out = super::retry_busy(|| Command::new(bin).args(base_args).arg("--list-folds").output())
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!("listing the folds: {}", error_lines(&String::from_utf8_lossy(&out.stderr))));
    }
    #[derive(Deserialize)]
    struct Listed {
        repeat: usize,
        index: usize,
    }
    let listed: Vec<Listed> =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reading the fold listing: {e}"))?;
    Ok(listed.into_iter().map(|f| (f.repeat, f.index)).collect())
}

/// Every task time recorded under `out/cells/`, with the cell it belongs to.
pub fn history(out: &Path) -> Vec<(CellSpec, TaskRun)> {
    let mut found = Vec::new();
    let Ok(cells) = std::fs::read_dir(out.join("cells")) else { return found };
    for cell in cells.flatten() {
        let Some(spec) = std::fs::read(cell.path().join("cell-spec.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<CellSpec>(&b).ok())
        else {
            continue;
        };
        for run in task_runs(&cell.path()) {
            found.push((spec.clone(), run));
        }
    }
    found
}

/// The task records of one cell folder, in fold order.
pub fn task_runs(cell_dir: &Path) -> Vec<TaskRun> {
    let mut runs: Vec<TaskRun> = std::fs::read_dir(cell_dir.join("tasks"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default();
    runs.sort_by_key(|r| (r.repeat, r.fold));
    runs
}

/// Seconds a task of `spec`'s kind is expected to take: the mean of earlier successful tasks of
/// the same dataset, trait, model and backend, else of the same model and backend on any data.
pub fn estimate(spec: &CellSpec, history: &[(CellSpec, TaskRun)]) -> Option<f64> {
    let mean = |pick: &dyn Fn(&CellSpec) -> bool| {
        let s: Vec<f64> = history.iter().filter(|(c, r)| r.exit_code == 0 && pick(c)).map(|(_, r)| r.seconds).collect();
        (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64)
    };
    mean(&|c| {
        c.dataset == spec.dataset
            && c.trait_name == spec.trait_name
            && c.model == spec.model
            && c.backend == spec.backend
    })
    .or_else(|| mean(&|c| c.model == spec.model && c.backend == spec.backend))
}

/// Orders tasks longest first: unknown costs first (they may be the longest), then by estimate,
/// ties in grid order.
pub fn longest_first(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| {
        let key = |t: &Task| t.estimate.unwrap_or(f64::INFINITY);
        key(b).total_cmp(&key(a))
    });
}

/// Writes a task record atomically.
pub fn write_run(path: &Path, run: &TaskRun) -> Result<(), String> {
    let text = serde_json::to_string_pretty(run).expect("task record serialises");
    write_atomic(path, text.as_bytes()).map_err(|e| e.to_string())
}

/// How the Slurm job script begins each attempt of a task, in Slurm's log and in the fold's
/// (`== attempt at DATE on NODE (job J_T, restart count N)`): a requeued or resubmitted task
/// appends to both, and a reader wants the last attempt.
pub const ATTEMPT_HEADER: &str = "== attempt at ";

/// The lines of a log after its last attempt header (all of it when it has none, as the local
/// executor writes them).
pub fn last_attempt(text: &str) -> &str {
    let start = text.rmatch_indices(ATTEMPT_HEADER).map(|(i, _)| i).find(|&i| i == 0 || text[..i].ends_with('\n'));
    match start {
        Some(i) => text[i..].split_once('\n').map_or("", |(_, rest)| rest),
        None => text,
    }
}

/// Why a task's fold is missing, on one line: how the executor saw it end (`ended`: a Slurm
/// task's id, state and log), then the error lines of the last attempt in the fold's own log.
pub fn fold_failure(task: &Task, ended: Option<&dyn std::fmt::Display>) -> String {
    let text = std::fs::read_to_string(&task.log).unwrap_or_default();
    let text = last_attempt(&text);
    let errors = if text.trim().is_empty() { "no output".to_string() } else { error_lines(text) };
    match ended {
        Some(ended) => format!("fold {} did not finish: {ended}; fold log {}: {errors}", task.fold, task.log.display()),
        None => format!("fold {} did not finish: {errors} (log: {})", task.fold, task.log.display()),
    }
}

/// This machine's short host name (as Slurm's `hostname -s` names a node).
pub fn hostname() -> String {
    let full = genopred_core::folder_lock::host_name();
    full.split('.').next().filter(|h| !h.is_empty()).unwrap_or("localhost").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dataset: &str, model: &str) -> CellSpec {
        CellSpec {
            dataset: dataset.into(),
            trait_name: "y".into(),
            model: model.into(),
            backend: "flex".into(),
            seed: 1,
        }
    }

    fn run(seconds: f64, exit_code: i32) -> TaskRun {
        TaskRun {
            repeat: 1,
            fold: 1,
            node: "n".into(),
            seconds,
            exit_code,
            threads: 1,
            executor: "local".into(),
            slurm_job: None,
        }
    }

    fn task(label: &str, estimate: Option<f64>) -> Task {
        Task {
            cell: 0,
            label: label.into(),
            repeat: 1,
            fold: 1,
            program: "g".into(),
            args: vec![],
            threads: 1,
            log: "l".into(),
            record: "r".into(),
            estimate,
        }
    }

    #[test]
    fn estimates_come_from_the_same_kind_of_cell_and_order_the_tasks() {
        let history = vec![
            (spec("wheat", "deepgs"), run(40.0, 0)),
            (spec("wheat", "deepgs"), run(20.0, 0)),
            (spec("wheat", "deepgs"), run(999.0, 2)), // failed: not a cost
            (spec("maize", "gblup"), run(1.0, 0)),
        ];
        assert_eq!(estimate(&spec("wheat", "deepgs"), &history), Some(30.0));
        assert_eq!(estimate(&spec("maize", "deepgs"), &history), Some(30.0), "same model elsewhere");
        assert_eq!(estimate(&spec("wheat", "gblup"), &history), Some(1.0));
        assert_eq!(estimate(&spec("wheat", "dnngp"), &history), None);

        let mut tasks = vec![task("a", Some(1.0)), task("b", Some(30.0)), task("c", None), task("d", Some(30.0))];
        longest_first(&mut tasks);
        let order: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(order, ["c", "b", "d", "a"]);
    }

    #[test]
    fn a_failure_names_the_last_attempt_of_the_fold_log() {
        let dir = tempfile::tempdir().unwrap();
        let t = Task { log: dir.path().join("r01-f002.log"), fold: 2, ..task("c", None) };
        std::fs::write(
            &t.log,
            "== attempt at 2026-01-01T00:00:00 on n1 (job 7_2, restart count 0)\nerror: old trouble\n\
             == attempt at 2026-01-01T00:01:00 on n2 (job 7_2, restart count 1)\nloading\nerror: out of disk\n",
        )
        .unwrap();
        let local = fold_failure(&t, None);
        assert_eq!(local, format!("fold 2 did not finish: error: out of disk (log: {})", t.log.display()));
        let slurm = fold_failure(&t, Some(&"Slurm task 7_2 ended in FAILED"));
        assert!(slurm.starts_with("fold 2 did not finish: Slurm task 7_2 ended in FAILED; fold log "), "{slurm}");
        assert!(slurm.ends_with(": error: out of disk") && !slurm.contains("old trouble"), "{slurm}");
        std::fs::write(&t.log, "== attempt at 2026-01-01T00:00:00 on n1 (job 7_2, restart count 0)\n").unwrap();
        assert!(fold_failure(&t, None).contains(": no output (log: "));
        assert_eq!(last_attempt("plain\nlog\n"), "plain\nlog\n");
        assert_eq!(last_attempt("x == attempt at y\nz\n"), "x == attempt at y\nz\n", "only at a line start");
    }

    #[test]
    fn task_records_and_specs_read_back_as_history() {
        let out = tempfile::tempdir().unwrap();
        let cell = out.path().join("cells").join("c1");
        std::fs::create_dir_all(cell.join("tasks")).unwrap();
        std::fs::write(cell.join("cell-spec.json"), serde_json::to_string(&spec("wheat", "mlp")).unwrap()).unwrap();
        let r2 = TaskRun { fold: 2, slurm_job: Some("7_2".into()), executor: "slurm".into(), ..run(3.0, 0) };
        write_run(&task_path(&cell, 1, 2, "json"), &r2).unwrap();
        write_run(&task_path(&cell, 1, 1, "json"), &run(2.0, 0)).unwrap();
        std::fs::write(cell.join("tasks").join("r01-f001.log"), "not a record").unwrap();
        // A folder without a spec (an older run) is left out.
        std::fs::create_dir_all(out.path().join("cells").join("old").join("tasks")).unwrap();
        let h = history(out.path());
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].1.fold, 1);
        assert_eq!(h[1].1, r2);
        assert_eq!(task_runs(&cell).len(), 2);
    }
}
