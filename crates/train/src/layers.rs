//! Layer functions the models share where burn's own is slow on the CPU backend.
//!
//! [`dropout`]: burn's `Dropout` draws its mask element by element from the backend's ChaCha12
//! generator and multiplies twice (mask, then `1/keep`); here the mask is filled in bulk from a
//! seeded ChaCha8 generator, already scaled, and applied with one multiply. Same semantics and
//! distribution; another random pattern. On flex (2 cores, `benches/ops.rs`) forward + backward
//! takes 0.82 ms instead of 6.4 ms at DeepGS's size and 17 ms instead of 80 ms at DLGWAS's.
//!
//! [`batch_norm`]: in training mode burn's `BatchNorm` brings channels first with `swap_dims` and
//! a reshape copy, twice in forward and twice more in its backward; here the per-channel mean
//! and variance are reductions over the batch and length axes in place, and autodiff derives the
//! backward from them. Same output, gradients and running statistics. On flex (2 cores,
//! `ops_dnngp` in `benches/benches/ops.rs`) forward + backward at DNNGP's size takes 3.1 ms
//! instead of 5.4–8.2 ms (PyTorch: 2.5 ms).
//!
//! [`conv1d`]: on flex, burn's `Conv1d` runs its forward pass through im2col and its backward
//! pass as a transposed convolution and a convolution of the input with the output gradient;
//! [`crate::conv`] runs all three as GEMMs read in place. Forward + backward on flex (2 cores,
//! `ops_conv` in `benches/benches/ops.rs`): DNNGP's 64 → 64 layer 18.2 → 7.6 ms, DLGWAS's
//! kernel-20 layer 142 → 34 ms (see docs/baseline-results.md). Other backends run burn's layer.

use std::cell::RefCell;

use burn::nn::conv::Conv1d;
use burn::nn::{BatchNorm, Dropout, PaddingConfig1d};
use burn::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

thread_local! {
    /// One generator per thread: a training runs its steps on one thread, so folds trained at
    /// once on several threads (`genopred cv --jobs`) draw their masks independently.
    static MASK_RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
}

/// Seed the generator [`dropout`] draws its masks from on this thread. The trainer calls this
/// with the fold's seed before training, on the thread that runs the training steps, so masks
/// are reproducible whatever else runs in the process.
pub fn seed_dropout(seed: u64) {
    MASK_RNG.with(|r| *r.borrow_mut() = Some(genopred_core::cv::seed::rng(seed)));
}

/// Inverted dropout with burn's semantics: active only when `layer` is in training mode and `x`
/// lives on an autodiff device (that is, inside a training step), identity otherwise. Kept
/// elements are scaled by `1 / (1 - p)`.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let p = layer.prob;
    if !layer.training.is_enabled() || !x.device().is_autodiff() || p == 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    // P(u < threshold) = keep for u uniform on the 32-bit integers.
    let threshold = (keep * 4_294_967_296.0).round().min(u32::MAX as f64) as u64;
    let scale = (1.0 / keep) as f32;
    let shape = x.shape();
    let mut bits = vec![0u32; shape.num_elements()];
    MASK_RNG.with(|r| r.borrow_mut().get_or_insert_with(|| genopred_core::cv::seed::rng(0)).fill(&mut bits[..]));
    let mask: Vec<f32> = bits.into_iter().map(|u| if (u as u64) < threshold { scale } else { 0.0 }).collect();
    let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
    x * mask
}

/// `bn.forward(x)` for `x` of shape `[batch, channels, length]`, with the training-mode
/// statistics reduced in place (see the module's documentation). In training mode (an autodiff
/// device and `bn` training, as burn decides) the batch's mean and biased variance per channel
/// normalise `x`, and the running statistics move by `bn.momentum` towards them, as burn does;
/// otherwise burn's inference path (the running statistics) runs.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<3>) -> Tensor<3> {
    if !(x.device().is_autodiff() && bn.training.is_enabled()) {
        return bn.forward(x);
    }
    let [_, channels, _] = x.dims();
    let device = x.device();
    let mean = x.clone().mean_dim(2).mean_dim(0);
    let centred = x - mean.clone();
    let variance = centred.clone().square().mean_dim(2).mean_dim(0);
    let momentum = bn.momentum;
    let running = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<3>| {
        let old = state.value_sync().to_device(&device);
        let new = old.mul_scalar(1.0 - momentum).add(batch.detach().reshape([channels]).mul_scalar(momentum));
        state.update(new.detach());
    };
    running(&bn.running_mean, mean);
    running(&bn.running_var, variance.clone());
    let scale = (variance + bn.epsilon).sqrt().recip() * bn.gamma.val().reshape([1, channels, 1]);
    centred * scale + bn.beta.val().reshape([1, channels, 1])
}

/// `conv.forward(x)` for `x` of shape `[batch, channels, length]`: the same numbers and
/// gradients as burn's layer. On flex a stride-1 convolution with a bias (every convolution of
/// DNNGP, DLGWAS and DeepGS at their defaults) runs as [`crate::conv`]'s GEMMs; anything else
/// (other backends, strides, dilations, groups, f64) runs burn's layer.
pub fn conv1d(conv: &Conv1d, x: Tensor<3>) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if let Some(bias) = &conv.bias {
        let on_flex = x.device().inner() == Device::flex();
        let plain = conv.stride == 1 && conv.dilation == 1 && conv.groups == 1;
        let f32s = x.dtype() == burn::tensor::DType::F32 && conv.weight.val().dtype() == burn::tensor::DType::F32;
        let ([batch, channels, length], [c_out, _, kernel]) = (x.dims(), conv.weight.dims());
        let (left, right) = conv_padding(conv, length);
        // The kernel needs an output to compute (a non-empty batch, an input as wide as the kernel).
        let fits = crate::conv::ConvGeometry::new(batch, channels, c_out, length, kernel, left, right).is_some();
        if on_flex && plain && f32s && fits {
            return crate::conv::flex_conv1d(x, conv.weight.val(), bias.val(), left, right);
        }
    }
    conv.forward(x)
}

/// The zeros burn's `Conv1d` puts before and after an input of `length` positions.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
fn conv_padding(conv: &Conv1d, length: usize) -> (usize, usize) {
    match &conv.padding {
        PaddingConfig1d::Valid => (0, 0),
        PaddingConfig1d::Explicit(left, right) => (*left, *right),
        PaddingConfig1d::Same => {
            // burn's (and TensorFlow's) "same": the output has ⌈length / stride⌉ positions, and
            // an odd total puts the extra zero after (burn counts the kernel without dilation).
            let out = length.div_ceil(conv.stride);
            let total = if out > 0 { ((out - 1) * conv.stride + conv.kernel_size).saturating_sub(length) } else { 0 };
            (total / 2, total - total / 2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{BatchNormConfig, DropoutConfig};
    use burn::tensor::Distribution;

    #[test]
    fn batch_norm_reduced_in_place_is_burns_batch_norm() {
        let device = Device::flex().autodiff();
        let make = || {
            let bn = BatchNormConfig::new(5).with_epsilon(1e-3).with_momentum(0.3).init(&device);
            // γ and β away from 1 and 0, so that both enter the check.
            BatchNorm {
                gamma: Param::from_tensor(Tensor::<1>::from_floats([1.7, 0.4, 2.0, 1.0, 0.9], &device)),
                beta: Param::from_tensor(Tensor::<1>::from_floats([-0.3, 0.1, 0.0, 0.5, -1.0], &device)),
                ..bn
            }
        };
        let (burns, ours) = (make(), make());
        let diff = |a: Tensor<3>, b: Tensor<3>| (a - b).abs().max().into_scalar::<f32>();
        let diff1 = |a: Tensor<1>, b: Tensor<1>| (a - b).abs().max().into_scalar::<f32>();
        for step in 0..3 {
            let x = (Tensor::<3>::random([4, 5, 9], Distribution::Normal(0.0, 1.0), &device) * 3.0 + step as f32)
                .require_grad();
            let weights = Tensor::<3>::random([4, 5, 9], Distribution::Normal(0.0, 1.0), &device);
            let reference = burns.forward(x.clone());
            let mine = batch_norm(&ours, x.clone());
            assert!(diff(mine.clone(), reference.clone()) < 1e-5, "step {step}: output");
            let g_ref = (reference * weights.clone()).sum().backward();
            let g_mine = (mine * weights).sum().backward();
            assert!(diff(x.grad(&g_mine).unwrap(), x.grad(&g_ref).unwrap()) < 1e-4, "step {step}: input gradient");
            let (gamma, beta) =
                (|b: &BatchNorm, g| b.gamma.val().grad(g).unwrap(), |b: &BatchNorm, g| b.beta.val().grad(g).unwrap());
            assert!(diff1(gamma(&ours, &g_mine), gamma(&burns, &g_ref)) < 1e-4, "step {step}: γ gradient");
            assert!(diff1(beta(&ours, &g_mine), beta(&burns, &g_ref)) < 1e-4, "step {step}: β gradient");
            // The running statistics moved the same way.
            assert!(diff1(ours.running_mean.value(), burns.running_mean.value()) < 1e-5, "step {step}: running mean");
            assert!(diff1(ours.running_var.value(), burns.running_var.value()) < 1e-4, "step {step}: running variance");
        }
        assert!(diff1(ours.running_mean.value(), BatchNormConfig::new(5).init(&device).running_mean.value()) > 0.1);
        // Inference mode uses the running statistics, as burn's.
        let x = Tensor::<3>::random([2, 5, 3], Distribution::Default, &device.clone().without_autodiff());
        let (burns, ours) = (burns.valid(), ours.valid());
        assert!(diff(batch_norm(&ours, x.clone()), burns.forward(x)) < 1e-6);
    }

    #[test]
    fn conv1d_is_burns_layer_in_output_and_gradients() {
        use burn::nn::conv::Conv1dConfig;
        let device = Device::flex().autodiff();
        let diff = |a: Tensor<3>, b: Tensor<3>| (a - b).abs().max().into_scalar::<f32>();
        // (input channels, kernel, stride, padding): even and odd kernels under "same" (an even
        // one pads one more zero after), explicit and valid padding, DLGWAS's kernel of 20 and
        // DeepGS's single channel and kernel of 18; with the `flex` feature these run
        // `crate::conv`'s kernels through burn's extension, and a stride of 2 runs burn's layer.
        let cases = [
            (40, 4, 1, PaddingConfig1d::Same),
            (40, 5, 1, PaddingConfig1d::Same),
            (40, 4, 2, PaddingConfig1d::Same),
            (40, 3, 1, PaddingConfig1d::Explicit(2, 0)),
            (4, 3, 1, PaddingConfig1d::Valid),
            (4, 20, 1, PaddingConfig1d::Same),
            (1, 18, 1, PaddingConfig1d::Valid),
        ];
        for (channels, kernel, stride, padding) in cases {
            let label = format!("{channels} channels, kernel {kernel}, stride {stride}, {padding:?}");
            let conv = Conv1dConfig::new(channels, 6, kernel).with_stride(stride).with_padding(padding).init(&device);
            let x = Tensor::<3>::random([3, channels, 23], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let reference = conv.forward(x.clone());
            let mine = conv1d(&conv, x.clone());
            assert_eq!(mine.dims(), reference.dims(), "{label}: shape");
            assert!(diff(mine.clone(), reference.clone()) < 1e-5, "{label}: output");
            // Weighted by position, so that a shifted output or gradient shows.
            let weights = Tensor::<3>::random(reference.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g_ref = (reference * weights.clone()).sum().backward();
            let g_mine = (mine * weights).sum().backward();
            assert!(diff(x.grad(&g_mine).unwrap(), x.grad(&g_ref).unwrap()) < 1e-5, "{label}: input gradient");
            let w = |g| conv.weight.val().grad(g).unwrap();
            assert!(diff(w(&g_mine), w(&g_ref)) < 1e-4, "{label}: weight gradient");
            let b = |g| conv.bias.as_ref().unwrap().val().grad(g).unwrap();
            let bias_diff = (b(&g_mine) - b(&g_ref)).abs().max().into_scalar::<f32>();
            assert!(bias_diff < 1e-4, "{label}: bias gradient");
        }
        // Only the weights tracked (the input a constant), as in a network's first layer.
        let conv = Conv1dConfig::new(4, 6, 4).with_padding(PaddingConfig1d::Same).init(&device);
        let x = Tensor::<3>::random([3, 4, 11], Distribution::Default, &device);
        let g_ref = conv.forward(x.clone()).sum().backward();
        let g_mine = conv1d(&conv, x).sum().backward();
        let w = |g| conv.weight.val().grad(g).unwrap();
        assert!(diff(w(&g_mine), w(&g_ref)) < 1e-4, "weights only: weight gradient");
        // Inference (no autodiff) too.
        let plain = device.without_autodiff();
        let conv = Conv1dConfig::new(40, 6, 4).with_padding(PaddingConfig1d::Same).init(&plain);
        let x = Tensor::<3>::random([2, 40, 9], Distribution::Default, &plain);
        assert!(diff(conv1d(&conv, x.clone()), conv.forward(x)) < 1e-5);
    }

    /// On flex, `conv1d` runs `crate::conv` (counted per thread) for stride-1 convolutions, in
    /// training and in inference, and burn's layer for a stride of 2.
    #[cfg(feature = "flex")]
    #[test]
    fn conv1d_runs_genopreds_kernel_on_flex_where_it_applies() {
        use burn::nn::conv::Conv1dConfig;
        let calls = crate::conv::flex_calls_on_this_thread;
        let device = Device::flex().autodiff();
        let x = Tensor::<3>::random([2, 4, 11], Distribution::Default, &device);
        let conv = Conv1dConfig::new(4, 3, 5).with_padding(PaddingConfig1d::Same).init(&device);
        let before = calls();
        let _ = conv1d(&conv, x.clone()).sum().backward();
        let _ = conv1d(&conv.valid(), x.clone().inner());
        assert_eq!(calls(), before + 2);
        let strided = Conv1dConfig::new(4, 3, 5).with_stride(2).init(&device);
        let _ = conv1d(&strided, x);
        assert_eq!(calls(), before + 2);
        // An empty batch (a fold's last inference batch can be) goes to burn's layer: same shape.
        let empty = Tensor::<3>::zeros([0, 4, 11], &device);
        assert_eq!(conv1d(&conv, empty).dims(), [0, 3, 11]);
        assert_eq!(calls(), before + 2);
    }

    #[test]
    fn dropout_keeps_the_expected_share_and_scales() {
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.75).init();
        let _rng = crate::predictor::device_rng_lock();
        seed_dropout(9);
        let x = Tensor::<2>::ones([200, 500], &device).require_grad();
        let y = dropout(&layer, x.clone());
        let v = y.to_data().try_to_vec::<f32>().unwrap();
        let kept = v.iter().filter(|&&e| e != 0.0).count() as f64 / v.len() as f64;
        assert!((kept - 0.25).abs() < 0.01, "kept {kept}");
        assert!(v.iter().all(|&e| e == 0.0 || e == 4.0));
        // The gradient is the mask.
        let g = y.clone().sum().backward();
        assert_eq!(x.grad(&g).unwrap().into_data(), y.into_data().convert::<f32>());
        // Reseeding repeats the mask; inference mode and plain devices pass through.
        seed_dropout(9);
        let again = dropout(&layer, Tensor::<2>::ones([200, 500], &device));
        assert_eq!(again.to_data().try_to_vec::<f32>().unwrap(), v);
        let plain = Tensor::<2>::ones([4, 5], &device.clone().without_autodiff());
        assert_eq!(dropout(&layer, plain.clone()).into_data(), plain.into_data());
        let eval = layer.valid();
        let x = Tensor::<2>::ones([4, 5], &device);
        assert_eq!(dropout(&eval, x.clone()).into_data(), x.into_data());
    }
}
