//! `genopred`: genomic prediction from the command line.

mod backend;
mod commands;
mod inputs;
mod jobs;
mod model_dir;
mod progress;
mod provenance;
mod report;
mod table;
mod trial;
mod tuning;

use std::process::ExitCode;

/// mimalloc instead of the system allocator. Training allocates and frees megabyte tensors at
/// every step; glibc's malloc returns such blocks to the kernel (mmap above its threshold, trims
/// of the threads' arenas) and takes them back zero-filled a moment later, so a third of a
/// DeepGS fold went to page faults and zeroing. mimalloc keeps them: 10-fold DeepGS on wheat599
/// (8 epochs) 11.2 → 5.5 s (docs/baseline-results.md, "Per epoch").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Genomic prediction with deep learning and GBLUP, side by side.
#[derive(Debug, Parser)]
#[command(name = "genopred", version = provenance::BUILD, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a genotype file (and how a phenotype file matches it).
    Info(commands::info::InfoArgs),
    /// Cross-validate a model on genotypes and one trait.
    Cv(Box<commands::cv::CvArgs>),
    /// Train a model on every phenotyped sample and save it as a model folder.
    Train(Box<commands::train::TrainArgs>),
    /// Predict new genotypes with a saved model (markers aligned by id or position).
    Predict(Box<commands::predict::PredictArgs>),
    /// Which markers a model relies on: saliency or marker effects, single-marker tests,
    /// Manhattan plots.
    Importance(Box<commands::importance::ImportanceArgs>),
    /// List the models this build knows (`--json` for tools).
    Models(commands::models::ModelsArgs),
    /// List the burn backends this build knows (`--probe NAME` checks that one runs here).
    Backends(commands::backends::BackendsArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GENOPRED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => commands::info::run(&args),
        Command::Cv(args) => commands::cv::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Importance(args) => commands::importance::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Backends(args) => commands::backends::run(&args),
        Command::Models(args) => commands::models::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
