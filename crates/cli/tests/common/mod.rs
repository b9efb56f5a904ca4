//! Helpers shared by the end-to-end tests: run the real binary on the bundled fixtures.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Path of a file under the workspace's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(rel)
}

/// Runs `genopred` with `args`.
pub fn genopred(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_genopred")).args(args).output().expect("binary runs")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args`, asserts exit code 2, no panic and every `wants` in stderr; returns stderr.
pub fn fails_with(args: &[&str], wants: &[&str]) -> String {
    let o = genopred(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "args {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in wants {
        assert!(err.contains(w), "args {args:?}: expected {w:?} in:\n{err}");
    }
    err
}

/// Reads `predictions.csv` into (id, repeat, fold, observed, predicted), sorted by id and repeat.
pub fn predictions(dir: &std::path::Path) -> Vec<(String, usize, usize, f64, f64)> {
    let mut rdr = csv::Reader::from_path(dir.join("predictions.csv")).expect("predictions.csv");
    let headers = rdr.headers().expect("header").clone();
    assert_eq!(&headers.iter().take(4).collect::<Vec<_>>(), &["id", "fold", "observed", "predicted"]);
    let mut rows: Vec<(String, usize, usize, f64, f64)> = rdr
        .records()
        .map(|r| {
            let r = r.expect("record");
            (
                r[0].to_string(),
                r[4].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].parse().unwrap(),
                r[3].parse().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    rows
}

/// Parses `summary.json`.
pub fn summary(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json")).expect("valid json")
}

/// Every file under `dir` (recursively) with a final name parses: no half-written results.
pub fn assert_complete_files(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            assert_complete_files(&p);
        } else if name.ends_with(".json") {
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{} is not complete JSON: {e}", p.display()));
        } else if name.ends_with(".csv") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.ends_with('\n'), "{} is cut short", p.display());
        }
    }
}

/// The run in `dir` was combined and its combined files are whole (`complete.json`).
pub fn assert_complete(dir: &std::path::Path) {
    if let Err(e) = genopred_core::records::RunComplete::verify(dir) {
        panic!("{}: {e}", dir.display());
    }
}

/// Every model of the catalogue, as the binary lists them.
pub fn models() -> Vec<String> {
    let o = genopred(&["models", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    listing["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
}

/// Settings small enough for a test, per model (a couple of epochs, a short chain).
pub fn small_config(model: &str) -> &'static str {
    match model {
        "gblup" | "rkhs" => "",
        "bayesb" => "iterations = 200\nburn_in = 50\n",
        "ensemble" => "[member.deepgs.train]\nepochs = 3\n",
        _ => "[train]\nepochs = 3\n",
    }
}
