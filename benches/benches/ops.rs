//! Where a training step's time goes on the `flex` CPU backend: the layers the models share,
//! forward and backward, at the sizes of DeepGS (batch 30, 8 × 1,208 after its convolution)
//! and DLGWAS (batch 250, 10 × 1,225) on wheat599.
//!
//! `cargo bench -p genopred-benches --bench ops`

use burn::nn::pool::MaxPool1dConfig;
use burn::nn::{DropoutConfig, PaddingConfig1d, conv::Conv1dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{Criterion, criterion_group, criterion_main};

fn ops(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    device.seed(1);
    for (label, shape) in [("deepgs", [30usize, 8, 1208]), ("dlgwas", [250, 10, 1225])] {
        let mut group = c.benchmark_group(format!("ops_{label}"));
        group.sample_size(20);
        let x = Tensor::<3>::random(shape, Distribution::Default, &device).require_grad();
        let dropout = DropoutConfig::new(0.5).init();
        group.bench_function("burn_dropout_fwd_bwd", |b| b.iter(|| dropout.forward(x.clone()).sum().backward()));
        group.bench_function("mask_dropout_fwd_bwd", |b| {
            b.iter(|| genopred_train::dropout(&dropout, x.clone()).sum().backward())
        });
        let pool = MaxPool1dConfig::new(4).with_stride(4).init();
        group.bench_function("maxpool4_fwd_bwd", |b| b.iter(|| pool.forward(x.clone()).sum().backward()));
        let conv = Conv1dConfig::new(shape[1], shape[1], 20).with_padding(PaddingConfig1d::Same).init(&device);
        group.bench_function("conv1d_k20_same_fwd_bwd", |b| b.iter(|| conv.forward(x.clone()).sum().backward()));
        group.bench_function("relu_fwd_bwd", |b| b.iter(|| burn::tensor::activation::relu(x.clone()).sum().backward()));
        group.bench_function("mul_fwd_bwd", |b| b.iter(|| (x.clone() * x.clone()).sum().backward()));
        group.finish();
    }
}

criterion_group!(benches, ops);
criterion_main!(benches);
