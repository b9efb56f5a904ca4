//! Paired differences against a baseline, each with its confidence interval.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::*;
use crate::{FONT, Figure, PlotError, write_figure};

struct Differences<'a> {
    items: &'a [Interval],
    title: &'a str,
    axis: &'a str,
}

impl Figure for Differences<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(msg)?;
        let ends = self.items.iter().filter(|i| i.is_finite()).flat_map(|i| [i.low, i.high, 0.0]);
        let (lo, hi) = padded(min_max(ends));
        let n = self.items.len() as f64;
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
            .y_desc(self.axis)
            .label_style((FONT, 13))
            .draw()
            .map_err(msg)?;
        chart.draw_series([PathElement::new([(-0.5, 0.0), (n - 0.5, 0.0)], BLACK.mix(0.6))]).map_err(msg)?;
        for (i, item) in self.items.iter().enumerate() {
            if !item.is_finite() {
                continue;
            }
            let x = i as f64;
            // Filled: the interval excludes zero; open: it does not.
            let c = if item.low > 0.0 || item.high < 0.0 { colour(0) } else { colour(6) };
            let mut lines = vec![PathElement::new([(x, item.low), (x, item.high)], c.stroke_width(2))];
            for y in [item.low, item.high] {
                lines.push(PathElement::new([(x - 0.1, y), (x + 0.1, y)], c.stroke_width(2)));
            }
            chart.draw_series(lines).map_err(msg)?;
            let style = if item.low > 0.0 || item.high < 0.0 { c.filled() } else { c.stroke_width(2) };
            chart.draw_series([Circle::new((x, item.mean), 6, style)]).map_err(msg)?;
        }
        let labels: Vec<&str> = self.items.iter().map(|i| i.label.as_str()).collect();
        category_labels(root, &chart, &labels, lo)?;
        root.present().map_err(msg)
    }
}

/// Draws each item's mean difference as a point with its interval as a whisker, one column per
/// item, and a line at zero; an interval that excludes zero is drawn in colour with a filled
/// point, one that does not in grey with an open one. `axis` names the y axis.
///
/// Errors with [`PlotError::Empty`] when no item is finite.
pub fn paired_differences(
    items: &[Interval],
    title: &str,
    axis: &str,
    png: &Path,
    svg: &Path,
) -> Result<(), PlotError> {
    if !items.iter().any(Interval::is_finite) {
        return Err(PlotError::Empty(format!("{title}: no difference to plot")));
    }
    let width = (160 + 150 * items.len() as u32).clamp(480, 2400);
    write_figure(&Differences { items, title, axis }, (width, 480), png, svg)
}
