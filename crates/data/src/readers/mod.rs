//! Genotype readers: PLINK 1 binary, VCF/BCF-free VCF(.gz), and numeric CSV/TSV tables.

pub mod dosage_csv;
pub mod plink;
pub mod vcf;

use std::path::Path;

use crate::error::{CoreError, Result};
use crate::genotype::GenotypeMatrix;

/// The genotype file formats genopred reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenotypeFormat {
    /// PLINK 1 binary `.bed/.bim/.fam`.
    Plink,
    /// VCF, plain or bgzipped.
    Vcf,
    /// Numeric dosage table, comma- or tab-separated.
    Csv,
}

impl std::str::FromStr for GenotypeFormat {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "plink" | "bed" => Ok(GenotypeFormat::Plink),
            "vcf" => Ok(GenotypeFormat::Vcf),
            "csv" | "tsv" => Ok(GenotypeFormat::Csv),
            _ => Err(CoreError::config("format", s, "expected one of: plink, vcf, csv")),
        }
    }
}

impl std::fmt::Display for GenotypeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GenotypeFormat::Plink => "plink",
            GenotypeFormat::Vcf => "vcf",
            GenotypeFormat::Csv => "csv",
        })
    }
}

impl GenotypeFormat {
    /// Chooses the format from the file name: `.bed/.bim/.fam` (or a prefix with a `.bed` beside
    /// it) → PLINK; `.vcf`, `.vcf.gz`, `.vcf.bgz` → VCF; `.csv`, `.tsv`, `.txt` → CSV.
    pub fn detect(path: &Path) -> Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if [".bed", ".bim", ".fam"].iter().any(|e| name.ends_with(e)) {
            return Ok(GenotypeFormat::Plink);
        }
        if [".vcf", ".vcf.gz", ".vcf.bgz"].iter().any(|e| name.ends_with(e)) {
            return Ok(GenotypeFormat::Vcf);
        }
        if [".csv", ".tsv", ".txt", ".tab"].iter().any(|e| name.ends_with(e)) {
            return Ok(GenotypeFormat::Csv);
        }
        if plink::PlinkPaths::from_any(path).bed.is_file() {
            return Ok(GenotypeFormat::Plink);
        }
        Err(CoreError::format(
            path,
            "cannot tell the genotype format from the file name (expected .bed/.bim/.fam, .vcf, .vcf.gz, \
             .csv or .tsv); name it with --format plink|vcf|csv",
        ))
    }
}

/// What a reader did besides returning the matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReadReport {
    /// The format the file was read as.
    pub format: GenotypeFormat,
    /// VCF-specific skips (zero for other formats).
    pub vcf: vcf::VcfReport,
}

/// Reads a genotype file in the given format, or the one detected from its name.
pub fn read_genotypes(path: &Path, format: Option<GenotypeFormat>) -> Result<(GenotypeMatrix, ReadReport)> {
    let format = match format {
        Some(f) => f,
        None => GenotypeFormat::detect(path)?,
    };
    if format != GenotypeFormat::Plink && !path.is_file() {
        return Err(CoreError::format(path, "file not found"));
    }
    let (matrix, vcf) = match format {
        GenotypeFormat::Plink => (plink::read_plink(path)?, vcf::VcfReport::default()),
        GenotypeFormat::Vcf => vcf::read_vcf(path)?,
        GenotypeFormat::Csv => (dosage_csv::read_dosage_csv(path)?, vcf::VcfReport::default()),
    };
    Ok((matrix, ReadReport { format, vcf }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_names() {
        assert_eq!(GenotypeFormat::detect(Path::new("a/x.bed")).unwrap(), GenotypeFormat::Plink);
        assert_eq!(GenotypeFormat::detect(Path::new("x.vcf.gz")).unwrap(), GenotypeFormat::Vcf);
        assert_eq!(GenotypeFormat::detect(Path::new("x.TSV")).unwrap(), GenotypeFormat::Csv);
        let err = GenotypeFormat::detect(Path::new("x.unknown")).unwrap_err().to_string();
        assert!(err.contains("--format"), "{err}");
        assert!("bcf".parse::<GenotypeFormat>().is_err());
        assert_eq!("VCF".parse::<GenotypeFormat>().unwrap(), GenotypeFormat::Vcf);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = read_genotypes(Path::new("/nonexistent/g.csv"), None).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/g.csv") && err.contains("not found"), "{err}");
        let err = read_genotypes(Path::new("/nonexistent/g.bed"), None).unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
    }
}
