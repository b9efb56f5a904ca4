//! Marker alignment: lines up a new genotype file with the markers a model was trained on.
//!
//! A saved model expects its training markers, in training order, with dosages counting the same
//! allele. A candidate population genotyped later rarely comes in exactly that shape: markers are
//! ordered differently, a file was exported with REF/ALT or A1/A2 swapped, an array version lost a
//! few probes, a VCF has no ids. [`align`] matches each training marker by id (or by chromosome
//! and position), flips dosages whose counted allele is the other one (`2 − d`), resolves
//! opposite-strand calls of non-palindromic SNPs, and marks absent markers missing, which the
//! model then imputes with its training mean. It refuses when too few markers are found.

use std::collections::HashMap;

use crate::error::{CoreError, Result};
use crate::genotype::{CallsBuilder, GenotypeMatrix, MAX_CODE, MISSING, Marker};

/// How training markers are found in the new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchBy {
    /// By marker id (ids `.` never match).
    #[default]
    Id,
    /// By chromosome and base-pair position (`chr1` and `1` are the same chromosome); for files
    /// whose ids differ (VCFs with `.` ids, other naming schemes).
    ChromPos,
}

impl std::str::FromStr for MatchBy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "id" => Ok(MatchBy::Id),
            "chrom-pos" | "chrompos" | "position" => Ok(MatchBy::ChromPos),
            _ => Err(format!("unknown marker matching '{s}'; use id or chrom-pos")),
        }
    }
}

/// Alignment settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlignOptions {
    /// How markers are matched.
    pub match_by: MatchBy,
    /// The smallest fraction of training markers that must be found with compatible alleles
    /// (default 0.8); below it alignment fails rather than impute most of the genome.
    pub min_overlap: f64,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions { match_by: MatchBy::Id, min_overlap: 0.8 }
    }
}

/// What happened to one training marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerStatus {
    /// Found, same counted allele.
    Matched,
    /// Found with the alleles swapped: dosages flipped (`2 − d`).
    Flipped,
    /// Found on the opposite strand (complemented alleles), same counted allele.
    StrandMatched,
    /// Found on the opposite strand with the alleles swapped: dosages flipped.
    StrandFlipped,
    /// Found, but one of the files names no alleles (numeric CSV): used as is.
    Unchecked,
    /// Not in the new file: imputed.
    Absent,
    /// Found, but its alleles fit neither orientation nor strand: imputed.
    AlleleMismatch,
}

impl MarkerStatus {
    /// Whether the new file's calls are used (as opposed to imputed).
    pub fn is_used(self) -> bool {
        !matches!(self, MarkerStatus::Absent | MarkerStatus::AlleleMismatch)
    }

    fn flips(self) -> bool {
        matches!(self, MarkerStatus::Flipped | MarkerStatus::StrandFlipped)
    }
}

/// Counts of an alignment, and each training marker's fate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlignReport {
    /// How markers were matched.
    pub match_by: MatchBy,
    /// Training markers the model expects.
    pub model_markers: usize,
    /// Markers in the new file.
    pub file_markers: usize,
    /// Found with the same counted allele (strand-matched included).
    pub matched: usize,
    /// Found with the alleles swapped and flipped (strand-flipped included).
    pub flipped: usize,
    /// Of `matched + flipped`, those resolved on the opposite strand.
    pub strand: usize,
    /// Found without alleles to check (numeric CSV on either side).
    pub unchecked: usize,
    /// Not found: imputed.
    pub absent: usize,
    /// Found with incompatible alleles: imputed.
    pub allele_mismatch: usize,
    /// Markers of the new file the model does not use.
    pub unused: usize,
    /// Per training marker, in training order: what happened and the new file's marker index.
    #[serde(skip)]
    pub markers: Vec<(MarkerStatus, Option<usize>)>,
}

impl AlignReport {
    /// Training markers imputed (absent or allele mismatch).
    pub fn imputed(&self) -> usize {
        self.absent + self.allele_mismatch
    }

    /// Fraction of training markers whose calls come from the new file.
    pub fn overlap(&self) -> f64 {
        if self.model_markers == 0 {
            return 0.0;
        }
        (self.matched + self.flipped + self.unchecked) as f64 / self.model_markers as f64
    }
}

/// Orientation of a new marker's alleles against the training marker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Orientation {
    Same,
    Swapped,
    Unchecked,
    Mismatch,
}

fn known(a: &str) -> bool {
    !(a.is_empty() || a == "0" || a == "." || a == "-9")
}

/// `Same` / `Swapped` when the known alleles agree in that orientation (PLINK writes `0` for the
/// missing allele of a monomorphic marker), `Unchecked` when either side names no allele.
fn orientation(train: (&str, &str), new: (&str, &str)) -> Orientation {
    let (tc, to) = (train.0.to_ascii_uppercase(), train.1.to_ascii_uppercase());
    let (nc, no) = (new.0.to_ascii_uppercase(), new.1.to_ascii_uppercase());
    if !(known(&tc) || known(&to)) || !(known(&nc) || known(&no)) {
        return Orientation::Unchecked;
    }
    // a ~ b: equal, or one unknown; an orientation needs at least one known equality.
    let fits = |a: &str, b: &str| !known(a) || !known(b) || a == b;
    let hit = |a: &str, b: &str| known(a) && a == b;
    if fits(&tc, &nc) && fits(&to, &no) && (hit(&tc, &nc) || hit(&to, &no)) {
        Orientation::Same
    } else if fits(&tc, &no) && fits(&to, &nc) && (hit(&tc, &no) || hit(&to, &nc)) {
        Orientation::Swapped
    } else {
        Orientation::Mismatch
    }
}

fn complement(allele: &str) -> Option<String> {
    allele
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            'A' => Some('T'),
            'T' => Some('A'),
            'C' => Some('G'),
            'G' => Some('C'),
            _ => None,
        })
        .collect()
}

/// A SNP whose two alleles are complements (A/T, C/G) looks the same on both strands.
fn palindromic(a: &str, b: &str) -> bool {
    complement(a).is_some_and(|c| c.eq_ignore_ascii_case(b))
}

fn status_of(train: &Marker, new: &Marker) -> MarkerStatus {
    match orientation((&train.counted, &train.other), (&new.counted, &new.other)) {
        Orientation::Same => return MarkerStatus::Matched,
        Orientation::Swapped => return MarkerStatus::Flipped,
        Orientation::Unchecked => return MarkerStatus::Unchecked,
        Orientation::Mismatch => {}
    }
    if palindromic(&train.counted, &train.other) {
        return MarkerStatus::AlleleMismatch;
    }
    let (Some(nc), Some(no)) = (complement(&new.counted), complement(&new.other)) else {
        return MarkerStatus::AlleleMismatch;
    };
    match orientation((&train.counted, &train.other), (&nc, &no)) {
        Orientation::Same => MarkerStatus::StrandMatched,
        Orientation::Swapped => MarkerStatus::StrandFlipped,
        _ => MarkerStatus::AlleleMismatch,
    }
}

/// Chromosome names as written by different tools (`chr1`, `Chr1`, `1`) compare equal.
fn chrom_key(chrom: &str) -> String {
    let c = chrom.trim();
    let stripped = if c.len() > 3 && c[..3].eq_ignore_ascii_case("chr") { &c[3..] } else { c };
    stripped.to_ascii_uppercase()
}

/// Aligns `new` to the training markers `reference` (in training order): the result has `new`'s
/// samples and exactly the training markers, with dosages counting the training allele and
/// absent or incompatible markers missing. Fails when fewer than `min_overlap` of the training
/// markers are found, or when matching by position finds two usable markers at one position.
pub fn align(
    reference: &[Marker],
    new: &GenotypeMatrix,
    options: &AlignOptions,
) -> Result<(GenotypeMatrix, AlignReport)> {
    if !(0.0..=1.0).contains(&options.min_overlap) {
        return Err(CoreError::config("min_marker_overlap", options.min_overlap, "must be within [0, 1]"));
    }
    let file = new.markers();
    let mut candidates: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, m) in file.iter().enumerate() {
        let key = match options.match_by {
            MatchBy::Id if m.id == "." || m.id.is_empty() => continue,
            MatchBy::Id => m.id.clone(),
            MatchBy::ChromPos if m.pos == 0 => continue,
            MatchBy::ChromPos => format!("{}:{}", chrom_key(&m.chrom), m.pos),
        };
        candidates.entry(key).or_default().push(j);
    }
    let mut report = AlignReport {
        match_by: options.match_by,
        model_markers: reference.len(),
        file_markers: file.len(),
        matched: 0,
        flipped: 0,
        strand: 0,
        unchecked: 0,
        absent: 0,
        allele_mismatch: 0,
        unused: 0,
        markers: Vec::with_capacity(reference.len()),
    };
    let mut used_new = vec![false; file.len()];
    for t in reference {
        let key = match options.match_by {
            MatchBy::Id => t.id.clone(),
            MatchBy::ChromPos => format!("{}:{}", chrom_key(&t.chrom), t.pos),
        };
        let found = candidates.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        // Several markers at one position (split multi-allelic sites, duplicates): use the one
        // whose alleles fit; two that fit is ambiguous.
        let mut usable = found.iter().map(|&j| (j, status_of(t, &file[j]))).filter(|(_, s)| s.is_used());
        let entry = match (usable.next(), usable.next()) {
            (Some(a), None) => (a.1, Some(a.0)),
            (Some((a, _)), Some((b, _))) => {
                return Err(CoreError::Data(format!(
                    "model marker '{}' ({}:{}) matches both '{}' and '{}' of the genotype file; \
                     remove the duplicate or match by id",
                    t.id, t.chrom, t.pos, file[a].id, file[b].id
                )));
            }
            (None, _) if found.is_empty() => (MarkerStatus::Absent, None),
            (None, _) => (MarkerStatus::AlleleMismatch, Some(found[0])),
        };
        match entry.0 {
            MarkerStatus::Matched => report.matched += 1,
            MarkerStatus::Flipped => report.flipped += 1,
            MarkerStatus::StrandMatched => {
                report.matched += 1;
                report.strand += 1;
            }
            MarkerStatus::StrandFlipped => {
                report.flipped += 1;
                report.strand += 1;
            }
            MarkerStatus::Unchecked => report.unchecked += 1,
            MarkerStatus::Absent => report.absent += 1,
            MarkerStatus::AlleleMismatch => report.allele_mismatch += 1,
        }
        if let (true, Some(j)) = (entry.0.is_used(), entry.1) {
            used_new[j] = true;
        }
        report.markers.push(entry);
    }
    report.unused = used_new.iter().filter(|u| !**u).count();
    if report.overlap() < options.min_overlap {
        let absent: Vec<&str> = reference
            .iter()
            .zip(&report.markers)
            .filter(|(_, (s, _))| *s == MarkerStatus::Absent)
            .take(3)
            .map(|(m, _)| m.id.as_str())
            .collect();
        let hint = match options.match_by {
            MatchBy::Id => "check that both files name markers the same way, or try --match-by chrom-pos",
            MatchBy::ChromPos => "check that both files use the same reference genome, or try --match-by id",
        };
        return Err(CoreError::Data(format!(
            "only {} of the model's {} markers ({:.1} %) were found in the genotype file with compatible alleles \
             (matching by {}; {} absent{}, {} with other alleles), below --min-marker-overlap {}; {hint}",
            report.matched + report.flipped + report.unchecked,
            report.model_markers,
            100.0 * report.overlap(),
            match options.match_by {
                MatchBy::Id => "id",
                MatchBy::ChromPos => "chromosome and position",
            },
            report.absent,
            if absent.is_empty() { String::new() } else { format!(", e.g. {}", absent.join(", ")) },
            report.allele_mismatch,
            options.min_overlap
        )));
    }
    let n = new.n_samples();
    let m = reference.len();
    let mut calls = CallsBuilder::new(n, m);
    for (j, &(status, source)) in report.markers.iter().enumerate() {
        let Some(src) = source.filter(|_| status.is_used()) else { continue };
        for s in 0..n {
            let c = new.code(s, src);
            calls.set(s, j, if c != MISSING && status.flips() { MAX_CODE - c } else { c });
        }
    }
    let aligned = GenotypeMatrix::from_calls(new.samples().to_vec(), reference.to_vec(), calls)?;
    Ok((aligned, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(id: &str, chrom: &str, pos: u64, counted: &str, other: &str) -> Marker {
        Marker { id: id.into(), chrom: chrom.into(), pos, counted: counted.into(), other: other.into() }
    }

    fn reference() -> Vec<Marker> {
        vec![
            marker("a", "1", 10, "A", "G"),
            marker("b", "1", 20, "C", "T"),
            marker("c", "2", 5, "A", "C"),
            marker("d", "2", 9, "A", "T"),
            marker("e", "3", 1, "G", "T"),
        ]
    }

    #[test]
    fn shuffled_flipped_strand_and_absent() {
        // New file: c swapped, a as is, b on the other strand and swapped, d absent, e with
        // alleles that fit nothing, plus an extra marker.
        let markers = vec![
            marker("c", "2", 5, "C", "A"),
            marker("x", "9", 9, "A", "G"),
            marker("a", "1", 10, "A", "G"),
            marker("b", "1", 20, "A", "G"),
            marker("e", "3", 1, "A", "G"),
        ];
        let new = GenotypeMatrix::new(
            vec!["s1".into(), "s2".into()],
            markers,
            vec![0, 100, 200, 150, 100, MISSING, 0, 200, 100, 0],
        )
        .unwrap();
        let options = AlignOptions { min_overlap: 0.5, ..AlignOptions::default() };
        let (aligned, report) = align(&reference(), &new, &options).unwrap();
        assert_eq!((report.matched, report.flipped, report.strand), (1, 2, 1));
        assert_eq!((report.absent, report.allele_mismatch, report.unused), (1, 1, 2));
        assert_eq!(report.imputed(), 2);
        assert_eq!(aligned.markers(), reference().as_slice());
        // s1: a=200, b=2-1.5=0.5, c=2-0=2, d missing, e mismatch -> missing
        assert_eq!(*aligned.row(0), [200, 50, 200, MISSING, MISSING]);
        // s2: a=2, b=2-1=1, c missing stays missing
        assert_eq!(*aligned.row(1), [200, 100, MISSING, MISSING, MISSING]);
    }

    #[test]
    fn threshold_refuses_with_a_clear_message() {
        let new = GenotypeMatrix::new(vec!["s".into()], vec![marker("a", "1", 10, "A", "G")], vec![0]).unwrap();
        let err = align(&reference(), &new, &AlignOptions::default()).unwrap_err().to_string();
        assert!(err.contains("only 1 of the model's 5 markers (20.0 %)"), "{err}");
        assert!(err.contains("4 absent, e.g. b, c, d"), "{err}");
        assert!(err.contains("--match-by chrom-pos"), "{err}");
        let ok = align(&reference(), &new, &AlignOptions { min_overlap: 0.2, ..AlignOptions::default() });
        assert!(ok.is_ok());
        assert!(align(&reference(), &new, &AlignOptions { min_overlap: 1.5, ..AlignOptions::default() }).is_err());
    }

    #[test]
    fn by_position_with_chr_prefix_and_duplicates() {
        let markers = vec![
            marker(".", "chr1", 10, "G", "A"),
            marker(".", "Chr1", 20, "C", "T"),
            // Two records at 2:5: only the biallelic A/C one fits.
            marker("2_5_a", "chr2", 5, "G", "A"),
            marker("2_5_b", "chr2", 5, "C", "A"),
            marker(".", "2", 9, "A", "T"),
            marker(".", "3", 1, "G", "T"),
        ];
        let new = GenotypeMatrix::new(vec!["s".into()], markers, vec![0, 100, 200, 0, 200, 100]).unwrap();
        let by_id = align(&reference(), &new, &AlignOptions::default());
        assert!(by_id.is_err(), "no ids match");
        let options = AlignOptions { match_by: MatchBy::ChromPos, min_overlap: 1.0 };
        let (aligned, report) = align(&reference(), &new, &options).unwrap();
        assert_eq!((report.matched, report.flipped, report.unused), (3, 2, 1));
        assert_eq!(*aligned.row(0), [200, 100, 200, 200, 100]);
        // Two records that both fit are ambiguous.
        let dup = GenotypeMatrix::new(
            vec!["s".into()],
            vec![marker("p", "1", 10, "A", "G"), marker("q", "1", 10, "G", "A")],
            vec![0, 0],
        )
        .unwrap();
        let err = align(&reference()[..1], &dup, &options).unwrap_err().to_string();
        assert!(err.contains("matches both 'p' and 'q'"), "{err}");
    }

    #[test]
    fn orientation_rules() {
        assert_eq!(orientation(("A", "G"), ("a", "g")), Orientation::Same);
        assert_eq!(orientation(("A", "G"), ("G", "A")), Orientation::Swapped);
        // PLINK's 0 for the unseen allele of a monomorphic marker.
        assert_eq!(orientation(("A", "G"), ("0", "G")), Orientation::Same);
        assert_eq!(orientation(("A", "G"), ("0", "A")), Orientation::Swapped);
        assert_eq!(orientation(("A", "G"), ("", "")), Orientation::Unchecked);
        assert_eq!(orientation(("", ""), ("A", "G")), Orientation::Unchecked);
        assert_eq!(orientation(("A", "G"), ("A", "C")), Orientation::Mismatch);
        // A/T looks the same on both strands: never complemented.
        assert_eq!(
            status_of(&marker("d", "2", 9, "A", "T"), &marker("d", "2", 9, "C", "G")),
            MarkerStatus::AlleleMismatch
        );
        assert_eq!(status_of(&marker("d", "2", 9, "A", "T"), &marker("d", "2", 9, "T", "A")), MarkerStatus::Flipped);
        assert_eq!(
            status_of(&marker("b", "1", 2, "C", "T"), &marker("b", "1", 2, "G", "A")),
            MarkerStatus::StrandMatched
        );
        assert_eq!("chrom-pos".parse::<MatchBy>(), Ok(MatchBy::ChromPos));
        assert!("name".parse::<MatchBy>().is_err());
    }
}
