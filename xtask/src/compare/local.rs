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
                        // Time left from earlier runs' costs, scaled by how this run compares.
                        (known > 0.0 && *f > 0.0).then(|| started.elapsed().as_secs_f64() * (known - *f) / *f)
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
        Ok((out, err)) => Command::new(&task.program)
            .args(&task.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
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
