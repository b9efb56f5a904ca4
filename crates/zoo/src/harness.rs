//! One training step and one inference batch of a model, for the criterion benches and the
//! `step-times` tool (which compares them with PyTorch): both iterate the catalogue and time
//! what [`StepBench`] runs.

use std::sync::Mutex;
use std::time::Instant;

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use genopred_core::{EpochRecord, FitContext, FitObserver, GenotypeMatrix, Predictor, TrainSet};
use genopred_train::predictor::TargetScaling;
use genopred_train::{
    Architecture, InputContext, Inputs, Network, NeuralPredictor, TrainData, batch_tensor, optimizer, step,
    validation_scores,
};
use rand::seq::SliceRandom;
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
    /// Trains the model on `fold` for `epochs` epochs (early stopping off), first through the
    /// trainer `genopred cv` runs ([`NeuralPredictor`]'s `fit`, then `predict` of the test
    /// rows), then the same epochs taken apart: building the batches, the optimisation steps
    /// alone, the validation pass. See [`EpochTimes`].
    fn epochs(&mut self, fold: &FoldData<'_>, epochs: usize) -> Result<EpochTimes, String>;
}

/// One training fold for [`StepBench::epochs`]: rows of `geno` to fit on (with their trait
/// values), to validate on (early stopping's set) and to predict.
#[derive(Debug, Clone, Copy)]
pub struct FoldData<'a> {
    /// Genotypes.
    pub geno: &'a GenotypeMatrix,
    /// Rows the network is fitted on.
    pub fit: &'a [usize],
    /// Their trait values.
    pub fit_y: &'a [f64],
    /// Validation rows.
    pub valid: &'a [usize],
    /// Their trait values.
    pub valid_y: &'a [f64],
    /// Test rows (predicted once at the end).
    pub test: &'a [usize],
    /// Seed of the fit (initial weights, shuffles, dropout).
    pub seed: u64,
}

/// What [`StepBench::epochs`] measured, in milliseconds, one entry per epoch where a field is a
/// list.
#[derive(Debug, Clone)]
pub struct EpochTimes {
    /// Each epoch of the trainer as `genopred cv` runs it (batches, steps, validation pass,
    /// early-stopping and plateau bookkeeping, the observer), wall clock between the trainer's
    /// epoch reports.
    pub epoch_ms: Vec<f64>,
    /// The same number of epochs of optimisation steps alone (forward, loss, backward, update;
    /// the batches built beforehand; the epoch's loss read back once at its end).
    pub steps_ms: Vec<f64>,
    /// Building an epoch's batch tensors from the encoded matrix (shuffled rows gathered and
    /// moved to the device).
    pub batches_ms: Vec<f64>,
    /// One validation pass: predictions of the validation rows, the loss and metrics.
    pub valid_ms: Vec<f64>,
    /// The whole `fit` (input encoding fitted, inputs encoded, network built, all epochs).
    pub fit_ms: f64,
    /// `predict` of the test rows after the fit.
    pub predict_ms: f64,
    /// The encoded fold, for a reference implementation to train on the same numbers.
    pub data: EncodedFold,
}

/// A fold's inputs as the model encodes them and its standardised targets.
#[derive(Debug, Clone)]
pub struct EncodedFold {
    /// `(channels, length)` of one input.
    pub shape: (usize, usize),
    /// Fit rows' inputs, sample-major.
    pub fit_x: Vec<f32>,
    /// Fit rows' targets (standardised as the trainer standardises them).
    pub fit_y: Vec<f32>,
    /// Validation rows' inputs.
    pub valid_x: Vec<f32>,
    /// Validation rows' targets.
    pub valid_y: Vec<f32>,
    /// Test rows' inputs.
    pub test_x: Vec<f32>,
}

/// Notes the time of the trainer's start and of each epoch's end.
#[derive(Default)]
struct EpochClock(Mutex<Vec<Instant>>);

impl FitObserver for EpochClock {
    fn start(&self, _label: &str, _epochs: usize) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
    }

    fn epoch(&self, _record: &EpochRecord) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
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
    device: Device,
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
            net: Some(A::build(&config, shape, 1, &ad)),
            eval: None,
            optim: optimizer(&tc),
            x: Tensor::from_data(TensorData::new(x.clone(), [b, shape.0, shape.1]), &ad),
            y: Tensor::from_data(TensorData::new(y, [b, 1]), &ad),
            x_plain: Tensor::from_data(TensorData::new(x, [b, shape.0, shape.1]), device),
            label,
            config,
            shape,
            device: device.clone(),
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

    fn epochs(&mut self, fold: &FoldData<'_>, epochs: usize) -> Result<EpochTimes, String> {
        let label = self.label.clone();
        let err = |e: &dyn std::fmt::Display| format!("{label}: {e}");
        let mut config = self.config.clone();
        let tc = A::train_config_mut(&mut config);
        tc.epochs = epochs;
        tc.patience = 0; // never stops early: every run has `epochs` epochs
        let tc = tc.clone();
        let geno = fold.geno;

        // The trainer as `genopred cv` runs it.
        let clock = EpochClock::default();
        let mut model = NeuralPredictor::<A>::new(config.clone(), self.device.clone()).map_err(|e| err(&e))?;
        let context = FitContext { seed: fold.seed, genotyped_rows: fold.fit, observer: &clock, shared: None };
        let started = Instant::now();
        model
            .fit(
                &TrainSet { geno, rows: fold.fit, y: fold.fit_y },
                Some(&TrainSet { geno, rows: fold.valid, y: fold.valid_y }),
                &context,
            )
            .map_err(|e| err(&e))?;
        let fit_ms = ms_since(started);
        let started = Instant::now();
        model.predict(geno, fold.test).map_err(|e| err(&e))?;
        let predict_ms = ms_since(started);
        let marks = clock.0.into_inner().unwrap_or_else(|p| p.into_inner());
        let epoch_ms = marks.windows(2).map(|w| (w[1] - w[0]).as_secs_f64() * 1e3).collect();

        // The same epochs taken apart.
        let input = A::fit_input(&config, &InputContext { geno, train_rows: fold.fit, genotyped_rows: fold.fit })
            .map_err(|e| err(&e))?;
        let encode = |rows: &[usize]| A::encode(&input, geno, rows).map_err(|e| err(&e));
        let (x, vx, test) = (encode(fold.fit)?, encode(fold.valid)?, encode(fold.test)?);
        let scaling = TargetScaling::fit(fold.fit_y, tc.standardise_y);
        let (y, vy) = (scaling.forward(fold.fit_y), scaling.forward(fold.valid_y));
        let ad = self.device.clone().autodiff();
        let mut net = {
            let _rng = genopred_train::predictor::device_rng_lock();
            ad.seed(fold.seed);
            A::build(&config, x.shape(), 1, &ad)
        };
        let mut optim = optimizer(&tc);
        let mut rng = rand::rngs::StdRng::seed_from_u64(fold.seed);
        let mut order: Vec<usize> = (0..x.n).collect();
        let (mut steps_ms, mut batches_ms, mut valid_ms) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            let started = Instant::now();
            let mut batches = Vec::new();
            for chunk in order.chunks(tc.batch_size) {
                let by: Vec<f32> = chunk.iter().map(|&r| y[r]).collect();
                batches.push((
                    batch_tensor(&x, chunk, &ad).map_err(|e| err(&e))?,
                    Tensor::<2>::from_data(TensorData::new(by, [chunk.len(), 1]), &ad),
                ));
            }
            batches_ms.push(ms_since(started));
            let started = Instant::now();
            let mut sum = Tensor::<1>::zeros([1], &ad);
            for (bx, by) in batches {
                let (next, fit, _) = step(net, &mut optim, bx, by, &tc, tc.learning_rate);
                net = next;
                sum = sum + fit.detach();
            }
            sum.into_scalar::<f32>();
            steps_ms.push(ms_since(started));
            let started = Instant::now();
            let valid = TrainData::new(&vx, &vy);
            std::hint::black_box(validation_scores(&net.valid(), &valid, &tc, &self.device).map_err(|e| err(&e))?);
            valid_ms.push(ms_since(started));
        }
        Ok(EpochTimes {
            epoch_ms,
            steps_ms,
            batches_ms,
            valid_ms,
            fit_ms,
            predict_ms,
            data: EncodedFold {
                shape: x.shape(),
                fit_x: x.data,
                fit_y: y,
                valid_x: vx.data,
                valid_y: vy,
                test_x: test.data,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The epoch harness runs the trainer for every epoch asked (early stopping off), times each
    /// part once per epoch and hands back the fold as the trainer saw it.
    #[test]
    fn epochs_time_every_epoch_and_return_the_encoded_fold() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/wheat599/wheat599.bed");
        let geno = genopred_core::readers::plink::read_plink(&root).unwrap();
        let rows: Vec<usize> = (0..120).collect();
        let y: Vec<f64> = rows.iter().map(|&r| (r % 7) as f64 * 2.0 + 10.0).collect();
        let (fit, valid, test) = (&rows[..90], &rows[90..105], &rows[105..]);
        let fold = FoldData { geno: &geno, fit, fit_y: &y[..90], valid, valid_y: &y[90..105], test, seed: 5 };
        let device = Device::flex();
        let entry = crate::find("mlp").unwrap();
        let mut bench = entry.step_benches(&geno, fit, &device).remove(0);
        let t = bench.epochs(&fold, 4).unwrap();
        for (name, list) in
            [("epoch", &t.epoch_ms), ("steps", &t.steps_ms), ("batches", &t.batches_ms), ("valid", &t.valid_ms)]
        {
            assert_eq!(list.len(), 4, "{name}: {list:?}");
            assert!(list.iter().all(|v| v.is_finite() && *v >= 0.0), "{name}: {list:?}");
        }
        assert!(t.fit_ms >= t.epoch_ms.iter().sum::<f64>(), "the fit contains its epochs");
        let m = geno.n_markers();
        assert_eq!(t.data.shape, (1, m));
        assert_eq!((t.data.fit_x.len(), t.data.valid_x.len(), t.data.test_x.len()), (90 * m, 15 * m, 15 * m));
        // Targets standardised on the fitted lines, validation with the same scaling.
        let mean = t.data.fit_y.iter().map(|&v| f64::from(v)).sum::<f64>() / 90.0;
        let var = t.data.fit_y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / 89.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{mean} {var}");
        let y_mean = y[..90].iter().sum::<f64>() / 90.0;
        let y_sd = (y[..90].iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / 89.0).sqrt();
        let want = (y[90] - y_mean) / y_sd;
        assert!((f64::from(t.data.valid_y[0]) - want).abs() < 1e-5);
    }
}
