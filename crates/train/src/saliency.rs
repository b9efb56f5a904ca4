//! Input gradients of a trained network: DLGWAS's saliency maps (Liu et al. 2019, after Simonyan
//! et al. 2014), and SmoothGrad (Smilkov et al. 2017) as an option.
//!
//! The saliency of marker `j` for sample `i` is `|∂ŷ_i / ∂x_ij|`, the gradient of the prediction
//! with respect to the input, in absolute value (for one-hot input, the largest over the four
//! channels, as DLGWAS takes it). Each architecture maps the gradient of its encoded input back to
//! markers ([`Architecture::marker_saliency`](crate::Architecture::marker_saliency)): through the
//! scaling of dosages, or exactly through DNNGP's linear PCA projection.

use burn::prelude::*;
use rand_distr::{Distribution, StandardNormal};

use crate::arch::{Encoded, Network};
use crate::error::TrainError;
use genopred_core::predictor::SaliencyOptions;

/// `∂ŷ / ∂x` for every sample of `x`, same layout as `x.data` (`n × channels × length`).
///
/// The network runs in inference mode (no dropout, batch norm with its running statistics), so
/// each sample's prediction depends on its own input only and one backward pass of the batch's
/// summed predictions gives every sample's gradient. With `options.smoothgrad > 0` the gradient
/// is averaged over that many copies of the input with Gaussian noise of sd `noise_sd` (the
/// caller's `options.noise × (max − min)` of the whole input, [`noise_sd`]). Sample `i` of `x`
/// is sample `first + i` of the caller's rows: its noise comes from a generator of its own,
/// seeded by `options.seed` and that position, so the gradients do not depend on how the caller
/// cuts its rows into calls, nor on `batch`'s grouping beyond float rounding.
pub fn input_gradients<N: Network>(
    net: &N,
    x: &Encoded,
    first: usize,
    noise_sd: f32,
    batch: usize,
    device: &Device,
    options: &SaliencyOptions,
) -> Result<Vec<f32>, TrainError> {
    let ad = device.clone().autodiff();
    // Inference mode is kept across the move: gradients flow, dropout and batch norm do not train.
    let net = net.valid().fork(&ad);
    let w = x.width();
    let draws = options.smoothgrad.max(1);
    let sd = if options.smoothgrad > 0 { noise_sd } else { 0.0 };
    let mut out = vec![0f32; x.data.len()];
    let rows: Vec<usize> = (0..x.n).collect();
    for chunk in rows.chunks(batch.max(1)) {
        let start = chunk[0] * w;
        let clean = &x.data[start..start + chunk.len() * w];
        let mut rngs: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let seed = genopred_core::cv::seed::derive_seed(
                    options.seed,
                    genopred_core::cv::seed::Purpose::SmoothGrad,
                    &[(first + i) as u64],
                );
                genopred_core::cv::seed::rng(seed)
            })
            .collect();
        for _ in 0..draws {
            let data: Vec<f32> = if sd > 0.0 {
                clean
                    .chunks(w)
                    .zip(rngs.iter_mut())
                    .flat_map(|(sample, rng)| {
                        sample
                            .iter()
                            .map(|&v| v + sd * Distribution::<f32>::sample(&StandardNormal, rng))
                            .collect::<Vec<f32>>()
                    })
                    .collect()
            } else {
                clean.to_vec()
            };
            let input =
                Tensor::<3>::from_data(TensorData::new(data, [chunk.len(), x.channels, x.length]), &ad).require_grad();
            let pred = net.forward(input.clone());
            let grads = pred.sum().backward();
            let g = input
                .grad(&grads)
                .ok_or_else(|| TrainError::Usage("no gradient reached the network's input".into()))?
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| TrainError::Usage(format!("reading gradients back from the device: {e:?}")))?;
            for (o, v) in out[start..start + g.len()].iter_mut().zip(g) {
                *o += v / draws as f32;
            }
        }
    }
    Ok(out)
}

/// The smallest and largest value of encoded input (`(+∞, −∞)` for none), to be combined over
/// every block of a call before [`noise_sd`].
pub fn input_range(x: &Encoded) -> (f32, f32) {
    x.data.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// SmoothGrad's noise sd: `noise` times the input's range `(lo, hi)` (0 for an empty or
/// constant input).
pub fn noise_sd(noise: f64, (lo, hi): (f32, f32)) -> f32 {
    (noise * f64::from(hi - lo).max(0.0)) as f32
}

/// The default map from input gradients to marker saliency for inputs laid out
/// `[n, channels, markers]`: the largest `|gradient|` over the channels (DLGWAS's rule for its
/// one-hot input; for one channel, the absolute gradient).
pub fn max_over_channels(grad: &[f32], n: usize, channels: usize, markers: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * markers];
    for i in 0..n {
        for c in 0..channels {
            let base = (i * channels + c) * markers;
            for j in 0..markers {
                let v = grad[base + j].abs();
                if v > out[i * markers + j] {
                    out[i * markers + j] = v;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Lin {
        layer: Linear,
    }

    impl Network for Lin {
        fn forward(&self, x: Tensor<3>) -> Tensor<2> {
            let [b, c, l] = x.dims();
            self.layer.forward(x.reshape([b, c * l]))
        }
    }

    /// `ŷ = w · (x ∘ x)`: its gradient `2 w ∘ x` moves with the input, so SmoothGrad's noise shows.
    #[derive(Module, Debug)]
    struct Square {
        layer: Linear,
    }

    impl Network for Square {
        fn forward(&self, x: Tensor<3>) -> Tensor<2> {
            let [b, c, l] = x.dims();
            self.layer.forward((x.clone() * x).reshape([b, c * l]))
        }
    }

    #[test]
    fn smoothgrad_noise_is_drawn_per_sample_whatever_the_blocks() {
        let device = Device::flex();
        let net = Square { layer: LinearConfig::new(4, 1).init(&device) };
        let x = Encoded { data: (0..28).map(|v| (v % 5) as f32 / 2.0).collect(), n: 7, channels: 1, length: 4 };
        let smooth = SaliencyOptions { smoothgrad: 5, noise: 0.2, seed: 3 };
        let sd = noise_sd(smooth.noise, input_range(&x));
        let whole = input_gradients(&net, &x, 0, sd, 7, &device, &smooth).unwrap();
        let plain = input_gradients(&net, &x, 0, sd, 7, &device, &SaliencyOptions { smoothgrad: 0, ..smooth }).unwrap();
        assert!(whole.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3), "the noise changed nothing");
        // Rows 0..3 and 3..7 in two calls, batches of 2 inside: the same numbers.
        let part = |rows: std::ops::Range<usize>| Encoded {
            data: x.data[rows.start * 4..rows.end * 4].to_vec(),
            n: rows.len(),
            channels: 1,
            length: 4,
        };
        let mut blocked = input_gradients(&net, &part(0..3), 0, sd, 2, &device, &smooth).unwrap();
        blocked.extend(input_gradients(&net, &part(3..7), 3, sd, 2, &device, &smooth).unwrap());
        for (a, b) in blocked.iter().zip(&whole) {
            assert!((a - b).abs() < 1e-5, "{a} in blocks, {b} whole");
        }
        // Another seed draws other noise.
        let other = input_gradients(&net, &x, 0, sd, 7, &device, &SaliencyOptions { seed: 4, ..smooth }).unwrap();
        assert_ne!(other, whole);
    }

    #[test]
    fn gradients_of_a_linear_net_are_its_weights() {
        let device = Device::flex();
        let net = Lin { layer: LinearConfig::new(6, 1).init(&device) };
        let w: Vec<f32> = net.layer.weight.val().into_data().convert::<f32>().try_to_vec().unwrap();
        let x = Encoded { data: (0..18).map(|v| v as f32 / 7.0).collect(), n: 3, channels: 2, length: 3 };
        let plain = SaliencyOptions { smoothgrad: 0, noise: 0.15, seed: 1 };
        let g = input_gradients(&net, &x, 0, 0.0, 2, &device, &plain).unwrap();
        for i in 0..3 {
            for k in 0..6 {
                assert!((g[i * 6 + k] - w[k]).abs() < 1e-6, "sample {i} input {k}");
            }
        }
        // SmoothGrad of a linear net is the same gradient, and it repeats with the seed.
        let smooth = SaliencyOptions { smoothgrad: 4, ..plain };
        let sd = noise_sd(smooth.noise, input_range(&x));
        assert!((sd - 0.15 * 17.0 / 7.0).abs() < 1e-6);
        let s = input_gradients(&net, &x, 0, sd, 3, &device, &smooth).unwrap();
        assert!(s.iter().zip(&g).all(|(a, b)| (a - b).abs() < 1e-5));
        assert_eq!(s, input_gradients(&net, &x, 0, sd, 3, &device, &smooth).unwrap());
        let m = max_over_channels(&g, 3, 2, 3);
        assert_eq!(m.len(), 9);
        assert!((m[1] - w[1].abs().max(w[4].abs())).abs() < 1e-6);
    }
}
