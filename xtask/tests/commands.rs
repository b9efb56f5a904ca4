//! The xtask binary as CI and a developer run it (`cargo xtask ...`). Building this test also
//! makes `cargo test --workspace` build `target/debug/xtask` with the test build's dependencies,
//! which `.ci/run` then runs instead of building xtask a second time with `cargo run`.

use std::path::Path;
use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("running xtask")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tidy_passes_on_the_workspace() {
    let out = xtask(&["tidy"]);
    assert!(out.status.success(), "xtask tidy failed: {}", stderr(&out));
}

#[test]
fn an_unknown_command_fails_with_the_usage() {
    let out = xtask(&["no-such-command"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("usage: cargo xtask <ci | tidy | compare"), "{err}");
    assert!(err.contains("unknown or missing xtask command"), "{err}");
}

#[test]
fn same_results_names_the_missing_report() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("report.json"), r#"{"cells": []}"#).unwrap();
    let out = xtask(&["same-results", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("reading {}", Path::new(&b).join("report.json").display())), "{err}");
    // Two folders with the same (empty) report hold the same results.
    std::fs::write(b.join("report.json"), r#"{"cells": []}"#).unwrap();
    let out = xtask(&["same-results", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}
