//! Manhattan plots: one point per marker, chromosomes side by side in natural order (1, 2, …,
//! 10, then X, Y …), positions from the genotype file, the highest-scoring markers labelled.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{FONT, Figure, PlotError, write_figure};

/// One marker to plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ManhattanPoint {
    /// Chromosome name as in the genotype file.
    pub chrom: String,
    /// Base-pair position (0 when unknown: markers are then spaced by file order).
    pub pos: u64,
    /// Height (importance, −log10 p ...); non-finite scores are left out.
    pub score: f64,
    /// Name shown when the marker is among the top ones.
    pub label: String,
}

/// Natural chromosome order: numbers by value (`chr2` before `chr10`), then names.
fn chrom_order(name: &str) -> (u8, u64, String) {
    let bare = name.trim();
    let bare = if bare.len() > 3 && bare[..3].eq_ignore_ascii_case("chr") { &bare[3..] } else { bare };
    match bare.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, bare.to_ascii_uppercase()),
    }
}

/// A chromosome's place on the x axis.
struct Band {
    name: String,
    start: f64,
    end: f64,
}

/// x coordinates of `points` (in input order) and the chromosome bands.
fn layout(points: &[ManhattanPoint]) -> (Vec<f64>, Vec<Band>) {
    let mut names: Vec<&str> = points.iter().map(|p| p.chrom.as_str()).collect();
    names.sort_by_key(|n| chrom_order(n));
    names.dedup();
    let unknown_positions = points.iter().all(|p| p.pos == 0);
    // Each marker's coordinate within its chromosome.
    let mut within = vec![0f64; points.len()];
    let mut spans = Vec::with_capacity(names.len());
    for name in &names {
        let idx: Vec<usize> = (0..points.len()).filter(|&i| points[i].chrom == *name).collect();
        let (lo, hi) = if unknown_positions {
            for (k, &i) in idx.iter().enumerate() {
                within[i] = k as f64;
            }
            (0.0, idx.len().saturating_sub(1) as f64)
        } else {
            let lo = idx.iter().map(|&i| points[i].pos).min().unwrap_or(0) as f64;
            let hi = idx.iter().map(|&i| points[i].pos).max().unwrap_or(0) as f64;
            for &i in &idx {
                within[i] = points[i].pos as f64 - lo;
            }
            (lo, hi)
        };
        spans.push((hi - lo).max(1.0));
    }
    let total: f64 = spans.iter().sum();
    let gap = total * 0.01;
    let mut bands = Vec::with_capacity(names.len());
    let mut offset = 0.0;
    for (name, span) in names.iter().zip(&spans) {
        bands.push(Band { name: (*name).to_string(), start: offset, end: offset + span });
        offset += span + gap;
    }
    let x = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let b = names.iter().position(|n| *n == p.chrom).unwrap_or(0);
            bands[b].start + within[i]
        })
        .collect();
    (x, bands)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[ManhattanPoint],
    title: &str,
    y_desc: &str,
    top: usize,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (x, bands) = layout(points);
    let shown: Vec<usize> = (0..points.len()).filter(|&i| points[i].score.is_finite()).collect();
    let y_max = shown.iter().map(|&i| points[i].score).fold(0f64, f64::max).max(1e-12) * 1.12;
    let y_min = shown.iter().map(|&i| points[i].score).fold(0f64, f64::min);
    let x_max = bands.last().map_or(1.0, |b| b.end);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(60)
        .build_cartesian_2d(-x_max * 0.01..x_max * 1.01, y_min..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .disable_x_axis()
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| err(&e))?;
    let colours = [RGBColor(31, 78, 121), RGBColor(120, 144, 156)];
    for (b, band) in bands.iter().enumerate() {
        let colour = colours[b % 2];
        let in_band = shown.iter().filter(|&&i| x[i] >= band.start && x[i] <= band.end);
        chart
            .draw_series(in_band.map(|&i| Circle::new((x[i], points[i].score), 2, colour.filled())))
            .map_err(|e| err(&e))?;
        // Chromosome names under the axis, in pixels of the whole figure.
        let (px, py) = chart.backend_coord(&((band.start + band.end) / 2.0, y_min));
        root.draw(&Text::new(
            band.name.clone(),
            (px, py + 8),
            (FONT, 12).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            )),
        ))
        .map_err(|e| err(&e))?;
    }
    let mut best = shown.clone();
    best.sort_by(|&a, &b| points[b].score.total_cmp(&points[a].score));
    best.truncate(top);
    let red = RGBColor(200, 30, 30);
    chart
        .draw_series(best.iter().map(|&i| Circle::new((x[i], points[i].score), 4, red.filled())))
        .map_err(|e| err(&e))?;
    for &i in &best {
        chart
            .plotting_area()
            .draw(&Text::new(
                points[i].label.clone(),
                (x[i], points[i].score),
                (FONT, 11).into_font().color(&red).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                )),
            ))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

struct Manhattan<'a> {
    points: &'a [ManhattanPoint],
    title: &'a str,
    y_desc: &'a str,
    top: usize,
}

impl Figure for Manhattan<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        draw(root, self.points, self.title, self.y_desc, self.top)
    }
}

/// Draws a Manhattan plot of `points` to `png` and `svg` (1200 × 480), labelling the `top`
/// highest scores. Each file is written under a temporary name and renamed into place.
pub fn manhattan(
    points: &[ManhattanPoint],
    title: &str,
    y_desc: &str,
    top: usize,
    png: &Path,
    svg: &Path,
) -> Result<(), PlotError> {
    if !points.iter().any(|p| p.score.is_finite()) {
        return Err(PlotError::Empty(format!("{title}: no marker has a finite score to plot")));
    }
    write_figure(&Manhattan { points, title, y_desc, top }, (1200, 480), png, svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(chrom: &str, pos: u64, score: f64) -> ManhattanPoint {
        ManhattanPoint { chrom: chrom.into(), pos, score, label: format!("{chrom}_{pos}") }
    }

    #[test]
    fn chromosomes_in_natural_order_and_positions_within_them() {
        let pts = vec![point("chr10", 5, 1.0), point("2", 100, 1.0), point("X", 1, 1.0), point("chr2", 50, 1.0)];
        // "2" and "chr2" are distinct names in the file; both sort as 2.
        let (x, bands) = layout(&pts);
        let names: Vec<&str> = bands.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names[2..], ["chr10", "X"]);
        assert!(x[2] > x[0], "X after 10");
        let single = vec![point("1", 10, 1.0), point("1", 30, 2.0), point("3", 7, 0.5)];
        let (x, bands) = layout(&single);
        assert_eq!(x[0], 0.0);
        assert_eq!(x[1], 20.0);
        assert!(x[2] >= bands[1].start && bands[1].start > bands[0].end);
    }

    #[test]
    fn writes_png_and_svg_with_the_top_labels() {
        let dir = tempfile::tempdir().unwrap();
        let pts: Vec<ManhattanPoint> =
            (0..300).map(|i| point(&format!("{}", i % 3 + 1), i as u64 * 1000, (i % 17) as f64 / 3.0)).collect();
        let (png, svg) = (dir.path().join("m.png"), dir.path().join("m.svg"));
        manhattan(&pts, "importance", "score", 3, &png, &svg).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"));
        // The three highest markers (score 16/3) are labelled.
        let top: Vec<String> = pts.iter().filter(|p| p.score == 16.0 / 3.0).take(3).map(|p| p.label.clone()).collect();
        assert!(top.iter().any(|l| text.contains(l.as_str())), "{top:?}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporaries left: {names:?}");
        let nan = vec![point("1", 1, f64::NAN)];
        assert!(manhattan(&nan, "t", "s", 1, &png, &svg).is_err());
    }
}
