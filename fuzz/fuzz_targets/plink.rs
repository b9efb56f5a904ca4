//! PLINK `.bed/.bim/.fam`: the input is split at its first two 0xFE bytes into the `.bim`, the
//! `.fam` and the `.bed` body (after a valid magic header). Any error is fine; a panic, a hang or
//! a dosage outside 0–2 is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFE);
    let (bim, fam, bed) = (parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]), parts.next().unwrap_or(&[]));
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("x");
    std::fs::write(prefix.with_extension("bim"), bim).unwrap();
    std::fs::write(prefix.with_extension("fam"), fam).unwrap();
    // A valid header most of the time, so the fuzzer reaches the genotype decoding.
    let mut b = vec![0x6c, 0x1b, 0x01];
    b.extend_from_slice(bed);
    std::fs::write(prefix.with_extension("bed"), &b).unwrap();
    if let Ok(g) = genopred_core::readers::plink::read_plink(&prefix.with_extension("bed")) {
        assert_eq!(g.samples().len(), g.n_samples());
        for i in 0..g.n_samples() {
            for j in 0..g.n_markers() {
                assert!(g.dosage(i, j).is_none_or(|d| (0.0..=2.0).contains(&d)));
            }
        }
    }
});
