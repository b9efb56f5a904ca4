//! Dosage encodings: raw, centred or standardised, with missing calls imputed by the training mean.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, get_global_parallelism};

use crate::genotype::{DOSAGE_SCALE, GenotypeMatrix, MISSING};
use crate::qc::MarkerStats;

/// About this many bytes of decoded (f64) genotypes exist at a time when a model works through
/// the stored codes a block at a time (GBLUP's G and effects, matrix-free passes, blocked PCA):
/// one block, never the n × m matrix (8 bytes per genotype, 5.8 GB at 12,000 × 60,000).
pub const DECODE_BLOCK_BYTES: usize = 64 << 20;

/// Markers per decoded block for `n` lines (at least 256, so blocks stay wide enough for an
/// efficient GEMM).
pub fn markers_per_block(n: usize) -> usize {
    (DECODE_BLOCK_BYTES / (8 * n.max(1))).max(256)
}

/// Lines per decoded block for `m` markers (at least 64).
pub fn lines_per_block(m: usize) -> usize {
    (DECODE_BLOCK_BYTES / (8 * m.max(1))).max(64)
}

/// How dosages are scaled after mean imputation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// Dosage as is (0..2).
    Raw,
    /// Dosage minus the training mean (`x - 2p`, as in VanRaden's Z).
    Centred,
    /// Centred and divided by the training standard deviation.
    Standardised,
    /// The allele fraction, dosage / 2 (0, ½, 1): 0/1 for homozygous or presence/absence
    /// markers (DArT), as data coded 0/1 are fed to a network in the original code.
    #[serde(rename = "allele_fraction")]
    AlleleFraction,
}

/// A fitted dosage encoding: training means (also the imputation values) and standard deviations.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DosageEncoder {
    /// The scaling applied.
    pub scaling: Scaling,
    /// Training mean dosage per marker; missing calls are replaced by it.
    pub means: Vec<f64>,
    /// Training standard deviation per marker (1 where it is 0, so constant markers map to 0).
    pub sds: Vec<f64>,
}

impl DosageEncoder {
    /// Fits means and standard deviations on `rows`.
    pub fn fit(geno: &GenotypeMatrix, rows: &[usize], scaling: Scaling) -> Self {
        let stats = MarkerStats::compute(geno, rows);
        let sds = stats.sd.iter().map(|&s| if s > 0.0 { s } else { 1.0 }).collect();
        DosageEncoder { scaling, means: stats.mean, sds }
    }

    /// Number of markers the encoder was fitted on.
    pub fn n_markers(&self) -> usize {
        self.means.len()
    }

    /// The encoded value of one stored code at marker `j`.
    #[inline]
    pub fn value(&self, code: u8, j: usize) -> f64 {
        let x = if code == MISSING { self.means[j] } else { f64::from(code) / DOSAGE_SCALE };
        match self.scaling {
            Scaling::Raw => x,
            Scaling::Centred => x - self.means[j],
            Scaling::Standardised => (x - self.means[j]) / self.sds[j],
            Scaling::AlleleFraction => x / 2.0,
        }
    }

    /// Encodes `rows` into a `rows × markers` matrix.
    pub fn transform(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Mat<f64> {
        assert_eq!(geno.n_markers(), self.n_markers(), "encoder fitted on a different marker set");
        let mut out = Mat::<f64>::zeros(rows.len(), self.n_markers());
        let mut buf = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            for (j, &c) in geno.calls(r, 0..self.n_markers(), &mut buf).iter().enumerate() {
                out[(i, j)] = self.value(c, j);
            }
        }
        out
    }

    /// Encodes `rows` at the markers `markers` (a block of columns) into a
    /// `rows × markers.len()` matrix: what [`transform`](Self::transform) gives for those
    /// columns, for models that work through the markers a block at a time.
    pub fn transform_markers(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        markers: std::ops::Range<usize>,
    ) -> Mat<f64> {
        assert_eq!(geno.n_markers(), self.n_markers(), "encoder fitted on a different marker set");
        assert!(markers.end <= self.n_markers(), "markers {markers:?} beyond {}", self.n_markers());
        let mut out = Mat::<f64>::zeros(rows.len(), markers.len());
        let mut buf = Vec::new();
        for (i, &r) in rows.iter().enumerate() {
            for (k, &c) in geno.calls(r, markers.clone(), &mut buf).iter().enumerate() {
                out[(i, k)] = self.value(c, markers.start + k);
            }
        }
        out
    }

    /// [`transform_markers`](Self::transform_markers) transposed: a `markers.len() × rows`
    /// matrix, one column per sample (each sample's calls are contiguous in the genotypes and
    /// in this column-major result, so it is the cheaper one to build for many samples).
    pub fn transform_markers_t(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        markers: std::ops::Range<usize>,
    ) -> Mat<f64> {
        let mut out = Mat::<f64>::zeros(markers.len(), rows.len());
        self.transform_markers_t_into(geno, rows, markers, out.as_mut());
        out
    }

    /// [`transform_markers_t`](Self::transform_markers_t) into `out` (`markers.len() × rows`,
    /// column-major), so that a caller decoding block after block reuses one buffer.
    pub fn transform_markers_t_into(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        markers: std::ops::Range<usize>,
        out: faer::MatMut<'_, f64>,
    ) {
        use rayon::prelude::*;
        assert_eq!(geno.n_markers(), self.n_markers(), "encoder fitted on a different marker set");
        assert!(markers.end <= self.n_markers(), "markers {markers:?} beyond {}", self.n_markers());
        assert_eq!((out.nrows(), out.ncols()), (markers.len(), rows.len()), "output of the wrong shape");
        // Stored code → dosage, the same division `value` does, once per code instead of once
        // per call (the centred case, which GBLUP and PCA decode many times).
        let dosage: Vec<f64> = (0..=u8::MAX).map(|c| f64::from(c) / DOSAGE_SCALE).collect();
        let means = &self.means[markers.clone()];
        // Samples are decoded in parallel (rayon's current pool: the job's threads under
        // `--jobs`); every value is computed alone, so the result does not depend on the threads.
        const SAMPLES_PER_TASK: usize = 64;
        out.par_col_chunks_mut(SAMPLES_PER_TASK).enumerate().for_each(|(chunk, mut columns)| {
            for i in 0..columns.ncols() {
                let r = rows[chunk * SAMPLES_PER_TASK + i];
                let mut column = columns.as_mut().col_mut(i);
                let column = column.as_mut().try_as_col_major_mut().expect("the output is column-major").as_slice_mut();
                if self.scaling == Scaling::Centred {
                    geno.decode_into(r, markers.clone(), column, |k, c| {
                        if c == MISSING { 0.0 } else { dosage[usize::from(c)] - means[k] }
                    });
                } else {
                    geno.decode_into(r, markers.clone(), column, |k, c| self.value(c, markers.start + k));
                }
            }
        });
    }

    /// `Z Zᵀ` (rows × rows) of the encoded `rows`, accumulated over blocks of `block` markers
    /// (`Σ_b Z_b Z_bᵀ`; one block when the markers fit in one, which is exactly `Z Zᵀ`), so the
    /// decoded genotypes held at a time are one block, not the n × m matrix.
    pub fn gram_of_rows(&self, geno: &GenotypeMatrix, rows: &[usize], block: usize) -> Mat<f64> {
        let (n, m) = (rows.len(), self.n_markers());
        let mut g = Mat::<f64>::zeros(n, n);
        for (k, start) in (0..m).step_by(block.max(1)).enumerate() {
            let z = self.transform_markers(geno, rows, start..(start + block).min(m));
            let accum = if k == 0 { Accum::Replace } else { Accum::Add };
            matmul(g.as_mut(), accum, z.as_ref(), z.transpose(), 1.0, get_global_parallelism());
        }
        g
    }

    /// `Zᵀ Z` (markers × markers) of the encoded `rows`, accumulated over blocks of
    /// `rows_per_block` lines.
    pub fn gram_of_markers(&self, geno: &GenotypeMatrix, rows: &[usize], rows_per_block: usize) -> Mat<f64> {
        let m = self.n_markers();
        let mut g = Mat::<f64>::zeros(m, m);
        for (k, chunk) in rows.chunks(rows_per_block.max(1)).enumerate() {
            let zt = self.transform_markers_t(geno, chunk, 0..m);
            let accum = if k == 0 { Accum::Replace } else { Accum::Add };
            matmul(g.as_mut(), accum, zt.as_ref(), zt.transpose(), 1.0, get_global_parallelism());
        }
        g
    }

    /// A linear model's predictions `intercept + Σⱼ value(xⱼ) effectsⱼ` for `rows` (GBLUP's and
    /// BayesB's marker effects); an error when the genotypes or effects have another marker count.
    pub fn linear(
        &self,
        geno: &GenotypeMatrix,
        rows: &[usize],
        intercept: f64,
        effects: &[f64],
    ) -> std::result::Result<Vec<f64>, String> {
        if geno.n_markers() != effects.len() || effects.len() != self.n_markers() {
            return Err(format!(
                "model was fitted on {} markers but the genotypes have {}",
                effects.len(),
                geno.n_markers()
            ));
        }
        let mut buf = Vec::new();
        Ok(rows
            .iter()
            .map(|&r| {
                let calls = geno.calls(r, 0..geno.n_markers(), &mut buf);
                intercept + calls.iter().enumerate().map(|(j, &c)| self.value(c, j) * effects[j]).sum::<f64>()
            })
            .collect())
    }

    /// Encodes `rows` into a row-major `f32` buffer (what tensors are built from).
    pub fn transform_f32(&self, geno: &GenotypeMatrix, rows: &[usize]) -> Vec<f32> {
        let m = self.n_markers();
        let mut out = vec![0f32; rows.len() * m];
        for (&r, row) in rows.iter().zip(out.chunks_exact_mut(m.max(1))) {
            geno.decode_into(r, 0..m, row, |j, c| self.value(c, j) as f32);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::Marker;

    fn geno() -> GenotypeMatrix {
        let markers = (0..2)
            .map(|j| Marker { id: format!("m{j}"), chrom: "1".into(), pos: j, counted: "A".into(), other: "C".into() })
            .collect();
        GenotypeMatrix::new(
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
            markers,
            vec![0, 100, 200, 100, MISSING, 100, 200, 200],
        )
        .unwrap()
    }

    #[test]
    fn fit_uses_training_rows_and_imputes_their_mean() {
        let g = geno();
        let enc = DosageEncoder::fit(&g, &[0, 1], Scaling::Centred);
        assert_eq!(enc.means, [1.0, 1.0]);
        let x = enc.transform(&g, &[2, 3]);
        // Row c: marker 0 missing -> training mean -> centred 0.
        assert_eq!((x[(0, 0)], x[(0, 1)]), (0.0, 0.0));
        assert_eq!((x[(1, 0)], x[(1, 1)]), (1.0, 1.0));
        let raw = DosageEncoder::fit(&g, &[0, 1], Scaling::Raw).transform(&g, &[2]);
        assert_eq!(raw[(0, 0)], 1.0);
        let std = DosageEncoder::fit(&g, &[0, 1], Scaling::Standardised);
        assert_eq!(std.sds, [1.0, 1.0]);
        assert_eq!(std.transform(&g, &[3])[(0, 0)], 1.0);
        let std_all = DosageEncoder::fit(&g, &[0, 1, 3], Scaling::Standardised);
        let z = std_all.transform(&g, &[0, 1, 3]);
        let col_mean: f64 = (0..3).map(|i| z[(i, 0)]).sum::<f64>() / 3.0;
        let col_var: f64 = (0..3).map(|i| z[(i, 0)] * z[(i, 0)]).sum::<f64>() / 3.0;
        assert!(col_mean.abs() < 1e-12 && (col_var - 1.0).abs() < 1e-12);
        assert_eq!(enc.transform_f32(&g, &[3]), vec![1.0f32, 1.0]);
        let block = std_all.transform_markers(&g, &[0, 1, 3], 1..2);
        assert_eq!(block.ncols(), 1);
        assert!((0..3).all(|i| block[(i, 0)] == z[(i, 1)]));
        // Allele fraction: dosage / 2; a missing call takes half the training mean.
        let frac = DosageEncoder::fit(&g, &[0, 1], Scaling::AlleleFraction).transform(&g, &[0, 2, 3]);
        assert_eq!([frac[(0, 0)], frac[(0, 1)], frac[(1, 0)], frac[(2, 0)]], [0.0, 0.5, 0.5, 1.0]);
        let parsed: Scaling = serde_json::from_str("\"allele_fraction\"").unwrap();
        assert_eq!(parsed, Scaling::AlleleFraction);
    }

    #[test]
    fn the_transposed_blocks_are_the_transform_bit_for_bit() {
        // 150 samples (three parallel tasks of 64), fractional dosages and missing calls.
        let codes: Vec<u8> = (0..150 * 7).map(|i| if i % 11 == 3 { MISSING } else { ((i * 37) % 201) as u8 }).collect();
        let g = GenotypeMatrix::with_generated_names(150, 7, codes).unwrap();
        let rows: Vec<usize> = (0..150).rev().filter(|i| i % 4 != 1).collect();
        for scaling in [Scaling::Raw, Scaling::Centred, Scaling::Standardised, Scaling::AlleleFraction] {
            let enc = DosageEncoder::fit(&g, &rows[..90], scaling);
            let whole = enc.transform(&g, &rows);
            let block = enc.transform_markers_t(&g, &rows, 2..6);
            assert_eq!((block.nrows(), block.ncols()), (4, rows.len()));
            for i in 0..rows.len() {
                for k in 0..4 {
                    assert_eq!(block[(k, i)].to_bits(), whole[(i, k + 2)].to_bits(), "{scaling:?} ({i}, {k})");
                }
            }
        }
    }

    #[test]
    fn constant_marker_encodes_to_zero_not_nan() {
        let g = geno();
        let enc = DosageEncoder::fit(&g, &[1, 2], Scaling::Standardised);
        let x = enc.transform(&g, &[0, 1, 2, 3]);
        assert!((0..4).all(|i| x[(i, 1)].is_finite()));
    }
}
