//! Per-marker statistics of saliency taken over samples without holding the samples × markers
//! matrix (`genopred importance` at tens of thousands of lines and markers).
//!
//! For each marker: the count, the exact mean (an f64 sum in sample order), and the median
//! estimated from a histogram of the values with 32 bins per doubling. A bin is the value's f32
//! exponent and the top five bits of its mantissa, so bins are relative in width (≤ 1/32 of
//! their lower edge) whatever the scale of the saliency; the median is reported as the middle of
//! its bin, which is within 1/64 (1.6 %) of any value in that bin. Zero has a bin of its own and
//! is reported as exactly 0. Histograms merge by adding counts, so the statistics of folds run in
//! parallel add up to the same numbers whatever the order (the sums are added in fold order).

/// Bits of an f32 dropped to form its bin: 23 mantissa bits, keep the top 5.
const DROPPED_BITS: u32 = 23 - 5;

/// The bin of a value ≥ 0 (the absolute value is taken; NaN sorts above +∞).
fn bin(value: f32) -> u16 {
    (value.abs().to_bits() >> DROPPED_BITS) as u16
}

/// The middle of a bin (0 for the bin of 0).
fn middle(bin: u16) -> f64 {
    if bin == 0 {
        return 0.0;
    }
    let lower = f64::from(f32::from_bits(u32::from(bin) << DROPPED_BITS));
    let upper = f64::from(f32::from_bits((u32::from(bin) + 1) << DROPPED_BITS));
    (lower + upper) / 2.0
}

/// Running statistics of one marker.
#[derive(Debug, Clone, Default, PartialEq)]
struct Running {
    sum: f64,
    count: u64,
    /// Occupied bins, sorted, with their counts.
    bins: Vec<(u16, u32)>,
}

impl Running {
    /// Adds `counts` (bins sorted and distinct, with their counts) to the histogram: one merge of
    /// two sorted lists, through `scratch`.
    fn add_counts(&mut self, counts: &[(u16, u32)], scratch: &mut Vec<(u16, u32)>) {
        scratch.clear();
        let (mut a, mut b) = (self.bins.iter().copied().peekable(), counts.iter().copied().peekable());
        loop {
            let next = match (a.peek().copied(), b.peek().copied()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    a.next();
                    b.next();
                    (x.0, x.1 + y.1)
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    a.next();
                    x
                }
                (_, Some(y)) => {
                    b.next();
                    y
                }
                (Some(x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            scratch.push(next);
        }
        std::mem::swap(&mut self.bins, scratch);
    }

    /// The value of rank `k` (0-based) as its bin's middle.
    fn at_rank(&self, k: u64) -> f64 {
        let mut seen = 0u64;
        for &(b, c) in &self.bins {
            seen += u64::from(c);
            if seen > k {
                return middle(b);
            }
        }
        f64::NAN
    }

    fn median(&self) -> Option<f64> {
        match self.count {
            0 => None,
            n if n % 2 == 1 => Some(self.at_rank(n / 2)),
            n => Some((self.at_rank(n / 2 - 1) + self.at_rank(n / 2)) / 2.0),
        }
    }
}

/// Saliency statistics of every marker of a set, fed a block of samples at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyStats {
    markers: Vec<Running>,
}

impl SaliencyStats {
    /// Empty statistics for `markers` markers.
    pub fn new(markers: usize) -> Self {
        SaliencyStats { markers: vec![Running::default(); markers] }
    }

    /// Number of markers.
    pub fn n_markers(&self) -> usize {
        self.markers.len()
    }

    /// Adds a block of samples, row-major `samples × markers` (what
    /// `Predictor::saliency_blocks` (genopred-eval) passes on).
    ///
    /// # Panics
    /// If the block's length is not a multiple of the number of markers.
    pub fn add_rows(&mut self, block: &[f32]) {
        let m = self.markers.len();
        if m == 0 {
            return;
        }
        assert_eq!(block.len() % m, 0, "a saliency block of {} values for {m} markers", block.len());
        let rows = block.len() / m;
        // A tile of markers at a time (a cache line of each row), each marker's bins sorted and
        // merged into its histogram; sums in sample order.
        const TILE: usize = 16;
        let mut bins: Vec<Vec<u16>> = (0..TILE).map(|_| Vec::with_capacity(rows)).collect();
        let (mut counts, mut scratch) = (Vec::new(), Vec::new());
        for (t, tile) in self.markers.chunks_mut(TILE).enumerate() {
            let first = t * TILE;
            bins.iter_mut().for_each(Vec::clear);
            for row in block.chunks_exact(m) {
                for ((running, &v), bins) in tile.iter_mut().zip(&row[first..]).zip(&mut bins) {
                    running.sum += f64::from(v);
                    bins.push(bin(v));
                }
            }
            for (running, bins) in tile.iter_mut().zip(&mut bins) {
                running.count += rows as u64;
                bins.sort_unstable();
                counts.clear();
                for &b in bins.iter() {
                    match counts.last_mut() {
                        Some((last, c)) if *last == b => *c += 1,
                        _ => counts.push((b, 1)),
                    }
                }
                running.add_counts(&counts, &mut scratch);
            }
        }
    }

    /// Adds `other`'s statistics, whose marker `k` is this set's marker `index[k]` (a fold's kept
    /// markers inside the whole set).
    ///
    /// # Panics
    /// If `index` does not give one marker of this set for each of `other`'s.
    pub fn merge_into(&mut self, other: &SaliencyStats, index: &[usize]) {
        assert_eq!(index.len(), other.markers.len(), "one index per merged marker");
        let mut scratch = Vec::new();
        for (theirs, &j) in other.markers.iter().zip(index) {
            let ours = &mut self.markers[j];
            ours.sum += theirs.sum;
            ours.count += theirs.count;
            ours.add_counts(&theirs.bins, &mut scratch);
        }
    }

    /// Samples seen for marker `j`.
    pub fn count(&self, j: usize) -> u64 {
        self.markers[j].count
    }

    /// Mean saliency of marker `j` (exact), `None` before any sample.
    pub fn mean(&self, j: usize) -> Option<f64> {
        let r = &self.markers[j];
        (r.count > 0).then(|| r.sum / r.count as f64)
    }

    /// Median saliency of marker `j`, estimated to within 1.6 % (see the module's documentation),
    /// `None` before any sample.
    pub fn median(&self, j: usize) -> Option<f64> {
        self.markers[j].median()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn exact_median(values: &mut [f32]) -> f64 {
        values.sort_by(f32::total_cmp);
        let n = values.len();
        if n % 2 == 1 {
            f64::from(values[n / 2])
        } else {
            (f64::from(values[n / 2 - 1]) + f64::from(values[n / 2])) / 2.0
        }
    }

    #[test]
    fn bins_are_ordered_and_narrow() {
        let mut rng = crate::seed::rng(3);
        let mut values: Vec<f32> = (0..5000).map(|_| 10f32.powf(rng.random_range(-30.0..30.0))).collect();
        values.extend([0.0, f32::MIN_POSITIVE, 1.0, 1.5, 2.0, f32::MAX, f32::INFINITY]);
        values.sort_by(f32::total_cmp);
        for pair in values.windows(2) {
            assert!(bin(pair[0]) <= bin(pair[1]), "{} and {}", pair[0], pair[1]);
        }
        for &v in values.iter().filter(|v| v.is_finite() && **v >= f32::MIN_POSITIVE && **v < f32::MAX) {
            let rel = (middle(bin(v)) - f64::from(v)).abs() / f64::from(v);
            assert!(rel <= 1.0 / 64.0 + 1e-12, "{v}: middle {} off by {rel}", middle(bin(v)));
        }
        assert_eq!(middle(bin(0.0)), 0.0);
        assert!(bin(f32::NAN) > bin(f32::INFINITY));
    }

    #[test]
    fn means_are_exact_and_medians_within_their_bin() {
        let (n, m) = (301, 23);
        let mut rng = crate::seed::rng(11);
        // Saliency-like values: skewed, several scales, some exact zeros.
        let data: Vec<f32> = (0..n * m)
            .map(|k| {
                let scale = 10f32.powi((k % m) as i32 - 3);
                if rng.random_bool(0.05) { 0.0 } else { scale * rng.random::<f32>().powi(3) }
            })
            .collect();
        let mut stats = SaliencyStats::new(m);
        // Blocks of uneven size: the statistics do not depend on how samples arrive.
        let mut start = 0;
        for len in [1usize, 50, 13, 200, 37].iter().cycle() {
            let end = (start + len).min(n);
            stats.add_rows(&data[start * m..end * m]);
            start = end;
            if start == n {
                break;
            }
        }
        for j in 0..m {
            let mut column: Vec<f32> = (0..n).map(|i| data[i * m + j]).collect();
            let sum: f64 = column.iter().map(|&v| f64::from(v)).sum();
            assert_eq!(stats.count(j), n as u64);
            assert_eq!(stats.mean(j), Some(sum / n as f64));
            let exact = exact_median(&mut column);
            let estimate = stats.median(j).unwrap();
            assert!((estimate - exact).abs() <= exact / 64.0 + 1e-30, "marker {j}: {estimate} for {exact}");
        }
        // An even count averages the two middle values' bins.
        let mut two = SaliencyStats::new(1);
        two.add_rows(&[1.0, 3.0]);
        assert!((two.median(0).unwrap() - 2.0).abs() < 2.0 / 64.0);
        assert_eq!(SaliencyStats::new(1).median(0), None);
        assert_eq!(SaliencyStats::new(1).mean(0), None);
    }

    #[test]
    fn merging_folds_equals_one_pass_over_their_samples() {
        let mut rng = crate::seed::rng(5);
        let (m, n) = (5, 40);
        let data: Vec<f32> = (0..n * m).map(|_| rng.random::<f32>()).collect();
        let mut whole = SaliencyStats::new(m);
        whole.add_rows(&data);
        // Two "folds" that kept markers {0,1,2,3,4} and {4,0,...}: merged through their indices.
        let (a, b) = data.split_at(17 * m);
        let mut fa = SaliencyStats::new(m);
        fa.add_rows(a);
        let order = [3usize, 0, 4, 1, 2];
        let mut fb = SaliencyStats::new(m);
        let permuted: Vec<f32> = b.chunks(m).flat_map(|row| order.map(|j| row[j])).collect();
        fb.add_rows(&permuted);
        let mut merged = SaliencyStats::new(m);
        merged.merge_into(&fa, &[0, 1, 2, 3, 4]);
        merged.merge_into(&fb, &order);
        for j in 0..m {
            assert_eq!(merged.count(j), whole.count(j));
            assert_eq!(merged.median(j), whole.median(j));
            assert!((merged.mean(j).unwrap() - whole.mean(j).unwrap()).abs() < 1e-12);
        }
        // A marker a fold did not keep stays empty.
        let mut partial = SaliencyStats::new(6);
        partial.merge_into(&fa, &[0, 1, 2, 3, 5]);
        assert_eq!(partial.count(4), 0);
        assert_eq!(partial.median(4), None);
    }
}
