//! Encodings and the GBLUP fit at the size of the wheat599 fixture (one 10-fold training set).

use criterion::{Criterion, criterion_group, criterion_main};
use genopred_benches::fixture;
use genopred_core::encoding::{DosageEncoder, OneHotEncoder, Pca, PcaComponents, Scaling};
use genopred_core::readers::plink;
use genopred_gblup::{FittedGblup, GblupConfig};

fn encodings_and_gblup(c: &mut Criterion) {
    let geno = plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("fixture");
    let train: Vec<usize> = (0..539).collect();
    let y: Vec<f64> = train.iter().map(|&i| (i % 7) as f64).collect();
    c.bench_function("standardise_wheat599", |b| {
        b.iter(|| DosageEncoder::fit(&geno, &train, Scaling::Standardised).transform(&geno, &train))
    });
    c.bench_function("onehot_wheat599", |b| b.iter(|| OneHotEncoder::fit(&geno, &train).transform(&geno, &train)));
    let mut group = c.benchmark_group("slow");
    group.sample_size(10);
    group.bench_function("pca95_wheat599", |b| {
        b.iter(|| Pca::fit(&geno, &train, PcaComponents::VarianceFraction(0.95)).expect("pca"))
    });
    group.bench_function("gblup_fit_wheat599", |b| {
        b.iter(|| FittedGblup::fit(&geno, &train, &y, &GblupConfig::default(), 1).expect("fit"))
    });
    group.finish();
}

criterion_group!(benches, encodings_and_gblup);
criterion_main!(benches);
