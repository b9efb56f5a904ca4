//! One training step (forward, loss, backward, optimiser update) and one inference batch per
//! neural model, at each model's default batch size and input size on the wheat599 fixture
//! (1,225 markers; DNNGP's PCA keeps 95 % of the variance of a 10-fold training set), on every
//! backend compiled into the benchmarks (`flex`; `wgpu`, `cuda`, `tch` with the features of the
//! same names). Groups are named `MODEL/BACKEND`.
//!
//! `cargo bench -p genopred-benches --bench train_step [--features wgpu]`

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};
use genopred_benches::fixture;
use genopred_core::readers::plink;
use genopred_train::{Architecture, InputContext, Network, optimizer, step};

fn bench_model<A: Architecture>(c: &mut Criterion, label: &str, config: &A::Config, input: &A::Input) {
    for (backend, plain) in genopred_benches::backends() {
        let device = plain.clone().autodiff();
        device.seed(1);
        let shape = A::input_shape(input);
        let tc = A::train_config(config).clone();
        let b = tc.batch_size;
        let x = Tensor::<3>::random([b, shape.0, shape.1], Distribution::Default, &device);
        let y = Tensor::<2>::random([b, 1], Distribution::Default, &device);
        let mut net = Some(A::build(config, shape, &device));
        let mut optim = optimizer(&tc);
        let mut group = c.benchmark_group(format!("{label}/{backend}"));
        group.sample_size(20);
        group.bench_function(format!("train_step_b{b}_{}x{}", shape.0, shape.1), |bench| {
            bench.iter(|| {
                let (next, loss) =
                    step(net.take().expect("net"), &mut optim, x.clone(), y.clone(), &tc, tc.learning_rate);
                net = Some(next);
                // Reading the loss back waits for the step to finish on asynchronous (GPU) backends.
                loss.into_scalar::<f32>()
            })
        });
        let eval = net.take().expect("net").valid();
        let xe = Tensor::<3>::random([b, shape.0, shape.1], Distribution::Default, &plain);
        group.bench_function(format!("infer_b{b}_{}x{}", shape.0, shape.1), |bench| {
            bench.iter(|| eval.forward(xe.clone()).into_data())
        });
        group.finish();
    }
}

fn train_steps(c: &mut Criterion) {
    let geno = plink::read_plink(&fixture("wheat599/wheat599.bed")).expect("fixture");
    // One 10-fold training set minus its 10 % validation subset.
    let train: Vec<usize> = (0..485).collect();
    let ctx = InputContext { geno: &geno, train_rows: &train, genotyped_rows: &train };

    use genopred_dnngp::{Dnngp, DnngpConfig, Variant};
    for (label, config) in [("dnngp", DnngpConfig::new()), ("dnngp_v3", DnngpConfig::new().with_variant(Variant::V3))] {
        let input = Dnngp::fit_input(&config, &ctx).expect("pca");
        bench_model::<Dnngp>(c, label, &config, &input);
    }
    use genopred_deepgs::{DeepGs, DeepGsConfig};
    let config = DeepGsConfig::new();
    bench_model::<DeepGs>(c, "deepgs", &config, &DeepGs::fit_input(&config, &ctx).expect("input"));
    use genopred_dlgwas::{Dlgwas, DlgwasConfig};
    let config = DlgwasConfig::new();
    bench_model::<Dlgwas>(c, "dlgwas", &config, &Dlgwas::fit_input(&config, &ctx).expect("input"));
    use genopred_mlp::{Mlp, MlpConfig};
    let config = MlpConfig::new();
    bench_model::<Mlp>(c, "mlp", &config, &Mlp::fit_input(&config, &ctx).expect("input"));
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
