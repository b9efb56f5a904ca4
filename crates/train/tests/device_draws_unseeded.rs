//! The trainer's per-step seeding is what makes a network with burn's own dropout repeat: without
//! it, draws from burn's device RNG made elsewhere change the fit. Its own test binary (its own
//! process): the unseeded fits here draw from the device RNG without the lock, which would
//! disturb fits of other tests running beside them.

mod burn_dropout;

use burn::prelude::*;
use burn_dropout::{Arch, OutsideDraws, config};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::{FitObserver, Quiet};
use genopred_train::conformance::simulated;
use genopred_train::predictor::device_rng_lock;
use genopred_train::{Architecture, TrainData, TrainRun, train};

/// What the conformance check compares, without the trainer's per-step seeding (the behaviour
/// before it): the outside draws change the fit, so the check would have failed.
#[test]
fn unseeded_steps_would_follow_outside_draws() {
    let (geno, y) = simulated(40, 20, 4);
    let input = DosageEncoder::fit(&geno, &(0..40).collect::<Vec<_>>(), Scaling::Standardised);
    let x = Arch::encode(&input, &geno, &(0..40).collect::<Vec<_>>()).unwrap();
    let y: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let device = Device::flex().autodiff();
    let losses = |device_draws: Option<u64>, observer: &dyn FitObserver| -> Vec<u64> {
        let net = {
            let _rng = device_rng_lock();
            device.seed(5);
            Arch::build(&config(true), (1, 20), 1, &device)
        };
        let run = TrainRun { seed: 3, label: "burn-dropout", observer, device_draws };
        let out = train(net, &config(true).train, TrainData::new(&x, &y), None, &device, &run).unwrap();
        out.history.iter().map(|h| h.train_loss.to_bits()).collect()
    };
    assert_ne!(losses(None, &Quiet), losses(None, &OutsideDraws), "unseeded: the outside draws change the fit");
    assert_eq!(losses(Some(9), &Quiet), losses(Some(9), &OutsideDraws), "seeded per step: they do not");
}
