//! Model-comparison figures: per-fold accuracy by cell, wall time by model and backend, and
//! observed-versus-predicted scatter panels.
//!
//! Non-finite values are left out. A figure with nothing finite to draw is an error
//! ([`PlotError::Empty`]) and writes no file; a group, bar set or panel that is partly empty is
//! drawn with what it has.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use genopred_core::metrics::{mean, pearson, sd};
use genopred_core::output::format_duration;

use crate::{FONT, Figure, PlotError, write_figure};

/// One column of [`fold_accuracy`]: a cell's per-fold scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Column label, such as `"dnngp · flex"`.
    pub label: String,
    /// One value per fold (Pearson r); non-finite values are left out.
    pub values: Vec<f64>,
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

/// Pearson r (NaN when undefined) and the least-squares line `(intercept, slope)` of y on x.
fn pearson_fit(points: &[(f64, f64)]) -> (f64, Option<(f64, f64)>) {
    let (x, y): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    let n = points.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
    }
    let fit = (sxx > 0.0).then(|| (my - sxy / sxx * mx, sxy / sxx));
    (pearson(&x, &y), fit)
}

/// The part of the line `y = a + b·x` inside the box, as its two ends.
fn clip_line(a: f64, b: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Option<[(f64, f64); 2]> {
    let (mut lo, mut hi) = (x0, x1);
    if b != 0.0 {
        let (u, v) = ((y0 - a) / b, (y1 - a) / b);
        (lo, hi) = (lo.max(u.min(v)), hi.min(u.max(v)));
    } else if !(y0..=y1).contains(&a) {
        return None;
    }
    (lo < hi).then_some([(lo, a + b * lo), (hi, a + b * hi)])
}

/// Category labels under the x axis, one per integer position from 0; a label wider than its
/// column is broken at " · " onto several lines.
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

struct FoldAccuracy<'a> {
    groups: &'a [Group],
    title: &'a str,
}

impl Figure for FoldAccuracy<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(msg)?;
        let values: Vec<Vec<f64>> =
            self.groups.iter().map(|g| g.values.iter().copied().filter(|v| v.is_finite()).collect()).collect();
        // Mean, and sd when there are two folds or more.
        let stats: Vec<Option<(f64, Option<f64>)>> =
            values.iter().map(|v| (!v.is_empty()).then(|| (mean(v), Some(sd(v)).filter(|s| s.is_finite())))).collect();
        let whiskers = stats.iter().flatten().flat_map(|&(m, sd)| sd.map(|s| [m - s, m + s])).flatten();
        let (lo, hi) = padded(min_max(values.iter().flatten().copied().chain(whiskers)));
        let n = self.groups.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..n - 0.5, lo..hi)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_max_light_lines(1)
            .y_desc("Pearson r (per fold)")
            .label_style((FONT, 13))
            .draw()
            .map_err(msg)?;
        if lo < 0.0 && hi > 0.0 {
            chart.draw_series([PathElement::new([(-0.5, 0.0), (n - 0.5, 0.0)], BLACK.mix(0.5))]).map_err(msg)?;
        }
        for (i, (v, stat)) in values.iter().zip(&stats).enumerate() {
            let x = i as f64;
            // Folds spread evenly across the column, in order.
            let spread = |k: usize| if v.len() < 2 { 0.0 } else { (k as f64 / (v.len() - 1) as f64 - 0.5) * 0.36 };
            let c = colour(i);
            chart
                .draw_series(
                    v.iter().enumerate().map(|(k, &y)| Circle::new((x + spread(k), y), 4, c.mix(0.75).filled())),
                )
                .map_err(msg)?;
            let Some((mean, sd)) = *stat else { continue };
            let bold = BLACK.stroke_width(2);
            let mut lines = vec![PathElement::new([(x - 0.28, mean), (x + 0.28, mean)], bold)];
            if let Some(s) = sd {
                lines.push(PathElement::new([(x, mean - s), (x, mean + s)], BLACK.stroke_width(1)));
                for y in [mean - s, mean + s] {
                    lines.push(PathElement::new([(x - 0.08, y), (x + 0.08, y)], BLACK.stroke_width(1)));
                }
            }
            chart.draw_series(lines).map_err(msg)?;
        }
        let labels: Vec<&str> = self.groups.iter().map(|g| g.label.as_str()).collect();
        category_labels(root, &chart, &labels, lo)?;
        root.present().map_err(msg)
    }
}

/// Draws per-fold Pearson r by cell to `png` and `svg`: one column per group, each fold a point
/// (spread across the column in fold order), the mean a horizontal bar with ±1 sd whiskers (none
/// for a single fold), and a line at 0 when the range spans it.
///
/// Errors with [`PlotError::Empty`] when no group has a finite value.
pub fn fold_accuracy(groups: &[Group], title: &str, png: &Path, svg: &Path) -> Result<(), PlotError> {
    if !groups.iter().flat_map(|g| &g.values).any(|v| v.is_finite()) {
        return Err(PlotError::Empty(format!("{title}: no fold has a finite score to plot")));
    }
    let width = (120 + 150 * groups.len() as u32).clamp(480, 2400);
    write_figure(&FoldAccuracy { groups, title }, (width, 480), png, svg)
}

/// Distinct names in order of first appearance.
fn first_seen<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for n in names {
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

struct TimeByCell<'a> {
    bars: Vec<&'a Bar>,
    title: &'a str,
}

impl TimeByCell<'_> {
    /// Draws on a y axis `y` (linear or log) whose bars start at `floor`.
    fn draw_on<DB, Y>(&self, root: &DrawingArea<DB, Shift>, y: Y, floor: f64) -> Result<(), String>
    where
        DB: DrawingBackend,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let models = first_seen(self.bars.iter().map(|b| b.model.as_str()));
        let backends = first_seen(self.bars.iter().map(|b| b.backend.as_str()));
        let in_model = |m: &str| {
            let mut v: Vec<&Bar> = self.bars.iter().copied().filter(|b| b.model == m).collect();
            v.sort_by_key(|b| backends.iter().position(|&k| k == b.backend));
            v
        };
        let widest = models.iter().map(|m| in_model(m).len()).max().unwrap_or(1);
        let width = 0.8 / widest as f64;
        // (left edge, bar, backend index) of every bar.
        let mut placed = Vec::new();
        for (i, m) in models.iter().enumerate() {
            let group = in_model(m);
            let left = i as f64 - width * group.len() as f64 / 2.0;
            for (k, b) in group.into_iter().enumerate() {
                placed.push((left + width * k as f64, b, backends.iter().position(|&n| n == b.backend).unwrap_or(0)));
            }
        }
        let n = models.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..n - 0.5, y)
            .map_err(msg)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .y_max_light_lines(1)
            .y_desc("wall time per fold")
            .y_label_formatter(&|s| format_duration(*s))
            .label_style((FONT, 13))
            .draw()
            .map_err(msg)?;
        for (k, name) in backends.iter().enumerate() {
            let c = colour(k);
            let bars = placed.iter().filter(|p| p.2 == k).map(|&(x, b, _)| {
                Rectangle::new([(x + width * 0.05, floor), (x + width * 0.95, b.seconds.max(floor))], c.filled())
            });
            chart
                .draw_series(bars)
                .map_err(msg)?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        let style = (FONT, 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
        for &(x, b, _) in &placed {
            let (px, py) = chart.backend_coord(&(x + width / 2.0, b.seconds.max(floor)));
            root.draw(&Text::new(format_duration(b.seconds), (px, py - 3), style.clone())).map_err(msg)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 13))
            .draw()
            .map_err(msg)?;
        category_labels(root, &chart, &models, floor)?;
        root.present().map_err(msg)
    }
}

impl Figure for TimeByCell<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(msg)?;
        let (lo, hi) = min_max(self.bars.iter().map(|b| b.seconds).filter(|&s| s > 0.0));
        let max = hi.max(0.0);
        if lo.is_finite() && hi / lo > 50.0 {
            // Bars start a bit below the shortest; a 0-second bar sits on the floor.
            let floor = lo / 3.0;
            self.draw_on(root, (floor..hi * 6.0).log_scale(), floor)
        } else {
            self.draw_on(root, 0.0..if max > 0.0 { max * 1.25 } else { 1.0 }, 0.0)
        }
    }
}

/// Draws wall time per fold to `png` and `svg` as grouped bars: one group per model (in order of
/// first appearance), one bar per backend coloured by backend with a legend, each bar labelled
/// with its duration. The y axis is log10 when the longest positive time is over 50 times the
/// shortest, linear otherwise; on a log axis a 0-second bar has no height but keeps its label.
///
/// Errors with [`PlotError::Empty`] when no bar has a finite, non-negative time.
pub fn time_by_cell(bars: &[Bar], title: &str, png: &Path, svg: &Path) -> Result<(), PlotError> {
    let bars: Vec<&Bar> = bars.iter().filter(|b| b.seconds.is_finite() && b.seconds >= 0.0).collect();
    if bars.is_empty() {
        return Err(PlotError::Empty(format!("{title}: no bar has a finite time to plot")));
    }
    let width = (160 + 70 * bars.len() as u32).clamp(560, 2400);
    write_figure(&TimeByCell { bars, title }, (width, 480), png, svg)
}

struct ObservedPredicted<'a> {
    panels: &'a [Panel],
    title: &'a str,
}

const COLUMNS: usize = 3;

fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<(), String> {
    let points: Vec<(f64, f64)> =
        panel.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
    let (r, fit) = pearson_fit(&points);
    let r = if r.is_finite() { format!("{r:.2}") } else { "n/a".into() };
    let xs = padded(min_max(points.iter().map(|p| p.0)));
    let ys = padded(min_max(points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{} (r = {r})", panel.label), (FONT, 15))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)
        .map_err(msg)?;
    chart
        .configure_mesh()
        .max_light_lines(1)
        .bold_line_style(BLACK.mix(0.15))
        .x_desc("observed")
        .y_desc("predicted")
        .label_style((FONT, 12))
        .draw()
        .map_err(msg)?;
    if let Some(ends) = clip_line(0.0, 1.0, xs, ys) {
        chart.draw_series([DashedPathElement::new(ends, 6, 4, BLACK.mix(0.5))]).map_err(msg)?;
    }
    let c = colour(0);
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.mix(0.5).filled()))).map_err(msg)?;
    if let Some(ends) = fit.and_then(|(a, b)| clip_line(a, b, xs, ys)) {
        chart.draw_series([PathElement::new(ends, colour(5).stroke_width(2))]).map_err(msg)?;
    }
    Ok(())
}

impl Figure for ObservedPredicted<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(msg)?;
        let body = root.titled(self.title, (FONT, 20)).map_err(msg)?;
        let cols = self.panels.len().min(COLUMNS);
        let areas = body.split_evenly((self.panels.len().div_ceil(cols), cols));
        for (area, p) in areas.iter().zip(self.panels) {
            panel(area, p)?;
        }
        root.present().map_err(msg)
    }
}

/// Draws observed-versus-predicted scatter panels to `png` and `svg`, in a grid of up to three
/// columns: each panel titled "label (r = 0.51)" ("n/a" when r is undefined), with the 1:1 line
/// dashed grey and the least-squares line of predicted on observed in red.
///
/// Errors with [`PlotError::Empty`] when no panel has a finite point; other panels without one
/// are drawn empty.
pub fn observed_predicted(panels: &[Panel], title: &str, png: &Path, svg: &Path) -> Result<(), PlotError> {
    if !panels.iter().flat_map(|p| &p.points).any(|(x, y)| x.is_finite() && y.is_finite()) {
        return Err(PlotError::Empty(format!("{title}: no panel has a finite point to plot")));
    }
    let cols = panels.len().min(COLUMNS) as u32;
    let rows = panels.len().div_ceil(COLUMNS) as u32;
    write_figure(&ObservedPredicted { panels, title }, (420 * cols, 400 * rows + 40), png, svg)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        Group { label: label.into(), values: values.to_vec() }
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
