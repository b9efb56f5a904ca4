//! What every command records about the process that ran it.

/// The command line, as run.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}

/// This process's peak resident memory (Linux `VmHWM`), if the system tells. For a resumed run it
/// covers only the folds run by this process.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// This genopred's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version with the build identity (`build.rs`): what `genopred --version` prints and
/// `run.json` records, e.g. `0.1.0 (source 3f2a9c1d0b7e, features flex)`.
pub const BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GENOPRED_BUILD"), ")");
