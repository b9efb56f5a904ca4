//! The in-memory genotype matrix shared by every reader, encoding and model.

use crate::error::{CoreError, Result};

/// Byte that marks a missing call in [`GenotypeMatrix`].
pub const MISSING: u8 = u8::MAX;

/// Dosages are stored as `round(dosage * DOSAGE_SCALE)` in one byte: hard calls 0/1/2 become
/// 0/100/200, and fractional (imputed) dosages keep two decimals, which is what Beagle's `DS`
/// field and most imputation outputs carry. Larger precision is rounded to the nearest 0.01.
pub const DOSAGE_SCALE: f64 = 100.0;

/// The largest stored code (dosage 2.0).
pub const MAX_CODE: u8 = 200;

/// One marker (SNP, DArT marker ...) and where it lies.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Marker id as written in the input file.
    pub id: String,
    /// Chromosome name (`0` or empty when unknown).
    pub chrom: String,
    /// Base-pair position (0 when unknown).
    pub pos: u64,
    /// The allele whose copies the dosage counts (PLINK A1, VCF ALT).
    pub counted: String,
    /// The other allele (PLINK A2, VCF REF).
    pub other: String,
}

/// Samples × markers genotype dosages, one byte per call (see [`DOSAGE_SCALE`], [`MISSING`]).
///
/// Row-major: the calls of one sample are contiguous, which is the order every encoding and the
/// relationship matrix read them in.
#[derive(Debug, Clone, PartialEq)]
pub struct GenotypeMatrix {
    samples: Vec<String>,
    markers: Vec<Marker>,
    codes: Vec<u8>,
}

impl GenotypeMatrix {
    /// Builds a matrix from sample ids, markers and row-major codes. Checks shapes and code
    /// range, and rejects duplicate sample or marker ids (they would make matching ambiguous).
    pub fn new(samples: Vec<String>, markers: Vec<Marker>, codes: Vec<u8>) -> Result<Self> {
        if codes.len() != samples.len() * markers.len() {
            return Err(CoreError::Data(format!(
                "genotype matrix has {} calls but {} samples × {} markers were declared",
                codes.len(),
                samples.len(),
                markers.len()
            )));
        }
        if let Some(bad) = codes.iter().position(|&c| c > MAX_CODE && c != MISSING) {
            return Err(CoreError::Data(format!(
                "genotype code {} at sample {}, marker {} is out of range",
                codes[bad],
                samples[bad / markers.len().max(1)],
                markers[bad % markers.len().max(1)].id
            )));
        }
        if let Some(dup) = first_duplicate(samples.iter().map(String::as_str)) {
            return Err(CoreError::Data(format!(
                "sample id '{dup}' occurs more than once in the genotype file; ids must be unique"
            )));
        }
        if let Some(dup) = first_duplicate(markers.iter().map(|m| m.id.as_str()).filter(|id| *id != ".")) {
            return Err(CoreError::Data(format!(
                "marker id '{dup}' occurs more than once in the genotype file; ids must be unique"
            )));
        }
        Ok(GenotypeMatrix { samples, markers, codes })
    }

    /// A matrix with generated names — samples `s0, s1, …`, markers `m0, m1, …` on chromosome 1
    /// at positions 0, 1, … with alleles A/C — for simulations, tests and examples.
    pub fn with_generated_names(n_samples: usize, n_markers: usize, codes: Vec<u8>) -> Result<Self> {
        let markers = (0..n_markers)
            .map(|j| Marker {
                id: format!("m{j}"),
                chrom: "1".into(),
                pos: j as u64,
                counted: "A".into(),
                other: "C".into(),
            })
            .collect();
        GenotypeMatrix::new((0..n_samples).map(|i| format!("s{i}")).collect(), markers, codes)
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.samples.len()
    }

    /// Number of markers (columns).
    pub fn n_markers(&self) -> usize {
        self.markers.len()
    }

    /// Sample ids in row order.
    pub fn samples(&self) -> &[String] {
        &self.samples
    }

    /// Markers in column order.
    pub fn markers(&self) -> &[Marker] {
        &self.markers
    }

    /// The raw codes of one sample.
    pub fn row(&self, sample: usize) -> &[u8] {
        let m = self.markers.len();
        &self.codes[sample * m..(sample + 1) * m]
    }

    /// The raw code of one call.
    pub fn code(&self, sample: usize, marker: usize) -> u8 {
        self.codes[sample * self.markers.len() + marker]
    }

    /// The dosage of one call, `None` when missing.
    pub fn dosage(&self, sample: usize, marker: usize) -> Option<f64> {
        code_to_dosage(self.code(sample, marker))
    }

    /// Fraction of missing calls over the whole matrix.
    pub fn missing_rate(&self) -> f64 {
        if self.codes.is_empty() {
            return 0.0;
        }
        self.codes.iter().filter(|&&c| c == MISSING).count() as f64 / self.codes.len() as f64
    }

    /// Keeps only the given rows (in the given order).
    pub fn select_samples(&self, rows: &[usize]) -> GenotypeMatrix {
        let m = self.markers.len();
        let mut codes = Vec::with_capacity(rows.len() * m);
        for &r in rows {
            codes.extend_from_slice(self.row(r));
        }
        GenotypeMatrix {
            samples: rows.iter().map(|&r| self.samples[r].clone()).collect(),
            markers: self.markers.clone(),
            codes,
        }
    }

    /// [`select_samples`](Self::select_samples) for strictly increasing `rows`, compacting the
    /// calls in place: no second copy of the genotypes exists (loading keeps one byte per call
    /// at its peak, not two).
    pub fn retain_samples(mut self, rows: &[usize]) -> GenotypeMatrix {
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]) && rows.last().is_none_or(|&r| r < self.samples.len()),
            "retain_samples needs strictly increasing rows within the matrix"
        );
        let m = self.markers.len();
        for (i, &r) in rows.iter().enumerate() {
            if i != r {
                self.codes.copy_within(r * m..(r + 1) * m, i * m);
            }
        }
        self.codes.truncate(rows.len() * m);
        self.codes.shrink_to_fit();
        let mut samples = std::mem::take(&mut self.samples);
        self.samples = rows.iter().map(|&r| std::mem::take(&mut samples[r])).collect();
        self
    }

    /// Keeps only the given markers (in the given order).
    pub fn select_markers(&self, cols: &[usize]) -> GenotypeMatrix {
        let mut codes = Vec::with_capacity(self.samples.len() * cols.len());
        for s in 0..self.samples.len() {
            let row = self.row(s);
            codes.extend(cols.iter().map(|&c| row[c]));
        }
        GenotypeMatrix {
            samples: self.samples.clone(),
            markers: cols.iter().map(|&c| self.markers[c].clone()).collect(),
            codes,
        }
    }
}

/// Converts a stored code to a dosage.
pub fn code_to_dosage(code: u8) -> Option<f64> {
    (code != MISSING).then(|| f64::from(code) / DOSAGE_SCALE)
}

/// Converts a dosage in `[0, 2]` to its stored code, `None` when out of range or not finite.
pub fn dosage_to_code(dosage: f64) -> Option<u8> {
    if !dosage.is_finite() || !(-1e-9..=2.0 + 1e-9).contains(&dosage) {
        return None;
    }
    Some((dosage * DOSAGE_SCALE).round().clamp(0.0, f64::from(MAX_CODE)) as u8)
}

/// The first value seen twice, if any.
pub(crate) fn first_duplicate<'a>(items: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().find(|item| !seen.insert(*item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(id: &str) -> Marker {
        Marker { id: id.into(), chrom: "1".into(), pos: 1, counted: "A".into(), other: "G".into() }
    }

    #[test]
    fn dosage_codes_round_trip_and_reject_out_of_range() {
        assert_eq!(dosage_to_code(0.0), Some(0));
        assert_eq!(dosage_to_code(1.0), Some(100));
        assert_eq!(dosage_to_code(2.0), Some(200));
        assert_eq!(dosage_to_code(0.987), Some(99));
        assert_eq!(dosage_to_code(2.5), None);
        assert_eq!(dosage_to_code(-0.1), None);
        assert_eq!(dosage_to_code(f64::NAN), None);
        assert_eq!(code_to_dosage(150), Some(1.5));
        assert_eq!(code_to_dosage(MISSING), None);
    }

    #[test]
    fn new_checks_shape_and_duplicates() {
        let ok = GenotypeMatrix::new(vec!["a".into(), "b".into()], vec![marker("m1")], vec![0, 200]);
        assert!(ok.is_ok());
        let shape = GenotypeMatrix::new(vec!["a".into()], vec![marker("m1")], vec![0, 200]);
        assert!(shape.unwrap_err().to_string().contains("2 calls"));
        let dup = GenotypeMatrix::new(vec!["a".into(), "a".into()], vec![marker("m1")], vec![0, 1]);
        assert!(dup.unwrap_err().to_string().contains("sample id 'a'"));
        let dupm = GenotypeMatrix::new(vec!["a".into()], vec![marker("m"), marker("m")], vec![0, 1]);
        assert!(dupm.unwrap_err().to_string().contains("marker id 'm'"));
        let range = GenotypeMatrix::new(vec!["a".into()], vec![marker("m")], vec![201]);
        assert!(range.is_err());
    }

    #[test]
    fn selection_keeps_order() {
        let g = GenotypeMatrix::new(
            vec!["a".into(), "b".into(), "c".into()],
            vec![marker("m1"), marker("m2")],
            vec![0, 100, 200, MISSING, 100, 0],
        )
        .unwrap();
        let s = g.select_samples(&[2, 0]);
        assert_eq!(s.samples(), ["c", "a"]);
        assert_eq!(s.row(0), [100, 0]);
        let kept = g.clone().retain_samples(&[0, 2]);
        assert_eq!(kept, g.select_samples(&[0, 2]));
        assert_eq!(g.clone().retain_samples(&[0, 1, 2]), g);
        assert_eq!(g.clone().retain_samples(&[]).n_samples(), 0);
        let m = g.select_markers(&[1]);
        assert_eq!(m.row(1), [MISSING]);
        assert_eq!(m.markers()[0].id, "m2");
        assert!((g.missing_rate() - 1.0 / 6.0).abs() < 1e-12);
    }
}
