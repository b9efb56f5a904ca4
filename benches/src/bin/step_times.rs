//! Milliseconds per training step and per inference batch of every neural model on every
//! compiled backend, at each model's default batch size and input size on wheat599 (one 10-fold
//! training set), for `cargo xtask bench-reference`, which runs the PyTorch reference
//! (`benches/reference/reference.py`) on the same shapes and configs.
//!
//! `step-times [--steps N] [--warmup W] [--epochs E] [--backends A,B] --spec SPEC.json --out RESULT.json`
//!
//! `--backends` times only these of the compiled-in backends (default: all of them).
//!
//! With `--epochs E` (epoch mode) each model also trains E epochs on wheat599's `yield_env1`,
//! fold 1 of 10 (seed 1; 485 lines fitted, 54 validating, 60 predicted), early stopping off:
//! once through the trainer `genopred cv` runs, once taken apart (batches, steps alone,
//! validation pass; see `genopred_zoo::harness::EpochTimes`). The first epoch of each is left
//! out of the medians (allocation and warm-up). The encoding of each model's fold is written
//! beside SPEC.json (`epoch-data/LABEL.f32`: fit inputs, fit targets, validation inputs and
//! targets, test inputs, little-endian f32) and named in the spec, so that the reference trains
//! on the same numbers.
//!
//! Threads: flex uses rayon's pool (`RAYON_NUM_THREADS`); tch uses libtorch's (the xtask sets
//! both, and PyTorch's, to the same count). Inputs are uniform on [0, 2) as in the reference
//! script; targets are uniform on ±1.7 (the reference draws them normal: a step's cost does not
//! depend on the values). Each step is timed on its own, ending when its loss is
//! read back to the host (so GPU backends are timed to completion); the median is reported.

use std::time::Instant;

/// The allocator the `genopred` binary runs with (crates/cli/src/main.rs), so that these times
/// are those users get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use genopred_benches::{backends, fixture};
use genopred_core::cv::{kfold, validation_split};
use genopred_core::phenotype::{PhenoOptions, Phenotypes};
use genopred_core::readers::plink;
use genopred_zoo::harness::{EpochTimes, FoldData, StepBench};
use serde_json::{Value, json};

struct Args {
    steps: usize,
    warmup: usize,
    epochs: usize,
    backends: Option<Vec<String>>,
    spec: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn parse() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).cloned();
    let num = |name: &str, default: usize| -> Result<usize, String> {
        get(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name}: not a number: {v}")))
    };
    Ok(Args {
        steps: num("--steps", 20)?,
        warmup: num("--warmup", 3)?,
        epochs: num("--epochs", 0)?,
        backends: get("--backends").map(|v| v.split(',').map(String::from).collect()),
        spec: get("--spec").ok_or("--spec FILE is required")?.into(),
        out: get("--out").ok_or("--out FILE is required")?.into(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn time_model(bench: &mut dyn StepBench, backend: &str, args: &Args, results: &mut Vec<Value>) {
    let (b, shape, label) = (bench.batch(), bench.shape(), bench.label().to_string());
    let timed = |f: &mut dyn FnMut()| {
        let mut times = Vec::with_capacity(args.steps);
        for i in 0..args.warmup + args.steps {
            let started = Instant::now();
            f();
            if i >= args.warmup {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        times
    };
    let steps = timed(&mut || {
        bench.train_step();
    });
    let infer = timed(&mut || {
        bench.infer();
    });
    let step_ms = median(steps.clone());
    let infer_ms = median(infer);
    println!(
        "{label:<10} {backend:<5} train step {step_ms:8.2} ms   inference {infer_ms:7.2} ms   (batch {b}, input {}×{})",
        shape.0, shape.1
    );
    results.push(json!({
        "label": label, "backend": backend, "batch": b, "channels": shape.0, "length": shape.1,
        "train_step_ms_median": step_ms,
        "train_step_ms_min": steps.iter().copied().fold(f64::INFINITY, f64::min),
        "infer_ms_median": infer_ms, "params": bench.params(),
    }));
}

/// Median of an epoch list without its first entry (allocation and warm-up), when there are more.
fn settled(v: &[f64]) -> f64 {
    median(if v.len() > 1 { v[1..].to_vec() } else { v.to_vec() })
}

fn epoch_result(label: &str, backend: &str, t: &EpochTimes, folds: usize) -> Value {
    let (epoch, steps, batches, valid) =
        (settled(&t.epoch_ms), settled(&t.steps_ms), settled(&t.batches_ms), settled(&t.valid_ms));
    println!(
        "{label:<10} {backend:<5} epoch {epoch:9.1} ms   steps alone {steps:9.1} ms   batches {batches:6.2} ms   \
         validation {valid:7.2} ms   not steps {:4.1} %   fit {:7.0} ms",
        100.0 * (1.0 - steps / epoch),
        t.fit_ms
    );
    json!({
        "label": label, "backend": backend, "epochs": t.epoch_ms.len(),
        "epoch_ms_median": epoch, "steps_ms_median": steps, "batches_ms_median": batches,
        "valid_ms_median": valid, "non_step_share": 1.0 - steps / epoch,
        "epoch_ms": t.epoch_ms, "steps_ms": t.steps_ms,
        "fit_ms": t.fit_ms, "predict_ms": t.predict_ms,
        "folds": folds,
    })
}

/// Writes `data` as little-endian f32 (fit x, fit y, validation x, validation y, test x).
fn write_fold(path: &std::path::Path, data: &genopred_zoo::harness::EncodedFold) {
    let mut bytes = Vec::new();
    for part in [&data.fit_x, &data.fit_y, &data.valid_x, &data.valid_y, &data.test_x] {
        bytes.extend(part.iter().flat_map(|v| v.to_le_bytes()));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "error: {e}\nusage: step-times [--steps N] [--warmup W] [--epochs E] [--backends A,B] --spec SPEC.json --out RESULT.json"
            );
            std::process::exit(2);
        }
    };
    let geno = plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("wheat599 fixture");
    // One 10-fold training set minus its 10 % validation subset, as in benches/train_step.rs.
    let train: Vec<usize> = (0..485).collect();
    // Epoch mode: fold 1 of wheat599's 10-fold split, its validation subset carved out as
    // `genopred cv` carves it (10 %).
    const FOLDS: usize = 10;
    let pheno =
        Phenotypes::read(&fixture("wheat599/pheno.csv"), &PhenoOptions::default()).expect("wheat599 phenotypes");
    let y: Vec<f64> = pheno
        .trait_values("yield_env1")
        .expect("yield_env1")
        .into_iter()
        .map(|v| v.expect("wheat599's yield_env1 has no missing value"))
        .collect();
    assert_eq!(y.len(), geno.n_samples(), "pheno.csv and wheat599.fam list the same lines in the same order");
    let fold = kfold(geno.n_samples(), FOLDS, 1).expect("folds").swap_remove(0);
    let (fit, valid) = validation_split(&fold.train, 0.1, 2).expect("validation split");
    let pick = |rows: &[usize]| rows.iter().map(|&r| y[r]).collect::<Vec<f64>>();
    let (fit_y, valid_y) = (pick(&fit), pick(&valid));
    let fold_data =
        FoldData { geno: &geno, fit: &fit, fit_y: &fit_y, valid: &valid, valid_y: &valid_y, test: &fold.test, seed: 1 };
    let data_dir = args.spec.with_file_name("epoch-data");

    let (mut spec, mut results, mut epoch_results) = (Vec::new(), Vec::new(), Vec::new());
    for entry in genopred_zoo::MODELS {
        let chosen = backends()
            .into_iter()
            .filter(|(name, _)| args.backends.as_ref().is_none_or(|list| list.iter().any(|b| b == name)));
        for (k, (backend, device)) in chosen.enumerate() {
            for mut bench in entry.step_benches(&geno, &train, &device) {
                let mut item = json!({
                    "label": bench.label(), "model": bench.model(), "batch": bench.batch(), "channels": bench.shape().0,
                    "length": bench.shape().1, "config": bench.config(),
                });
                time_model(bench.as_mut(), backend, &args, &mut results);
                if args.epochs > 0 {
                    let times = bench.epochs(&fold_data, args.epochs).unwrap_or_else(|e| panic!("{e}"));
                    epoch_results.push(epoch_result(bench.label(), backend, &times, FOLDS));
                    if k == 0 {
                        let file = data_dir.join(format!("{}.f32", bench.label()));
                        write_fold(&file, &times.data);
                        item["epoch_data"] = json!({
                            "file": file, "n_fit": fit.len(), "n_valid": valid.len(), "n_test": fold.test.len(),
                            "channels": times.data.shape.0, "length": times.data.shape.1,
                        });
                    }
                }
                if k == 0 {
                    spec.push(item);
                }
            }
        }
    }

    let write = |path: &std::path::Path, value: Value| {
        std::fs::write(path, serde_json::to_string_pretty(&value).expect("json"))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()))
    };
    write(&args.spec, Value::Array(spec));
    write(
        &args.out,
        json!({ "threads": std::env::var("RAYON_NUM_THREADS").ok(), "steps": args.steps, "results": results,
                "epochs": args.epochs, "epoch_results": epoch_results }),
    );
}
