//! Leave-one-group-out folds from a label per sample (family, tester, population ...).

use std::collections::BTreeMap;

use super::{Fold, folds_from_test_sets};
use genopred_data::error::{CoreError, Result};

/// One fold per distinct group, in sorted group order: the group's samples are the test set.
pub fn grouped_folds(groups: &[String]) -> Result<Vec<Fold>> {
    let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        members.entry(g.as_str()).or_default().push(i);
    }
    if members.len() < 2 {
        return Err(CoreError::Data(format!(
            "grouped cross-validation needs at least 2 groups, found {}",
            members.len()
        )));
    }
    let sets = members.into_iter().map(|(label, test)| (label.to_string(), test)).collect();
    folds_from_test_sets(groups.len(), 1, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fold_per_group() {
        let groups: Vec<String> =
            ["b", "a", "b", "c", "a", "a", "c", "b", "a", "c"].iter().map(|s| s.to_string()).collect();
        let folds = grouped_folds(&groups).unwrap();
        assert_eq!(folds.iter().map(|f| f.label.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(folds[0].test, [1, 4, 5, 8]);
        assert_eq!(folds[0].train.len(), 6);
        let one: Vec<String> = vec!["a".into(); 10];
        assert!(grouped_folds(&one).unwrap_err().to_string().contains("at least 2 groups"));
    }
}
