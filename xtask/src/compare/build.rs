//! Building `genopred` once per backend, asking it which models it has, and probing each
//! backend on this machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use genopred_core::records::{Compute, ModelListing};

use super::args::check_models;
use super::plan::{Plan, Skipped};

/// The binaries a grid runs with, and what building them found out.
#[derive(Debug)]
pub struct Binaries {
    /// The models the binaries have (`genopred models --json`), in catalogue order.
    pub listing: ModelListing,
    /// The binary that runs models computing on the CPU whatever the backend (any build does).
    pub cpu: PathBuf,
    /// One binary per backend that built and started here.
    pub device: BTreeMap<String, PathBuf>,
    /// What each working backend's probe printed.
    pub probes: BTreeMap<String, String>,
    /// Backends that did not build or start, and why.
    pub skipped: Vec<Skipped>,
}

impl Binaries {
    /// Where `model` computes, as the listing says.
    pub fn compute(&self, model: &str) -> Compute {
        self.listing.models.iter().find(|m| m.name == model).map_or(Compute::Device, |m| m.compute)
    }

    /// Whether `model` ships a search space (`genopred cv --tune default`).
    pub fn has_space(&self, model: &str) -> bool {
        self.listing.models.iter().any(|m| m.name == model && m.tuning_space)
    }

    /// The `(backend label, binary)` pairs `model` runs with: `cpu` and the CPU binary for a model
    /// that computes on the CPU, else every backend that built and started.
    pub fn for_model(&self, model: &str) -> Vec<(String, PathBuf)> {
        match self.compute(model) {
            Compute::Cpu => vec![("cpu".to_string(), self.cpu.clone())],
            Compute::Device => self.device.iter().map(|(b, p)| (b.clone(), p.clone())).collect(),
        }
    }
}

/// Builds `genopred` for each backend of the plan, checks the plan's models against the first
/// binary's listing, and probes each backend. When every model computes on the CPU one binary
/// is enough and no backend is probed.
pub fn binaries(root: &Path, plan: &Plan, profile: &str) -> Result<Binaries> {
    binaries_with(plan, &mut |backend| build(root, backend, profile))
}

/// Uses the binary at `bin` for every backend of the plan (one it was not built with fails its
/// probe and is skipped with the reason).
pub fn given(bin: &Path, plan: &Plan) -> Result<Binaries> {
    // Absolute: Slurm tasks start in another folder.
    let bin = bin.canonicalize().with_context(|| format!("--genopred {}", bin.display()))?;
    binaries_with(plan, &mut |_| Ok(bin.clone()))
}

fn binaries_with(plan: &Plan, build: &mut dyn FnMut(&str) -> Result<PathBuf, String>) -> Result<Binaries> {
    let mut listing: Option<ModelListing> = None;
    let mut cpu = None;
    let mut device = BTreeMap::new();
    let mut probes = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut tried = Vec::new();
    for backend in &plan.backends {
        println!("genopred with the {backend} backend ...");
        tried.push(backend.as_str());
        let bin = match build(backend) {
            Ok(bin) => bin,
            Err(reason) => {
                println!("  {backend}: skipped: {reason}");
                skipped.push(Skipped { backend: backend.clone(), reason });
                continue;
            }
        };
        let listing = match &mut listing {
            Some(listing) => listing,
            None => {
                let found = model_listing(&bin)?;
                check_models(&plan.all_models(), &found)?;
                listing.insert(found)
            }
        };
        cpu.get_or_insert_with(|| bin.clone());
        let on_device = plan
            .all_models()
            .iter()
            .any(|m| listing.models.iter().any(|i| &i.name == m && i.compute == Compute::Device));
        if !on_device {
            // No model uses a backend: the backends are neither needed nor reported.
            skipped.clear();
            break;
        }
        match probe(&bin, backend) {
            Ok(info) => {
                println!("  {backend}: {}", info.lines().next().unwrap_or("ok"));
                probes.insert(backend.clone(), info);
                device.insert(backend.clone(), bin);
            }
            Err(reason) => {
                println!("  {backend}: skipped: {reason}");
                skipped.push(Skipped { backend: backend.clone(), reason });
            }
        }
    }
    let cpu = match cpu {
        Some(bin) => bin,
        // Every backend failed to build: CPU models may still run with the default build.
        None if !tried.contains(&"flex") => {
            build("flex").map_err(|e| anyhow::anyhow!("building genopred with the default backend: {e}"))?
        }
        None => bail!("genopred does not build: {}", skipped.first().map_or("", |s| s.reason.as_str())),
    };
    let listing = match listing {
        Some(listing) => listing,
        None => {
            let found = model_listing(&cpu)?;
            check_models(&plan.all_models(), &found)?;
            found
        }
    };
    Ok(Binaries { listing, cpu, device, probes, skipped })
}

/// Builds `genopred` with `backend`'s feature and returns a copy of the binary, or why it could
/// not be built.
fn build(root: &Path, backend: &str, profile: &str) -> std::result::Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["build", "--profile", profile, "--locked", "-p", "genopred"]);
    // `cargo run -p xtask` describes the xtask package to it in these variables; passed on,
    // they would reach build scripts that watch them (ring's watches CARGO_MANIFEST_DIR) and
    // rebuild half the dependency tree on every call.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    if backend != "flex" {
        cmd.args(["--features", backend]);
    }
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`cargo build --features {backend}` failed: {}", error_lines(&stderr)));
    }
    let target = target_dir(root);
    let dir = target.join("xtask-compare");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let to = dir.join(format!("genopred-{backend}"));
    // cargo's folder for a profile: `dev` builds into `debug/`.
    let folder = if profile == "dev" { "debug" } else { profile };
    // Copied beside, then renamed over the old copy: a grid still running the old binary (a
    // Slurm array, another compare) keeps it, where writing into it would fail ("text file busy").
    let part = dir.join(format!(".genopred-{backend}.{}", std::process::id()));
    std::fs::copy(target.join(folder).join("genopred"), &part).map_err(|e| format!("copying the binary: {e}"))?;
    std::fs::rename(&part, &to).map_err(|e| format!("replacing {}: {e}", to.display()))?;
    Ok(to)
}

/// Cargo's target folder: `CARGO_TARGET_DIR` when set (relative to the workspace root, as cargo
/// reads it), else `target/` in the workspace.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The error lines of a cargo or program output, shortened for a report.
pub fn error_lines(text: &str) -> String {
    let errors: Vec<&str> =
        text.lines().filter(|l| l.contains("error") || l.contains("panicked") || l.contains("Error")).take(6).collect();
    let picked = if errors.is_empty() { text.lines().rev().take(4).collect::<Vec<_>>() } else { errors };
    let joined = picked.join(" | ");
    if joined.len() > 600 { format!("{}…", &joined[..joined.floor_char_boundary(600)]) } else { joined }
}

/// Runs `genopred models --json` and parses the listing.
fn model_listing(bin: &Path) -> Result<ModelListing> {
    let out = super::retry_busy(|| Command::new(bin).args(["models", "--json"]).output())
        .with_context(|| format!("running {} models --json", bin.display()))?;
    if !out.status.success() {
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        bail!("{} models --json exited with {}: {}", bin.display(), out.status, error_lines(&text));
    }
    ModelListing::parse(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| anyhow::anyhow!("{} models --json: {e}", bin.display()))
}

/// Runs `genopred backends --probe BACKEND` (a few tensor operations on the device) and returns
/// what it printed, or why it failed.
fn probe(bin: &Path, backend: &str) -> std::result::Result<String, String> {
    let out = super::retry_busy(|| Command::new(bin).args(["backends", "--probe", backend]).output())
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text.trim().to_string())
    } else {
        Err(format!("does not start here: {}", error_lines(&text)))
    }
}

/// `genopred --version`.
pub fn genopred_version(bin: &Path) -> String {
    super::retry_busy(|| Command::new(bin).arg("--version").output())
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "genopred (unknown version)".into())
}

#[cfg(test)]
pub(super) mod tests {
    use genopred_core::records::ModelInfo;

    use super::*;
    use crate::compare::plan::Dataset;

    /// The listing the fake binaries print: gblup on the CPU, dnngp and mlp on a device.
    pub fn listing() -> ModelListing {
        let info = |name: &str, compute| ModelInfo {
            name: name.into(),
            about: format!("{name} model"),
            compute,
            tuning_space: false,
        };
        ModelListing {
            format: ModelListing::FORMAT,
            models: vec![info("gblup", Compute::Cpu), info("dnngp", Compute::Device), info("mlp", Compute::Device)],
            default_backend: "flex".into(),
        }
    }

    /// Writes an executable shell script.
    pub fn script(path: &Path, text: &str) -> PathBuf {
        std::fs::write(path, text).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_path_buf()
    }

    /// A stand-in for a `genopred` build: prints [`listing`] for `models --json`, and starts
    /// every backend but wgpu.
    fn fake_build(dir: &Path) -> PathBuf {
        std::fs::write(dir.join("listing.json"), serde_json::to_string_pretty(&listing()).unwrap()).unwrap();
        script(
            &dir.join("fake-build"),
            r#"#!/bin/sh
case "$1 $2" in
  "models --json") cat "$(dirname "$0")/listing.json" ;;
  "backends --probe") if [ "$3" = wgpu ]; then echo "error: no adapter" >&2; exit 1; fi; echo "$3: ok" ;;
  *) exit 2 ;;
esac
"#,
        )
    }

    /// A 5-fold, one-seed plan of `models` × `backends` with no dataset (tests fill one in).
    pub(crate) fn plan(models: &[&str], backends: &[&str]) -> Plan {
        Plan {
            suite: None,
            description: "test".into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            backends: backends.iter().map(|b| b.to_string()).collect(),
            datasets: Vec::<Dataset>::new(),
            folds: 5,
            folds_file: None,
            seeds: vec![1],
            configs: BTreeMap::new(),
            extra: Vec::new(),
            published: Vec::new(),
            reuse_builds: Vec::new(),
            tuning: None,
            commit: String::new(),
        }
    }

    #[test]
    fn models_come_from_the_binary_and_cpu_models_need_no_backend() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_build(dir.path());
        let mut builds = Vec::new();
        let mut build = |b: &str| {
            builds.push(b.to_string());
            if b == "cuda" { Err("no CUDA toolkit".to_string()) } else { Ok(bin.clone()) }
        };

        let found = binaries_with(&plan(&["gblup", "dnngp"], &["cuda", "flex", "wgpu"]), &mut build).unwrap();
        assert_eq!(found.device.keys().collect::<Vec<_>>(), ["flex"]);
        let skipped: Vec<(&str, &str)> =
            found.skipped.iter().map(|s| (s.backend.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped[0], ("cuda", "no CUDA toolkit"));
        assert!(skipped[1].0 == "wgpu" && skipped[1].1.contains("no adapter"), "{skipped:?}");
        assert_eq!(found.probes["flex"], "flex: ok");
        assert_eq!(found.for_model("gblup"), [("cpu".to_string(), bin.clone())]);
        assert_eq!(found.for_model("dnngp"), [("flex".to_string(), bin.clone())]);
        assert_eq!(found.listing, listing());

        // Only CPU models: one build, no probe, no backend reported as skipped.
        builds.clear();
        let mut build = |b: &str| {
            builds.push(b.to_string());
            if b == "cuda" { Err("no CUDA toolkit".to_string()) } else { Ok(bin.clone()) }
        };
        let found = binaries_with(&plan(&["gblup"], &["cuda", "wgpu", "flex"]), &mut build).unwrap();
        assert_eq!(builds, ["cuda", "wgpu"]);
        assert!(found.device.is_empty() && found.probes.is_empty() && found.skipped.is_empty());
        assert_eq!(found.cpu, bin);

        // A model the binary does not have is refused with the ones it has.
        let e = binaries_with(&plan(&["gblup", "bayesb"], &["flex"]), &mut |_| Ok(bin.clone())).unwrap_err();
        assert_eq!(e.to_string(), "unknown model 'bayesb'; known: gblup, dnngp, mlp");
    }
}
