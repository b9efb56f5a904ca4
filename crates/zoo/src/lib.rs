//! genopred-zoo: the one catalogue of genopred's models.
//!
//! [`MODELS`] lists every model, one line each. Each line is a [`ModelEntry`]: its name and one
//! line about it, where it computes, how its settings are resolved and checked, how a fresh
//! model is built and a saved one loaded, and what the shared test and benchmark harnesses need
//! (backend parity, cross-backend loading, one training step). A blanket implementation,
//! [`Neural`], covers every [`genopred_train::Architecture`]; another, [`classical::Cpu`], every
//! classical model (GBLUP, RKHS, BayesB) that implements [`classical::Classical`]; the ensemble has
//! an entry of its own that builds its members from this same list. The `genopred` binary, its backend parity test, the train-step
//! benches and the `step-times` tool iterate this list; `cargo xtask compare` reads it from
//! `genopred models --json`.
//!
//! Why a crate of its own: the list depends on every model crate, and the CLI, the tests and the
//! benches all need it, while none of the model crates may depend on each other. The CLI stays
//! the only crate that chooses burn backends: entries receive a `Device`.

mod catalogue;
pub mod classical;
mod ensemble;
mod entry;
mod error;
pub mod harness;
mod neural;

pub use catalogue::MODELS;
pub use entry::{Built, ModelEntry, find, listing};
pub use error::ZooError;
pub use neural::Neural;
