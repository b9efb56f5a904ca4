//! Where a training step's time goes on the `flex` CPU backend: the layers the models share,
//! forward and backward, at the sizes of DeepGS (batch 30, 8 × 1,208 after its convolution)
//! and DLGWAS (batch 250, 10 × 1,225) on wheat599, and DNNGP's layers (batch 64, 64 filters
//! × 215 principal components). `benches/reference/ops.py` times the DNNGP layers in PyTorch;
//! `docs/baseline-results.md` compares them (flex's convolution is the gap).
//!
//! `cargo bench -p genopred-benches --bench ops`

use burn::nn::pool::MaxPool1dConfig;
use burn::nn::{BatchNormConfig, DropoutConfig, PaddingConfig1d, conv::Conv1dConfig};
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
        // The layer the models run (forward alone and the raw passes: the `ops_conv` group).
        group.bench_function("genopred_conv1d_k20_same_fwd_bwd", |b| {
            b.iter(|| genopred_train::conv1d(&conv, x.clone()).sum().backward())
        });
        group.bench_function("conv1d_gemm_k20_same_fwd_bwd", |b| {
            b.iter(|| genopred_benches::conv::conv1d_gemm(&conv, x.clone()).sum().backward())
        });
        group.bench_function("conv1d_gemm_flat_k20_same_fwd_bwd", |b| {
            b.iter(|| genopred_benches::conv::conv1d_gemm_flat(&conv, x.clone()).sum().backward())
        });
        group.bench_function("relu_fwd_bwd", |b| b.iter(|| burn::tensor::activation::relu(x.clone()).sum().backward()));
        group.bench_function("mul_fwd_bwd", |b| b.iter(|| (x.clone() * x.clone()).sum().backward()));
        group.finish();
    }
    // One DNNGP block at its default size: conv(k 4, same) → ReLU → dropout → batch norm.
    let mut group = c.benchmark_group("ops_dnngp");
    group.sample_size(20);
    let x = Tensor::<3>::random([64, 64, 215], Distribution::Default, &device).require_grad();
    let conv = Conv1dConfig::new(64, 64, 4).with_padding(PaddingConfig1d::Same).init(&device);
    group.bench_function("conv1d_k4_same_fwd_bwd", |b| b.iter(|| conv.forward(x.clone()).sum().backward()));
    group.bench_function("genopred_conv1d_k4_same_fwd_bwd", |b| {
        b.iter(|| genopred_train::conv1d(&conv, x.clone()).sum().backward())
    });
    group.bench_function("conv1d_gemm_k4_same_fwd_bwd", |b| {
        b.iter(|| genopred_benches::conv::conv1d_gemm(&conv, x.clone()).sum().backward())
    });
    group.bench_function("conv1d_gemm_flat_k4_same_fwd_bwd", |b| {
        b.iter(|| genopred_benches::conv::conv1d_gemm_flat(&conv, x.clone()).sum().backward())
    });
    let bn = BatchNormConfig::new(64).with_momentum(0.01).with_epsilon(1e-3).init(&device);
    group.bench_function("batch_norm_train_fwd_bwd", |b| b.iter(|| bn.forward(x.clone()).sum().backward()));
    group.bench_function("genopred_batch_norm_fwd_bwd", |b| {
        b.iter(|| genopred_train::batch_norm(&bn, x.clone()).sum().backward())
    });
    let dropout = DropoutConfig::new(0.5).init();
    group.bench_function("mask_dropout_fwd_bwd", |b| {
        b.iter(|| genopred_train::dropout(&dropout, x.clone()).sum().backward())
    });
    group.bench_function("relu_fwd_bwd", |b| b.iter(|| burn::tensor::activation::relu(x.clone()).sum().backward()));
    group.bench_function("swap_dims_copy", |b| b.iter(|| x.clone().swap_dims(0, 1).reshape([64, 64 * 215]).sum()));
    group.finish();
}

/// flex's single-precision GEMM alone: a square product (the machine's practical peak) and the
/// product inside DNNGP's convolution layer (`[64, 256] × [256, 64 · 215]`).
fn gemm(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(1);
    let mut group = c.benchmark_group("ops_gemm");
    group.sample_size(20);
    for (label, [m, k, n]) in [
        ("square_1024", [1024usize, 1024, 1024]),
        ("dnngp_conv", [64, 256, 64 * 215]),
        ("dnngp_conv_channels_last", [64 * 215, 256, 64]),
        ("dnngp_conv_weight_grad", [64, 64 * 215, 256]),
    ] {
        let a = Tensor::<2>::random([m, k], Distribution::Default, &device);
        let b = Tensor::<2>::random([k, n], Distribution::Default, &device);
        let flops = 2.0 * (m * k * n) as f64;
        group.throughput(criterion::Throughput::Elements(flops as u64));
        group.bench_function(label, |bench| bench.iter(|| a.clone().matmul(b.clone()).into_data()));
    }
    // One product per sample, as burn's batched matmul runs DNNGP's layer.
    let a = Tensor::<3>::random([1, 64, 256], Distribution::Default, &device);
    let b = Tensor::<3>::random([64, 256, 215], Distribution::Default, &device);
    group.throughput(criterion::Throughput::Elements(2 * 64 * 256 * 64 * 215));
    group.bench_function("dnngp_conv_batched", |bench| bench.iter(|| a.clone().matmul(b.clone()).into_data()));
    group.finish();
}

/// burn's convolution layer against `genopred_train::conv`'s passes at every convolution of the
/// models' defaults on wheat599: forward alone, and forward with both gradients.
fn conv_kernels(c: &mut Criterion) {
    use genopred_train::conv::{ConvGeometry, forward, input_grad, weight_grad};
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut group = c.benchmark_group("ops_conv");
    group.sample_size(10);
    // (label, batch, c_in, c_out, length, kernel, "same" padding)
    for (label, batch, ci, co, len, k, same) in [
        ("dnngp_64_64_k4", 64usize, 64usize, 64usize, 215usize, 4usize, true),
        ("dnngp_1_64_k4", 64, 1, 64, 215, 4, true),
        ("deepgs_1_8_k18", 30, 1, 8, 1225, 18, false),
        ("dlgwas_4_10_k4", 250, 4, 10, 1225, 4, true),
        ("dlgwas_10_10_k20", 250, 10, 10, 1225, 20, true),
        ("dlgwas_10_10_k4", 250, 10, 10, 1225, 4, true),
    ] {
        let padding = if same { PaddingConfig1d::Same } else { PaddingConfig1d::Valid };
        let conv = Conv1dConfig::new(ci, co, k).with_padding(padding).init(&device);
        let x = Tensor::<3>::random([batch, ci, len], Distribution::Default, &device).require_grad();
        group.bench_function(format!("{label}/burn_fwd"), |b| {
            let (xi, convi) = (x.clone().inner(), conv.clone().valid());
            b.iter(|| convi.forward(xi.clone()).into_data())
        });
        group.bench_function(format!("{label}/burn_fwd_bwd"), |b| b.iter(|| conv.forward(x.clone()).sum().backward()));
        let (pl, pr) = if same { ((k - 1) / 2, k - 1 - (k - 1) / 2) } else { (0, 0) };
        let g = ConvGeometry::new(batch, ci, co, len, k, pl, pr).unwrap();
        let xs = x.to_data().try_to_vec::<f32>().unwrap();
        let ws = conv.weight.val().to_data().try_to_vec::<f32>().unwrap();
        let bs = conv.bias.as_ref().unwrap().val().to_data().try_to_vec::<f32>().unwrap();
        let dy = vec![1.0f32; batch * co * g.len_out];
        group.bench_function(format!("{label}/kernel_fwd"), |b| b.iter(|| forward(&g, &xs, &ws, Some(&bs))));
        group.bench_function(format!("{label}/kernel_fwd_bwd"), |b| {
            b.iter(|| {
                let y = forward(&g, &xs, &ws, Some(&bs));
                (y, input_grad(&g, &ws, &dy), weight_grad(&g, &xs, &dy))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ops, gemm, conv_kernels);
criterion_main!(benches);
