//! Phenotype tables: CSV or TSV with an id column and one or more trait (or grouping) columns.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};
use crate::genotype::first_duplicate;
use crate::readers::dosage_csv::{csv_error, delimiter_for, for_each_record};

/// How to read a phenotype table.
#[derive(Debug, Clone, Default)]
pub struct PhenoOptions {
    /// Name of the id column; default: a column named `id` (any case), else the first column.
    pub id_column: Option<String>,
    /// Extra cell values that mean "missing", beside `NA`, `NaN`, `.` and empty (e.g. `-9` when
    /// the file uses PLINK's convention).
    pub missing: Vec<String>,
}

/// A phenotype table held as text; columns are parsed as numbers or labels on request, so that a
/// grouping column need not be numeric and a bad number is reported only for the trait used.
#[derive(Debug, Clone)]
pub struct Phenotypes {
    path: PathBuf,
    id_name: String,
    ids: Vec<String>,
    columns: Vec<String>,
    /// `cells[c][i]`: column `c`, sample `i`.
    cells: Vec<Vec<String>>,
    /// 1-based file line of each sample.
    lines: Vec<u64>,
    /// 1-based file column of each entry of `columns`.
    file_columns: Vec<usize>,
    missing: Vec<String>,
}

impl Phenotypes {
    /// Reads a phenotype file; the delimiter comes from the extension (tab for .tsv/.txt).
    pub fn read(path: &Path, options: &PhenoOptions) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
        Self::from_reader(std::io::BufReader::new(file), delimiter_for(path), path, options)
    }

    /// Reads a phenotype table from any reader; `path` names the source in errors.
    pub fn from_reader<R: Read>(reader: R, delimiter: u8, path: &Path, options: &PhenoOptions) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(reader);
        let header: Vec<String> =
            rdr.headers().map_err(|e| csv_error(path, e))?.iter().map(|h| h.trim().to_string()).collect();
        if header.len() < 2 {
            return Err(CoreError::format(
                path,
                format!(
                    "the header has {} column(s); expected an id column and at least one trait column \
                     (delimiter '{}' was chosen from the file extension)",
                    header.len(),
                    delimiter as char
                ),
            ));
        }
        let id_col = match &options.id_column {
            Some(name) => header.iter().position(|h| h == name).ok_or_else(|| {
                CoreError::format(path, format!("no id column named '{name}'; columns are: {}", header.join(", ")))
            })?,
            None => header.iter().position(|h| h.eq_ignore_ascii_case("id")).unwrap_or(0),
        };
        if let Some(dup) = first_duplicate(header.iter().map(String::as_str)) {
            return Err(CoreError::parse(path, 1, None, format!("column name '{dup}' occurs twice in the header")));
        }
        let other: Vec<usize> = (0..header.len()).filter(|&c| c != id_col).collect();
        let mut ids = Vec::new();
        let mut lines = Vec::new();
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); other.len()];
        for_each_record(&mut rdr, path, |record, line| {
            let id = record.get(id_col).unwrap_or_default().trim();
            if id.is_empty() {
                return Err(CoreError::parse(path, line, Some(id_col + 1), "empty sample id"));
            }
            ids.push(id.to_string());
            lines.push(line);
            for (k, &c) in other.iter().enumerate() {
                cells[k].push(record.get(c).unwrap_or_default().trim().to_string());
            }
            Ok(())
        })?;
        if ids.is_empty() {
            return Err(CoreError::format(path, "no samples: the table has a header but no rows"));
        }
        if let Some(dup) = first_duplicate(ids.iter().map(String::as_str)) {
            let at: Vec<String> =
                ids.iter().zip(&lines).filter(|(i, _)| *i == dup).map(|(_, l)| l.to_string()).collect();
            return Err(CoreError::format(
                path,
                format!("sample id '{dup}' occurs more than once (lines {}); ids must be unique", at.join(", ")),
            ));
        }
        Ok(Phenotypes {
            path: path.to_path_buf(),
            id_name: header[id_col].clone(),
            ids,
            columns: other.iter().map(|&c| header[c].clone()).collect(),
            cells,
            lines,
            file_columns: other.iter().map(|&c| c + 1).collect(),
            missing: options.missing.clone(),
        })
    }

    /// The file this table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id column's name.
    pub fn id_column(&self) -> &str {
        &self.id_name
    }

    /// Sample ids in file order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Names of the non-id columns.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            CoreError::Data(format!(
                "{}: no column named '{name}'; the columns are: {}",
                self.path.display(),
                self.columns.join(", ")
            ))
        })
    }

    fn is_missing(&self, cell: &str) -> bool {
        matches!(cell, "" | "NA" | "na" | "NaN" | "nan" | ".") || self.missing.iter().any(|m| m == cell)
    }

    /// Whether every non-missing cell of a column parses as a number.
    pub fn is_numeric(&self, name: &str) -> bool {
        self.trait_values(name).is_ok()
    }

    /// A trait column as numbers, `None` where missing. A non-numeric cell is an error naming
    /// its line and column.
    pub fn trait_values(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let c = self.column_index(name)?;
        self.cells[c]
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if self.is_missing(cell) {
                    return Ok(None);
                }
                match cell.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(CoreError::parse(
                        &self.path,
                        self.lines[i],
                        Some(self.file_columns[c]),
                        format!(
                            "trait '{name}' of sample '{}': '{cell}' is not a number (use NA for missing)",
                            self.ids[i]
                        ),
                    )),
                }
            })
            .collect()
    }

    /// A column as labels (for grouped cross-validation), `None` where missing.
    pub fn labels(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = self.column_index(name)?;
        Ok(self.cells[c].iter().map(|cell| (!self.is_missing(cell)).then(|| cell.clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, missing: &[&str]) -> Result<Phenotypes> {
        let options = PhenoOptions { id_column: None, missing: missing.iter().map(|s| s.to_string()).collect() };
        Phenotypes::from_reader(text.as_bytes(), b',', Path::new("pheno.csv"), &options)
    }

    #[test]
    fn reads_traits_with_missing_codes() {
        let p = parse("line,id,yield,group\nx,a,1.5,G1\ny,b,NA,G2\nz,c,-9,\n", &["-9"]).unwrap();
        assert_eq!(p.ids(), ["a", "b", "c"]);
        assert_eq!(p.columns(), ["line", "yield", "group"]);
        assert_eq!(p.trait_values("yield").unwrap(), [Some(1.5), None, None]);
        assert_eq!(p.labels("group").unwrap(), [Some("G1".into()), Some("G2".into()), None]);
        let without = parse("id,yield\na,-9\n", &[]).unwrap();
        assert_eq!(without.trait_values("yield").unwrap(), [Some(-9.0)]);
    }

    #[test]
    fn errors_name_line_column_and_choices() {
        let p = parse("id,yield\na,1\nb,tall\n", &[]).unwrap();
        let err = p.trait_values("yield").unwrap_err().to_string();
        assert!(err.contains("line 3, column 2") && err.contains("'tall'"), "{err}");
        let err = p.trait_values("height").unwrap_err().to_string();
        assert!(err.contains("no column named 'height'") && err.contains("yield"), "{err}");
        assert!(!p.is_numeric("yield"));
        let err = parse("id,y\na,1\nb,2\na,3\n", &[]).unwrap_err().to_string();
        assert!(err.contains("'a'") && err.contains("lines 2, 4"), "{err}");
        assert!(parse("id,y\na,1,2\n", &[]).unwrap_err().to_string().contains("line 2"));
        assert!(parse("id\na\n", &[]).is_err());
        assert!(parse("id,y\n,1\n", &[]).unwrap_err().to_string().contains("empty sample id"));
        assert!(parse("id,y\na,inf\n", &[]).unwrap().trait_values("y").is_err());
    }
}
