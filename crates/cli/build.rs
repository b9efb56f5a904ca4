//! Two things the binary learns at build time:
//!
//! - Its build identity (`GENOPRED_BUILD`): the SHA-256 of the workspace sources compiled into
//!   it (every `src/` of `crates/`, the crates' `Cargo.toml`, `Cargo.lock`) and the backend
//!   features it was built with. `genopred --version` prints it and `run.json` records it, so
//!   `--resume` never mixes folds of two builds and `cargo xtask compare` never reuses a cell
//!   of another build. Tests, docs and comments outside `src/` do not change it; a rebuild of
//!   the same sources (a fresh clone, another profile) keeps it.
//! - With the `tch` feature, libtorch's library folder as the run path, so `genopred` finds
//!   libtorch without `LD_LIBRARY_PATH`. torch-sys's build script reports that folder to
//!   packages that depend on it directly (`links = "tch"`), as `DEP_TCH_LIBTORCH_LIB`; without
//!   `tch` it is absent.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let source = manifest.parent().and_then(Path::parent).map_or_else(|| "unknown".to_string(), source_hash);
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase().replace('_', "-")))
        .collect();
    features.sort();
    println!("cargo:rustc-env=GENOPRED_BUILD=source {source}, features {}", features.join("+"));
}

/// SHA-256 (first 12 hex digits) of the sources under the workspace `root`, in path order:
/// `"unknown"` outside a workspace checkout (no `crates/`).
fn source_hash(root: &Path) -> String {
    let crates = root.join("crates");
    if !crates.is_dir() {
        return "unknown".into();
    }
    println!("cargo:rerun-if-changed={}", crates.display());
    let mut files = Vec::new();
    for extra in ["Cargo.lock", "Cargo.toml"] {
        let p = root.join(extra);
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_file() {
            files.push(p);
        }
    }
    collect(&crates, &mut files);
    let mut rel: Vec<(String, PathBuf)> =
        files.into_iter().map(|p| (p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned(), p)).collect();
    rel.sort();
    let mut hasher = Sha256::new();
    for (name, path) in rel {
        let bytes = std::fs::read(&path).unwrap_or_default();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Each crate's `Cargo.toml`, `build.rs` and everything under its `src/`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if p.join("Cargo.toml").is_file() {
                // A crate: its manifest, build script and sources.
                for f in ["Cargo.toml", "build.rs"] {
                    if p.join(f).is_file() {
                        out.push(p.join(f));
                    }
                }
                walk(&p.join("src"), out);
            } else if !name.starts_with('.') {
                collect(&p, out);
            }
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
