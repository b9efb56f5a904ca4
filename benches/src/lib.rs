//! Data for the criterion benchmarks: simulated PLINK file sets made with `plink1.9
//! --simulate-qt` (a Debian package), cached under `target/bench-data/`.

pub mod conv;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A bundled fixture.
pub fn fixture(rel: &str) -> PathBuf {
    workspace_root().join("fixtures").join(rel)
}

/// Returns the prefix of a simulated `samples × markers` PLINK file set (20 causal markers),
/// creating it with `plink1.9 --simulate-qt` when it is not there yet.
pub fn simulated_plink(samples: usize, markers: usize) -> Result<PathBuf, String> {
    let dir = workspace_root().join("target").join("bench-data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let prefix = dir.join(format!("sim{samples}x{markers}"));
    if prefix.with_extension("bed").is_file() {
        return Ok(prefix);
    }
    let causal = 20.min(markers);
    let sim = dir.join(format!("sim{markers}.txt"));
    std::fs::write(&sim, format!("{} null 0.05 0.95 0 0\n{causal} causal 0.05 0.95 0.05 0\n", markers - causal))
        .map_err(|e| format!("writing {}: {e}", sim.display()))?;
    run(Command::new("plink1.9")
        .arg("--simulate-qt")
        .arg(&sim)
        .args(["--simulate-n", &samples.to_string(), "--seed", "1", "--make-bed", "--out"])
        .arg(&prefix))?;
    Ok(prefix)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e} (install the Debian package plink1.9)"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// Size in bytes of a PLINK file set's `.bed`.
pub fn bed_bytes(prefix: &Path) -> u64 {
    std::fs::metadata(prefix.with_extension("bed")).map(|m| m.len()).unwrap_or(0)
}

/// The burn backends compiled into this build of the benchmarks (`flex` always; `wgpu`, `cuda`
/// and `tch` with the cargo features of the same names), with their devices.
pub fn backends() -> Vec<(&'static str, burn::prelude::Device)> {
    #[allow(unused_mut)]
    let mut list = vec![("flex", burn::prelude::Device::flex())];
    #[cfg(feature = "wgpu")]
    list.push(("wgpu", burn::prelude::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)));
    #[cfg(feature = "cuda")]
    list.push(("cuda", burn::prelude::Device::cuda(0usize)));
    // burn 0.22 marks burn-tch deprecated; it stays a backend here while burn ships it.
    #[cfg(feature = "tch")]
    #[allow(deprecated)]
    list.push(("tch", burn::prelude::Device::libtorch()));
    list
}
