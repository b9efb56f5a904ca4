//! The `compare` command's arguments, the bundled suites, and the [`Plan`] they resolve to.
//!
//! Everything checked here needs no `genopred` binary (backend names, files that must exist);
//! the model names are checked against the binary's own listing once it is built
//! ([`check_models`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use genopred_core::records::ModelListing;
use genopred_core::tuning::TuneMetric;
use serde::Deserialize;

use super::plan::{Dataset, Plan, Published, Tuning, data_files, sanitize};

/// The `compare` command's arguments.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Models, comma-separated (`genopred models` lists them). A model that computes on the CPU
    /// whatever the backend (GBLUP) runs once per seed, on the CPU, whatever `--backends` says.
    /// Default: the suite's, else gblup,dnngp,deepgs,dlgwas.
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
    /// bundled datasets, beside published numbers), `quick` (capped epochs, minutes) or
    /// `environments` (wheat599 as a trial: schemes and environment models as grid axes).
    /// Datasets, traits, folds and configs come from the suite; `--models`, `--backends` and
    /// `--seeds`, when given, override the suite's.
    #[arg(long)]
    suite: Option<String>,
    /// Only these datasets of the suite, comma-separated (e.g. `--suite paper --datasets
    /// wheat599,maize300`).
    #[arg(long, value_delimiter = ',', requires = "suite")]
    datasets: Vec<String>,
    /// Output folder.
    #[arg(long, default_value = "results/compare")]
    pub out: PathBuf,
    /// Run every cell again, even those with a cached result.
    #[arg(long)]
    pub rerun: bool,
    /// Fold jobs at once on this machine (local executor): the grid runs as cell × fold jobs,
    /// the longest first where earlier runs tell their cost. 0: one per core. With 1 (the
    /// default) each fold gets every core.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Threads per fold job (default: the cores divided by --jobs; with `--executor slurm`,
    /// --slurm-cpus). Results repeat exactly at the same threads per job, whatever the executor.
    #[arg(long)]
    pub threads_per_job: Option<usize>,
    /// Where fold jobs run: `local` (this machine, --jobs at once) or `slurm` (one job array,
    /// a task per cell × fold; then the folds are merged here and the same report is written).
    #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
    pub executor: String,
    #[command(flatten)]
    pub slurm: super::slurm::SlurmArgs,
    /// Cargo profile the `genopred` binaries are built with (`release`, or `dev` to reuse the
    /// test build: its dependencies are optimised, so it runs at nearly release speed).
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Run this `genopred` binary instead of building one (the test build's
    /// `target/debug/genopred`, say, or one installed with pip). It serves each backend of
    /// `--backends` it was built with; the others are skipped with the reason.
    #[arg(long, conflicts_with = "profile")]
    pub genopred: Option<PathBuf>,
    /// Also run each model tuned (`genopred cv --tune`: a nested search on each outer fold's
    /// training lines), as a row `MODEL (tuned)` beside the untuned one, with the paired
    /// difference between them. Models with a shipped space are tuned with it; `--tune-dir`
    /// adds or replaces spaces.
    #[arg(long)]
    pub tune: bool,
    /// A folder of search spaces, `MODEL.toml`, for `--tune` (models without one there use their
    /// shipped space, or are not tuned).
    #[arg(long, requires = "tune")]
    tune_dir: Option<PathBuf>,
    /// Trials per search (`--tune`).
    #[arg(long, default_value_t = 12, requires = "tune")]
    trials: usize,
    /// Inner folds per trial (`--tune`).
    #[arg(long, default_value_t = 3, requires = "tune")]
    inner_folds: usize,
    /// The inner score (`--tune`): pearson, mse or ndcg.
    #[arg(long, default_value = "pearson", requires = "tune")]
    tune_metric: TuneMetric,
    /// Report the finished cells of this other genopred build (its `genopred --version` line,
    /// as the cells' report names it) instead of rerunning them (repeatable; added to the
    /// suite's `reuse_builds`). Without it a cell of another build is never reused.
    #[arg(long, value_name = "VERSION")]
    pub reuse_build: Vec<String>,
    /// Arguments passed on to every `genopred cv` run (after `--`), e.g. `-- --min-maf 0.05`.
    #[arg(last = true)]
    extra: Vec<String>,
}

/// The models of a comparison when neither `--models` nor a suite names them (a default grid,
/// not a catalogue: the names are checked against `genopred models --json`).
const DEFAULT_MODELS: &[&str] = &["gblup", "dnngp", "deepgs", "dlgwas"];

/// The burn backends `genopred` has cargo features for.
const BACKENDS: &[&str] = &["flex", "wgpu", "cuda", "tch"];

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
    /// Builds whose committed cells are reported instead of rerun (`Plan::reuse_builds`).
    #[serde(default)]
    reuse_builds: Vec<String>,
}

/// Resolves the suite and arguments into the grid, and checks what can be checked before
/// building: backend names, and that every data and config file exists.
pub fn plan(args: &CompareArgs, root: &Path) -> Result<Plan> {
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
                .map(|d| Dataset {
                    geno: root.join(&d.geno),
                    pheno: root.join(&d.pheno),
                    folds_file: d.folds_file.as_ref().map(|f| root.join(f)),
                    configs: d.configs.iter().map(|(m, p)| (m.clone(), suite_dir.join(p))).collect(),
                    // `--models` overrides every dataset's own list.
                    models: if args.models.is_empty() { d.models } else { None },
                    ..d
                })
                .collect(),
            folds: suite.folds,
            folds_file: None,
            seeds: given(&args.seeds).unwrap_or(suite.seeds),
            configs: suite.configs.into_iter().map(|(m, p)| (m, suite_dir.join(p))).collect(),
            extra: args.extra.clone(),
            published: suite.published,
            reuse_builds: suite.reuse_builds.into_iter().chain(args.reuse_build.iter().cloned()).collect(),
            tuning: None,
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
            datasets: vec![Dataset {
                name,
                geno,
                pheno,
                traits,
                folds_file: None,
                models: None,
                cv_args: Vec::new(),
                configs: if bundled { dart_configs(root) } else { BTreeMap::new() },
                ..Dataset::default()
            }],
            folds: args.folds,
            folds_file: args.folds_file.as_deref().map(abs),
            seeds: given(&args.seeds).unwrap_or_else(|| vec![1]),
            configs: BTreeMap::new(),
            extra: args.extra.clone(),
            published: Vec::new(),
            reuse_builds: args.reuse_build.clone(),
            tuning: None,
            commit: String::new(),
        }
    };
    if !args.datasets.is_empty() {
        let known: Vec<String> = plan.datasets.iter().map(|d| d.name.clone()).collect();
        if let Some(bad) = args.datasets.iter().find(|d| !known.contains(d)) {
            bail!("--datasets: the suite has no dataset '{bad}'; it has {}", known.join(", "));
        }
        plan.datasets.retain(|d| args.datasets.contains(&d.name));
    }
    if let Some(dir) = &args.config_dir {
        let dir = abs(dir);
        for model in &plan.all_models() {
            let file = dir.join(format!("{model}.toml"));
            if file.is_file() {
                // The user's file wins over the suite's, and over a dataset's own.
                for ds in &mut plan.datasets {
                    ds.configs.remove(model);
                }
                plan.configs.insert(model.clone(), file);
            }
        }
    }
    if args.tune {
        let dir = args.tune_dir.as_deref().map(abs);
        if let Some(d) = &dir
            && !d.is_dir()
        {
            bail!("--tune-dir {} is not a folder", d.display());
        }
        let spaces = plan
            .all_models()
            .into_iter()
            .filter_map(|m| dir.as_ref().map(|d| d.join(format!("{m}.toml"))).filter(|f| f.is_file()).map(|f| (m, f)))
            .collect();
        if args.trials == 0 || args.inner_folds < 2 {
            bail!("--trials must be at least 1 and --inner-folds at least 2");
        }
        plan.tuning =
            Some(Tuning { spaces, trials: args.trials, inner_folds: args.inner_folds, metric: args.tune_metric });
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
        for f in data_files(&ds.geno).iter().chain([&ds.pheno]).chain(&ds.folds_file) {
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
    for ds in &plan.datasets {
        for (model, file) in &ds.configs {
            if !file.is_file() {
                bail!("dataset {}: config for {model}: {} does not exist", ds.name, file.display());
            }
        }
    }
    Ok(plan)
}

/// Refuses a model the binary does not list, naming the ones it does.
pub fn check_models(models: &[String], listing: &ModelListing) -> Result<()> {
    for m in models {
        if !listing.models.iter().any(|info| &info.name == m) {
            let known: Vec<&str> = listing.models.iter().map(|info| info.name.as_str()).collect();
            bail!("unknown model '{m}'; known: {}", known.join(", "));
        }
    }
    Ok(())
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

/// The settings the bundled wheat599 gets by default: its markers are DArT presence/absence
/// calls, coded 0/2 in the fixture, which DeepGS's original was fed as 0/1
/// (`xtask/suites/dart/`).
fn dart_configs(root: &Path) -> BTreeMap<String, PathBuf> {
    let dart = root.join("xtask").join("suites").join("dart");
    ["deepgs", "ensemble"].into_iter().map(|m| (m.to_string(), dart.join(format!("{m}.toml")))).collect()
}

fn dataset_name(geno: &Path) -> String {
    let name = geno.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let stem = name.trim_end_matches(".gz").trim_end_matches(".vcf");
    sanitize(Path::new(stem).file_stem().and_then(|s| s.to_str()).unwrap_or(stem))
}

#[cfg(test)]
mod tests {
    use genopred_core::records::{Compute, ModelInfo};

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn args(line: &[&str]) -> CompareArgs {
        <Cli as clap::Parser>::parse_from(std::iter::once("compare").chain(line.iter().copied())).args
    }

    #[test]
    fn the_bundled_suites_resolve_with_their_own_folds_models_and_arguments() {
        let root = crate::workspace_root();
        for suite in bundled_suites(&root) {
            plan(&args(&["--suite", &suite]), &root).unwrap_or_else(|e| panic!("suite {suite}: {e:#}"));
        }
        let paper = plan(&args(&["--suite", "paper"]), &root).unwrap();
        let ds = |name: &str| paper.datasets.iter().find(|d| d.name == name).unwrap_or_else(|| panic!("{name}"));
        let wheat2000 = ds("deepgs_wheat2000");
        assert!(wheat2000.folds_file.as_ref().is_some_and(|f| f.is_file()));
        assert_eq!(paper.models_for(wheat2000), ["gblup", "deepgs", "ensemble"]);
        assert_eq!(paper.folds_file_for(wheat2000), wheat2000.folds_file.as_deref());
        assert_eq!(ds("soynam").cv_args, ["--max-marker-missing", "0.95"]);
        // DeepGS gets the 0/1 its paper fed where the markers were DArT calls, nowhere else.
        let dart = root.join("xtask/suites/dart/deepgs.toml");
        assert_eq!(paper.config_for(wheat2000, "deepgs"), Some(dart.as_path()));
        assert_eq!(paper.config_for(ds("maize300"), "deepgs"), None);
        let bundled = plan(&args(&[]), &root).unwrap();
        assert_eq!(bundled.config_for(&bundled.datasets[0], "deepgs"), Some(dart.as_path()));
        let mine = std::env::temp_dir().join(format!("genopred-config-dir-{}", std::process::id()));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("deepgs.toml"), "").unwrap();
        let user = plan(&args(&["--config-dir", mine.to_str().unwrap()]), &root).unwrap();
        assert_eq!(user.config_for(&user.datasets[0], "deepgs"), Some(mine.join("deepgs.toml").as_path()));
        std::fs::remove_dir_all(&mine).unwrap();
        assert_eq!(ds("wheat599").traits.len(), 4);
        assert_eq!(paper.models_for(ds("maize300")), paper.models.as_slice());
        // --models overrides every dataset's own list.
        let only = plan(&args(&["--suite", "paper", "--models", "gblup"]), &root).unwrap();
        assert!(only.datasets.iter().all(|d| only.models_for(d) == ["gblup"]));
        assert_eq!(only.all_models(), ["gblup"]);
        assert!(paper.all_models().contains(&"dlgwas".to_string()));
        let two = plan(&args(&["--suite", "paper", "--datasets", "maize300,wheat599"]), &root).unwrap();
        assert_eq!(two.datasets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["wheat599", "maize300"]);
        let e = plan(&args(&["--suite", "paper", "--datasets", "rice"]), &root).unwrap_err().to_string();
        assert!(e.contains("no dataset 'rice'") && e.contains("soynam"), "{e}");
    }

    #[test]
    fn dataset_names_come_from_the_genotype_file() {
        assert_eq!(dataset_name(Path::new("/data/my set.vcf.gz")), "my_set");
        assert_eq!(dataset_name(Path::new("/data/wheat.bed")), "wheat");
    }

    #[test]
    fn models_are_checked_against_the_listing() {
        let info =
            |name: &str, compute| ModelInfo { name: name.into(), about: String::new(), compute, tuning_space: false };
        let listing = ModelListing {
            format: ModelListing::FORMAT,
            models: vec![info("gblup", Compute::Cpu), info("dnngp", Compute::Device)],
            default_backend: "flex".into(),
        };
        check_models(&["dnngp".into(), "gblup".into()], &listing).unwrap();
        let e = check_models(&["gblup".into(), "bayesb".into()], &listing).unwrap_err().to_string();
        assert_eq!(e, "unknown model 'bayesb'; known: gblup, dnngp");
    }
}
