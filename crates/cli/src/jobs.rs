//! Folds at once: `--jobs N` runs N folds in parallel in one process, each in its own thread
//! pool of `--threads-per-job` threads.
//!
//! A fold's result depends only on its own seed and on the number of threads it computes with
//! (floating-point sums are split by thread), never on which other folds run beside it: each job
//! trains on one thread of its own pool, burn's CPU backend and faer parallelise within that pool
//! (both use rayon's current pool), dropout masks and shuffles come from per-fit generators, and
//! only weight initialisation (burn's process-wide generator) is serialised
//! ([`genopred_train::predictor::device_rng_lock`]). So `--jobs N --threads-per-job T` gives the
//! same bytes as `--jobs 1 --threads-per-job T`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;

/// `--jobs` and `--threads-per-job`.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// Folds to run at once (0: one per core). Each job holds its own model and data copies, so
    /// memory grows with N; results do not depend on N (see --threads-per-job).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Threads each job computes with (burn's CPU backend and faer's linear algebra; libtorch
    /// keeps its own pool). Default: the cores divided by --jobs, at least 1. Results can differ
    /// in the last digits between thread counts (sums split differently), never between job
    /// counts at the same threads per job.
    #[arg(long, value_name = "T")]
    pub threads_per_job: Option<usize>,
}

/// How many jobs run at once and with how many threads each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPlan {
    /// Jobs at once.
    pub jobs: usize,
    /// Threads per job.
    pub threads: usize,
}

impl JobArgs {
    /// The plan on a machine with `cores` cores: `--jobs 0` is one job per core; never more jobs
    /// than `tasks` (but at least one).
    pub fn plan(&self, cores: usize, tasks: usize) -> Result<JobPlan> {
        let cores = cores.max(1);
        let asked = if self.jobs == 0 { cores } else { self.jobs };
        let threads = match self.threads_per_job {
            Some(0) => bail!("--threads-per-job must be at least 1"),
            Some(t) => t,
            None => (cores / asked).max(1),
        };
        Ok(JobPlan { jobs: asked.min(tasks).max(1), threads })
    }
}

/// The machine's cores (as the scheduler grants them to this process).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` on every task, `plan.jobs` at a time, each call inside a thread pool of
/// `plan.threads` threads, and returns the results in task order. After a failure no new task
/// starts; the running ones finish (what they record is kept) and the first failure in task
/// order is returned.
pub fn run_all<T, R, F>(tasks: &[T], plan: JobPlan, work: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R> + Sync,
{
    let slots: Vec<Mutex<Option<Result<R>>>> = tasks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let pools: Vec<rayon::ThreadPool> = (0..plan.jobs.min(tasks.len()))
        .map(|j| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(plan.threads)
                .thread_name(move |i| format!("job{j}-{i}"))
                .build()
                .context("starting a job's thread pool")
        })
        .collect::<Result<_>>()?;
    std::thread::scope(|scope| {
        for pool in &pools {
            let (slots, next, failed, work) = (&slots, &next, &failed, &work);
            scope.spawn(move || {
                loop {
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(task) = tasks.get(i) else { break };
                    let result = pool.install(|| work(task));
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for slot in slots {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(jobs: usize, threads: Option<usize>) -> JobArgs {
        JobArgs { jobs, threads_per_job: threads }
    }

    #[test]
    fn plans_share_the_cores_and_never_exceed_the_tasks() {
        assert_eq!(args(1, None).plan(8, 10).unwrap(), JobPlan { jobs: 1, threads: 8 });
        assert_eq!(args(2, None).plan(8, 10).unwrap(), JobPlan { jobs: 2, threads: 4 });
        assert_eq!(args(3, None).plan(8, 10).unwrap(), JobPlan { jobs: 3, threads: 2 });
        assert_eq!(args(0, None).plan(4, 10).unwrap(), JobPlan { jobs: 4, threads: 1 });
        assert_eq!(args(16, None).plan(4, 10).unwrap(), JobPlan { jobs: 10, threads: 1 });
        assert_eq!(args(2, Some(3)).plan(2, 10).unwrap(), JobPlan { jobs: 2, threads: 3 });
        assert_eq!(args(4, None).plan(8, 0).unwrap(), JobPlan { jobs: 1, threads: 2 });
        assert!(args(2, Some(0)).plan(2, 10).is_err());
    }

    #[test]
    fn results_come_back_in_task_order_from_pools_of_the_asked_size() {
        let tasks: Vec<usize> = (0..9).collect();
        let plan = JobPlan { jobs: 3, threads: 2 };
        let out = run_all(&tasks, plan, |&t| {
            // Later tasks finish first: the order must still be the tasks'.
            std::thread::sleep(std::time::Duration::from_millis((9 - t as u64) * 3));
            Ok((t * 10, rayon::current_num_threads()))
        })
        .unwrap();
        assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), (0..9).map(|t| t * 10).collect::<Vec<_>>());
        assert!(out.iter().all(|r| r.1 == 2), "{out:?}");
    }

    #[test]
    fn a_failure_stops_new_tasks_and_is_returned() {
        let tasks: Vec<usize> = (0..50).collect();
        // One job: the order is fixed, so exactly the tasks up to the failing one start.
        let started = AtomicUsize::new(0);
        let e = run_all(&tasks, JobPlan { jobs: 1, threads: 1 }, |&t| {
            started.fetch_add(1, Ordering::SeqCst);
            if t == 3 { bail!("task {t} broke") } else { Ok(t) }
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "task 3 broke");
        assert_eq!(started.load(Ordering::SeqCst), 4, "no new task after the failure");

        // Two jobs: the other job finishes what it holds and takes nothing new. Tasks after the
        // failing one wait for it to have failed, so they cannot all run before it does.
        let started = AtomicUsize::new(0);
        let broke = AtomicBool::new(false);
        let e = run_all(&tasks, JobPlan { jobs: 2, threads: 1 }, |&t| {
            started.fetch_add(1, Ordering::SeqCst);
            if t == 3 {
                broke.store(true, Ordering::SeqCst);
                bail!("task {t} broke")
            }
            if t > 3 {
                while !broke.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(t)
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "task 3 broke");
        assert!(started.load(Ordering::SeqCst) <= 6, "{} tasks started", started.load(Ordering::SeqCst));
    }
}
