//! genopred-plot: the figures genopred writes, each as PNG and SVG with `plotters`.
//!
//! Text is drawn with DejaVu Sans, bundled (`assets/`, its licence beside it), so figures look
//! the same on every machine and need no system fonts or font libraries.

pub mod manhattan;

pub use manhattan::{ManhattanPoint, manhattan};

use std::path::PathBuf;
use std::sync::Once;

/// A figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing or encoding failed (the backend's message).
    #[error("drawing {path}: {message}")]
    Draw {
        /// The file being drawn.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Nothing to draw.
    #[error("{0}")]
    Empty(String),
}

/// The font family every figure uses.
pub(crate) const FONT: &str = "sans-serif";

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font once per process.
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid TrueType font; a failure would only cost the labels.
        let _ = plotters::style::register_font(FONT, plotters::style::FontStyle::Normal, FONT_BYTES);
    });
}
