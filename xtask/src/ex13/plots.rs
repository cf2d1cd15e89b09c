//! The figures of `reproduce ex13`: loss curves on log-log axes, and paths
//! of gradient descent drawn over the contour lines of a loss.
//!
//! Text, fonts, axes, legends and the PNG file come from [`crate::plot`]
//! (its rules hold here too: legends above the plots, ticks from an
//! [`Axis`]); without a font the figures are drawn without text.

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{
    Axis, Backend, LegendEntry, Marker, On, caption_size, draw_png, legend_strip, shows_markers,
    text_enabled,
};

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
    /// Whether this panel's lines are listed in the figure's legend
    /// (above the panels; each distinct entry once).
    pub legend: bool,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Values below this (including zero and negative ones) are drawn at it.
    pub y_floor: Option<f64>,
    /// A linear x axis ticks whole numbers only (epochs).
    pub x_integer: bool,
}

/// Panels side by side in one PNG, each with a logarithmic y axis, under
/// one legend.
pub(crate) fn lines_panels(path: &Path, title: &str, panels: &[LinesPanel<'_>]) -> Result<()> {
    let text = text_enabled();
    let size = (560 * panels.len().max(1) as u32, 470);
    draw_png(path, size, Some(title).filter(|_| text), |root| {
        lines_panels_on(root, panels, text)
    })
}

/// [`lines_panels`] on `root`.
fn lines_panels_on<DB: Backend>(
    root: &On<DB>,
    panels: &[LinesPanel<'_>],
    text: bool,
) -> Result<()> {
    let entries: Vec<LegendEntry<'_>> = panels
        .iter()
        .filter(|p| p.legend)
        .flat_map(|p| p.lines.iter().map(|l| l.entry(p.log_x)))
        .collect();
    let body = legend_strip(root, &entries, text)?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(&areas) {
        lines_chart(area, panel, text)?;
    }
    Ok(())
}

impl Line {
    /// The points drawn on a log y axis (and log x axis if `log_x`):
    /// finite, positive where logarithmic.
    fn shown(&self, log_x: bool) -> usize {
        self.points.iter().filter(|p| on_axes(p, log_x)).count()
    }

    /// The line's legend entry: a marker when its points get one.
    fn entry(&self, log_x: bool) -> LegendEntry<'_> {
        LegendEntry {
            label: &self.label,
            color: self.color,
            dashed: self.dashed,
            width: self.width,
            marker: if shows_markers(self.shown(log_x)) {
                Marker::Dot
            } else {
                Marker::None
            },
        }
    }
}

/// Whether `(x, y)` can be drawn with a log y axis (and a log x axis if `log_x`).
fn on_axes(&(x, y): &(f64, f64), log_x: bool) -> bool {
    x.is_finite() && y.is_finite() && y > 0.0 && (!log_x || x > 0.0)
}

fn lines_chart<DB: Backend>(area: &On<DB>, panel: &LinesPanel<'_>, text: bool) -> Result<()> {
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
    let shown = move |p: &(f64, f64)| on_axes(p, log_x);
    let all = || {
        panel
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| shown(p))
    };
    let y_axis = Axis::log(all().map(|p| p.1));
    let x_axis = if log_x {
        Axis::log(all().map(|p| p.0))
    } else {
        Axis::linear(all().map(|p| p.0), 0.03, panel.x_integer)
    };
    let (x_tick, y_tick) = (|v: &f64| x_axis.label(*v), |v: &f64| y_axis.label(*v));
    let mut builder = ChartBuilder::on(area);
    builder.margin(14);
    if text {
        let size = caption_size(area, panel.title, 17)?;
        builder
            .x_label_area_size(42)
            .y_label_area_size(62)
            .caption(panel.title, ("sans-serif", size));
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    // The two x axes have different types: the same code for each.
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(TRANSPARENT)
                .bold_line_style(BLACK.mix(0.08))
                .x_label_formatter(&x_tick)
                .y_label_formatter(&y_tick);
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
                let markers = shows_markers(line.shown(log_x));
                for run in line.points.split(|p| !shown(p)).filter(|r| !r.is_empty()) {
                    if line.dashed {
                        chart.draw_series(DashedLineSeries::new(
                            run.iter().copied(),
                            8,
                            5,
                            style,
                        ))?;
                    } else {
                        chart.draw_series(segments(run, style))?;
                    }
                    if markers || run.len() == 1 {
                        chart
                            .draw_series(run.iter().map(|p| Circle::new(*p, 3, style.filled())))?;
                    }
                }
            }
        }};
    }
    if log_x {
        draw!(builder.build_cartesian_2d(x_axis.log_coord(), y_axis.log_coord())?);
    } else {
        draw!(builder.build_cartesian_2d(x_axis.linear_coord(), y_axis.log_coord())?);
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
        contour_panels_on(root, panels, text)
    })
}

/// [`contour_panels`] on `root`: one legend above all panels where they
/// list the same paths, else one above each panel.
fn contour_panels_on<DB: Backend>(
    root: &On<DB>,
    panels: &[ContourPanel<'_>],
    text: bool,
) -> Result<()> {
    let entries: Vec<Vec<LegendEntry<'_>>> = panels.iter().map(path_entries).collect();
    let shared = entries.windows(2).all(|w| w[0] == w[1]);
    let body = match entries.first() {
        Some(first) if shared => legend_strip(root, first, text)?,
        _ => root.clone(),
    };
    let areas = body.split_evenly((1, panels.len().max(1)));
    for ((panel, entries), area) in panels.iter().zip(&entries).zip(&areas) {
        contour_chart(area, panel, if shared { &[] } else { entries }, text)?;
    }
    Ok(())
}

/// The legend entries of a contour panel's paths, each sample with the open
/// and the filled circle that mark a path's start and end, and one entry
/// that says which is which.
fn path_entries<'p>(panel: &'p ContourPanel<'_>) -> Vec<LegendEntry<'p>> {
    let mut entries: Vec<LegendEntry<'p>> = panel
        .paths
        .iter()
        .map(|l| LegendEntry {
            label: &l.label,
            color: l.color,
            dashed: l.dashed,
            width: l.width,
            marker: Marker::StartEnd,
        })
        .collect();
    if !entries.is_empty() {
        entries.push(START_END);
    }
    entries
}

/// Grid resolution of the contour lines.
const GRID: usize = 240;

/// Half the width of a mark's cross, in pixels.
const MARK_ARM: i32 = 6;

/// The legend entry that explains the circles at the ends of each path.
const START_END: LegendEntry<'static> = LegendEntry {
    label: "start (open), end (filled)",
    color: BLACK,
    dashed: false,
    width: 1,
    marker: Marker::StartEnd,
};

/// Contour levels between a minimum `min` of a function and `max`, equally
/// spaced in `sqrt(level - min)`: `min + (max - min) (k / count)^2` for
/// `k = 1..=count`. Near a minimum a smooth function is quadratic, so these
/// contours lie equally far apart instead of crowding into a band around it.
pub(crate) fn sqrt_levels(min: f64, max: f64, count: usize) -> Vec<f64> {
    let count = count.max(1);
    (1..=count)
        .map(|k| min + (max - min) * (k as f64 / count as f64).powi(2))
        .collect()
}

/// Where the label of a mark goes: the top-left corner of a label `size`
/// pixels big, for a mark drawn at `mark` with arms [`MARK_ARM`] long, in a
/// plot `plot` pixels big. Right of the cross, clear of it and centred on
/// it; left of it where the label would leave the plot on the right; kept
/// inside the plot vertically.
pub(crate) fn mark_label_at(mark: (i32, i32), size: (i32, i32), plot: (i32, i32)) -> (i32, i32) {
    let gap = MARK_ARM + 6;
    let x = if mark.0 + gap + size.0 <= plot.0 {
        mark.0 + gap
    } else {
        mark.0 - gap - size.0
    };
    let y = (mark.1 - size.1 / 2).clamp(0, (plot.1 - size.1).max(0));
    (x, y)
}

/// One contour panel: its caption, the legend of `entries` (none: the
/// figure's), the contour lines, the paths and the marks.
fn contour_chart<DB: Backend>(
    area: &On<DB>,
    panel: &ContourPanel<'_>,
    entries: &[LegendEntry<'_>],
    text: bool,
) -> Result<()> {
    let (xr, yr) = (panel.x_range.clone(), panel.y_range.clone());
    let area = if text {
        let size = caption_size(area, panel.title, 17)?;
        area.margin(8, 0, 0, 0)
            .titled(panel.title, ("sans-serif", size))?
    } else {
        area.clone()
    };
    let area = legend_strip(&area, entries, text)?;
    let (x_axis, y_axis) = (
        Axis::linear_over(xr.clone(), false),
        Axis::linear_over(yr.clone(), false),
    );
    let (x_tick, y_tick) = (|v: &f64| x_axis.label(*v), |v: &f64| y_axis.label(*v));
    let mut builder = ChartBuilder::on(&area);
    builder.margin(14);
    if text {
        builder.x_label_area_size(42).y_label_area_size(58);
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    let mut chart = builder.build_cartesian_2d(x_axis.linear_coord(), y_axis.linear_coord())?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.05))
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick);
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
    let plot = chart.plotting_area().strip_coord_spec();
    let (bx, by) = plot.get_base_pixel();
    let plot_size = (plot.dim_in_pixel().0 as i32, plot.dim_in_pixel().1 as i32);
    let font = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
    for mark in panel.marks.iter().filter(|m| inside(&m.at)) {
        chart.draw_series([Cross::new(mark.at, MARK_ARM, BLACK.stroke_width(2))])?;
        if text {
            let (x, y) = chart.backend_coord(&mark.at);
            let (w, h) = plot.estimate_text_size(mark.label, &font)?;
            let size = (w as i32, h as i32);
            let (lx, ly) = mark_label_at((x - bx, y - by), size, plot_size);
            let frame = [(lx - 2, ly - 1), (lx + size.0 + 2, ly + size.1 + 1)];
            plot.draw(&Rectangle::new(frame, WHITE.mix(0.8).filled()))?;
            plot.draw_text(mark.label, &font, (lx, ly))?;
        }
    }
    Ok(())
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
    use crate::plot::recorder;

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
    fn sqrt_levels_are_equally_far_apart_around_a_quadratic_minimum() {
        // Along the steep axis of the regression's loss: f = 3 + 5 x².
        let levels = sqrt_levels(3.0, 8.0, 10);
        assert_eq!(levels.len(), 10);
        assert_eq!(levels[9], 8.0);
        let crossings: Vec<f64> = levels.iter().map(|l| ((l - 3.0) / 5.0).sqrt()).collect();
        for (k, x) in crossings.iter().enumerate() {
            assert!((x - (k + 1) as f64 / 10.0).abs() < 1e-12, "{crossings:?}");
        }
        assert_eq!(sqrt_levels(1.0, 2.0, 0), [2.0]);
    }

    #[test]
    fn mark_labels_sit_beside_their_cross() {
        let clear = |mark: (i32, i32), at: (i32, i32), size: (i32, i32)| {
            at.0 > mark.0 + MARK_ARM || at.0 + size.0 < mark.0 - MARK_ARM
        };
        let (size, plot) = ((90, 13), (600, 500));
        let at = mark_label_at((300, 250), size, plot);
        assert_eq!(at, (300 + MARK_ARM + 6, 250 - 6));
        // At the right edge, on the left; at the top edge, inside.
        let right = mark_label_at((580, 3), size, plot);
        assert_eq!(right, (580 - MARK_ARM - 6 - 90, 0));
        for (mark, at) in [((300, 250), at), ((580, 3), right)] {
            assert!(
                clear(mark, at, size) && at.0 >= 0 && at.0 + size.0 <= plot.0,
                "{at:?}"
            );
        }
    }

    /// The regression's loss near its minimum, as on ex13-regression-paths.png.
    fn bowl(w: f64, b: f64) -> f64 {
        3.17 + 200.0 * (w - 0.4164).powi(2)
            + 30.0 * (w - 0.4164) * (b + 0.3665)
            + 2.0 * (b + 0.3665).powi(2)
    }

    #[test]
    fn contour_panels_show_path_markers_in_the_legend_and_labels_beside_marks() {
        let sgd = Line {
            label: "SGD (t=1), epochs 1-10".into(),
            color: PALETTE[3],
            dashed: false,
            width: 1,
            points: vec![(0.35, -0.34), (0.45, -0.39), (0.40, -0.36)],
        };
        let paths = [sgd];
        let marks = [Mark {
            at: (0.4164, -0.3665),
            label: "least squares",
        }];
        let panel = ContourPanel {
            title: "near the minimum",
            x_label: "w",
            y_label: "b",
            x_range: 0.35..0.48,
            y_range: -0.40..-0.33,
            f: &bowl,
            levels: sqrt_levels(3.17, 4.0, 8),
            paths: &paths,
            marks: &marks,
        };
        let entries = path_entries(&panel);
        let drawing = recorder::record((700, 620), |root| {
            contour_chart(root, &panel, &entries, true)
        });
        let legend = drawing.texts_at(13.0, 'L', 'C');
        let labels: Vec<&str> = legend.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(labels, ["SGD (t=1), epochs 1-10", START_END.label]);
        // The legend's red sample has an open and a filled circle, level with its label.
        let red = (PALETTE[3].0, PALETTE[3].1, PALETTE[3].2);
        let row = legend[0].at.1;
        let circles: Vec<bool> = drawing
            .discs
            .iter()
            .filter(|d| d.color == red && d.center.1 == row)
            .map(|d| d.filled)
            .collect();
        assert!(
            circles.contains(&true) && circles.contains(&false),
            "{circles:?}"
        );
        // The cross's diagonals, and the label clear of them.
        let cross: Vec<(i32, i32)> = drawing
            .strokes
            .iter()
            .filter(|s| s.color == (0, 0, 0) && s.points.len() == 2)
            .filter(|s| {
                let (a, b) = (s.points[0], s.points[1]);
                (a.0 - b.0).abs() == 2 * MARK_ARM && (a.1 - b.1).abs() == 2 * MARK_ARM
            })
            .flat_map(|s| s.points.clone())
            .collect();
        assert_eq!(cross.len(), 4);
        let label = drawing
            .texts
            .iter()
            .find(|t| t.text == "least squares")
            .unwrap();
        let ((left, top), (right, bottom)) = label.rect();
        let (x0, x1) = (
            cross.iter().map(|p| p.0).min().unwrap(),
            cross.iter().map(|p| p.0).max().unwrap(),
        );
        let (y0, y1) = (
            cross.iter().map(|p| p.1).min().unwrap(),
            cross.iter().map(|p| p.1).max().unwrap(),
        );
        let overlaps = left <= x1 && right >= x0 && top <= y1 && bottom >= y0;
        assert!(
            !overlaps,
            "label {:?} on the cross {:?}",
            label.rect(),
            (x0, y0, x1, y1)
        );
        assert!(left > x1, "the label reads from the right of the cross");
    }

    #[test]
    fn panels_with_the_same_paths_share_one_legend() {
        let path = |label: &str, color| Line {
            label: label.into(),
            color,
            dashed: false,
            width: 2,
            points: vec![(0.0, 1.0), (-1.0, 0.0)],
        };
        let paths = [
            path("SGD (lr 0.02)", PALETTE[0]),
            path("Adam (0.05)", PALETTE[6]),
        ];
        let marks = [Mark {
            at: (-1.04, 0.0),
            label: "global min",
        }];
        let panel = |title| ContourPanel {
            title,
            x_label: "x",
            y_label: "y",
            x_range: -1.8..2.3,
            y_range: -1.4..1.9,
            f: &saddle,
            levels: sqrt_levels(-0.3, 20.0, 5),
            paths: &paths,
            marks: &marks,
        };
        let panels = [panel("from next to the saddle point"), panel("from beyond")];
        let drawing = recorder::record((1500, 680), |root| contour_panels_on(root, &panels, true));
        let legend = drawing.texts_at(13.0, 'L', 'C');
        let labels: Vec<&str> = legend.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(labels, ["SGD (lr 0.02)", "Adam (0.05)", START_END.label]);
        // Above both captions.
        let captions = drawing.texts.iter().filter(|t| t.text.starts_with("from "));
        let bottom = legend.iter().map(|t| t.rect().1.1).max().unwrap();
        assert!(captions.map(|t| t.rect().0.1).all(|top| top > bottom));
    }

    /// The optimisers' function, `(x² - 1)² + 0.3 x + y²`.
    fn saddle(x: f64, y: f64) -> f64 {
        (x * x - 1.0).powi(2) + 0.3 * x + y * y
    }

    #[test]
    fn log_panels_label_several_ticks_and_keep_the_legend_above() {
        // ex13-mnist-loss.png after one epoch on 1,000 images.
        let line = |label: &str, color, end: f64| Line {
            label: label.into(),
            color,
            dashed: false,
            width: 2,
            points: vec![(0.0, 2.4077), (1.0, end)],
        };
        let lines = [
            line("SGD (t=1)", PALETTE[0], 0.7524),
            line("MBGD (t=8)", PALETTE[1], 0.4026),
        ];
        let panel = |legend, log_x: bool| LinesPanel {
            title: "per epoch",
            x_label: "epoch",
            y_label: "training loss",
            lines: &lines,
            legend,
            log_x,
            y_floor: None,
            x_integer: true,
        };
        let panels = [panel(true, false), panel(false, false)];
        let drawing = recorder::record((1120, 470), |root| lines_panels_on(root, &panels, true));
        let y_ticks: Vec<&str> = drawing
            .texts_at(13.0, 'R', 'C')
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        let expected = ["0.4", "0.6", "1", "2"];
        assert_eq!(y_ticks, [expected, expected].concat());
        let x_ticks: Vec<&str> = drawing
            .texts_at(13.0, 'C', 'T')
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(&x_ticks[..2], ["0", "1"]);
        let legend = drawing.texts_at(13.0, 'L', 'C');
        assert_eq!(legend.len(), 2);
        let bottom = legend.iter().map(|t| t.rect().1.1).max().unwrap();
        let top_tick = drawing
            .texts_at(13.0, 'R', 'C')
            .iter()
            .map(|t| t.rect().0.1)
            .min()
            .unwrap();
        assert!(top_tick > bottom);
    }
}
