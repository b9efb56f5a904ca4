//! Observed-versus-predicted panels, one per model × backend.

use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use genopred_core::metrics::pearson;

use super::*;
use crate::{FONT, Figure, PlotError, svg_text, write_figure};

/// Pearson r (NaN when undefined) and the least-squares line `(intercept, slope)` of y on x.
pub(super) fn pearson_fit(points: &[(f64, f64)]) -> (f64, Option<(f64, f64)>) {
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
pub(super) fn clip_line(a: f64, b: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Option<[(f64, f64); 2]> {
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
    let size = scatter_size(panels, title)?;
    write_figure(&ObservedPredicted { panels, title }, size, png, svg)
}

/// [`observed_predicted`] as SVG text, for a page that inlines it.
pub fn observed_predicted_svg(panels: &[Panel], title: &str) -> Result<String, PlotError> {
    let size = scatter_size(panels, title)?;
    svg_text(&ObservedPredicted { panels, title }, size)
        .map_err(|message| PlotError::Svg { title: title.into(), message })
}

fn scatter_size(panels: &[Panel], title: &str) -> Result<(u32, u32), PlotError> {
    if !panels.iter().flat_map(|p| &p.points).any(|(x, y)| x.is_finite() && y.is_finite()) {
        return Err(PlotError::Empty(format!("{title}: no panel has a finite point to plot")));
    }
    let cols = panels.len().min(COLUMNS) as u32;
    let rows = panels.len().div_ceil(COLUMNS) as u32;
    Ok((420 * cols, 400 * rows + 40))
}
