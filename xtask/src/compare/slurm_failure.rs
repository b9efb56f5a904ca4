//! Why a Slurm array task ended without its fold, from the best witness at hand: accounting
//! (`sacct`) where the cluster keeps it, else the state squeue last listed, else Slurm's own log
//! (`*** JOB 14 ON node CANCELLED AT ... DUE TO TIME LIMIT ***`) and the task's record.

use std::fmt;
use std::path::{Path, PathBuf};

use super::slurm_queue::{Accounted, ArrayTask, Listed, has_ended};
use super::tasks::{TaskRun, last_attempt};

/// Slurm's own output of each array task, in the submission's folder (sbatch `--output`).
pub const SLURM_LOG: &str = "slurm-%A_%a.out";

/// Lines of Slurm's log quoted in an error.
const TAIL_LINES: usize = 4;

/// `SLURM_LOG` of one task in the submission folder `dir`.
pub fn slurm_log(dir: &Path, task: &ArrayTask) -> PathBuf {
    dir.join(SLURM_LOG.replace("%A", &task.job).replace("%a", &task.task.to_string()))
}

/// How an array task ended without its fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// The array task (`JOB_TASK`).
    pub task: ArrayTask,
    /// Its own job id, where Slurm gave it one other than the array's.
    pub own_id: Option<String>,
    /// Slurm's final state (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED, FAILED, ...);
    /// `None` when no witness tells it.
    pub state: Option<String>,
    /// Its exit code and signal, where known.
    pub exit: Option<String>,
    /// Slurm's log of the task.
    pub slurm_log: PathBuf,
    /// The last lines of the last attempt in that log (empty: none; `None`: no log).
    pub tail: Option<Vec<String>>,
}

impl TaskFailure {
    /// The state in one word: Slurm's, or UNKNOWN.
    pub fn state_word(&self) -> &str {
        self.state.as_deref().unwrap_or("UNKNOWN")
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slurm task {}", self.task)?;
        if let Some(id) = &self.own_id {
            write!(f, " (job {id})")?;
        }
        match &self.state {
            Some(state) => write!(f, " ended in {state}")?,
            None => write!(
                f,
                " ended in a state unknown here (squeue no longer lists it, sacct has no record of it, and \
                 neither its log nor its record says)"
            )?,
        }
        if let Some(exit) = &self.exit {
            write!(f, " ({exit})")?;
        }
        write!(f, "; Slurm's log {}", self.slurm_log.display())?;
        match &self.tail {
            None => write!(f, " is missing"),
            Some(lines) if lines.is_empty() => write!(f, " is empty"),
            Some(lines) => write!(f, " ends: {}", lines.join(" | ")),
        }
    }
}

/// Describes how `task` (whose script and Slurm log are in `dir`, whose record is `record`)
/// ended. `accounted` is sacct's word, `seen` squeue's last; failing both, the state is read
/// from Slurm's log, then from the task's record.
pub fn describe(
    task: &ArrayTask,
    dir: &Path,
    record: &Path,
    seen: Option<&Listed>,
    accounted: Option<&Accounted>,
) -> TaskFailure {
    let slurm_log = slurm_log(dir, task);
    let text = std::fs::read_to_string(&slurm_log).ok();
    let last = text.as_deref().map(last_attempt);
    // A record left by an earlier array of the same fold says nothing of this task.
    let run = std::fs::read(record)
        .ok()
        .and_then(|b| serde_json::from_slice::<TaskRun>(&b).ok())
        .filter(|r| r.slurm_job.as_deref() == Some(task.to_string().as_str()));
    let seen_state = seen.map(|l| l.state.as_str()).filter(|s| has_ended(s));
    let state = accounted
        .map(|a| a.state.clone())
        .or_else(|| seen_state.map(String::from))
        .or_else(|| last.and_then(state_from_log).map(String::from))
        .or_else(|| run.as_ref().filter(|r| r.exit_code != 0).map(|_| "FAILED".to_string()));
    let exit = match accounted {
        Some(a) => exit_from_sacct(&a.exit_code),
        None => run.as_ref().filter(|r| r.exit_code != 0).map(|r| exit_from_code(r.exit_code)),
    };
    let tail = last.map(|l| {
        let lines: Vec<String> = l.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
    });
    let own_id = seen.map(|l| l.own_id.clone()).filter(|id| id != &task.job);
    TaskFailure { task: task.clone(), own_id, state, exit, slurm_log, tail }
}

/// The state Slurm's own lines in a task's log tell, where they tell one.
pub fn state_from_log(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    let says = |s: &str| lower.contains(s);
    if says("due to time limit") {
        Some("TIMEOUT")
    } else if says("due to node fail") {
        Some("NODE_FAIL")
    } else if says("due to preemption") {
        Some("PREEMPTED")
    } else if says("oom-kill") || says("oom_kill") || says("oom killed") || says("out of memory") {
        Some("OUT_OF_MEMORY")
    } else if says("cancelled at") && !says("due to job requeue") {
        Some("CANCELLED")
    } else {
        None
    }
}

/// sacct's `EXIT:SIGNAL` in words; nothing for `0:0`.
fn exit_from_sacct(code: &str) -> Option<String> {
    let (exit, signal) = code.split_once(':')?;
    let (exit, signal): (i32, i32) = (exit.parse().ok()?, signal.parse().ok()?);
    if signal != 0 {
        Some(format!("killed by signal {signal}{}", signal_name(signal)))
    } else if exit != 0 {
        Some(exit_from_code(exit))
    } else {
        None
    }
}

/// An exit code in words: above 128, the fold's process died of signal code − 128 (the job
/// script passes the fold's exit code on).
fn exit_from_code(code: i32) -> String {
    if (129..160).contains(&code) {
        format!("exit code {code}: the fold's process was killed by signal {}{}", code - 128, signal_name(code - 128))
    } else {
        format!("exit code {code}")
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> ArrayTask {
        ArrayTask { job: "12".into(), task: 3 }
    }

    fn write_log(dir: &Path, text: &str) {
        std::fs::write(slurm_log(dir, &task()), text).unwrap();
    }

    #[test]
    fn slurm_log_lines_tell_the_state() {
        let line =
            |why: &str| format!("slurmstepd-vm: error: *** JOB 14 ON vm CANCELLED AT 2026-12-07T14:35:16{why} ***");
        assert_eq!(state_from_log(&line(" DUE TO TIME LIMIT")), Some("TIMEOUT"));
        assert_eq!(state_from_log(&line(" DUE TO NODE FAILURE")), Some("NODE_FAIL"));
        assert_eq!(state_from_log(&line("")), Some("CANCELLED"));
        assert_eq!(state_from_log(&line(" DUE TO JOB REQUEUE")), None);
        let oom = "slurmstepd: error: Detected 1 oom_kill event in StepId=14.batch. Some of the step tasks \
                   have been OOM Killed.";
        assert_eq!(state_from_log(oom), Some("OUT_OF_MEMORY"));
        assert_eq!(state_from_log("fold 3\nerror: no such file"), None);
    }

    #[test]
    fn a_timeout_seen_in_squeue_names_the_task_state_and_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        write_log(
            dir.path(),
            "== attempt at 2026-12-07T14:33:49 on vm (job 12_3, restart count 0)\nerror: *** JOB 14 ON vm \
             CANCELLED AT 2026-12-07T14:35:16 DUE TO TIME LIMIT ***\n",
        );
        let seen = Listed { own_id: "14".into(), state: "TIMEOUT".into(), reason: "TimeLimit".into() };
        let f = describe(&task(), dir.path(), &dir.path().join("none.json"), Some(&seen), None);
        let log = dir.path().join("slurm-12_3.out");
        assert_eq!(
            f.to_string(),
            format!(
                "Slurm task 12_3 (job 14) ended in TIMEOUT; Slurm's log {} ends: error: *** JOB 14 ON vm \
                 CANCELLED AT 2026-12-07T14:35:16 DUE TO TIME LIMIT ***",
                log.display()
            )
        );
    }

    #[test]
    fn without_squeue_or_sacct_the_log_and_record_tell() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("r01-f003.json");
        let run = |job: &str, exit_code| TaskRun {
            repeat: 1,
            fold: 3,
            node: "vm".into(),
            seconds: 2.0,
            exit_code,
            threads: 1,
            executor: "slurm".into(),
            slurm_job: Some(job.into()),
        };
        std::fs::write(&record, serde_json::to_string(&run("12_3", 137)).unwrap()).unwrap();
        write_log(
            dir.path(),
            "== attempt at 2026 on vm (job 12_3, restart count 0)\nCANCELLED AT x DUE TO JOB REQUEUE\n\
             == attempt at 2026 on vm (job 12_3, restart count 1)\n== exit code 137 after 2.0 s\n",
        );
        let f = describe(&task(), dir.path(), &record, None, None);
        assert_eq!(f.state_word(), "FAILED", "the requeue of the first attempt is not the end of the last");
        assert_eq!(f.exit.as_deref(), Some("exit code 137: the fold's process was killed by signal 9 (SIGKILL)"));
        assert_eq!(f.tail, Some(vec!["== exit code 137 after 2.0 s".to_string()]));

        // Another array's record of the same fold, and no log: nothing is known.
        std::fs::write(&record, serde_json::to_string(&run("9_1", 1)).unwrap()).unwrap();
        std::fs::remove_file(slurm_log(dir.path(), &task())).unwrap();
        let f = describe(&task(), dir.path(), &record, None, None);
        assert_eq!(f.state_word(), "UNKNOWN");
        assert!(f.to_string().contains("12_3 ended in a state unknown here"), "{f}");
        assert!(f.to_string().ends_with("slurm-12_3.out is missing"), "{f}");

        // Accounting wins over everything else.
        let acc = Accounted { state: "OUT_OF_MEMORY".into(), exit_code: "0:9".into() };
        let f = describe(&task(), dir.path(), &record, None, Some(&acc));
        assert_eq!((f.state_word(), f.exit.as_deref()), ("OUT_OF_MEMORY", Some("killed by signal 9 (SIGKILL)")));
        assert_eq!(exit_from_sacct("0:0"), None);
        assert_eq!(exit_from_sacct("2:0").as_deref(), Some("exit code 2"));
    }
}
