//! The local executor: fold tasks on this machine, `--jobs` at a time, longest first.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use genopred_core::output::format_duration;

use super::tasks::{Task, TaskRun, hostname, write_run};

/// Runs every task, `jobs` at once, in the order given (see [`super::tasks::longest_first`]),
/// records each one's [`TaskRun`] beside its fold, and prints a line as each ends. A failed task
/// does not stop the others: its cell is reported as failed.
pub fn run(tasks: &[Task], jobs: usize) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let printing = Mutex::new(());
    let node = hostname();
    let started = Instant::now();
    let total = tasks.len();
    let known: f64 = tasks.iter().filter_map(|t| t.estimate).sum();
    let finished_estimates = Mutex::new(0.0f64);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, total.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(i) else { break };
                    let run = run_one(task, &node);
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    let eta = {
                        let mut f = finished_estimates.lock().unwrap_or_else(|p| p.into_inner());
                        *f += task.estimate.unwrap_or(0.0);
                        // Time left from earlier runs' costs, scaled by how this run compares;
                        // without them, from the share of tasks done.
                        let elapsed = started.elapsed().as_secs_f64();
                        if known > 0.0 && *f > 0.0 {
                            Some(elapsed * (known - *f) / *f)
                        } else {
                            (known == 0.0 && n < total).then(|| elapsed * (total - n) as f64 / n as f64)
                        }
                    };
                    let _p = printing.lock().unwrap_or_else(|p| p.into_inner());
                    println!(
                        "[{n}/{total}] {} fold {}: {}{}{}",
                        task.label,
                        task.fold,
                        if run.exit_code == 0 { String::new() } else { format!("failed (exit {}), ", run.exit_code) },
                        format_duration(run.seconds),
                        eta.map(|s| format!(" (about {} left)", format_duration(s))).unwrap_or_default()
                    );
                }
            });
        }
    });
}

/// Runs one task's process with its output in the task's log, and records what it took.
fn run_one(task: &Task, node: &str) -> TaskRun {
    let started = Instant::now();
    let exit_code = match std::fs::File::create(&task.log).and_then(|log| Ok((log.try_clone()?, log))) {
        Ok((out, err)) => super::retry_busy(|| {
            Command::new(&task.program)
                .args(&task.args)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(err.try_clone()?)
                .status()
        })
        .map_or(127, |s| s.code().unwrap_or(128)),
        Err(_) => 126,
    };
    let run = TaskRun {
        repeat: task.repeat,
        fold: task.fold,
        node: node.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        exit_code,
        threads: task.threads,
        executor: "local".into(),
        slurm_job: None,
    };
    if let Err(e) = write_run(&task.record, &run) {
        eprintln!("warning: recording {}: {e}", task.record.display());
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tasks::task_runs;

    #[test]
    fn every_task_runs_once_and_is_recorded_with_its_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let cell = dir.path().join("cell");
        std::fs::create_dir_all(cell.join("tasks")).unwrap();
        let task = |fold: usize, script: &str| Task {
            cell: 0,
            label: "c".into(),
            repeat: 1,
            fold,
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            threads: 1,
            log: cell.join("tasks").join(format!("r01-f{fold:03}.log")),
            record: cell.join("tasks").join(format!("r01-f{fold:03}.json")),
            estimate: Some(1.0),
        };
        let count = dir.path().join("count");
        let append = format!("echo x >> {}", count.display());
        let tasks = vec![
            task(1, &append),
            task(2, &format!("{append}; echo 'error: broke' >&2; exit 3")),
            task(3, &append),
            task(4, &append),
        ];
        run(&tasks, 3);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 4, "each task ran once");
        let runs = task_runs(&cell);
        assert_eq!(runs.iter().map(|r| (r.fold, r.exit_code)).collect::<Vec<_>>(), [(1, 0), (2, 3), (3, 0), (4, 0)]);
        assert!(runs.iter().all(|r| r.executor == "local" && r.threads == 1 && !r.node.is_empty()));
        assert!(std::fs::read_to_string(cell.join("tasks").join("r01-f002.log")).unwrap().contains("broke"));
    }
}
