//! The Slurm executor: the grid's fold tasks as one job array (a task per cell × fold), each
//! running `genopred cv --only-fold K --record-only` into its cell's folder.
//!
//! ```text
//! OUT/slurm/
//!   submissions.json        every array submitted: job id, when, and its tasks
//!   sub-NNN/job.sh          the sbatch script (also written by --dry-run)
//!   sub-NNN/tasks.tsv       one line per array task: repeat, fold, threads, record, log, command
//!   sub-NNN/slurm-%A_%a.out Slurm's own output of each task (the fold's log is in its cell)
//! ```
//!
//! The script times each task and writes its node, wall time, exit code and Slurm id beside
//! the fold (`cells/CELL/tasks/rRR-fFFF.json`), as the local executor does. Rerunning the same
//! command collects what finished, waits for arrays still queued or running, and resubmits only
//! the tasks whose fold is missing (failed, cancelled, or never run).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use genopred_core::output::write_atomic;
use serde::{Deserialize, Serialize};

use super::tasks::Task;

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

    /// Job ids in submission order.
    pub fn job_ids(&self) -> Vec<String> {
        self.submissions.iter().map(|s| s.job_id.clone()).collect()
    }
}

/// What [`run`] did.
pub enum Outcome {
    /// Every task ended (finished or failed): merge and report.
    Ended,
    /// The script was written, or the array submitted without waiting: stop here.
    Stopped,
}

/// Runs the tasks through Slurm: waits for arrays still active from an earlier call, submits the
/// tasks given (those whose fold is still missing, `still_missing` rechecks after waiting) as one
/// array, and waits for it unless `--no-wait`.
pub fn run(out: &Path, tasks: &[Task], args: &SlurmArgs, still_missing: &dyn Fn(&Task) -> bool) -> Result<Outcome> {
    let mut subs = Submissions::read(out)?;
    if !args.dry_run {
        let active = active_jobs(&subs.job_ids())?;
        if !active.is_empty() {
            if args.no_wait {
                println!(
                    "slurm: job(s) {} still queued or running; rerun this command later to collect",
                    active.join(", ")
                );
                return Ok(Outcome::Stopped);
            }
            println!("slurm: waiting for job(s) {} submitted earlier ...", active.join(", "));
            wait_for(&active)?;
        }
    }
    let tasks: Vec<&Task> = tasks.iter().filter(|t| still_missing(t)).collect();
    if tasks.is_empty() {
        return Ok(Outcome::Ended);
    }
    let n = subs.submissions.len() + 1;
    let rel = format!("slurm/{}", if args.dry_run { "dry-run".to_string() } else { format!("sub-{n:03}") });
    let dir = out.join(&rel);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let table = task_table(&tasks)?;
    write_atomic(&dir.join("tasks.tsv"), table.as_bytes())?;
    let sbatch = sbatch_options(args, tasks.len(), &dir);
    write_atomic(&dir.join("job.sh"), script(&sbatch, &dir).as_bytes())?;
    if args.dry_run {
        println!("slurm --dry-run: {} task(s); submit with\n  sbatch {}", tasks.len(), dir.join("job.sh").display());
        return Ok(Outcome::Stopped);
    }
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(dir.join("job.sh"))
        .output()
        .context("running sbatch (is Slurm installed and this a submit host?)")?;
    if !output.status.success() {
        bail!("sbatch failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let job_id = String::from_utf8_lossy(&output.stdout).trim().split(';').next().unwrap_or("").to_string();
    if job_id.is_empty() {
        bail!("sbatch printed no job id");
    }
    let submitted = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    subs.submissions.push(Submission { job_id: job_id.clone(), dir: rel, submitted, tasks: tasks.len() });
    subs.write(out)?;
    println!("slurm: submitted job array {job_id} with {} task(s)", tasks.len());
    if args.no_wait {
        println!("slurm: not waiting (--no-wait); rerun the same command to collect the results");
        return Ok(Outcome::Stopped);
    }
    wait_for(std::slice::from_ref(&job_id))?;
    Ok(Outcome::Ended)
}

/// The sbatch options, written into the script as `#SBATCH` lines: the script `--dry-run`
/// writes is complete (`sbatch job.sh`), and the one submitted is the same.
fn sbatch_options(args: &SlurmArgs, tasks: usize, dir: &Path) -> Vec<String> {
    let mut o = vec![
        "--job-name=genopred-compare".to_string(),
        format!("--array=1-{tasks}"),
        format!("--output={}", dir.join("slurm-%A_%a.out").display()),
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

/// The array task script: reads its line of the task table, runs the command with its output in
/// the fold's log, and records node, wall time, exit code and Slurm id beside the fold.
fn script(sbatch: &[String], dir: &Path) -> String {
    format!(
        r#"#!/bin/bash
{options}
# genopred compare: one fold of one cell per array task (`sbatch job.sh`).
set -u
line=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {table})
IFS=$'\t' read -r repeat fold threads record log command <<< "$line"
mkdir -p "$(dirname "$record")" "$(dirname "$log")"
start=$(date +%s.%N)
bash -c "$command" > "$log" 2>&1
code=$?
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {{ printf "%.3f", b - a }}')
node=$(hostname -s)
printf '{{"repeat": %s, "fold": %s, "node": "%s", "seconds": %s, "exit_code": %d, "threads": %s, "executor": "slurm", "slurm_job": "%s_%s"}}\n' \
  "$repeat" "$fold" "$node" "$seconds" "$code" "$threads" "${{SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}}" "$SLURM_ARRAY_TASK_ID" > "$record.tmp" \
  && mv "$record.tmp" "$record"
exit $code
"#,
        options = sbatch.iter().map(|o| format!("#SBATCH {o}")).collect::<Vec<_>>().join("\n"),
        table = quote(&dir.join("tasks.tsv").display().to_string()),
    )
}

/// The jobs among `ids` that Slurm still lists (queued or running). Asked one id at a time:
/// squeue refuses a whole list when one id in it is no longer known.
fn active_jobs(ids: &[String]) -> Result<Vec<String>> {
    let mut active = Vec::new();
    for id in ids {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%A", "-j", id])
            .output()
            .context("running squeue (is Slurm installed?)")?;
        if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == id) {
            active.push(id.clone());
        }
    }
    Ok(active)
}

/// Polls squeue until none of `ids` is listed, printing the count now and then.
fn wait_for(ids: &[String]) -> Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let active = active_jobs(ids)?;
        if active.is_empty() {
            return Ok(());
        }
        let out = Command::new("squeue")
            .args(["-h", "-o", "%T", "-j", &active.join(",")])
            .output()
            .context("running squeue")?;
        let states = String::from_utf8_lossy(&out.stdout);
        let running = states.lines().filter(|l| l.trim() == "RUNNING").count();
        let pending = states.lines().filter(|l| l.trim() == "PENDING").count();
        let now = format!("{running} running, {pending} pending");
        if now != last {
            println!("slurm: job(s) {}: {now} ({} s)", active.join(", "), started.elapsed().as_secs());
            last = now;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
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
    }
}
