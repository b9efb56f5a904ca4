//! `genopred models`: the catalogue compiled into this build.

use anyhow::Result;
use clap::Args;
use genopred_core::records::Compute;

use crate::backend;

/// Arguments of `genopred models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print the list as JSON (`genopred_core::records::ModelListing`), for tools such as
    /// `cargo xtask compare`.
    #[arg(long)]
    json: bool,
}

/// Prints the models.
pub fn run(args: &ModelsArgs) -> Result<()> {
    let listing = genopred_zoo::listing(backend::default_name());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    for m in &listing.models {
        let cpu = if m.compute == Compute::Cpu { " (CPU, f64)" } else { "" };
        let tune = if m.tuning_space { " [--tune default]" } else { "" };
        println!("{:<8} {}{cpu}{tune}", m.name, m.about);
    }
    println!("\nbackend for neural models: {} (--backend)", listing.default_backend);
    println!("[--tune default]: ships a search space for nested tuning (any model: --tune SPACE.toml)");
    Ok(())
}
