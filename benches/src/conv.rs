//! A 1-D convolution as shifted slices and one matrix product: the alternative to burn's
//! `Conv1d` that issue 19 proposed for flex, kept here so the comparison can be repeated
//! (`cargo bench -p genopred-benches --bench ops -- conv1d`; `ops_gemm` times flex's GEMM alone).
//!
//! Measured on the 2-core machine (2026-12-04, `docs/baseline-results.md`): slower than burn's
//! layer at all three models' shapes (DNNGP 27–34 ms against 23 ms, DeepGS 50 against 13 ms,
//! DLGWAS 800 against 166 ms), because burn's layer already runs DNNGP's at flex's GEMM speed
//! for that shape, and the stacked slices (k times the input) cost more memory traffic than they
//! save at DeepGS's and DLGWAS's kernels of 18–20. What the models run on flex instead is
//! `genopred_train::conv`: one GEMM per kernel position read in place, forward and backward,
//! through a burn backend extension (`ops_conv` compares it with burn's layer).
//!
//! The same layer (the module's own weight and bias): pad, take the `k` shifted slices of the
//! input, stack them into `[batch, channels · k, length]` and multiply by the weight seen as
//! `[out, channels · k]`; autodiff derives the backward pass.

use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::PadMode;

/// Padding before and after for `length` positions, as burn's `Conv1d` computes it (stride 1).
fn padding(config: &PaddingConfig1d, length: usize, kernel: usize) -> (usize, usize) {
    match config {
        PaddingConfig1d::Valid => (0, 0),
        PaddingConfig1d::Explicit(left, right) => (*left, *right),
        PaddingConfig1d::Same => {
            let total = if length > 0 { kernel - 1 } else { 0 };
            (total / 2, total - total / 2)
        }
    }
}

/// `conv.forward(x)` as shifted slices and one matrix product (`x`: `[batch, channels, length]`).
///
/// # Panics
/// If `conv` has a stride, dilation or groups other than 1, or, as burn's layer does, if `x` is
/// shorter than the kernel after padding.
pub fn conv1d_gemm(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    assert!(
        conv.stride == 1 && conv.dilation == 1 && conv.groups == 1,
        "conv1d_gemm: stride, dilation and groups must be 1"
    );
    let [batch, channels, length] = x.dims();
    let [out, _, kernel] = conv.weight.dims();
    let (left, right) = padding(&conv.padding, length, kernel);
    let x = if left + right > 0 { x.pad([(left, right)], PadMode::Constant(0.0)) } else { x };
    let padded = length + left + right;
    assert!(padded >= kernel, "conv1d_gemm: {padded} positions (padded) for a kernel of {kernel}");
    let positions = padded - kernel + 1;
    // cols[b, c·k + t, l] = x[b, c, l + t], matching the weight's [out, c, k] flattened.
    let cols = if kernel == 1 {
        x
    } else {
        let slices = (0..kernel).map(|t| x.clone().slice([0..batch, 0..channels, t..t + positions]).unsqueeze_dim(2));
        Tensor::<4>::cat(slices.collect(), 2).reshape([batch, channels * kernel, positions])
    };
    let y = conv.weight.val().reshape([1, out, channels * kernel]).matmul(cols);
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, out, 1]),
        None => y,
    }
}

/// [`conv1d_gemm`] with one matrix product over the whole batch instead of one per sample
/// (the columns laid out `[channels · k, batch · length]`).
pub fn conv1d_gemm_flat(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    assert!(conv.stride == 1 && conv.dilation == 1 && conv.groups == 1);
    let [batch, channels, length] = x.dims();
    let [out, _, kernel] = conv.weight.dims();
    let (left, right) = padding(&conv.padding, length, kernel);
    let x = if left + right > 0 { x.pad([(left, right)], PadMode::Constant(0.0)) } else { x };
    let positions = length + left + right - kernel + 1;
    let x = x.swap_dims(0, 1); // [c, b, padded]
    let slices = (0..kernel).map(|t| x.clone().slice([0..channels, 0..batch, t..t + positions]).unsqueeze_dim(1));
    let cols = Tensor::<4>::cat(slices.collect(), 1).reshape([channels * kernel, batch * positions]);
    let y = conv.weight.val().reshape([out, channels * kernel]).matmul(cols).reshape([out, batch, positions]);
    let y = match &conv.bias {
        Some(bias) => y + bias.val().reshape([out, 1, 1]),
        None => y,
    };
    y.swap_dims(0, 1)
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// One of the convolution's computations.
type ConvForm = fn(&Conv1d, Tensor<3>) -> Tensor<3>;

/// Checks that [`conv1d_gemm`]'s and [`conv1d_gemm_flat`]'s forward values and gradients of
/// input, weight and bias agree with burn's layer on `device` (an autodiff device) within
/// `tolerance` of each tensor's largest magnitude, over kernels odd and even, every padding,
/// with and without bias.
///
/// # Panics
/// On the first disagreement, naming the case.
pub fn check_against_burn(device: &Device, tolerance: f32) {
    let cases = [
        (3, 5, 4, PaddingConfig1d::Same, true, 17),
        (4, 10, 20, PaddingConfig1d::Same, true, 40),
        (2, 3, 5, PaddingConfig1d::Same, false, 9),
        (1, 8, 18, PaddingConfig1d::Valid, true, 30),
        (6, 2, 1, PaddingConfig1d::Valid, true, 7),
        (2, 3, 3, PaddingConfig1d::Explicit(2, 1), true, 6),
    ];
    let forms: [(&str, ConvForm); 2] = [("gemm", conv1d_gemm), ("flat", conv1d_gemm_flat)];
    for (c_in, c_out, kernel, padding, bias, length) in cases {
        for (form, f) in forms {
            let what = format!("{form}: {c_in}→{c_out}, k {kernel}, {padding:?}, bias {bias}, length {length}");
            let conv =
                Conv1dConfig::new(c_in, c_out, kernel).with_padding(padding.clone()).with_bias(bias).init(device);
            let x = Tensor::<3>::random([3, c_in, length], Distribution::Normal(0.0, 1.0), device).require_grad();
            let reference = conv.forward(x.clone());
            let ours = f(&conv, x.clone());
            assert_eq!(ours.dims(), reference.dims(), "{what}");
            let weights = Tensor::<3>::random(reference.dims(), Distribution::Normal(0.0, 1.0), device);
            let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
            assert!(max_abs_diff(ours.clone(), reference.clone()) <= tolerance * scale, "{what}: forward");
            let g_ref = (reference * weights.clone()).sum().backward();
            let g_ours = (ours * weights).sum().backward();
            let grads = |g: &burn::tensor::Gradients| {
                (
                    x.grad(g).unwrap(),
                    conv.weight.val().grad(g).unwrap(),
                    conv.bias.as_ref().map(|b| b.val().grad(g).unwrap()),
                )
            };
            let (dx_ref, dw_ref, db_ref) = grads(&g_ref);
            let (dx, dw, db) = grads(&g_ours);
            let tol = |t: &Tensor<3>| tolerance * t.clone().abs().max().into_scalar::<f32>().max(1.0);
            assert!(max_abs_diff(dx, dx_ref.clone()) <= tol(&dx_ref), "{what}: input gradient");
            assert!(max_abs_diff(dw, dw_ref.clone()) <= tol(&dw_ref), "{what}: weight gradient");
            if let (Some(db), Some(db_ref)) = (db, db_ref) {
                let t = tolerance * db_ref.clone().abs().max().into_scalar::<f32>().max(1.0);
                assert!(max_abs_diff(db, db_ref) <= t, "{what}: bias gradient");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_matrix_forms_compute_burns_convolution_and_its_gradients() {
        super::check_against_burn(&burn::prelude::Device::flex().autodiff(), 1e-5);
    }
}
