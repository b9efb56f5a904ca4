//! Model-comparison figures: per-fold accuracy by cell, wall time by model and backend,
//! observed-versus-predicted scatter panels, and paired differences with their intervals.
//!
//! Non-finite values are left out. A figure with nothing finite to draw is an error
//! ([`PlotError::Empty`]) and writes no file; a group, bar set or panel that is partly empty is
//! drawn with what it has.

mod accuracy;
mod difference;
mod scatter;
mod time;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::FONT;

pub use accuracy::{fold_accuracy, fold_accuracy_svg};
pub use difference::paired_differences;
pub use scatter::{observed_predicted, observed_predicted_svg};
pub use time::time_by_cell;

/// One column of [`fold_accuracy`]: a cell's per-fold scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Column label, such as `"dnngp · flex"`.
    pub label: String,
    /// One value per fold (Pearson r); non-finite values are left out.
    pub values: Vec<f64>,
    /// Which test fold each value is from (as `"seed 1, fold 3"`), parallel to `values`: a
    /// fold's points in neighbouring columns are joined by a line. Empty: nothing is joined.
    pub keys: Vec<String>,
}

/// One bar of [`time_by_cell`].
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The model: bars of one model stand together.
    pub model: String,
    /// The backend: one colour per backend, named in the legend.
    pub backend: String,
    /// Wall time per fold in seconds; negative or non-finite bars are left out.
    pub seconds: f64,
}

/// One scatter panel of [`observed_predicted`].
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Panel title, followed by the panel's Pearson r.
    pub label: String,
    /// `(observed, predicted)` pairs; pairs with a non-finite member are left out.
    pub points: Vec<(f64, f64)>,
}

/// One column of [`paired_differences`]: a mean difference and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// Column label, such as `"dnngp · flex"`.
    pub label: String,
    /// The mean difference.
    pub mean: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether mean and both ends are finite (others are left out of the figure).
    pub fn is_finite(&self) -> bool {
        self.mean.is_finite() && self.low.is_finite() && self.high.is_finite()
    }
}

/// Colour-blind-safe colours (Okabe–Ito, without yellow), cycled.
fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 7] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(90, 90, 90),
    ];
    C[i % C.len()]
}

fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `lo..hi` widened by 8 % on each side (or around a single value), `0..1` when empty.
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.08 } else { lo.abs().max(1.0) * 0.1 };
    (lo - pad, hi + pad)
}

fn min_max(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values.into_iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn category_labels<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
    labels: &[&str],
    y: f64,
) -> Result<(), String> {
    let column = (chart.backend_coord(&(1.0, y)).0 - chart.backend_coord(&(0.0, y)).0).max(1);
    let style = (FONT, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, label) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, y));
        let lines: Vec<&str> =
            if label.chars().count() as i32 * 7 > column { label.split(" · ").collect() } else { vec![label] };
        for (k, line) in lines.iter().enumerate() {
            root.draw(&Text::new(line.to_string(), (px, py + 8 + 15 * k as i32), style.clone())).map_err(msg)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::scatter::{clip_line, pearson_fit};
    use super::*;
    use crate::PlotError;

    /// Draws with `draw` into a fresh folder, checks the PNG's magic bytes and that nothing else
    /// was left there, and returns the SVG's text.
    fn drawn(draw: impl FnOnce(&Path, &Path) -> Result<(), PlotError>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = (dir.path().join("f.png"), dir.path().join("f.svg"));
        draw(&png, &svg).unwrap();
        assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporaries left");
        std::fs::read_to_string(&svg).unwrap()
    }

    /// Whether `svg` has a text element reading exactly `text`.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn group(label: &str, values: &[f64]) -> Group {
        Group { label: label.into(), values: values.to_vec(), keys: vec![] }
    }

    fn bar(model: &str, backend: &str, seconds: f64) -> Bar {
        Bar { model: model.into(), backend: backend.into(), seconds }
    }

    #[test]
    fn helpers() {
        assert_eq!(clip_line(0.0, 1.0, (-1.0, 2.0), (0.0, 1.0)), Some([(0.0, 0.0), (1.0, 1.0)]));
        assert_eq!(clip_line(5.0, 0.0, (0.0, 1.0), (0.0, 1.0)), None);
        let (r, fit) = pearson_fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]);
        assert!((r - 1.0).abs() < 1e-12 && fit == Some((1.0, 2.0)));
        assert!(pearson_fit(&[(1.0, 1.0)]).0.is_nan());
        assert_eq!(padded((0.5, 0.5)), (0.4, 0.6));
    }

    #[test]
    fn fold_accuracy_draws_every_group() {
        let groups = [
            group("dnngp · flex", &[0.51, 0.48, f64::NAN, 0.55, 0.5]),
            group("gblup · fixed", &[-0.05, 0.12, 0.02]),
            group("single", &[0.3]),
            group("nothing", &[f64::NAN]),
        ];
        let svg = drawn(|png, svg| fold_accuracy(&groups, "accuracy by cell", png, svg));
        for text in ["accuracy by cell", "Pearson r (per fold)", "dnngp · flex", "gblup · fixed", "single", "nothing"]
        {
            assert!(svg.contains(text), "{text}");
        }
        let err = fold_accuracy(&[group("a", &[f64::NAN])], "t", Path::new("x.png"), Path::new("x.svg"));
        assert!(matches!(err, Err(PlotError::Empty(_))));
        assert!(matches!(fold_accuracy(&[], "t", Path::new("x.png"), Path::new("x.svg")), Err(PlotError::Empty(_))));
    }

    #[test]
    fn the_same_fold_is_joined_across_neighbouring_columns() {
        let keyed = |label: &str, values: &[f64], keys: &[&str]| Group {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            ..group(label, values)
        };
        let groups = [
            keyed("gblup", &[0.5, 0.4, 0.6, 0.3], &["s1 f1", "s1 f2", "s1 f3", "s1 f4"]),
            // f2 is not finite here, f4 is missing, and f9 has no partner on either side.
            keyed("dnngp", &[0.45, f64::NAN, 0.55, 0.2], &["s1 f1", "s1 f2", "s1 f3", "s1 f9"]),
            keyed("mlp", &[0.4, 0.35], &["s1 f1", "s1 f3"]),
        ];
        let joins = |svg: &str| svg.lines().filter(|l| l.starts_with("<polyline") && l.contains("#5A5A5A")).count();
        let svg = fold_accuracy_svg(&groups, "joined").unwrap();
        // gblup–dnngp: f1 and f3; dnngp–mlp: f1 and f3.
        assert_eq!(joins(&svg), 4, "{svg}");
        assert_eq!(svg, drawn(|png, svg| fold_accuracy(&groups, "joined", png, svg)), "same figure either way");
        let unkeyed = [group("a", &[0.1, 0.2]), group("b", &[0.3, 0.4])];
        assert_eq!(joins(&fold_accuracy_svg(&unkeyed, "t").unwrap()), 0);
        assert!(matches!(fold_accuracy_svg(&[group("a", &[f64::NAN])], "t"), Err(PlotError::Empty(_))));
    }

    #[test]
    fn time_by_cell_linear_and_log_with_a_zero_bar() {
        let linear = [bar("gblup", "cpu", 1.2), bar("gblup", "cuda", 2.5), bar("dnngp", "cpu", 30.0)];
        let svg = drawn(|png, svg| time_by_cell(&linear, "time", png, svg));
        for text in ["gblup", "dnngp", "cpu", "cuda", "1.2 s", "30 s", "wall time per fold"] {
            assert!(svg.contains(text), "{text}");
        }
        let log = [
            bar("gblup", "cpu", 0.0),
            bar("gblup", "cuda", 0.4),
            bar("dnngp", "cpu", 204.0),
            bar("dnngp", "cuda", 12.0),
            bar("bayesb", "cpu", f64::NAN),
        ];
        let svg = drawn(|png, svg| time_by_cell(&log, "time", png, svg));
        for text in ["0 s", "0.4 s", "3.4 min", "12 s"] {
            assert!(has_text(&svg, text), "{text}");
        }
        assert!(!svg.contains("bayesb"), "a bar without a time is left out");
        let err = time_by_cell(&[bar("m", "b", -1.0)], "t", Path::new("x.png"), Path::new("x.svg"));
        assert!(matches!(err, Err(PlotError::Empty(_))));
        let zeros = [bar("m", "b", 0.0)];
        assert!(has_text(&drawn(|png, svg| time_by_cell(&zeros, "t", png, svg)), "0 s"));
    }

    #[test]
    fn paired_differences_mark_intervals_that_exclude_zero() {
        let item = |label: &str, mean: f64, low: f64, high: f64| Interval { label: label.into(), mean, low, high };
        let items = [
            item("rkhs · cpu", 0.08, 0.02, 0.14),
            item("dnngp · flex", -0.01, -0.07, 0.05),
            item("broken · flex", f64::NAN, 0.0, 0.1),
        ];
        let svg = drawn(|png, svg| paired_differences(&items, "vs gblup", "Δ Pearson r", png, svg));
        for text in ["vs gblup", "Δ Pearson r", "rkhs · cpu", "dnngp · flex", "broken · flex"] {
            assert!(svg.contains(text), "{text}");
        }
        // One filled point (the interval above zero) and one open one; nothing for the NaN.
        assert_eq!(svg.matches("<circle").count(), 2, "{svg}");
        let err = paired_differences(&items[2..], "t", "y", Path::new("x.png"), Path::new("x.svg"));
        assert!(matches!(err, Err(PlotError::Empty(_))));
    }

    #[test]
    fn observed_predicted_panels_in_a_grid() {
        let line = |n: usize, slope: f64| (0..n).map(|i| (i as f64, slope * i as f64 + (i % 3) as f64)).collect();
        let panels = [
            Panel { label: "gblup".into(), points: line(50, 0.5) },
            Panel { label: "dnngp".into(), points: line(50, -0.2) },
            Panel { label: "lonely".into(), points: vec![(1.0, 2.0), (f64::NAN, 1.0)] },
            Panel { label: "empty".into(), points: vec![] },
        ];
        let svg = drawn(|png, svg| observed_predicted(&panels, "observed vs predicted", png, svg));
        for text in ["observed vs predicted", "gblup (r = 0.", "dnngp (r = ", "lonely (r = n/a)", "empty (r = n/a)"] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(svg.contains("observed") && svg.contains("predicted"));
        let err = observed_predicted(&panels[3..], "t", Path::new("x.png"), Path::new("x.svg"));
        assert!(matches!(err, Err(PlotError::Empty(_))));
    }
}
