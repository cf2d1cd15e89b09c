//! The figures of `reproduce ex13`: loss curves on log-log axes, and paths
//! of gradient descent drawn over the contour lines of a loss.
//!
//! Text, fonts and the PNG file come from [`crate::plot`]; without a font
//! the figures are drawn without text.

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::plot::{Area, LegendEntry, draw_png, text_enabled, tick};

/// Distinct line colours (matplotlib's "tab10").
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line: points `(x, y)` in data coordinates.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Legend entry (empty: not listed).
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Drawn dashed (1 pixel wide).
    pub dashed: bool,
    /// Line width in pixels.
    pub width: u32,
    /// The points, in order.
    pub points: Vec<(f64, f64)>,
}

/// One panel of [`lines_panels`]: the y axis logarithmic, the x axis
/// logarithmic or linear.
pub(crate) struct LinesPanel<'a> {
    /// Caption above the panel.
    pub title: &'a str,
    /// Description under the x axis.
    pub x_label: &'a str,
    /// Description left of the y axis.
    pub y_label: &'a str,
    /// The lines; points with a non-positive (on a log axis) or non-finite
    /// coordinate are left out.
    pub lines: &'a [Line],
    /// Whether this panel shows the legend.
    pub legend: bool,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Values below this (including zero and negative ones) are drawn at it.
    pub y_floor: Option<f64>,
    /// A linear x axis labels whole numbers only (epochs).
    pub x_integer: bool,
}

/// Panels side by side in one PNG, each with a logarithmic y axis.
pub(crate) fn lines_panels(path: &Path, title: &str, panels: &[LinesPanel<'_>]) -> Result<()> {
    let text = text_enabled();
    let size = (560 * panels.len().max(1) as u32, 470);
    draw_png(path, size, Some(title).filter(|_| text), |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(&areas) {
            lines_chart(area, panel, text)?;
        }
        Ok(())
    })
}

/// `lo..hi` of positive `values`, widened by a factor on each side for log axes.
fn log_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.1..10.0;
    }
    let pad = (hi / lo).powf(0.03).max(1.05);
    (lo / pad)..(hi * pad)
}

/// `lo..hi` of `values`, widened by 3% on each side.
fn linear_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.03).max(1e-9);
    (lo - pad)..(hi + pad)
}

/// A tick label on a log axis: `1e-3`, `0.01`, `10`, `1e5`.
fn log_tick(v: &f64) -> String {
    let e = v.log10();
    if (e - e.round()).abs() < 1e-6 && !(-2.0..=4.0).contains(&e.round()) {
        format!("1e{}", e.round() as i32)
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        if s.is_empty() || s == "0" {
            format!("{v:.0e}")
        } else {
            s
        }
    }
}

fn lines_chart(area: &Area<'_>, panel: &LinesPanel<'_>, text: bool) -> Result<()> {
    let floored: Vec<Line> = panel
        .lines
        .iter()
        .map(|l| Line {
            points: l
                .points
                .iter()
                .map(|&(x, y)| match panel.y_floor {
                    Some(floor) if y.is_finite() && y < floor => (x, floor),
                    _ => (x, y),
                })
                .collect(),
            label: l.label.clone(),
            ..*l
        })
        .collect();
    let panel = &LinesPanel {
        lines: &floored,
        ..*panel
    };
    let log_x = panel.log_x;
    let shown = move |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && y > 0.0 && (!log_x || x > 0.0)
    };
    let all = || {
        panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| shown(p))
    };
    let ys = log_range(all().map(|p| p.1));
    let mut builder = ChartBuilder::on(area);
    builder.margin(14);
    if text {
        builder
            .x_label_area_size(42)
            .y_label_area_size(62)
            .caption(panel.title, ("sans-serif", 17));
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    // The two x axes have different types: the same code for each.
    macro_rules! draw {
        ($chart:expr, $x_tick:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT)
                .bold_line_style(BLACK.mix(0.08))
                .x_labels(8)
                .y_labels(7)
                .x_label_formatter($x_tick)
                .y_label_formatter(&log_tick);
            if text {
                mesh.x_desc(panel.x_label)
                    .y_desc(panel.y_label)
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 15));
            } else {
                mesh.disable_x_axis().disable_y_axis();
            }
            mesh.draw()?;
            for line in panel.lines {
                let style = line.color.stroke_width(line.width);
                for run in line.points.split(|p| !shown(p)).filter(|r| !r.is_empty()) {
                    if let [point] = run {
                        chart.draw_series([Circle::new(*point, 3, style.filled())])?;
                    } else if line.dashed {
                        chart.draw_series(DashedLineSeries::new(
                            run.iter().copied(),
                            8,
                            5,
                            style,
                        ))?;
                    } else {
                        chart.draw_series(segments(run, style))?;
                    }
                }
            }
            if panel.legend {
                let plot = chart.plotting_area().strip_coord_spec();
                let (bx, by) = plot.get_base_pixel();
                let pixels: Vec<(i32, i32)> = all()
                    .map(|p| chart.backend_coord(p))
                    .map(|(x, y)| (x - bx, y - by))
                    .collect();
                legend(&plot, panel.lines, &pixels, text)?;
            }
        }};
    }
    if log_x {
        let xs = log_range(all().map(|p| p.0));
        draw!(
            builder.build_cartesian_2d(xs.log_scale(), ys.log_scale())?,
            &log_tick
        );
    } else {
        let xs = linear_range(all().map(|p| p.0));
        let integer = |v: &f64| {
            if (v - v.round()).abs() < 1e-9 {
                tick(v)
            } else {
                String::new()
            }
        };
        if panel.x_integer {
            draw!(builder.build_cartesian_2d(xs, ys.log_scale())?, &integer);
        } else {
            draw!(builder.build_cartesian_2d(xs, ys.log_scale())?, &tick);
        }
    }
    Ok(())
}

/// Draws the polyline through `points` as separate segments: plotters
/// joins the segments of a thick polyline with mitres, which turn into long
/// spikes where a zig-zagging path (SGD's) reverses.
fn segments(
    points: &[(f64, f64)],
    style: ShapeStyle,
) -> impl Iterator<Item = PathElement<(f64, f64)>> {
    points
        .windows(2)
        .map(move |w| PathElement::new(vec![w[0], w[1]], style))
}

/// The legend of `lines` ([`plot::legend`](crate::plot::legend), 3-pixel samples).
fn legend(plot: &Area<'_>, lines: &[Line], pixels: &[(i32, i32)], text: bool) -> Result<()> {
    let entries: Vec<LegendEntry<'_>> = lines
        .iter()
        .map(|l| LegendEntry {
            label: &l.label,
            color: l.color,
            dashed: l.dashed,
        })
        .collect();
    crate::plot::legend(plot, &entries, pixels, text, 3)
}

/// A labelled point drawn on a contour panel (a minimum, a saddle point).
pub(crate) struct Mark<'a> {
    /// Where.
    pub at: (f64, f64),
    /// Its label, drawn beside it.
    pub label: &'a str,
}

/// One panel of [`contour_panels`]: contour lines of `f` over a box, with
/// paths drawn on top.
pub(crate) struct ContourPanel<'a> {
    /// Caption above the panel.
    pub title: &'a str,
    /// Description under the x axis.
    pub x_label: &'a str,
    /// Description left of the y axis.
    pub y_label: &'a str,
    /// The x range shown.
    pub x_range: Range<f64>,
    /// The y range shown.
    pub y_range: Range<f64>,
    /// The function whose contours are drawn.
    pub f: &'a dyn Fn(f64, f64) -> f64,
    /// The contour levels.
    pub levels: Vec<f64>,
    /// The paths (each starts with an open circle and ends with a filled one).
    pub paths: &'a [Line],
    /// Labelled points.
    pub marks: &'a [Mark<'a>],
}

/// Contour panels side by side in one PNG of `size` pixels.
pub(crate) fn contour_panels(
    path: &Path,
    title: &str,
    size: (u32, u32),
    panels: &[ContourPanel<'_>],
) -> Result<()> {
    let text = text_enabled();
    draw_png(path, size, Some(title).filter(|_| text), |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(&areas) {
            contour_chart(area, panel, text)?;
        }
        Ok(())
    })
}

/// Grid resolution of the contour lines.
const GRID: usize = 240;

fn contour_chart(area: &Area<'_>, panel: &ContourPanel<'_>, text: bool) -> Result<()> {
    let (xr, yr) = (panel.x_range.clone(), panel.y_range.clone());
    let mut builder = ChartBuilder::on(area);
    builder.margin(14);
    if text {
        builder
            .x_label_area_size(42)
            .y_label_area_size(58)
            .caption(panel.title, ("sans-serif", 17));
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    let mut chart = builder.build_cartesian_2d(xr.clone(), yr.clone())?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.05))
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick);
    if text {
        mesh.x_desc(panel.x_label)
            .y_desc(panel.y_label)
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 15));
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw()?;

    // f on a (GRID+1)² grid, then its level lines by marching squares.
    let at = |i: usize, n: usize, r: &Range<f64>| r.start + (r.end - r.start) * i as f64 / n as f64;
    let values: Vec<f64> = (0..=GRID)
        .flat_map(|j| (0..=GRID).map(move |i| (i, j)))
        .map(|(i, j)| (panel.f)(at(i, GRID, &xr), at(j, GRID, &yr)))
        .collect();
    let value = |i: usize, j: usize| values[j * (GRID + 1) + i];
    let count = panel.levels.len().max(1);
    for (k, &level) in panel.levels.iter().enumerate() {
        // Light grey-blue, darker towards the lowest level.
        let shade = 120 + (110 * k / count) as u8;
        let color = RGBColor(shade - 40, shade - 10, shade + 25).mix(0.9);
        let mut segments = Vec::new();
        for j in 0..GRID {
            for i in 0..GRID {
                let corners = [
                    (at(i, GRID, &xr), at(j, GRID, &yr), value(i, j)),
                    (at(i + 1, GRID, &xr), at(j, GRID, &yr), value(i + 1, j)),
                    (
                        at(i + 1, GRID, &xr),
                        at(j + 1, GRID, &yr),
                        value(i + 1, j + 1),
                    ),
                    (at(i, GRID, &xr), at(j + 1, GRID, &yr), value(i, j + 1)),
                ];
                cell_segments(&corners, level, &mut segments);
            }
        }
        chart.draw_series(
            segments
                .into_iter()
                .map(|(a, b)| PathElement::new(vec![a, b], color.stroke_width(1))),
        )?;
    }

    let inside =
        |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && xr.contains(&x) && yr.contains(&y);
    for line in panel.paths {
        let style = line.color.stroke_width(line.width);
        for run in line.points.split(|p| !inside(p)).filter(|r| r.len() > 1) {
            chart.draw_series(segments(run, style))?;
        }
        if let Some(start) = line.points.first().filter(|p| inside(p)) {
            chart.draw_series([Circle::new(*start, 5, line.color.stroke_width(2))])?;
        }
        if let Some(end) = line.points.last().filter(|p| inside(p)) {
            chart.draw_series([Circle::new(*end, 5, line.color.filled())])?;
        }
    }
    let label_font = ("sans-serif", 13).into_font().color(&BLACK);
    for mark in panel.marks {
        if !inside(&mark.at) {
            continue;
        }
        chart.draw_series([Cross::new(mark.at, 6, BLACK.stroke_width(2))])?;
        if text {
            chart.draw_series([
                Text::new(mark.label.to_string(), mark.at, label_font.clone()).into_dyn(),
            ])?;
        }
    }
    let plot = chart.plotting_area().strip_coord_spec();
    let (bx, by) = plot.get_base_pixel();
    let pixels: Vec<(i32, i32)> = panel
        .paths
        .iter()
        .flat_map(|l| l.points.iter())
        .filter(|p| inside(p))
        .map(|p| chart.backend_coord(p))
        .map(|(x, y)| (x - bx, y - by))
        .collect();
    legend(&plot, panel.paths, &pixels, text)
}

/// A line segment between two points in data coordinates.
type Segment = ((f64, f64), (f64, f64));

/// The pieces of the level line `f = level` inside one grid cell (marching
/// squares): `corners` counter-clockwise from the lower left, each `(x, y, f)`.
fn cell_segments(corners: &[(f64, f64, f64); 4], level: f64, out: &mut Vec<Segment>) {
    // Where the level crosses each edge (edge e joins corner e and e+1).
    let mut crossings = Vec::with_capacity(4);
    for e in 0..4 {
        let (a, b) = (corners[e], corners[(e + 1) % 4]);
        if !(a.2.is_finite() && b.2.is_finite()) {
            return;
        }
        if (a.2 < level) != (b.2 < level) {
            let t = (level - a.2) / (b.2 - a.2);
            crossings.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
        }
    }
    match crossings.as_slice() {
        [p, q] => out.push((*p, *q)),
        // A saddle cell: pair the crossings by edge order.
        [p, q, r, s] => {
            out.push((*p, *q));
            out.push((*r, *s));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marching_squares_finds_a_circle_crossing() {
        // f = x² + y² on the cell [0,1]², level 0.5: crosses the bottom and left edges.
        let f = |x: f64, y: f64| x * x + y * y;
        let c = [
            (0.0, 0.0, f(0.0, 0.0)),
            (1.0, 0.0, f(1.0, 0.0)),
            (1.0, 1.0, f(1.0, 1.0)),
            (0.0, 1.0, f(0.0, 1.0)),
        ];
        let mut out = Vec::new();
        cell_segments(&c, 0.5, &mut out);
        assert_eq!(out, [((0.5, 0.0), (0.0, 0.5))]);
        out.clear();
        cell_segments(&c, 3.0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn log_ticks_read_well() {
        assert_eq!(log_tick(&0.01), "0.01");
        assert_eq!(log_tick(&1e-5), "1e-5");
        assert_eq!(log_tick(&100.0), "100");
        assert_eq!(log_tick(&1e6), "1e6");
        assert_eq!(log_tick(&2.5), "2.5");
    }
}
