//! PLINK 1 binary genotypes (`.bed` + `.bim` + `.fam`), read with the `bed-reader` crate.
//!
//! The `.fam` and `.bim` text files are parsed here so that a malformed line is reported with its
//! file and line number; the `.bed` itself is checked (magic bytes, size against the sample and
//! marker counts) and then decoded by `bed-reader`, which counts allele 1 (PLINK's A1) as PLINK does.

use std::path::{Path, PathBuf};

use bed_reader::{Bed, ReadOptions};

use crate::error::{CoreError, Result};
use crate::genotype::{DOSAGE_SCALE, GenotypeMatrix, MISSING, Marker};

/// Markers decoded per `bed-reader` call: bounds the temporary `i8` buffer to
/// `n_samples × BLOCK` bytes whatever the file's size.
const BLOCK: usize = 4096;

/// The `.bed`, `.bim` and `.fam` paths of one PLINK file set.
#[derive(Debug, Clone)]
pub struct PlinkPaths {
    /// Binary genotypes.
    pub bed: PathBuf,
    /// Marker table.
    pub bim: PathBuf,
    /// Sample table.
    pub fam: PathBuf,
}

impl PlinkPaths {
    /// Accepts `x.bed`, `x.bim`, `x.fam` or the prefix `x`.
    pub fn from_any(path: &Path) -> Self {
        let prefix = match path.extension().and_then(|e| e.to_str()) {
            Some("bed" | "bim" | "fam") => path.with_extension(""),
            _ => path.to_path_buf(),
        };
        let with = |ext: &str| {
            let mut p = prefix.clone().into_os_string();
            p.push(".");
            p.push(ext);
            PathBuf::from(p)
        };
        PlinkPaths { bed: with("bed"), bim: with("bim"), fam: with("fam") }
    }
}

/// Reads a PLINK 1 binary file set into a [`GenotypeMatrix`]; dosage counts allele A1.
pub fn read_plink(path: &Path) -> Result<GenotypeMatrix> {
    let paths = PlinkPaths::from_any(path);
    for p in [&paths.bed, &paths.bim, &paths.fam] {
        if !p.is_file() {
            return Err(CoreError::format(
                p,
                "file not found; a PLINK data set needs .bed, .bim and .fam files with the same prefix",
            ));
        }
    }
    let samples = read_fam(&paths.fam)?;
    let markers = read_bim(&paths.bim)?;
    check_bed_header(&paths.bed, samples.len(), markers.len())?;
    let codes = read_bed_codes(&paths, samples.len(), markers.len())?;
    GenotypeMatrix::new(samples, markers, codes).map_err(|e| CoreError::format(&paths.bed, e.to_string()))
}

/// Sample ids (the IID column) of a `.fam` file.
pub fn read_fam(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(CoreError::parse(
                path,
                i as u64 + 1,
                None,
                format!(
                    "expected 6 whitespace-separated fields (FID IID father mother sex phenotype), found {}",
                    fields.len()
                ),
            ));
        }
        ids.push(fields[1].to_string());
    }
    if ids.is_empty() {
        return Err(CoreError::format(path, "no samples: the .fam file is empty"));
    }
    Ok(ids)
}

/// Markers of a `.bim` file (chromosome, id, cM, bp, A1, A2).
pub fn read_bim(path: &Path) -> Result<Vec<Marker>> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
    let mut markers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i as u64 + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(CoreError::parse(
                path,
                line_no,
                None,
                format!("expected 6 whitespace-separated fields (chrom id cM bp A1 A2), found {}", fields.len()),
            ));
        }
        let pos: u64 = fields[3].parse().map_err(|_| {
            CoreError::parse(
                path,
                line_no,
                Some(4),
                format!("base-pair position '{}' is not a non-negative integer", fields[3]),
            )
        })?;
        markers.push(Marker {
            id: fields[1].to_string(),
            chrom: fields[0].to_string(),
            pos,
            counted: fields[4].to_string(),
            other: fields[5].to_string(),
        });
    }
    if markers.is_empty() {
        return Err(CoreError::format(path, "no markers: the .bim file is empty"));
    }
    Ok(markers)
}

fn check_bed_header(path: &Path, n_samples: usize, n_markers: usize) -> Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let len = file.metadata().map_err(|e| CoreError::io(path, e))?.len();
    let mut magic = [0u8; 3];
    if len < 3 || file.read_exact(&mut magic).is_err() {
        return Err(CoreError::format(path, "file is shorter than the 3-byte PLINK header"));
    }
    if magic[..2] != [0x6c, 0x1b] {
        return Err(CoreError::format(
            path,
            format!("not a PLINK 1 .bed file: magic bytes are {:02x} {:02x}, expected 6c 1b", magic[0], magic[1]),
        ));
    }
    if magic[2] != 0x01 {
        return Err(CoreError::format(
            path,
            "sample-major .bed files (mode byte 0x00) are not supported; re-save it with `plink --make-bed`",
        ));
    }
    let expected = 3 + n_markers as u64 * n_samples.div_ceil(4) as u64;
    if len != expected {
        return Err(CoreError::format(
            path,
            format!(
                "file has {len} bytes but the .fam ({n_samples} samples) and .bim ({n_markers} markers) \
                 imply {expected}; the file is truncated or belongs to another .bim/.fam"
            ),
        ));
    }
    Ok(())
}

fn read_bed_codes(paths: &PlinkPaths, n_samples: usize, n_markers: usize) -> Result<Vec<u8>> {
    let bed_err = |e: Box<bed_reader::BedErrorPlus>| CoreError::format(&paths.bed, e.to_string());
    let mut bed = Bed::builder(&paths.bed)
        .fam_path(&paths.fam)
        .bim_path(&paths.bim)
        .iid_count(n_samples)
        .sid_count(n_markers)
        .build()
        .map_err(bed_err)?;
    let mut codes = vec![MISSING; n_samples * n_markers];
    let scale = DOSAGE_SCALE as i16;
    let mut start = 0;
    while start < n_markers {
        let end = (start + BLOCK).min(n_markers);
        let block = ReadOptions::builder().sid_index(start..end).count_a1().c().i8().read(&mut bed).map_err(bed_err)?;
        for (s, row) in block.outer_iter().enumerate() {
            let out = &mut codes[s * n_markers + start..s * n_markers + end];
            for (slot, &v) in out.iter_mut().zip(row.iter()) {
                *slot = if v < 0 { MISSING } else { (i16::from(v) * scale) as u8 };
            }
        }
        start = end;
    }
    Ok(codes)
}
