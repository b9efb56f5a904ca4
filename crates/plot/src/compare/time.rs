//! Wall time per fold by model and backend.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use genopred_core::output::format_duration;

use super::*;
use crate::{FONT, Figure, PlotError, write_figure};

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
