//! The in-memory genotype matrix shared by every reader, encoding and model.

use std::borrow::Cow;
use std::ops::Range;

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

/// Samples × markers genotype dosages (see [`DOSAGE_SCALE`], [`MISSING`]).
///
/// Row-major: the calls of one sample are contiguous, which is the order every encoding and the
/// relationship matrix read them in. Hard calls (0, 1 or 2 copies, or missing — every PLINK set
/// and every VCF read from `GT`) are held packed, 2 bits per call as PLINK holds them; a matrix
/// with any fractional dosage (imputed `DS`, a dosage table) holds one byte per call. Read calls
/// with [`calls`](Self::calls) (a block of one sample's markers, decoded into a caller's buffer),
/// [`row`](Self::row) or [`code`](Self::code); which form is held never changes a value.
#[derive(Debug, Clone, PartialEq)]
pub struct GenotypeMatrix {
    samples: Vec<String>,
    markers: Vec<Marker>,
    calls: Calls,
}

/// How the calls are held. Canonical: packed whenever every call is a hard call, so two matrices
/// with the same calls hold them the same way (and compare equal).
#[derive(Debug, Clone, PartialEq)]
enum Calls {
    /// 2 bits per call (0, 1, 2 copies; 3 missing), `stride = ⌈markers / 4⌉` bytes per sample,
    /// call `j` in bits `2 (j mod 4)` of byte `j / 4`; the unused bits of a row's last byte are
    /// set (they read as missing and are never decoded).
    Packed { bytes: Vec<u8>, stride: usize },
    /// One code per call.
    Bytes(Vec<u8>),
}

/// The code of each 2-bit value.
const UNPACK: [u8; 4] = [0, 100, 200, MISSING];

/// The four codes of each packed byte, lowest bits first.
static UNPACK_BYTE: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut b = 0;
    while b < 256 {
        let mut k = 0;
        while k < 4 {
            t[b][k] = UNPACK[(b >> (2 * k)) & 3];
            k += 1;
        }
        b += 1;
    }
    t
};

/// The 2-bit value of each hard-call code (other entries unused).
static PACK: [u8; 256] = {
    let mut t = [0u8; 256];
    t[100] = 1;
    t[200] = 2;
    t[MISSING as usize] = 3;
    t
};

/// The code of call `j` of a packed row.
#[inline]
fn unpacked(row: &[u8], j: usize) -> u8 {
    UNPACK[usize::from(row[j / 4] >> (2 * (j % 4))) & 3]
}

/// The packed byte of up to four hard-call codes, lowest bits first; the bits of absent calls
/// stay set (a row's partial last byte).
#[inline]
fn packed_byte(four: impl IntoIterator<Item = u8>) -> u8 {
    four.into_iter()
        .enumerate()
        .fold(u8::MAX, |acc, (k, c)| (acc & !(3 << (2 * k))) | (PACK[usize::from(c)] << (2 * k)))
}

/// The 2-bit value of a hard-call code, `None` for a fractional dosage.
fn pack_code(code: u8) -> Option<u8> {
    match code {
        0 => Some(0),
        100 => Some(1),
        200 => Some(2),
        MISSING => Some(3),
        _ => None,
    }
}

/// Fills a samples × markers matrix call by call, in any order (readers transpose blocks into
/// it): packed while every call set is a hard call, switching to one byte per call at the first
/// fractional dosage. Unset calls are missing. Peak memory while reading hard calls is the
/// packed matrix, a quarter of a byte per call.
#[derive(Debug, Clone)]
pub struct CallsBuilder {
    n_samples: usize,
    n_markers: usize,
    calls: Calls,
}

impl CallsBuilder {
    /// An `n_samples × n_markers` matrix of missing calls.
    pub fn new(n_samples: usize, n_markers: usize) -> Self {
        let stride = n_markers.div_ceil(4);
        CallsBuilder { n_samples, n_markers, calls: Calls::Packed { bytes: vec![u8::MAX; n_samples * stride], stride } }
    }

    /// Sets one call. A code above [`MAX_CODE`] other than [`MISSING`] is rejected when the
    /// matrix is built.
    #[inline]
    pub fn set(&mut self, sample: usize, marker: usize, code: u8) {
        assert!(sample < self.n_samples && marker < self.n_markers, "call ({sample}, {marker}) outside the matrix");
        match &mut self.calls {
            Calls::Packed { bytes, stride } => match pack_code(code) {
                Some(v) => {
                    let byte = &mut bytes[sample * *stride + marker / 4];
                    let shift = 2 * (marker % 4);
                    *byte = (*byte & !(3 << shift)) | (v << shift);
                }
                None => {
                    self.unpack();
                    self.set(sample, marker, code);
                }
            },
            Calls::Bytes(codes) => codes[sample * self.n_markers + marker] = code,
        }
    }

    /// The packed calls of every sample (`⌈markers / 4⌉` each, call `j` in bits `2 (j mod 4)` of
    /// byte `j / 4`; 0, 1, 2 copies, 3 missing), for a reader of hard calls that packs four at a
    /// time, in parallel over samples: the bytes, samples one after another, and the bytes per
    /// sample. The bits after a row's last call must stay set. `None` once the builder holds
    /// one byte per call.
    pub fn packed_mut(&mut self) -> Option<(&mut [u8], usize)> {
        match &mut self.calls {
            Calls::Packed { bytes, stride } => Some((bytes.as_mut_slice(), *stride)),
            Calls::Bytes(_) => None,
        }
    }

    /// Sets the calls of one sample at markers `start ..`, in order.
    pub fn set_row(&mut self, sample: usize, start: usize, codes: &[u8]) {
        for (k, &c) in codes.iter().enumerate() {
            self.set(sample, start + k, c);
        }
    }

    /// Switches to one byte per call.
    fn unpack(&mut self) {
        if let Calls::Packed { bytes, stride } = &self.calls {
            let (n, m, stride) = (self.n_samples, self.n_markers, *stride);
            let mut codes = Vec::with_capacity(n * m);
            for s in 0..n {
                let row = &bytes[s * stride..(s + 1) * stride];
                codes.extend((0..m).map(|j| unpacked(row, j)));
            }
            self.calls = Calls::Bytes(codes);
        }
    }

    /// The calls, packed if every one is a hard call (a fractional call may have been
    /// overwritten since the builder switched to bytes).
    fn canonical(self) -> Calls {
        match self.calls {
            Calls::Bytes(codes) if codes.iter().all(|&c| pack_code(c).is_some()) => {
                CallsBuilder::from_codes(self.n_samples, self.n_markers, codes).calls
            }
            calls => calls,
        }
    }

    /// A builder holding `codes` (row-major, one per call), packed when every code is a hard call.
    fn from_codes(n_samples: usize, n_markers: usize, codes: Vec<u8>) -> Self {
        if codes.iter().all(|&c| pack_code(c).is_some()) {
            let mut b = CallsBuilder::new(n_samples, n_markers);
            if let Some((bytes, stride)) = b.packed_mut()
                && stride > 0
            {
                for (row, out) in codes.chunks_exact(n_markers).zip(bytes.chunks_exact_mut(stride)) {
                    for (four, byte) in row.chunks(4).zip(out.iter_mut()) {
                        *byte = packed_byte(four.iter().copied());
                    }
                }
            }
            b
        } else {
            CallsBuilder { n_samples, n_markers, calls: Calls::Bytes(codes) }
        }
    }
}

impl GenotypeMatrix {
    /// Builds a matrix from sample ids, markers and row-major codes. Checks shapes and code
    /// range, and rejects duplicate sample or marker ids (they would make matching ambiguous).
    /// Hard calls are packed (the codes are held one byte each until then).
    pub fn new(samples: Vec<String>, markers: Vec<Marker>, codes: Vec<u8>) -> Result<Self> {
        if codes.len() != samples.len() * markers.len() {
            return Err(CoreError::Data(format!(
                "genotype matrix has {} calls but {} samples × {} markers were declared",
                codes.len(),
                samples.len(),
                markers.len()
            )));
        }
        let (n, m) = (samples.len(), markers.len());
        Self::from_calls(samples, markers, CallsBuilder::from_codes(n, m, codes))
    }

    /// Builds a matrix from sample ids, markers and the calls a reader filled; the checks of
    /// [`new`](Self::new).
    pub fn from_calls(samples: Vec<String>, markers: Vec<Marker>, calls: CallsBuilder) -> Result<Self> {
        if (calls.n_samples, calls.n_markers) != (samples.len(), markers.len()) {
            return Err(CoreError::Data(format!(
                "genotype matrix has {} × {} calls but {} samples × {} markers were declared",
                calls.n_samples,
                calls.n_markers,
                samples.len(),
                markers.len()
            )));
        }
        if let Calls::Bytes(codes) = &calls.calls
            && let Some(bad) = codes.iter().position(|&c| c > MAX_CODE && c != MISSING)
        {
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
        let calls = calls.canonical();
        Ok(GenotypeMatrix { samples, markers, calls })
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

    /// Whether the calls are held packed, 2 bits each (every call a hard call).
    pub fn is_packed(&self) -> bool {
        matches!(self.calls, Calls::Packed { .. })
    }

    /// Bytes the calls take in memory.
    pub fn stored_bytes(&self) -> usize {
        match &self.calls {
            Calls::Packed { bytes, .. } | Calls::Bytes(bytes) => bytes.len(),
        }
    }

    /// The codes of one sample at `markers`, decoded into `buf` when the calls are packed (the
    /// stored bytes themselves otherwise). The way to read many calls: one buffer serves a whole
    /// pass over the samples.
    pub fn calls<'a>(&'a self, sample: usize, markers: Range<usize>, buf: &'a mut Vec<u8>) -> &'a [u8] {
        assert!(
            markers.start <= markers.end && markers.end <= self.n_markers(),
            "markers {markers:?} beyond {}",
            self.n_markers()
        );
        match &self.calls {
            Calls::Bytes(codes) => {
                let m = self.markers.len();
                &codes[sample * m + markers.start..sample * m + markers.end]
            }
            Calls::Packed { .. } => {
                buf.clear();
                buf.resize(markers.len(), 0);
                self.decode_into(sample, markers, buf, |_, c| c);
                buf
            }
        }
    }

    /// Writes `f(k, code)` for the `k`-th call of one sample at `markers` into `out[k]`: the
    /// encoders' decoding loop, reading packed calls four to a byte with no buffer between.
    #[inline]
    pub fn decode_into<T>(
        &self,
        sample: usize,
        markers: Range<usize>,
        out: &mut [T],
        mut f: impl FnMut(usize, u8) -> T,
    ) {
        assert!(
            markers.start <= markers.end && markers.end <= self.n_markers(),
            "markers {markers:?} beyond {}",
            self.n_markers()
        );
        assert_eq!(out.len(), markers.len(), "one output per call");
        match &self.calls {
            Calls::Bytes(codes) => {
                let m = self.markers.len();
                let calls = &codes[sample * m + markers.start..sample * m + markers.end];
                for (k, (slot, &c)) in out.iter_mut().zip(calls).enumerate() {
                    *slot = f(k, c);
                }
            }
            Calls::Packed { bytes, stride } => {
                let row = &bytes[sample * stride..(sample + 1) * stride];
                let (start, end) = (markers.start, markers.end);
                // Calls before the first whole byte, whole bytes, calls after the last.
                let first = start.next_multiple_of(4).min(end);
                let last = (end / 4 * 4).max(first);
                let (head, rest) = out.split_at_mut(first - start);
                let (body, tail) = rest.split_at_mut(last - first);
                for (k, slot) in head.iter_mut().enumerate() {
                    *slot = f(k, unpacked(row, start + k));
                }
                let mut k = first - start;
                for (four, &byte) in body.chunks_exact_mut(4).zip(&row[first / 4..last / 4]) {
                    let codes = &UNPACK_BYTE[usize::from(byte)];
                    for (i, slot) in four.iter_mut().enumerate() {
                        *slot = f(k + i, codes[i]);
                    }
                    k += 4;
                }
                for (i, slot) in tail.iter_mut().enumerate() {
                    *slot = f(k + i, unpacked(row, last + i));
                }
            }
        }
    }

    /// The codes of one sample (borrowed when held one byte each, decoded when packed).
    pub fn row(&self, sample: usize) -> Cow<'_, [u8]> {
        match &self.calls {
            Calls::Bytes(codes) => {
                let m = self.markers.len();
                Cow::Borrowed(&codes[sample * m..(sample + 1) * m])
            }
            Calls::Packed { .. } => {
                let mut buf = Vec::new();
                self.calls(sample, 0..self.n_markers(), &mut buf);
                Cow::Owned(buf)
            }
        }
    }

    /// The raw code of one call.
    #[inline]
    pub fn code(&self, sample: usize, marker: usize) -> u8 {
        let m = self.markers.len();
        assert!(marker < m, "marker {marker} beyond {m}");
        match &self.calls {
            Calls::Bytes(codes) => codes[sample * m + marker],
            Calls::Packed { bytes, stride } => unpacked(&bytes[sample * stride..(sample + 1) * stride], marker),
        }
    }

    /// The dosage of one call, `None` when missing.
    pub fn dosage(&self, sample: usize, marker: usize) -> Option<f64> {
        code_to_dosage(self.code(sample, marker))
    }

    /// Number of missing calls of one sample.
    pub fn missing_in_sample(&self, sample: usize) -> usize {
        let m = self.markers.len();
        match &self.calls {
            Calls::Bytes(codes) => codes[sample * m..(sample + 1) * m].iter().filter(|&&c| c == MISSING).count(),
            Calls::Packed { bytes, stride } => {
                let row = &bytes[sample * stride..(sample + 1) * stride];
                let whole = m / 4;
                // A pair of set bits is a missing call: b & (b >> 1) keeps its low bit.
                let full: u32 = row[..whole].iter().map(|&b| (b & (b >> 1) & 0x55).count_ones()).sum();
                full as usize + (whole * 4..m).filter(|&j| self.code(sample, j) == MISSING).count()
            }
        }
    }

    /// Fraction of missing calls over the whole matrix.
    pub fn missing_rate(&self) -> f64 {
        let calls = self.n_samples() * self.n_markers();
        if calls == 0 {
            return 0.0;
        }
        (0..self.n_samples()).map(|s| self.missing_in_sample(s)).sum::<usize>() as f64 / calls as f64
    }

    /// Bytes of one sample's calls as held.
    fn row_bytes(&self) -> usize {
        match &self.calls {
            Calls::Packed { stride, .. } => *stride,
            Calls::Bytes(_) => self.markers.len(),
        }
    }

    /// Keeps only the given rows (in the given order).
    pub fn select_samples(&self, rows: &[usize]) -> GenotypeMatrix {
        let w = self.row_bytes();
        let copy = |held: &[u8]| {
            let mut out = Vec::with_capacity(rows.len() * w);
            for &r in rows {
                out.extend_from_slice(&held[r * w..(r + 1) * w]);
            }
            out
        };
        let calls = match &self.calls {
            Calls::Packed { bytes, stride } => Calls::Packed { bytes: copy(bytes), stride: *stride },
            Calls::Bytes(codes) => Calls::Bytes(copy(codes)),
        };
        GenotypeMatrix {
            samples: rows.iter().map(|&r| self.samples[r].clone()).collect(),
            markers: self.markers.clone(),
            calls,
        }
    }

    /// [`select_samples`](Self::select_samples) for strictly increasing `rows`, compacting the
    /// calls in place: no second copy of the genotypes exists (loading keeps one copy of the
    /// calls at its peak, not two).
    pub fn retain_samples(mut self, rows: &[usize]) -> GenotypeMatrix {
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]) && rows.last().is_none_or(|&r| r < self.samples.len()),
            "retain_samples needs strictly increasing rows within the matrix"
        );
        let w = self.row_bytes();
        let held = match &mut self.calls {
            Calls::Packed { bytes, .. } | Calls::Bytes(bytes) => bytes,
        };
        for (i, &r) in rows.iter().enumerate() {
            if i != r {
                held.copy_within(r * w..(r + 1) * w, i * w);
            }
        }
        held.truncate(rows.len() * w);
        held.shrink_to_fit();
        let mut samples = std::mem::take(&mut self.samples);
        self.samples = rows.iter().map(|&r| std::mem::take(&mut samples[r])).collect();
        self
    }

    /// Keeps only the given markers (in the given order).
    pub fn select_markers(&self, cols: &[usize]) -> GenotypeMatrix {
        use rayon::prelude::*;
        let (n, m) = (self.samples.len(), self.n_markers());
        let mut out = CallsBuilder::new(n, cols.len());
        if let (true, Some((bytes, stride))) = (self.is_packed(), out.packed_mut()) {
            // Packed into packed, four kept calls to a byte, samples in parallel (a fold's QC
            // copy of a large matrix).
            bytes.par_chunks_mut(stride.max(1)).enumerate().for_each_init(Vec::new, |buf, (s, out_row)| {
                let row = self.calls(s, 0..m, buf);
                for (byte, four) in out_row.iter_mut().zip(cols.chunks(4)) {
                    *byte = packed_byte(four.iter().map(|&c| row[c]));
                }
            });
        } else {
            out.unpack();
            let mut buf = Vec::new();
            for s in 0..n {
                let row = self.calls(s, 0..m, &mut buf);
                for (k, &c) in cols.iter().enumerate() {
                    out.set(s, k, row[c]);
                }
            }
        }
        let markers: Vec<Marker> = cols.iter().map(|&c| self.markers[c].clone()).collect();
        let calls = out.canonical();
        GenotypeMatrix { samples: self.samples.clone(), markers, calls }
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
        assert_eq!(*s.row(0), [100, 0]);
        let kept = g.clone().retain_samples(&[0, 2]);
        assert_eq!(kept, g.select_samples(&[0, 2]));
        assert_eq!(g.clone().retain_samples(&[0, 1, 2]), g);
        assert_eq!(g.clone().retain_samples(&[]).n_samples(), 0);
        let m = g.select_markers(&[1]);
        assert_eq!(*m.row(1), [MISSING]);
        assert_eq!(m.markers()[0].id, "m2");
        assert!((g.missing_rate() - 1.0 / 6.0).abs() < 1e-12);
    }
}

#[cfg(test)]
mod packed_tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Random codes: hard calls with 10 % missing, plus fractional dosages if asked.
    fn random_codes(n: usize, m: usize, fractional: bool, seed: u64) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * m)
            .map(|_| match rng.random_range(0..10) {
                0 => MISSING,
                9 if fractional => rng.random_range(1..200u8),
                k => [0, 100, 200][k % 3],
            })
            .collect()
    }

    /// The same codes held one byte each, bypassing the canonical packing: the reference every
    /// accessor of the packed form must agree with.
    fn as_bytes(n: usize, m: usize, codes: Vec<u8>) -> GenotypeMatrix {
        let g = GenotypeMatrix::with_generated_names(n, m, vec![0; n * m]).unwrap();
        GenotypeMatrix { calls: Calls::Bytes(codes), ..g }
    }

    #[test]
    fn hard_calls_are_packed_and_read_back_exactly_at_every_range() {
        for m in [1, 3, 4, 5, 8, 13] {
            let n = 7;
            let codes = random_codes(n, m, false, m as u64);
            let g = GenotypeMatrix::with_generated_names(n, m, codes.clone()).unwrap();
            let reference = as_bytes(n, m, codes.clone());
            assert!(g.is_packed() && !reference.is_packed());
            assert_eq!(g.stored_bytes(), n * m.div_ceil(4));
            let mut buf = vec![42; 3];
            for s in 0..n {
                assert_eq!(*g.row(s), codes[s * m..(s + 1) * m]);
                assert_eq!(g.missing_in_sample(s), reference.missing_in_sample(s), "m {m} sample {s}");
                for start in 0..=m {
                    for end in start..=m {
                        let want = &codes[s * m + start..s * m + end];
                        assert_eq!(g.calls(s, start..end, &mut buf), want, "{start}..{end}");
                        let mut out = vec![(0, 0); end - start];
                        g.decode_into(s, start..end, &mut out, |k, c| (k, c));
                        assert_eq!(out, want.iter().enumerate().map(|(k, &c)| (k, c)).collect::<Vec<_>>());
                        reference.decode_into(s, start..end, &mut out, |k, c| (k, c));
                        assert_eq!(out, want.iter().enumerate().map(|(k, &c)| (k, c)).collect::<Vec<_>>());
                    }
                }
                for j in 0..m {
                    assert_eq!(g.code(s, j), codes[s * m + j]);
                }
            }
            assert_eq!(g.missing_rate(), reference.missing_rate());
            let rows = [4, 0, 6, 6];
            assert_eq!(*g.select_samples(&rows).row(3), *reference.select_samples(&rows).row(3));
            let cols: Vec<usize> = (0..m).rev().step_by(2).collect();
            let (a, b) = (g.select_markers(&cols), reference.select_markers(&cols));
            assert!(a.is_packed() && b.is_packed(), "hard calls come out packed");
            assert_eq!(a, b);
            let kept = g.clone().retain_samples(&[1, 2, 5]);
            assert_eq!(kept, g.select_samples(&[1, 2, 5]));
            assert_eq!(*kept.row(2), codes[5 * m..6 * m]);
        }
    }

    #[test]
    fn a_fractional_dosage_switches_to_one_byte_per_call_and_back() {
        let (n, m) = (5, 9);
        let codes = random_codes(n, m, true, 3);
        assert!(codes.iter().any(|&c| pack_code(c).is_none()));
        let g = GenotypeMatrix::with_generated_names(n, m, codes.clone()).unwrap();
        assert!(!g.is_packed());
        assert_eq!(g.stored_bytes(), n * m);
        for s in 0..n {
            assert_eq!(*g.row(s), codes[s * m..(s + 1) * m]);
        }
        // A builder fed call by call switches at the first fractional call and keeps every
        // earlier call.
        let mut b = CallsBuilder::new(n, m);
        for s in 0..n {
            b.set_row(s, 0, &codes[s * m..(s + 1) * m]);
        }
        let built = GenotypeMatrix::from_calls(g.samples().to_vec(), g.markers().to_vec(), b).unwrap();
        assert_eq!(built, g);
        // Overwrite every fractional call with a hard one: the matrix is held packed again and
        // equals the one made from those codes.
        let hard: Vec<u8> = codes.iter().map(|&c| if pack_code(c).is_some() { c } else { 100 }).collect();
        let mut b = CallsBuilder::new(n, m);
        for s in 0..n {
            b.set_row(s, 0, &codes[s * m..(s + 1) * m]);
            b.set_row(s, 0, &hard[s * m..(s + 1) * m]);
        }
        let built = GenotypeMatrix::from_calls(g.samples().to_vec(), g.markers().to_vec(), b).unwrap();
        assert!(built.is_packed());
        assert_eq!(built, GenotypeMatrix::with_generated_names(n, m, hard).unwrap());
        // Unset calls are missing; a builder of the wrong shape or an out-of-range code is an error.
        let empty = GenotypeMatrix::from_calls(g.samples().to_vec(), g.markers().to_vec(), CallsBuilder::new(n, m));
        assert_eq!(empty.unwrap().missing_rate(), 1.0);
        let wrong = GenotypeMatrix::from_calls(g.samples().to_vec(), g.markers().to_vec(), CallsBuilder::new(n, m + 1));
        assert!(wrong.unwrap_err().to_string().contains("5 × 10 calls"));
        let mut bad = CallsBuilder::new(n, m);
        bad.set(2, 3, 201);
        let err = GenotypeMatrix::from_calls(g.samples().to_vec(), g.markers().to_vec(), bad).unwrap_err();
        assert!(err.to_string().contains("code 201 at sample s2, marker m3"), "{err}");
    }
}
