//! What Slurm says of the array tasks: `squeue` (each array task by its job and task id,
//! ended ones included while Slurm keeps them), `sacct` where accounting is configured, and the
//! wait for arrays to end.
//!
//! A failed `squeue` is retried and then reported, never read as "finished": a controller that
//! is restarting or busy for a few seconds would otherwise end the wait while tasks still run.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One task of a job array: the array's job id and the task's index in it. Displayed as
/// `JOB_TASK`, as Slurm names it (`slurm-%A_%a.out`, `scancel 12_3`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArrayTask {
    /// The array's job id (`SLURM_ARRAY_JOB_ID`, `%A` in file names).
    pub job: String,
    /// The task's index in the array (`SLURM_ARRAY_TASK_ID`, from 1).
    pub task: usize,
}

impl fmt::Display for ArrayTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.job, self.task)
    }
}

/// One array task as `squeue` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The task's own job id (a started task gets one; its log says `JOB <id>`).
    pub own_id: String,
    /// Slurm's state: PENDING, RUNNING, COMPLETED, TIMEOUT, CANCELLED, ...
    pub state: String,
    /// Slurm's reason for it: Resources, TimeLimit, NonZeroExitCode, ...
    pub reason: String,
}

/// One array task as accounting (`sacct`) recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounted {
    /// Final state (`CANCELLED by 0` is kept as `CANCELLED`).
    pub state: String,
    /// `EXIT:SIGNAL` of the batch script, as sacct prints it (`137:0`, `0:15`).
    pub exit_code: String,
}

/// The states a job never leaves. PREEMPTED is not among them: a preempted job may be
/// requeued, so it is waited for until it runs again or leaves squeue.
const ENDED: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "REVOKED",
    "SPECIAL_EXIT",
    "TIMEOUT",
];

/// Whether a task in `state` has ended for good. Any other state, one unknown here included,
/// counts as still active, so that the wait never ends early.
pub fn has_ended(state: &str) -> bool {
    ENDED.contains(&state)
}

/// Pauses before each retry of a failed `squeue`: five tries over half a minute, longer than
/// a controller takes to restart (squeue itself gives up on an absent controller in about 10 s).
const SQUEUE_BACKOFF: [Duration; 4] =
    [Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8), Duration::from_secs(16)];

/// Seconds between polls while waiting.
const POLL: Duration = Duration::from_secs(3);

/// `squeue` of this user's jobs, every state, each array task on a line of its own. Not `-j
/// IDS`: squeue fails outright when the only id asked for has been forgotten, which is no
/// different on the exit status from a controller it cannot reach.
const SQUEUE: [&str; 6] = ["--me", "--noheader", "--array", "--states=all", "--format", "%F|%K|%A|%T|%r"];

/// Runs `program args` and returns its standard output. A non-zero exit is retried after each
/// pause of `backoff`; after the last, the error names the command, its exit status and its
/// standard error. A program that cannot be started is not retried. Also returns the number of
/// failed runs that were retried.
pub fn run_retrying(program: &str, args: &[&str], backoff: &[Duration]) -> Result<(String, usize)> {
    let shown = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut failures = 0;
    loop {
        let out = Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("running `{shown}` (is Slurm installed on this machine?)"))?;
        if out.status.success() {
            return Ok((String::from_utf8_lossy(&out.stdout).into_owned(), failures));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let stderr = if stderr.is_empty() { "no error output".to_string() } else { stderr };
        match backoff.get(failures) {
            Some(pause) => {
                eprintln!("slurm: `{shown}` failed ({}: {stderr}); retrying in {} s", out.status, pause.as_secs());
                std::thread::sleep(*pause);
                failures += 1;
            }
            None => bail!(
                "`{shown}` failed {} time(s), the last with {}: {stderr}. Without it the state of the Slurm \
                 jobs is unknown, so this stops instead of reading them as finished; once Slurm answers, \
                 rerun the same command to collect them",
                failures + 1,
                out.status
            ),
        }
    }
}

/// The tasks of the arrays `jobs` that squeue lists (ended ones stay listed for the cluster's
/// `MinJobAge`), and how many failed squeue runs were retried to learn it.
pub fn list(jobs: &[String]) -> Result<(BTreeMap<ArrayTask, Listed>, usize)> {
    let (text, retried) = run_retrying("squeue", &SQUEUE, &SQUEUE_BACKOFF)?;
    Ok((parse_squeue(&text, jobs), retried))
}

/// Reads `%F|%K|%A|%T|%r` lines (array job id, task index, own job id, state, reason), keeping
/// the tasks of `jobs`. A line of a job that is no array (`N/A` for the task) is skipped.
pub fn parse_squeue(text: &str, jobs: &[String]) -> BTreeMap<ArrayTask, Listed> {
    let mut found = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 5 || !jobs.iter().any(|j| j == f[0]) {
            continue;
        }
        let state = f[3].split_whitespace().next().unwrap_or("").to_string();
        for task in task_indices(f[1]) {
            let listed = Listed { own_id: f[2].to_string(), state: state.clone(), reason: f[4].to_string() };
            found.insert(ArrayTask { job: f[0].to_string(), task }, listed);
        }
    }
    found
}

/// The indices a task field stands for: `3`, `[3-5]`, `1,4-6`, `[2-9%2]` (a throttle);
/// nothing for `N/A` or anything else unreadable.
pub fn task_indices(field: &str) -> Vec<usize> {
    let inner = field.trim().trim_start_matches('[').trim_end_matches(']');
    let inner = inner.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in inner.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<usize>().ok()),
        }
    }
    out
}

/// The final state and exit code of each task of the array `job` as accounting recorded them,
/// or `None` where sacct cannot tell: no accounting (a cluster without slurmdbd, such as
/// scripts/slurm-single-node.sh's: "Slurm accounting storage is disabled"), or sacct failed.
/// Only a better error message depends on it, so a failure is not retried.
pub fn accounting(job: &str) -> Option<BTreeMap<usize, Accounted>> {
    let out = Command::new("sacct")
        .args(["--noheader", "--parsable2", "--allocations", "--jobs", job, "--format", "JobID,State,ExitCode"])
        .output()
        .ok()?;
    out.status.success().then(|| parse_sacct(&String::from_utf8_lossy(&out.stdout), job))
}

/// Reads `JobID|State|ExitCode` lines (`12_3|TIMEOUT|0:0`, `12_[4-5]|PENDING|0:0`), keeping
/// the tasks of the array `job`.
pub fn parse_sacct(text: &str, job: &str) -> BTreeMap<usize, Accounted> {
    let mut found = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 3 {
            continue;
        }
        let Some(tasks) = f[0].strip_prefix(job).and_then(|rest| rest.strip_prefix('_')) else { continue };
        let state = f[1].split_whitespace().next().unwrap_or("").to_string();
        for task in task_indices(tasks) {
            found.insert(task, Accounted { state: state.clone(), exit_code: f[2].to_string() });
        }
    }
    found
}

/// The arrays among `jobs` with a task still queued or running.
pub fn active(jobs: &[String]) -> Result<Vec<String>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let (listed, _) = list(jobs)?;
    Ok(active_jobs(&listed))
}

fn active_jobs(listed: &BTreeMap<ArrayTask, Listed>) -> Vec<String> {
    let mut jobs: Vec<String> =
        listed.iter().filter(|(_, l)| !has_ended(&l.state)).map(|(t, _)| t.job.clone()).collect();
    jobs.dedup();
    jobs
}

/// Polls squeue until no task of `jobs` is queued or running, printing the counts as they
/// change. `seen` keeps each task's last listed state: the final one, when the task ended
/// while squeue still listed it.
pub fn wait(jobs: &[String], seen: &mut BTreeMap<ArrayTask, Listed>) -> Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let (listed, _) = list(jobs)?;
        let active = active_jobs(&listed);
        let count = |state: &str| listed.values().filter(|l| l.state == state).count();
        let now = format!("{} running, {} pending", count("RUNNING"), count("PENDING"));
        seen.extend(listed.clone());
        if active.is_empty() {
            return Ok(());
        }
        if now != last {
            println!("slurm: job(s) {}: {now} ({} s)", active.join(", "), started.elapsed().as_secs());
            last = now;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_are_read_per_array_task() {
        // As Slurm 22.05 prints `squeue --array --states=all -o '%F|%K|%A|%T|%r'`.
        let text = "12|3|12|PENDING|Resources\n12|1|13|RUNNING|None\n12|2|14|TIMEOUT|TimeLimit\n\
                    40|N/A|40|RUNNING|None\n77|1|78|COMPLETED|None\n12|[4-5%1]|12|PENDING|JobArrayTaskLimit\n";
        let listed = parse_squeue(text, &["12".to_string()]);
        let t = |task| ArrayTask { job: "12".into(), task };
        assert_eq!(listed.keys().cloned().collect::<Vec<_>>(), [t(1), t(2), t(3), t(4), t(5)]);
        assert_eq!(listed[&t(2)], Listed { own_id: "14".into(), state: "TIMEOUT".into(), reason: "TimeLimit".into() });
        assert_eq!(active_jobs(&listed), ["12"]);
        let ended = parse_squeue("12|1|13|COMPLETED|None\n12|2|14|CANCELLED|None\n", &["12".to_string()]);
        assert!(active_jobs(&ended).is_empty());
        assert_eq!(t(7).to_string(), "12_7");
    }

    #[test]
    fn only_final_states_end_the_wait() {
        for s in ["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL"] {
            assert!(has_ended(s), "{s}");
        }
        for s in ["PENDING", "RUNNING", "COMPLETING", "REQUEUED", "PREEMPTED", "SUSPENDED", "SOMETHING_NEW"] {
            assert!(!has_ended(s), "{s}");
        }
    }

    #[test]
    fn sacct_lines_are_read_per_array_task() {
        let text = "12_1|COMPLETED|0:0\n12_2|TIMEOUT|0:0\n12_3|CANCELLED by 0|0:15\n12_4|FAILED|137:0\n\
                    12_[5-6]|PENDING|0:0\n123_1|FAILED|1:0\n";
        let a = parse_sacct(text, "12");
        assert_eq!(a.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6], "not job 123's task");
        assert_eq!(a[&3], Accounted { state: "CANCELLED".into(), exit_code: "0:15".into() });
        assert_eq!(a[&4].exit_code, "137:0");
        assert_eq!(task_indices("1,4-6"), [1, 4, 5, 6]);
        assert!(task_indices("N/A").is_empty());
    }

    #[test]
    fn a_failing_command_is_retried_then_reported_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        // Fails twice, then answers.
        let flaky = format!(
            "echo x >> {0}; [ $(wc -l < {0}) -ge 3 ] && echo listed || {{ echo 'controller away' >&2; exit 1; }}",
            count.display()
        );
        let pause = [Duration::from_millis(1); 4];
        let (out, retried) = run_retrying("sh", &["-c", &flaky], &pause).unwrap();
        assert_eq!((out.trim(), retried), ("listed", 2));
        let e = run_retrying("sh", &["-c", "echo 'Unable to contact slurm controller' >&2; exit 1"], &pause[..2])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("`sh -c echo 'Unable"), "names the command: {e}");
        assert!(e.contains("failed 3 time(s)") && e.contains("exit status: 1"), "{e}");
        assert!(e.contains("Unable to contact slurm controller") && e.contains("instead of reading them as finished"));
        let e = run_retrying("/nonexistent/squeue", &[], &pause).unwrap_err().to_string();
        assert!(e.contains("is Slurm installed"), "{e}");
    }
}
