//! The cross-validation schemes breeders use for multi-environment trials (Burgueño et al. 2012,
//! Crop Science 52:707; Jarquín et al. 2017, Crop Science 57:2399), over the records of a
//! [`Trials`]:
//!
//! - **CV1**, new lines: every record of a line is in the same fold, so a test line was observed
//!   in no environment.
//! - **CV2**, incomplete trials: records are split, a line's records over different folds where
//!   it has no more records than there are folds, so a test record's line is usually observed in
//!   other environments.
//! - **CV0**, a new environment: each fold is one environment, trained on all the others.
//! - **CV00**, new lines in a new environment: for each environment and each of `k` folds of
//!   lines, the test records are those lines' records in that environment, and training uses
//!   only the other lines' records in the other environments.
//!
//! Every split is seeded; the folds are [`Fold`]s of record indices (CV00's training sets leave
//! out the records that are neither trained on nor tested).

use std::collections::HashMap;
use std::path::Path;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::{Fold, check_folds, seed};
use genopred_data::error::{CoreError, Result};
use genopred_data::readers::dosage_csv::{csv_error, delimiter_for, for_each_record};
use genopred_data::trials::Trials;

/// A cross-validation scheme for multi-environment trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// New lines.
    Cv1,
    /// Incomplete trials (lines observed elsewhere).
    Cv2,
    /// A new environment.
    Cv0,
    /// New lines in a new environment.
    Cv00,
}

impl std::str::FromStr for Scheme {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cv1" => Ok(Scheme::Cv1),
            "cv2" => Ok(Scheme::Cv2),
            "cv0" => Ok(Scheme::Cv0),
            "cv00" => Ok(Scheme::Cv00),
            _ => Err(CoreError::config("scheme", s, "must be one of cv1, cv2, cv0, cv00")),
        }
    }
}

/// Each record's line as an index into `trials.lines()`.
fn line_codes(trials: &Trials) -> (usize, Vec<usize>) {
    let lines = trials.lines();
    let index: std::collections::HashMap<&str, usize> =
        lines.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    (lines.len(), trials.records().iter().map(|r| index[r.line.as_str()]).collect())
}

/// Lines shuffled with `seed` and dealt into `k` folds: each line's fold.
fn line_folds(n_lines: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n_lines).collect();
    order.shuffle(&mut seed::rng(seed));
    let mut fold = vec![0; n_lines];
    for (pos, &line) in order.iter().enumerate() {
        fold[line] = pos % k;
    }
    fold
}

fn check_k(k: usize, n: usize, what: &str) -> Result<()> {
    if k < 2 {
        return Err(CoreError::config("folds", k, "must be at least 2"));
    }
    if k > n {
        return Err(CoreError::config("folds", k, format!("more folds than {what} ({n})")));
    }
    Ok(())
}

/// Folds of `scheme` over the records of `trials`: `k` folds for CV1 and CV2, one per
/// environment for CV0 (`k` unused), one per environment and fold of lines for CV00. `repeat`
/// (1-based) goes into each fold; `seed` is that repeat's.
pub fn trial_folds(trials: &Trials, scheme: Scheme, k: usize, repeat: usize, seed: u64) -> Result<Vec<Fold>> {
    let n = trials.records().len();
    let (n_lines, line) = line_codes(trials);
    let envs = trials.envs();
    let env: Vec<usize> = trials.records().iter().map(|r| r.env).collect();
    let partition = |labels: Vec<String>, fold_of: &dyn Fn(usize) -> usize| -> Vec<Fold> {
        labels
            .into_iter()
            .enumerate()
            .map(|(f, label)| Fold {
                repeat,
                index: f + 1,
                label,
                train: (0..n).filter(|&r| fold_of(r) != f).collect(),
                test: (0..n).filter(|&r| fold_of(r) == f).collect(),
            })
            .collect()
    };
    let numbered = |k: usize| (1..=k).map(|f| f.to_string()).collect::<Vec<_>>();
    let two_environments = |name: &str| -> Result<()> {
        if envs.len() < 2 {
            return Err(CoreError::Data(format!(
                "{}: {name} leaves one environment out, and the trial has {} environment(s)",
                trials.path().display(),
                envs.len()
            )));
        }
        Ok(())
    };
    let folds = match scheme {
        Scheme::Cv1 => {
            check_k(k, n_lines, "lines")?;
            let fold = line_folds(n_lines, k, seed);
            partition(numbered(k), &|r| fold[line[r]])
        }
        Scheme::Cv2 => {
            check_k(k, n, "records")?;
            let mut rng = seed::rng(seed);
            let mut order: Vec<usize> = (0..n_lines).collect();
            order.shuffle(&mut rng);
            let mut records_of: Vec<Vec<usize>> = vec![Vec::new(); n_lines];
            for r in 0..n {
                records_of[line[r]].push(r);
            }
            // Each line's records go to consecutive folds from a running position: spread over
            // distinct folds (up to k records a line), and folds of sizes within one.
            let mut fold = vec![0; n];
            let mut next = 0;
            for l in order {
                let mut records = std::mem::take(&mut records_of[l]);
                records.shuffle(&mut rng);
                for r in records {
                    fold[r] = next % k;
                    next += 1;
                }
            }
            partition(numbered(k), &|r| fold[r])
        }
        Scheme::Cv0 => {
            two_environments("CV0")?;
            partition(envs.to_vec(), &|r| env[r])
        }
        Scheme::Cv00 => {
            two_environments("CV00")?;
            check_k(k, n_lines, "lines")?;
            let fold = line_folds(n_lines, k, seed);
            let mut folds = Vec::new();
            for (e, name) in envs.iter().enumerate() {
                for f in 0..k {
                    let test: Vec<usize> = (0..n).filter(|&r| env[r] == e && fold[line[r]] == f).collect();
                    if test.is_empty() {
                        continue; // none of this fold's lines was tested in this environment
                    }
                    let train = (0..n).filter(|&r| env[r] != e && fold[line[r]] != f).collect();
                    folds.push(Fold {
                        repeat,
                        index: folds.len() + 1,
                        label: format!("{name}/{}", f + 1),
                        train,
                        test,
                    });
                }
            }
            folds
        }
    };
    check_folds(&folds)?;
    Ok(folds)
}

/// Folds of a trial's records read from a file: `id,fold` puts every record of a line in its
/// line's fold (new lines, as CV1), `id,ENV,fold` (the environment column named as in the
/// trial, or `env`) puts each record in its own. Every record must have a fold; rows of lines
/// or environments the trial does not have are ignored. Labels sort numerically when all are
/// integers.
pub fn trial_folds_from_file(path: &Path, trials: &Trials) -> Result<Vec<Fold>> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter_for(path)).flexible(false).from_reader(file);
    let header: Vec<String> =
        rdr.headers().map_err(|e| csv_error(path, e))?.iter().map(|h| h.trim().to_string()).collect();
    let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_col), Some(fold_col)) = (find("id"), find("fold")) else {
        return Err(CoreError::format(
            path,
            format!(
                "expected columns 'id' and 'fold' (and optionally the environment) in the header, found: {}",
                header.join(", ")
            ),
        ));
    };
    let env_col = find(trials.env_name()).or_else(|| find("env"));
    let mut label_of: HashMap<(String, Option<String>), String> = HashMap::new();
    for_each_record(&mut rdr, path, |record, line| {
        let id = record.get(id_col).unwrap_or_default().trim().to_string();
        let env = env_col.map(|c| record.get(c).unwrap_or_default().trim().to_string());
        let label = record.get(fold_col).unwrap_or_default().trim().to_string();
        if label.is_empty() {
            return Err(CoreError::parse(path, line, Some(fold_col + 1), format!("line '{id}' has an empty fold")));
        }
        let what = match &env {
            Some(e) => format!("line '{id}' in '{e}'"),
            None => format!("line '{id}'"),
        };
        if label_of.insert((id, env), label).is_some() {
            return Err(CoreError::parse(path, line, Some(id_col + 1), format!("{what} is listed twice")));
        }
        Ok(())
    })?;
    let mut members: std::collections::BTreeMap<String, Vec<usize>> = std::collections::BTreeMap::new();
    for (r, rec) in trials.records().iter().enumerate() {
        let env = &trials.envs()[rec.env];
        let key = (rec.line.clone(), env_col.map(|_| env.clone()));
        let label = label_of.get(&key).ok_or_else(|| {
            CoreError::format(path, format!("the record of line '{}' in '{env}' has no fold in this file", rec.line))
        })?;
        members.entry(label.clone()).or_default().push(r);
    }
    super::file_folds::labelled_folds(path, trials.records().len(), members)
}

/// [`trial_folds`] for `repeats` repeats, each with a seed derived from `seed`.
pub fn repeated_trial_folds(trials: &Trials, scheme: Scheme, k: usize, repeats: usize, seed: u64) -> Result<Vec<Fold>> {
    if repeats == 0 {
        return Err(CoreError::config("repeats", 0, "must be at least 1"));
    }
    let mut all = Vec::new();
    for r in 1..=repeats {
        all.extend(trial_folds(trials, scheme, k, r, seed::derive_seed(seed, seed::Purpose::Kfold, &[r as u64]))?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use genopred_data::trials::TrialOptions;

    #[test]
    fn folds_from_a_file_by_line_or_by_record() {
        let t = trial();
        let dir = tempfile::tempdir().unwrap();
        let by_line = dir.path().join("lines.csv");
        let mut text = String::from("id,fold\nunknown,1\n");
        (0..30).for_each(|i| text.push_str(&format!("L{i},{}\n", 1 + i % 3)));
        std::fs::write(&by_line, &text).unwrap();
        let folds = trial_folds_from_file(&by_line, &t).unwrap();
        assert_eq!(folds.len(), 3);
        for f in &folds {
            let test_lines: HashSet<&str> = f.test.iter().map(|&r| t.records()[r].line.as_str()).collect();
            assert!(f.train.iter().all(|&r| !test_lines.contains(t.records()[r].line.as_str())), "a line in one fold");
        }
        let by_record = dir.path().join("records.csv");
        let mut text = String::from("env,id,fold\n");
        for r in t.records() {
            text.push_str(&format!("{},{},{}\n", t.envs()[r.env], r.line, if r.env == 3 { 2 } else { 1 }));
        }
        std::fs::write(&by_record, &text).unwrap();
        let folds = trial_folds_from_file(&by_record, &t).unwrap();
        assert!(folds[1].test.iter().all(|&r| t.records()[r].env == 3));
        let missing = dir.path().join("missing.csv");
        std::fs::write(&missing, "id,fold\nL0,1\nL1,2\n").unwrap();
        let e = trial_folds_from_file(&missing, &t).unwrap_err().to_string();
        assert!(e.contains("missing.csv") && e.contains("the record of line 'L2' in 'E2' has no fold"), "{e}");
        std::fs::write(&missing, "id,fold\nL0,1\nL0,2\n").unwrap();
        let e = trial_folds_from_file(&missing, &t).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("line 'L0' is listed twice"), "{e}");
    }

    /// 30 lines in 4 environments, unbalanced: line i is tested in environments (i % 4) and up.
    fn trial() -> Trials {
        let mut text = String::from("id,env,y\n");
        for i in 0..30 {
            for e in (i % 4)..4 {
                text.push_str(&format!("L{i},E{e},{}\n", i + e));
            }
        }
        let options = TrialOptions { env_column: "env".into(), trait_name: "y".into(), ..Default::default() };
        Trials::from_reader(text.as_bytes(), b',', Path::new("t.csv"), &options).unwrap()
    }

    fn lines_of(t: &Trials, rows: &[usize]) -> HashSet<String> {
        rows.iter().map(|&r| t.records()[r].line.clone()).collect()
    }

    fn envs_of(t: &Trials, rows: &[usize]) -> HashSet<usize> {
        rows.iter().map(|&r| t.records()[r].env).collect()
    }

    fn tested_once(folds: &[Fold], n: usize) {
        let mut seen = vec![0; n];
        folds.iter().flat_map(|f| &f.test).for_each(|&r| seen[r] += 1);
        assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
    }

    #[test]
    fn cv1_keeps_a_lines_records_together() {
        let t = trial();
        let folds = trial_folds(&t, Scheme::Cv1, 5, 1, 3).unwrap();
        assert_eq!(folds.len(), 5);
        tested_once(&folds, t.records().len());
        for f in &folds {
            assert!(lines_of(&t, &f.test).is_disjoint(&lines_of(&t, &f.train)), "fold {}", f.label);
            assert_eq!(lines_of(&t, &f.test).len(), 6);
        }
        assert_eq!(folds, trial_folds(&t, Scheme::Cv1, 5, 1, 3).unwrap());
        assert_ne!(folds, trial_folds(&t, Scheme::Cv1, 5, 1, 4).unwrap());
    }

    #[test]
    fn cv2_spreads_a_lines_records_over_folds() {
        let t = trial();
        let folds = trial_folds(&t, Scheme::Cv2, 4, 1, 3).unwrap();
        tested_once(&folds, t.records().len());
        let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        for f in &folds {
            // Every test record of a line with several records has that line in training.
            for &r in &f.test {
                let line = &t.records()[r].line;
                let records = t.records().iter().filter(|x| &x.line == line).count();
                if records > 1 {
                    assert!(lines_of(&t, &f.train).contains(line), "{line} in fold {}", f.label);
                }
            }
        }
    }

    #[test]
    fn cv0_leaves_each_environment_out() {
        let t = trial();
        let folds = trial_folds(&t, Scheme::Cv0, 10, 1, 3).unwrap();
        let labels: Vec<&str> = folds.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(labels, ["E0", "E1", "E2", "E3"]);
        tested_once(&folds, t.records().len());
        for (e, f) in folds.iter().enumerate() {
            assert_eq!(envs_of(&t, &f.test), HashSet::from([e]));
            assert!(!envs_of(&t, &f.train).contains(&e));
        }
    }

    #[test]
    fn cv00_tests_new_lines_in_a_new_environment() {
        let t = trial();
        let folds = trial_folds(&t, Scheme::Cv00, 3, 1, 3).unwrap();
        assert_eq!(folds.len(), 12);
        tested_once(&folds, t.records().len());
        for f in &folds {
            assert!(lines_of(&t, &f.test).is_disjoint(&lines_of(&t, &f.train)), "{}", f.label);
            assert!(envs_of(&t, &f.test).is_disjoint(&envs_of(&t, &f.train)), "{}", f.label);
            assert_eq!(envs_of(&t, &f.test).len(), 1);
        }
    }

    #[test]
    fn impossible_schemes_are_errors() {
        let t = trial();
        assert!(trial_folds(&t, Scheme::Cv1, 31, 1, 3).unwrap_err().to_string().contains("more folds than lines (30)"));
        let one = "id,env,y\na,E,1\nb,E,2\nc,E,3\nd,E,4\ne,E,5\nf,E,6\n";
        let options = TrialOptions { env_column: "env".into(), trait_name: "y".into(), ..Default::default() };
        let single = Trials::from_reader(one.as_bytes(), b',', Path::new("one.csv"), &options).unwrap();
        let e = trial_folds(&single, Scheme::Cv0, 2, 1, 3).unwrap_err().to_string();
        assert_eq!(e, "one.csv: CV0 leaves one environment out, and the trial has 1 environment(s)");
        assert_eq!("CV00".parse::<Scheme>().unwrap(), Scheme::Cv00);
        assert!("cv3".parse::<Scheme>().is_err());
        let repeated = repeated_trial_folds(&t, Scheme::Cv2, 4, 2, 9).unwrap();
        assert_eq!(repeated.len(), 8);
        assert_ne!(repeated[0].test, repeated[4].test);
    }
}
