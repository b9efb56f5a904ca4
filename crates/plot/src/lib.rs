//! genopred-plot: the figures genopred writes, each as PNG and SVG with `plotters`, and the
//! self-contained HTML page they are inlined in ([`html`]).
//!
//! Text is drawn with DejaVu Sans, bundled (`assets/`, its licence beside it), so figures look
//! the same on every machine and need no system fonts or font libraries.

pub mod compare;
pub mod html;
pub mod manhattan;

pub use compare::{
    Bar, Group, Interval, Panel, fold_accuracy, fold_accuracy_svg, observed_predicted, observed_predicted_svg,
    paired_differences, time_by_cell,
};
pub use manhattan::{ManhattanPoint, manhattan};

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

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
    /// Drawing a figure as SVG text failed (the backend's message).
    #[error("drawing \"{title}\" as SVG: {message}")]
    Svg {
        /// The figure's title.
        title: String,
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

/// A figure that can be drawn on any backend (so once for PNG and once for SVG).
pub(crate) trait Figure {
    /// Draws the whole figure on `root`; errors are the backend's message.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A temporary name in `path`'s folder with the same extension (the PNG encoder picks its format
/// from it and writes the file itself, so core's `write_atomic`, which takes bytes, cannot serve),
/// renamed over `path` once written.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{}{}-{name}", genopred_core::output::TEMP_PREFIX, std::process::id()))
}

fn commit(tmp: &Path, path: &Path) -> Result<(), PlotError> {
    std::fs::rename(tmp, path).map_err(|e| PlotError::Draw { path: path.to_path_buf(), message: e.to_string() })
}

/// Draws `figure` (`size` pixels) to `png` and `svg`, each written atomically (a temporary name
/// renamed into place).
pub(crate) fn write_figure(figure: &impl Figure, size: (u32, u32), png: &Path, svg: &Path) -> Result<(), PlotError> {
    register_font();
    let fail = |path: &Path, message: String| PlotError::Draw { path: path.to_path_buf(), message };
    let tmp = temporary(png);
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        figure.draw(&root).map_err(|m| fail(png, m))?;
    }
    commit(&tmp, png)?;
    let text = svg_text(figure, size).map_err(|m| fail(svg, m))?;
    genopred_core::output::write_atomic(svg, text.as_bytes()).map_err(|e| fail(svg, e.to_string()))
}

/// Draws `figure` (`size` pixels) as SVG text, for pages that inline it; errors are the
/// backend's message.
pub(crate) fn svg_text(figure: &impl Figure, size: (u32, u32)) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        figure.draw(&root)?;
    }
    Ok(text)
}
