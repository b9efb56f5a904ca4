//! Per-fold progress bars. The CLI attaches its `MultiProgress` once; without one (tests,
//! libraries) the bars are hidden.

use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// Shows the trainer's epoch bars inside `multi` (call once, before training).
pub fn attach(multi: MultiProgress) {
    let _ = MULTI.set(multi);
}

/// A bar counting epochs (hidden unless a `MultiProgress` is attached).
pub fn epoch_bar(label: &str, epochs: usize) -> ProgressBar {
    let Some(multi) = MULTI.get() else {
        return ProgressBar::hidden();
    };
    let bar = multi.add(ProgressBar::new(epochs as u64));
    bar.set_style(
        ProgressStyle::with_template("  {prefix} epoch {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(label.to_string());
    bar
}
