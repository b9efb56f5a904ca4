//! Input encodings and checks several architectures share.

use genopred_core::GenotypeMatrix;
use genopred_core::check::{ConfigError, at_least};
use genopred_core::encoding::{DosageEncoder, Scaling};

use crate::arch::Encoded;
use crate::error::TrainError;

/// Refuses genotypes whose marker count differs from the one the encoding was fitted on.
pub fn check_markers(model: &str, fitted: usize, geno: &GenotypeMatrix) -> Result<(), TrainError> {
    if geno.n_markers() == fitted {
        Ok(())
    } else {
        Err(TrainError::Usage(format!(
            "{model} was fitted on {fitted} markers but the genotypes have {}",
            geno.n_markers()
        )))
    }
}

/// Dosages of `rows` as one channel, `[n, 1, markers]`.
pub fn encode_dosage(
    model: &str,
    input: &DosageEncoder,
    geno: &GenotypeMatrix,
    rows: &[usize],
) -> Result<Encoded, TrainError> {
    check_markers(model, input.n_markers(), geno)?;
    Ok(Encoded { data: input.transform_f32(geno, rows), n: rows.len(), channels: 1, length: input.n_markers() })
}

/// Saliency of a one-channel dosage input: `|∂ŷ/∂z| · ∂z/∂dosage`, where standardisation
/// divides the dosage by the training sd and the allele fraction by 2 (raw and centred inputs
/// move one for one).
pub fn dosage_saliency(input: &DosageEncoder, grad: &[f32], n: usize) -> Vec<f32> {
    let m = input.n_markers();
    let mut out = Vec::with_capacity(n * m);
    for i in 0..n {
        out.extend(grad[i * m..(i + 1) * m].iter().zip(&input.sds).map(|(&g, &sd)| match input.scaling {
            Scaling::Standardised => (f64::from(g.abs()) / sd) as f32,
            Scaling::AlleleFraction => g.abs() / 2.0,
            Scaling::Raw | Scaling::Centred => g.abs(),
        }));
    }
    out
}

/// What a dosage input reports in the run's summary.
pub fn describe_dosage(input: &DosageEncoder) -> serde_json::Value {
    serde_json::json!({ "encoding": "dosage", "scaling": input.scaling, "markers": input.n_markers() })
}

/// Checks that every named count is at least 1.
pub fn check_counts(counts: &[(&str, usize)]) -> Result<(), ConfigError> {
    counts.iter().try_for_each(|&(key, value)| at_least(key, value, 1))
}
