//! Covariates and several outputs for every architecture, without code of its own.
//!
//! A network built with `outputs` = k ([`crate::Architecture::build`]) ends in a dense layer of
//! k units. A record — a line in an environment, or a line's value for one trait — reads one
//! of them, or a mean of several, through its row of *output weights* (one-hot for a record of
//! a trained environment or trait; equal weights for an environment no training record was in).
//! Covariates (the record's environment, its fixed effects, environmental covariates) enter the
//! dense head: [`Headed`] adds `c·W` (q covariates → k outputs, no bias) to the network's
//! output, which is exactly what appending them to the last dense layer's input does, since that
//! layer is linear. An architecture that wants them earlier can take them in its own forward
//! pass; none of the shipped ones does.
//!
//! So a G×E network is one shared body with an output per environment, an intercept per
//! environment (the output biases) and a loss over each record's own environment — the
//! multi-output form that several traits at once uses too.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use crate::arch::Network;

/// One batch's side inputs, on the network's device.
#[derive(Debug, Clone)]
pub struct SideBatch {
    /// `[batch, q]` covariates, if the model has any.
    pub covariates: Option<Tensor<2>>,
    /// `[batch, k]` output weights: each sample's prediction is `Σ_j w_j · output_j`.
    pub weights: Tensor<2>,
}

/// Per-sample side inputs of a training or validation set (host values, row-major).
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// `n × q` covariates (empty when `q` is 0).
    pub covariates: &'a [f32],
    /// Covariates per sample, q.
    pub n_covariates: usize,
    /// `n × k` output weights.
    pub weights: &'a [f32],
    /// Outputs, k.
    pub outputs: usize,
}

impl Side<'_> {
    /// Rows `rows` as tensors on `device`.
    pub fn batch(&self, rows: &[usize], device: &Device) -> SideBatch {
        let pick = |values: &[f32], width: usize| {
            let mut data = Vec::with_capacity(rows.len() * width);
            for &r in rows {
                data.extend_from_slice(&values[r * width..(r + 1) * width]);
            }
            Tensor::<2>::from_data(TensorData::new(data, [rows.len(), width]), device)
        };
        SideBatch {
            covariates: (self.n_covariates > 0).then(|| pick(self.covariates, self.n_covariates)),
            weights: pick(self.weights, self.outputs),
        }
    }

    /// Whether the side inputs fit `n` samples.
    pub fn fits(&self, n: usize) -> bool {
        self.covariates.len() == n * self.n_covariates && self.weights.len() == n * self.outputs && self.outputs > 0
    }
}

/// What the trainer trains: a network alone, or a network with a covariate head.
pub trait Trainable: Module + 'static {
    /// Predictions `[batch, 1]`: the network's outputs, plus the covariate head's, read through
    /// the side inputs' output weights (the network's single output when there are none).
    fn forward_batch(&self, x: Tensor<3>, side: Option<SideBatch>) -> Tensor<2>;
    /// Regularisation penalties added to the training loss, if any.
    fn penalty(&self) -> Option<Tensor<1>>;
}

impl<N: Network> Trainable for N {
    fn forward_batch(&self, x: Tensor<3>, side: Option<SideBatch>) -> Tensor<2> {
        let out = self.forward(x);
        match side {
            Some(side) => pick(out, side.weights),
            None => out,
        }
    }

    fn penalty(&self) -> Option<Tensor<1>> {
        Network::penalty(self)
    }
}

/// A network with its covariates in the dense head.
#[derive(Module, Debug)]
pub struct Headed<N> {
    /// The architecture's network, with k outputs.
    pub body: N,
    /// `q → k` without bias (the body's output biases are the intercepts); `None` without
    /// covariates.
    pub covariates: Option<Linear>,
}

impl<N: Network> Headed<N> {
    /// `body` with a head for `n_covariates` covariates onto `outputs` outputs, initialised at
    /// zero: the covariates' effects start where the training fold's fixed-effect fit left the
    /// targets (centred), and move only as far as the data take them.
    pub fn new(body: N, n_covariates: usize, outputs: usize, device: &Device) -> Self {
        let covariates = (n_covariates > 0)
            .then(|| Linear { weight: Param::from_tensor(Tensor::zeros([n_covariates, outputs], device)), bias: None });
        Headed { body, covariates }
    }

    /// The outputs `[batch, k]` before the output weights are applied.
    pub fn outputs(&self, x: Tensor<3>, covariates: Option<Tensor<2>>) -> Tensor<2> {
        let out = self.body.forward(x);
        match (&self.covariates, covariates) {
            (Some(head), Some(c)) => out + head.forward(c),
            _ => out,
        }
    }
}

impl<N: Network> Trainable for Headed<N> {
    fn forward_batch(&self, x: Tensor<3>, side: Option<SideBatch>) -> Tensor<2> {
        match side {
            Some(side) => pick(self.outputs(x, side.covariates), side.weights),
            None => self.body.forward(x),
        }
    }

    fn penalty(&self) -> Option<Tensor<1>> {
        self.body.penalty()
    }
}

/// `Σ_j w_j · out_j` per row: `[batch, k] × [batch, k] → [batch, 1]`.
fn pick(out: Tensor<2>, weights: Tensor<2>) -> Tensor<2> {
    if out.dims()[1] == 1 && weights.dims()[1] == 1 {
        return out * weights;
    }
    (out * weights).sum_dim(1)
}

#[cfg(test)]
mod tests;
