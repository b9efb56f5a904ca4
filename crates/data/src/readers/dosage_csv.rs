//! Numeric genotype tables: CSV or TSV, first column the sample id, then one column per marker
//! holding a dosage in `[0, 2]` (fractional dosages allowed); `NA`, `.` or an empty cell is missing.

use std::io::Read;
use std::path::Path;

use crate::error::{CoreError, Result};
use crate::genotype::{GenotypeMatrix, MISSING, Marker, dosage_to_code};

/// Field delimiter guessed from the file name: tab for `.tsv`/`.txt`/`.tab`, comma otherwise.
pub fn delimiter_for(path: &Path) -> u8 {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.trim_end_matches(".gz");
    if name.ends_with(".tsv") || name.ends_with(".txt") || name.ends_with(".tab") { b'\t' } else { b',' }
}

/// Whether a cell means "missing".
pub fn is_missing_cell(cell: &str) -> bool {
    matches!(cell.trim(), "" | "NA" | "na" | "NaN" | "nan" | ".")
}

/// Reads a numeric dosage table from a file.
pub fn read_dosage_csv(path: &Path) -> Result<GenotypeMatrix> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    read_dosage_table(std::io::BufReader::new(file), delimiter_for(path), path)
}

/// Reads a numeric dosage table from any reader; `path` only names the source in errors.
pub fn read_dosage_table<R: Read>(reader: R, delimiter: u8, path: &Path) -> Result<GenotypeMatrix> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(false).from_reader(reader);
    let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.len() < 2 {
        return Err(CoreError::format(
            path,
            format!(
                "the header has {} column(s); expected an id column then one column per marker \
                 (is the delimiter right? '{}' was used, chosen from the file extension)",
                header.len(),
                delimiter as char
            ),
        ));
    }
    let markers: Vec<Marker> = header
        .iter()
        .skip(1)
        .map(|id| Marker {
            id: id.trim().to_string(),
            chrom: "0".into(),
            pos: 0,
            counted: String::new(),
            other: String::new(),
        })
        .collect();
    let n_markers = markers.len();
    let mut samples = Vec::new();
    let mut codes = Vec::new();
    for_each_record(&mut rdr, path, |record, line| {
        let id = record.get(0).unwrap_or_default().trim();
        if id.is_empty() {
            return Err(CoreError::parse(path, line, Some(1), "empty sample id"));
        }
        samples.push(id.to_string());
        for (j, cell) in record.iter().skip(1).enumerate() {
            if is_missing_cell(cell) {
                codes.push(MISSING);
                continue;
            }
            let value: f64 = cell.trim().parse().map_err(|_| {
                CoreError::parse(
                    path,
                    line,
                    Some(j + 2),
                    format!("marker '{}': '{}' is not a number (use NA for missing)", markers[j].id, cell),
                )
            })?;
            let code = dosage_to_code(value).ok_or_else(|| {
                CoreError::parse(
                    path,
                    line,
                    Some(j + 2),
                    format!("marker '{}': dosage {} is outside [0, 2]", markers[j].id, cell),
                )
            })?;
            codes.push(code);
        }
        Ok(())
    })?;
    if samples.is_empty() {
        return Err(CoreError::format(path, "no samples: the table has a header but no rows"));
    }
    debug_assert_eq!(codes.len(), samples.len() * n_markers);
    GenotypeMatrix::new(samples, markers, codes).map_err(|e| CoreError::format(path, e.to_string()))
}

/// Calls `f(record, line)` for every data row; a `csv` error becomes one naming the file and line.
pub fn for_each_record<R: Read>(
    rdr: &mut csv::Reader<R>,
    path: &Path,
    mut f: impl FnMut(&csv::StringRecord, u64) -> Result<()>,
) -> Result<()> {
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => f(&record, record.position().map_or(0, |p| p.line()))?,
            Err(e) => return Err(csv_error(path, e)),
        }
    }
}

/// Turns a `csv` error into one that names the file, line and what to do.
pub fn csv_error(path: &Path, e: csv::Error) -> CoreError {
    let line = e.position().map_or(0, |p| p.line());
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => CoreError::parse(
            path,
            line,
            None,
            format!("row has {len} fields but the header has {expected_len}; every row needs one value per column"),
        ),
        csv::ErrorKind::Io(err) => CoreError::io(path, std::io::Error::new(err.kind(), err.to_string())),
        csv::ErrorKind::Utf8 { .. } => CoreError::parse(path, line, None, "text is not valid UTF-8"),
        _ => CoreError::parse(path, line, None, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GenotypeMatrix> {
        read_dosage_table(text.as_bytes(), b',', Path::new("geno.csv"))
    }

    #[test]
    fn reads_dosages_and_missing() {
        let g = parse("id,m1,m2,m3\na,0,1,2\nb,NA,,0.55\n").unwrap();
        assert_eq!(g.n_samples(), 2);
        assert_eq!(g.n_markers(), 3);
        assert_eq!(*g.row(0), [0, 100, 200]);
        assert_eq!(*g.row(1), [MISSING, MISSING, 55]);
        assert_eq!(g.markers()[2].id, "m3");
        // A fractional dosage keeps one byte per call; hard calls alone are packed.
        assert!(!g.is_packed());
        let hard = parse("id,m1,m2,m3\na,0,1,2\nb,NA,,0\n").unwrap();
        assert!(hard.is_packed());
        assert_eq!(*hard.row(1), [MISSING, MISSING, 0]);
    }

    #[test]
    fn ragged_row_names_line() {
        let err = parse("id,m1,m2\na,0,1\nb,0\n").unwrap_err().to_string();
        assert!(err.contains("geno.csv") && err.contains("line 3") && err.contains("2 fields"), "{err}");
    }

    #[test]
    fn non_numeric_and_out_of_range_name_line_and_column() {
        let err = parse("id,m1,m2\na,0,x\n").unwrap_err().to_string();
        assert!(err.contains("line 2, column 3") && err.contains("'x'"), "{err}");
        let err = parse("id,m1,m2\na,3,0\n").unwrap_err().to_string();
        assert!(err.contains("line 2, column 2") && err.contains("outside [0, 2]"), "{err}");
    }

    #[test]
    fn empty_and_headless_inputs_are_errors() {
        assert!(parse("id,m1\n").unwrap_err().to_string().contains("no samples"));
        assert!(parse("id\na\n").unwrap_err().to_string().contains("header has 1 column"));
        assert!(parse("id,m1\na,0\na,1\n").unwrap_err().to_string().contains("more than once"));
    }

    #[test]
    fn tab_delimiter_from_extension() {
        assert_eq!(delimiter_for(Path::new("x.tsv")), b'\t');
        assert_eq!(delimiter_for(Path::new("x.TXT")), b'\t');
        assert_eq!(delimiter_for(Path::new("x.csv")), b',');
    }
}
