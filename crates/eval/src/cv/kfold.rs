//! Seeded (repeated) k-fold splits.

use rand::seq::SliceRandom;

use super::{Fold, folds_from_test_sets, seed};
use genopred_data::error::{CoreError, Result};

/// Splits `n` rows into `k` folds of sizes differing by at most one, after a seeded shuffle.
pub fn kfold(n: usize, k: usize, seed: u64) -> Result<Vec<Fold>> {
    split(n, k, seed, 1)
}

/// `repeats` independent k-fold splits; repeat `r` is shuffled with a seed derived from `seed`.
pub fn repeated_kfold(n: usize, k: usize, repeats: usize, seed: u64) -> Result<Vec<Fold>> {
    if repeats == 0 {
        return Err(CoreError::config("repeats", 0, "must be at least 1"));
    }
    let mut all = Vec::new();
    for r in 1..=repeats {
        all.extend(split(n, k, seed::derive_seed(seed, seed::Purpose::Kfold, &[r as u64]), r)?);
    }
    Ok(all)
}

fn split(n: usize, k: usize, seed: u64, repeat: usize) -> Result<Vec<Fold>> {
    if k < 2 {
        return Err(CoreError::config("folds", k, "must be at least 2"));
    }
    if k > n {
        return Err(CoreError::config("folds", k, format!("more folds than samples ({n})")));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seed::rng(seed));
    let mut assignment = vec![0usize; n];
    for (pos, &row) in order.iter().enumerate() {
        assignment[row] = pos % k;
    }
    let sets = (0..k).map(|f| ((f + 1).to_string(), (0..n).filter(|&i| assignment[i] == f).collect())).collect();
    folds_from_test_sets(n, repeat, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_rows_evenly_and_reproducibly() {
        let folds = kfold(23, 5, 7).unwrap();
        assert_eq!(folds.len(), 5);
        let mut seen = [0; 23];
        for f in &folds {
            assert!(f.test.len() == 4 || f.test.len() == 5);
            assert_eq!(f.train.len() + f.test.len(), 23);
            assert!(f.test.iter().all(|t| !f.train.contains(t)));
            for &t in &f.test {
                seen[t] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        assert_eq!(folds, kfold(23, 5, 7).unwrap());
        assert_ne!(folds, kfold(23, 5, 8).unwrap());
    }

    #[test]
    fn repeats_differ_and_bad_counts_are_errors() {
        let folds = repeated_kfold(30, 3, 2, 1).unwrap();
        assert_eq!(folds.len(), 6);
        assert_eq!(folds[3].repeat, 2);
        assert_ne!(folds[0].test, folds[3].test);
        assert!(kfold(5, 6, 1).unwrap_err().to_string().contains("more folds than samples"));
        assert!(kfold(5, 1, 1).is_err());
        assert!(kfold(6, 6, 1).is_ok());
        assert!(kfold(5, 5, 1).unwrap_err().to_string().contains("only 4 sample(s) to train"));
        assert!(repeated_kfold(10, 2, 0, 1).is_err());
    }
}
