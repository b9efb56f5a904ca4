//! Facts about the machine and the build, for the report: CPU, memory, GPUs, versions and the
//! git commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// The machine and build a comparison ran on (`report.json`'s `environment`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    /// CPU model name (the architecture when unknown).
    pub cpu: String,
    /// Logical cores available.
    pub cores: usize,
    /// Total memory, e.g. "62.7 GiB".
    pub memory: Option<String>,
    /// Operating system and kernel.
    pub os: String,
    /// GPU adapters found by nvidia-smi and vulkaninfo.
    pub gpus: Vec<String>,
    /// Vulkan drivers installed (ICD files).
    pub vulkan_drivers: Vec<String>,
    /// What each working backend's probe printed.
    pub backends: BTreeMap<String, String>,
    /// `genopred --version`.
    pub genopred: String,
    /// burn's version in Cargo.lock.
    pub burn: Option<String>,
    /// faer's version in Cargo.lock.
    pub faer: Option<String>,
    /// `rustc --version`.
    pub rustc: Option<String>,
    /// The commit the binaries were built from.
    pub git_commit: String,
    /// `RAYON_NUM_THREADS`, when set.
    pub threads: Option<String>,
}

/// Facts about this machine and the build: `probes` are the backends' probe outputs, `version`
/// is `genopred --version`, `commit` the git commit the binaries were built from.
pub fn environment(root: &Path, probes: &BTreeMap<String, String>, version: &str, commit: &str) -> Environment {
    let cpu = genopred_core::records::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string()))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let locked = |name: &str| {
        let needle = format!("name = \"{name}\"\nversion = \"");
        lock.find(&needle).map(|i| lock[i + needle.len()..].split('"').next().unwrap_or("").to_string())
    };
    Environment {
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory,
        os: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string()),
        gpus: gpus(),
        vulkan_drivers: vulkan_drivers(),
        backends: probes.clone(),
        genopred: version.to_string(),
        burn: locked("burn"),
        faer: locked("faer"),
        rustc: command("rustc", &["--version"]),
        git_commit: commit.to_string(),
        threads: std::env::var("RAYON_NUM_THREADS").ok(),
    }
}

/// What `cmd args` printed, when it ran, succeeded and printed something.
fn command(cmd: &str, args: &[&str]) -> Option<String> {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// GPU adapters this machine shows: NVIDIA's (nvidia-smi), then Vulkan's (vulkaninfo).
fn gpus() -> Vec<String> {
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

/// The git commit of the checkout holding `root` (and whether tracked files had uncommitted
/// changes then).
pub fn git_commit(root: &Path) -> String {
    let out = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
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
