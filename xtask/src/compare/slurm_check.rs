//! `cargo xtask slurm-check`: the Slurm executor against the real Slurm of this machine (the
//! one-node cluster of `scripts/slurm-single-node.sh`, run as root), with the failures a
//! cluster deals out. Each scenario runs the fold tasks of a stand-in for genopred (a shell
//! script that records its fold, or misbehaves once) through the code `compare --executor
//! slurm` runs, checks the error a user would read, then that rerunning resumes:
//!
//! - `timeout`: a task past its one-minute `--time` ends in TIMEOUT, Slurm's "DUE TO TIME
//!   LIMIT" quoted from its log;
//! - `cancel`: `scancel` of a running task ends it in CANCELLED;
//! - `kill`: `kill -9` of the fold's process ends the task in FAILED, exit 137 (SIGKILL);
//! - `requeue`: `scontrol requeue` of a running task runs it again, both attempts appended to
//!   Slurm's log and the fold's;
//! - `retries`: a task that fails once succeeds with `--retries 1`, as a second array;
//! - `outage`: slurmctld stopped for 12 s while tasks run: squeue fails and is retried, and the
//!   wait goes on instead of reading the failure as "finished".
//!
//! Slurm's smallest time limit is a minute and it checks limits every 30 s, so the timeout takes
//! 60 to 90 s; the other scenarios run meanwhile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use genopred_core::folder_lock::FolderLock;

use super::slurm::{self, Failures, Outcome, SlurmArgs, Submissions};
use super::slurm_queue::{ArrayTask, list, run_retrying};
use super::tasks::{Task, fold_done, fold_failure, task_path};

/// The stand-in for `genopred cv --only-fold`: `fake-genopred CELL FOLD` records the fold,
/// unless CELL holds `MODE-rRR-fFFF`, a misbehaviour for this attempt (removed as it starts, so
/// the next attempt succeeds): `hang` (sleep until killed), `fail` (exit 1), `slow` (take 25 s).
/// A hanging or slow attempt writes `running-rRR-fFFF`: its array task and its pid.
const FAKE_GENOPRED: &str = r#"#!/bin/sh
cell=$1
tag=$(printf 'r01-f%03d' "$2")
echo "fake genopred: $tag of $cell"
running() {
  echo "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} $$" > "$cell/running-$tag.tmp"
  mv "$cell/running-$tag.tmp" "$cell/running-$tag"
}
if [ -e "$cell/hang-$tag" ]; then rm -f "$cell/hang-$tag"; running; exec sleep 200; fi
if [ -e "$cell/fail-$tag" ]; then rm -f "$cell/fail-$tag"; echo "error: a transient failure" >&2; exit 1; fi
if [ -e "$cell/slow-$tag" ]; then rm -f "$cell/slow-$tag"; running; sleep 25; fi
mkdir -p "$cell/folds" && echo '{}' > "$cell/folds/$tag.json"
"#;

/// Where scripts/slurm-single-node.sh's slurmctld keeps its pid (the outage stops it).
const CTLD_PID: &str = "/run/slurmctld.pid";

/// How long the controller stays away in the outage: longer than squeue's own retrying (about
/// 10 s), so that the executor's retries are what carries the wait through.
const OUTAGE: Duration = Duration::from_secs(12);

type ScenarioFn = fn(&Path, &Path) -> Result<()>;

/// `cargo xtask slurm-check`.
pub fn run() -> Result<()> {
    let started = Instant::now();
    preflight()?;
    let base = crate::workspace_root().join("target").join("slurm-check");
    if base.exists() {
        std::fs::remove_dir_all(&base).with_context(|| format!("removing {}", base.display()))?;
    }
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let base = base.canonicalize()?;
    let fake = base.join("fake-genopred");
    std::fs::write(&fake, FAKE_GENOPRED).with_context(|| format!("writing {}", fake.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;

    let short: [(&str, ScenarioFn); 4] =
        [("cancel", cancel), ("kill", kill), ("requeue", requeue), ("retries", retries)];
    let results: Vec<(&str, Result<()>, f64)> = std::thread::scope(|s| {
        let (base, fake) = (&base, &fake);
        let slow = s.spawn(move || timed(|| timeout(base, fake)));
        // The outage waits until the timeout's array runs, and the other scenarios wait for
        // the outage: nothing may submit while the controller is away.
        let outage_run =
            match wait_for_file(&base.join("timeout/cells/cell/running-r01-f002"), Duration::from_secs(120)) {
                Ok(_) => timed(|| outage(base, fake)),
                Err(e) => (Err(e.context("the timeout scenario's task never ran, so the outage did not start")), 0.0),
            };
        let handles: Vec<_> = short.iter().map(|&(name, f)| (name, s.spawn(move || timed(|| f(base, fake))))).collect();
        let mut results = vec![("outage", outage_run.0, outage_run.1)];
        for (name, h) in handles {
            let (r, secs) = h.join().unwrap_or_else(|_| (Err(anyhow::anyhow!("panicked")), 0.0));
            results.push((name, r, secs));
        }
        let (r, secs) = slow.join().unwrap_or_else(|_| (Err(anyhow::anyhow!("panicked")), 0.0));
        results.insert(0, ("timeout", r, secs));
        results
    });
    let mut failed = 0;
    for (name, result, secs) in &results {
        match result {
            Ok(()) => println!("slurm-check: {name}: ok ({secs:.0} s)"),
            Err(e) => {
                failed += 1;
                println!("slurm-check: {name}: FAILED ({secs:.0} s): {e:#}");
            }
        }
    }
    println!(
        "slurm-check: {} of {} scenario(s) passed in {:.0} s (folders in {})",
        results.len() - failed,
        results.len(),
        started.elapsed().as_secs_f64(),
        base.display()
    );
    if failed > 0 {
        bail!("{failed} Slurm scenario(s) failed");
    }
    Ok(())
}

/// Refuses, loudly, to run without a usable Slurm: the check is only worth anything against one.
fn preflight() -> Result<()> {
    let no_slurm = "the Slurm check needs a running Slurm on this machine: start the one-node cluster with \
                    `sudo scripts/slurm-single-node.sh`";
    let (states, _) = run_retrying("sinfo", &["--noheader", "--format", "%T"], &[Duration::from_secs(2)])
        .with_context(|| no_slurm.to_string())?;
    let usable = ["idle", "mixed", "allocated", "completing"];
    if !states
        .lines()
        .any(|s| usable.contains(&s.trim().trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-'])))
    {
        bail!("no usable Slurm node (sinfo says {:?}); {no_slurm}", states.trim());
    }
    Ok(())
}

fn timed(f: impl FnOnce() -> Result<()>) -> (Result<()>, f64) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed().as_secs_f64())
}

/// One scenario's comparison folder, holding one cell of fold tasks.
struct Scenario {
    name: &'static str,
    out: PathBuf,
    cell: PathBuf,
    tasks: Vec<Task>,
    _lock: FolderLock,
}

impl Scenario {
    /// A folder `base/name` (locked, as compare locks its output) with `folds` tasks of
    /// `fake`, each of `misbehave`'s folds set to misbehave once.
    fn new(base: &Path, name: &'static str, fake: &Path, folds: usize, misbehave: &[(&str, usize)]) -> Result<Self> {
        let out = base.join(name);
        let lock = super::lock_output(&out)?;
        // A second comparison in the same folder is refused, naming this one.
        let e = super::lock_output(&out).err().context("a second lock on one output folder was granted")?;
        ensure!(e.to_string().contains(&format!("pid {}", std::process::id())), "the lock error names no holder: {e}");
        let cell = out.join("cells").join("cell");
        std::fs::create_dir_all(cell.join("tasks"))?;
        for (mode, fold) in misbehave {
            std::fs::write(cell.join(format!("{mode}-r01-f{fold:03}")), "")?;
        }
        let tasks = (1..=folds)
            .map(|fold| Task {
                cell: 0,
                label: name.to_string(),
                repeat: 1,
                fold,
                program: fake.to_path_buf(),
                args: vec![cell.display().to_string(), fold.to_string()],
                threads: 1,
                log: task_path(&cell, 1, fold, "log"),
                record: task_path(&cell, 1, fold, "json"),
                estimate: None,
            })
            .collect();
        Ok(Scenario { name, out, cell, tasks, _lock: lock })
    }

    /// Runs the missing folds through the Slurm executor, as compare does.
    fn run(&self, args: &SlurmArgs) -> Result<Failures> {
        let missing = |t: &Task| !fold_done(&self.cell, t.repeat, t.fold);
        match slurm::run(&self.out, &self.tasks, args, &missing)? {
            Outcome::Ended(failures) => Ok(failures),
            Outcome::Stopped => bail!("the executor stopped without waiting"),
        }
    }

    /// Runs the missing folds, and stops the scenario's arrays should `watch` fail, so that a
    /// broken scenario ends instead of waiting on a hanging task.
    fn run_watched(&self, args: &SlurmArgs, watch: impl FnOnce() -> Result<()> + Send) -> Result<Failures> {
        std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let r = watch();
                if r.is_err() {
                    self.cancel_all();
                }
                r
            });
            let ran = self.run(args);
            watcher.join().map_err(|_| anyhow::anyhow!("the watcher panicked"))??;
            ran
        })
    }

    fn cancel_all(&self) {
        for job in Submissions::read(&self.out).map(|s| s.job_ids()).unwrap_or_default() {
            let _ = Command::new("scancel").arg(&job).status();
        }
    }

    /// The array task and pid of a fold's running attempt, once it runs.
    fn running(&self, fold: usize) -> Result<(String, String)> {
        let path = self.cell.join(format!("running-r01-f{fold:03}"));
        let text = wait_for_file(&path, Duration::from_secs(120))?;
        let (task, pid) = text.trim().split_once(' ').with_context(|| format!("{}: {text:?}", path.display()))?;
        Ok((task.to_string(), pid.to_string()))
    }

    fn jobs(&self) -> Result<Vec<slurm::Submission>> {
        Ok(Submissions::read(&self.out)?.submissions)
    }

    /// Checks that fold `fold` alone failed, in `state`, and that the cell's error (as compare
    /// words it) names the array task, the state, Slurm's log and `log_says`; prints it.
    fn expect_failure(&self, failures: &Failures, fold: usize, state: &str, log_says: &[&str]) -> Result<()> {
        let task = &self.tasks[fold - 1];
        ensure!(failures.len() == 1, "expected fold {fold} alone to fail, got {failures:?}");
        let failure = failures.get(&task.record).with_context(|| format!("fold {fold} is not among {failures:?}"))?;
        ensure!(failure.state_word() == state, "fold {fold} ended in {}, not {state}: {failure}", failure.state_word());
        let jobs = self.jobs()?;
        let job = &jobs.last().context("no submission recorded")?.job_id;
        let message = fold_failure(task, Some(failure as &dyn std::fmt::Display));
        let want_task = ArrayTask { job: job.clone(), task: fold }.to_string();
        let mut wanted =
            vec![format!("Slurm task {want_task}"), format!("ended in {state}"), format!("slurm-{want_task}.out")];
        wanted.extend(log_says.iter().map(|s| s.to_string()));
        for want in &wanted {
            ensure!(message.contains(want.as_str()), "the error does not say {want:?}: {message}");
        }
        println!("slurm-check: {}: the cell's error reads: {message}", self.name);
        Ok(())
    }

    /// Reruns, as a user would: only the missing fold is submitted, and every fold ends recorded.
    fn expect_resumed(&self) -> Result<()> {
        let before = self.jobs()?.len();
        let failures = self.run(&plain())?;
        ensure!(failures.is_empty(), "the rerun failed: {failures:?}");
        let jobs = self.jobs()?;
        ensure!(jobs.len() == before + 1, "the rerun submitted {} array(s)", jobs.len() - before);
        ensure!(jobs[before].tasks == 1, "the rerun submitted {} task(s), not the missing one", jobs[before].tasks);
        self.expect_all_folds()
    }

    fn expect_all_folds(&self) -> Result<()> {
        for t in &self.tasks {
            ensure!(fold_done(&self.cell, t.repeat, t.fold), "fold {} is not recorded", t.fold);
        }
        Ok(())
    }

    fn fold_log(&self, fold: usize) -> Result<String> {
        let path = &self.tasks[fold - 1].log;
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// One CPU per task and no other limit: what the CI's comparison asks for.
fn plain() -> SlurmArgs {
    SlurmArgs { slurm_cpus: 1, ..SlurmArgs::default() }
}

/// Waits for a file to appear and returns its text.
fn wait_for_file(path: &Path, within: Duration) -> Result<String> {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(text);
        }
        if started.elapsed() > within {
            bail!("{} did not appear within {} s", path.display(), within.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs a Slurm or system command that must succeed.
fn command(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    ensure!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

fn timeout(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "timeout", fake, 2, &[("hang", 2)])?;
    // Slurm's smallest time limit: one minute.
    let failures = s.run(&SlurmArgs { slurm_time: Some("1".into()), ..plain() })?;
    s.expect_failure(&failures, 2, "TIMEOUT", &["DUE TO TIME LIMIT"])?;
    s.expect_resumed()?;
    let log = s.fold_log(2)?;
    ensure!(log.matches("== attempt at ").count() == 2, "the rerun did not append to the fold's log:\n{log}");
    Ok(())
}

fn cancel(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "cancel", fake, 2, &[("hang", 2)])?;
    let failures = s.run_watched(&plain(), || command("scancel", &[&s.running(2)?.0]))?;
    s.expect_failure(&failures, 2, "CANCELLED", &["CANCELLED AT"])?;
    s.expect_resumed()
}

fn kill(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "kill", fake, 2, &[("hang", 2)])?;
    let failures = s.run_watched(&plain(), || command("kill", &["-9", &s.running(2)?.1]))?;
    s.expect_failure(&failures, 2, "FAILED", &["exit code 137", "SIGKILL", "== exit code 137"])?;
    s.expect_resumed()
}

fn requeue(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "requeue", fake, 2, &[("hang", 2)])?;
    let failures = s.run_watched(&plain(), || {
        let (task, _) = s.running(2)?;
        command("scontrol", &["requeue", &task])?;
        // A requeued job is held back for two minutes; let it start again at once.
        let started = Instant::now();
        loop {
            let out = Command::new("squeue")
                .args(["--noheader", "--states=all", "--jobs", &task, "--format", "%T"])
                .output()?;
            match String::from_utf8_lossy(&out.stdout).trim() {
                "RUNNING" | "COMPLETED" => return Ok(()),
                "PENDING" => {
                    let _ =
                        Command::new("scontrol").args(["update", &format!("jobid={task}"), "StartTime=now"]).output();
                }
                _ => {}
            }
            ensure!(started.elapsed() < Duration::from_secs(60), "{task} did not run again after its requeue");
            std::thread::sleep(Duration::from_secs(1));
        }
    })?;
    ensure!(failures.is_empty(), "the requeued task failed: {failures:?}");
    s.expect_all_folds()?;
    ensure!(s.jobs()?.len() == 1, "a requeue is no new array");
    let log = s.fold_log(2)?;
    for want in ["restart count 0)", "restart count 1)"] {
        ensure!(log.contains(want), "the fold's log lacks the attempt with {want}:\n{log}");
    }
    let job = &s.jobs()?[0].job_id;
    let slurm_log = std::fs::read_to_string(s.out.join("slurm/sub-001").join(format!("slurm-{job}_2.out")))?;
    ensure!(
        slurm_log.contains("DUE TO JOB REQUEUE") && slurm_log.matches("== attempt at ").count() == 2,
        "Slurm's log does not hold both attempts:\n{slurm_log}"
    );
    println!("slurm-check: requeue: both attempts in Slurm's log and the fold's");
    Ok(())
}

fn retries(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "retries", fake, 2, &[("fail", 2)])?;
    let failures = s.run(&SlurmArgs { retries: 1, ..plain() })?;
    ensure!(failures.is_empty(), "the retry failed: {failures:?}");
    s.expect_all_folds()?;
    let jobs = s.jobs()?;
    ensure!(jobs.len() == 2, "{} array(s), not the first and its retry", jobs.len());
    ensure!(jobs[1].tasks == 1 && jobs[1].retry_of.as_deref() == Some(jobs[0].job_id.as_str()), "{jobs:?}");
    let log = s.fold_log(2)?;
    ensure!(
        log.contains("a transient failure") && log.matches("== attempt at ").count() == 2,
        "the fold's log does not hold both attempts:\n{log}"
    );
    Ok(())
}

fn outage(base: &Path, fake: &Path) -> Result<()> {
    let s = Scenario::new(base, "outage", fake, 1, &[("slow", 1)])?;
    let failures = s.run_watched(&plain(), || {
        let (task, _) = s.running(1)?;
        let job = task.split('_').next().unwrap_or("").to_string();
        let pid = std::fs::read_to_string(CTLD_PID)
            .with_context(|| format!("the outage stops the slurmctld of scripts/slurm-single-node.sh: {CTLD_PID}"))?;
        let pid = pid.trim().to_string();
        command("kill", &[&pid])?;
        let stopped = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            ensure!(stopped.elapsed() < Duration::from_secs(20), "slurmctld (pid {pid}) did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("slurm-check: outage: slurmctld stopped for {} s", OUTAGE.as_secs());
        std::thread::scope(|sc| {
            // Asked while the controller is away: must come back with the task, not fail.
            let asked = sc.spawn(|| list(std::slice::from_ref(&job)));
            std::thread::sleep(OUTAGE.saturating_sub(stopped.elapsed()));
            let restarted = command("/usr/sbin/slurmctld", &[]);
            let (listed, retried) = asked.join().map_err(|_| anyhow::anyhow!("squeue thread panicked"))??;
            restarted?;
            ensure!(retried > 0, "squeue never failed while slurmctld was stopped");
            ensure!(
                listed.keys().any(|t| t.to_string() == task),
                "squeue after the outage does not list {task}: {listed:?}"
            );
            println!("slurm-check: outage: squeue failed {retried} time(s), was retried, and listed {task} again");
            Ok(())
        })
    })?;
    ensure!(failures.is_empty(), "the task failed across the outage: {failures:?}");
    s.expect_all_folds()
}
