//! Per-fold accuracy by model × backend, with mean ± sd.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use genopred_core::metrics::{mean, sd};

use super::*;
use crate::{FONT, Figure, PlotError, svg_text, write_figure};

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
        let points: Vec<Vec<Point<'_>>> = self.groups.iter().enumerate().map(|(i, g)| positions(i, g)).collect();
        // The same fold in neighbouring columns, joined: a paired difference is the slope of
        // its line, so a consistent gap shows as parallel lines and noise as crossing ones.
        for pair in points.windows(2) {
            let joins = pair[0].iter().filter_map(|a| {
                let key = a.key?;
                pair[1].iter().find(|b| b.key == Some(key)).map(|b| PathElement::new([a.at, b.at], JOIN.mix(0.35)))
            });
            chart.draw_series(joins).map_err(msg)?;
        }
        for (i, (p, stat)) in points.iter().zip(&stats).enumerate() {
            let x = i as f64;
            let c = colour(i);
            chart.draw_series(p.iter().map(|p| Circle::new(p.at, 4, c.mix(0.75).filled()))).map_err(msg)?;
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
/// for a single fold), and a line at 0 when the range spans it. Points of neighbouring columns
/// with the same [`Group::keys`] entry (the same test fold) are joined by a grey line.
///
/// Errors with [`PlotError::Empty`] when no group has a finite value.
pub fn fold_accuracy(groups: &[Group], title: &str, png: &Path, svg: &Path) -> Result<(), PlotError> {
    let size = accuracy_size(groups, title)?;
    write_figure(&FoldAccuracy { groups, title }, size, png, svg)
}

/// [`fold_accuracy`] as SVG text, for a page that inlines it.
pub fn fold_accuracy_svg(groups: &[Group], title: &str) -> Result<String, PlotError> {
    let size = accuracy_size(groups, title)?;
    svg_text(&FoldAccuracy { groups, title }, size).map_err(|message| PlotError::Svg { title: title.into(), message })
}

fn accuracy_size(groups: &[Group], title: &str) -> Result<(u32, u32), PlotError> {
    if !groups.iter().flat_map(|g| &g.values).any(|v| v.is_finite()) {
        return Err(PlotError::Empty(format!("{title}: no fold has a finite score to plot")));
    }
    Ok(((120 + 150 * groups.len() as u32).clamp(480, 2400), 480))
}

/// Grey of the lines joining one fold across columns.
const JOIN: RGBColor = RGBColor(90, 90, 90);

/// Where one fold's point of a column is drawn, and its key.
struct Point<'a> {
    at: (f64, f64),
    key: Option<&'a str>,
}

/// The finite points of column `i`, spread evenly across the column in fold order.
fn positions(i: usize, g: &Group) -> Vec<Point<'_>> {
    let finite: Vec<(usize, f64)> = g.values.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
    let n = finite.len();
    let spread = |k: usize| if n < 2 { 0.0 } else { (k as f64 / (n - 1) as f64 - 0.5) * 0.36 };
    finite
        .iter()
        .enumerate()
        .map(|(k, &(j, y))| Point { at: (i as f64 + spread(k), y), key: g.keys.get(j).map(String::as_str) })
        .collect()
}
