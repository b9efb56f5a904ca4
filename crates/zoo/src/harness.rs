//! One training step and one inference batch of a model, for the criterion benches and the
//! `step-times` tool (which compares them with PyTorch): both iterate the catalogue and time
//! what [`StepBench`] runs.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use genopred_core::GenotypeMatrix;
use genopred_train::{Architecture, InputContext, Network, optimizer, step};
use rand::{Rng, SeedableRng};

/// A model ready to be timed: inputs fitted, network built, a batch of inputs on the device.
pub trait StepBench {
    /// Label (the model name, or the variant's, e.g. `dnngp_v3`).
    fn label(&self) -> &str;
    /// The model's `--model` name.
    fn model(&self) -> &'static str;
    /// Samples per batch (the model's default).
    fn batch(&self) -> usize;
    /// `(channels, length)` of one input.
    fn shape(&self) -> (usize, usize);
    /// The configuration, as JSON (what the PyTorch reference builds its twin from).
    fn config(&self) -> serde_json::Value;
    /// Parameters of the network.
    fn params(&self) -> usize;
    /// One optimisation step (forward, loss, backward, update); returns the loss, read back to
    /// the host so asynchronous backends finish the step.
    fn train_step(&mut self) -> f32;
    /// One inference batch, read back to the host.
    fn infer(&mut self) -> usize;
}

/// [`StepBench`] for any [`Architecture`]. Inputs are uniform on [0, 2), targets uniform on
/// ±1.7, both seeded: a step's cost does not depend on the values.
pub struct NeuralStep<A: Architecture> {
    label: String,
    config: A::Config,
    shape: (usize, usize),
    net: Option<A::Net>,
    eval: Option<A::Net>,
    optim: ModuleOptimizer,
    x: Tensor<3>,
    y: Tensor<2>,
    x_plain: Tensor<3>,
}

impl<A: Architecture> NeuralStep<A> {
    /// Fits `config`'s input encoding on `rows` of `geno`, builds the network on `device`
    /// (seed 1) and draws one batch.
    pub fn new(label: String, config: A::Config, geno: &GenotypeMatrix, rows: &[usize], device: &Device) -> Self {
        let ctx = InputContext { geno, train_rows: rows, genotyped_rows: rows };
        let input = A::fit_input(&config, &ctx).unwrap_or_else(|e| panic!("{label}: fitting the input: {e}"));
        let shape = A::input_shape(&input);
        let tc = A::train_config(&config).clone();
        let b = tc.batch_size;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let x: Vec<f32> = (0..b * shape.0 * shape.1).map(|_| rng.random_range(0.0f32..2.0)).collect();
        let y: Vec<f32> = (0..b).map(|_| rng.random_range(-1.7f32..1.7)).collect();
        let ad = device.clone().autodiff();
        let _rng = genopred_train::predictor::device_rng_lock();
        ad.seed(1);
        NeuralStep {
            net: Some(A::build(&config, shape, &ad)),
            eval: None,
            optim: optimizer(&tc),
            x: Tensor::from_data(TensorData::new(x.clone(), [b, shape.0, shape.1]), &ad),
            y: Tensor::from_data(TensorData::new(y, [b, 1]), &ad),
            x_plain: Tensor::from_data(TensorData::new(x, [b, shape.0, shape.1]), device),
            label,
            config,
            shape,
        }
    }
}

impl<A: Architecture> StepBench for NeuralStep<A> {
    fn label(&self) -> &str {
        &self.label
    }

    fn model(&self) -> &'static str {
        A::NAME
    }

    fn batch(&self) -> usize {
        A::train_config(&self.config).batch_size
    }

    fn shape(&self) -> (usize, usize) {
        self.shape
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    fn params(&self) -> usize {
        self.net.as_ref().map_or(0, |n| n.num_params())
    }

    fn train_step(&mut self) -> f32 {
        let tc = A::train_config(&self.config);
        let net = self.net.take().expect("the network is put back after every step");
        let (next, loss, _) = step(net, &mut self.optim, self.x.clone(), self.y.clone(), tc, tc.learning_rate);
        self.net = Some(next);
        loss.into_scalar::<f32>()
    }

    fn infer(&mut self) -> usize {
        let net = &self.net;
        let eval = self.eval.get_or_insert_with(|| net.as_ref().expect("network").clone().valid());
        eval.forward(self.x_plain.clone()).into_data().num_elements()
    }
}
