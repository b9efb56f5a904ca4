//! Interrupted runs: every finished fold is on disk under its final name, nothing half-written
//! is, and `--resume` finishes the run with results equal to an uninterrupted one.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_complete_files, fixture, genopred, stderr};

fn args(out: &Path, seed: &str, config: &Path) -> Vec<String> {
    let f = |p: &str| fixture(p).to_str().unwrap().to_string();
    [
        "cv",
        "--geno",
        &f("maize300/maize300.bed"),
        "--pheno",
        &f("maize300/pheno.csv"),
        "--trait",
        "DTT",
        "--model",
        "mlp",
        "--folds",
        "10",
        "--seed",
        seed,
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(a: &[String]) -> std::process::Output {
    genopred(&a.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn killed_run_resumes_to_the_uninterrupted_result() {
    let tmp = tempfile::tempdir().unwrap();
    // Enough epochs that a fold takes a noticeable time; early stopping off so it cannot end early.
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, "[train]\nepochs = 40\npatience = 0\n").unwrap();

    let whole = tmp.path().join("whole");
    let o = run(&args(&whole, "5", &config));
    assert!(o.status.success(), "{}", stderr(&o));

    // Start the same run elsewhere and kill it (SIGKILL) once two folds have finished.
    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_genopred"))
        .args(args(&cut, "5", &config))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !cut.join("folds/r01-f002.json").exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
        assert!(started.elapsed() < Duration::from_secs(600), "fold 2 never finished");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!cut.join("summary.json").exists(), "the run finished before the kill; make folds slower");
    assert_complete_files(&cut);
    let finished = std::fs::read_dir(cut.join("folds"))
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.starts_with('.')
        })
        .count();
    assert!((2..10).contains(&finished), "{finished} folds finished before the kill");

    // Resuming reads the finished folds back and runs only the rest.
    let mut resume = args(&cut, "5", &config);
    resume.push("--resume".into());
    let o = run(&resume);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("resumed: {finished} of 10 fold(s)")), "{err}");
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert!(read(&whole, "predictions.csv") == read(&cut, "predictions.csv"), "resumed predictions differ");
    let metrics = |d: &Path| {
        let s: serde_json::Value = serde_json::from_str(&read(d, "summary.json")).unwrap();
        (s["metrics"].clone(), s["pooled"].clone())
    };
    assert_eq!(metrics(&whole), metrics(&cut));
    assert_complete_files(&cut);

    // Resuming a finished run reruns nothing and changes nothing.
    let o = run(&resume);
    assert!(stderr(&o).contains("resumed: 10 of 10 fold(s)"), "{}", stderr(&o));
    assert!(read(&whole, "predictions.csv") == read(&cut, "predictions.csv"), "predictions changed");
}

#[test]
fn resume_refuses_a_run_with_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mlp.toml");
    std::fs::write(&config, "[train]\nepochs = 2\n").unwrap();
    let out = tmp.path().join("out");
    let mut a = args(&out, "5", &config);
    a.extend(["--only-fold".into(), "1".into()]);
    assert!(run(&a).status.success());

    let mut other_seed = args(&out, "6", &config);
    other_seed.push("--resume".into());
    let o = run(&other_seed);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("--resume") && err.contains("differs in: ") && err.contains("seed"), "{err}");

    std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
    let mut other_config = args(&out, "5", &config);
    other_config.push("--resume".into());
    let err = stderr(&run(&other_config));
    assert!(err.contains("model_config"), "{err}");

    // --resume into an empty folder is a fresh run.
    let fresh = tmp.path().join("fresh");
    let mut a = args(&fresh, "5", &config);
    a.extend(["--resume".into(), "--only-fold".into(), "2".into()]);
    let o = run(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumed: 0 of 1 fold(s)"));
}
