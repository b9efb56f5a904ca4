//! Environmental covariates (`--env-covariates FILE`): weather, soil or management values per
//! environment, so that a model can relate environments it was trained on to one it was not.
//!
//! The file has a row per environment: the environment's name in the column named like the
//! trial's environment column (`--env`'s name; `env` for a wide table) or, without one, in the
//! first column; every other column is a number. Environments of the file that the trial lacks
//! are ignored; an environment of the trial that the file lacks is an error.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use faer::Mat;

use crate::error::{CoreError, Result};
use crate::readers::dosage_csv::{csv_error, delimiter_for, for_each_record};

/// An environmental-covariate table as read.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvCovariates {
    path: PathBuf,
    names: Vec<String>,
    envs: Vec<String>,
    /// `envs.len()` rows of `names.len()` values.
    values: Vec<Vec<f64>>,
}

impl EnvCovariates {
    /// Reads `path`; `env_column` names the environment column if the file has one by that name.
    pub fn read(path: &Path, env_column: &str) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
        Self::from_reader(std::io::BufReader::new(file), delimiter_for(path), path, env_column)
    }

    /// Reads a table from any reader; `path` names it in errors.
    pub fn from_reader<R: Read>(reader: R, delimiter: u8, path: &Path, env_column: &str) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(reader);
        let header: Vec<String> =
            rdr.headers().map_err(|e| csv_error(path, e))?.iter().map(|h| h.trim().to_string()).collect();
        let env_col = header.iter().position(|h| h == env_column).unwrap_or(0);
        let columns: Vec<usize> = (0..header.len()).filter(|&c| c != env_col).collect();
        if columns.is_empty() {
            return Err(CoreError::format(
                path,
                format!("no covariate columns beside the environment column '{}'", header[env_col]),
            ));
        }
        let mut envs = Vec::new();
        let mut values = Vec::new();
        let mut seen: HashMap<String, u64> = HashMap::new();
        for_each_record(&mut rdr, path, |record, line| {
            let cell = |c: usize| record.get(c).unwrap_or_default().trim();
            let env = cell(env_col);
            if env.is_empty() {
                return Err(CoreError::parse(path, line, Some(env_col + 1), "empty environment name"));
            }
            if let Some(first) = seen.insert(env.to_string(), line) {
                return Err(CoreError::parse(
                    path,
                    line,
                    Some(env_col + 1),
                    format!("environment '{env}' appears twice (first on line {first})"),
                ));
            }
            let row = columns
                .iter()
                .map(|&c| match cell(c).parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(CoreError::parse(
                        path,
                        line,
                        Some(c + 1),
                        format!(
                            "covariate '{}' of environment '{env}': '{}' is not a number (every environment needs \
                             every covariate)",
                            header[c],
                            cell(c)
                        ),
                    )),
                })
                .collect::<Result<Vec<f64>>>()?;
            envs.push(env.to_string());
            values.push(row);
            Ok(())
        })?;
        if envs.is_empty() {
            return Err(CoreError::format(path, "no environments"));
        }
        Ok(EnvCovariates {
            path: path.to_path_buf(),
            names: columns.iter().map(|&c| header[c].clone()).collect(),
            envs,
            values,
        })
    }

    /// The covariates' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The rows of `envs`, in that order; an environment without a row is an error naming it.
    pub fn rows_for(&self, envs: &[String]) -> Result<Vec<Vec<f64>>> {
        let at: HashMap<&str, usize> = self.envs.iter().enumerate().map(|(i, e)| (e.as_str(), i)).collect();
        envs.iter()
            .map(|e| {
                at.get(e.as_str()).map(|&i| self.values[i].clone()).ok_or_else(|| {
                    CoreError::format(
                        &self.path,
                        format!(
                            "environment '{e}' of the trial has no row (the file's environments: {})",
                            self.envs.join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// How environmental covariates are standardised for the similarity `Ω`: the covariates kept
/// (those not constant over the environments fitted on), with their means and sds there.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardised {
    /// `(column, mean, sd)` of each covariate kept.
    pub kept: Vec<(usize, f64, f64)>,
}

impl Standardised {
    /// The standardisation over the environments `fitted_on` (rows of `values`); `None` when
    /// every covariate is constant over them.
    pub fn fit(values: &[Vec<f64>], fitted_on: &[usize]) -> Option<Self> {
        let q = values.first().map_or(0, Vec::len);
        let n = fitted_on.len() as f64;
        let kept: Vec<(usize, f64, f64)> = (0..q)
            .filter_map(|j| {
                let mean = fitted_on.iter().map(|&e| values[e][j]).sum::<f64>() / n;
                let var = fitted_on.iter().map(|&e| (values[e][j] - mean).powi(2)).sum::<f64>() / n;
                (var > 1e-12 * mean.abs().max(1.0).powi(2)).then(|| (j, mean, var.sqrt()))
            })
            .collect();
        (!kept.is_empty()).then_some(Standardised { kept })
    }

    /// An environment's row of covariates, standardised.
    pub fn apply(&self, row: &[f64]) -> Vec<f64> {
        self.kept.iter().map(|&(j, mean, sd)| (row[j] - mean) / sd).collect()
    }

    /// `Ω[e, f]` of two standardised rows: `w_e · w_f / q`.
    pub fn similarity(&self, a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / self.kept.len() as f64
    }
}

/// The environments' similarity from their covariates, `Ω = W Wᵀ / q` (Jarquín et al. 2014),
/// over every environment of `values` (rows), with each covariate standardised by its mean and
/// sd over the environments `fitted_on` only (those with training records): a covariate
/// constant over them says nothing and is left out. `None` when none is left.
pub fn similarity(values: &[Vec<f64>], fitted_on: &[usize]) -> Option<Mat<f64>> {
    let st = Standardised::fit(values, fitted_on)?;
    let w: Vec<Vec<f64>> = values.iter().map(|row| st.apply(row)).collect();
    Some(Mat::from_fn(values.len(), values.len(), |e, f| st.similarity(&w[e], &w[f])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<EnvCovariates> {
        EnvCovariates::from_reader(text.as_bytes(), b',', Path::new("w.csv"), "site")
    }

    #[test]
    fn a_table_reads_by_the_environment_column_and_names_what_is_wrong() {
        let t = read("rain,site,heat\n1.5,North,20\n3,South,25\n").unwrap();
        assert_eq!(t.names(), ["rain", "heat"]);
        assert_eq!(t.rows_for(&["South".into(), "North".into()]).unwrap(), vec![vec![3.0, 25.0], vec![1.5, 20.0]]);
        let e = t.rows_for(&["Dry".into()]).unwrap_err().to_string();
        assert!(e.contains("w.csv") && e.contains("environment 'Dry'") && e.contains("North, South"), "{e}");
        // Without a column of that name, the first column holds the environments.
        assert_eq!(read("env,rain\nA,1\n").unwrap().names(), ["rain"]);
        for (text, wants) in [
            ("site,rain\nA,1\nA,2\n", "line 3, column 1: environment 'A' appears twice (first on line 2)"),
            ("site,rain\nA,NA\n", "line 2, column 2: covariate 'rain' of environment 'A': 'NA' is not a number"),
            ("site\nA\n", "no covariate columns"),
            ("site,rain\n", "no environments"),
        ] {
            let e = read(text).unwrap_err().to_string();
            assert!(e.contains("w.csv") && e.contains(wants), "{text:?}: {e}");
        }
    }

    #[test]
    fn similarity_standardises_on_the_trained_environments_and_drops_constant_covariates() {
        // Covariate 0 varies; covariate 1 is constant over the trained environments 0..3.
        let values = vec![vec![1.0, 5.0], vec![2.0, 5.0], vec![3.0, 5.0], vec![10.0, 9.0]];
        let omega = similarity(&values, &[0, 1, 2]).unwrap();
        // Standardised over 0..3: -1.2247, 0, 1.2247; environment 3 at (10 - 2) / 0.8165.
        let z = |v: f64| (v - 2.0) / (2.0f64 / 3.0).sqrt();
        for (e, f) in [(0, 0), (0, 2), (3, 0), (3, 3), (1, 3)] {
            let want = z(values[e][0]) * z(values[f][0]);
            assert!((omega[(e, f)] - want).abs() < 1e-12, "Ω[{e},{f}] {} vs {want}", omega[(e, f)]);
        }
        assert!(similarity(&values, &[0]).is_none(), "one environment: nothing varies");
    }
}
