//! Reading genotypes: PLINK at 2,000 × 50,000 (simulated), and the bundled fixtures in every format.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use genopred_benches::{fixture, simulated_plink};
use genopred_core::readers::{dosage_csv, plink, vcf};

fn big_plink(c: &mut Criterion) {
    let prefix = simulated_plink(2000, 50_000).expect("simulated PLINK data");
    let bed = prefix.with_extension("bed");
    let mut group = c.benchmark_group("read_plink_2000x50000");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2000 * 50_000));
    group.bench_function("genotypes", |b| {
        b.iter(|| plink::read_plink(&bed).expect("readable"));
    });
    group.finish();
}

fn fixtures(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_wheat599");
    group.throughput(Throughput::Elements(599 * 1225));
    group.bench_function("plink", |b| b.iter(|| plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("ok")));
    group.bench_function("vcf_gz", |b| b.iter(|| vcf::read_vcf(&fixture("wheat599/wheat599.vcf.gz")).expect("ok")));
    group.bench_function("csv", |b| {
        b.iter(|| dosage_csv::read_dosage_csv(&fixture("wheat599/wheat599_dosage.csv")).expect("ok"))
    });
    group.finish();
}

criterion_group!(benches, big_plink, fixtures);
criterion_main!(benches);
