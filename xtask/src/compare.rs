//! `cargo xtask compare`: models × backends × datasets → one report.
//!
//! Builds the `genopred` binary once per backend feature set, checks that each backend runs on
//! this machine (a backend that does not build or start is skipped, with the reason in the
//! report), runs every cell (dataset × trait × model × backend × seed) as a `genopred cv` run in
//! its own folder, and writes `report.md`, `report.json` and figures (PNG and SVG) to `--out`.
//!
//! Cells are cached by the hash of everything that decides their result (data files, trait,
//! model, backend, seed, fold scheme, config file, extra `cv` arguments, genopred version): a
//! rerun of a larger grid runs only the new cells, and an interrupted cell resumes from its
//! finished folds (`genopred cv --resume`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::report;

/// The `compare` command's arguments.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Models, comma-separated. GBLUP has no deep-learning backend: it runs once per seed, on
    /// the CPU, whatever `--backends` says. Default: the suite's, else gblup,dnngp,deepgs,dlgwas.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// burn backends, comma-separated: flex, wgpu, cuda, tch. Each is built with its cargo
    /// feature; one that does not build or start here is skipped with the reason. Default: the
    /// suite's, else flex.
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Genotypes (PLINK, VCF or CSV). Default: the bundled wheat599.
    #[arg(long)]
    geno: Option<PathBuf>,
    /// Phenotypes. Default: the bundled wheat599's.
    #[arg(long)]
    pheno: Option<PathBuf>,
    /// Traits, comma-separated. Default: yield_env1 (with the bundled data).
    #[arg(long = "trait", value_delimiter = ',')]
    traits: Vec<String>,
    /// Folds of the k-fold cross-validation.
    #[arg(long, default_value_t = 10, conflicts_with = "folds_file")]
    folds: usize,
    /// Folds from a file (`id,fold`) instead.
    #[arg(long)]
    folds_file: Option<PathBuf>,
    /// Seeds (fold assignment, initial weights, shuffling), comma-separated: one run per seed.
    /// Default: the suite's, else 1.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// A folder of per-model configs, `MODEL.toml`, passed to `genopred cv --config`.
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// A bundled suite (xtask/suites/NAME.toml): `paper` (each model's paper defaults on the
    /// bundled datasets, beside published numbers) or `quick` (capped epochs, minutes).
    /// Datasets, traits, folds and configs come from the suite; `--models`, `--backends` and
    /// `--seeds`, when given, override the suite's.
    #[arg(long)]
    suite: Option<String>,
    /// Output folder.
    #[arg(long, default_value = "results/compare")]
    out: PathBuf,
    /// Run every cell again, even those with a cached result.
    #[arg(long)]
    rerun: bool,
    /// Arguments passed on to every `genopred cv` run (after `--`), e.g. `-- --min-maf 0.05`.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// The models of a comparison when neither `--models` nor a suite names them.
const DEFAULT_MODELS: &[&str] = &["gblup", "dnngp", "deepgs", "dlgwas"];

/// One dataset of the grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dataset {
    /// Short name, used in folder names and the report.
    pub name: String,
    /// Genotype file.
    pub geno: PathBuf,
    /// Phenotype file.
    pub pheno: PathBuf,
    /// Traits to predict.
    pub traits: Vec<String>,
}

/// A published accuracy printed beside ours (`--suite paper`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    /// Dataset name.
    pub dataset: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Model (ours) it compares with.
    pub model: String,
    /// The published Pearson r (or a range as text).
    pub value: String,
    /// What was published (the model as named there, and its CV scheme).
    pub what: String,
    /// Citation key of docs/published-results.md.
    pub source: String,
}

/// A suite file: xtask/suites/NAME.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    description: String,
    models: Vec<String>,
    #[serde(default)]
    backends: Option<Vec<String>>,
    folds: usize,
    seeds: Vec<u64>,
    #[serde(default)]
    configs: BTreeMap<String, PathBuf>,
    #[serde(rename = "dataset")]
    datasets: Vec<Dataset>,
    #[serde(default)]
    published: Vec<Published>,
}

/// The whole grid after suite and arguments are resolved.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// Suite name, if any.
    pub suite: Option<String>,
    /// Suite description.
    pub description: String,
    /// Models.
    pub models: Vec<String>,
    /// Backends asked for.
    pub backends: Vec<String>,
    /// Datasets and traits.
    pub datasets: Vec<Dataset>,
    /// k of k-fold CV (unless `folds_file`).
    pub folds: usize,
    /// Folds file.
    pub folds_file: Option<PathBuf>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Config file per model.
    pub configs: BTreeMap<String, PathBuf>,
    /// Extra `cv` arguments.
    pub extra: Vec<String>,
    /// Published numbers to print beside ours.
    pub published: Vec<Published>,
    /// The git commit the binaries are built from (and whether the tree had uncommitted
    /// changes then); `run` fills it in just before building.
    pub commit: String,
}

/// A backend that could not be used, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Backend.
    pub backend: String,
    /// Why (the build's or the probe's error).
    pub reason: String,
}

/// One cell's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    /// Dataset name.
    pub dataset: String,
    /// Trait.
    #[serde(rename = "trait")]
    pub trait_name: String,
    /// Model.
    pub model: String,
    /// Backend (`cpu` for GBLUP).
    pub backend: String,
    /// Seed.
    pub seed: u64,
    /// The cell's folder, relative to the output folder.
    pub dir: String,
    /// Input hash the cell is cached by.
    pub key: String,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// Wall time of the `genopred cv` process (of the run that produced it).
    pub wall_seconds: f64,
    /// Error, when the run failed.
    pub error: Option<String>,
    /// Per-fold Pearson r.
    pub pearson: Vec<f64>,
    /// Per-fold MSE.
    pub mse: Vec<f64>,
    /// Per-fold NDCG.
    pub ndcg: Vec<f64>,
    /// Per-fold wall time of QC, fit and prediction.
    pub fold_seconds: Vec<f64>,
    /// Per-fold epochs run (neural models).
    pub epochs: Vec<f64>,
    /// Peak resident memory of the `cv` process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Input hashes as `genopred cv` recorded them.
    pub inputs: Value,
}

/// `cargo xtask compare`.
pub fn run(args: CompareArgs) -> Result<()> {
    let root = genopred_benches::workspace_root().canonicalize().context("workspace root")?;
    let mut plan = plan(&args, &root)?;
    // Recorded now, not when a cell finishes: edits made while the grid runs do not change the
    // binaries already built.
    plan.commit = git_commit(&root.join("Cargo.toml"));
    let out = if args.out.is_absolute() { args.out.clone() } else { std::env::current_dir()?.join(&args.out) };
    std::fs::create_dir_all(out.join("cells")).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();

    // One binary per backend feature set; GBLUP runs with any of them.
    let mut binaries: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut probes = BTreeMap::new();
    let neural = plan.models.iter().any(|m| m != "gblup");
    for backend in &plan.backends {
        if !neural {
            break;
        }
        println!("building genopred with the {backend} backend ...");
        match build(&root, backend).and_then(|bin| probe(&bin, backend).map(|info| (bin, info))) {
            Ok((bin, info)) => {
                println!("  {backend}: {}", info.lines().next().unwrap_or("ok"));
                probes.insert(backend.clone(), info);
                binaries.insert(backend.clone(), bin);
            }
            Err(reason) => {
                println!("  {backend}: skipped: {reason}");
                skipped.push(Skipped { backend: backend.clone(), reason });
            }
        }
    }
    let cpu_binary = match binaries.values().next() {
        Some(bin) => bin.clone(),
        None => build(&root, "flex").map_err(|e| anyhow::anyhow!("building genopred for GBLUP: {e}"))?,
    };

    // The grid.
    let mut cells = Vec::new();
    for ds in &plan.datasets {
        for t in &ds.traits {
            for model in &plan.models {
                let backends: Vec<(String, PathBuf)> = if model == "gblup" {
                    vec![("cpu".to_string(), cpu_binary.clone())]
                } else {
                    binaries.iter().map(|(b, p)| (b.clone(), p.clone())).collect()
                };
                for (backend, bin) in backends {
                    for &seed in &plan.seeds {
                        cells.push((ds.clone(), t.clone(), model.clone(), backend.clone(), bin.clone(), seed));
                    }
                }
            }
        }
    }
    let build_seconds = started.elapsed().as_secs_f64();
    let version = genopred_version(&cpu_binary);
    let total = cells.len();
    let mut results = Vec::with_capacity(total);
    for (i, (ds, t, model, backend, bin, seed)) in cells.into_iter().enumerate() {
        let cell = Cell { dataset: &ds, trait_name: &t, model: &model, backend: &backend, seed };
        let key = cell_key(&plan, &cell, &version)?;
        let dir_name = format!("{}-{}-{}-{}-s{}-{}", ds.name, sanitize(&t), model, backend, seed, &key[..10]);
        let dir = out.join("cells").join(&dir_name);
        print!("[{}/{total}] {} {t}: {model} on {backend}, seed {seed} ... ", i + 1, ds.name);
        use std::io::Write as _;
        std::io::stdout().flush().ok();
        let result = run_cell(&plan, &cell, &bin, &dir, &dir_name, &key, args.rerun);
        match &result.error {
            None => println!(
                "{}r = {:.3}, {}",
                if result.cached { "cached, " } else { "" },
                mean(&result.pearson),
                report::duration(result.wall_seconds)
            ),
            Some(e) => println!("failed: {}", e.lines().last().unwrap_or(e)),
        }
        results.push(result);
    }

    let environment = environment(&root, &probes, &version, &plan.commit);
    let wall = started.elapsed().as_secs_f64();
    let timing = report::Timing { build_seconds, cells_seconds: wall - build_seconds };
    report::write(&out, &plan, &environment, &skipped, &results, &timing)?;
    println!(
        "report: {} ({} cells in {}, after {} building)",
        out.join("report.md").display(),
        results.len(),
        report::duration(timing.cells_seconds),
        report::duration(build_seconds)
    );
    if results.iter().any(|r| r.error.is_some()) {
        bail!("some cells failed; see the report");
    }
    Ok(())
}

fn plan(args: &CompareArgs, root: &Path) -> Result<Plan> {
    let abs =
        |p: &Path| if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(p) };
    let mut plan = if let Some(name) = &args.suite {
        let path = root.join("xtask").join("suites").join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("unknown suite '{name}': reading {} (bundled: {})", path.display(), bundled_suites(root).join(", "))
        })?;
        let suite: Suite = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if args.geno.is_some() || args.pheno.is_some() || !args.traits.is_empty() {
            bail!("--suite brings its own datasets; drop --geno, --pheno and --trait, or drop --suite");
        }
        let suite_dir = path.parent().expect("suite folder").to_path_buf();
        Plan {
            suite: Some(name.clone()),
            description: suite.description,
            models: given(&args.models).unwrap_or(suite.models),
            backends: given(&args.backends).or(suite.backends).unwrap_or_else(|| vec!["flex".into()]),
            datasets: suite
                .datasets
                .into_iter()
                .map(|d| Dataset { geno: root.join(&d.geno), pheno: root.join(&d.pheno), ..d })
                .collect(),
            folds: suite.folds,
            folds_file: None,
            seeds: given(&args.seeds).unwrap_or(suite.seeds),
            configs: suite.configs.into_iter().map(|(m, p)| (m, suite_dir.join(p))).collect(),
            extra: args.extra.clone(),
            published: suite.published,
            commit: String::new(),
        }
    } else {
        let bundled = args.geno.is_none();
        if bundled && (args.pheno.is_some() || !args.traits.is_empty()) {
            bail!("--pheno and --trait need --geno (without them the bundled wheat599 is used)");
        }
        if !bundled && (args.pheno.is_none() || args.traits.is_empty()) {
            bail!("--geno needs --pheno and --trait");
        }
        let (geno, pheno, traits) = if bundled {
            let dir = root.join("fixtures").join("wheat599");
            (dir.join("wheat599.bed"), dir.join("pheno.csv"), vec!["yield_env1".to_string()])
        } else {
            (abs(args.geno.as_ref().expect("geno")), abs(args.pheno.as_ref().expect("pheno")), args.traits.clone())
        };
        let name = if bundled { "wheat599".to_string() } else { dataset_name(&geno) };
        Plan {
            suite: None,
            description: "custom grid".into(),
            models: given(&args.models).unwrap_or_else(|| DEFAULT_MODELS.iter().map(|m| m.to_string()).collect()),
            backends: given(&args.backends).unwrap_or_else(|| vec!["flex".into()]),
            datasets: vec![Dataset { name, geno, pheno, traits }],
            folds: args.folds,
            folds_file: args.folds_file.as_deref().map(abs),
            seeds: given(&args.seeds).unwrap_or_else(|| vec![1]),
            configs: BTreeMap::new(),
            extra: args.extra.clone(),
            published: Vec::new(),
            commit: String::new(),
        }
    };
    if let Some(dir) = &args.config_dir {
        let dir = abs(dir);
        for model in &plan.models {
            let file = dir.join(format!("{model}.toml"));
            if file.is_file() {
                plan.configs.insert(model.clone(), file);
            }
        }
    }
    const MODELS: &[&str] = &["gblup", "dnngp", "deepgs", "dlgwas", "mlp"];
    const BACKENDS: &[&str] = &["flex", "wgpu", "cuda", "tch"];
    for m in &plan.models {
        if !MODELS.contains(&m.as_str()) {
            bail!("unknown model '{m}'; known: {}", MODELS.join(", "));
        }
    }
    for b in &plan.backends {
        if !BACKENDS.contains(&b.as_str()) {
            bail!("unknown backend '{b}'; known: {}", BACKENDS.join(", "));
        }
    }
    if plan.seeds.is_empty() || plan.models.is_empty() || plan.backends.is_empty() {
        bail!("nothing to run: give at least one model, backend and seed");
    }
    for ds in &plan.datasets {
        for f in data_files(&ds.geno).iter().chain([&ds.pheno]) {
            if !f.is_file() {
                bail!("dataset {}: {} does not exist", ds.name, f.display());
            }
        }
    }
    for (model, file) in &plan.configs {
        if !file.is_file() {
            bail!("config for {model}: {} does not exist", file.display());
        }
    }
    Ok(plan)
}

/// A list given on the command line, or `None` when it was left out (empty).
fn given<T: Clone>(values: &[T]) -> Option<Vec<T>> {
    (!values.is_empty()).then(|| values.to_vec())
}

fn bundled_suites(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("xtask").join("suites"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn dataset_name(geno: &Path) -> String {
    let name = geno.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let stem = name.trim_end_matches(".gz").trim_end_matches(".vcf");
    sanitize(Path::new(stem).file_stem().and_then(|s| s.to_str()).unwrap_or(stem))
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// The files a genotype argument stands for (PLINK: `.bed`, `.bim`, `.fam`).
fn data_files(geno: &Path) -> Vec<PathBuf> {
    let ext = geno.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "bed" | "bim" | "fam") || (!geno.is_file() && geno.with_extension("bed").is_file()) {
        let prefix = if matches!(ext, "bed" | "bim" | "fam") { geno.with_extension("") } else { geno.to_path_buf() };
        ["bed", "bim", "fam"]
            .iter()
            .map(|e| {
                let mut p = prefix.clone().into_os_string();
                p.push(format!(".{e}"));
                PathBuf::from(p)
            })
            .collect()
    } else {
        vec![geno.to_path_buf()]
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Builds `genopred` with `backend`'s feature and returns a copy of the binary, or why it could
/// not be built.
fn build(root: &Path, backend: &str) -> std::result::Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--release", "--locked", "-p", "genopred"]);
    if backend != "flex" {
        cmd.args(["--features", backend]);
    }
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`cargo build --features {backend}` failed: {}", error_lines(&stderr)));
    }
    let dir = root.join("target").join("xtask-compare");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let to = dir.join(format!("genopred-{backend}"));
    std::fs::copy(root.join("target").join("release").join("genopred"), &to)
        .map_err(|e| format!("copying the binary: {e}"))?;
    Ok(to)
}

/// The error lines of a cargo or program output, shortened for a report.
fn error_lines(text: &str) -> String {
    let errors: Vec<&str> =
        text.lines().filter(|l| l.contains("error") || l.contains("panicked") || l.contains("Error")).take(6).collect();
    let picked = if errors.is_empty() { text.lines().rev().take(4).collect::<Vec<_>>() } else { errors };
    let joined = picked.join(" | ");
    if joined.len() > 600 { format!("{}…", &joined[..joined.floor_char_boundary(600)]) } else { joined }
}

/// Runs `genopred backends --probe BACKEND` (a few tensor operations on the device) and returns
/// what it printed, or why it failed.
fn probe(bin: &Path, backend: &str) -> std::result::Result<String, String> {
    let out = Command::new(bin)
        .args(["backends", "--probe", backend])
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text.trim().to_string())
    } else {
        Err(format!("does not start here: {}", error_lines(&text)))
    }
}

fn genopred_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "genopred (unknown version)".into())
}

struct Cell<'a> {
    dataset: &'a Dataset,
    trait_name: &'a str,
    model: &'a str,
    backend: &'a str,
    seed: u64,
}

/// The hash of everything that decides a cell's result.
fn cell_key(plan: &Plan, cell: &Cell<'_>, version: &str) -> Result<String> {
    let mut files = Vec::new();
    for f in data_files(&cell.dataset.geno).iter().chain([&cell.dataset.pheno]) {
        files.push(sha256_file(f)?);
    }
    let folds = match &plan.folds_file {
        Some(f) => json!({ "file": sha256_file(f)? }),
        None => json!({ "k": plan.folds }),
    };
    let config = plan.configs.get(cell.model).map(|f| sha256_file(f)).transpose()?;
    let key = json!({
        "data": files,
        "trait": cell.trait_name,
        "model": cell.model,
        "backend": cell.backend,
        "seed": cell.seed,
        "folds": folds,
        "config": config,
        "extra": plan.extra,
        "version": version,
    });
    Ok(format!("{:x}", Sha256::digest(key.to_string().as_bytes())))
}

/// What `cell.json` records for a finished cell.
#[derive(Debug, Serialize, Deserialize)]
struct CellRecord {
    key: String,
    wall_seconds: f64,
    command: Vec<String>,
    git_commit: String,
}

fn run_cell(
    plan: &Plan,
    cell: &Cell<'_>,
    bin: &Path,
    dir: &Path,
    dir_name: &str,
    key: &str,
    rerun: bool,
) -> CellResult {
    let mut result = CellResult {
        dataset: cell.dataset.name.clone(),
        trait_name: cell.trait_name.to_string(),
        model: cell.model.to_string(),
        backend: cell.backend.to_string(),
        seed: cell.seed,
        dir: format!("cells/{dir_name}"),
        key: key.to_string(),
        cached: false,
        wall_seconds: 0.0,
        error: None,
        pearson: Vec::new(),
        mse: Vec::new(),
        ndcg: Vec::new(),
        fold_seconds: Vec::new(),
        epochs: Vec::new(),
        peak_rss_bytes: None,
        inputs: Value::Null,
    };
    let record_path = dir.join("cell.json");
    let cached: Option<CellRecord> = if rerun {
        None
    } else {
        std::fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|r: &CellRecord| r.key == key)
    };
    if rerun
        && dir.exists()
        && let Err(e) = std::fs::remove_dir_all(dir)
    {
        result.error = Some(format!("removing {} for --rerun: {e}", dir.display()));
        return result;
    }
    let record = match cached {
        Some(record) if dir.join("summary.json").is_file() => {
            result.cached = true;
            record
        }
        _ => match execute(plan, cell, bin, dir, key) {
            Ok(record) => record,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        },
    };
    result.wall_seconds = record.wall_seconds;
    if let Err(e) = read_summary(dir, &mut result) {
        result.error = Some(format!("{e:#}"));
    }
    result
}

fn execute(plan: &Plan, cell: &Cell<'_>, bin: &Path, dir: &Path, key: &str) -> std::result::Result<CellRecord, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut args: Vec<String> = vec!["cv".into()];
    let mut push = |k: &str, v: String| {
        args.push(k.into());
        args.push(v);
    };
    push("--geno", cell.dataset.geno.display().to_string());
    push("--pheno", cell.dataset.pheno.display().to_string());
    push("--trait", cell.trait_name.to_string());
    push("--model", cell.model.to_string());
    if cell.model != "gblup" {
        push("--backend", cell.backend.to_string());
    }
    push("--seed", cell.seed.to_string());
    match &plan.folds_file {
        Some(f) => push("--folds-file", f.display().to_string()),
        None => push("--folds", plan.folds.to_string()),
    }
    if let Some(c) = plan.configs.get(cell.model) {
        push("--config", c.display().to_string());
    }
    push("--out", dir.display().to_string());
    args.push("--resume".into());
    args.extend(plan.extra.iter().cloned());
    let log_path = dir.join("log.txt");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("{}: {e}", log_path.display()))?;
    let started = Instant::now();
    let status = Command::new(bin)
        .args(&args)
        .stdout(log)
        .stderr(log_err)
        .status()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let wall_seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        return Err(format!("genopred cv exited with {status}: {} (log: {})", error_lines(&text), log_path.display()));
    }
    let mut command = vec![bin.display().to_string()];
    command.extend(args);
    let record = CellRecord { key: key.to_string(), wall_seconds, command, git_commit: plan.commit.clone() };
    let text = serde_json::to_string_pretty(&record).expect("record serialises");
    report::write_atomic(&dir.join("cell.json"), text.as_bytes()).map_err(|e| format!("{e:#}"))?;
    Ok(record)
}

fn git_commit(near: &Path) -> String {
    let dir = near.parent().unwrap_or(Path::new("."));
    let out = |args: &[&str]| {
        Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match out(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = out(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{commit} (with uncommitted changes)") } else { commit }
        }
        None => "unknown (not a git checkout)".into(),
    }
}

fn read_summary(dir: &Path, result: &mut CellResult) -> Result<()> {
    let path = dir.join("summary.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: Value = serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))?;
    let folds = summary["folds"].as_array().with_context(|| format!("{}: no folds", path.display()))?;
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    for f in folds {
        result.pearson.push(num(&f["pearson"]));
        result.mse.push(num(&f["mse"]));
        result.ndcg.push(num(&f["ndcg"]));
        result.fold_seconds.push(num(&f["seconds"]));
        if let Some(e) = f["fit"]["epochs_run"].as_f64() {
            result.epochs.push(e);
        }
    }
    result.peak_rss_bytes = summary["provenance"]["peak_rss_bytes"].as_u64();
    result.inputs = summary["provenance"]["inputs"].clone();
    Ok(())
}

/// Mean of the finite values (NaN when none).
pub fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() { f64::NAN } else { f.iter().sum::<f64>() / f.len() as f64 }
}

/// Sample standard deviation of the finite values (NaN with fewer than two).
pub fn sd(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.len() < 2 {
        return f64::NAN;
    }
    let m = mean(&f);
    (f.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (f.len() - 1) as f64).sqrt()
}

/// Facts about the machine and the build, for the report.
fn environment(root: &Path, probes: &BTreeMap<String, String>, version: &str, commit: &str) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| std::env::consts::ARCH.to_string(), |(_, v)| v.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let command = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let locked = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle).map(|i| lock[i + needle.len()..].split('"').next().unwrap_or("").to_string())
    };
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory": memory,
        "os": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!("Linux {}", s.trim())).unwrap_or_else(|_| std::env::consts::OS.to_string()),
        "gpus": gpus(&command),
        "vulkan_drivers": vulkan_drivers(),
        "backends": probes,
        "genopred": version,
        "burn": locked("burn"),
        "faer": locked("faer"),
        "rustc": command("rustc", &["--version"]),
        "git_commit": commit,
        "threads": std::env::var("RAYON_NUM_THREADS").ok(),
    })
}

/// GPU adapters this machine shows: NVIDIA's (nvidia-smi), then Vulkan's (vulkaninfo).
fn gpus(command: &dyn Fn(&str, &[&str]) -> Option<String>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(list) =
        command("nvidia-smi", &["--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"])
    {
        found.extend(list.lines().map(|l| format!("NVIDIA {}", l.trim())));
    }
    if let Some(summary) = command("vulkaninfo", &["--summary"]) {
        found.extend(
            summary
                .lines()
                .filter_map(|l| l.trim().strip_prefix("deviceName"))
                .map(|n| format!("Vulkan: {}", n.trim_start_matches([' ', '=']).trim())),
        );
    }
    found
}

/// The Vulkan drivers installed (ICD files), which is what wgpu can find without vulkaninfo.
fn vulkan_drivers() -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let driver = name.split("_icd").next().unwrap_or(&name).to_string();
            let driver =
                if driver == "lvp" { "lvp (Mesa lavapipe, software Vulkan on the CPU)".to_string() } else { driver };
            if !found.contains(&driver) {
                found.push(driver);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_for(dir: &Path) -> Plan {
        let geno = dir.join("g.csv");
        let pheno = dir.join("p.csv");
        std::fs::write(&geno, "id,m1\na,0\n").unwrap();
        std::fs::write(&pheno, "id,y\na,1\n").unwrap();
        Plan {
            suite: None,
            description: "test".into(),
            models: vec!["mlp".into()],
            backends: vec!["flex".into()],
            datasets: vec![Dataset { name: "d".into(), geno, pheno, traits: vec!["y".into()] }],
            folds: 5,
            folds_file: None,
            seeds: vec![1],
            configs: BTreeMap::new(),
            extra: Vec::new(),
            published: Vec::new(),
            commit: String::new(),
        }
    }

    #[test]
    fn cell_key_changes_with_every_input_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        let ds = plan.datasets[0].clone();
        let key = |plan: &Plan, model: &str, backend: &str, seed: u64| {
            cell_key(plan, &Cell { dataset: &ds, trait_name: "y", model, backend, seed }, "genopred 0.1.0").unwrap()
        };
        let base = key(&plan, "mlp", "flex", 1);
        assert_eq!(base, key(&plan, "mlp", "flex", 1));
        assert_ne!(base, key(&plan, "mlp", "flex", 2));
        assert_ne!(base, key(&plan, "mlp", "wgpu", 1));
        assert_ne!(base, key(&plan, "dnngp", "flex", 1));
        std::fs::write(&ds.pheno, "id,y\na,2\n").unwrap();
        assert_ne!(base, key(&plan, "mlp", "flex", 1), "phenotype contents");
        std::fs::write(&ds.pheno, "id,y\na,1\n").unwrap();
        assert_eq!(base, key(&plan, "mlp", "flex", 1));
        plan.folds = 10;
        assert_ne!(base, key(&plan, "mlp", "flex", 1));
        plan.folds = 5;
        let config = dir.path().join("mlp.toml");
        std::fs::write(&config, "[train]\nepochs = 3\n").unwrap();
        plan.configs.insert("mlp".into(), config.clone());
        let with_config = key(&plan, "mlp", "flex", 1);
        assert_ne!(base, with_config);
        std::fs::write(&config, "[train]\nepochs = 4\n").unwrap();
        assert_ne!(with_config, key(&plan, "mlp", "flex", 1), "config contents");
        plan.configs.clear();
        plan.extra = vec!["--min-maf".into(), "0.05".into()];
        assert_ne!(base, key(&plan, "mlp", "flex", 1));
    }

    /// A stand-in for `genopred`: counts its runs and writes what `cv` writes.
    fn fake_genopred(dir: &Path) -> PathBuf {
        let bin = dir.join("fake-genopred");
        let script = r#"#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ]; then out="$2"; fi
  shift
done
echo run >> "$(dirname "$0")/runs"
cat > "$out/summary.json" <<'JSON'
{"folds": [{"pearson": 0.5, "mse": 0.8, "ndcg": 0.7, "seconds": 1.5, "fit": {"epochs_run": 12}},
           {"pearson": 0.3, "mse": 0.9, "ndcg": 0.6, "seconds": 2.5, "fit": {"epochs_run": 20}}],
 "provenance": {"peak_rss_bytes": 1048576, "inputs": {"pheno": {"path": "p.csv", "sha256": "abc"}}}}
JSON
printf 'id,fold,observed,predicted,repeat\na,1,1.0,0.9,1\nb,2,2.0,1.5,1\n' > "$out/predictions.csv"
"#;
        std::fs::write(&bin, script).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn finished_cells_are_cached_by_key_and_rerun_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan_for(dir.path());
        plan.commit = "0123456789ab (with uncommitted changes)".into();
        let bin = fake_genopred(dir.path());
        let ds = plan.datasets[0].clone();
        let cell = Cell { dataset: &ds, trait_name: "y", model: "mlp", backend: "flex", seed: 1 };
        let cell_dir = dir.path().join("cells").join("c");
        let runs = || std::fs::read_to_string(dir.path().join("runs")).map_or(0, |s| s.lines().count());

        let first = run_cell(&plan, &cell, &bin, &cell_dir, "c", "key1", false);
        assert_eq!(first.error, None);
        assert!(!first.cached);
        assert_eq!((first.pearson.clone(), first.epochs.clone()), (vec![0.5, 0.3], vec![12.0, 20.0]));
        assert_eq!(first.peak_rss_bytes, Some(1_048_576));
        assert_eq!(runs(), 1);
        // The commit recorded is the one the binaries were built from, not the tree's state now.
        let record: CellRecord =
            serde_json::from_str(&std::fs::read_to_string(cell_dir.join("cell.json")).unwrap()).unwrap();
        assert_eq!(record.git_commit, plan.commit);
        let again = run_cell(&plan, &cell, &bin, &cell_dir, "c", "key1", false);
        assert!(again.cached, "same key: from the cache");
        assert_eq!(again.pearson, first.pearson);
        assert_eq!(runs(), 1);
        let changed = run_cell(&plan, &cell, &bin, &cell_dir, "c", "key2", false);
        assert!(!changed.cached, "another key runs again");
        assert_eq!(runs(), 2);
        let forced = run_cell(&plan, &cell, &bin, &cell_dir, "c", "key2", true);
        assert!(!forced.cached);
        assert_eq!(runs(), 3);

        // A failing run is reported with its log, not cached.
        let failing = dir.path().join("failing");
        std::fs::write(&failing, "#!/bin/sh\necho 'error: something broke' >&2\nexit 2\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bad = run_cell(&plan, &cell, &failing, &dir.path().join("cells").join("bad"), "bad", "k", false);
        let e = bad.error.expect("an error");
        assert!(e.contains("something broke") && e.contains("log.txt"), "{e}");
        assert!(!dir.path().join("cells").join("bad").join("cell.json").exists());
    }

    #[test]
    fn plink_arguments_stand_for_three_files() {
        let files = data_files(Path::new("/data/x.bed"));
        assert_eq!(files, ["/data/x.bed", "/data/x.bim", "/data/x.fam"].map(PathBuf::from));
        assert_eq!(data_files(Path::new("/data/x.vcf.gz")), vec![PathBuf::from("/data/x.vcf.gz")]);
        assert_eq!(dataset_name(Path::new("/data/my set.vcf.gz")), "my_set");
    }

    #[test]
    fn statistics_skip_nan() {
        assert_eq!(mean(&[1.0, f64::NAN, 3.0]), 2.0);
        assert!((sd(&[1.0, 3.0]) - 2f64.sqrt()).abs() < 1e-12);
        assert!(sd(&[1.0]).is_nan() && mean(&[]).is_nan());
    }
}
