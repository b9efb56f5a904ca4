//! `cargo xtask tidy`: checks the Architecture Invariants of ARCHITECTURE.md that a tool can
//! check, so the document cannot drift from the code (as rust-analyzer's `tidy.rs` does).
//!
//! - genopred-data, genopred-stats, genopred-eval and the genopred-core that re-exports them know
//!   nothing of burn (neither their manifests nor their sources);
//! - they are layered: data names neither stats nor eval, stats does not name eval, none of them
//!   names genopred-core, and genopred-core holds no code of its own (only re-exports);
//! - every seed is derived by purpose through `genopred_core::cv::derive_seed` (no seed mixed
//!   with an inline constant, no generator seeded directly outside the allowed places);
//! - a model crate is named, outside its own folder, only where the catalogue needs it: the
//!   workspace manifest, the catalogue crate's manifest and its catalogue line (tests excepted).
//!
//! Each finding names the file and line. Also run by `cargo xtask ci` and `.ci/run`.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Files (relative to the workspace root) allowed to name a model crate outside its folder.
const CATALOGUE_FILES: &[&str] = &["Cargo.toml", "crates/zoo/Cargo.toml", "crates/zoo/src/catalogue.rs"];

/// Classical models may be named in more places: their `Classical` implementation is in
/// `crates/zoo/src/classical.rs`, and the encoding/GBLUP benches time GBLUP's fit directly. The
/// ensemble's entry (which builds its members from the catalogue) is `crates/zoo/src/ensemble.rs`.
const CLASSICAL: &[(&str, &[&str])] = &[
    ("genopred-gblup", &["crates/zoo/src/classical.rs", "benches/Cargo.toml", "benches/benches/models.rs"]),
    ("genopred-rkhs", &["crates/zoo/src/classical.rs"]),
    ("genopred-bayesb", &["crates/zoo/src/classical.rs"]),
    ("genopred-ensemble", &["crates/zoo/src/ensemble.rs"]),
];

/// Where a generator may be seeded directly: the seed derivation itself, and test and benchmark
/// data that are not part of any result (simulated genotypes, random bench inputs).
const SEEDING_ALLOWED: &[&str] = &[
    "crates/stats/src/seed.rs",
    "crates/stats/src/reml/reference.rs",
    "crates/train/src/conformance.rs",
    "crates/zoo/src/harness.rs",
];

/// Runs every check; fails listing the findings.
pub fn run(root: &Path) -> Result<()> {
    let files = source_files(root)?;
    let mut findings = Vec::new();
    core_has_no_burn(root, &files, &mut findings)?;
    core_is_layered(root, &files, &mut findings)?;
    seeds_by_purpose(root, &files, &mut findings)?;
    models_named_once(root, &files, &mut findings)?;
    if findings.is_empty() {
        println!("tidy: {} files checked, the invariants hold", files.len());
        return Ok(());
    }
    for f in &findings {
        eprintln!("{f}");
    }
    bail!("tidy: {} finding(s)", findings.len())
}

/// `.rs` and `Cargo.toml` files of the workspace (not `target/`, `fuzz/` or hidden folders).
fn source_files(root: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "fuzz") {
                    walk(&path, out)?;
                }
            } else if name.ends_with(".rs") || name == "Cargo.toml" {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, &mut out)?;
    out.sort();
    Ok(out)
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// The lines of a file that are not test code: everything before a `#[cfg(test)]` module, and
/// nothing from files under a `tests/` folder or named `tests.rs`.
fn non_test_lines(rel: &str, text: &str) -> Vec<(usize, String)> {
    if rel.contains("/tests/") || rel.ends_with("/tests.rs") {
        return Vec::new();
    }
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The burn-free crates, from the bottom layer up, and the crates each must not name (in code
/// or manifest): the layers above it, and the facade.
const LAYERS: &[(&str, &str, &[&str])] = &[
    ("crates/data/", "genopred-data", &["genopred_stats", "genopred_eval", "genopred_core"]),
    ("crates/stats/", "genopred-stats", &["genopred_eval", "genopred_core"]),
    ("crates/eval/", "genopred-eval", &["genopred_core"]),
    ("crates/core/", "genopred-core", &[]),
];

fn core_has_no_burn(root: &Path, files: &[PathBuf], findings: &mut Vec<String>) -> Result<()> {
    for &(dir, name, _) in LAYERS {
        for path in files.iter().filter(|p| rel(root, p).starts_with(dir)) {
            let text = std::fs::read_to_string(path)?;
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.trim_start().starts_with("burn") || code.contains("burn::") || code.contains("use burn") {
                    findings.push(format!(
                        "{}:{}: {name} must not depend on burn (Architecture Invariant)",
                        rel(root, path),
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// data ← stats ← eval, and genopred-core only re-exports them.
fn core_is_layered(root: &Path, files: &[PathBuf], findings: &mut Vec<String>) -> Result<()> {
    for &(dir, name, above) in LAYERS {
        for path in files.iter().filter(|p| rel(root, p).starts_with(dir)) {
            let r = rel(root, path);
            let text = std::fs::read_to_string(path)?;
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for other in above {
                    if contains_word(code, other) || contains_word(code, &other.replace('_', "-")) {
                        findings.push(format!(
                            "{r}:{}: {name} must not name {other}: data ← stats ← eval, each below the next \
                             (Architecture Invariant)",
                            i + 1
                        ));
                    }
                }
                let t = code.trim();
                if r.starts_with("crates/core/src/")
                    && !(t.is_empty()
                        || t.starts_with("pub use ")
                        || t.starts_with('#')
                        || !t.contains(|c: char| c.is_alphabetic()))
                    && !text_continues_a_use(&text, i)
                {
                    findings.push(format!(
                        "{r}:{}: genopred-core only re-exports genopred-data, -stats and -eval; code belongs in them \
                         (Architecture Invariant)",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether line `i` of `text` is inside a multi-line `pub use … { … };`.
fn text_continues_a_use(text: &str, i: usize) -> bool {
    let mut open = false;
    for line in text.lines().take(i) {
        let code = line.split("//").next().unwrap_or("").trim();
        if code.starts_with("pub use ") && code.ends_with('{') {
            open = true;
        } else if open && code.starts_with("};") {
            open = false;
        }
    }
    open
}

fn seeds_by_purpose(root: &Path, files: &[PathBuf], findings: &mut Vec<String>) -> Result<()> {
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
        let r = rel(root, path);
        if !(r.starts_with("crates/") || r.starts_with("benches/src")) {
            continue;
        }
        let text = std::fs::read_to_string(path)?;
        for (n, line) in non_test_lines(&r, &text) {
            let code = line.split("//").next().unwrap_or("").to_string();
            let xor_seed = code.contains("seed ^") || (code.contains("seed") && code.contains("^ 0x"));
            let direct = code.contains("seed_from_u64(") && !SEEDING_ALLOWED.contains(&r.as_str());
            if xor_seed || direct {
                findings.push(format!(
                    "{r}:{n}: derive seeds with genopred_core::cv::derive_seed(seed, Purpose::…, path), \
                     not inline constants or direct seeding (Architecture Invariant)"
                ));
            }
        }
    }
    Ok(())
}

fn models_named_once(root: &Path, files: &[PathBuf], findings: &mut Vec<String>) -> Result<()> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root.join("crates").join("models"))? {
        let dir = entry?.path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let name = manifest.lines().find_map(|l| l.strip_prefix("name = \"").and_then(|l| l.strip_suffix('"')));
        if let Some(name) = name {
            crates.push((name.to_string(), rel(root, &dir)));
        }
    }
    for (name, dir) in &crates {
        let ident = name.replace('-', "_");
        let extra: &[&str] = CLASSICAL.iter().find(|(n, _)| n == name).map_or(&[], |(_, f)| f);
        for path in files {
            let r = rel(root, path);
            // This file names the classical crates as data.
            let allowed = r.starts_with(&format!("{dir}/"))
                || CATALOGUE_FILES.contains(&r.as_str())
                || extra.contains(&r.as_str())
                || r == "xtask/src/tidy.rs";
            if allowed {
                continue;
            }
            let text = std::fs::read_to_string(path)?;
            for (n, line) in non_test_lines(&r, &text) {
                if contains_word(&line, name) || contains_word(&line, &ident) {
                    findings.push(format!(
                        "{r}:{n}: names the model crate {name}; models are listed once, in crates/zoo/src/catalogue.rs \
                         (iterate genopred_zoo::MODELS)"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `word` occurs in `line` not as part of a longer identifier.
fn contains_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_code_and_longer_names_are_not_findings() {
        let text = "use a;\nlet s = seed ^ 0x12;\n#[cfg(test)]\nmod tests { seed ^ 1 }\n";
        assert_eq!(non_test_lines("crates/x/src/a.rs", text).len(), 2);
        assert!(non_test_lines("crates/x/tests/a.rs", text).is_empty());
        assert!(contains_word("genopred_mlp::Mlp", "genopred_mlp"));
        assert!(!contains_word("genopred_mlp2::Mlp", "genopred_mlp"));
    }

    #[test]
    fn a_stray_model_name_or_seed_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (path, text) in [
            ("Cargo.toml", "[workspace]\n"),
            ("crates/models/mlp/Cargo.toml", "[package]\nname = \"genopred-mlp\"\n"),
            ("crates/zoo/src/catalogue.rs", "&Neural::<genopred_mlp::Mlp>::ENTRY,\n"),
            ("crates/cli/src/main.rs", "use genopred_mlp::Mlp;\nlet s = derive(seed ^ 0x44);\n"),
            ("crates/core/Cargo.toml", "[dependencies]\nburn = \"1\"\n"),
            ("crates/core/src/lib.rs", "pub use genopred_data::{\n    a,\n};\npub fn extra() {}\n"),
            ("crates/stats/src/lib.rs", "use genopred_eval::cv;\n"),
            ("crates/data/Cargo.toml", "[dependencies]\ngenopred-stats.workspace = true\n"),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        let e = run(root).unwrap_err().to_string();
        assert_eq!(e, "tidy: 6 finding(s)");
    }
}
