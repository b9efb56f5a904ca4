//! Folds at once (`--jobs`): the same bytes as one fold at a time with the same threads per
//! fold, for a network with dropout and for GBLUP, in `cv` and `importance`; and the
//! one-fold-per-process path executors use (`--only-fold --record-only`, then `--resume`).

mod common;

use std::path::Path;

use common::{fixture, genopred, stderr};

/// An MLP with dropout and a few epochs: every random stream of a fit is exercised.
fn mlp_config(dir: &Path) -> String {
    let path = dir.join("mlp.toml");
    std::fs::write(&path, "dropout = 0.3\n[train]\nepochs = 6\nbatch_size = 32\n").unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `genopred COMMAND` on maize300 DTT with `model` (and `config`) into `out`, plus `extra`.
fn genopred_on_maize(command: &str, model: &str, config: Option<&str>, out: &Path, extra: &[&str]) {
    let f = |p: &str| fixture(p).to_str().unwrap().to_string();
    let mut args = vec![
        command.to_string(),
        "--geno".into(),
        f("maize300/maize300.bed"),
        "--pheno".into(),
        f("maize300/pheno.csv"),
        "--trait".into(),
        "DTT".into(),
        "--model".into(),
        model.into(),
        "--out".into(),
        out.to_str().unwrap().into(),
    ];
    if let Some(c) = config {
        args.extend(["--config".to_string(), c.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = genopred(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

fn cv(model: &str, config: Option<&str>, out: &Path, extra: &[&str]) {
    genopred_on_maize("cv", model, config, out, &[&["--folds", "5", "--seed", "11"], extra].concat());
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fold records with their wall times and memory blanked (the only things allowed to differ).
fn fold_records(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(dir.join("folds"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| {
            let mut v: serde_json::Value = serde_json::from_slice(&read(&e.path())).unwrap();
            v["result"]["seconds"] = serde_json::Value::Null;
            assert!(v["process_peak_rss_bytes"].as_u64().is_some_and(|b| b > 0), "peak memory recorded");
            v["process_peak_rss_bytes"] = serde_json::Value::Null;
            (e.file_name().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_same_run(a: &Path, b: &Path) {
    assert_eq!(read(&a.join("predictions.csv")), read(&b.join("predictions.csv")), "predictions.csv");
    let (fa, fb) = (fold_records(a), fold_records(b));
    assert_eq!(fa.len(), 5);
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{name} differs: {} vs {}", x["result"], y["result"]);
    }
}

#[test]
fn folds_at_once_give_the_bytes_of_one_fold_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let config = mlp_config(tmp.path());
    let one = tmp.path().join("one");
    let three = tmp.path().join("three");
    cv("mlp", Some(&config), &one, &["--jobs", "1", "--threads-per-job", "1"]);
    cv("mlp", Some(&config), &three, &["--jobs", "3", "--threads-per-job", "1"]);
    assert_same_run(&one, &three);
    // The training histories too (every epoch's losses).
    for f in ["r01-f001.history.csv", "r01-f005.history.csv"] {
        assert_eq!(read(&one.join("folds").join(f)), read(&three.join("folds").join(f)), "{f}");
    }
    let summary: serde_json::Value = serde_json::from_slice(&read(&three.join("summary.json"))).unwrap();
    assert_eq!(summary["provenance"]["parallelism"], serde_json::json!({"jobs": 3, "threads_per_job": 1}));

    // Two threads per fold, one or two folds at once.
    let one2 = tmp.path().join("one2");
    let two2 = tmp.path().join("two2");
    cv("mlp", Some(&config), &one2, &["--jobs", "1", "--threads-per-job", "2"]);
    cv("mlp", Some(&config), &two2, &["--jobs", "2", "--threads-per-job", "2"]);
    assert_same_run(&one2, &two2);

    let g1 = tmp.path().join("g1");
    let g2 = tmp.path().join("g2");
    cv("gblup", None, &g1, &["--jobs", "1", "--threads-per-job", "1"]);
    cv("gblup", None, &g2, &["--jobs", "0", "--threads-per-job", "1"]);
    assert_same_run(&g1, &g2);
}

/// A network built from burn's own layers whose dropout draws from burn's process-wide device
/// RNG (attention's and the residual branches'): three folds training at once give the bytes of
/// one fold at a time (the trainer seeds those draws per step; genopred_train::device_draws).
#[test]
fn burns_own_dropout_layers_give_the_same_bytes_with_folds_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("attention.toml");
    std::fs::write(&config, "dropout = 0.3\npatch = 64\nwidth = 16\nheads = 2\n[train]\nepochs = 4\nbatch_size = 32\n")
        .unwrap();
    let config = config.to_str().unwrap();
    let one = tmp.path().join("one");
    let three = tmp.path().join("three");
    cv("attention", Some(config), &one, &["--jobs", "1", "--threads-per-job", "1"]);
    cv("attention", Some(config), &three, &["--jobs", "3", "--threads-per-job", "1"]);
    assert_same_run(&one, &three);
    for f in ["r01-f001.history.csv", "r01-f004.history.csv"] {
        assert_eq!(read(&one.join("folds").join(f)), read(&three.join("folds").join(f)), "{f}");
    }
}

#[test]
fn one_fold_per_process_then_resume_equals_a_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = mlp_config(tmp.path());
    let whole = tmp.path().join("whole");
    let split = tmp.path().join("split");
    cv("mlp", Some(&config), &whole, &["--threads-per-job", "1"]);
    for k in ["3", "1", "5", "2", "4"] {
        cv("mlp", Some(&config), &split, &["--threads-per-job", "1", "--only-fold", k, "--record-only", "--resume"]);
        assert!(!split.join("summary.json").exists(), "--record-only writes no summary");
    }
    cv("mlp", Some(&config), &split, &["--threads-per-job", "1", "--resume"]);
    assert_same_run(&whole, &split);
    let summary: serde_json::Value = serde_json::from_slice(&read(&split.join("summary.json"))).unwrap();
    assert_eq!(summary["provenance"]["resumed_folds"], 5);
    // --record-only needs --only-fold: a whole run is combined.
    let o = genopred(&["cv", "--geno", "x.bed", "--trait", "t", "--out", "o", "--record-only"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn importance_with_folds_at_once_writes_the_same_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let config = mlp_config(tmp.path());
    let run = |model: &str, out: &Path, jobs: &str| {
        let config = (model == "mlp").then_some(config.as_str());
        let extra = ["--folds", "3", "--jobs", jobs, "--threads-per-job", "1"];
        genopred_on_maize("importance", model, config, out, &extra);
    };
    for model in ["mlp", "gblup"] {
        let a = tmp.path().join(format!("{model}-1"));
        let b = tmp.path().join(format!("{model}-3"));
        run(model, &a, "1");
        run(model, &b, "3");
        assert_eq!(read(&a.join("importance.csv")), read(&b.join("importance.csv")), "{model}");
    }
}
