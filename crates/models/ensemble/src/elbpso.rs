//! DeepGS's ELBPSO ("ensemble learning based on particle swarm optimisation") and the mean NDCG
//! it maximises, ported from the DeepGS R package 1.2 (`R/ELBPSO.R`, `R/meanNDCG.R`).

use rand::Rng;

/// The swarm's settings (the R function's arguments, with its defaults and its README's values).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Swarm {
    /// Independent swarms whose best weights are averaged (`rep_times = 100`).
    pub repeats: usize,
    /// Iterations of each swarm (`interation_times = 25`).
    pub iterations: usize,
    /// Particles (`paticle_number = 10`).
    pub particles: usize,
    /// Weights live in `[weight_min, weight_max]` (0, 1).
    pub weight_min: f64,
    /// See `weight_min`.
    pub weight_max: f64,
    /// Velocities live in `[rate_min, rate_max]` (−0.01, 0.01).
    pub rate_min: f64,
    /// See `rate_min`.
    pub rate_max: f64,
    /// Inertia weight (`IW = 1`).
    pub inertia: f64,
    /// Acceleration towards the particle's own improvement (`AF1 = 2`).
    pub accel_own: f64,
    /// Acceleration towards the swarm's best (`AF2 = 2`).
    pub accel_global: f64,
}

impl Default for Swarm {
    fn default() -> Self {
        Swarm {
            repeats: 100,
            iterations: 25,
            particles: 10,
            weight_min: 0.0,
            weight_max: 1.0,
            rate_min: -0.01,
            rate_max: 0.01,
            inertia: 1.0,
            accel_own: 2.0,
            accel_global: 2.0,
        }
    }
}

/// R's `round`: halves go to the even neighbour (IEC 60559).
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 { 2.0 * (x / 2.0).round() } else { r }
}

/// `(x − mean) / (max − min)`, as meanNDCG rescales both vectors (zeros when constant).
fn rescale(x: &[f64]) -> Vec<f64> {
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let (lo, hi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let range = hi - lo;
    x.iter().map(|&v| if range > 0.0 { (v - mean) / range } else { 0.0 }).collect()
}

/// DeepGS's `meanNDCG(realScores, predScores, topAlpha)`: both vectors rescaled to
/// `(x − mean) / range`; with k = round(topAlpha % of n) (at least 1), the mean over
/// k' = 1..k of NDCG@k', where NDCG@k' = Σ_{i ≤ k'} real(by pred)_i / log2(i + 1) over the same
/// sum in the ideal order. Ties keep the input order (R's `order` is stable).
pub fn mean_ndcg(real: &[f64], pred: &[f64], top_percent: f64) -> f64 {
    let n = real.len();
    if n == 0 || n != pred.len() {
        return f64::NAN;
    }
    let (real, pred) = (rescale(real), rescale(pred));
    let k = (round_half_even(top_percent * n as f64 / 100.0) as usize).clamp(1, n);
    let descending = |v: &[f64]| {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        order
    };
    let (by_pred, by_real) = (descending(&pred), descending(&real));
    let (mut dcg, mut idcg, mut total) = (0.0, 0.0, 0.0);
    for i in 0..k {
        let discount = ((i + 2) as f64).log2();
        dcg += real[by_pred[i]] / discount;
        idcg += real[by_real[i]] / discount;
        total += dcg / idcg;
    }
    total / k as f64
}

/// The weighted prediction `Σ w_j p_j / Σ w_j` of each row of `members` (row-major, one column
/// per member).
pub fn combine(members: &[Vec<f64>], weights: &[f64]) -> Vec<f64> {
    let n = members.first().map_or(0, Vec::len);
    let total: f64 = weights.iter().sum();
    (0..n).map(|i| members.iter().zip(weights).map(|(p, w)| w * p[i]).sum::<f64>() / total).collect()
}

/// The fitness of weights: mean NDCG of the weighted prediction (undefined counts as worst).
fn fitness(y: &[f64], members: &[Vec<f64>], weights: &[f64], top_percent: f64) -> f64 {
    let f = mean_ndcg(y, &combine(members, weights), top_percent);
    if f.is_nan() { f64::NEG_INFINITY } else { f }
}

/// ELBPSO: the member weights maximising [`mean_ndcg`] of the weighted prediction of `y`, as the
/// R package finds them: `repeats` swarms of `particles` particles, each run for `iterations`
/// (or until the best fitness exceeds 0.999); a particle moves to `w + v` (coordinates leaving
/// the box are redrawn) if that improves its fitness, its velocity is pulled towards the swarm's
/// best, and the result is the mean of the swarms' best weights. `members[j]` holds member j's
/// predictions of `y`'s rows.
pub fn elbpso(y: &[f64], members: &[Vec<f64>], top_percent: f64, swarm: &Swarm, rng: &mut impl Rng) -> Vec<f64> {
    let d = members.len();
    let s = swarm;
    let fit = |w: &[f64]| fitness(y, members, w, top_percent);
    let mut best_sum = vec![0.0; d];
    for _ in 0..s.repeats {
        let mut w: Vec<Vec<f64>> =
            (0..s.particles).map(|_| (0..d).map(|_| rng.random_range(s.weight_min..=s.weight_max)).collect()).collect();
        let mut v: Vec<Vec<f64>> =
            (0..s.particles).map(|_| (0..d).map(|_| rng.random_range(s.rate_min..=s.rate_max)).collect()).collect();
        let mut f: Vec<f64> = w.iter().map(|x| fit(x)).collect();
        let argmax = |f: &[f64]| (0..f.len()).fold(0, |b, i| if f[i] > f[b] { i } else { b });
        let mut global = w[argmax(&f)].clone();
        for _ in 0..s.iterations {
            for i in 0..s.particles {
                let mut moved: Vec<f64> = (0..d).map(|j| w[i][j] + v[i][j]).collect();
                for x in moved.iter_mut() {
                    if !(s.weight_min..=s.weight_max).contains(x) {
                        *x = rng.random_range(s.weight_min..=s.weight_max);
                    }
                }
                let f_moved = fit(&moved);
                if f_moved > fit(&w[i]) {
                    w[i] = moved;
                    let (u1, u2) = (rng.random::<f64>(), rng.random::<f64>());
                    for j in 0..d {
                        v[i][j] = s.inertia
                            * (v[i][j] + s.accel_own * u1 * v[i][j] + s.accel_global * u2 * (global[j] - w[i][j]));
                    }
                    f[i] = f_moved;
                } else {
                    let u = rng.random::<f64>();
                    for j in 0..d {
                        v[i][j] = s.inertia * (v[i][j] + s.accel_global * u * (global[j] - w[i][j]));
                    }
                }
                for x in v[i].iter_mut() {
                    if !(s.rate_min..=s.rate_max).contains(x) {
                        *x = rng.random_range(s.rate_min..=s.rate_max);
                    }
                }
            }
            global = w[argmax(&f)].clone();
            if fit(&global) > 0.999 {
                break;
            }
        }
        for (b, g) in best_sum.iter_mut().zip(&global) {
            *b += g;
        }
    }
    best_sum.into_iter().map(|b| b / s.repeats as f64).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn rounding_is_rs() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(0.54), 1.0);
        assert_eq!(round_half_even(5.4), 5.0);
    }

    /// By hand, as DeepGS's R code computes it: n = 10, topAlpha = 30 → k = 3.
    #[test]
    fn mean_ndcg_matches_a_hand_computation() {
        let real = [5.0, 3.0, 9.0, 1.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.0];
        let pred = [4.0, 9.0, 8.0, 0.0, 7.0, 1.0, 2.0, 3.0, 6.0, 5.0];
        // rescaled real: (x − 4.5) / 9; by pred: idx 1 (3), 2 (9), 4 (7); ideal: 9, 8, 7.
        let r = |x: f64| (x - 4.5) / 9.0;
        let l = |i: f64| (i + 1.0).log2();
        let dcg = [r(3.0) / l(1.0), r(9.0) / l(2.0), r(7.0) / l(3.0)];
        let idcg = [r(9.0) / l(1.0), r(8.0) / l(2.0), r(7.0) / l(3.0)];
        let at = |k: usize| dcg[..k].iter().sum::<f64>() / idcg[..k].iter().sum::<f64>();
        let want = (at(1) + at(2) + at(3)) / 3.0;
        assert!((mean_ndcg(&real, &pred, 30.0) - want).abs() < 1e-12);
        assert!((mean_ndcg(&real, &real, 30.0) - 1.0).abs() < 1e-12);
        // Invariant to affine rescaling of the prediction.
        let scaled: Vec<f64> = pred.iter().map(|p| 3.0 * p - 7.0).collect();
        assert_eq!(mean_ndcg(&real, &scaled, 30.0), mean_ndcg(&real, &pred, 30.0));
    }

    #[test]
    fn the_swarm_weights_the_member_that_ranks_the_top_lines() {
        // Member 0 ranks the lines exactly; member 1 is noise.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let y: Vec<f64> = (0..60).map(|_| rng.random_range(-2.0..2.0)).collect();
        let noise: Vec<f64> = (0..60).map(|_| rng.random_range(-2.0..2.0)).collect();
        let members = vec![y.clone(), noise];
        let swarm = Swarm { repeats: 20, ..Swarm::default() };
        let w = elbpso(&y, &members, 10.0, &swarm, &mut rand::rngs::StdRng::seed_from_u64(1));
        assert!(w[0] > 2.0 * w[1], "{w:?}");
        assert!(w.iter().all(|x| (0.0..=1.0).contains(x)));
        let again = elbpso(&y, &members, 10.0, &swarm, &mut rand::rngs::StdRng::seed_from_u64(1));
        assert_eq!(w, again);
        let pred = combine(&members, &w);
        assert!(mean_ndcg(&y, &pred, 10.0) > mean_ndcg(&y, &members[1], 10.0));
    }
}
