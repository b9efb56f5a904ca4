//! The Slurm executor: the grid's fold tasks as one job array (a task per cell × fold), each
//! running `genopred cv --only-fold K --record-only` into its cell's folder.
//!
//! ```text
//! OUT/slurm/
//!   submissions.json        every array submitted: job id, when, its tasks, the array it retries
//!   sub-NNN/job.sh          the sbatch script (also written by --dry-run, into dry-run/)
//!   sub-NNN/tasks.tsv       one line per array task: repeat, fold, threads, record, log, command
//!   sub-NNN/slurm-%A_%a.out Slurm's own output of each task (the fold's log is in its cell)
//! ```
//!
//! The script times each task and writes its node, wall time, exit code and Slurm id beside
//! the fold (`cells/CELL/tasks/rRR-fFFF.json`), as the local executor does. Each attempt of a
//! task (a requeue, a retry) appends to Slurm's log and the fold's after a header line.
//! Tasks are followed by array job and task id (`slurm_queue`); one that ends without its fold
//! is reported with its id, Slurm's state and the end of Slurm's log (`slurm_failure`), and
//! `--retries N` submits such tasks again. Rerunning the same command collects what finished,
//! waits for arrays still queued or running, and resubmits only the tasks whose fold is missing
//! (failed, cancelled, or never run). Compare holds OUT's lock meanwhile, so no two runs share
//! a submission folder; submissions.json is rewritten under the folder's write lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use genopred_core::folder_lock::FolderLock;
use genopred_core::output::write_atomic;
use serde::{Deserialize, Serialize};

use super::slurm_failure::{SLURM_LOG, TaskFailure, describe};
use super::slurm_queue::{self, Accounted, ArrayTask, Listed};
use super::tasks::{ATTEMPT_HEADER, Task};

/// Slurm options of `cargo xtask compare --executor slurm`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SlurmArgs {
    /// Partition to submit to (sbatch --partition).
    #[arg(long)]
    pub slurm_partition: Option<String>,
    /// Time limit per task (sbatch --time), e.g. `2:00:00`.
    #[arg(long)]
    pub slurm_time: Option<String>,
    /// Memory per task (sbatch --mem), e.g. `4G`.
    #[arg(long)]
    pub slurm_mem: Option<String>,
    /// CPUs per task (sbatch --cpus-per-task); the fold computes with as many threads.
    #[arg(long, default_value_t = 1)]
    pub slurm_cpus: usize,
    /// Generic resources per task (sbatch --gres), e.g. `gpu:1` for cuda or wgpu cells.
    #[arg(long)]
    pub slurm_gres: Option<String>,
    /// Anything else for sbatch, as one string (`--slurm-extra "--account=x --qos short"`).
    #[arg(long, allow_hyphen_values = true)]
    pub slurm_extra: Option<String>,
    /// Submit and return; rerun the same command later to collect the results.
    #[arg(long)]
    pub no_wait: bool,
    /// Write the sbatch script and task list under OUT/slurm/ and stop, without submitting.
    #[arg(long)]
    pub dry_run: bool,
    /// Submit the tasks that end without their fold (time limit, memory, node failure, a crash)
    /// again, up to N times, each time as a new array of just those tasks.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["no_wait", "dry_run"])]
    pub retries: usize,
}

/// One array submitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Submission {
    /// Slurm's job id of the array.
    pub job_id: String,
    /// Folder of its script and task list, relative to OUT.
    pub dir: String,
    /// Seconds since the Unix epoch at submission.
    pub submitted: u64,
    /// Array tasks.
    pub tasks: usize,
    /// The array whose failed tasks this one runs again (`--retries`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

/// `OUT/slurm/submissions.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Submissions {
    /// In submission order.
    pub submissions: Vec<Submission>,
}

impl Submissions {
    fn path(out: &Path) -> PathBuf {
        out.join("slurm").join("submissions.json")
    }

    /// What was submitted from `out` so far (none when nothing was).
    pub fn read(out: &Path) -> Result<Self> {
        match std::fs::read(Self::path(out)) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{}", Self::path(out).display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", Self::path(out).display())),
        }
    }

    fn write(&self, out: &Path) -> Result<()> {
        write_atomic(&Self::path(out), serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(())
    }

    /// Adds `sub` to `out`'s submissions.json: read and rewritten under the folder's write
    /// lock, so that no other writer's line is lost.
    fn append(out: &Path, sub: Submission) -> Result<()> {
        FolderLock::while_writing(out, || -> Result<()> {
            let mut subs = Self::read(out)?;
            subs.submissions.push(sub);
            subs.write(out)
        })
    }

    /// Job ids in submission order.
    pub fn job_ids(&self) -> Vec<String> {
        self.submissions.iter().map(|s| s.job_id.clone()).collect()
    }
}

/// The failed tasks of the last array, by their fold's task record path
/// ([`Task::record`]): how each ended.
pub type Failures = BTreeMap<PathBuf, TaskFailure>;

/// What [`run`] did.
pub enum Outcome {
    /// Every task ended: merge and report. The tasks that ended without their fold, each with
    /// how it ended, for the cells' errors.
    Ended(Failures),
    /// The script was written, or the array submitted without waiting: stop here.
    Stopped,
}

/// Runs the tasks through Slurm: waits for arrays still active from an earlier call, says how
/// the tasks of earlier arrays that left their fold missing ended, submits the tasks given
/// (those whose fold is still missing, `still_missing` rechecks) as one array, waits for it
/// unless `--no-wait`, and resubmits its failed tasks as new arrays up to `--retries` times.
pub fn run(out: &Path, tasks: &[Task], args: &SlurmArgs, still_missing: &dyn Fn(&Task) -> bool) -> Result<Outcome> {
    let mut seen = BTreeMap::new();
    if !args.dry_run {
        let subs = Submissions::read(out)?;
        let active = slurm_queue::active(&subs.job_ids())?;
        if !active.is_empty() {
            if args.no_wait {
                println!(
                    "slurm: job(s) {} still queued or running; rerun this command later to collect",
                    active.join(", ")
                );
                return Ok(Outcome::Stopped);
            }
            println!("slurm: waiting for job(s) {} submitted earlier ...", active.join(", "));
            slurm_queue::wait(&active, &mut seen)?;
        }
        let earlier = earlier_failures(out, &subs, tasks, still_missing, &seen);
        for f in earlier.iter().take(10) {
            println!("slurm: an earlier array's {f}; submitting it again");
        }
        if earlier.len() > 10 {
            println!("slurm: ... and {} more earlier task(s) without their fold", earlier.len() - 10);
        }
    }
    let mut pending: Vec<&Task> = tasks.iter().filter(|t| still_missing(t)).collect();
    let mut failures = Failures::new();
    let mut retry_of: Option<String> = None;
    for attempt in 0..=args.retries {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            println!(
                "slurm: retry {attempt} of {}: submitting the {} task(s) that ended without their fold again",
                args.retries,
                pending.len()
            );
        }
        let Some((job, dir)) = submit(out, &pending, args, retry_of.as_deref())? else {
            return Ok(Outcome::Stopped);
        };
        if args.no_wait {
            println!("slurm: not waiting (--no-wait); rerun the same command to collect the results");
            return Ok(Outcome::Stopped);
        }
        slurm_queue::wait(std::slice::from_ref(&job), &mut seen)?;
        failures = ended_without_fold(&job, &dir, &pending, still_missing, &seen);
        println!("{}", ended_line(&job, pending.len(), &failures));
        pending.retain(|t| failures.contains_key(&t.record));
        retry_of = Some(job);
    }
    Ok(Outcome::Ended(failures))
}

/// Writes the script and task table of `tasks` into a new submission folder (or `dry-run`) and
/// submits them as one array, recorded in submissions.json. `None` for a dry run.
fn submit(out: &Path, tasks: &[&Task], args: &SlurmArgs, retry_of: Option<&str>) -> Result<Option<(String, PathBuf)>> {
    let (rel, dir) = if args.dry_run {
        let dir = out.join("slurm").join("dry-run");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        ("slurm/dry-run".to_string(), dir)
    } else {
        new_submission_dir(out)?
    };
    let table = task_table(tasks)?;
    write_atomic(&dir.join("tasks.tsv"), table.as_bytes())?;
    let sbatch = sbatch_options(args, tasks.len(), &dir);
    write_atomic(&dir.join("job.sh"), script(&sbatch, &dir).as_bytes())?;
    if args.dry_run {
        println!("slurm --dry-run: {} task(s); submit with\n  sbatch {}", tasks.len(), dir.join("job.sh").display());
        return Ok(None);
    }
    // Not retried: an sbatch that failed to answer may still have submitted the array.
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(dir.join("job.sh"))
        .output()
        .context("running sbatch (is Slurm installed and this a submit host?)")?;
    if !output.status.success() {
        bail!("sbatch {} failed: {}", dir.join("job.sh").display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let job_id = String::from_utf8_lossy(&output.stdout).trim().split(';').next().unwrap_or("").to_string();
    if job_id.is_empty() {
        bail!("sbatch printed no job id");
    }
    let submitted = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let retry_of = retry_of.map(String::from);
    let sub =
        Submission { job_id: job_id.clone(), dir: rel, submitted, tasks: tasks.len(), retry_of: retry_of.clone() };
    Submissions::append(out, sub)?;
    println!(
        "slurm: submitted job array {job_id} with {} task(s){}",
        tasks.len(),
        retry_of.map(|j| format!(", the failed ones of job {j}")).unwrap_or_default()
    );
    Ok(Some((job_id, dir)))
}

/// A new `slurm/sub-NNN` folder, numbered after every one in use (a folder, or a line of
/// submissions.json whose folder was removed) and made with `create_dir`, so that no two runs
/// ever write one.
fn new_submission_dir(out: &Path) -> Result<(String, PathBuf)> {
    let slurm = out.join("slurm");
    std::fs::create_dir_all(&slurm).with_context(|| format!("creating {}", slurm.display()))?;
    let number = |name: &str| name.strip_prefix("sub-").and_then(|n| n.parse::<usize>().ok());
    let on_disk: Vec<usize> = std::fs::read_dir(&slurm)
        .with_context(|| format!("reading {}", slurm.display()))?
        .flatten()
        .filter_map(|e| number(&e.file_name().to_string_lossy()))
        .collect();
    let recorded =
        Submissions::read(out)?.submissions.into_iter().filter_map(|s| s.dir.rsplit('/').next().and_then(number));
    let mut n = on_disk.into_iter().chain(recorded).max().unwrap_or(0) + 1;
    loop {
        let rel = format!("slurm/sub-{n:03}");
        let dir = out.join(&rel);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((rel, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
}

/// How each task of the array `job` (in array order, its script in `dir`) that left its fold
/// missing ended.
fn ended_without_fold(
    job: &str,
    dir: &Path,
    tasks: &[&Task],
    still_missing: &dyn Fn(&Task) -> bool,
    seen: &BTreeMap<ArrayTask, Listed>,
) -> Failures {
    let missing: Vec<(usize, &Task)> =
        tasks.iter().enumerate().map(|(i, t)| (i + 1, *t)).filter(|(_, t)| still_missing(t)).collect();
    if missing.is_empty() {
        return Failures::new();
    }
    let accounted = slurm_queue::accounting(job);
    missing
        .into_iter()
        .map(|(index, t)| {
            let at = ArrayTask { job: job.to_string(), task: index };
            let acc = accounted.as_ref().and_then(|a| a.get(&index));
            (t.record.clone(), describe(&at, dir, &t.record, seen.get(&at), acc))
        })
        .collect()
}

/// How the tasks of earlier arrays ended whose fold is still missing (each fold's latest
/// array), read from the submissions' task tables.
fn earlier_failures(
    out: &Path,
    subs: &Submissions,
    tasks: &[Task],
    still_missing: &dyn Fn(&Task) -> bool,
    seen: &BTreeMap<ArrayTask, Listed>,
) -> Vec<TaskFailure> {
    let mut latest: BTreeMap<PathBuf, (ArrayTask, PathBuf)> = BTreeMap::new();
    for sub in &subs.submissions {
        let dir = out.join(&sub.dir);
        let Ok(table) = std::fs::read_to_string(dir.join("tasks.tsv")) else { continue };
        for (i, record) in table_records(&table).into_iter().enumerate() {
            latest.insert(record, (ArrayTask { job: sub.job_id.clone(), task: i + 1 }, dir.clone()));
        }
    }
    let mut accounted: BTreeMap<String, Option<BTreeMap<usize, Accounted>>> = BTreeMap::new();
    let mut found: Vec<TaskFailure> = tasks
        .iter()
        .filter(|t| still_missing(t))
        .filter_map(|t| {
            let (at, dir) = latest.get(&t.record)?;
            let acc = accounted.entry(at.job.clone()).or_insert_with(|| slurm_queue::accounting(&at.job));
            Some(describe(at, dir, &t.record, seen.get(at), acc.as_ref().and_then(|a| a.get(&at.task))))
        })
        .collect();
    found.sort_by(|a, b| a.task.cmp(&b.task));
    found
}

/// The record paths of a task table, in array order.
fn table_records(table: &str) -> Vec<PathBuf> {
    table.lines().map(|l| PathBuf::from(l.split('\t').nth(3).unwrap_or(""))).collect()
}

/// `slurm: job 12 ended: 4 of 5 task(s) recorded their fold; not 12_3 (TIMEOUT)`.
fn ended_line(job: &str, tasks: usize, failures: &Failures) -> String {
    let mut line = format!("slurm: job {job} ended: {} of {tasks} task(s) recorded their fold", tasks - failures.len());
    if !failures.is_empty() {
        let mut failed: Vec<&TaskFailure> = failures.values().collect();
        failed.sort_by(|a, b| a.task.cmp(&b.task));
        let named: Vec<String> = failed.iter().map(|f| format!("{} ({})", f.task, f.state_word())).collect();
        line.push_str(&format!("; not {}", named.join(", ")));
    }
    line
}

/// The sbatch options, written into the script as `#SBATCH` lines: the script `--dry-run`
/// writes is complete (`sbatch job.sh`), and the one submitted is the same.
fn sbatch_options(args: &SlurmArgs, tasks: usize, dir: &Path) -> Vec<String> {
    let mut o = vec![
        "--job-name=genopred-compare".to_string(),
        format!("--array=1-{tasks}"),
        format!("--output={}", dir.join(SLURM_LOG).display()),
        // A requeued task keeps the earlier attempts' output.
        "--open-mode=append".to_string(),
        format!("--cpus-per-task={}", args.slurm_cpus.max(1)),
    ];
    let mut opt = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            o.push(format!("--{name}={v}"));
        }
    };
    opt("partition", &args.slurm_partition);
    opt("time", &args.slurm_time);
    opt("mem", &args.slurm_mem);
    opt("gres", &args.slurm_gres);
    if let Some(extra) = &args.slurm_extra {
        // One `#SBATCH` line per option, its value with it (`--qos short`).
        let mut words: Vec<String> = Vec::new();
        for word in extra.split_whitespace() {
            match words.last_mut() {
                Some(last) if !word.starts_with('-') => {
                    last.push(' ');
                    last.push_str(word);
                }
                _ => words.push(word.to_string()),
            }
        }
        o.extend(words);
    }
    o
}

/// The task table: `repeat, fold, threads, record, log, command` per line (tab-separated; the
/// command shell-quoted).
fn task_table(tasks: &[&Task]) -> Result<String> {
    let mut text = String::new();
    for t in tasks {
        let mut words = vec![t.program.display().to_string()];
        words.extend(t.args.iter().cloned());
        let fields = [t.record.display().to_string(), t.log.display().to_string()];
        if fields.iter().chain(&words).any(|w| w.contains('\t') || w.contains('\n')) {
            bail!("a path or argument of {} holds a tab or newline, which the Slurm task table cannot carry", t.label);
        }
        let command: Vec<String> = words.iter().map(|w| quote(w)).collect();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            t.repeat,
            t.fold,
            t.threads,
            fields[0],
            fields[1],
            command.join(" ")
        ));
    }
    Ok(text)
}

/// `s` single-quoted for the shell.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The array task script: reads its line of the task table, runs the command with its output
/// appended to the fold's log after a header naming the attempt, and records node, wall time,
/// exit code and Slurm id beside the fold.
fn script(sbatch: &[String], dir: &Path) -> String {
    format!(
        r#"#!/bin/bash
{options}
# genopred compare: one fold of one cell per array task (`sbatch job.sh`).
set -u
line=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {table})
IFS=$'\t' read -r repeat fold threads record log command <<< "$line"
mkdir -p "$(dirname "$record")" "$(dirname "$log")"
id="${{SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
node=$(hostname -s)
# Every attempt (a requeue, a retry) appends to Slurm's log and the fold's, after this header:
# the earlier attempts stay readable, and readers of a failure take the last.
header="{header}$(date +%Y-%m-%dT%H:%M:%S) on $node (job $id, restart count ${{SLURM_RESTART_COUNT:-0}})"
echo "$header"
echo "$header" >> "$log"
start=$(date +%s.%N)
bash -c "$command" >> "$log" 2>&1
code=$?
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {{ printf "%.3f", b - a }}')
echo "== exit code $code after $seconds s"
printf '{{"repeat": %s, "fold": %s, "node": "%s", "seconds": %s, "exit_code": %d, "threads": %s, "executor": "slurm", "slurm_job": "%s"}}\n' \
  "$repeat" "$fold" "$node" "$seconds" "$code" "$threads" "$id" > "$record.tmp" \
  && mv "$record.tmp" "$record"
exit $code
"#,
        options = sbatch.iter().map(|o| format!("#SBATCH {o}")).collect::<Vec<_>>().join("\n"),
        table = quote(&dir.join("tasks.tsv").display().to_string()),
        header = ATTEMPT_HEADER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_table_and_script_say_what_sbatch_needs() {
        let args = SlurmArgs {
            slurm_partition: Some("gpu".into()),
            slurm_mem: Some("4G".into()),
            slurm_cpus: 2,
            slurm_gres: Some("gpu:1".into()),
            slurm_extra: Some("--account=plants --qos short".into()),
            ..SlurmArgs::default()
        };
        let dir = Path::new("/out/slurm/sub-001");
        let o = sbatch_options(&args, 12, dir);
        for want in [
            "--array=1-12",
            "--cpus-per-task=2",
            "--partition=gpu",
            "--mem=4G",
            "--gres=gpu:1",
            "--account=plants",
            "--qos short",
        ] {
            assert!(o.iter().any(|x| x == want), "{want} in {o:?}");
        }
        assert!(!o.iter().any(|x| x.starts_with("--time")));
        let task = Task {
            cell: 0,
            label: "c".into(),
            repeat: 1,
            fold: 3,
            program: "/bin/genopred".into(),
            args: vec!["cv".into(), "--trait".into(), "plant height".into(), "--x".into(), "it's".into()],
            threads: 2,
            log: "/out/cells/c/tasks/r01-f003.log".into(),
            record: "/out/cells/c/tasks/r01-f003.json".into(),
            estimate: None,
        };
        let table = task_table(&[&task]).unwrap();
        assert_eq!(
            table,
            "1\t3\t2\t/out/cells/c/tasks/r01-f003.json\t/out/cells/c/tasks/r01-f003.log\t\
             /bin/genopred cv --trait 'plant height' --x 'it'\\''s'\n"
        );
        let bad = Task { args: vec!["a\tb".into()], ..task };
        assert!(task_table(&[&bad]).is_err());
        let s = script(&o, dir);
        assert!(s.starts_with("#!/bin/bash\n#SBATCH --job-name=genopred-compare\n#SBATCH --array=1-12\n"), "{s}");
        assert!(s.contains("\n#SBATCH --gres=gpu:1\n#SBATCH --account=plants\n#SBATCH --qos short\n"), "{s}");
        assert!(s.contains("sed -n \"${SLURM_ARRAY_TASK_ID}p\" /out/slurm/sub-001/tasks.tsv"), "{s}");
        assert!(
            s.contains("\n#SBATCH --output=/out/slurm/sub-001/slurm-%A_%a.out\n#SBATCH --open-mode=append\n"),
            "{s}"
        );
        assert!(s.contains("bash -c \"$command\" >> \"$log\" 2>&1\n"), "the fold's log is appended to: {s}");
        assert!(!s.contains(" > \"$log\""), "never truncated: {s}");
    }

    /// A task as the job script runs it: `sh -c SCRIPT`, its output and records in `dir`.
    fn shell_task(dir: &Path, fold: usize, script: &str) -> Task {
        Task {
            cell: 0,
            label: "c".into(),
            repeat: 1,
            fold,
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            threads: 1,
            log: dir.join(format!("cell/tasks/r01-f{fold:03}.log")),
            record: dir.join(format!("cell/tasks/r01-f{fold:03}.json")),
            estimate: None,
        }
    }

    #[test]
    fn each_attempt_of_the_job_script_appends_to_the_fold_log_after_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("slurm/sub-001");
        std::fs::create_dir_all(&sub).unwrap();
        let task =
            shell_task(dir.path(), 2, "echo \"fold output $SLURM_RESTART_COUNT\"; echo 'error: broke' >&2; exit 3");
        std::fs::write(sub.join("tasks.tsv"), task_table(&[&task]).unwrap()).unwrap();
        std::fs::write(sub.join("job.sh"), script(&sbatch_options(&plain(), 1, &sub), &sub)).unwrap();
        // Run as Slurm would run the first attempt, then its requeue.
        let attempt = |restart: Option<&str>| {
            let mut c = Command::new("bash");
            c.arg(sub.join("job.sh")).env("SLURM_ARRAY_JOB_ID", "12").env("SLURM_ARRAY_TASK_ID", "1");
            c.env("SLURM_JOB_ID", "14").env_remove("SLURM_RESTART_COUNT");
            if let Some(r) = restart {
                c.env("SLURM_RESTART_COUNT", r);
            }
            let out = c.output().unwrap();
            assert_eq!(out.status.code(), Some(3), "the fold's exit code is the task's");
            String::from_utf8(out.stdout).unwrap()
        };
        let first = attempt(None);
        let second = attempt(Some("1"));
        for (stdout, restart) in [(&first, 0), (&second, 1)] {
            assert!(stdout.starts_with(ATTEMPT_HEADER), "Slurm's log gets the header: {stdout}");
            assert!(stdout.contains(&format!("(job 12_1, restart count {restart})\n")), "{stdout}");
            assert!(stdout.contains("== exit code 3 after "), "{stdout}");
        }
        let log = std::fs::read_to_string(&task.log).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 6, "{log}");
        assert!(lines[0].starts_with(ATTEMPT_HEADER) && lines[0].ends_with("(job 12_1, restart count 0)"), "{log}");
        assert!(lines[3].starts_with(ATTEMPT_HEADER) && lines[3].ends_with("(job 12_1, restart count 1)"), "{log}");
        assert_eq!(super::super::tasks::last_attempt(&log), "fold output 1\nerror: broke\n");
        let run: super::super::tasks::TaskRun = serde_json::from_slice(&std::fs::read(&task.record).unwrap()).unwrap();
        assert_eq!((run.fold, run.exit_code, run.slurm_job.as_deref()), (2, 3, Some("12_1")));
    }

    fn plain() -> SlurmArgs {
        SlurmArgs { slurm_cpus: 1, ..SlurmArgs::default() }
    }

    #[test]
    fn submission_folders_are_never_reused_and_every_submission_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        // sub-003 left by a run that never recorded it; sub-004 recorded, its folder removed.
        std::fs::create_dir_all(out.join("slurm/sub-001")).unwrap();
        std::fs::create_dir_all(out.join("slurm/sub-003")).unwrap();
        std::fs::create_dir_all(out.join("slurm/dry-run")).unwrap();
        let sub = |job: &str, dir: &str| Submission {
            job_id: job.into(),
            dir: dir.into(),
            submitted: 1,
            tasks: 2,
            retry_of: None,
        };
        Submissions::append(out, sub("7", "slurm/sub-004")).unwrap();
        let (rel, path) = new_submission_dir(out).unwrap();
        assert_eq!((rel.as_str(), path.is_dir()), ("slurm/sub-005", true));
        assert_eq!(new_submission_dir(out).unwrap().0, "slurm/sub-006");
        Submissions::append(out, Submission { retry_of: Some("7".into()), ..sub("8", "slurm/sub-005") }).unwrap();
        let subs = Submissions::read(out).unwrap();
        assert_eq!(subs.job_ids(), ["7", "8"]);
        assert_eq!(subs.submissions[1].retry_of.as_deref(), Some("7"));
        let text = std::fs::read_to_string(out.join("slurm/submissions.json")).unwrap();
        assert_eq!(text.matches("retry_of").count(), 1, "left out where there is none: {text}");
    }

    #[test]
    fn failures_of_earlier_arrays_are_found_through_their_task_tables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let tasks: Vec<Task> = (1..=3).map(|f| shell_task(out, f, "true")).collect();
        // A job id no cluster has handed out, so that sacct, where there is one, knows nothing.
        let (first, second) = ("4000000001", "4000000002");
        for (job, sub, which) in [(first, "slurm/sub-001", &tasks[..]), (second, "slurm/sub-002", &tasks[1..2])] {
            std::fs::create_dir_all(out.join(sub)).unwrap();
            let refs: Vec<&Task> = which.iter().collect();
            std::fs::write(out.join(sub).join("tasks.tsv"), task_table(&refs).unwrap()).unwrap();
            Submissions::append(
                out,
                Submission { job_id: job.into(), dir: sub.into(), submitted: 1, tasks: which.len(), retry_of: None },
            )
            .unwrap();
        }
        let (sub1, sub2) = (out.join("slurm/sub-001"), out.join("slurm/sub-002"));
        assert_eq!(table_records(&std::fs::read_to_string(sub1.join("tasks.tsv")).unwrap()).len(), 3);
        std::fs::write(sub2.join(format!("slurm-{second}_1.out")), "x CANCELLED AT 2026 DUE TO TIME LIMIT ***\n")
            .unwrap();
        // Folds 2 and 3 missing: fold 2's latest array is the second, fold 3's the first.
        let missing = |t: &Task| t.fold != 1;
        let found = earlier_failures(out, &Submissions::read(out).unwrap(), &tasks, &missing, &BTreeMap::new());
        let named: Vec<(String, &str)> = found.iter().map(|f| (f.task.to_string(), f.state_word())).collect();
        assert_eq!(named, [(format!("{first}_3"), "UNKNOWN"), (format!("{second}_1"), "TIMEOUT")]);
        assert!(found[0].to_string().contains(&sub1.join(format!("slurm-{first}_3.out")).display().to_string()));

        let failures: Failures = found.into_iter().map(|f| (PathBuf::from(f.task.to_string()), f)).collect();
        assert_eq!(
            ended_line("12", 5, &failures),
            format!(
                "slurm: job 12 ended: 3 of 5 task(s) recorded their fold; not {first}_3 (UNKNOWN), {second}_1 (TIMEOUT)"
            )
        );
        assert_eq!(ended_line("12", 5, &Failures::new()), "slurm: job 12 ended: 5 of 5 task(s) recorded their fold");
    }
}
