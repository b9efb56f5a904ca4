//! Milliseconds per training step and per inference batch of every neural model on every
//! compiled backend, at each model's default batch size and input size on wheat599 (one 10-fold
//! training set), for `cargo xtask bench-reference`, which runs the PyTorch reference
//! (`benches/reference/reference.py`) on the same shapes and configs.
//!
//! `step-times [--steps N] [--warmup W] --spec SPEC.json --out RESULT.json`
//!
//! Threads: flex uses rayon's pool (`RAYON_NUM_THREADS`); tch uses libtorch's (the xtask sets
//! both, and PyTorch's, to the same count). Inputs are uniform on [0, 2) as in the reference
//! script; targets are uniform on ±1.7 (the reference draws them normal: a step's cost does not
//! depend on the values). Each step is timed on its own, ending when its loss is
//! read back to the host (so GPU backends are timed to completion); the median is reported.

use std::time::Instant;

use genopred_benches::{backends, fixture};
use genopred_core::readers::plink;
use genopred_zoo::harness::StepBench;
use serde_json::{Value, json};

struct Args {
    steps: usize,
    warmup: usize,
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

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\nusage: step-times [--steps N] [--warmup W] --spec SPEC.json --out RESULT.json");
            std::process::exit(2);
        }
    };
    let geno = plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("wheat599 fixture");
    // One 10-fold training set minus its 10 % validation subset, as in benches/train_step.rs.
    let train: Vec<usize> = (0..485).collect();
    let (mut spec, mut results) = (Vec::new(), Vec::new());
    for entry in genopred_zoo::MODELS {
        for (backend, device) in backends() {
            for mut bench in entry.step_benches(&geno, &train, &device) {
                if backend == "flex" {
                    let (b, shape) = (bench.batch(), bench.shape());
                    spec.push(json!({
                        "label": bench.label(), "model": bench.model(), "batch": b, "channels": shape.0,
                        "length": shape.1, "config": bench.config(),
                    }));
                }
                time_model(bench.as_mut(), backend, &args, &mut results);
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
        json!({ "threads": std::env::var("RAYON_NUM_THREADS").ok(), "steps": args.steps, "results": results }),
    );
}
