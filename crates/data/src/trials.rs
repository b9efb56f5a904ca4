//! Multi-environment trials in long format: one record per line × environment (× the levels of
//! any fixed effect, a block say), any number of environments per line, unbalanced, with missing
//! cells. Read from a long table (`--env COLUMN`) or made from a wide one whose trait columns are
//! environments (wheat599's `yield_env1` … `yield_env4`).
//!
//! Fixed effects are the table's other columns named by the user: a column whose every cell is a
//! number is a covariate (as it is), any other a factor (dummies against a reference level, its
//! first level in file order). The environment is always a factor. [`Trials::design`] builds the
//! fixed-effect matrix `X` (intercept, environments, factors, covariates) of any set of records;
//! [`Trials::check_levels`] refuses a test record whose level no training record has, since no
//! model can estimate its effect.
//!
//! Nothing here reads a phenotype to decide a structure: levels, references and the duplicate
//! check come from the labels alone, so building them from the whole table leaks nothing from a
//! test fold.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};
use crate::phenotype::Phenotypes;
use crate::readers::dosage_csv::{csv_error, delimiter_for, for_each_record, is_missing_cell};

pub mod env_covariates;

pub use env_covariates::EnvCovariates;

/// How to read a long-format trial table.
#[derive(Debug, Clone, Default)]
pub struct TrialOptions {
    /// Name of the line id column; default: a column named `id` (any case), else the first column.
    pub id_column: Option<String>,
    /// Name of the environment column.
    pub env_column: String,
    /// Name of the trait column.
    pub trait_name: String,
    /// Fixed-effect columns (trial, block, management, a numeric covariate ...).
    pub fixed: Vec<String>,
    /// Extra cell values that mean "missing", beside `NA`, `NaN`, `.` and empty.
    pub missing: Vec<String>,
}

/// One phenotype record: a line's value in an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    /// Line (genotype) id.
    pub line: String,
    /// Index into [`Trials::envs`].
    pub env: usize,
    /// The trait's value.
    pub value: f64,
    /// 1-based line of the file it came from (0 for records made from a wide table).
    pub file_line: u64,
}

/// A fixed effect beside the environment.
#[derive(Debug, Clone, PartialEq)]
pub enum FixedEffect {
    /// A categorical column: `codes[r]` indexes `levels` for record `r`.
    Factor {
        /// Column name.
        name: String,
        /// Levels in order of first appearance; the first is the reference.
        levels: Vec<String>,
        /// Level of each record.
        codes: Vec<usize>,
    },
    /// A numeric column, used as it is.
    Covariate {
        /// Column name.
        name: String,
        /// Value of each record.
        values: Vec<f64>,
    },
}

impl FixedEffect {
    /// The column's name.
    pub fn name(&self) -> &str {
        match self {
            FixedEffect::Factor { name, .. } | FixedEffect::Covariate { name, .. } => name,
        }
    }
}

/// The fixed-effect matrix of some records: `x` is row-major, `rows × names.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedDesign {
    /// Column names: `intercept`, `ENV=level` for each non-reference environment, `NAME=level`
    /// for each non-reference level of each factor, `NAME` for each covariate.
    pub names: Vec<String>,
    /// Values, one row per record asked for.
    pub x: Vec<f64>,
}

/// A multi-environment trial: records, environments and fixed effects.
#[derive(Debug, Clone)]
pub struct Trials {
    path: PathBuf,
    trait_name: String,
    env_name: String,
    envs: Vec<String>,
    records: Vec<TrialRecord>,
    fixed: Vec<FixedEffect>,
    missing_values: usize,
    /// Environmental covariates: their names, and a row per environment (in `envs`' order).
    env_covariates: Option<(Vec<String>, Vec<Vec<f64>>)>,
}

/// Levels in order of first appearance, and each item's level.
fn levels_of<'a>(items: impl Iterator<Item = &'a str>) -> (Vec<String>, Vec<usize>) {
    let mut levels: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let codes = items
        .map(|s| {
            *index.entry(s.to_string()).or_insert_with(|| {
                levels.push(s.to_string());
                levels.len() - 1
            })
        })
        .collect();
    (levels, codes)
}

impl Trials {
    /// Reads a long-format table; the delimiter comes from the extension (tab for .tsv/.txt).
    pub fn read(path: &Path, options: &TrialOptions) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
        Self::from_reader(std::io::BufReader::new(file), delimiter_for(path), path, options)
    }

    /// Reads a long-format table from any reader; `path` names the source in errors. Records
    /// whose trait value is missing are left out (counted in [`Trials::missing_values`]).
    pub fn from_reader<R: Read>(reader: R, delimiter: u8, path: &Path, options: &TrialOptions) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(reader);
        let header: Vec<String> =
            rdr.headers().map_err(|e| csv_error(path, e))?.iter().map(|h| h.trim().to_string()).collect();
        let column = |name: &str, what: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                CoreError::format(
                    path,
                    format!("no {what} column named '{name}'; the columns are: {}", header.join(", ")),
                )
            })
        };
        let id_col = match &options.id_column {
            Some(name) => column(name, "id")?,
            None => header.iter().position(|h| h.eq_ignore_ascii_case("id")).unwrap_or(0),
        };
        let env_col = column(&options.env_column, "environment")?;
        let trait_col = column(&options.trait_name, "trait")?;
        let fixed_cols: Vec<usize> = options.fixed.iter().map(|f| column(f, "fixed-effect")).collect::<Result<_>>()?;
        for (name, col) in [("environment", env_col), ("trait", trait_col)] {
            if col == id_col {
                return Err(CoreError::format(path, format!("the {name} column '{}' is the id column", header[col])));
            }
        }
        if let Some(f) = options.fixed.iter().find(|f| [&header[env_col], &header[trait_col]].contains(f)) {
            return Err(CoreError::format(
                path,
                format!("'{f}' is named as a fixed effect, but it is the environment or the trait column"),
            ));
        }
        let missing = |cell: &str| is_missing_cell(cell) || options.missing.iter().any(|m| m == cell);

        let mut lines = Vec::new();
        let mut env_cells = Vec::new();
        let mut values = Vec::new();
        let mut file_lines = Vec::new();
        let mut fixed_cells: Vec<Vec<String>> = vec![Vec::new(); fixed_cols.len()];
        let mut missing_values = 0;
        for_each_record(&mut rdr, path, |record, line| {
            let cell = |c: usize| record.get(c).unwrap_or_default().trim();
            let id = cell(id_col);
            if id.is_empty() {
                return Err(CoreError::parse(path, line, Some(id_col + 1), "empty line id"));
            }
            let env = cell(env_col);
            if missing(env) {
                return Err(CoreError::parse(
                    path,
                    line,
                    Some(env_col + 1),
                    format!("line '{id}' has no environment (column '{}' is empty)", header[env_col]),
                ));
            }
            let raw = cell(trait_col);
            if missing(raw) {
                missing_values += 1;
                return Ok(());
            }
            let value = match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => {
                    return Err(CoreError::parse(
                        path,
                        line,
                        Some(trait_col + 1),
                        format!(
                            "trait '{}' of line '{id}': '{raw}' is not a number (use NA for missing)",
                            header[trait_col]
                        ),
                    ));
                }
            };
            for (k, &c) in fixed_cols.iter().enumerate() {
                let v = cell(c);
                if missing(v) {
                    return Err(CoreError::parse(
                        path,
                        line,
                        Some(c + 1),
                        format!(
                            "fixed effect '{}' of line '{id}' in '{env}' is missing; every record with a value needs one",
                            header[c]
                        ),
                    ));
                }
                fixed_cells[k].push(v.to_string());
            }
            lines.push(id.to_string());
            env_cells.push(env.to_string());
            values.push(value);
            file_lines.push(line);
            Ok(())
        })?;
        if lines.is_empty() {
            return Err(CoreError::format(
                path,
                format!("no records with a value of '{}' ({missing_values} missing)", header[trait_col]),
            ));
        }
        let (envs, env_codes) = levels_of(env_cells.iter().map(String::as_str));
        let fixed = fixed_cols
            .iter()
            .zip(fixed_cells)
            .map(|(&c, cells)| {
                let name = header[c].clone();
                match cells.iter().map(|s| s.parse::<f64>()).collect::<std::result::Result<Vec<f64>, _>>() {
                    Ok(values) if values.iter().all(|v| v.is_finite()) => FixedEffect::Covariate { name, values },
                    _ => {
                        let (levels, codes) = levels_of(cells.iter().map(String::as_str));
                        FixedEffect::Factor { name, levels, codes }
                    }
                }
            })
            .collect();
        let records = lines
            .into_iter()
            .zip(env_codes)
            .zip(values.into_iter().zip(file_lines))
            .map(|((line, env), (value, file_line))| TrialRecord { line, env, value, file_line })
            .collect();
        let trials = Trials {
            path: path.to_path_buf(),
            trait_name: header[trait_col].clone(),
            env_name: header[env_col].clone(),
            envs,
            records,
            fixed,
            missing_values,
            env_covariates: None,
        };
        trials.check_duplicates()?;
        Ok(trials)
    }

    /// A trial from a wide table whose `columns` are the trait in one environment each (the
    /// environment is named after its column): one record per line and non-missing cell.
    pub fn from_wide(pheno: &Phenotypes, columns: &[&str], trait_name: &str) -> Result<Self> {
        if columns.is_empty() {
            return Err(CoreError::Data(format!("{}: no environment columns given", pheno.path().display())));
        }
        let mut records = Vec::new();
        let mut missing_values = 0;
        for (env, column) in columns.iter().enumerate() {
            for (id, value) in pheno.ids().iter().zip(pheno.trait_values(column)?) {
                match value {
                    Some(value) => records.push(TrialRecord { line: id.clone(), env, value, file_line: 0 }),
                    None => missing_values += 1,
                }
            }
        }
        if records.is_empty() {
            return Err(CoreError::Data(format!(
                "{}: no values in the environment columns {}",
                pheno.path().display(),
                columns.join(", ")
            )));
        }
        Ok(Trials {
            path: pheno.path().to_path_buf(),
            trait_name: trait_name.to_string(),
            env_name: "env".to_string(),
            envs: columns.iter().map(|c| c.to_string()).collect(),
            records,
            fixed: Vec::new(),
            missing_values,
            env_covariates: None,
        })
    }

    /// Refuses two records of one line in one environment with the same fixed-effect levels:
    /// nothing in the model tells them apart.
    fn check_duplicates(&self) -> Result<()> {
        let mut seen: HashMap<(String, usize, Vec<u64>), usize> = HashMap::new();
        for (r, rec) in self.records.iter().enumerate() {
            let levels: Vec<u64> = self
                .fixed
                .iter()
                .map(|f| match f {
                    FixedEffect::Factor { codes, .. } => codes[r] as u64,
                    FixedEffect::Covariate { values, .. } => values[r].to_bits(),
                })
                .collect();
            if let Some(&first) = seen.get(&(rec.line.clone(), rec.env, levels.clone())) {
                let a = &self.records[first];
                let how = if a.value == rec.value {
                    "the same value twice".to_string()
                } else {
                    format!("conflicting values {} and {}", a.value, rec.value)
                };
                let by = if self.fixed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " and the same levels of {}",
                        self.fixed.iter().map(FixedEffect::name).collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(CoreError::parse(
                    &self.path,
                    rec.file_line,
                    None,
                    format!(
                        "line '{}' has two records in {} '{}'{by} (lines {} and {}): {how}; give each plot its \
                         own level (--fixed block, say) or average them",
                        rec.line, self.env_name, self.envs[rec.env], a.file_line, rec.file_line
                    ),
                ));
            }
            seen.insert((rec.line.clone(), rec.env, levels), r);
        }
        Ok(())
    }

    /// The trial with environmental covariates from `table`, which must have a row for every
    /// environment of the trial.
    pub fn with_env_covariates(mut self, table: &env_covariates::EnvCovariates) -> Result<Self> {
        self.env_covariates = Some((table.names().to_vec(), table.rows_for(&self.envs)?));
        Ok(self)
    }

    /// The environmental covariates' names and a row per environment, if the trial has them.
    pub fn env_covariates(&self) -> Option<(&[String], &[Vec<f64>])> {
        self.env_covariates.as_ref().map(|(names, rows)| (names.as_slice(), rows.as_slice()))
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trait's name.
    pub fn trait_name(&self) -> &str {
        &self.trait_name
    }

    /// The environment column's name.
    pub fn env_name(&self) -> &str {
        &self.env_name
    }

    /// Environments, in order of first appearance (the first is the reference level).
    pub fn envs(&self) -> &[String] {
        &self.envs
    }

    /// The records with a value, in file order.
    pub fn records(&self) -> &[TrialRecord] {
        &self.records
    }

    /// Fixed effects beside the environment.
    pub fn fixed(&self) -> &[FixedEffect] {
        &self.fixed
    }

    /// Records left out for a missing trait value.
    pub fn missing_values(&self) -> usize {
        self.missing_values
    }

    /// Line ids, each once, in order of first appearance.
    pub fn lines(&self) -> Vec<String> {
        levels_of(self.records.iter().map(|r| r.line.as_str())).0
    }

    /// Records per environment, in [`Trials::envs`] order.
    pub fn records_per_env(&self) -> Vec<usize> {
        let mut n = vec![0; self.envs.len()];
        for r in &self.records {
            n[r.env] += 1;
        }
        n
    }

    /// The trial with only the records `keep` accepts (those of genotyped lines, say);
    /// environments left without a record are dropped, the others keep their order.
    pub fn retain(&self, keep: impl Fn(&TrialRecord) -> bool) -> Trials {
        let kept: Vec<usize> = (0..self.records.len()).filter(|&r| keep(&self.records[r])).collect();
        let mut used = vec![false; self.envs.len()];
        kept.iter().for_each(|&r| used[self.records[r].env] = true);
        let mut remap = vec![usize::MAX; self.envs.len()];
        let mut envs = Vec::new();
        for (e, name) in self.envs.iter().enumerate().filter(|&(e, _)| used[e]) {
            remap[e] = envs.len();
            envs.push(name.clone());
        }
        let records =
            kept.iter().map(|&r| TrialRecord { env: remap[self.records[r].env], ..self.records[r].clone() }).collect();
        let fixed = self
            .fixed
            .iter()
            .map(|f| match f {
                FixedEffect::Factor { name, levels, codes } => FixedEffect::Factor {
                    name: name.clone(),
                    levels: levels.clone(),
                    codes: kept.iter().map(|&r| codes[r]).collect(),
                },
                FixedEffect::Covariate { name, values } => {
                    FixedEffect::Covariate { name: name.clone(), values: kept.iter().map(|&r| values[r]).collect() }
                }
            })
            .collect();
        let env_covariates = self.env_covariates.as_ref().map(|(names, rows)| {
            (names.clone(), (0..self.envs.len()).filter(|&e| used[e]).map(|e| rows[e].clone()).collect())
        });
        Trials { envs, records, fixed, env_covariates, ..self.clone() }
    }

    /// The fixed-effect matrix of `rows` (indices into [`Trials::records`]): intercept, a dummy
    /// per non-reference environment, a dummy per non-reference level of each factor, then each
    /// covariate as it is.
    pub fn design(&self, rows: &[usize]) -> FixedDesign {
        let mut names = vec!["intercept".to_string()];
        names.extend(self.envs.iter().skip(1).map(|e| format!("{}={e}", self.env_name)));
        for f in &self.fixed {
            match f {
                FixedEffect::Factor { name, levels, .. } => {
                    names.extend(levels.iter().skip(1).map(|l| format!("{name}={l}")));
                }
                FixedEffect::Covariate { name, .. } => names.push(name.clone()),
            }
        }
        let mut x = Vec::with_capacity(rows.len() * names.len());
        for &r in rows {
            x.push(1.0);
            let env = self.records[r].env;
            x.extend((1..self.envs.len()).map(|e| f64::from(u8::from(e == env))));
            for f in &self.fixed {
                match f {
                    FixedEffect::Factor { levels, codes, .. } => {
                        x.extend((1..levels.len()).map(|l| f64::from(u8::from(l == codes[r]))));
                    }
                    FixedEffect::Covariate { values, .. } => x.push(values[r]),
                }
            }
        }
        FixedDesign { names, x }
    }

    /// Refuses a split whose test records (`test`) have an environment or factor level that no
    /// training record (`train`) has: its effect cannot be estimated. (Predicting a new
    /// environment — CV0, CV00 — asks for environmental covariates instead.)
    pub fn check_levels(&self, train: &[usize], test: &[usize]) -> Result<()> {
        let mut factors =
            vec![(self.env_name.as_str(), &self.envs, self.records.iter().map(|r| r.env).collect::<Vec<_>>())];
        for f in &self.fixed {
            if let FixedEffect::Factor { name, levels, codes } = f {
                factors.push((name.as_str(), levels, codes.clone()));
            }
        }
        for (name, levels, codes) in factors {
            let mut trained = vec![false; levels.len()];
            for &r in train {
                trained[codes[r]] = true;
            }
            if let Some(&r) = test.iter().find(|&&r| !trained[codes[r]]) {
                let n = test.iter().filter(|&&t| codes[t] == codes[r]).count();
                return Err(CoreError::Data(format!(
                    "{}: {name} '{}' is in the test records ({n}, line '{}' first) but in no training record: its \
                     effect cannot be estimated",
                    self.path.display(),
                    levels[codes[r]],
                    self.records[r].line
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phenotype::PhenoOptions;

    fn options(fixed: &[&str]) -> TrialOptions {
        TrialOptions {
            id_column: None,
            env_column: "env".into(),
            trait_name: "yield".into(),
            fixed: fixed.iter().map(|s| s.to_string()).collect(),
            missing: vec!["-9".into()],
        }
    }

    fn parse(text: &str, fixed: &[&str]) -> Result<Trials> {
        Trials::from_reader(text.as_bytes(), b',', Path::new("trials.csv"), &options(fixed))
    }

    const TABLE: &str = "id,env,block,rain,yield\n\
        a,E1,B1,10.5,1.0\n\
        a,E1,B2,10.5,1.2\n\
        b,E1,B1,10.5,2.0\n\
        a,E2,B1,3.0,NA\n\
        b,E2,B2,3.0,2.5\n\
        c,E2,B1,3.0,-9\n\
        c,E3,B1,7.25,0.5\n";

    #[test]
    fn reads_an_unbalanced_long_table_with_factors_and_covariates() {
        let t = parse(TABLE, &["block", "rain"]).unwrap();
        assert_eq!(t.envs(), ["E1", "E2", "E3"]);
        assert_eq!(t.records().len(), 5);
        assert_eq!(t.missing_values(), 2);
        assert_eq!(t.records_per_env(), [3, 1, 1]);
        assert_eq!(t.lines(), ["a", "b", "c"]);
        assert_eq!(t.records()[3], TrialRecord { line: "b".into(), env: 1, value: 2.5, file_line: 6 });
        assert!(matches!(&t.fixed()[0], FixedEffect::Factor { levels, .. } if levels == &["B1", "B2"]));
        assert!(
            matches!(&t.fixed()[1], FixedEffect::Covariate { values, .. } if values == &[10.5, 10.5, 10.5, 3.0, 7.25])
        );
        let d = t.design(&[1, 4]);
        assert_eq!(d.names, ["intercept", "env=E2", "env=E3", "block=B2", "rain"]);
        assert_eq!(d.x, [1.0, 0.0, 0.0, 1.0, 10.5, 1.0, 0.0, 1.0, 0.0, 7.25]);
    }

    #[test]
    fn bad_tables_are_errors_naming_the_file_line_column_or_level() {
        let err = |text: &str, fixed: &[&str]| parse(text, fixed).unwrap_err().to_string();
        assert_eq!(
            err("id,site,yield\na,E1,1\n", &[]),
            "trials.csv: no environment column named 'env'; the columns are: id, site, yield"
        );
        assert_eq!(
            err("id,env,yield\na,,1\n", &[]),
            "trials.csv: line 2, column 2: line 'a' has no environment (column 'env' is empty)"
        );
        assert!(
            err("id,env,yield\na,E1,x\n", &[])
                .contains("line 2, column 3: trait 'yield' of line 'a': 'x' is not a number")
        );
        let dup = err("id,env,yield\na,E1,1\nb,E1,2\na,E1,3\n", &[]);
        assert!(
            dup.contains("line 4: line 'a' has two records in env 'E1' (lines 2 and 4): conflicting values 1 and 3"),
            "{dup}"
        );
        let same = err("id,env,block,yield\na,E1,B1,1\na,E1,B1,1\n", &["block"]);
        assert!(same.contains("and the same levels of block (lines 2 and 3): the same value twice"), "{same}");
        assert!(err("id,env,block,yield\na,E1,,1\n", &["block"]).contains("line 2, column 3: fixed effect 'block'"));
        assert!(err("id,env,yield\na,E1,NA\n", &[]).contains("no records with a value of 'yield' (1 missing)"));
        assert!(err("id,env,yield\na,E1,1\n", &["env"]).contains("'env' is named as a fixed effect"));
        // Replicates told apart by a block are two records.
        assert_eq!(parse("id,env,block,yield\na,E1,B1,1\na,E1,B2,1\n", &["block"]).unwrap().records().len(), 2);
    }

    #[test]
    fn a_test_level_without_training_records_is_refused() {
        let t = parse(TABLE, &["block"]).unwrap();
        // Records: 0 a/E1/B1, 1 a/E1/B2, 2 b/E1/B1, 3 b/E2/B2, 4 c/E3/B1.
        assert!(t.check_levels(&[0, 1, 3, 4], &[2]).is_ok());
        let e = t.check_levels(&[0, 1, 2, 3], &[4]).unwrap_err().to_string();
        assert_eq!(
            e,
            "trials.csv: env 'E3' is in the test records (1, line 'c' first) but in no training record: its effect \
             cannot be estimated"
        );
        let e = t.check_levels(&[0, 2, 4], &[1]).unwrap_err().to_string();
        assert!(e.contains("block 'B2' is in the test records (1, line 'a' first)"), "{e}");
        let e = t.check_levels(&[0, 2, 4, 1], &[3]).unwrap_err().to_string();
        assert!(e.contains("env 'E2'"), "{e}");
    }

    #[test]
    fn retaining_records_keeps_their_effects_and_drops_empty_environments() {
        let t = parse(TABLE, &["block", "rain"]).unwrap();
        let kept = t.retain(|r| r.line != "c");
        assert_eq!(kept.envs(), ["E1", "E2"]);
        assert_eq!(kept.records().len(), 4);
        assert_eq!(kept.records()[3].env, 1);
        assert!(matches!(&kept.fixed()[0], FixedEffect::Factor { codes, .. } if codes == &[0, 1, 0, 1]));
        assert!(
            matches!(&kept.fixed()[1], FixedEffect::Covariate { values, .. } if values == &[10.5, 10.5, 10.5, 3.0])
        );
    }

    #[test]
    fn a_wide_table_becomes_one_environment_per_column() {
        let text = "id,yield_env1,yield_env2,height\na,1.0,NA,3\nb,2.0,2.5,4\n";
        let pheno =
            Phenotypes::from_reader(text.as_bytes(), b',', Path::new("wide.csv"), &PhenoOptions::default()).unwrap();
        let t = Trials::from_wide(&pheno, &["yield_env1", "yield_env2"], "yield").unwrap();
        assert_eq!(t.envs(), ["yield_env1", "yield_env2"]);
        assert_eq!(t.missing_values(), 1);
        let got: Vec<(&str, usize, f64)> = t.records().iter().map(|r| (r.line.as_str(), r.env, r.value)).collect();
        assert_eq!(got, [("a", 0, 1.0), ("b", 0, 2.0), ("b", 1, 2.5)]);
        assert_eq!(t.design(&[2]).x, [1.0, 1.0]);
    }
}
