//! A 1-D convolution (stride 1, no dilation, one group) computed as one GEMM per kernel position
//! straight from the input, forward and backward, for burn's `flex` CPU backend.
//!
//! burn runs a convolution's backward pass from generic pieces: the input gradient as a
//! transposed convolution and the weight gradient as a convolution of the input with the output
//! gradient, each with its own copies and padding. On flex these two cost 1.2 to 20 times the
//! forward pass at the models' shapes (`ops_conv` bench). Here every pass is a sum over the
//! kernel positions `t` of products of matrices read in place:
//!
//! - forward: `y_b[:, a..e] += W_t · x_b[:, a+t-p .. e+t-p]` (`W_t` = `w[:, :, t]`, `c_out × c_in`);
//! - input gradient: `dx_b[:, a+t-p .. e+t-p] += W_tᵀ · dy_b[:, a..e]`;
//! - weight gradient: `dW_t += dy_b[:, a..e] · x_b[:, a+t-p .. e+t-p]ᵀ`, bias `Σ dy`;
//!
//! where `[a, e)` are the output positions whose input position `l + t - p` lies inside the
//! input, so padding is never materialised. Samples run in parallel (rayon's current pool, so
//! `--jobs` keeps its thread budget); the weight gradient is summed over fixed groups of samples
//! in a fixed order, so the numbers do not depend on the number of threads.
//!
//! [`FlexConv1d`] plugs this into burn as a backend extension (burn's `extension` feature) with
//! its own backward step; [`crate::layers::conv1d`] decides where it runs.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Samples whose weight gradients one task sums before the tasks' sums are added in order.
const WEIGHT_GRAD_GROUP: usize = 8;

/// The shapes of one stride-1 convolution over `[batch, c_in, len_in]` inputs with a
/// `[c_out, c_in, kernel]` weight, `pad_left` zeros before the input and enough after it for
/// `len_out` outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Samples.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input positions.
    pub len_in: usize,
    /// Kernel width.
    pub kernel: usize,
    /// Zeros before the input.
    pub pad_left: usize,
    /// Output positions: `len_in + pad_left + pad_right - kernel + 1`.
    pub len_out: usize,
}

impl ConvGeometry {
    /// The geometry with `pad_left` and `pad_right` zeros around the input, or `None` when the
    /// padded input is shorter than the kernel (no output) or a size is zero.
    pub fn new(
        batch: usize,
        c_in: usize,
        c_out: usize,
        len_in: usize,
        kernel: usize,
        pad_left: usize,
        pad_right: usize,
    ) -> Option<Self> {
        let padded = len_in + pad_left + pad_right;
        if batch == 0 || c_in == 0 || c_out == 0 || len_in == 0 || kernel == 0 || padded < kernel {
            return None;
        }
        Some(Self { batch, c_in, c_out, len_in, kernel, pad_left, len_out: padded - kernel + 1 })
    }

    /// For each kernel position `t` with any output reading inside the input: `(t, a, e)`, the
    /// outputs `a..e` whose input position `l + t - pad_left` is in `0..len_in`.
    fn taps(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.kernel).filter_map(move |t| {
            let a = self.pad_left.saturating_sub(t);
            let e = (self.len_in + self.pad_left).saturating_sub(t).min(self.len_out);
            (e > a).then_some((t, a, e))
        })
    }

    /// Where output `a` of kernel position `t` reads the input.
    fn input_at(&self, t: usize, a: usize) -> usize {
        a + t - self.pad_left
    }
}

/// A row-major `nrows × ncols` view of `slice` whose rows start `stride` apart. (faer 0.24.4's
/// `MatMut::from_row_major_slice_with_stride_mut` builds a column-major view instead and writes
/// past the rows; its `MatRef` twin is right.)
fn rows_mut(slice: &mut [f32], nrows: usize, ncols: usize, stride: usize) -> MatMut<'_, f32> {
    MatMut::from_column_major_slice_with_stride_mut(slice, ncols, nrows, stride).transpose_mut()
}

/// `w` (`[c_out, c_in, kernel]`) as one `c_out × c_in` block per kernel position, or with
/// `transpose` one `c_in × c_out` block (`W_tᵀ`).
fn blocks_by_tap(g: &ConvGeometry, w: &[f32], transpose: bool) -> Vec<f32> {
    let (co, ci, k) = (g.c_out, g.c_in, g.kernel);
    let mut out = vec![0.0; w.len()];
    for o in 0..co {
        for i in 0..ci {
            for t in 0..k {
                let at = if transpose { t * ci * co + i * co + o } else { t * co * ci + o * ci + i };
                out[at] = w[(o * ci + i) * k + t];
            }
        }
    }
    out
}

/// The convolution of `x` (`[batch, c_in, len_in]`) with `w` and `bias`: `[batch, c_out, len_out]`.
pub fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (co, ci, lo, li) = (g.c_out, g.c_in, g.len_out, g.len_in);
    let wt = blocks_by_tap(g, w, false);
    let mut y = vec![0.0f32; g.batch * co * lo];
    y.par_chunks_mut(co * lo).zip(x.par_chunks(ci * li)).for_each(|(y_b, x_b)| {
        if let Some(bias) = bias {
            for (row, &b) in y_b.chunks_mut(lo).zip(bias) {
                row.fill(b);
            }
        }
        for (t, a, e) in g.taps() {
            let n = e - a;
            let dst = rows_mut(&mut y_b[a..], co, n, lo);
            let lhs = MatRef::from_row_major_slice(&wt[t * co * ci..(t + 1) * co * ci], co, ci);
            let rhs = MatRef::from_row_major_slice_with_stride(&x_b[g.input_at(t, a)..], ci, n, li);
            faer::linalg::matmul::matmul(dst, Accum::Add, lhs, rhs, 1.0, Par::Seq);
        }
    });
    y
}

/// The gradient of the loss with respect to the input, from the output's gradient `dy`.
pub fn input_grad(g: &ConvGeometry, w: &[f32], dy: &[f32]) -> Vec<f32> {
    let (co, ci, lo, li) = (g.c_out, g.c_in, g.len_out, g.len_in);
    let wtt = blocks_by_tap(g, w, true);
    let mut dx = vec![0.0f32; g.batch * ci * li];
    dx.par_chunks_mut(ci * li).zip(dy.par_chunks(co * lo)).for_each(|(dx_b, dy_b)| {
        for (t, a, e) in g.taps() {
            let n = e - a;
            let dst = rows_mut(&mut dx_b[g.input_at(t, a)..], ci, n, li);
            let lhs = MatRef::from_row_major_slice(&wtt[t * ci * co..(t + 1) * ci * co], ci, co);
            let rhs = MatRef::from_row_major_slice_with_stride(&dy_b[a..], co, n, lo);
            faer::linalg::matmul::matmul(dst, Accum::Add, lhs, rhs, 1.0, Par::Seq);
        }
    });
    dx
}

/// The gradients of the loss with respect to the weight (`[c_out, c_in, kernel]`) and the bias
/// (`[c_out]`), from the input `x` and the output's gradient `dy`.
pub fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (co, ci, lo, li, k) = (g.c_out, g.c_in, g.len_out, g.len_in, g.kernel);
    // Per group of samples: one `c_out × c_in` block per kernel position, then the bias.
    let partial = |first: usize| {
        let mut acc = vec![0.0f32; k * co * ci + co];
        let (blocks, bias) = acc.split_at_mut(k * co * ci);
        for b in first..(first + WEIGHT_GRAD_GROUP).min(g.batch) {
            let (x_b, dy_b) = (&x[b * ci * li..(b + 1) * ci * li], &dy[b * co * lo..(b + 1) * co * lo]);
            for (t, a, e) in g.taps() {
                let n = e - a;
                let dst = MatMut::from_row_major_slice_mut(&mut blocks[t * co * ci..(t + 1) * co * ci], co, ci);
                let lhs = MatRef::from_row_major_slice_with_stride(&dy_b[a..], co, n, lo);
                let rhs = MatRef::from_column_major_slice_with_stride(&x_b[g.input_at(t, a)..], n, ci, li);
                faer::linalg::matmul::matmul(dst, Accum::Add, lhs, rhs, 1.0, Par::Seq);
            }
            for (sum, row) in bias.iter_mut().zip(dy_b.chunks(lo)) {
                *sum += row.iter().sum::<f32>();
            }
        }
        acc
    };
    let partials: Vec<Vec<f32>> =
        (0..g.batch).step_by(WEIGHT_GRAD_GROUP).collect::<Vec<_>>().into_par_iter().map(partial).collect();
    let mut total = vec![0.0f32; k * co * ci + co];
    for p in &partials {
        for (s, v) in total.iter_mut().zip(p) {
            *s += v;
        }
    }
    let mut dw = vec![0.0f32; co * ci * k];
    for t in 0..k {
        for o in 0..co {
            for i in 0..ci {
                dw[(o * ci + i) * k + t] = total[t * co * ci + o * ci + i];
            }
        }
    }
    (dw, total[k * co * ci..].to_vec())
}

/// The passes above as a burn operation on flex, with its own backward step (burn's `extension`
/// feature; compiled with this crate's `flex` feature).
#[cfg(feature = "flex")]
mod flex {
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::backend::flex::FlexTensor;
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
    use burn::prelude::*;

    use super::ConvGeometry;

    /// A stride-1 convolution with `pad_left` and `pad_right` zeros around the input, run by
    /// [`super::forward`], [`super::input_grad`] and [`super::weight_grad`].
    #[backend_extension(Flex, Autodiff)]
    pub trait FlexConv1d: Backend {
        /// `x` `[batch, c_in, length]`, `weight` `[c_out, c_in, kernel]`, `bias` `[c_out]`.
        fn genopred_conv1d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            pad_left: usize,
            pad_right: usize,
        ) -> FloatTensor<Self>;
    }

    /// `t` contiguous in row-major order (itself when it already is: no copy).
    fn contiguous(t: &FlexTensor) -> FlexTensor {
        assert_eq!(t.dtype(), burn::tensor::DType::F32, "genopred's convolution runs on f32 tensors");
        t.to_contiguous()
    }

    /// The f32 values of a tensor from [`contiguous`], in row-major order.
    fn values(t: &FlexTensor) -> &[f32] {
        let (start, end) = t.layout().contiguous_offsets().expect("a contiguous tensor");
        &t.storage::<f32>()[start..end]
    }

    fn geometry(x: &FlexTensor, weight: &FlexTensor, pad_left: usize, pad_right: usize) -> ConvGeometry {
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        ConvGeometry::new(xs[0], xs[1], ws[0], xs[2], ws[2], pad_left, pad_right)
            .expect("the caller checked that the convolution has an output")
    }

    fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    #[cfg(test)]
    thread_local! {
        /// Forward passes run on this thread (tests check where `layers::conv1d` goes).
        pub(crate) static CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Forward passes of [`FlexConv1d`] run on this thread.
    #[cfg(test)]
    pub(crate) fn flex_calls_on_this_thread() -> usize {
        CALLS.with(|c| c.get())
    }

    impl FlexConv1d for Flex {
        fn genopred_conv1d(
            x: FlexTensor,
            weight: FlexTensor,
            bias: FlexTensor,
            pad_left: usize,
            pad_right: usize,
        ) -> FlexTensor {
            #[cfg(test)]
            CALLS.with(|c| c.set(c.get() + 1));
            let g = geometry(&x, &weight, pad_left, pad_right);
            let (x, weight, bias) = (contiguous(&x), contiguous(&weight), contiguous(&bias));
            let y = super::forward(&g, values(&x), values(&weight), Some(values(&bias)));
            tensor(y, vec![g.batch, g.c_out, g.len_out])
        }
    }

    /// The backward step: the input's gradient, then the weight's and the bias's, each only when
    /// that parent is tracked.
    #[derive(Debug)]
    struct ConvBackward;

    impl Backward<Flex, 3> for ConvBackward {
        /// The input's and the weight's checkpoints, and the padding.
        type State = (NodeId, NodeId, usize, usize);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let [node_x, node_w, node_b] = ops.parents;
            let dy = contiguous(&grads.consume::<Flex>(&ops.node));
            let (x_state, w_state, pad_left, pad_right) = ops.state;
            let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
            let weight: FlexTensor = checkpointer.retrieve_node_output(w_state);
            let g = geometry(&x, &weight, pad_left, pad_right);
            let dy = values(&dy);
            if let Some(node) = node_x {
                let dx = super::input_grad(&g, values(&contiguous(&weight)), dy);
                grads.register::<Flex>(node.id, tensor(dx, vec![g.batch, g.c_in, g.len_in]));
            }
            if node_w.is_some() || node_b.is_some() {
                let (dw, db) = super::weight_grad(&g, values(&contiguous(&x)), dy);
                if let Some(node) = node_w {
                    grads.register::<Flex>(node.id, tensor(dw, vec![g.c_out, g.c_in, g.kernel]));
                }
                if let Some(node) = node_b {
                    grads.register::<Flex>(node.id, tensor(db, vec![g.c_out]));
                }
            }
        }
    }

    impl<C: CheckpointStrategy> FlexConv1d for Autodiff<Flex, C> {
        fn genopred_conv1d(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            pad_left: usize,
            pad_right: usize,
        ) -> FloatTensor<Self> {
            let prep = ConvBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful();
            // A tracked step keeps the input and the weight (checkpointed before they are consumed).
            let tracked = match prep {
                OpsKind::Tracked(mut prep) => Ok((prep.checkpoint(&x), prep.checkpoint(&weight), prep)),
                OpsKind::UnTracked(prep) => Err(prep),
            };
            let y = Flex::genopred_conv1d(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                pad_left,
                pad_right,
            );
            match tracked {
                Ok((x_state, w_state, prep)) => prep.finish((x_state, w_state, pad_left, pad_right), y),
                Err(prep) => prep.finish(y),
            }
        }
    }

    /// The convolution of `x` on flex (plain or autodiff); see [`crate::layers::conv1d`].
    pub fn conv1d(x: Tensor<3>, weight: Tensor<3>, bias: Tensor<1>, pad_left: usize, pad_right: usize) -> Tensor<3> {
        Tensor::from_dispatch(<Dispatch as FlexConv1d>::genopred_conv1d(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            pad_left,
            pad_right,
        ))
    }
}

#[cfg(all(test, feature = "flex"))]
pub(crate) use flex::flex_calls_on_this_thread;
#[cfg(feature = "flex")]
pub use flex::{FlexConv1d, conv1d as flex_conv1d};

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition, in f64.
    fn naive(g: &ConvGeometry, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f64> {
        let (co, ci, lo, li, k) = (g.c_out, g.c_in, g.len_out, g.len_in, g.kernel);
        let mut y = vec![0.0f64; g.batch * co * lo];
        for b in 0..g.batch {
            for o in 0..co {
                for l in 0..lo {
                    let mut s = bias[o] as f64;
                    for i in 0..ci {
                        for t in 0..k {
                            let pos = (l + t) as isize - g.pad_left as isize;
                            if (0..li as isize).contains(&pos) {
                                s += w[(o * ci + i) * k + t] as f64 * x[(b * ci + i) * li + pos as usize] as f64;
                            }
                        }
                    }
                    y[(b * co + o) * lo + l] = s;
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        // A fixed, irregular sequence in [-1, 1].
        (0..n).map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0).collect()
    }

    #[test]
    fn every_pass_matches_the_definition() {
        // (batch, c_in, c_out, len_in, kernel, pad_left, pad_right): "same" with odd and even
        // kernels, valid, one-sided padding, a kernel wider than the input with padding, more
        // samples than one weight-gradient group.
        for (batch, ci, co, li, k, pl, pr) in [
            (3, 2, 3, 9, 4, 1, 2),
            (2, 3, 2, 7, 3, 1, 1),
            (2, 1, 4, 12, 5, 0, 0),
            (1, 2, 2, 6, 3, 2, 0),
            (2, 2, 1, 3, 5, 2, 2),
            (19, 2, 2, 5, 2, 0, 1),
        ] {
            let g = ConvGeometry::new(batch, ci, co, li, k, pl, pr).unwrap();
            let label = format!("{g:?}");
            let (x, w, bias) = (values(batch * ci * li, 1), values(co * ci * k, 2), values(co, 3));
            let y = forward(&g, &x, &w, Some(&bias));
            let expected = naive(&g, &x, &w, &bias);
            assert_eq!(y.len(), expected.len(), "{label}");
            for (a, b) in y.iter().zip(&expected) {
                assert!((*a as f64 - b).abs() < 1e-5, "{label}: forward {a} vs {b}");
            }
            // The loss Σ v·y for a fixed v: its gradients by finite differences of the
            // definition (exact here: the loss is linear in x, w and the bias).
            let v = values(expected.len(), 4);
            let loss = |x: &[f32], w: &[f32], bias: &[f32]| -> f64 {
                naive(&g, x, w, bias).iter().zip(&v).map(|(y, v)| y * *v as f64).sum()
            };
            let base = loss(&x, &w, &bias);
            let dx = input_grad(&g, &w, &v);
            for j in 0..x.len() {
                let mut x1 = x.clone();
                x1[j] += 1.0;
                assert!((loss(&x1, &w, &bias) - base - dx[j] as f64).abs() < 1e-4, "{label}: dx[{j}]");
            }
            let (dw, db) = weight_grad(&g, &x, &v);
            for j in 0..w.len() {
                let mut w1 = w.clone();
                w1[j] += 1.0;
                assert!((loss(&x, &w1, &bias) - base - dw[j] as f64).abs() < 1e-4, "{label}: dw[{j}]");
            }
            for j in 0..co {
                let mut b1 = bias.clone();
                b1[j] += 1.0;
                assert!((loss(&x, &w, &b1) - base - db[j] as f64).abs() < 1e-4, "{label}: db[{j}]");
            }
        }
    }

    #[test]
    fn no_output_is_no_geometry() {
        assert!(ConvGeometry::new(1, 1, 1, 3, 5, 0, 1).is_none());
        assert!(ConvGeometry::new(0, 1, 1, 3, 2, 0, 0).is_none());
        assert_eq!(ConvGeometry::new(1, 1, 1, 3, 5, 1, 1).unwrap().len_out, 1);
    }
}
