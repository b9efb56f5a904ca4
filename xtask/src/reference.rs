//! `cargo xtask bench-reference`: ms per training step, and with `--epochs` per whole epoch, of
//! every neural model on genopred's backends against the same architectures in PyTorch, same
//! batch, same inputs, same thread count. Never run in CI (it needs Python with torch).
//!
//! 1. builds `step-times` (benches/src/bin/step_times.rs) with the requested backend features;
//! 2. `--runs` times, alternating: runs `step-times`, which writes the shapes and configs it used
//!    (`spec.json`, and with `--epochs` the encoded wheat599 fold each model trains on), then
//!    `benches/reference/reference.py --spec spec.json` with the same thread count;
//! 3. writes `report.md` and `report.json`: per model and backend the median over the runs of
//!    each run's median, with the range over the runs, beside PyTorch's and the target (flex and
//!    tch ≤ 1.0× PyTorch).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use genopred_core::output::write_atomic;

/// Arguments of `cargo xtask bench-reference`.
#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    /// Threads for every side (RAYON_NUM_THREADS for flex, OMP_NUM_THREADS and
    /// torch.set_num_threads for libtorch and PyTorch).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed steps per model and run (after 3 warm-up steps); each run reports their median.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Runs of both sides, alternating (genopred, PyTorch, genopred, ...): the report gives the
    /// median of the runs' medians and their range, which shows how much the machine's speed
    /// moved while it ran.
    #[arg(long, default_value_t = 4)]
    runs: usize,
    /// Epoch mode: also train every model this many whole epochs on wheat599 (fold 1 of 10,
    /// early stopping off) on both sides, and report ms per epoch, the share of an epoch spent
    /// outside the optimisation steps, and a 10-fold estimate (0: off).
    #[arg(long, default_value_t = 0)]
    epochs: usize,
    /// Backends to time beside flex, comma-separated (cargo features of genopred-benches:
    /// wgpu, cuda, tch). tch builds against the torch of `--python` (LIBTORCH_USE_PYTORCH=1).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// The Python with torch 2.9 (`pip install torch==2.9.0 numpy`).
    #[arg(long, default_value = "python3")]
    python: String,
    /// The torch device PyTorch runs on (`cpu`, or `cuda` to set a GPU backend beside it).
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Output folder.
    #[arg(long, default_value = "target/bench-reference")]
    out: PathBuf,
}

/// `cargo xtask bench-reference`.
pub fn run(args: ReferenceArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = crate::workspace_root().canonicalize().context("workspace root")?;
    let out = if args.out.is_absolute() { args.out.clone() } else { root.join(&args.out) };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let threads = args.threads.to_string();

    let torch = Command::new(&args.python)
        .args([
            "-c",
            "import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(String::from).collect::<Vec<_>>());
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args(["build", "--release", "--locked", "-p", "genopred-benches", "--bin", "step-times"]);
    if !args.features.is_empty() {
        cmd.args(["--features", &args.features.join(",")]);
    }
    let mut lib_path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    if args.features.iter().any(|f| f == "tch") {
        let Some(info) = &torch else {
            bail!("--features tch needs torch 2.9.0 in {} (pip install torch==2.9.0)", args.python);
        };
        // torch-sys finds libtorch through `python3`: put this Python first on PATH.
        let py = which(&args.python).unwrap_or_else(|| PathBuf::from(&args.python));
        let path = format!(
            "{}:{}",
            py.parent().unwrap_or(Path::new("/")).display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("LIBTORCH_USE_PYTORCH", "1").env("PATH", path);
        lib_path = format!("{}:{lib_path}", info[1]);
    }
    println!(
        "building step-times ({}) ...",
        if args.features.is_empty() { "flex".into() } else { format!("flex,{}", args.features.join(",")) }
    );
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("building step-times failed");
    }

    let spec = out.join("spec.json");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for r in 1..=args.runs {
        println!("run {r} of {}: genopred ...", args.runs);
        let rust_out = out.join(format!("genopred-{r}.json"));
        let status = Command::new(root.join("target/release/step-times"))
            .current_dir(&root)
            .env("RAYON_NUM_THREADS", &threads)
            .env("OMP_NUM_THREADS", &threads)
            .env("LD_LIBRARY_PATH", &lib_path)
            .args(["--steps", &args.steps.to_string(), "--epochs", &args.epochs.to_string(), "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&rust_out)
            .status()
            .context("running step-times")?;
        if !status.success() {
            bail!("step-times failed");
        }
        ours.push(read_json(&rust_out)?);
        let Some(info) = &torch else {
            println!("{} has no torch: PyTorch reference skipped (pip install torch==2.9.0 numpy)", args.python);
            continue;
        };
        println!("run {r} of {}: PyTorch {} ...", args.runs, info[0]);
        let py_out = out.join(format!("pytorch-{r}.json"));
        let status = Command::new(&args.python)
            .current_dir(&root)
            .env("OMP_NUM_THREADS", &threads)
            .arg(root.join("benches/reference/reference.py"))
            .args(["--threads", &threads, "--steps", &args.steps.to_string()])
            .args(["--epochs", &args.epochs.to_string(), "--device", &args.torch_device, "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&py_out)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running the reference script")?;
        if !status.success() {
            bail!("benches/reference/reference.py failed");
        }
        theirs.push(read_json(&py_out)?);
    }

    let cpu = genopred_core::records::cpu_model().unwrap_or_default();
    let torch_version = torch.as_ref().map_or("not installed".to_string(), |t| t[0].clone());
    let (md, rows, epoch_rows) = render(&Report {
        cpu: &cpu,
        threads: args.threads,
        steps: args.steps,
        torch: &torch_version,
        torch_device: &args.torch_device,
        ours: &ours,
        theirs: &theirs,
    })?;
    print!("\n{md}");
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    let report = json!({ "cpu": cpu, "threads": args.threads, "steps": args.steps, "runs": args.runs,
                         "epochs": args.epochs, "torch": torch.map(|t| t[0].clone()),
                         "torch_device": args.torch_device, "rows": rows, "epoch_rows": epoch_rows,
                         "genopred": ours, "pytorch": theirs });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("written: {}", out.join("report.md").display());
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        .with_context(|| format!("parsing {}", path.display()))
}

/// What the report is made from: each run's result files of both sides.
struct Report<'a> {
    cpu: &'a str,
    threads: usize,
    steps: usize,
    torch: &'a str,
    torch_device: &'a str,
    ours: &'a [Value],
    theirs: &'a [Value],
}

/// Median and range of one measurement over the runs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { 0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2]) };
        Some(Spread { median, min: v[0], max: v[v.len() - 1] })
    }

    /// `12.3 ms (11.9–14.0)`, the range left out for a single run.
    fn ms(&self) -> String {
        if self.min == self.max {
            format!("{:.1} ms", self.median)
        } else {
            format!("{:.1} ms ({:.1}–{:.1})", self.median, self.min, self.max)
        }
    }

    fn json(&self) -> Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

fn fmt_spread(s: Option<Spread>) -> String {
    s.map_or("—".into(), |s| s.ms())
}

fn fmt_ratio(s: Option<Spread>) -> String {
    s.map_or("—".into(), |s| format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max))
}

fn spread_json(s: Option<Spread>) -> Value {
    s.map_or(Value::Null, |s| s.json())
}

/// `key` of every entry of `list` (in each run's file) whose `label` (and `backend`, if given)
/// match, one value per run.
fn per_run(runs: &[Value], list: &str, label: &str, backend: Option<&str>, key: &str) -> Vec<f64> {
    runs.iter()
        .filter_map(|run| {
            run[list].as_array().into_iter().flatten().find(|r| {
                r["label"].as_str() == Some(label) && backend.is_none_or(|b| r["backend"].as_str() == Some(b))
            })
        })
        .filter_map(|r| r[key].as_f64())
        .collect()
}

/// The target per step and per epoch: flex and tch at PyTorch's speed or better.
fn target(backend: &str) -> Option<f64> {
    matches!(backend, "flex" | "tch").then_some(1.0)
}

fn verdict(ratio: Option<Spread>, target: Option<f64>) -> String {
    match (target, ratio) {
        (Some(t), Some(r)) => format!("≤ {t}× {}", if r.median <= t { "met" } else { "missed" }),
        (Some(t), None) => format!("≤ {t}×"),
        (None, _) => "—".into(),
    }
}

/// Ratios of two per-run lists taken run by run (both sides of run r ran back to back).
fn ratios(ours: &[f64], theirs: &[f64]) -> Vec<f64> {
    ours.iter().zip(theirs).map(|(a, b)| a / b).collect()
}

/// The report's Markdown, its step rows and its epoch rows.
fn render(r: &Report<'_>) -> Result<(String, Vec<Value>, Vec<Value>)> {
    let runs = r.ours.len();
    let mut md = format!(
        "# Training step and epoch: genopred vs PyTorch\n\n{}, {} thread(s) on every side; {runs} run(s) of each side, \
         alternating; each run's median of {} steps after 3 warm-up steps; the tables give the median over the runs and \
         (in brackets) their range. Default batch and wheat599 input sizes (`spec.json`). PyTorch {} on `{}`. Target: \
         flex and tch ≤ 1.0× PyTorch (the ratio is taken run by run, then its median).\n\n\
         | model | backend | batch × input | train step | PyTorch | ratio | target | inference | PyTorch inference |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        r.cpu, r.threads, r.steps, r.torch, r.torch_device
    );
    let mut rows = Vec::new();
    let Some(first) = r.ours.first() else { return Ok((md, rows, Vec::new())) };
    for item in first["results"].as_array().into_iter().flatten() {
        let label = item["label"].as_str().unwrap_or("");
        let backend = item["backend"].as_str().unwrap_or("");
        let ours = per_run(r.ours, "results", label, Some(backend), "train_step_ms_median");
        let torch = per_run(r.theirs, "results", label, None, "train_step_ms_median");
        let (step, torch_step, ratio) = (Spread::of(&ours), Spread::of(&torch), Spread::of(&ratios(&ours, &torch)));
        let infer = Spread::of(&per_run(r.ours, "results", label, Some(backend), "infer_ms_median"));
        let torch_infer = Spread::of(&per_run(r.theirs, "results", label, None, "infer_ms_median"));
        writeln!(
            md,
            "| {label} | {backend} | {} × {}×{} | {} | {} | {} | {} | {} | {} |",
            item["batch"],
            item["channels"],
            item["length"],
            fmt_spread(step),
            fmt_spread(torch_step),
            fmt_ratio(ratio),
            verdict(ratio, target(backend)),
            fmt_spread(infer),
            fmt_spread(torch_infer),
        )?;
        rows.push(json!({ "label": label, "backend": backend, "train_step_ms": spread_json(step),
                          "pytorch_ms": spread_json(torch_step), "ratio": spread_json(ratio),
                          "target": target(backend), "infer_ms": spread_json(infer),
                          "pytorch_infer_ms": spread_json(torch_infer) }));
    }

    let mut epoch_rows = Vec::new();
    let epoch_items: Vec<&Value> = first["epoch_results"].as_array().into_iter().flatten().collect();
    if let Some(e0) = epoch_items.first() {
        let epochs = e0["epochs"].as_u64().unwrap_or(0);
        let folds = e0["folds"].as_u64().unwrap_or(10);
        write!(
            md,
            "\n## Per epoch\n\nwheat599 `yield_env1`, fold 1 of {folds} (485 lines fitted, 54 validating, 60 predicted), {epochs} \
             epochs, early stopping off, the first epoch left out of each run's median. *Epoch*: the trainer `genopred cv` runs \
             (PyTorch: the same loop in Python: shuffle, last partial batch, validation pass, early-stopping and plateau \
             bookkeeping). *Not steps*: 1 − (the same epochs' optimisation steps alone, batches built beforehand) ÷ epoch. \
             *{folds} folds*: {folds} × (fit + prediction of the test rows) of this fold; genopred's fit includes fitting the \
             encoding (PCA, one-hot) and encoding, PyTorch's trains on genopred's encoding and does not.\n\n\
             | model | backend | epoch | PyTorch epoch | ratio | target | not steps | PyTorch not steps | batches | validation | {folds} folds | PyTorch {folds} folds |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )?;
    }
    for item in epoch_items {
        let label = item["label"].as_str().unwrap_or("");
        let backend = item["backend"].as_str().unwrap_or("");
        let get = |runs: &[Value], b: Option<&str>, key: &str| per_run(runs, "epoch_results", label, b, key);
        let ours = get(r.ours, Some(backend), "epoch_ms_median");
        let torch = get(r.theirs, None, "epoch_ms_median");
        let (epoch, torch_epoch, ratio) = (Spread::of(&ours), Spread::of(&torch), Spread::of(&ratios(&ours, &torch)));
        let share = Spread::of(&get(r.ours, Some(backend), "non_step_share"));
        let torch_share = Spread::of(&get(r.theirs, None, "non_step_share"));
        let batches = Spread::of(&get(r.ours, Some(backend), "batches_ms_median"));
        let valid = Spread::of(&get(r.ours, Some(backend), "valid_ms_median"));
        let folds = item["folds"].as_f64().unwrap_or(10.0);
        let whole = |runs: &[Value], b: Option<&str>| -> Vec<f64> {
            get(runs, b, "fit_ms")
                .iter()
                .zip(get(runs, b, "predict_ms"))
                .map(|(fit, predict)| folds * (fit + predict) / 1e3)
                .collect()
        };
        let (cv, torch_cv) = (Spread::of(&whole(r.ours, Some(backend))), Spread::of(&whole(r.theirs, None)));
        let pct = |s: Option<Spread>| {
            s.map_or("—".into(), |s| format!("{:.1} % ({:.1}–{:.1})", 100.0 * s.median, 100.0 * s.min, 100.0 * s.max))
        };
        let secs =
            |s: Option<Spread>| s.map_or("—".into(), |s| format!("{:.1} s ({:.1}–{:.1})", s.median, s.min, s.max));
        writeln!(
            md,
            "| {label} | {backend} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt_spread(epoch),
            fmt_spread(torch_epoch),
            fmt_ratio(ratio),
            verdict(ratio, target(backend)),
            pct(share),
            pct(torch_share),
            fmt_spread(batches),
            fmt_spread(valid),
            secs(cv),
            secs(torch_cv),
        )?;
        epoch_rows.push(json!({ "label": label, "backend": backend, "epoch_ms": spread_json(epoch),
                                "pytorch_epoch_ms": spread_json(torch_epoch), "ratio": spread_json(ratio),
                                "non_step_share": spread_json(share), "pytorch_non_step_share": spread_json(torch_share),
                                "batches_ms": spread_json(batches), "valid_ms": spread_json(valid),
                                "folds_s": spread_json(cv), "pytorch_folds_s": spread_json(torch_cv) }));
    }
    Ok((md, rows, epoch_rows))
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_file(step: f64, epoch: f64, share: f64) -> Value {
        json!({
            "results": [{ "label": "dnngp", "backend": "flex", "batch": 64, "channels": 1, "length": 215,
                          "train_step_ms_median": step, "infer_ms_median": 10.0 }],
            "epoch_results": [{ "label": "dnngp", "backend": "flex", "epochs": 8, "folds": 10,
                                "epoch_ms_median": epoch, "non_step_share": share, "batches_ms_median": 0.1,
                                "valid_ms_median": 12.0, "fit_ms": 900.0, "predict_ms": 100.0 }],
        })
    }

    fn torch_file(step: f64, epoch: f64) -> Value {
        json!({
            "results": [{ "label": "dnngp", "train_step_ms_median": step, "infer_ms_median": 8.0 }],
            "epoch_results": [{ "label": "dnngp", "epoch_ms_median": epoch, "non_step_share": 0.05,
                                "fit_ms": 400.0, "predict_ms": 100.0 }],
        })
    }

    #[test]
    fn spreads_take_the_median_and_range_and_skip_missing_values() {
        let s = Spread::of(&[3.0, f64::NAN, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(s, Spread { median: 2.5, min: 1.0, max: 10.0 });
        assert_eq!(Spread::of(&[4.0]).unwrap().ms(), "4.0 ms");
        assert!(Spread::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn the_report_pairs_runs_and_judges_the_median_ratio() {
        // Run by run: 1.2×, 0.9×, 1.1× per step; per epoch 1.0×, 0.8×, 0.9×.
        let ours = [run_file(60.0, 500.0, 0.1), run_file(45.0, 400.0, 0.2), run_file(66.0, 540.0, 0.05)];
        let theirs = [torch_file(50.0, 500.0), torch_file(50.0, 500.0), torch_file(60.0, 600.0)];
        let (md, rows, epochs) = render(&Report {
            cpu: "cpu",
            threads: 2,
            steps: 20,
            torch: "2.9.0",
            torch_device: "cpu",
            ours: &ours,
            theirs: &theirs,
        })
        .unwrap();
        let ratio = &rows[0]["ratio"];
        assert!((ratio["median"].as_f64().unwrap() - 1.1).abs() < 1e-12, "{ratio}");
        assert!((ratio["min"].as_f64().unwrap() - 0.9).abs() < 1e-12, "{ratio}");
        assert!(md.contains("≤ 1× missed"), "{md}");
        let e = &epochs[0];
        assert!((e["ratio"]["median"].as_f64().unwrap() - 0.9).abs() < 1e-12, "{e}");
        assert!(md.contains("≤ 1× met"), "{md}");
        assert_eq!(e["non_step_share"]["median"].as_f64(), Some(0.1));
        // 10 folds × (900 + 100) ms = 10 s; PyTorch 10 × 500 ms = 5 s.
        assert_eq!(e["folds_s"]["median"].as_f64(), Some(10.0));
        assert_eq!(e["pytorch_folds_s"]["median"].as_f64(), Some(5.0));
    }

    #[test]
    fn without_pytorch_the_report_shows_genopred_alone() {
        let ours = [run_file(60.0, 500.0, 0.1)];
        let (md, rows, _) = render(&Report {
            cpu: "cpu",
            threads: 2,
            steps: 20,
            torch: "not installed",
            torch_device: "cpu",
            ours: &ours,
            theirs: &[],
        })
        .unwrap();
        assert!(rows[0]["ratio"].is_null());
        assert!(md.contains("| 60.0 ms | — |"), "{md}");
    }
}
