//! VCF (plain text): a fixed valid header, then fuzzed records; or a wholly fuzzed file when the
//! input starts with '#'.
#![no_main]

use libfuzzer_sys::fuzz_target;

const HEAD: &str = "##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n\
##contig=<ID=1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n";

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.vcf");
    let mut bytes = Vec::new();
    if data.first() != Some(&b'#') {
        bytes.extend_from_slice(HEAD.as_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(&path, &bytes).unwrap();
    if let Ok((g, _)) = genopred_core::readers::vcf::read_vcf(&path) {
        assert!(g.n_markers() > 0);
    }
});
