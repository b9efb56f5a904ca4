//! The tests every neural model must pass, called from each model crate's tests (and run by
//! `cargo test` there) — see CONTRIBUTING.md. They panic with a message naming the check.
//!
//! - output shape `[batch, 1]`;
//! - parameter count equal to the count worked out by hand from the model's layer table;
//! - same seed → bit-identical predictions on the given (CPU) device, another seed → different;
//! - the training loss falls on a small simulated set with a real signal;
//! - the config survives JSON and TOML, and saved weights reload to bit-identical predictions.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use genopred_core::{FitContext, GenotypeMatrix, Predictor, TrainSet};
use rand::{Rng, SeedableRng};

use crate::arch::{Architecture, Network};
use crate::predictor::NeuralPredictor;

/// A small simulated population: `n` samples × `m` markers (0/1/2, 2 % missing), a trait with
/// heritability ≈ 0.8 from 10 % of the markers.
pub fn simulated(n: usize, m: usize, seed: u64) -> (GenotypeMatrix, Vec<f64>) {
    let mut rng = rand_chacha_rng(seed);
    let mut codes = Vec::with_capacity(n * m);
    let p: Vec<f64> = (0..m).map(|_| rng.random_range(0.15..0.85)).collect();
    for _ in 0..n {
        for &pj in &p {
            if rng.random_bool(0.02) {
                codes.push(genopred_core::genotype::MISSING);
            } else {
                let d = u8::from(rng.random_bool(pj)) + u8::from(rng.random_bool(pj));
                codes.push(d * 100);
            }
        }
    }
    let geno = GenotypeMatrix::with_generated_names(n, m, codes).expect("simulated genotypes");
    let causal: Vec<(usize, f64)> = (0..m).step_by(10).map(|j| (j, rng.random_range(-1.0..1.0))).collect();
    let g: Vec<f64> =
        (0..n).map(|i| causal.iter().map(|&(j, b)| b * geno.dosage(i, j).unwrap_or(2.0 * p[j])).sum()).collect();
    let mean = g.iter().sum::<f64>() / n as f64;
    let var = g.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let noise_sd = (var / 4.0).sqrt().max(1e-3);
    let y = g.iter().map(|v| 10.0 + v + noise_sd * normal(&mut rng)).collect();
    (geno, y)
}

fn rand_chacha_rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn normal(rng: &mut impl Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Output shape for a batch of 3 random inputs of `shape`, with one output and with several
/// (`build`'s `outputs`: every architecture must honour it, since G×E and multi-trait fits
/// give it one output per environment or trait).
pub fn check_output_shape<A: Architecture>(config: &A::Config, shape: (usize, usize), device: &Device) {
    let _rng = crate::predictor::device_rng_lock();
    let x = Tensor::<3>::random([3, shape.0, shape.1], Distribution::Default, device);
    for outputs in [1, 4] {
        device.seed(1);
        let net = A::build(config, shape, outputs, device);
        let out = net.valid().forward(x.clone());
        assert_eq!(out.dims(), [3, outputs], "{}: output shape for input [3, {}, {}]", A::NAME, shape.0, shape.1);
    }
}

/// `num_params()` (burn's count, batch-norm running statistics included, as Keras's "total
/// params") equals the hand-worked count.
pub fn check_param_count<A: Architecture>(config: &A::Config, shape: (usize, usize), expected: usize, device: &Device) {
    let _rng = crate::predictor::device_rng_lock();
    let net = A::build(config, shape, 1, device);
    assert_eq!(net.num_params(), expected, "{}: parameter count for input shape {shape:?}", A::NAME);
}

struct Run {
    /// Training and validation loss per epoch.
    losses: Vec<(f64, Option<f64>)>,
    predictions: Vec<f64>,
    first_loss: f64,
    last_loss: f64,
}

fn fit_once<A: Architecture>(
    config: &A::Config,
    device: &Device,
    geno: &GenotypeMatrix,
    y: &[f64],
    seed: u64,
) -> (NeuralPredictor<A>, Run) {
    fit_once_holding::<A>(
        config,
        device,
        geno,
        y,
        seed,
        crate::predictor::HOLD_INPUTS_UP_TO_BYTES,
        &genopred_core::Quiet,
    )
}

/// An observer that draws from burn's device RNG after every epoch, as other fits running in the
/// same process at the same time do (`genopred cv --jobs`): a fit must not notice.
struct OutsideDraws(Device);

impl genopred_core::FitObserver for OutsideDraws {
    fn epoch(&self, _record: &genopred_core::EpochRecord) {
        let _rng = crate::predictor::device_rng_lock();
        let _ = Tensor::<1>::random([17], burn::tensor::Distribution::Default, &self.0).into_data();
    }
}

/// [`fit_once`] with encoded inputs held whole only up to `hold` bytes (0: every batch streamed).
fn fit_once_holding<A: Architecture>(
    config: &A::Config,
    device: &Device,
    geno: &GenotypeMatrix,
    y: &[f64],
    seed: u64,
    hold: usize,
    observer: &dyn genopred_core::FitObserver,
) -> (NeuralPredictor<A>, Run) {
    let n = geno.n_samples();
    let (n_fit, n_valid) = (n * 7 / 10, n / 10);
    let fit_rows: Vec<usize> = (0..n_fit).collect();
    let valid_rows: Vec<usize> = (n_fit..n_fit + n_valid).collect();
    let test_rows: Vec<usize> = (n_fit + n_valid..n).collect();
    let all: Vec<usize> = (0..n).collect();
    let pick = |rows: &[usize]| rows.iter().map(|&r| y[r]).collect::<Vec<_>>();
    let (y_fit, y_valid) = (pick(&fit_rows), pick(&valid_rows));
    let mut model = NeuralPredictor::<A>::new(config.clone(), device.clone())
        .expect("config passes its checks")
        .with_inputs_held_up_to(hold);
    model
        .fit(
            &TrainSet { geno, rows: &fit_rows, y: &y_fit },
            Some(&TrainSet { geno, rows: &valid_rows, y: &y_valid }),
            &FitContext { seed, genotyped_rows: &all, observer, shared: None },
        )
        .unwrap_or_else(|e| panic!("{}: fit failed: {e}", A::NAME));
    let history = model.take_history();
    assert!(!history.is_empty(), "{}: no training history", A::NAME);
    let losses = history.iter().map(|h| (h.train_loss, h.val_loss)).collect();
    let predictions = model.predict(geno, &test_rows).unwrap_or_else(|e| panic!("{}: predict failed: {e}", A::NAME));
    assert_eq!(predictions.len(), test_rows.len());
    assert!(predictions.iter().all(|p| p.is_finite()), "{}: non-finite predictions", A::NAME);
    let run = Run {
        losses,
        predictions,
        first_loss: history[0].train_loss,
        last_loss: history.iter().map(|h| h.train_loss).fold(f64::INFINITY, f64::min),
    };
    (model, run)
}

/// Same seed → bit-identical predictions; another seed → different ones. Inputs encoded a batch
/// at a time (streamed) give the same losses and predictions as inputs held whole. Draws from
/// burn's device RNG made elsewhere in the process while the model trains (other folds of
/// `--jobs`) change nothing: a network whose own layers draw from it (burn's dropout-carrying
/// layers) is seeded per step by the trainer ([`crate::device_draws`]), and one that draws from
/// it some other way fails here.
pub fn check_determinism<A: Architecture>(config: &A::Config, device: &Device, n_markers: usize) {
    let (geno, y) = simulated(60, n_markers, 3);
    let (_, a) = fit_once::<A>(config, device, &geno, &y, 11);
    let (_, b) = fit_once::<A>(config, device, &geno, &y, 11);
    let hold = crate::predictor::HOLD_INPUTS_UP_TO_BYTES;
    let (_, beside) = fit_once_holding::<A>(config, device, &geno, &y, 11, hold, &OutsideDraws(device.clone()));
    assert_eq!(
        a.predictions,
        beside.predictions,
        "{}: draws from burn's device RNG elsewhere in the process changed the fit: the network draws \
         from it outside the trainer's seeded steps (see genopred_train::device_draws)",
        A::NAME
    );
    let (_, streamed) = fit_once_holding::<A>(config, device, &geno, &y, 11, 0, &genopred_core::Quiet);
    assert_eq!(a.losses, streamed.losses, "{}: streamed batches trained differently", A::NAME);
    assert_eq!(a.predictions, streamed.predictions, "{}: streamed batches predicted differently", A::NAME);
    let (_, c) = fit_once::<A>(config, device, &geno, &y, 12);
    assert_eq!(a.predictions, b.predictions, "{}: same seed gave different predictions", A::NAME);
    assert_ne!(a.predictions, c.predictions, "{}: another seed gave the same predictions", A::NAME);
}

/// The best training loss falls clearly below the first epoch's on a set with a real signal.
/// `config` should train for enough epochs, without early stopping.
pub fn check_loss_falls<A: Architecture>(config: &A::Config, device: &Device, n_markers: usize) {
    let (geno, y) = simulated(120, n_markers, 5);
    let (_, run) = fit_once::<A>(config, device, &geno, &y, 7);
    assert!(
        run.last_loss < 0.8 * run.first_loss,
        "{}: training loss did not fall: first epoch {:.4}, best {:.4}",
        A::NAME,
        run.first_loss,
        run.last_loss
    );
}

/// The config round-trips through JSON and TOML; saved weights (with the input encoding and
/// trait scaling) reload into a model that predicts bit-identically.
pub fn check_round_trip<A: Architecture>(config: &A::Config, device: &Device, n_markers: usize) {
    let json = serde_json::to_string(config).expect("config to JSON");
    let back: A::Config = serde_json::from_str(&json).expect("config from JSON");
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(config).unwrap(),
        "{}: JSON round trip",
        A::NAME
    );
    let toml_text = toml::to_string(config).expect("config to TOML");
    let dir = tempfile::tempdir().expect("temp dir");
    let toml_path = dir.path().join("config.toml");
    std::fs::write(&toml_path, toml_text).expect("write config");
    let resolved = crate::config::resolve_arch_config::<A>(Some(&toml_path)).expect("resolve saved config");
    assert_eq!(
        serde_json::to_value(&resolved).unwrap(),
        serde_json::to_value(config).unwrap(),
        "{}: TOML round trip",
        A::NAME
    );

    let (geno, y) = simulated(50, n_markers, 9);
    let (model, run) = fit_once::<A>(config, device, &geno, &y, 5);
    genopred_core::Predictor::save(&model, dir.path()).expect("save model");
    let loaded = NeuralPredictor::<A>::load_dir(resolved, dir.path(), device.clone()).expect("load");
    let test: Vec<usize> = (50 * 8 / 10..50).collect();
    assert_eq!(
        loaded.predict(&geno, &test).expect("predict"),
        run.predictions,
        "{}: reloaded predictions differ",
        A::NAME
    );
    check_saliency::<A>(&model, loaded, &geno, &test);
}

/// A model trained and saved on one backend loads on another (`to`) and predicts the same, up to
/// f32 rounding (the backends order their sums differently).
pub fn check_cross_backend<A: Architecture>(config: &A::Config, from: &Device, to: &Device, n_markers: usize) {
    let (geno, y) = simulated(50, n_markers, 9);
    let (model, run) = fit_once::<A>(config, from, &geno, &y, 5);
    let dir = tempfile::tempdir().expect("temp dir");
    genopred_core::Predictor::save(&model, dir.path()).expect("save model");
    let loaded =
        NeuralPredictor::<A>::load_dir(config.clone(), dir.path(), to.clone()).expect("load on the other backend");
    let test: Vec<usize> = (50 * 8 / 10..50).collect();
    let there = loaded.predict(&geno, &test).expect("predict on the other backend");
    let sd = model.fitted().expect("fitted").scaling.sd;
    for (a, b) in there.iter().zip(&run.predictions) {
        assert!((a - b).abs() <= 1e-4 * sd, "{}: {a} on {to:?} but {b} on {from:?}", A::NAME);
    }
}

/// Marker saliency: one finite value ≥ 0 per test sample and marker, the same after reloading,
/// and — for inputs whose channels move with the dosage (not one-hot) — equal to finite
/// differences of the predictions, which checks each model's chain rule back to the dosages
/// (through standardisation, or DNNGP's PCA). Streamed in blocks of a few rows, plain and
/// SmoothGrad saliency equal the whole call's.
pub fn check_saliency<A: Architecture>(
    model: &NeuralPredictor<A>,
    loaded: NeuralPredictor<A>,
    geno: &GenotypeMatrix,
    rows: &[usize],
) {
    let options = genopred_core::SaliencyOptions::default();
    let sal = model.saliency(geno, rows, &options).expect("saliency").expect("neural models have saliency");
    let m = geno.n_markers();
    assert_eq!(sal.len(), rows.len() * m, "{}: saliency shape", A::NAME);
    assert!(sal.iter().all(|v| v.is_finite() && *v >= 0.0), "{}: saliency finite and >= 0", A::NAME);
    assert!(sal.iter().any(|v| *v > 0.0), "{}: saliency all zero", A::NAME);
    assert_eq!(loaded.saliency(geno, rows, &options).unwrap().unwrap(), sal, "{}: reloaded saliency", A::NAME);
    // Blocks of one to three rows (a working set of 1 KiB per block): the same values, to f32
    // rounding of the smaller batches, with and without SmoothGrad's noise.
    let smooth = genopred_core::SaliencyOptions { smoothgrad: 3, noise: 0.2, seed: 7 };
    let whole_smooth = model.saliency(geno, rows, &smooth).unwrap().unwrap();
    let blocked = loaded.with_inputs_held_up_to(1024);
    for (opts, whole) in [(options, &sal), (smooth, &whole_smooth)] {
        let mut blocks = 0;
        let mut streamed = Vec::new();
        let has = blocked
            .saliency_blocks(geno, rows, &opts, &mut |block| {
                assert_eq!(block.len() % m, 0, "{}: a block of whole rows", A::NAME);
                blocks += 1;
                streamed.extend_from_slice(block);
                Ok(())
            })
            .expect("saliency in blocks");
        assert!(has && blocks > 1, "{}: {blocks} blocks", A::NAME);
        let scale = whole.iter().fold(0f32, |a, &b| a.max(b));
        assert_eq!(streamed.len(), whole.len(), "{}: streamed saliency shape", A::NAME);
        for (k, (a, b)) in streamed.iter().zip(whole.iter()).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "{}: value {k} is {a} in blocks, {b} whole", A::NAME);
        }
    }
    let fitted = model.fitted().expect("fitted");
    if A::input_shape(&fitted.input).0 != 1 {
        return;
    }
    let scale = sal.iter().fold(0f32, |a, &b| a.max(b));
    // Heterozygous calls, so that both one-sided differences exist.
    let points: Vec<(usize, usize)> = (0..rows.len())
        .flat_map(|i| (0..m).step_by(7).map(move |j| (i, j)))
        .filter(|&(i, j)| geno.code(rows[i], j) == 100)
        .take(12)
        .collect();
    assert!(points.len() >= 6, "{}: too few heterozygous calls to check", A::NAME);
    for (i, j) in points {
        let (r, c) = (rows[i], 100u8);
        {
            let with = |code: u8| -> f64 {
                let mut codes = geno.row(r).to_vec();
                codes[j] = code;
                let one = GenotypeMatrix::new(vec!["x".into()], geno.markers().to_vec(), codes).expect("one sample");
                model.predict(&one, &[0]).expect("predict")[0]
            };
            // One-sided differences over the smallest step (0.01 copies): the networks are
            // piecewise linear, and the gradient is the slope of the piece the sample sits on,
            // which one side's step may leave at a ReLU kink, but not both.
            let step = 0.01;
            let here = with(c);
            let slopes = [(with(c + 1) - here) / step, (here - with(c - 1)) / step];
            // The network's output is f32 (standardised trait): a few of its ulps are noise.
            let t = fitted.scaling;
            let floor = (8.0 * f64::from(f32::EPSILON) * ((here - t.mean).abs() + t.sd) / step) as f32;
            let s = sal[i * m + j];
            assert!(
                slopes.iter().any(|fd| ((fd.abs() as f32) - s).abs() <= 0.05 * s + 0.02 * scale + floor),
                "{}: saliency {s} but one-sided finite differences {slopes:?} (sample {r}, marker {j})",
                A::NAME
            );
        }
    }
}

/// How far two backends were apart in [`backend_parity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Parity {
    /// Largest |difference| of the inference-mode predictions, over the largest |prediction|.
    pub forward: f64,
    /// |difference| of the training-mode batch loss (dropout masks shared), over the loss.
    pub loss: f64,
    /// Largest |difference| of a parameter tensor's gradient, over that tensor's largest
    /// |gradient| (or a floor relative to the network's, [`gradient_parity`]), worst tensor.
    pub gradient: f64,
    /// Largest |difference| of a parameter after one step of the model's own optimiser, over the
    /// step size (the learning rate; Adam's first step moves each weight by at most about that),
    /// where the gradient is not rounding noise ([`update_parity`]).
    pub update: f64,
    /// Parameter tensors compared.
    pub tensors: usize,
    /// The parameter whose gradient differed most.
    pub worst: String,
}

/// Tolerances [`check_backend_parity`] asserts, stated once for the docs and the test report.
pub const PARITY_TOLERANCE: Parity =
    Parity { forward: 1e-4, loss: 1e-4, gradient: 1e-3, update: 1e-2, tensors: 0, worst: String::new() };

impl Parity {
    /// Whether every measure is within `tol`.
    pub fn within(&self, tol: &Parity) -> bool {
        self.forward <= tol.forward
            && self.loss <= tol.loss
            && self.gradient <= tol.gradient
            && self.update <= tol.update
    }
}

/// Float parameters of a module in visiting order, as host vectors with their paths, and their
/// gradients when `grads` is given.
struct Collect<'a> {
    path: Vec<String>,
    grads: Option<&'a burn::tensor::Gradients>,
    out: Vec<(String, Vec<f32>)>,
}

impl burn::module::ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let value = param.val();
        let tensor = match self.grads {
            Some(grads) => match value.grad(grads) {
                Some(g) => g,
                None => return,
            },
            None => value,
        };
        let data = tensor.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 parameter");
        self.out.push((self.path.join("."), data));
    }
}

fn collect<M: Module>(module: &M, grads: Option<&burn::tensor::Gradients>) -> Vec<(String, Vec<f32>)> {
    let mut visitor = Collect { path: Vec::new(), grads, out: Vec::new() };
    module.visit(&mut visitor);
    visitor.out
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 output")
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max(f64::from(x.abs())))
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "parity: lengths differ");
    a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| m.max(f64::from((x - y).abs())))
}

/// Share of the network's largest gradient below which a tensor's own gradient is judged on
/// that floor instead: a parameter whose true gradient is zero (attention's key bias: softmax
/// ignores a constant per query) carries only rounding noise, which its own scale would turn
/// into a large relative error.
pub const GRADIENT_FLOOR: f64 = 1e-2;

/// The worst gradient difference between two backends' gradients (same parameters, same
/// order), and the parameter it belongs to: each tensor's largest |difference| over its own
/// largest |gradient|, or over [`GRADIENT_FLOOR`] × the network's largest |gradient| where that
/// is larger.
pub fn gradient_parity(reference: &[(String, Vec<f32>)], other: &[(String, Vec<f32>)]) -> (f64, String) {
    let network = reference.iter().chain(other).map(|(_, g)| max_abs(g)).fold(0.0, f64::max);
    let (mut gradient, mut worst) = (0.0f64, String::new());
    for ((name, a), (_, b)) in reference.iter().zip(other) {
        let scale = max_abs(a).max(max_abs(b)).max(GRADIENT_FLOOR * network);
        if scale > 0.0 && max_diff(a, b) / scale > gradient {
            gradient = max_diff(a, b) / scale;
            worst.clone_from(name);
        }
    }
    (gradient, worst)
}

/// The largest difference between two backends' parameters after one optimiser step, over the
/// elements whose gradient (on either backend) reaches [`GRADIENT_FLOOR`] × the network's largest
/// |gradient|, and over every element of a parameter without a gradient. Adam divides each
/// gradient by its own size, so where the gradient is rounding noise (a true zero, say) its step
/// is noise of full size (±lr); such elements are judged on their gradient by
/// [`gradient_parity`].
pub fn update_parity(
    after_reference: &[(String, Vec<f32>)],
    after_other: &[(String, Vec<f32>)],
    grad_reference: &[(String, Vec<f32>)],
    grad_other: &[(String, Vec<f32>)],
) -> f64 {
    let network = grad_reference.iter().chain(grad_other).map(|(_, g)| max_abs(g)).fold(0.0, f64::max);
    let floor = GRADIENT_FLOOR * network;
    let grads: std::collections::HashMap<&str, (&[f32], &[f32])> =
        grad_reference.iter().zip(grad_other).map(|((n, a), (_, b))| (n.as_str(), (&a[..], &b[..]))).collect();
    let mut worst = 0.0f64;
    for ((name, a), (_, b)) in after_reference.iter().zip(after_other) {
        assert_eq!(a.len(), b.len(), "parity: lengths differ");
        for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
            let counted = grads
                .get(name.as_str())
                .is_none_or(|(ga, gb)| f64::from(ga[i].abs()).max(f64::from(gb[i].abs())) >= floor);
            if counted {
                worst = worst.max(f64::from((x - y).abs()));
            }
        }
    }
    worst
}

/// Runs the same network on two backends from the same initial weights (built on `reference`,
/// saved as burnpack, loaded on `other`) and the same batch of `batch` inputs of `shape`, and
/// measures: the inference-mode forward output; one training step's loss (dropout masks come
/// from the seeded host generator, so they match; a network that also draws from burn's device
/// RNG, whose generator differs by backend, has burn's dropout layers off for the step:
/// [`crate::device_draws::without_burns_dropout`]); every parameter's gradient; and the
/// parameters after one step of the model's own optimiser and learning rate.
pub fn backend_parity<A: Architecture>(
    config: &A::Config,
    shape: (usize, usize),
    batch: usize,
    reference: &Device,
    other: &Device,
) -> Parity {
    let _rng = crate::predictor::device_rng_lock();
    let (ad_ref, ad_other) = (reference.clone().autodiff(), other.clone().autodiff());
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let x: Vec<f32> = (0..batch * shape.0 * shape.1).map(|_| rng.random_range(0.0f32..2.0)).collect();
    let y: Vec<f32> = (0..batch).map(|_| normal(&mut rng) as f32).collect();
    let inputs = |device: &Device| {
        (
            Tensor::<3>::from_data(TensorData::new(x.clone(), [batch, shape.0, shape.1]), device),
            Tensor::<2>::from_data(TensorData::new(y.clone(), [batch, 1]), device),
        )
    };
    let draws = crate::device_draws::draws_from_device_rng::<A>(config, shape, &inputs(&ad_ref).0, &ad_ref);
    ad_ref.seed(1);
    let net_ref = A::build(config, shape, 1, &ad_ref);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("init.bpk");
    net_ref.clone().save_file(&path).expect("save initial weights");
    let net_other =
        A::build(config, shape, 1, &ad_other).try_load_file(&path).expect("load initial weights on the other backend");
    let before = collect(&net_ref, None);
    assert_eq!(before, collect(&net_other, None), "{}: initial weights differ after loading", A::NAME);

    // Inference-mode forward pass.
    let forward = |net: &A::Net, device: &Device| host(net.valid().forward(inputs(device).0));
    let (f_ref, f_other) = (forward(&net_ref, reference), forward(&net_other, other));
    let forward = max_diff(&f_ref, &f_other) / max_abs(&f_ref).max(1e-12);

    // One training step: loss, gradients, update.
    let cfg = A::train_config(config);
    let one_step = |net: A::Net, device: &Device| {
        crate::layers::seed_dropout(7);
        // Masks drawn from each backend's own device RNG cannot agree: such layers are off.
        let net = if draws { crate::device_draws::without_burns_dropout(net) } else { net };
        let (x, y) = inputs(device);
        let fit = crate::trainer::data_loss(net.forward(x), y, cfg);
        let loss = crate::trainer::objective(fit, net.penalty());
        let loss_value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = loss.backward();
        let gradients = collect(&net, Some(&grads));
        let params = burn::optim::GradientsParams::from_grads(grads, &net);
        let mut optim = crate::trainer::optimizer(cfg);
        let net = optim.step(cfg.learning_rate, net, params);
        (loss_value, gradients, collect(&net, None))
    };
    let (l_ref, g_ref, p_ref) = one_step(net_ref, &ad_ref);
    let (l_other, g_other, p_other) = one_step(net_other, &ad_other);
    let loss = (l_ref - l_other).abs() / l_ref.abs().max(1e-12);
    assert_eq!(g_ref.len(), g_other.len(), "{}: gradients for different parameters", A::NAME);
    let (gradient, worst) = gradient_parity(&g_ref, &g_other);
    let update = update_parity(&p_ref, &p_other, &g_ref, &g_other) / cfg.learning_rate;
    Parity { forward, loss, gradient, update, tensors: before.len(), worst }
}

/// [`backend_parity`] within [`PARITY_TOLERANCE`], or a panic naming the model, the backends and
/// what differed.
pub fn check_backend_parity<A: Architecture>(
    config: &A::Config,
    shape: (usize, usize),
    reference: &Device,
    other: &Device,
) -> Parity {
    let parity = backend_parity::<A>(config, shape, 8, reference, other);
    assert!(
        parity.within(&PARITY_TOLERANCE),
        "{}: {other:?} differs from {reference:?}: {parity:?}, tolerance {PARITY_TOLERANCE:?}",
        A::NAME
    );
    parity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, g: &[f32]) -> (String, Vec<f32>) {
        (name.to_string(), g.to_vec())
    }

    #[test]
    fn a_parameter_with_zero_gradient_is_judged_on_the_networks_scale() {
        // A weight with real gradients, equal on both backends to f32 rounding, and a bias whose
        // true gradient is zero: each backend's is rounding noise of another sign and size.
        let reference = [named("w", &[0.8, -1.5, 2.0]), named("key.bias", &[3e-8, -1e-8])];
        let other = [named("w", &[0.8, -1.5, 2.000_000_2]), named("key.bias", &[-2e-8, 4e-8])];
        let (gradient, _) = gradient_parity(&reference, &other);
        // On its own scale the noise would read as 125 % error.
        assert!(max_diff(&reference[1].1, &other[1].1) / max_abs(&other[1].1) > 1.0);
        assert!(gradient < PARITY_TOLERANCE.gradient, "{gradient}");
        // A real difference is still caught, in a tensor of any size, and named.
        let wrong = [named("w", &[0.8, -1.5, 2.0]), named("key.bias", &[3e-8, 0.05])];
        let (gradient, worst) = gradient_parity(&reference, &wrong);
        assert!(gradient > PARITY_TOLERANCE.gradient, "{gradient}");
        assert_eq!(worst, "key.bias");
        let scaled = [named("w", &[0.8, -1.5, 2.01]), named("key.bias", &[3e-8, -1e-8])];
        assert_eq!(gradient_parity(&reference, &scaled).1, "w");
    }

    #[test]
    fn an_adam_step_on_a_noise_gradient_is_not_an_update_difference() {
        // Adam's first step is ≈ ±lr whatever the gradient's size: on a rounding-noise gradient
        // of opposite signs the two backends move a weight 2·lr apart.
        let g_ref = [named("w", &[0.8, -1.5]), named("b", &[3e-8])];
        let g_other = [named("w", &[0.8, -1.5]), named("b", &[-2e-8])];
        let after_ref = [named("w", &[0.999, 0.001]), named("b", &[-0.001]), named("frozen", &[1.0])];
        let after_other = [named("w", &[0.999, 0.001]), named("b", &[0.001]), named("frozen", &[1.0])];
        assert_eq!(update_parity(&after_ref, &after_other, &g_ref, &g_other), 0.0);
        // A real gradient moving differently counts, and so does a parameter without a gradient.
        let moved = [named("w", &[0.998, 0.001]), named("b", &[0.001]), named("frozen", &[1.0])];
        assert!((update_parity(&after_ref, &moved, &g_ref, &g_other) - 1e-3).abs() < 1e-6);
        let frozen = [named("w", &[0.999, 0.001]), named("b", &[0.001]), named("frozen", &[1.5])];
        assert_eq!(update_parity(&after_ref, &frozen, &g_ref, &g_other), 0.5);
    }
}
