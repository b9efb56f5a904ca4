//! `cargo xtask bench-reference`: ms per training step of every neural model on genopred's
//! backends against the same architectures in PyTorch on the CPU, same batch, same inputs, same
//! thread count. Never run in CI (it needs Python with torch).
//!
//! 1. builds and runs `step-times` (benches/src/bin/step_times.rs) with the requested backend
//!    features; it writes the shapes and configs it used (`spec.json`) and its times;
//! 2. runs `benches/reference/reference.py --spec spec.json` with the same thread count;
//! 3. writes `report.md` and `report.json` with the ratios beside the targets (tch ≤ 1.1×
//!    PyTorch, flex ≤ 1.5×).

use std::collections::BTreeMap;
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
    /// Timed steps per model (after 3 warm-up steps); the median is reported.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Backends to time beside flex, comma-separated (cargo features of genopred-benches:
    /// wgpu, cuda, tch). tch builds against the torch of `--python` (LIBTORCH_USE_PYTORCH=1).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// The Python with torch 2.9 (`pip install torch==2.9.0 numpy`).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Output folder.
    #[arg(long, default_value = "target/bench-reference")]
    out: PathBuf,
}

/// `cargo xtask bench-reference`.
pub fn run(args: ReferenceArgs) -> Result<()> {
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
    let (spec, rust_out, py_out) = (out.join("spec.json"), out.join("genopred.json"), out.join("pytorch.json"));
    let status = Command::new(root.join("target/release/step-times"))
        .current_dir(&root)
        .env("RAYON_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .env("LD_LIBRARY_PATH", &lib_path)
        .args(["--steps", &args.steps.to_string(), "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&rust_out)
        .status()
        .context("running step-times")?;
    if !status.success() {
        bail!("step-times failed");
    }
    let rust: Value = serde_json::from_slice(&std::fs::read(&rust_out)?)?;
    let pytorch: Option<Value> = match &torch {
        None => {
            println!("{} has no torch: PyTorch reference skipped (pip install torch==2.9.0 numpy)", args.python);
            None
        }
        Some(info) => {
            println!("PyTorch {} ...", info[0]);
            let status = Command::new(&args.python)
                .current_dir(&root)
                .env("OMP_NUM_THREADS", &threads)
                .arg(root.join("benches/reference/reference.py"))
                .args(["--threads", &threads, "--steps", &args.steps.to_string(), "--spec"])
                .arg(&spec)
                .arg("--out")
                .arg(&py_out)
                .stdout(std::process::Stdio::null())
                .status()
                .context("running the reference script")?;
            if !status.success() {
                bail!("benches/reference/reference.py failed");
            }
            Some(serde_json::from_slice(&std::fs::read(&py_out)?)?)
        }
    };

    // label → PyTorch ms.
    let mut torch_ms: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    if let Some(p) = &pytorch {
        for r in p["results"].as_array().into_iter().flatten() {
            if let Some(label) = r["label"].as_str() {
                torch_ms.insert(
                    label.to_string(),
                    (
                        r["train_step_ms_median"].as_f64().unwrap_or(f64::NAN),
                        r["infer_ms_median"].as_f64().unwrap_or(f64::NAN),
                    ),
                );
            }
        }
    }
    let cpu = genopred_core::records::cpu_model().unwrap_or_default();
    let mut md = format!(
        "# Training step: genopred vs PyTorch\n\n{cpu}, {threads} thread(s) on every side; median of {} steps after 3 \
         warm-up steps; default batch and wheat599 input sizes (`spec.json`). PyTorch: {}. Targets per \
         training step: tch ≤ 1.1× PyTorch, flex ≤ 1.5×.\n\n| model | backend | batch × input | train step | PyTorch | ratio | target | inference | PyTorch inference |\n|---|---|---|---|---|---|---|---|---|\n",
        args.steps,
        torch.as_ref().map_or("not installed".to_string(), |t| t[0].clone())
    );
    let mut rows = Vec::new();
    for r in rust["results"].as_array().into_iter().flatten() {
        let label = r["label"].as_str().unwrap_or("");
        let backend = r["backend"].as_str().unwrap_or("");
        let ms = r["train_step_ms_median"].as_f64().unwrap_or(f64::NAN);
        let infer = r["infer_ms_median"].as_f64().unwrap_or(f64::NAN);
        let (t_ms, t_infer) = torch_ms.get(label).copied().unwrap_or((f64::NAN, f64::NAN));
        let ratio = ms / t_ms;
        let target = match backend {
            "tch" => Some(1.1),
            "flex" => Some(1.5),
            _ => None,
        };
        let verdict = match target {
            Some(t) if ratio.is_finite() => format!("≤ {t}× {}", if ratio <= t { "met" } else { "missed" }),
            Some(t) => format!("≤ {t}×"),
            None => "—".into(),
        };
        writeln!(
            md,
            "| {label} | {backend} | {} × {}×{} | {ms:.1} ms | {} | {} | {verdict} | {infer:.1} ms | {} |",
            r["batch"],
            r["channels"],
            r["length"],
            if t_ms.is_finite() { format!("{t_ms:.1} ms") } else { "—".into() },
            if ratio.is_finite() { format!("{ratio:.2}×") } else { "—".into() },
            if t_infer.is_finite() { format!("{t_infer:.1} ms") } else { "—".into() },
        )?;
        rows.push(json!({ "label": label, "backend": backend, "train_step_ms": ms, "pytorch_ms": t_ms, "ratio": ratio,
                          "target": target, "infer_ms": infer, "pytorch_infer_ms": t_infer }));
    }
    print!("\n{md}");
    write_atomic(&out.join("report.md"), md.as_bytes())?;
    let report = json!({ "cpu": cpu, "threads": args.threads, "steps": args.steps, "torch": torch.map(|t| t[0].clone()),
                         "rows": rows, "genopred": rust, "pytorch": pytorch });
    write_atomic(&out.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("written: {}", out.join("report.md").display());
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}
