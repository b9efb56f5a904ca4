//! PLINK 1 binary genotypes (`.bed` + `.bim` + `.fam`), read with the `bed-reader` crate.
//!
//! The `.fam` and `.bim` text files are parsed here so that a malformed line is reported with its
//! file and line number; the `.bed` itself is checked (magic bytes, size against the sample and
//! marker counts) and then decoded by `bed-reader`, which counts allele 1 (PLINK's A1) as PLINK does.

use std::path::{Path, PathBuf};

use bed_reader::{Bed, ReadOptions};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::genotype::{CallsBuilder, GenotypeMatrix, Marker};

/// Bytes of the temporary `i8` buffer per `bed-reader` call: blocks of markers are sized to it,
/// so memory stays bounded whatever the file's size, and calls are few (each has a set-up cost).
const BLOCK_BYTES: usize = 4 << 20;

/// Samples per tile of the block transposition.
const TILE: usize = 64;

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
    check_bed_padding(&paths.bed, samples.len(), &markers)?;
    let calls = read_bed_calls(&paths, samples.len(), markers.len(), BLOCK_BYTES)?;
    GenotypeMatrix::from_calls(samples, markers, calls).map_err(|e| CoreError::format(&paths.bed, e.to_string()))
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

/// A `.fam` that lists fewer samples than the `.bed` was written for can still fit the file's
/// size: with 1,999 samples instead of 2,000 each marker still takes 500 bytes. Then the last
/// byte of each marker holds a genotype where PLINK writes zero bits, and every sample after
/// the first missing line would be read against the wrong calls. PLINK itself accepts such a
/// file; here the bits after the last sample of each marker must be zero. (A missing sample
/// whose calls all happen to read as zero bits cannot be told from padding; a `.bed` whose
/// sample count is a multiple of 4 has no padding to check.)
fn check_bed_padding(path: &Path, n_samples: usize, markers: &[Marker]) -> Result<()> {
    let used = n_samples % 4;
    if used == 0 {
        return Ok(());
    }
    let mask = 0xffu8 << (2 * used);
    let per_marker = n_samples.div_ceil(4) as u64;
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut bad: Option<usize> = None;
    let mut count = 0usize;
    for j in 0..markers.len() {
        // One positioned read of marker j's last byte (one system call per marker): the pages
        // in between are never read when a marker spans pages (16,384 samples or more).
        let byte = byte_at(&file, 3 + (j as u64 + 1) * per_marker - 1).map_err(|e| CoreError::io(path, e))?;
        if byte & mask != 0 {
            bad.get_or_insert(j);
            count += 1;
        }
    }
    match bad {
        None => Ok(()),
        Some(j) => Err(CoreError::format(
            path,
            format!(
                "the .bed holds calls for more samples than the .fam's {n_samples}: the bits after the last \
                 sample, which PLINK writes as zeros, are set in {count} of {} markers (first: '{}', line {} \
                 of the .bim). The .fam has lost lines or belongs to another .bed; PLINK itself reads such \
                 a file without complaint (a line lost in the middle pairs every later sample with \
                 another's calls)",
                markers.len(),
                markers[j].id,
                j + 1
            ),
        )),
    }
}

/// The byte at `offset` of `file`.
fn byte_at(file: &std::fs::File, offset: u64) -> std::io::Result<u8> {
    let mut byte = [0u8; 1];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut byte, offset)?;
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut byte)?;
    }
    Ok(byte[0])
}

/// The calls of the `.bed`, packed 2 bits each as they arrive (the file holds hard calls only).
fn read_bed_calls(paths: &PlinkPaths, n_samples: usize, n_markers: usize, block_bytes: usize) -> Result<CallsBuilder> {
    let bed_err = |e: Box<bed_reader::BedErrorPlus>| CoreError::format(&paths.bed, e.to_string());
    let mut bed = Bed::builder(&paths.bed)
        .fam_path(&paths.fam)
        .bim_path(&paths.bim)
        .iid_count(n_samples)
        .sid_count(n_markers)
        .build()
        .map_err(bed_err)?;
    let mut calls = CallsBuilder::new(n_samples, n_markers);
    // A multiple of 4 markers per block, so that each block fills whole packed bytes.
    let block_markers = (block_bytes / n_samples.max(1) / 4 * 4).max(4);
    let mut start = 0;
    while start < n_markers {
        let end = (start + block_markers).min(n_markers);
        // Column-major is bed-reader's native order (each marker's calls contiguous): about 3×
        // faster than asking it for row-major. Each sample's calls of the block are packed four
        // to a byte straight into its row (every .bed call is a hard call), samples in parallel.
        let block = ReadOptions::builder().sid_index(start..end).count_a1().f().i8().read(&mut bed).map_err(bed_err)?;
        let data = block
            .as_slice_memory_order()
            .ok_or_else(|| CoreError::format(&paths.bed, "bed-reader returned a non-contiguous block"))?;
        let width = end - start;
        let (bytes, stride) = calls.packed_mut().expect("a new builder is packed");
        // Tiles of samples × bytes of markers: a tile's calls of one marker share a cache line
        // of `data`, and the TILE markers of a tile stay in L1 while its samples are packed.
        let n_bytes = width.div_ceil(4);
        bytes.par_chunks_mut(stride * TILE).enumerate().for_each(|(tile, rows)| {
            for q0 in (0..n_bytes).step_by(TILE / 4) {
                let q1 = (q0 + TILE / 4).min(n_bytes);
                for (i, row) in rows.chunks_exact_mut(stride).enumerate() {
                    let s = tile * TILE + i;
                    for (q, byte) in (q0..q1).zip(&mut row[start / 4 + q0..start / 4 + q1]) {
                        let mut packed = 0u8;
                        for k in 0..4.min(width - 4 * q) {
                            // bed-reader's i8: 0, 1, 2 copies of A1, negative for missing, which
                            // the sign bits make 3 (without a branch).
                            let v = data[(4 * q + k) * n_samples + s];
                            packed |= (((v >> 7) as u8 | v as u8) & 3) << (2 * k);
                        }
                        // The bits after the last marker stay set, as the builder leaves them.
                        if width - 4 * q < 4 {
                            packed |= u8::MAX << (2 * (width - 4 * q));
                        }
                        *byte = packed;
                    }
                }
            }
        });
        start = end;
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::MISSING;

    /// Writes a PLINK set with 3 samples and 2 markers; returns the folder (kept alive) and prefix.
    fn write_set(fam: &str, bim: &str, bed: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("x");
        std::fs::write(prefix.with_extension("fam"), fam).unwrap();
        std::fs::write(prefix.with_extension("bim"), bim).unwrap();
        std::fs::write(prefix.with_extension("bed"), bed).unwrap();
        (dir, prefix)
    }

    const FAM: &str = "f a 0 0 0 -9\nf b 0 0 0 -9\nf c 0 0 0 -9\n";
    const BIM: &str = "1 rs1 0 100 A G\n2 rs2 0.5 200 C T\n";
    // Marker 1: a = hom A1 (00), b = missing (01), c = het (10) -> bits c b a = 10 01 00.
    // Marker 2: a = hom A2 (11), b = het (10), c = hom A1 (00) -> 00 10 11.
    const BED: [u8; 5] = [0x6c, 0x1b, 0x01, 0b0010_0100, 0b0000_1011];

    #[test]
    fn decodes_a1_dosages_and_missing() {
        let (_dir, prefix) = write_set(FAM, BIM, &BED);
        let g = read_plink(&prefix.with_extension("bim")).unwrap();
        assert_eq!(g.samples(), ["a", "b", "c"]);
        assert_eq!(
            g.markers()[1],
            Marker { id: "rs2".into(), chrom: "2".into(), pos: 200, counted: "C".into(), other: "T".into() }
        );
        assert_eq!(*g.row(0), [200, 0]);
        assert_eq!(*g.row(1), [MISSING, 100]);
        assert_eq!(*g.row(2), [100, 200]);
    }

    #[test]
    fn malformed_tables_name_file_and_line() {
        let (_d, p) = write_set("f a 0 0 0 -9\nf b 0 0\n", BIM, &BED);
        let err = read_plink(&p).unwrap_err().to_string();
        assert!(err.contains("x.fam") && err.contains("line 2") && err.contains("found 4"), "{err}");
        let (_d, p) = write_set(FAM, "1 rs1 0 100 A G\n2 rs2 0 2e5 C T\n", &BED);
        let err = read_plink(&p).unwrap_err().to_string();
        assert!(err.contains("x.bim") && err.contains("line 2, column 4"), "{err}");
        let (_d, p) = write_set(FAM, "", &BED);
        assert!(read_plink(&p).unwrap_err().to_string().contains("no markers"));
    }

    #[test]
    fn bed_header_and_size_are_checked() {
        let (_d, p) = write_set(FAM, BIM, &BED[..4]);
        assert!(read_plink(&p).unwrap_err().to_string().contains("truncated"));
        let mut wrong = BED;
        wrong[1] = 0x1c;
        let (_d, p) = write_set(FAM, BIM, &wrong);
        assert!(read_plink(&p).unwrap_err().to_string().contains("magic bytes"));
        let mut sample_major = BED;
        sample_major[2] = 0;
        let (_d, p) = write_set(FAM, BIM, &sample_major);
        assert!(read_plink(&p).unwrap_err().to_string().contains("sample-major"));
        let (_d, p) = write_set(FAM, "1 rs1 0 100 A G\n1 rs1 0 200 C T\n", &BED);
        assert!(read_plink(&p).unwrap_err().to_string().contains("'rs1' occurs more than once"));
        let (_d, p) = write_set(FAM, BIM, &BED);
        std::fs::remove_file(p.with_extension("fam")).unwrap();
        assert!(read_plink(&p).unwrap_err().to_string().contains("x.fam: file not found"));
    }

    #[test]
    fn a_fam_with_fewer_samples_than_the_bed_is_caught_by_the_padding_bits() {
        // Written for 4 samples (one byte per marker); the .fam lists 3 of them.
        // Marker 1: d = het (10) in the two bits a 3-sample .fam leaves as padding.
        let four = [0x6c, 0x1b, 0x01, 0b1000_0000, 0b0000_1011];
        let (_d, p) = write_set(FAM, BIM, &four);
        let err = read_plink(&p).unwrap_err().to_string();
        assert!(
            err.contains("x.bed") && err.contains("more samples than the .fam's 3") && err.contains("1 of 2 markers"),
            "{err}"
        );
        assert!(err.contains("first: 'rs1', line 1 of the .bim"), "{err}");
        // The 4th sample homozygous for A1 (00) everywhere cannot be told from padding.
        let (_d, p) = write_set(FAM, BIM, &[0x6c, 0x1b, 0x01, 0b0010_0100, 0b0000_1011]);
        assert!(read_plink(&p).is_ok());
    }

    #[test]
    fn prefix_or_any_member_names_the_set() {
        let p = PlinkPaths::from_any(Path::new("d/x.fam"));
        assert_eq!(p.bed, Path::new("d/x.bed"));
        let p = PlinkPaths::from_any(Path::new("d/x.chr1"));
        assert_eq!(p.bim, Path::new("d/x.chr1.bim"));
    }

    #[test]
    fn packed_reading_over_many_blocks_and_tiles_equals_bed_readers_own_decoding() {
        use rand::{Rng, SeedableRng};
        // 67 samples (a tile of 64 and a partial one; 3 padding bit pairs per marker) × 70
        // markers (not a multiple of 4; more than one group of 16 bytes per row), random calls
        // including missing (01).
        let (n, m): (usize, usize) = (67, 70);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut bed = vec![0x6c, 0x1b, 0x01];
        for _ in 0..m {
            for b in 0..n.div_ceil(4) {
                let calls_here = (n - 4 * b).min(4);
                let byte: u8 = rng.random();
                bed.push(byte & (u8::MAX >> (2 * (4 - calls_here))));
            }
        }
        let fam: String = (0..n).map(|i| format!("f s{i} 0 0 0 -9\n")).collect();
        let bim: String = (0..m).map(|j| format!("1 m{j} 0 {} A G\n", j + 1)).collect();
        let (_dir, prefix) = write_set(&fam, &bim, &bed);
        let paths = PlinkPaths::from_any(&prefix);
        // bed-reader's decoding of the whole file, one call at a time.
        let mut whole = Bed::new(&paths.bed).unwrap();
        let want = ReadOptions::builder().count_a1().i8().read(&mut whole).unwrap();
        let code = |v: i8| if v < 0 { MISSING } else { v as u8 * 100 };
        // Blocks of 4, 8 and 12 markers (block bytes / samples, down to a multiple of 4), and
        // one block for the whole file.
        for block_bytes in [1, 8 * n, 12 * n + 3, BLOCK_BYTES] {
            let calls = read_bed_calls(&paths, n, m, block_bytes).unwrap();
            let g = GenotypeMatrix::from_calls(read_fam(&paths.fam).unwrap(), read_bim(&paths.bim).unwrap(), calls)
                .unwrap();
            assert!(g.is_packed());
            for s in 0..n {
                for j in 0..m {
                    assert_eq!(g.code(s, j), code(want[(s, j)]), "block {block_bytes}: sample {s}, marker {j}");
                }
            }
            assert_eq!(g, read_plink(&prefix).unwrap());
        }
        assert!(want.iter().any(|&v| v < 0) && want.iter().any(|&v| v == 1));
    }
}
