//! VCF and bgzipped VCF (`.vcf`, `.vcf.gz`, `.vcf.bgz`) through `noodles-vcf`.
//!
//! The dosage of a call is the number of ALT alleles in its diploid `GT` (`0/0` → 0, `0|1` → 1,
//! `1/1` → 2; any `.` allele → missing). Multi-allelic sites (more than one ALT) are **skipped**
//! and counted in [`VcfReport::skipped_multiallelic`]: splitting them would invent biallelic
//! markers whose dosages are not independent; run `bcftools norm -m-` first to keep them.
//! Haploid or polyploid calls are an error naming the line and sample.

use std::io::Read;
use std::path::Path;

use noodles_vcf::{
    self as vcf,
    io::CompressionMethod,
    variant::record::{
        AlternateBases as _,
        samples::{keys::key, series::Value},
    },
};

use crate::error::{CoreError, Result};
use crate::genotype::{CallsBuilder, DOSAGE_SCALE, GenotypeMatrix, MISSING, Marker};

/// What the VCF reader dropped, for the run report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VcfReport {
    /// Sites with more than one ALT allele, skipped.
    pub skipped_multiallelic: usize,
    /// Sites with no ALT allele (`.`), skipped: they carry no variation.
    pub skipped_monomorphic_ref: usize,
}

/// An error and its `source()` chain in one line: noodles keeps the detail in the sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut f = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut magic = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CoreError::io(path, e)),
        }
    }
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// Reads a VCF (plain or BGZF-compressed, detected from the first bytes).
pub fn read_vcf(path: &Path) -> Result<(GenotypeMatrix, VcfReport)> {
    let method = if is_gzip(path)? { CompressionMethod::Bgzf } else { CompressionMethod::None };
    let mut reader = vcf::io::reader::Builder::default()
        .set_compression_method(method)
        .build_from_path(path)
        .map_err(|e| CoreError::io(path, e))?;

    // Parse the header line by line so that a header error carries its line number.
    let mut raw_header = String::new();
    reader.header_reader().read_to_string(&mut raw_header).map_err(|e| {
        let hint = if matches!(method, CompressionMethod::Bgzf) {
            " (compressed VCF must be BGZF, as written by `bgzip`, not plain `gzip`)"
        } else {
            ""
        };
        CoreError::format(path, format!("cannot read the VCF header: {}{hint}", chain(&e)))
    })?;
    let mut parser = vcf::header::Parser::default();
    let mut header_lines: u64 = 0;
    for line in raw_header.lines() {
        header_lines += 1;
        parser.parse_partial(line.as_bytes()).map_err(|e| {
            CoreError::parse(path, header_lines, None, format!("invalid VCF header line: {}", chain(&e)))
        })?;
    }
    let header = parser.finish().map_err(|e| CoreError::format(path, format!("invalid VCF header: {}", chain(&e))))?;
    let samples: Vec<String> = header.sample_names().iter().cloned().collect();
    if samples.is_empty() {
        return Err(CoreError::format(path, "the VCF has no sample columns (a sites-only VCF carries no genotypes)"));
    }

    let mut report = VcfReport::default();
    let mut markers = Vec::new();
    // Marker-major while reading; transposed to sample-major at the end.
    let mut by_marker: Vec<u8> = Vec::new();
    let mut record = vcf::Record::default();
    let mut line = header_lines;
    let scale = DOSAGE_SCALE as u8;
    loop {
        line += 1;
        match reader.read_record(&mut record) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(CoreError::parse(path, line, None, format!("malformed VCF record: {}", chain(&e))));
            }
        }
        let at = |column: Option<usize>, msg: String| CoreError::parse(path, line, column, msg);

        let chrom = record.reference_sequence_name().to_string();
        let pos = match record.variant_start() {
            None => 0,
            Some(Ok(p)) => p.get() as u64,
            Some(Err(e)) => return Err(at(Some(2), format!("invalid POS: {}", chain(&e)))),
        };
        let ref_allele = record.reference_bases().to_string();
        let alts: Vec<String> = record
            .alternate_bases()
            .iter()
            .map(|r| r.map(String::from))
            .collect::<std::io::Result<_>>()
            .map_err(|e| at(Some(5), format!("invalid ALT: {}", chain(&e))))?;
        match alts.len() {
            0 => {
                report.skipped_monomorphic_ref += 1;
                continue;
            }
            1 => {}
            _ => {
                report.skipped_multiallelic += 1;
                continue;
            }
        }
        let id = match record.ids().as_ref() {
            "" => format!("{chrom}:{pos}:{ref_allele}:{}", alts[0]),
            s => s.to_string(),
        };

        let record_samples = record.samples();
        let gt_index = record_samples.keys().iter().position(|k| k == key::GENOTYPE).ok_or_else(|| {
            let format: Vec<&str> = record_samples.keys().iter().collect();
            at(Some(9), format!("FORMAT '{}' has no GT field; genotypes are read from GT", format.join(":")))
        })?;
        let n_cols = record_samples.iter().count();
        if n_cols != samples.len() {
            return Err(at(None, format!("{n_cols} sample columns, but the header names {} samples", samples.len())));
        }
        for (j, sample) in record_samples.iter().enumerate() {
            let name = &samples[j];
            let col = Some(10 + j);
            let code = match sample.get_index(&header, gt_index) {
                None | Some(None) => MISSING,
                Some(Some(Err(e))) => return Err(at(col, format!("sample '{name}': invalid GT: {}", chain(&e)))),
                Some(Some(Ok(Value::Genotype(gt)))) => {
                    let mut ploidy = 0usize;
                    let mut missing = false;
                    let mut alt = 0u8;
                    for allele in gt.iter() {
                        let (index, _) = allele.map_err(|e| {
                            at(col, format!("sample '{name}': invalid GT '{}': {}", sample.as_ref(), chain(&e)))
                        })?;
                        ploidy += 1;
                        match index {
                            None => missing = true,
                            Some(0) => {}
                            Some(1) => alt = alt.saturating_add(1),
                            Some(i) => {
                                return Err(at(
                                    col,
                                    format!("sample '{name}': allele index {i} but the site has 1 ALT allele"),
                                ));
                            }
                        }
                    }
                    if ploidy != 2 {
                        return Err(at(
                            col,
                            format!(
                                "sample '{name}': GT '{}' has ploidy {ploidy}; only diploid calls are supported \
                                 (code inbred lines as homozygous diploids, e.g. 1/1)",
                                sample.as_ref()
                            ),
                        ));
                    }
                    if missing { MISSING } else { alt * scale }
                }
                Some(Some(Ok(other))) => {
                    return Err(at(col, format!("sample '{name}': unexpected GT value {other:?}")));
                }
            };
            by_marker.push(code);
        }
        markers.push(Marker { id, chrom, pos, counted: alts[0].clone(), other: ref_allele });
    }
    if markers.is_empty() {
        return Err(CoreError::format(
            path,
            format!(
                "no usable biallelic sites (skipped {} multi-allelic, {} without ALT)",
                report.skipped_multiallelic, report.skipped_monomorphic_ref
            ),
        ));
    }
    let (n, m) = (samples.len(), markers.len());
    // Into the matrix (packed while every call is a hard call), a marker at a time, freeing the
    // per-marker calls as it goes.
    let mut calls = CallsBuilder::new(n, m);
    for (j, column) in by_marker.chunks_exact(n).enumerate() {
        for (i, &c) in column.iter().enumerate() {
            calls.set(i, j, c);
        }
    }
    drop(by_marker);
    let matrix =
        GenotypeMatrix::from_calls(samples, markers, calls).map_err(|e| CoreError::format(path, e.to_string()))?;
    Ok((matrix, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
##FORMAT=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n##contig=<ID=1>\n\
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n";

    fn write(body: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".vcf").tempfile().unwrap();
        write!(f, "{HEADER}{body}").unwrap();
        f
    }

    #[test]
    fn reads_dosages_phased_missing_and_skips_multiallelic() {
        let f = write(
            "1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1\n\
             1\t200\t.\tC\tT\t.\t.\t.\tDP:GT\t3:./.\t10:0|1\t7:1|0\n\
             1\t300\trs3\tA\tC,G\t.\t.\t.\tGT\t1/2\t0/2\t2/2\n\
             1\t400\trs4\tG\tA\t.\t.\t.\tGT\t0/0\t.\t./1\n",
        );
        let (g, report) = read_vcf(f.path()).unwrap();
        assert_eq!(g.samples(), ["S1", "S2", "S3"]);
        assert_eq!(g.n_markers(), 3);
        assert_eq!(report.skipped_multiallelic, 1);
        assert_eq!(g.markers()[1].id, "1:200:C:T");
        assert_eq!(g.markers()[0].counted, "G");
        assert_eq!(g.markers()[0].other, "A");
        assert_eq!(*g.row(0), [0, MISSING, 0]);
        assert_eq!(*g.row(1), [100, 100, MISSING]);
        assert_eq!(*g.row(2), [200, 100, MISSING]);
        // GT calls are hard calls: held 2 bits each.
        assert!(g.is_packed());
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\n", "line 6", "2 sample columns"),
            ("1\t100\trs1\tA\tG\t.\t.\t.\tDP\t1\t2\t3\n", "line 6", "no GT"),
            ("1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t1\t1/1\n", "line 6", "ploidy 1"),
            ("1\tabc\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/1\t1/1\n", "line 6", "POS"),
            ("1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/x\t1/1\n", "line 6", "invalid GT"),
            ("1\t100\trs1\tA\tG\n", "line 6", "malformed"),
            ("1\t100\trs1\tA\tG\t.\t.\t.\tGT\t0/0\t0/3\t1/1\n", "line 6", "allele index 3"),
        ];
        for (body, line, what) in cases {
            let f = write(body);
            let err = read_vcf(f.path()).unwrap_err().to_string();
            assert!(err.contains(line) && err.contains(what), "{body:?} -> {err}");
        }
    }

    #[test]
    fn no_sites_or_no_samples_is_an_error() {
        let f = write("1\t300\trs3\tA\tC,G\t.\t.\t.\tGT\t1/2\t0/2\t2/2\n");
        assert!(read_vcf(f.path()).unwrap_err().to_string().contains("no usable biallelic"));
        let mut f = tempfile::Builder::new().suffix(".vcf").tempfile().unwrap();
        write!(f, "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t1\t.\tA\tG\t.\t.\t.\n")
            .unwrap();
        assert!(read_vcf(f.path()).unwrap_err().to_string().contains("no sample columns"));
    }
}
