//! The blanket catalogue entry of every neural [`Architecture`].

use std::marker::PhantomData;
use std::path::Path;

use burn::prelude::Device;
use genopred_core::records::Compute;
use genopred_core::{GenotypeMatrix, Predictor};
use genopred_train::conformance::{self, Parity};
use genopred_train::{Architecture, InputContext, NeuralPredictor, resolve_arch_config, resolve_arch_table};

use crate::entry::{Built, ModelEntry};
use crate::error::ZooError;
use crate::harness::{NeuralStep, StepBench};

/// Any [`Architecture`] as a catalogue entry: `&Neural::<MyNet>::ENTRY`.
pub struct Neural<A>(PhantomData<fn() -> A>);

impl<A: Architecture> Neural<A> {
    /// The entry, for the catalogue's static list.
    pub const ENTRY: Self = Neural(PhantomData);
}

/// Settings the harnesses train with: a couple of epochs, no early stopping, small batches.
fn quick<A: Architecture>(mut config: A::Config) -> A::Config {
    let train = A::train_config_mut(&mut config);
    *train = train.clone().with_epochs(2).with_patience(0).with_batch_size(16);
    config
}

/// `(channels, length)` of the input `config` fits on a small simulated population (the shapes
/// the parity test runs at).
fn harness_shape<A: Architecture>(config: &A::Config) -> (usize, usize) {
    let (geno, _) = conformance::simulated(64, 160, 1);
    let rows: Vec<usize> = (0..geno.n_samples()).collect();
    let ctx = InputContext { geno: &geno, train_rows: &rows, genotyped_rows: &rows };
    let input =
        A::fit_input(config, &ctx).unwrap_or_else(|e| panic!("{}: fitting the input on simulated data: {e}", A::NAME));
    A::input_shape(&input)
}

impl<A: Architecture> ModelEntry for Neural<A> {
    fn name(&self) -> &'static str {
        A::NAME
    }

    fn about(&self) -> &'static str {
        A::ABOUT
    }

    fn compute(&self) -> Compute {
        Compute::Device
    }

    fn tuning_space(&self) -> Option<&'static str> {
        A::TUNING_SPACE
    }

    fn build_table(&self, config: Option<(&toml::Table, &Path)>, device: &Device) -> Result<Built, ZooError> {
        let config = resolve_arch_table::<A>(config)?;
        let json = serde_json::to_value(&config).map_err(|e| ZooError::Serialise(e.to_string()))?;
        let config_toml = toml::to_string(&config).map_err(|e| ZooError::Serialise(e.to_string()))?;
        let model = NeuralPredictor::<A>::new(config, device.clone())?;
        Ok(Built { model: Box::new(model), config: json, config_toml })
    }

    fn load(&self, config: &Path, state: &Path, device: &Device) -> Result<Box<dyn Predictor>, ZooError> {
        let config = resolve_arch_config::<A>(Some(config))?;
        Ok(Box::new(NeuralPredictor::<A>::load_dir(config, state, device.clone())?))
    }

    fn backend_parity(&self, reference: &Device, other: &Device) -> Vec<(String, Parity)> {
        A::variants()
            .into_iter()
            .map(|(label, config)| {
                let shape = harness_shape::<A>(&config);
                let parity = conformance::check_backend_parity::<A>(&config, shape, reference, other);
                (label, parity)
            })
            .collect()
    }

    fn check_cross_backend(&self, reference: &Device, other: &Device) {
        conformance::check_cross_backend::<A>(&quick::<A>(A::default_config()), reference, other, 120);
    }

    fn step_benches(&self, geno: &GenotypeMatrix, rows: &[usize], device: &Device) -> Vec<Box<dyn StepBench>> {
        A::variants()
            .into_iter()
            .map(|(label, config)| {
                Box::new(NeuralStep::<A>::new(label, config, geno, rows, device)) as Box<dyn StepBench>
            })
            .collect()
    }
}
