//! One training step (forward, loss, backward, optimiser update) and one inference batch of
//! every model of the catalogue that trains in steps (and each variant it names, such as
//! DNNGP's v3), at its default batch size and input size on the wheat599 fixture (1,225 markers;
//! DNNGP's PCA keeps 95 % of the variance of a 10-fold training set), on every backend compiled
//! into the benchmarks (`flex`; `wgpu`, `cuda`, `tch` with the features of the same names).
//! Groups are named `LABEL/BACKEND`.
//!
//! `cargo bench -p genopred-benches --bench train_step [--features wgpu]`

use criterion::{Criterion, criterion_group, criterion_main};
use genopred_benches::fixture;
use genopred_core::readers::plink;

fn train_steps(c: &mut Criterion) {
    let geno = plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("fixture");
    // One 10-fold training set minus its 10 % validation subset.
    let train: Vec<usize> = (0..485).collect();
    for entry in genopred_zoo::MODELS {
        for (backend, device) in genopred_benches::backends() {
            for mut bench in entry.step_benches(&geno, &train, &device) {
                let (b, shape) = (bench.batch(), bench.shape());
                let mut group = c.benchmark_group(format!("{}/{backend}", bench.label()));
                group.sample_size(20);
                group.bench_function(format!("train_step_b{b}_{}x{}", shape.0, shape.1), |it| {
                    it.iter(|| bench.train_step())
                });
                group.bench_function(format!("infer_b{b}_{}x{}", shape.0, shape.1), |it| it.iter(|| bench.infer()));
                group.finish();
            }
        }
    }
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
