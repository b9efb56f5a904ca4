//! Prediction-accuracy metrics used by breeders and by the papers genopred reproduces.

/// Pearson correlation; NaN when either side has no variance.
pub fn pearson(obs: &[f64], pred: &[f64]) -> f64 {
    assert_eq!(obs.len(), pred.len());
    let n = obs.len() as f64;
    if obs.len() < 2 {
        return f64::NAN;
    }
    let (mo, mp) = (obs.iter().sum::<f64>() / n, pred.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (o, p) in obs.iter().zip(pred) {
        let (a, b) = (o - mo, p - mp);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

/// Mean of the finite values of `values` (NaN when there are none).
pub fn mean(values: &[f64]) -> f64 {
    let (sum, n) = values.iter().filter(|x| x.is_finite()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// Sample standard deviation (n - 1) of the finite values of `values` (NaN with fewer than two).
pub fn sd(values: &[f64]) -> f64 {
    let finite = || values.iter().copied().filter(|x| x.is_finite());
    let n = finite().count();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    (finite().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// Ranks starting at 1, ties given their average rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = avg;
        }
        i = j + 1;
    }
    out
}

/// Spearman rank correlation (Pearson of average ranks).
pub fn spearman(obs: &[f64], pred: &[f64]) -> f64 {
    pearson(&ranks(obs), &ranks(pred))
}

/// Mean squared error.
pub fn mse(obs: &[f64], pred: &[f64]) -> f64 {
    obs.iter().zip(pred).map(|(o, p)| (o - p).powi(2)).sum::<f64>() / obs.len() as f64
}

/// Mean absolute error.
pub fn mae(obs: &[f64], pred: &[f64]) -> f64 {
    obs.iter().zip(pred).map(|(o, p)| (o - p).abs()).sum::<f64>() / obs.len() as f64
}

/// Coefficient of determination `1 - SS_res / SS_tot` (can be negative for poor predictions).
pub fn r2(obs: &[f64], pred: &[f64]) -> f64 {
    let mean = obs.iter().sum::<f64>() / obs.len() as f64;
    let ss_tot: f64 = obs.iter().map(|o| (o - mean).powi(2)).sum();
    if ss_tot <= 0.0 {
        return f64::NAN;
    }
    1.0 - obs.iter().zip(pred).map(|(o, p)| (o - p).powi(2)).sum::<f64>() / ss_tot
}

/// NDCG@k for selecting the top `k = ceil(top_fraction × n)` samples by prediction, the
/// selection metric of DeepGS (Ma et al. 2018): linear gain, discount `1 / log2(i + 1)`.
///
/// Gains are the observed values shifted so the smallest is 0: DeepGS used raw yields (all
/// positive), whereas genopred's traits are often standardised, and a negative gain would make
/// the ratio meaningless. Ties in the prediction keep the worse order (pessimistic).
pub fn ndcg(obs: &[f64], pred: &[f64], top_fraction: f64) -> f64 {
    assert_eq!(obs.len(), pred.len());
    if obs.is_empty() {
        return f64::NAN;
    }
    let k = ((top_fraction * obs.len() as f64).ceil() as usize).clamp(1, obs.len());
    let min = obs.iter().copied().fold(f64::INFINITY, f64::min);
    let gain = |i: usize| obs[i] - min;
    let dcg = |order: &[usize]| -> f64 {
        order.iter().take(k).enumerate().map(|(r, &i)| gain(i) / ((r + 2) as f64).log2()).sum()
    };
    let mut by_pred: Vec<usize> = (0..obs.len()).collect();
    by_pred.sort_by(|&a, &b| pred[b].total_cmp(&pred[a]).then(obs[a].total_cmp(&obs[b])));
    let mut ideal: Vec<usize> = (0..obs.len()).collect();
    ideal.sort_by(|&a, &b| obs[b].total_cmp(&obs[a]));
    let best = dcg(&ideal);
    if best <= 0.0 {
        return f64::NAN;
    }
    dcg(&by_pred) / best
}

/// All metrics of one set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Pearson r.
    #[serde(deserialize_with = "f64_or_nan")]
    pub pearson: f64,
    /// Spearman rho.
    #[serde(deserialize_with = "f64_or_nan")]
    pub spearman: f64,
    /// Mean squared error.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mse: f64,
    /// Mean absolute error.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mae: f64,
    /// Coefficient of determination.
    #[serde(deserialize_with = "f64_or_nan")]
    pub r2: f64,
    /// NDCG at the top fraction.
    #[serde(deserialize_with = "f64_or_nan")]
    pub ndcg: f64,
}

/// JSON has no NaN: serde_json writes it as `null` (an undefined correlation of constant
/// predictions), and this reads `null` back as NaN, so such records can be read back.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Metrics {
    /// Computes every metric; `top_fraction` is NDCG's k as a fraction of the samples.
    pub fn compute(obs: &[f64], pred: &[f64], top_fraction: f64) -> Self {
        Metrics {
            pearson: pearson(obs, pred),
            spearman: spearman(obs, pred),
            mse: mse(obs, pred),
            mae: mae(obs, pred),
            r2: r2(obs, pred),
            ndcg: ndcg(obs, pred, top_fraction),
        }
    }
}

/// Mean and sample standard deviation of the finite values of a list.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Mean.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    /// Sample standard deviation (n - 1); NaN with fewer than two values.
    #[serde(deserialize_with = "f64_or_nan")]
    pub sd: f64,
    /// How many finite values went in.
    pub n: usize,
}

impl Summary {
    /// Summarises `values`, ignoring NaN and infinities.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        Summary { mean: mean(&v), sd: sd(&v), n: v.len() }
    }
}

/// Mean ± sd of each metric over folds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricSummaries {
    /// Pearson r.
    pub pearson: Summary,
    /// Spearman rho.
    pub spearman: Summary,
    /// Mean squared error.
    pub mse: Summary,
    /// Mean absolute error.
    pub mae: Summary,
    /// Coefficient of determination.
    pub r2: Summary,
    /// NDCG at the top fraction.
    pub ndcg: Summary,
}

impl MetricSummaries {
    /// Summarises per-fold metrics.
    pub fn of(folds: &[Metrics]) -> Self {
        let s = |f: fn(&Metrics) -> f64| Summary::of(folds.iter().map(f));
        MetricSummaries {
            pearson: s(|m| m.pearson),
            spearman: s(|m| m.spearman),
            mse: s(|m| m.mse),
            mae: s(|m| m.mae),
            r2: s(|m| m.r2),
            ndcg: s(|m| m.ndcg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_values_survive_json() {
        // One repeat has no sd: NaN is written as null and read back as NaN.
        let s = MetricSummaries::of(&[Metrics::compute(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0], 0.5)]);
        let back: MetricSummaries = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back.pearson.mean.is_nan() && back.mse.sd.is_nan());
        assert_eq!(back.mse.mean, s.mse.mean);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn undefined_metrics_survive_a_json_round_trip() {
        // Constant predictions: the correlations are undefined (NaN, written as null).
        let m = Metrics::compute(&[1.0, 2.0, 3.0], &[5.0, 5.0, 5.0], 0.5);
        assert!(m.pearson.is_nan());
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"pearson\":null"), "{json}");
        let back: Metrics = serde_json::from_str(&json).unwrap();
        assert!(back.pearson.is_nan());
        assert_eq!(back.mse, m.mse);
    }

    #[test]
    fn correlations_against_hand_values() {
        let o = [1.0, 2.0, 3.0, 4.0, 5.0];
        let p = [2.0, 1.0, 4.0, 3.0, 5.0];
        assert!(close(pearson(&o, &p), 0.8));
        assert!(close(spearman(&o, &p), 0.8));
        assert!(close(pearson(&o, &o.map(|x| -2.0 * x + 1.0)), -1.0));
        assert!(pearson(&o, &[1.0; 5]).is_nan());
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        // Spearman is Pearson on ranks: a monotone transform gives 1.
        assert!(close(spearman(&o, &o.map(|x: f64| x.exp())), 1.0));
    }

    #[test]
    fn errors_and_r2() {
        let o = [1.0, 2.0, 3.0];
        let p = [1.0, 3.0, 1.0];
        assert!(close(mse(&o, &p), 5.0 / 3.0));
        assert!(close(mae(&o, &p), 1.0));
        assert!(close(r2(&o, &p), 1.0 - 5.0 / 2.0));
        assert!(close(r2(&o, &o), 1.0));
    }

    #[test]
    fn ndcg_perfect_reversed_and_by_hand() {
        let o = [3.0, 1.0, 2.0, 0.0];
        assert!(close(ndcg(&o, &o, 0.5), 1.0));
        // k = 2; predicted order: idx1 (gain 1), idx3 (0); ideal: 3, 2.
        let p = [0.0, 5.0, 1.0, 4.0];
        let want = (1.0 / 2f64.log2() + 0.0) / (3.0 / 2f64.log2() + 2.0 / 3f64.log2());
        assert!(close(ndcg(&o, &p, 0.5), want));
        // Shift invariance of the gains: standardised or raw values give the same NDCG.
        let shifted: Vec<f64> = o.iter().map(|x| x - 10.0).collect();
        assert!(close(ndcg(&shifted, &p, 0.5), want));
        assert!(close(ndcg(&o, &p, 1e-9), 1.0 / 3.0));
    }

    #[test]
    fn mean_and_sd_skip_non_finite_values() {
        assert_eq!(mean(&[1.0, f64::NAN, 3.0, f64::INFINITY]), 2.0);
        assert!(close(sd(&[1.0, 3.0, f64::NAN]), 2f64.sqrt()));
        assert!(sd(&[1.0]).is_nan() && mean(&[]).is_nan() && mean(&[f64::NAN]).is_nan());
    }

    #[test]
    fn summary_ignores_nan() {
        let s = Summary::of([1.0, 3.0, f64::NAN]);
        assert_eq!(s.n, 2);
        assert!(close(s.mean, 2.0));
        assert!(close(s.sd, 2f64.sqrt()));
        assert!(Summary::of([1.0]).sd.is_nan());
    }
}
