use genopred_core::{FitContext, FitInfo, GenotypeMatrix, Marker, ModelError, Predictor, Quiet, TrainSet};
use rand::{Rng, SeedableRng};

use super::*;

/// What each member's fit saw: its training rows, and whether it got the validation subset.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Vec<usize>, bool)>>>;

/// Predicts the dosage of one marker (a member that is right, or one that is noise), and records
/// which rows it was fitted on and whether it saw the validation subset.
struct OneMarker {
    marker: usize,
    wants_valid: bool,
    saw: Seen,
}

impl Predictor for OneMarker {
    fn name(&self) -> &str {
        "one_marker"
    }
    fn wants_validation(&self) -> bool {
        self.wants_valid
    }
    fn fit(&mut self, t: &TrainSet<'_>, v: Option<&TrainSet<'_>>, _c: &FitContext<'_>) -> Result<FitInfo, ModelError> {
        self.saw.lock().unwrap().push((t.rows.to_vec(), v.is_some()));
        Ok(FitInfo::default())
    }
    fn predict(&self, g: &GenotypeMatrix, rows: &[usize]) -> Result<Vec<f64>, ModelError> {
        Ok(rows.iter().map(|&r| g.dosage(r, self.marker).unwrap_or(1.0)).collect())
    }
}

fn data(n: usize) -> (GenotypeMatrix, Vec<f64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let codes: Vec<u8> = (0..n * 2).map(|_| rng.random_range(0..3u8)).collect();
    let markers = (0..2)
        .map(|j| Marker {
            id: format!("m{j}"),
            chrom: "1".into(),
            pos: j as u64,
            counted: "A".into(),
            other: "C".into(),
        })
        .collect();
    let g = GenotypeMatrix::new((0..n).map(|i| format!("s{i}")).collect(), markers, codes).unwrap();
    // The trait follows marker 0 (plus a little noise to break ties).
    let y = (0..n).map(|i| g.dosage(i, 0).unwrap() + rng.random_range(-0.1..0.1)).collect();
    (g, y)
}

#[test]
fn weights_favour_the_right_member_and_come_from_the_validation_rows_only() {
    let (g, y) = data(200);
    let saw: Seen = Default::default();
    let member = |marker, wants_valid| Member {
        name: format!("m{marker}"),
        model: Box::new(OneMarker { marker, wants_valid, saw: saw.clone() }),
        config_toml: String::new(),
    };
    let config = EnsembleConfig { top_percent: 10.0, ..EnsembleConfig::default() };
    let mut e = Ensemble::new(config.clone(), vec![member(0, true), member(1, false)]).unwrap();
    let fit_rows: Vec<usize> = (0..120).collect();
    let valid_rows: Vec<usize> = (120..160).collect();
    let pick = |rows: &[usize]| rows.iter().map(|&r| y[r]).collect::<Vec<_>>();
    let (yf, yv) = (pick(&fit_rows), pick(&valid_rows));
    let train = TrainSet { geno: &g, rows: &fit_rows, y: &yf };
    let valid = TrainSet { geno: &g, rows: &valid_rows, y: &yv };
    let ctx = FitContext { seed: 4, genotyped_rows: &[], observer: &Quiet, shared: None };
    let info = e.fit(&train, Some(&valid), &ctx).unwrap();
    let w = e.weights().unwrap().to_vec();
    assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(w[0] > w[1], "{w:?}");
    // Members trained on the fit rows; only the one with early stopping saw the validation rows.
    assert_eq!(*saw.lock().unwrap(), vec![(fit_rows.clone(), true), (fit_rows.clone(), false)]);
    assert_eq!(info.details["n_valid"], 40);
    // Test rows are predicted with the weights: exactly the weighted mean of the members.
    let test: Vec<usize> = (160..200).collect();
    let p = e.predict(&g, &test).unwrap();
    for (k, &r) in test.iter().enumerate() {
        let want = w[0] * g.dosage(r, 0).unwrap() + w[1] * g.dosage(r, 1).unwrap();
        assert!((p[k] - want).abs() < 1e-12);
    }
    // The same seed gives the same weights; the validation phenotypes move them.
    let mut again = Ensemble::new(config.clone(), vec![member(0, true), member(1, false)]).unwrap();
    again.fit(&train, Some(&valid), &ctx).unwrap();
    assert_eq!(again.weights().unwrap(), &w[..]);
    // Without a validation subset the ensemble says what it needs.
    let mut none = Ensemble::new(config, vec![member(0, true), member(1, false)]).unwrap();
    let e = none.fit(&train, None, &ctx).unwrap_err().to_string();
    assert!(e.contains("--valid-fraction"), "{e}");
}

#[test]
fn bad_settings_are_named() {
    let bad = |c: EnsembleConfig, says: &str| {
        let e = c.check().unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    };
    bad(EnsembleConfig { members: vec!["gblup".into()], ..EnsembleConfig::default() }, "at least two members");
    bad(EnsembleConfig { members: vec!["gblup".into(), "gblup".into()], ..EnsembleConfig::default() }, "twice");
    bad(EnsembleConfig { top_percent: 0.0, ..EnsembleConfig::default() }, "top_percent");
    let swarm = Swarm { particles: 0, ..Swarm::default() };
    bad(EnsembleConfig { swarm, ..EnsembleConfig::default() }, "swarm.particles");
    let swarm = Swarm { weight_max: 0.0, ..Swarm::default() };
    bad(EnsembleConfig { swarm, ..EnsembleConfig::default() }, "weight_max");
}
