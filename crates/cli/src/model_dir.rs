//! The saved-model folder `genopred train` writes and `genopred predict` reads:
//!
//! ```text
//! MODEL_DIR/
//!   manifest.json   versions, model, trait, seed, backend, inputs' SHA-256, QC, training metrics,
//!                   and the SHA-256 of every other file here (checked before predicting)
//!   config.toml     the resolved model settings
//!   markers.tsv     the markers the model uses, in its order: id, chrom, pos, counted and other
//!                   allele, and the mean dosage over the training samples
//!   history.csv     per-epoch training history (neural models)
//!   model/          the fitted state: weights.bpk, input.json (imputation means, scalings,
//!                   PCA loadings), scaling.json (trait standardisation); gblup.json for GBLUP
//! ```
//!
//! The folder is written under a temporary name beside its destination and renamed into place
//! once complete, so a folder with the final name is always whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use genopred_core::Marker;
use genopred_core::output::{sha256_file, write_csv};
use genopred_core::records::Manifest;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The marker list's file name.
pub const MARKERS: &str = "markers.tsv";
/// The fitted state's folder (written by the model's `save`, read by its catalogue entry).
pub const STATE_DIR: &str = "model";
/// The resolved settings' file name.
pub const CONFIG: &str = "config.toml";

/// One line of `markers.tsv`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MarkerRow {
    id: String,
    chrom: String,
    pos: u64,
    counted: String,
    other: String,
    mean: f64,
}

/// Writes `markers.tsv`.
pub fn write_markers(path: &Path, markers: &[Marker], means: &[f64]) -> Result<()> {
    let rows = markers.iter().zip(means).map(|(m, &mean)| MarkerRow {
        id: m.id.clone(),
        chrom: m.chrom.clone(),
        pos: m.pos,
        counted: m.counted.clone(),
        other: m.other.clone(),
        mean,
    });
    Ok(write_csv(path, rows, b'\t')?)
}

/// Reads `markers.tsv`: the markers and their training means.
pub fn read_markers(path: &Path) -> Result<(Vec<Marker>, Vec<f64>)> {
    let mut r = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut markers = Vec::new();
    let mut means = Vec::new();
    for (i, row) in r.deserialize::<MarkerRow>().enumerate() {
        let row = row.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        if !(row.mean.is_finite() && (0.0..=2.0).contains(&row.mean)) {
            bail!("{}: line {}: mean dosage {} is not within [0, 2]", path.display(), i + 2, row.mean);
        }
        means.push(row.mean);
        markers.push(Marker { id: row.id, chrom: row.chrom, pos: row.pos, counted: row.counted, other: row.other });
    }
    if markers.is_empty() {
        bail!("{}: no markers", path.display());
    }
    Ok((markers, means))
}

/// SHA-256 of every file under `dir` except the manifest, by relative path (`/`-separated).
pub fn hash_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            if name != MANIFEST {
                out.insert(name, sha256_file(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Reads a model folder's manifest and checks that the folder is whole and unchanged.
pub fn open(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    if !dir.is_dir() {
        bail!("model folder {} does not exist; create one with `genopred train`", dir.display());
    }
    if !path.is_file() {
        bail!("{} is not a genopred model folder (no {MANIFEST}); create one with `genopred train`", dir.display());
    }
    let manifest = Manifest::read(&path)?;
    let now = hash_files(dir)?;
    for (name, sha) in &manifest.files {
        match now.get(name) {
            None => bail!("model folder {}: {name} is missing; the folder is incomplete", dir.display()),
            Some(s) if s != sha => bail!(
                "model folder {}: {name} changed since training (SHA-256 differs from {MANIFEST}); \
                 the folder is damaged or was edited — retrain rather than edit a saved model",
                dir.display()
            ),
            Some(_) => {}
        }
    }
    if manifest.genopred_version != env!("CARGO_PKG_VERSION") {
        eprintln!(
            "note: the model was trained with genopred {}; this is {}",
            manifest.genopred_version,
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(manifest)
}

/// A temporary folder beside `dest` that [`commit`] renames into place.
pub fn staging(dest: &Path) -> Result<PathBuf> {
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let tmp = parent.join(format!("{}{name}-{}", genopred_core::output::TEMP_PREFIX, std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    Ok(tmp)
}

/// Refuses to train into an existing non-empty folder unless `force`.
pub fn check_destination(dest: &Path, force: bool) -> Result<()> {
    let non_empty = std::fs::read_dir(dest).map(|mut d| d.next().is_some()).unwrap_or(false);
    if dest.exists() && !dest.is_dir() {
        bail!("{} exists and is not a folder", dest.display());
    }
    if non_empty && !force {
        bail!("{} already exists and is not empty; choose another --out or pass --force to replace it", dest.display());
    }
    Ok(())
}

/// Moves the finished folder `tmp` to `dest`, replacing what is there (checked by
/// [`check_destination`]). The old folder is removed only once the new one is in place.
pub fn commit(tmp: &Path, dest: &Path) -> Result<()> {
    let old = if dest.exists() {
        let old = tmp.with_extension("old");
        std::fs::rename(dest, &old).with_context(|| format!("moving the old {} aside", dest.display()))?;
        Some(old)
    } else {
        None
    };
    std::fs::rename(tmp, dest).with_context(|| format!("moving the model into {}", dest.display()))?;
    if let Some(old) = old {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}
