//! Progress on the terminal: a bar of folds, and the trainer's epochs shown through the
//! [`FitObserver`] the commands pass to every fit.

use std::sync::Mutex;

use genopred_core::{EpochRecord, FitObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// A bar of folds with one line per running fit's epochs below it.
pub struct Progress {
    multi: MultiProgress,
    folds: ProgressBar,
    epochs: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// A bar for `total` folds, labelled `prefix` (`dnngp cv`).
    pub fn new(prefix: String, total: usize) -> Self {
        let multi = MultiProgress::new();
        let folds = multi.add(ProgressBar::new(total as u64));
        folds.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} folds {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        folds.set_prefix(prefix);
        Progress { multi, folds, epochs: Mutex::new(None) }
    }

    /// Says which fold runs now.
    pub fn fold_started(&self, message: String) {
        self.folds.set_message(message);
    }

    /// One more fold done.
    pub fn fold_done(&self) {
        self.folds.inc(1);
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.folds.finish_and_clear();
    }
}

impl FitObserver for Progress {
    fn start(&self, label: &str, epochs: usize) {
        let bar = self.multi.add(ProgressBar::new(epochs as u64));
        bar.set_style(
            ProgressStyle::with_template("  {prefix} epoch {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(label.to_string());
        *self.epochs.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn epoch(&self, r: &EpochRecord) {
        if let Some(bar) = self.epochs.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            bar.set_position(r.epoch as u64);
            bar.set_message(match (r.val_loss, r.val_metric) {
                (Some(vl), Some(vm)) => format!("loss {:.4} val {vl:.4} ({vm:.4}) lr {:.1e}", r.train_loss, r.lr),
                _ => format!("loss {:.4} lr {:.1e}", r.train_loss, r.lr),
            });
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.epochs.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
