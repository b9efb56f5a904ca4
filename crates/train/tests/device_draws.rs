//! A network built from burn's own dropout layer (which draws from burn's device RNG, not from
//! genopred's seeded per-thread generator) trains to the same bytes whatever else runs in the
//! process: alone, beside draws made between its epochs, or beside other fits on other threads.

mod burn_dropout;

use burn::prelude::*;
use burn_dropout::{Arch, Net, config};
use genopred_core::encoding::{DosageEncoder, Scaling};
use genopred_core::{FitContext, FitObserver, GenotypeMatrix, Predictor, Quiet, TrainSet};
use genopred_train::conformance::{check_determinism, simulated};
use genopred_train::device_draws::{draws_from_device_rng, without_burns_dropout};
use genopred_train::predictor::device_rng_lock;
use genopred_train::{Architecture, Network, NeuralPredictor, batch_tensor};

fn fit_and_predict(geno: &GenotypeMatrix, y: &[f64], seed: u64, observer: &dyn FitObserver) -> Vec<u64> {
    let rows: Vec<usize> = (0..40).collect();
    let test: Vec<usize> = (40..geno.n_samples()).collect();
    let all: Vec<usize> = (0..geno.n_samples()).collect();
    let mut model = NeuralPredictor::<Arch>::new(config(true), Device::flex()).unwrap();
    model
        .fit(
            &TrainSet { geno, rows: &rows, y: &y[..40] },
            None,
            &FitContext { seed, genotyped_rows: &all, observer, shared: None },
        )
        .unwrap();
    model.predict(geno, &test).unwrap().into_iter().map(f64::to_bits).collect()
}

#[test]
fn burns_dropout_is_found_and_genopreds_is_not() {
    let (geno, _) = simulated(10, 12, 1);
    let input = DosageEncoder::fit(&geno, &[0, 1, 2, 3], Scaling::Standardised);
    let x = Arch::encode(&input, &geno, &[0, 1]).unwrap();
    let device = Device::flex().autodiff();
    let x = batch_tensor(&x, &[0, 1], &device).unwrap();
    let _rng = device_rng_lock();
    assert!(draws_from_device_rng::<Arch>(&config(true), (1, 12), &x, &device));
    assert!(!draws_from_device_rng::<Arch>(&config(false), (1, 12), &x, &device));
}

#[test]
fn burns_dropout_switched_off_draws_nothing_and_leaves_the_weights() {
    let (geno, _) = simulated(10, 12, 1);
    let input = DosageEncoder::fit(&geno, &[0, 1, 2, 3], Scaling::Standardised);
    let device = Device::flex().autodiff();
    let x = batch_tensor(&Arch::encode(&input, &geno, &[0, 1, 2]).unwrap(), &[0, 1, 2], &device).unwrap();
    let _rng = device_rng_lock();
    device.seed(1);
    let net = Arch::build(&config(true), (1, 12), 1, &device);
    let off = without_burns_dropout(net.clone());
    let forward = |net: &Net, seed: u64| -> Vec<f32> {
        device.seed(seed);
        net.forward(x.clone()).into_data().try_to_vec().unwrap()
    };
    assert_ne!(forward(&net, 1), forward(&net, 2), "on: the masks follow the device seed");
    assert_eq!(forward(&off, 1), forward(&off, 2), "off: no masks");
    // Off is the inference forward pass of the same weights.
    let plain = x.clone().inner();
    let inference: Vec<f32> = net.valid().forward(plain).into_data().try_to_vec().unwrap();
    assert_eq!(forward(&off, 3), inference);
}

#[test]
fn the_conformance_check_passes_a_network_with_burns_dropout() {
    check_determinism::<Arch>(&config(true), &Device::flex(), 30);
}

#[test]
fn fits_on_three_threads_at_once_give_the_bytes_of_fits_one_at_a_time() {
    let (geno, y) = simulated(60, 24, 6);
    let alone: Vec<Vec<u64>> = (0..3).map(|s| fit_and_predict(&geno, &y, 100 + s, &Quiet)).collect();
    let together: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|s| {
                scope.spawn({
                    let (geno, y) = (&geno, &y);
                    move || fit_and_predict(geno, y, 100 + s, &Quiet)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, together);
    assert_ne!(alone[0], alone[1], "other seeds, other fits");
}
