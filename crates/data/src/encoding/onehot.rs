//! One-hot genotype classes, as DLGWAS feeds them: four channels for dosage 0, 1, 2 and missing.

use crate::genotype::{GenotypeMatrix, MISSING};

/// One-hot encoder with four classes per marker: 0, 1, 2 copies, and missing. Fractional
/// dosages are rounded to the nearest class. It has no fitted state beyond the marker count;
/// `fit` exists so that every encoding is used the same way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneHotEncoder {
    /// Number of markers.
    pub n_markers: usize,
}

/// Number of channels (classes) per marker.
pub const CHANNELS: usize = 4;

impl OneHotEncoder {
    /// "Fits" on the training rows (records the marker count).
    pub fn fit(geno: &GenotypeMatrix, _rows: &[usize]) -> Self {
        OneHotEncoder { n_markers: geno.n_markers() }
    }

    /// The class (0..4) of a stored code.
    #[inline]
    pub fn class(code: u8) -> usize {
        if code == MISSING { 3 } else { ((f64::from(code) / crate::genotype::DOSAGE_SCALE).round() as usize).min(2) }
    }

    /// Encodes `rows` as a row-major `[rows, 4, markers]` buffer (channels first, as conv1d wants).
    pub fn transform(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Vec<f32> {
        assert_eq!(geno.n_markers(), self.n_markers, "encoder fitted on a different marker set");
        let m = self.n_markers;
        let mut out = vec![0f32; rows.len() * CHANNELS * m];
        let mut buf = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            let base = i * CHANNELS * m;
            for (j, &c) in geno.calls(r, 0..m, &mut buf).iter().enumerate() {
                out[base + Self::class(c) * m + j] = 1.0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::Marker;

    #[test]
    fn four_channels_one_hot() {
        let markers = (0..3)
            .map(|j| Marker { id: format!("m{j}"), chrom: "1".into(), pos: j, counted: "A".into(), other: "C".into() })
            .collect();
        let g =
            GenotypeMatrix::new(vec!["a".into(), "b".into()], markers, vec![0, 100, MISSING, 200, 160, 40]).unwrap();
        let enc = OneHotEncoder::fit(&g, &[0]);
        let x = enc.transform(&g, &[0, 1]);
        assert_eq!(x.len(), 2 * 4 * 3);
        // sample a: classes 0, 1, missing
        assert_eq!(&x[0..12], &[1., 0., 0., 0., 1., 0., 0., 0., 0., 0., 0., 1.]);
        // sample b: classes 2, 2 (1.6 rounds up), 0 (0.4 rounds down)
        assert_eq!(&x[12..24], &[0., 0., 1., 0., 0., 0., 1., 1., 0., 0., 0., 0.]);
        for i in 0..2 {
            for j in 0..3 {
                let s: f32 = (0..4).map(|c| x[i * 12 + c * 3 + j]).sum();
                assert_eq!(s, 1.0);
            }
        }
    }
}
