//! A run folder holds one run: a restart without `--resume` in a used folder, two processes at
//! once on one `--out`, and fold records copied or edited by hand each end in a clear refusal
//! or a correct result, never a mix of two runs; kill -9 at any point, then `--resume`, gives
//! the uninterrupted run's bytes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fails_with, fixture, genopred, stderr};

/// `genopred cv` of `model` on maize300 DTT, 5 folds (unless `extra` says otherwise), into
/// `out`, with `extra` arguments.
fn cv(out: &Path, model: &str, seed: &str, extra: &[&str]) -> Vec<String> {
    let f = |p: &str| fixture(p).to_str().unwrap().to_string();
    let mut a: Vec<String> = [
        "cv",
        "--geno",
        &f("maize300/maize300.bed"),
        "--pheno",
        &f("maize300/pheno.csv"),
        "--trait",
        "DTT",
        "--model",
        model,
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !extra.contains(&"--folds") {
        a.extend(["--folds".to_string(), "5".into()]);
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(a: &[String]) -> std::process::Output {
    genopred(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn refused(a: &[String], wants: &[&str]) -> String {
    fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), wants)
}

fn ok(a: &[String]) -> String {
    let o = run(a);
    assert!(o.status.success(), "{a:?}: {}", stderr(&o));
    stderr(&o)
}

/// How many predictions `predictions.csv` holds, and of how many distinct ids.
fn ids(dir: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(dir.join("predictions.csv")).unwrap();
    let ids: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    let distinct: std::collections::HashSet<&&str> = ids.iter().collect();
    (ids.len(), distinct.len())
}

/// One prediction for each of the run's lines (maize300's 286 phenotyped ones).
fn assert_each_line_once(dir: &Path) {
    let n = common::summary(dir)["n_samples"].as_u64().unwrap() as usize;
    assert_eq!(n, 286);
    assert_eq!(ids(dir), (n, n), "{}", dir.display());
}

fn summary_seed(dir: &Path) -> u64 {
    common::summary(dir)["seed"].as_u64().unwrap()
}

#[test]
fn a_restart_without_resume_in_a_used_folder_is_refused_and_force_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    ok(&cv(&out, "gblup", "1", &[]));
    // The sequence: another seed, one fold, no --resume, into the finished folder.
    refused(
        &cv(&out, "gblup", "2", &["--only-fold", "1"]),
        &["holds the results of a finished run started with other settings (differs in: seed", "--force"],
    );
    refused(&cv(&out, "gblup", "2", &["--resume"]), &["--resume", "differs in: seed"]);
    // The same command again is refused too: the folder already holds that run.
    refused(&cv(&out, "gblup", "1", &[]), &["holds the results of a finished run with these settings", "--resume"]);
    // Nothing was touched by the refusals.
    assert_eq!(summary_seed(&out), 1);
    common::assert_complete(&out);
    // --force deletes the run and starts over: one prediction per line, the new seed throughout.
    std::fs::write(out.join("notes.txt"), "kept").unwrap();
    ok(&cv(&out, "gblup", "2", &["--force"]));
    assert_each_line_once(&out);
    assert_eq!(summary_seed(&out), 2);
    assert!(out.join("notes.txt").is_file(), "--force deletes only the run's own files");
    common::assert_complete(&out);
    // A run killed after its first fold, restarted without --resume, is refused the same way.
    let cut = tmp.path().join("cut");
    ok(&cv(&cut, "gblup", "1", &["--only-fold", "1"]));
    std::fs::remove_file(cut.join("summary.json")).unwrap();
    std::fs::remove_file(cut.join("complete.json")).unwrap();
    refused(&cv(&cut, "gblup", "3", &[]), &["holds 1 finished fold(s) of a run started with other settings"]);
    // --only-fold jobs of one run share a folder on purpose, without --resume.
    ok(&cv(&cut, "gblup", "1", &["--only-fold", "2", "--record-only"]));
    let err = ok(&cv(&cut, "gblup", "1", &["--resume"]));
    assert!(err.contains("resumed: 2 of 5 fold(s)"), "{err}");
    assert_each_line_once(&cut);
}

#[test]
fn copied_or_edited_fold_records_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    ok(&cv(&out, "gblup", "1", &[]));
    let folds = out.join("folds");
    let f2 = folds.join("r01-f002.json");
    let original = std::fs::read(&f2).unwrap();
    // Fold 1's record copied over fold 2's.
    std::fs::copy(folds.join("r01-f001.json"), &f2).unwrap();
    refused(&cv(&out, "gblup", "1", &["--resume"]), &["r01-f002.json", "holds repeat 1 fold 1", "--force"]);
    // A prediction edited by hand.
    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    v["predictions"][3]["predicted"] = serde_json::json!(v["predictions"][3]["predicted"].as_f64().unwrap() + 1.0);
    std::fs::write(&f2, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&cv(&out, "gblup", "1", &["--resume"]), &["r01-f002.json", "predictions were changed"]);
    // A metric edited by hand.
    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
    v["result"]["pearson"] = serde_json::json!(0.99);
    std::fs::write(&f2, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&cv(&out, "gblup", "1", &["--resume"]), &["r01-f002.json", "metrics are not those of its predictions"]);
    // A fold record of another run (same model, other seed) dropped in.
    let other = tmp.path().join("other");
    ok(&cv(&other, "gblup", "7", &[]));
    std::fs::copy(other.join("folds/r01-f002.json"), &f2).unwrap();
    refused(&cv(&out, "gblup", "1", &["--resume"]), &["r01-f002.json", "belongs to another run"]);
    // Restored, the run resumes to its own results.
    std::fs::write(&f2, &original).unwrap();
    let err = ok(&cv(&out, "gblup", "1", &["--resume"]));
    assert!(err.contains("resumed: 5 of 5"), "{err}");
    assert_each_line_once(&out);
}

/// Waits until `path` exists, while `child` runs.
fn wait_for(path: &Path, child: &mut std::process::Child) {
    let started = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the first run ended before the second started");
        assert!(started.elapsed() < Duration::from_secs(300), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(a: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_genopred")).args(a).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn two_processes_on_one_folder_never_mix_their_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mlp.toml");
    // Slow enough that the second process starts while the first runs.
    std::fs::write(&config, "[train]\nepochs = 150\npatience = 0\n").unwrap();
    let c = config.to_str().unwrap();

    // Two whole runs: the second is refused at once, naming the first's pid and host.
    let out = tmp.path().join("out");
    let mut first = spawn(&cv(&out, "mlp", "1", &["--config", c]));
    wait_for(&out.join("run.json"), &mut first);
    let err = refused(&cv(&out, "gblup", "2", &["--force"]), &["is in use by", &format!("pid {}", first.id())]);
    assert!(err.contains("on host"), "{err}");
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(summary_seed(&out), 1);
    let settings: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(settings["seed"], 1);
    assert_each_line_once(&out);
    common::assert_complete(&out);

    // `--only-fold` jobs share the lock. One with other settings starting while another runs
    // replaces run.json (no fold was recorded yet); the first then finds its run gone and
    // records nothing, so the folder holds the second run only.
    let shared = tmp.path().join("shared");
    // Slower still: the second job must record its fold before this one ends.
    let slower = tmp.path().join("slower.toml");
    std::fs::write(&slower, "[train]\nepochs = 600\npatience = 0\n").unwrap();
    let c = slower.to_str().unwrap();
    let mut slow = spawn(&cv(&shared, "mlp", "1", &["--config", c, "--only-fold", "1", "--record-only"]));
    wait_for(&shared.join("run.json"), &mut slow);
    ok(&cv(&shared, "gblup", "2", &["--only-fold", "2", "--record-only"]));
    let o = slow.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("started over by another process"), "{err}");
    assert!(!shared.join("folds/r01-f001.json").exists());
    let err = ok(&cv(&shared, "gblup", "2", &["--resume"]));
    assert!(err.contains("resumed: 1 of 5"), "{err}");
    assert_eq!(summary_seed(&shared), 2);
    assert_each_line_once(&shared);
}

#[test]
fn kill_9_at_random_points_then_resume_gives_the_uninterrupted_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let started = Instant::now();
    ok(&cv(&whole, "gblup", "4", &["--folds", "10"]));
    let span = started.elapsed();

    let cut = tmp.path().join("cut");
    let args = cv(&cut, "gblup", "4", &["--folds", "10", "--resume"]);
    // Kill points spread over each run, from a fixed sequence. Once every fold is recorded a
    // run only reads them back and combines, so its kill lands in loading or combining; the
    // span follows the runs as they get shorter.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut kills, mut after_all_folds) = (0, 0);
    let mut span = span;
    for _ in 0..20 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let at = span.mul_f64((state >> 11) as f64 / (1u64 << 53) as f64);
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_genopred"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while t0.elapsed() < at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_some() {
            span = t0.elapsed();
        } else {
            let folds_done = std::fs::read_dir(cut.join("folds"))
                .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("r01-f0")).count())
                .unwrap_or(0);
            child.kill().unwrap();
            kills += 1;
            after_all_folds += usize::from(folds_done >= 10);
        }
        child.wait().unwrap();
        // Whatever is on disk under a final name is whole.
        common::assert_complete_files(&cut);
    }
    assert!(kills >= 8, "only {kills} of 20 runs were killed");
    eprintln!("{kills} kills, {after_all_folds} of them with every fold recorded");
    let err = ok(&args);
    assert!(err.contains("resumed: "), "{err}");
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert!(read(&whole, "predictions.csv") == read(&cut, "predictions.csv"), "resumed predictions differ");
    let metrics = |d: &Path| {
        let s = common::summary(d);
        (s["metrics"].clone(), s["pooled"].clone(), s["folds"].as_array().unwrap().len())
    };
    assert_eq!(metrics(&whole), metrics(&cut));
    common::assert_complete(&cut);
}
