//! Genotypes and one trait matched by sample id: the unit every model trains and is tested on.

use std::collections::HashMap;

use crate::error::{CoreError, Result};
use crate::genotype::GenotypeMatrix;
use crate::phenotype::Phenotypes;

/// The fewest samples with both genotypes and a trait value that cross-validation accepts.
pub const MIN_SAMPLES: usize = 10;

/// How genotype and phenotype ids matched, for the run report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatchReport {
    /// Samples in the genotype file.
    pub genotyped: usize,
    /// Samples in the phenotype file.
    pub phenotyped: usize,
    /// Ids present in both files.
    pub matched: usize,
    /// Matched samples without a value for the trait (dropped for this trait only).
    pub missing_trait: usize,
    /// Samples used: matched and with a trait value.
    pub used: usize,
    /// A few phenotype ids that have no genotypes, to help spot id-format mismatches.
    pub unmatched_examples: Vec<String>,
}

/// Matched genotypes and trait values, in genotype-file order.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Genotypes of the used samples only.
    pub geno: GenotypeMatrix,
    /// Trait value of each row of `geno`.
    pub y: Vec<f64>,
    /// The trait's name.
    pub trait_name: String,
    /// Group label per sample, when grouped cross-validation was asked for.
    pub groups: Option<Vec<String>>,
}

impl Dataset {
    /// Matches `geno` and `pheno` by id and keeps the samples with a value for `trait_name`
    /// (and a label in `group_by`, when given).
    pub fn assemble(
        geno: &GenotypeMatrix,
        pheno: &Phenotypes,
        trait_name: &str,
        group_by: Option<&str>,
    ) -> Result<(Dataset, MatchReport)> {
        let (rows, y, groups, report) = Self::match_rows(geno, pheno, trait_name, group_by)?;
        let dataset = Dataset {
            geno: geno.select_samples(&rows),
            y,
            trait_name: trait_name.to_string(),
            groups: group_by.map(|_| groups),
        };
        Ok((dataset, report))
    }

    /// [`assemble`](Self::assemble) taking the genotypes, whose calls are compacted in place
    /// (no second copy of the data while loading).
    pub fn assemble_owned(
        geno: GenotypeMatrix,
        pheno: &Phenotypes,
        trait_name: &str,
        group_by: Option<&str>,
    ) -> Result<(Dataset, MatchReport)> {
        let (rows, y, groups, report) = Self::match_rows(&geno, pheno, trait_name, group_by)?;
        let dataset = Dataset {
            geno: geno.retain_samples(&rows),
            y,
            trait_name: trait_name.to_string(),
            groups: group_by.map(|_| groups),
        };
        Ok((dataset, report))
    }

    /// The genotype rows (increasing) with a trait value, the values, the group labels, and the
    /// matching report.
    #[allow(clippy::type_complexity)]
    fn match_rows(
        geno: &GenotypeMatrix,
        pheno: &Phenotypes,
        trait_name: &str,
        group_by: Option<&str>,
    ) -> Result<(Vec<usize>, Vec<f64>, Vec<String>, MatchReport)> {
        let values = pheno.trait_values(trait_name)?;
        let labels = group_by.map(|g| pheno.labels(g)).transpose()?;
        let pheno_row: HashMap<&str, usize> = pheno.ids().iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let geno_ids: std::collections::HashSet<&str> = geno.samples().iter().map(String::as_str).collect();

        let mut rows = Vec::new();
        let mut y = Vec::new();
        let mut groups = Vec::new();
        let mut matched = 0;
        let mut missing_trait = 0;
        for (g, id) in geno.samples().iter().enumerate() {
            let Some(&p) = pheno_row.get(id.as_str()) else { continue };
            matched += 1;
            let label = labels.as_ref().map(|l| l[p].clone());
            match (values[p], label) {
                (Some(v), None) => {
                    rows.push(g);
                    y.push(v);
                }
                (Some(v), Some(Some(l))) => {
                    rows.push(g);
                    y.push(v);
                    groups.push(l);
                }
                _ => missing_trait += 1,
            }
        }
        let report = MatchReport {
            genotyped: geno.n_samples(),
            phenotyped: pheno.ids().len(),
            matched,
            missing_trait,
            used: rows.len(),
            unmatched_examples: pheno
                .ids()
                .iter()
                .filter(|id| !geno_ids.contains(id.as_str()))
                .take(3)
                .cloned()
                .collect(),
        };
        if matched == 0 {
            return Err(CoreError::Data(format!(
                "no sample id of {} matches the genotype file (genotype ids look like '{}', phenotype ids like '{}'); \
                 ids must be identical, including case",
                pheno.path().display(),
                geno.samples().first().map(String::as_str).unwrap_or(""),
                pheno.ids().first().map(String::as_str).unwrap_or("")
            )));
        }
        if rows.len() < MIN_SAMPLES {
            return Err(CoreError::Data(format!(
                "only {} sample(s) have both genotypes and a value for '{trait_name}' ({matched} ids matched, \
                 {missing_trait} without a value); at least {MIN_SAMPLES} are needed",
                rows.len()
            )));
        }
        let first = y[0];
        if y.iter().all(|&v| v == first) {
            return Err(CoreError::Data(format!(
                "trait '{trait_name}' has the same value ({first}) for all {} samples; there is nothing to predict",
                y.len()
            )));
        }
        Ok((rows, y, groups, report))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether the dataset has no samples (never true for an assembled one).
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Sample ids in row order.
    pub fn ids(&self) -> &[String] {
        self.geno.samples()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::Marker;
    use crate::phenotype::PhenoOptions;
    use std::path::Path;

    fn geno(n: usize) -> GenotypeMatrix {
        let m = Marker { id: "m".into(), chrom: "1".into(), pos: 1, counted: "A".into(), other: "C".into() };
        GenotypeMatrix::new(
            (0..n).map(|i| format!("s{i}")).collect(),
            vec![m],
            (0..n).map(|i| (i % 3 * 100) as u8).collect(),
        )
        .unwrap()
    }

    fn pheno(text: &str) -> Phenotypes {
        Phenotypes::from_reader(text.as_bytes(), b',', Path::new("p.csv"), &PhenoOptions::default()).unwrap()
    }

    #[test]
    fn matches_by_id_and_drops_missing_trait_only() {
        let mut text = String::from("id,y,fam\n");
        for i in (0..14).rev() {
            let v = if i == 3 { "NA".to_string() } else { format!("{i}") };
            text.push_str(&format!("s{i},{v},F{}\n", i % 2));
        }
        text.push_str("other,1,F1\n");
        let (d, r) = Dataset::assemble(&geno(12), &pheno(&text), "y", Some("fam")).unwrap();
        assert_eq!(r.matched, 12);
        assert_eq!(r.missing_trait, 1);
        assert_eq!(r.used, 11);
        assert_eq!(r.unmatched_examples, ["s13", "s12", "other"]);
        assert_eq!(d.ids()[0], "s0");
        assert_eq!(d.y[3], 4.0);
        assert_eq!(d.groups.as_ref().unwrap()[3], "F0");
        assert_eq!(*d.geno.row(3), [100]);
        // The owned form compacts the same rows in place.
        let (owned, r2) = Dataset::assemble_owned(geno(12), &pheno(&text), "y", Some("fam")).unwrap();
        assert_eq!((owned.geno, owned.y, owned.groups, r2.used), (d.geno, d.y, d.groups, 11));
    }

    #[test]
    fn no_match_too_few_and_constant_are_errors() {
        let err = Dataset::assemble(&geno(12), &pheno("id,y\nX1,1\n"), "y", None).unwrap_err().to_string();
        assert!(err.contains("no sample id") && err.contains("'s0'") && err.contains("'X1'"), "{err}");
        let err = Dataset::assemble(&geno(12), &pheno("id,y\ns1,1\ns2,2\n"), "y", None).unwrap_err().to_string();
        assert!(err.contains("only 2 sample(s)"), "{err}");
        let text: String = std::iter::once("id,y\n".to_string()).chain((0..12).map(|i| format!("s{i},5\n"))).collect();
        let err = Dataset::assemble(&geno(12), &pheno(&text), "y", None).unwrap_err().to_string();
        assert!(err.contains("same value"), "{err}");
        let err = Dataset::assemble(&geno(12), &pheno(&text), "z", None).unwrap_err().to_string();
        assert!(err.contains("no column named 'z'"), "{err}");
    }
}
