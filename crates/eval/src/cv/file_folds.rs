//! Folds read from a file (`id,fold`), e.g. to reproduce a published partition.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{Fold, folds_from_test_sets};
use genopred_data::error::{CoreError, Result};
use genopred_data::readers::dosage_csv::{csv_error, delimiter_for, for_each_record};

/// Reads `id,fold` (header required; delimiter from the extension) and builds one fold per label
/// for the samples `ids` (the dataset's rows). Every dataset sample must have a fold; ids in the
/// file that are not in the dataset are ignored. Labels sort numerically when all are integers.
pub fn folds_from_file(path: &Path, ids: &[String]) -> Result<Vec<Fold>> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter_for(path)).flexible(false).from_reader(file);
    let header: Vec<String> =
        rdr.headers().map_err(|e| csv_error(path, e))?.iter().map(|h| h.trim().to_string()).collect();
    let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (id_col, fold_col) = match (find("id"), find("fold")) {
        (Some(i), Some(f)) => (i, f),
        _ => {
            return Err(CoreError::format(
                path,
                format!("expected columns 'id' and 'fold' in the header, found: {}", header.join(", ")),
            ));
        }
    };
    let mut label_of: HashMap<String, String> = HashMap::new();
    for_each_record(&mut rdr, path, |record, line| {
        let id = record.get(id_col).unwrap_or_default().trim().to_string();
        let label = record.get(fold_col).unwrap_or_default().trim().to_string();
        if label.is_empty() {
            return Err(CoreError::parse(path, line, Some(fold_col + 1), format!("sample '{id}' has an empty fold")));
        }
        if label_of.insert(id.clone(), label).is_some() {
            return Err(CoreError::parse(path, line, Some(id_col + 1), format!("sample '{id}' is listed twice")));
        }
        Ok(())
    })?;
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (row, id) in ids.iter().enumerate() {
        let label = label_of.get(id).ok_or_else(|| {
            CoreError::format(path, format!("sample '{id}' has genotypes and a trait value but no fold in this file"))
        })?;
        members.entry(label.clone()).or_default().push(row);
    }
    labelled_folds(path, ids.len(), members)
}

/// One fold per label of a folds file over `n` rows (labels in numeric order when all are
/// integers), each testing its `members`; at least two.
pub(crate) fn labelled_folds(path: &Path, n: usize, members: BTreeMap<String, Vec<usize>>) -> Result<Vec<Fold>> {
    let mut groups: Vec<(String, Vec<usize>)> = members.into_iter().collect();
    if groups.iter().all(|(l, _)| l.parse::<i64>().is_ok()) {
        groups.sort_by_key(|(l, _)| l.parse::<i64>().unwrap_or_default());
    }
    if groups.len() < 2 {
        return Err(CoreError::format(path, format!("needs at least 2 distinct folds, found {}", groups.len())));
    }
    folds_from_test_sets(n, 1, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    #[test]
    fn builds_folds_in_numeric_label_order() {
        let mut text = String::from("fold,id\n");
        for i in 0..12 {
            text.push_str(&format!("{},s{i}\n", [10, 2, 1][i % 3]));
        }
        text.push_str("1,extra\n");
        let folds = folds_from_file(file(&text).path(), &ids(12)).unwrap();
        assert_eq!(folds.iter().map(|f| f.label.as_str()).collect::<Vec<_>>(), ["1", "2", "10"]);
        assert_eq!(folds[0].test, [2, 5, 8, 11]);
        assert_eq!(folds[2].index, 3);
    }

    #[test]
    fn missing_samples_and_bad_headers_are_errors() {
        let f = file("id,fold\ns0,1\ns1,2\n");
        assert!(folds_from_file(f.path(), &ids(3)).unwrap_err().to_string().contains("'s2'"));
        let f = file("sample,part\ns0,1\n");
        assert!(folds_from_file(f.path(), &ids(1)).unwrap_err().to_string().contains("'id' and 'fold'"));
        let f = file("id,fold\ns0,1\ns0,2\n");
        assert!(folds_from_file(f.path(), &ids(1)).unwrap_err().to_string().contains("line 3"));
    }
}
