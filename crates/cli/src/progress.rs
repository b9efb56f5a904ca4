//! Progress on the terminal: a bar of folds (done / total, with an estimate of the time left),
//! and below it one line per running fit with its epochs, heard through the [`FitObserver`] the
//! commands pass to every fit. Folds may run at once (`--jobs`): each has its own line.

use std::sync::Mutex;

use genopred_core::{EpochRecord, FitObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A bar of folds with one line per running fold below it.
pub struct Progress {
    multi: MultiProgress,
    folds: ProgressBar,
}

impl Progress {
    /// A bar for `total` folds, labelled `prefix` (`dnngp cv`).
    pub fn new(prefix: String, total: usize) -> Self {
        let multi = MultiProgress::new();
        let folds = multi.add(ProgressBar::new(total as u64));
        folds.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{bar:30}] {pos}/{len} folds ({elapsed}, about {eta} left) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        folds.set_prefix(prefix);
        Progress { multi, folds }
    }

    /// Counts folds finished before this run (read back with `--resume`) as done, without
    /// letting them shorten the estimate of the time left.
    pub fn already_done(&self, n: usize) {
        self.folds.set_length(self.folds.length().unwrap_or(0).saturating_sub(n as u64));
        self.folds.set_message(if n > 0 { format!("{n} resumed") } else { String::new() });
        self.folds.reset_eta();
    }

    /// A line for one fold (`label`) that shows its fit's epochs; dropping it counts the fold
    /// as done.
    pub fn fold(&self, label: String) -> FoldProgress<'_> {
        let line = self.multi.add(ProgressBar::new_spinner());
        line.set_style(
            ProgressStyle::with_template("  {prefix} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        line.set_prefix(label);
        line.set_message("starting");
        FoldProgress { progress: self, line, epochs: Mutex::new(0) }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.folds.finish_and_clear();
    }
}

/// One running fold's line.
pub struct FoldProgress<'a> {
    progress: &'a Progress,
    line: ProgressBar,
    epochs: Mutex<usize>,
}

impl Drop for FoldProgress<'_> {
    fn drop(&mut self) {
        self.line.finish_and_clear();
        self.progress.multi.remove(&self.line);
        self.progress.folds.inc(1);
    }
}

impl FitObserver for FoldProgress<'_> {
    fn start(&self, label: &str, epochs: usize) {
        *self.epochs.lock().unwrap_or_else(|p| p.into_inner()) = epochs;
        self.line.set_message(format!("{label}: epoch 0/{epochs}"));
    }

    fn epoch(&self, r: &EpochRecord) {
        let total = *self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        self.line.set_message(match (r.val_loss, r.val_metric) {
            (Some(vl), Some(vm)) => {
                format!("epoch {}/{total} loss {:.4} val {vl:.4} ({vm:.4}) lr {:.1e}", r.epoch, r.train_loss, r.lr)
            }
            _ => format!("epoch {}/{total} loss {:.4} lr {:.1e}", r.epoch, r.train_loss, r.lr),
        });
    }

    fn finish(&self) {
        self.line.set_message("predicting");
    }
}
