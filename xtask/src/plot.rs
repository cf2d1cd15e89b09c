//! PNG figures drawn with plotters' bitmap backend.
//!
//! Text uses a TrueType font found under the system font directories and
//! rendered by `ab_glyph`, so no C library is needed. Without a font the
//! figures are still drawn (lines, axes, legend swatches), only without text.
//!
//! Every figure the xtask draws follows the same rules, each decided by a
//! pure function tested below:
//! - the legend sits in a strip above the plotting area, never on it, so it
//!   covers no curve ([`legend_strip`], laid out by [`legend_layout`]);
//! - an axis shows the ticks of an [`Axis`]: an integer axis (iterations,
//!   epochs) whole numbers only, a log axis enough labelled ticks to read a
//!   value (every decade when the range is wide; 1-2-5 or 1..9 per decade
//!   when it is narrow; linear steps within a fraction of a decade);
//! - a line of at most [`MARKER_MAX_POINTS`] points shows a marker on each;
//! - a jump of a function is drawn as a jump ([`split_at_jumps`]): no segment
//!   through it, a filled dot at the function's value there and an open one
//!   at the other one-sided limit.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
pub(crate) use plotters::style::{BLUE, RED};

/// A drawing backend whose errors fit in an [`anyhow::Error`]: the PNG
/// backend, and in the tests a recorder of what is drawn.
pub(crate) trait Backend: DrawingBackend<ErrorType: 'static> {}

impl<T: DrawingBackend<ErrorType: 'static>> Backend for T {}

/// A drawing area (a figure, or part of one) on any [`Backend`].
pub(crate) type On<DB> = DrawingArea<DB, Shift>;

/// The drawing area of a PNG figure (or part of one), in pixels.
pub(crate) type Area<'b> = On<BitMapBackend<'b>>;

/// One line on a panel.
pub(crate) struct Series<'a> {
    /// Legend entry (empty: not listed in the legend).
    pub label: &'a str,
    /// Line colour.
    pub color: RGBColor,
    /// y values at x = first_x, first_x + 1, ... (see [`Panel::first_x`]);
    /// non-finite values are left out.
    pub values: &'a [f64],
}

/// One panel (subplot) of [`panels`].
pub(crate) struct Panel<'a> {
    /// Description under the x axis.
    pub x_label: &'a str,
    /// Description left of the y axis.
    pub y_label: &'a str,
    /// The lines, drawn in order, all listed in the figure's legend.
    pub series: Vec<Series<'a>>,
    /// The x of each series' first value: 0 for the lecture's iterations
    /// `i = 0..=iters`, 1 for Keras' epochs, which `fit` logs as
    /// `Epoch 1/N .. N/N`. The x axis has whole-number ticks only.
    pub first_x: u32,
}

/// One activation function of [`curve_grid`]: `f` and `df` are sampled at `z`.
pub(crate) struct Curve<'a> {
    /// Panel title.
    pub name: &'a str,
    /// Sample points, increasing.
    pub z: &'a [f64],
    /// f(z) at each sample point.
    pub f: &'a [f64],
    /// f'(z) at each sample point.
    pub df: &'a [f64],
    /// Where f jumps (the step function at 0); see [`split_at_jumps`].
    pub f_jumps: &'a [f64],
    /// Where f' jumps (the ReLU family's derivatives at 0).
    pub df_jumps: &'a [f64],
}

/// Side-by-side panels in one PNG at `path`, like matplotlib's
/// `plt.figure(figsize=(10, 3)); plt.subplot(121); ...`, with one legend
/// above them (each distinct entry once).
pub(crate) fn panels(path: &Path, title: Option<&str>, panels: &[Panel<'_>]) -> Result<()> {
    let text = text_enabled();
    let title = title.filter(|_| text);
    let size = (1100, if title.is_some() { 400 } else { 360 });
    draw_png(path, size, title, |root| panels_on(root, panels, text))
}

/// [`panels`] on `root`.
fn panels_on<DB: Backend>(root: &On<DB>, panels: &[Panel<'_>], text: bool) -> Result<()> {
    let lines: Vec<Vec<Line<'_>>> = panels
        .iter()
        .map(|panel| {
            let xs = || (panel.first_x..).map(f64::from);
            panel
                .series
                .iter()
                .map(|s| Line::new(s.label, s.color, false, xs(), s.values, &[]))
                .collect()
        })
        .collect();
    let entries: Vec<LegendEntry<'_>> = lines.iter().flatten().map(Line::entry).collect();
    let body = legend_strip(root, &entries, text)?;
    let areas = body.split_evenly((1, panels.len().max(1)));
    for ((panel, lines), area) in panels.iter().zip(&lines).zip(&areas) {
        let desc = (panel.x_label, panel.y_label);
        chart(area, None, desc, lines, true, text)?;
    }
    Ok(())
}

/// A grid of activation-function plots in one PNG at `path`, `columns` wide:
/// each panel shows f(z) in blue and its derivative dashed in red, titled by
/// the name, under one legend.
pub(crate) fn curve_grid(
    path: &Path,
    title: &str,
    curves: &[Curve<'_>],
    columns: usize,
) -> Result<()> {
    let text = text_enabled();
    let columns = columns.clamp(1, curves.len().max(1));
    let rows = curves.len().div_ceil(columns).max(1);
    let size = (
        300 * columns as u32,
        250 * rows as u32 + if text { 40 } else { 0 } + LEGEND_ROW as u32 + 2 * LEGEND_PAD as u32,
    );
    draw_png(path, size, Some(title).filter(|_| text), |root| {
        curve_grid_on(root, curves, (rows, columns), text)
    })
}

/// The legend labels of [`curve_grid`]. The derivative is `df/dz`, not
/// `f'(z)`: plotters 0.3.7 draws each glyph without its left side bearing,
/// which puts the apostrophe onto the hook of the `f` before it.
const CURVE_LABELS: [&str; 2] = ["f(z)", "df/dz"];

/// [`curve_grid`] on `root`, `(rows, columns)` panels.
fn curve_grid_on<DB: Backend>(
    root: &On<DB>,
    curves: &[Curve<'_>],
    (rows, columns): (usize, usize),
    text: bool,
) -> Result<()> {
    let entries = curves.first().map(|c| curve_lines(c).map(|l| l.entry()));
    let body = legend_strip(root, entries.as_ref().map_or(&[], |e| &e[..]), text)?;
    let areas = body.split_evenly((rows, columns));
    for (curve, area) in curves.iter().zip(&areas) {
        chart(
            area,
            Some(curve.name),
            ("z", ""),
            &curve_lines(curve),
            false,
            text,
        )?;
    }
    Ok(())
}

/// The two lines of a [`curve_grid`] panel: f solid blue, f' dashed red.
fn curve_lines<'c>(curve: &Curve<'c>) -> [Line<'c>; 2] {
    let z = || curve.z.iter().copied();
    [
        Line::new(CURVE_LABELS[0], BLUE, false, z(), curve.f, curve.f_jumps),
        Line::new(CURVE_LABELS[1], RED, true, z(), curve.df, curve.df_jumps),
    ]
}

/// A line in data coordinates, ready to draw.
struct Line<'a> {
    label: &'a str,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
    /// The x where the line jumps ([`split_at_jumps`]).
    jumps: &'a [f64],
}

impl<'a> Line<'a> {
    /// The line through the points `(x, y)` of `xs` zipped with `ys`.
    fn new(
        label: &'a str,
        color: RGBColor,
        dashed: bool,
        xs: impl Iterator<Item = f64>,
        ys: &[f64],
        jumps: &'a [f64],
    ) -> Self {
        let points = xs.zip(ys.iter().copied()).collect();
        Self {
            label,
            color,
            dashed,
            points,
            jumps,
        }
    }

    /// Whether each point gets a marker ([`MARKER_MAX_POINTS`]).
    fn markers(&self) -> bool {
        shows_markers(self.points.iter().filter(|p| finite(p)).count())
    }

    /// The line's legend entry.
    fn entry(&self) -> LegendEntry<'a> {
        LegendEntry {
            label: self.label,
            color: self.color,
            dashed: self.dashed,
            width: 2,
            marker: if self.markers() {
                Marker::Dot
            } else {
                Marker::None
            },
        }
    }
}

/// A line of at most this many points shows a marker on each point (a
/// history of a few epochs), so that a value can be read at each.
pub(crate) const MARKER_MAX_POINTS: usize = 20;

/// Whether a line of `points` (finite) points shows a marker on each.
pub(crate) fn shows_markers(points: usize) -> bool {
    points <= MARKER_MAX_POINTS
}

/// Whether both coordinates of `p` are finite.
fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// One grayscale image of [`images`]: `rows × cols` pixels, 0 black to 255 white.
pub(crate) struct Image<'a> {
    /// Title above the image; `\n` starts a new line.
    pub title: &'a str,
    /// Row-major pixels.
    pub pixels: &'a [u8],
    /// Height in pixels.
    pub rows: usize,
    /// Width in pixels.
    pub cols: usize,
}

/// Grayscale images side by side, each with its title, like matplotlib's
/// `plt.subplot(1, n, i + 1); plt.axis("off"); plt.imshow(img, cmap="gray"); plt.title(t)`.
pub(crate) fn images(path: &Path, images: &[Image<'_>]) -> Result<()> {
    const SCALE: usize = 8;
    const CELL: u32 = 260;
    let text = text_enabled();
    let size = (CELL * images.len().max(1) as u32, 300);
    draw_png(path, size, None, |root| {
        let areas = root.split_evenly((1, images.len().max(1)));
        for (image, area) in images.iter().zip(&areas) {
            let (w, h) = ((image.cols * SCALE) as i32, (image.rows * SCALE) as i32);
            let x0 = (CELL as i32 - w) / 2;
            let y0 = 300 - h - 10;
            if text {
                for (i, line) in image.title.lines().enumerate() {
                    let style = ("sans-serif", 18)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Top));
                    area.draw_text(line, &style, (CELL as i32 / 2, 8 + 22 * i as i32))?;
                }
            }
            for (idx, &p) in image
                .pixels
                .iter()
                .enumerate()
                .take(image.rows * image.cols)
            {
                let (r, c) = ((idx / image.cols) as i32, (idx % image.cols) as i32);
                let (x, y) = (x0 + c * SCALE as i32, y0 + r * SCALE as i32);
                let color = RGBColor(p, p, p);
                area.draw(&Rectangle::new(
                    [(x, y), (x + SCALE as i32, y + SCALE as i32)],
                    color.filled(),
                ))?;
            }
        }
        Ok(())
    })
}

/// Creates the PNG at `path`, lets `draw` fill it below the optional title, and saves it.
pub(crate) fn draw_png(
    path: &Path,
    size: (u32, u32),
    title: Option<&str>,
    draw: impl FnOnce(&Area<'_>) -> Result<()>,
) -> Result<()> {
    let result: Result<()> = (|| {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let root = BitMapBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE)?;
        let body = match title {
            Some(title) => root.titled(title, ("sans-serif", 22))?,
            None => root.clone(),
        };
        draw(&body)?;
        root.present()?;
        Ok(())
    })();
    result.with_context(|| format!("drawing figure {}", path.display()))
}

/// Draws one panel with an optional caption: axes, and the lines
/// (non-finite points break a line; see [`split_at_jumps`] and
/// [`MARKER_MAX_POINTS`]). The x axis has whole-number ticks only when
/// `integer_x`. The legend is the caller's ([`legend_strip`]).
fn chart<DB: Backend>(
    area: &On<DB>,
    caption: Option<&str>,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line<'_>],
    integer_x: bool,
    text: bool,
) -> Result<()> {
    let all = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| finite(p))
    };
    let x_axis = Axis::linear(all().map(|p| p.0), 0.03, integer_x);
    let y_axis = Axis::linear(all().map(|p| p.1), 0.05, false);

    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder.x_label_area_size(if x_desc.is_empty() { 24 } else { 40 });
        builder.y_label_area_size(if y_desc.is_empty() { 45 } else { 65 });
        if let Some(caption) = caption {
            let size = caption_size(area, caption, CAPTION_SIZE)?;
            builder.caption(caption, ("sans-serif", size));
        }
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    let mut chart = builder.build_cartesian_2d(x_axis.linear_coord(), y_axis.linear_coord())?;
    let (x_tick, y_tick) = (|v: &f64| x_axis.label(*v), |v: &f64| y_axis.label(*v));
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick);
    if text {
        mesh.x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 13));
        mesh.axis_desc_style(("sans-serif", 15));
    } else {
        mesh.disable_x_axis().disable_y_axis(); // their tick labels would need a font
    }
    mesh.draw()?;
    if !text {
        let plot = chart.plotting_area().strip_coord_spec();
        let (w, h) = (plot.dim_in_pixel().0 as i32, plot.dim_in_pixel().1 as i32);
        plot.draw(&PathElement::new(
            [(0, 0), (0, h - 1), (w - 1, h - 1)],
            BLACK,
        ))?;
    }

    // The dots of jumps go on top of every line, so that no line crosses an open one.
    let mut jump_dots = Vec::new();
    for line in lines {
        let style = line.color.stroke_width(2);
        let markers = line.markers();
        for run in line.points.split(|p| !finite(p)).filter(|r| !r.is_empty()) {
            let (pieces, dots) = split_at_jumps(run, line.jumps);
            for piece in pieces.into_iter().filter(|p| p.len() > 1) {
                if line.dashed {
                    chart.draw_series(DashedLineSeries::new(piece, 7, 5, style))?;
                } else {
                    chart.draw_series(LineSeries::new(piece, style))?;
                }
            }
            if markers || run.len() == 1 {
                chart.draw_series(run.iter().map(|p| Circle::new(*p, 3, style.filled())))?;
            }
            jump_dots.extend(dots.into_iter().map(|dot| (dot, line.color)));
        }
    }
    for (dot, color) in jump_dots {
        if dot.filled {
            chart.draw_series([Circle::new(dot.at, 4, color.filled())])?;
        } else {
            chart.draw_series([
                Circle::new(dot.at, 4, WHITE.filled()),
                Circle::new(dot.at, 4, color.stroke_width(2)),
            ])?;
        }
    }
    Ok(())
}

/// Font size of a panel's caption, at most.
const CAPTION_SIZE: u32 = 18;

/// The font size, `largest` or smaller (down to 11), at which `caption` fits
/// the width of `area` with 8 pixels to spare on each side.
pub(crate) fn caption_size<DB: Backend>(area: &On<DB>, caption: &str, largest: u32) -> Result<u32> {
    let room = area.dim_in_pixel().0.saturating_sub(16);
    let mut size = largest;
    while size > 11 {
        let font = TextStyle::from(("sans-serif", size).into_font());
        if area.estimate_text_size(caption, &font)?.0 <= room {
            break;
        }
        size -= 1;
    }
    Ok(size)
}

/// A point where a drawn function jumps: a filled dot marks its value
/// there, an open one the other one-sided limit (as in a calculus book).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dot {
    /// Where, in data coordinates.
    pub at: (f64, f64),
    /// Filled: the value; open: the limit the function does not take.
    pub filled: bool,
}

/// The pieces of the line through `points` (x increasing) that jumps at
/// each x of `jumps`, and the dots that mark the jumps.
///
/// Each piece ends (and the next begins) at the jump's x, at the one-sided
/// limit extrapolated from the two samples on that side, so no segment
/// crosses the jump. Where a sample lies at the jump's x, its value gets a
/// filled dot and the other limit an open one: the step function is 1 at 0
/// (filled at (0, 1), open at (0, 0)), ReLU's derivative takes its left
/// value 0 there. A jump outside the samples is ignored.
pub(crate) fn split_at_jumps(
    points: &[(f64, f64)],
    jumps: &[f64],
) -> (Vec<Vec<(f64, f64)>>, Vec<Dot>) {
    let mut jumps = jumps.to_vec();
    jumps.sort_by(f64::total_cmp);
    let (mut pieces, mut dots) = (Vec::new(), Vec::new());
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut rest = points;
    for z in jumps {
        let before = rest.partition_point(|p| p.0 < z);
        let exact = rest
            .get(before)
            .filter(|p| (p.0 - z).abs() <= 1e-9 * z.abs().max(1.0))
            .map(|p| p.1);
        let (left, right) = (
            &rest[..before],
            &rest[before + usize::from(exact.is_some())..],
        );
        if (current.is_empty() && left.is_empty()) || right.is_empty() {
            continue;
        }
        let from_left = match left {
            [.., a, b] => extrapolate(*b, *a, z),
            [b] => b.1,
            [] => current.last().map_or(0.0, |p| p.1),
        };
        let from_right = match right {
            [a, b, ..] => extrapolate(*a, *b, z),
            [a] => a.1,
            [] => unreachable!("checked above"),
        };
        current.extend_from_slice(left);
        current.push((z, from_left));
        pieces.push(std::mem::replace(&mut current, vec![(z, from_right)]));
        if let Some(value) = exact {
            let other = if (value - from_left).abs() <= (value - from_right).abs() {
                from_right
            } else {
                from_left
            };
            dots.push(Dot {
                at: (z, value),
                filled: true,
            });
            dots.push(Dot {
                at: (z, other),
                filled: false,
            });
        }
        rest = right;
    }
    current.extend_from_slice(rest);
    if !current.is_empty() {
        pieces.push(current);
    }
    (pieces, dots)
}

/// The y at `z` of the straight line through `near` and `far`.
fn extrapolate(near: (f64, f64), far: (f64, f64), z: f64) -> f64 {
    let dx = near.0 - far.0;
    if dx == 0.0 {
        near.1
    } else {
        near.1 + (near.1 - far.1) / dx * (z - near.0)
    }
}

/// How an axis maps values to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Linear.
    Linear,
    /// Logarithmic (positive values only).
    Log,
}

/// An axis: the range it shows and the values that get a tick and a label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    /// The values shown.
    pub range: Range<f64>,
    /// The ticks, increasing, all inside `range`.
    pub ticks: Vec<f64>,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// Decimals of a linear axis' labels (from the tick spacing).
    decimals: usize,
}

/// At most this many ticks on a linear axis.
const LINEAR_TICKS: usize = 8;

/// At most this many ticks on a log axis (before taking every other decade).
const LOG_TICKS: usize = 9;

impl Axis {
    /// A linear axis over the finite `values`, widened by `margin` of their
    /// span on each side. One value `v` (or none: 0) shows `v ± 0.5` on an
    /// `integer` axis, else `v ± max(|v|, 1) / 2`. Ticks at multiples of 1, 2
    /// or 5 × 10^k, at most [`LINEAR_TICKS`]; on an `integer` axis (epochs,
    /// iterations) whole numbers only, and only between the smallest and
    /// largest value.
    pub(crate) fn linear(
        values: impl IntoIterator<Item = f64>,
        margin: f64,
        integer: bool,
    ) -> Self {
        let (lo, hi) = span(values).unwrap_or((0.0, 0.0));
        let pad = if hi - lo > 1e-12 * hi.abs().max(1.0) {
            (hi - lo) * margin
        } else if integer {
            0.5
        } else {
            0.5 * hi.abs().max(1.0)
        };
        let mut axis = Self::linear_over((lo - pad)..(hi + pad), integer);
        if integer {
            // No tick at an epoch or iteration that is not in the data (epoch 0).
            axis.ticks.retain(|t| (lo - 1e-9..=hi + 1e-9).contains(t));
        }
        axis
    }

    /// A linear axis over exactly `range` (see [`Axis::linear`]); an empty
    /// or non-finite range shows 0..1.
    pub(crate) fn linear_over(range: Range<f64>, integer: bool) -> Self {
        let range = if range.end > range.start && range.start.is_finite() && range.end.is_finite() {
            range
        } else {
            0.0..1.0
        };
        let mut step = nice_step((range.end - range.start) / (LINEAR_TICKS - 1) as f64);
        if integer {
            step = step.max(1.0);
        }
        Self {
            ticks: steps_in(&range, step),
            range,
            scale: Scale::Linear,
            decimals: if integer { 0 } else { decimals_of(step) },
        }
    }

    /// A logarithmic axis over the positive finite `values`, widened by a
    /// factor on each side (none: 0.1..10); ticks by [`Axis::log_over`].
    pub(crate) fn log(values: impl IntoIterator<Item = f64>) -> Self {
        let positive = values.into_iter().filter(|v| *v > 0.0);
        let (lo, hi) = span(positive).unwrap_or((0.1, 10.0));
        let pad = (hi / lo).powf(0.03).max(1.05);
        Self::log_over((lo / pad)..(hi * pad))
    }

    /// A logarithmic axis over exactly `range` (positive; otherwise
    /// 0.1..10). Ticks, the finest of these with at most [`LOG_TICKS`] and
    /// no two closer than 1/12 of the axis (room for their labels):
    /// 1..9 × 10^k, 1-2-3-4-6 × 10^k (matplotlib's labelled subset),
    /// 1-2-5 × 10^k, every decade, every 2nd, 3rd, 5th, 10th decade; where
    /// fewer than 3 of 1..9 × 10^k fall in the range, linear steps as on a
    /// linear axis.
    pub(crate) fn log_over(range: Range<f64>) -> Self {
        let range = if range.start > 0.0 && range.end > range.start && range.end.is_finite() {
            range
        } else {
            0.1..10.0
        };
        let (lo, hi) = (range.start, range.end);
        let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let inside = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
        let with = |mantissas: &[f64], every: i32| -> Vec<f64> {
            (e0..=e1)
                .filter(|e| e.rem_euclid(every) == 0)
                .flat_map(|e| mantissas.iter().map(move |&m| power_of_ten(m, e)))
                .filter(inside)
                .collect()
        };
        let all: Vec<f64> = (1..=9).map(f64::from).collect();
        let finest = with(&all, 1);
        let ticks = if finest.len() < 3 {
            let step = nice_step((hi - lo) / 5.0);
            steps_in(&range, step)
        } else {
            let coarser = [
                (&[1.0, 2.0, 3.0, 4.0, 6.0][..], 1),
                (&[1.0, 2.0, 5.0], 1),
                (&[1.0], 1),
                (&[1.0], 2),
                (&[1.0], 3),
                (&[1.0], 5),
            ];
            // Labels need room: no two ticks closer than 1/12 of the axis.
            let min_gap = (hi / lo).log10() / 12.0;
            let roomy = |t: &Vec<f64>| t.windows(2).all(|w| (w[1] / w[0]).log10() >= min_gap);
            std::iter::once(finest)
                .chain(coarser.iter().map(|&(m, every)| with(m, every)))
                .find(|t| t.len() <= LOG_TICKS && roomy(t))
                .unwrap_or_else(|| with(&[1.0], 10))
        };
        Self {
            range,
            ticks,
            scale: Scale::Log,
            decimals: 0,
        }
    }

    /// The label of the tick at `v`.
    pub(crate) fn label(&self, v: f64) -> String {
        match self.scale {
            Scale::Linear => fixed(v, self.decimals),
            Scale::Log => log_label(v),
        }
    }

    /// The labels of all ticks, in order.
    #[cfg(test)]
    pub(crate) fn labels(&self) -> Vec<String> {
        self.ticks.iter().map(|&v| self.label(v)).collect()
    }

    /// The plotters coordinate of a linear axis, with exactly these ticks.
    pub(crate) fn linear_coord(&self) -> Ticked<RangedCoordf64> {
        Ticked {
            inner: self.range.clone().into(),
            ticks: self.ticks.clone(),
        }
    }

    /// The plotters coordinate of a logarithmic axis, with exactly these ticks.
    pub(crate) fn log_coord(&self) -> Ticked<LogCoord<f64>> {
        Ticked {
            inner: self.range.clone().log_scale().into(),
            ticks: self.ticks.clone(),
        }
    }
}

/// A plotters coordinate that ticks exactly the ticks of an [`Axis`] (and
/// draws no light grid lines). Plotters' own `WithKeyPoints` would do, but
/// an f64 axis wrapped in it loses its value formatter, which the mesh needs.
pub(crate) struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// The smallest of 1, 2, 5 × 10^k at least `raw` (positive).
fn nice_step(raw: f64) -> f64 {
    let raw = if raw > 0.0 && raw.is_finite() {
        raw
    } else {
        1.0
    };
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// The multiples of `step` in `range`.
fn steps_in(range: &Range<f64>, step: f64) -> Vec<f64> {
    let first = (range.start / step - 1e-9).ceil() as i64;
    let last = (range.end / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Decimals that show multiples of `step` exactly (0 for steps of 1 and more).
fn decimals_of(step: f64) -> usize {
    (-(step.log10() + 1e-9).floor()).max(0.0) as usize
}

/// `m × 10^e`, as close as f64 gets (10^e exact for the exponents of plots).
fn power_of_ten(m: f64, e: i32) -> f64 {
    if e >= 0 {
        m * 10f64.powi(e)
    } else {
        m / 10f64.powi(-e)
    }
}

/// `v` with `decimals` decimals; never "-0".
fn fixed(v: f64, decimals: usize) -> String {
    let scale = 10f64.powi(decimals.min(12) as i32);
    let rounded = (v * scale).round() / scale + 0.0; // `+ 0.0` turns -0 into 0
    format!("{rounded:.decimals$}")
}

/// A tick label on a log axis, three significant digits at most: `0.01`,
/// `0.25`, `10`, `2500`; `1e-3`, `2e-3`, `5e6` below 0.01 and from 1e5 on.
pub(crate) fn log_label(v: f64) -> String {
    if !(v > 0.0 && v.is_finite()) {
        return v.to_string(); // not on a log axis
    }
    let mut e = (v.log10() + 1e-9).floor() as i32;
    let mut m = (v / power_of_ten(1.0, e) * 100.0).round() / 100.0;
    if m >= 10.0 {
        (m, e) = (m / 10.0, e + 1);
    }
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (-2..=4).contains(&e) {
        let decimals = (2 - e).max(0) as usize;
        trim(format!("{:.decimals$}", power_of_ten(m, e)))
    } else {
        format!("{}e{e}", trim(format!("{m:.2}")))
    }
}

/// The smallest and largest finite value, if any.
fn span(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// What a legend sample shows besides its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// Nothing.
    None,
    /// A filled dot in its middle (a line with a marker on each point).
    Dot,
    /// An open circle at its start and a filled one at its end (a path of
    /// gradient descent, drawn from an open circle to a filled one).
    StartEnd,
}

/// One entry of a legend: a line sample (dashed or solid) and its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LegendEntry<'a> {
    /// The label; an empty one is not listed.
    pub label: &'a str,
    /// The line's colour.
    pub color: RGBColor,
    /// Drawn as two dashes.
    pub dashed: bool,
    /// The sample's width in pixels (at most 3 drawn).
    pub width: u32,
    /// Markers on the sample.
    pub marker: Marker,
}

/// Width of a legend entry's line sample.
const SAMPLE_WIDTH: i32 = 28;
/// Space between the sample and the label.
const LABEL_GAP: i32 = 6;
/// Space between two entries of a row.
const ENTRY_GAP: i32 = 22;
/// Height of a row of the legend.
const LEGEND_ROW: i32 = 18;
/// Space above and below the legend's rows.
const LEGEND_PAD: i32 = 4;
/// Space left and right of the legend's rows, at least.
const LEGEND_SIDE: i32 = 12;

/// Where the entries of a legend go in a strip `width` pixels wide, given
/// each entry's width: left to right in rows, a new row when one is full,
/// each row centred. Returns each entry's top-left corner (in the strip)
/// and the strip's height (0 for no entries).
pub(crate) fn legend_layout(widths: &[i32], width: i32) -> (Vec<(i32, i32)>, i32) {
    let mut rows: Vec<(Vec<usize>, i32)> = Vec::new();
    for (i, &w) in widths.iter().enumerate() {
        match rows.last_mut() {
            Some((row, used)) if *used + ENTRY_GAP + w <= width => {
                row.push(i);
                *used += ENTRY_GAP + w;
            }
            _ => rows.push((vec![i], w)),
        }
    }
    let mut at = vec![(0, 0); widths.len()];
    for (r, (row, used)) in rows.iter().enumerate() {
        let mut x = ((width - used) / 2).max(0);
        for &i in row {
            at[i] = (x, LEGEND_PAD + LEGEND_ROW * r as i32);
            x += widths[i] + ENTRY_GAP;
        }
    }
    let height = if rows.is_empty() {
        0
    } else {
        2 * LEGEND_PAD + LEGEND_ROW * rows.len() as i32
    };
    (at, height)
}

/// Draws the legend of `entries` (each distinct one once; empty labels
/// left out) in a strip across the top of `area`, laid out by
/// [`legend_layout`], and returns the area below it: the legend is never
/// drawn over a plot.
pub(crate) fn legend_strip<DB: Backend>(
    area: &On<DB>,
    entries: &[LegendEntry<'_>],
    text: bool,
) -> Result<On<DB>> {
    let mut shown: Vec<&LegendEntry<'_>> = Vec::new();
    for entry in entries.iter().filter(|e| !e.label.is_empty()) {
        if !shown.contains(&entry) {
            shown.push(entry);
        }
    }
    if shown.is_empty() {
        return Ok(area.clone());
    }
    let font = legend_font();
    let mut widths = Vec::with_capacity(shown.len());
    for entry in &shown {
        let label = if text {
            LABEL_GAP + area.estimate_text_size(entry.label, &font)?.0 as i32
        } else {
            0
        };
        widths.push(SAMPLE_WIDTH + label);
    }
    let room = area.dim_in_pixel().0 as i32 - 2 * LEGEND_SIDE;
    let (at, height) = legend_layout(&widths, room);
    let (strip, rest) = area.split_vertically(height);
    for (entry, &(x, y)) in shown.iter().zip(&at) {
        let (x, y) = (x + LEGEND_SIDE, y + LEGEND_ROW / 2);
        let style = entry.color.stroke_width(entry.width.clamp(1, 3));
        let dashes: &[(i32, i32)] = if entry.dashed {
            &[(0, 11), (17, SAMPLE_WIDTH)]
        } else {
            &[(0, SAMPLE_WIDTH)]
        };
        for &(a, b) in dashes {
            strip.draw(&PathElement::new([(x + a, y), (x + b, y)], style))?;
        }
        match entry.marker {
            Marker::None => {}
            Marker::Dot => strip.draw(&Circle::new(
                (x + SAMPLE_WIDTH / 2, y),
                3,
                entry.color.filled(),
            ))?,
            Marker::StartEnd => {
                strip.draw(&Circle::new((x + 4, y), 4, WHITE.filled()))?;
                strip.draw(&Circle::new((x + 4, y), 4, entry.color.stroke_width(2)))?;
                strip.draw(&Circle::new(
                    (x + SAMPLE_WIDTH - 4, y),
                    4,
                    entry.color.filled(),
                ))?;
            }
        }
        if text {
            strip.draw_text(entry.label, &font, (x + SAMPLE_WIDTH + LABEL_GAP, y))?;
        }
    }
    Ok(rest)
}

/// The font of legend labels, anchored at the left middle.
fn legend_font() -> TextStyle<'static> {
    TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center))
}

/// Registers a system sans-serif font once; false (after one warning) if there is none.
pub(crate) fn text_enabled() -> bool {
    static TEXT: OnceLock<bool> = OnceLock::new();
    *TEXT.get_or_init(|| {
        let bytes = find_font().and_then(|path| std::fs::read(path).ok());
        let registered = bytes.is_some_and(|bytes| {
            register_font(
                "sans-serif",
                FontStyle::Normal,
                Box::leak(bytes.into_boxed_slice()),
            )
            .is_ok()
        });
        if !registered {
            let hint = "install fonts-dejavu-core";
            eprintln!(
                "warning: no TrueType font in /usr/share/fonts, figures have no text ({hint})"
            );
        }
        registered
    })
}

/// Regular sans-serif fonts, most preferred first.
const PREFERRED_FONTS: [&str; 6] = [
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "NotoSans-Regular.ttf",
    "FreeSans.ttf",
    "Arial.ttf",
    "Vera.ttf",
];

/// Parts of font file names that mark a font as not a plain regular sans-serif.
const NOT_REGULAR: [&str; 7] = [
    "Bold",
    "Italic",
    "Oblique",
    "Mono",
    "Condensed",
    "Light",
    "Serif",
];

/// The most preferred regular sans-serif TrueType font under the system font directories.
fn find_font() -> Option<PathBuf> {
    let rank = |name: &str| {
        let sans = name.ends_with(".ttf") && name.contains("Sans");
        let other_sans = sans && !NOT_REGULAR.iter().any(|part| name.contains(part));
        let preferred = PREFERRED_FONTS.iter().position(|&font| font == name);
        preferred.or(other_sans.then_some(PREFERRED_FONTS.len()))
    };
    let mut dirs = vec![
        PathBuf::from("/usr/share/fonts"),
        PathBuf::from("/usr/local/share/fonts"),
    ];
    let mut fonts = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                dirs.push(path);
            } else if let Some(rank) = path.file_name().and_then(|n| n.to_str()).and_then(rank) {
                fonts.push((rank, path));
            }
        }
    }
    fonts.into_iter().min().map(|(_, path)| path)
}

#[cfg(test)]
pub(crate) mod recorder {
    //! A drawing backend that records what plotters draws (lines, circles,
    //! texts with their anchors), for tests on the figures.

    use std::cell::RefCell;
    use std::rc::Rc;

    use plotters::prelude::*;
    use plotters_backend::text_anchor::{HPos, VPos};
    use plotters_backend::{
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    };

    use super::On;

    /// A text as drawn.
    #[derive(Debug, Clone)]
    pub(crate) struct Text {
        /// The text.
        pub text: String,
        /// The anchor point in pixels.
        pub at: (i32, i32),
        /// Horizontal anchor: `'L'`, `'C'` or `'R'`.
        pub h: char,
        /// Vertical anchor: `'T'`, `'C'` or `'B'`.
        pub v: char,
        /// Font size in pixels.
        pub size: f64,
    }

    impl Text {
        /// Its box `((left, top), (right, bottom))`, sized by [`text_size`].
        pub(crate) fn rect(&self) -> ((i32, i32), (i32, i32)) {
            let (w, h) = text_size(&self.text, self.size);
            let (w, h) = (w as i32, h as i32);
            let left = match self.h {
                'L' => self.at.0,
                'C' => self.at.0 - w / 2,
                _ => self.at.0 - w,
            };
            let top = match self.v {
                'T' => self.at.1,
                'C' => self.at.1 - h / 2,
                _ => self.at.1 - h,
            };
            ((left, top), (left + w, top + h))
        }
    }

    /// A polyline or a line as drawn.
    #[derive(Debug, Clone)]
    pub(crate) struct Stroke {
        /// Its vertices in pixels.
        pub points: Vec<(i32, i32)>,
        /// Its colour.
        pub color: (u8, u8, u8),
    }

    /// A circle as drawn.
    #[derive(Debug, Clone)]
    pub(crate) struct Disc {
        /// Centre in pixels.
        pub center: (i32, i32),
        /// Radius in pixels.
        pub radius: u32,
        /// Its colour.
        pub color: (u8, u8, u8),
        /// Filled, or only its outline.
        pub filled: bool,
    }

    /// Everything drawn, in order.
    #[derive(Debug, Default)]
    pub(crate) struct Drawing {
        /// The texts.
        pub texts: Vec<Text>,
        /// The lines and polylines.
        pub strokes: Vec<Stroke>,
        /// The circles.
        pub discs: Vec<Disc>,
    }

    impl Drawing {
        /// The texts of size `size` anchored at `(h, v)`, in drawing order.
        pub(crate) fn texts_at(&self, size: f64, h: char, v: char) -> Vec<&Text> {
            self.texts
                .iter()
                .filter(|t| t.size == size && t.h == h && t.v == v)
                .collect()
        }
    }

    /// The recording backend.
    pub(crate) struct Recorder {
        size: (u32, u32),
        drawing: Rc<RefCell<Drawing>>,
    }

    /// A text's size as the recorder estimates it: 0.6 em per character.
    pub(crate) fn text_size(text: &str, size: f64) -> (u32, u32) {
        let w = 0.6 * size * text.chars().count() as f64;
        (w.ceil() as u32, size.ceil() as u32)
    }

    type Drawn = Result<(), DrawingErrorKind<std::io::Error>>;

    impl Recorder {
        fn stroke(&self, points: Vec<(i32, i32)>, color: BackendColor) {
            if color.alpha > 0.0 {
                self.drawing.borrow_mut().strokes.push(Stroke {
                    points,
                    color: color.rgb,
                });
            }
        }
    }

    impl DrawingBackend for Recorder {
        type ErrorType = std::io::Error;

        fn get_size(&self) -> (u32, u32) {
            self.size
        }

        fn ensure_prepared(&mut self) -> Drawn {
            Ok(())
        }

        fn present(&mut self) -> Drawn {
            Ok(())
        }

        fn draw_pixel(&mut self, _: BackendCoord, _: BackendColor) -> Drawn {
            Ok(())
        }

        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Drawn {
            self.stroke(vec![from, to], style.color());
            Ok(())
        }

        fn draw_rect<S: BackendStyle>(
            &mut self,
            _: BackendCoord,
            _: BackendCoord,
            _: &S,
            _: bool,
        ) -> Drawn {
            Ok(())
        }

        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Drawn {
            self.stroke(path.into_iter().collect(), style.color());
            Ok(())
        }

        fn draw_circle<S: BackendStyle>(
            &mut self,
            center: BackendCoord,
            radius: u32,
            style: &S,
            filled: bool,
        ) -> Drawn {
            self.drawing.borrow_mut().discs.push(Disc {
                center,
                radius,
                color: style.color().rgb,
                filled,
            });
            Ok(())
        }

        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            _: I,
            _: &S,
        ) -> Drawn {
            Ok(())
        }

        fn draw_text<T: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &T,
            at: BackendCoord,
        ) -> Drawn {
            let anchor = style.anchor();
            let h = match anchor.h_pos {
                HPos::Left => 'L',
                HPos::Center => 'C',
                HPos::Right => 'R',
            };
            let v = match anchor.v_pos {
                VPos::Top => 'T',
                VPos::Center => 'C',
                VPos::Bottom => 'B',
            };
            self.drawing.borrow_mut().texts.push(Text {
                text: text.to_string(),
                at,
                h,
                v,
                size: style.size(),
            });
            Ok(())
        }

        fn estimate_text_size<T: BackendTextStyle>(
            &self,
            text: &str,
            style: &T,
        ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
            Ok(text_size(text, style.size()))
        }
    }

    /// What `draw` draws on a figure of `size` pixels.
    pub(crate) fn record(
        size: (u32, u32),
        draw: impl FnOnce(&On<Recorder>) -> anyhow::Result<()>,
    ) -> Drawing {
        let drawing = Rc::new(RefCell::new(Drawing::default()));
        let root = Recorder {
            size,
            drawing: Rc::clone(&drawing),
        }
        .into_drawing_area();
        draw(&root).unwrap();
        drop(root);
        drawing.take()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let unique = format!(
            "hebb-plot-{name}-{}-{}",
            std::process::id(),
            nanos.map_or(0, |d| d.as_nanos())
        );
        std::env::temp_dir().join(unique)
    }

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            path.display()
        );
        assert!(
            bytes.len() > 5_000,
            "{} has only {} bytes",
            path.display(),
            bytes.len()
        );
    }

    #[test]
    fn draws_panels_and_curve_grid() {
        let dir = temp_dir("figures");
        let curve = |scale: f64, end: f64| -> Vec<f64> {
            (0..51)
                .map(|i| end + scale * (-f64::from(i) / 10.0).exp())
                .collect()
        };
        let (loss, test_loss, acc, test_acc) = (
            curve(2.3, 0.1),
            curve(2.5, 0.15),
            curve(-0.85, 0.95),
            curve(-0.9, 0.92),
        );
        let series = |train, test| {
            vec![
                Series {
                    label: "train",
                    color: BLUE,
                    values: train,
                },
                Series {
                    label: "test",
                    color: RED,
                    values: test,
                },
            ]
        };
        let figure = [
            Panel {
                x_label: "Iteration",
                y_label: "Loss",
                series: series(&loss, &test_loss),
                first_x: 0,
            },
            Panel {
                x_label: "Iteration",
                y_label: "Accuracy",
                series: series(&acc, &test_acc),
                first_x: 0,
            },
        ];
        let losses = dir.join("nested/losses.png");
        panels(&losses, Some("Training"), &figure).unwrap();
        assert_png(&losses);

        let z: Vec<f64> = (-50..=50).map(|i| f64::from(i) / 10.0).collect();
        let map = |f: fn(f64) -> f64| z.iter().map(|&v| f(v)).collect::<Vec<f64>>();
        let (tanh, dtanh) = (map(f64::tanh), map(|v| 1.0 - v.tanh().powi(2)));
        let (relu, drelu) = (map(|v| v.max(0.0)), map(|v| f64::from(v > 0.0)));
        let curves = [
            Curve {
                name: "tanh",
                z: &z,
                f: &tanh,
                df: &dtanh,
                f_jumps: &[],
                df_jumps: &[],
            },
            Curve {
                name: "relu",
                z: &z,
                f: &relu,
                df: &drelu,
                f_jumps: &[],
                df_jumps: &[0.0],
            },
            Curve {
                name: "step",
                z: &z,
                f: &drelu,
                df: &[0.0; 101],
                f_jumps: &[0.0],
                df_jumps: &[],
            },
        ];
        let grid = dir.join("activations.png");
        curve_grid(&grid, "Activation functions", &curves, 2).unwrap();
        assert_png(&grid);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_and_empty_values_do_not_panic() {
        let dir = temp_dir("nan");
        let values = [
            1.0,
            f64::NAN,
            3.0,
            f64::INFINITY,
            2.0,
            f64::NEG_INFINITY,
            0.5,
            0.4,
        ];
        let nans = [f64::NAN; 4];
        let series = vec![
            Series {
                label: "mixed",
                color: BLUE,
                values: &values,
            },
            Series {
                label: "nan",
                color: RED,
                values: &nans,
            },
            Series {
                label: "",
                color: RED,
                values: &[],
            },
        ];
        let figure = [
            Panel {
                x_label: "Iteration",
                y_label: "Loss",
                series,
                first_x: 1,
            },
            Panel {
                x_label: "",
                y_label: "",
                series: Vec::new(),
                first_x: 0,
            },
        ];
        panels(&dir.join("nan.png"), None, &figure).unwrap();
        panels(&dir.join("none.png"), None, &[]).unwrap();
        let curve = Curve {
            name: "nan",
            z: &values,
            f: &nans,
            df: &[],
            f_jumps: &[0.5, f64::NAN],
            df_jumps: &[],
        };
        curve_grid(&dir.join("grid.png"), "", &[curve], 0).unwrap();
        curve_grid(&dir.join("empty-grid.png"), "empty", &[], 3).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn draws_without_a_font() {
        let path = temp_dir("no-font").join("plain.png");
        let points = (0..51)
            .map(|i| (f64::from(i), f64::from(i).sqrt()))
            .collect();
        let lines = [Line {
            label: "train",
            color: BLUE,
            dashed: false,
            points,
            jumps: &[],
        }];
        let draw = |root: &Area<'_>| {
            chart(
                root,
                Some("no text"),
                ("Iteration", "Loss"),
                &lines,
                true,
                false,
            )
        };
        draw_png(&path, (600, 360), None, draw).unwrap();
        assert_png(&path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let path = Path::new("/proc/hebb-plot-cannot-write/figure.png");
        let err = panels(path, None, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("figure.png"), "{err:#}");
    }

    // Axes.

    #[test]
    fn one_epoch_shows_1_to_within_half_an_epoch() {
        let axis = Axis::linear([1.0], 0.03, true);
        assert_eq!(axis.range, 0.5..1.5);
        assert_eq!(axis.labels(), ["1"]);
    }

    #[test]
    fn five_epochs_are_numbered_1_to_5() {
        let axis = Axis::linear((1..=5).map(f64::from), 0.03, true);
        assert_eq!(axis.labels(), ["1", "2", "3", "4", "5"]);
        let range = &axis.range;
        assert!(0.8 < range.start && range.start < 1.0, "{range:?}");
        assert!(5.0 < range.end && range.end < 5.2, "{range:?}");
    }

    #[test]
    fn integer_axes_tick_whole_numbers_inside_the_data() {
        let labels = |n: u32, first: u32| {
            Axis::linear((first..first + n).map(f64::from), 0.03, true).labels()
        };
        // 12.2's iterations i = 0..=50; 2, 3 and 100 epochs.
        assert_eq!(labels(51, 0), ["0", "10", "20", "30", "40", "50"]);
        assert_eq!(labels(2, 1), ["1", "2"]);
        assert_eq!(labels(3, 1), ["1", "2", "3"]);
        assert_eq!(labels(100, 1), ["20", "40", "60", "80", "100"]);
    }

    #[test]
    fn linear_axes_tick_round_values_with_enough_decimals() {
        // The 5-epoch accuracy of 13.5, and a loss of 12.2.
        let accuracy = Axis::linear([0.5687, 0.7847, 0.9239], 0.05, false);
        assert_eq!(accuracy.labels(), ["0.6", "0.7", "0.8", "0.9"]);
        let loss = Axis::linear([0.2936, 1.5519], 0.05, false);
        assert_eq!(
            loss.labels(),
            ["0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6"]
        );
        let z = Axis::linear([-4.0, 4.0], 0.03, false);
        assert_eq!(z.labels(), ["-4", "-2", "0", "2", "4"]);
        assert_eq!(
            Axis::linear_over(-0.05..0.75, false).labels(),
            ["0.0", "0.2", "0.4", "0.6"]
        );
        assert_eq!(Axis::linear([f64::NAN], 0.05, false).range, -0.5..0.5);
    }

    #[test]
    fn log_axes_label_enough_ticks_to_read_a_value() {
        // ex13-mnist-loss.png (1,000 images, 1 epoch): losses 0.40 to 2.41;
        // its seconds per epoch, 8e-3 to 0.06.
        let mnist = Axis::log([0.4026, 2.4077]);
        assert_eq!(mnist.labels(), ["0.4", "0.6", "1", "2"]);
        let seconds = Axis::log([0.0085, 0.0586]);
        assert_eq!(seconds.labels(), ["0.01", "0.02", "0.03", "0.04", "0.06"]);
        let fewer = Axis::log([0.0117, 0.0566]);
        assert_eq!(fewer.labels(), ["0.02", "0.03", "0.04", "0.05"]);
        // ex13-schedules.png: learning rates 2.06e-4 to 0.0206.
        let eta = Axis::log([2.06e-4, 0.0206]);
        assert_eq!(
            eta.labels(),
            ["2e-4", "5e-4", "1e-3", "2e-3", "5e-3", "0.01", "0.02"]
        );
        // ex13-regression-loss.png: excess losses 1e-6 (the floor) to 20.
        let excess = Axis::log([1e-6, 20.0]);
        assert_eq!(
            excess.labels(),
            ["1e-6", "1e-5", "1e-4", "1e-3", "0.01", "0.1", "1", "10"]
        );
        // Samples seen, 1 to 3e5, and a range within a fraction of a decade.
        assert_eq!(
            Axis::log([1.0, 3e5]).labels(),
            ["1", "10", "100", "1000", "10000", "1e5"]
        );
        assert_eq!(
            Axis::log_over(1.8..2.5).labels(),
            ["1.8", "2", "2.2", "2.4"]
        );
        assert_eq!(
            Axis::log_over(0.55..1.3).labels(),
            ["0.6", "0.7", "0.8", "0.9", "1"]
        );
        // Twenty decades: every third.
        let wide = Axis::log_over(1e-10..1e10);
        assert_eq!(
            wide.labels(),
            ["1e-9", "1e-6", "1e-3", "1", "1000", "1e6", "1e9"]
        );
        for axis in [&mnist, &seconds, &eta, &excess, &wide] {
            assert!(
                axis.ticks.iter().all(|t| axis.range.contains(t)),
                "{axis:?}"
            );
            assert!(
                axis.ticks.len() >= 4 && axis.ticks.len() <= LOG_TICKS,
                "{axis:?}"
            );
        }
        let nothing = Axis::log([-1.0, 0.0]);
        assert_eq!(nothing.labels(), ["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
    }

    #[test]
    fn log_labels_read_well() {
        let labels: Vec<String> = [
            0.01, 1e-5, 100.0, 1e6, 2.5, 2e-3, 5e-4, 0.05, 2e5, 1.95, 20000.0, 2.5e-7,
        ]
        .iter()
        .map(|&v| log_label(v))
        .collect();
        let expected = [
            "0.01", "1e-5", "100", "1e6", "2.5", "2e-3", "5e-4", "0.05", "2e5", "1.95", "20000",
            "2.5e-7",
        ];
        assert_eq!(labels, expected);
    }

    // Jumps.

    /// `f` at z = -0.08, -0.04, 0, 0.04, 0.08.
    fn around_0(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        [-0.08, -0.04, 0.0, 0.04, 0.08]
            .iter()
            .map(|&z| (z, f(z)))
            .collect()
    }

    #[test]
    fn the_step_function_jumps_from_an_open_0_to_a_filled_1() {
        let points = around_0(|z| f64::from(u8::from(z >= 0.0)));
        let (pieces, dots) = split_at_jumps(&points, &[0.0]);
        assert_eq!(
            pieces,
            [
                vec![(-0.08, 0.0), (-0.04, 0.0), (0.0, 0.0)],
                vec![(0.0, 1.0), (0.04, 1.0), (0.08, 1.0)],
            ]
        );
        let dot = |at, filled| Dot { at, filled };
        assert_eq!(dots, [dot((0.0, 1.0), true), dot((0.0, 0.0), false)]);
    }

    #[test]
    fn relu_derivatives_take_their_left_value_at_0() {
        // Leaky ReLU with a = 10: f' = 0.1 left of 0 and at 0, 1 right of it.
        let points = around_0(|z| if z > 0.0 { 1.0 } else { 0.1 });
        let (pieces, dots) = split_at_jumps(&points, &[0.0]);
        assert_eq!(pieces[0].last(), Some(&(0.0, 0.1)));
        assert_eq!(pieces[1].first(), Some(&(0.0, 1.0)));
        let dot = |at, filled| Dot { at, filled };
        assert_eq!(dots, [dot((0.0, 0.1), true), dot((0.0, 1.0), false)]);
        // Leaky ReLU itself is continuous: extrapolating both sides meets at 0.
        let relu = around_0(|z| if z > 0.0 { z } else { 0.1 * z });
        assert_eq!(split_at_jumps(&relu, &[]), (vec![relu.clone()], vec![]));
    }

    #[test]
    fn jumps_between_samples_or_outside_them() {
        let points = around_0(|z| f64::from(u8::from(z > 0.02)));
        let (pieces, dots) = split_at_jumps(&points, &[0.02, 5.0, -3.0]);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].last(), Some(&(0.02, 0.0)));
        assert_eq!(pieces[1].first(), Some(&(0.02, 1.0)));
        assert!(dots.is_empty());
        assert_eq!(split_at_jumps(&[], &[0.0]), (vec![], vec![]));
    }

    // Legends.

    #[test]
    fn legend_entries_fill_centred_rows() {
        assert_eq!(legend_layout(&[], 500), (vec![], 0));
        let (at, height) = legend_layout(&[60, 60], 1100);
        assert_eq!(at, [(479, LEGEND_PAD), (561, LEGEND_PAD)]);
        assert_eq!(height, 2 * LEGEND_PAD + LEGEND_ROW);
        // Seven optimisers in a narrow panel: three rows.
        let widths = [150; 7];
        let (at, height) = legend_layout(&widths, 500);
        assert_eq!(height, 2 * LEGEND_PAD + 3 * LEGEND_ROW);
        for (i, (&(x, y), w)) in at.iter().zip(widths).enumerate() {
            assert!(x >= 0 && x + w <= 500, "entry {i} at {x}");
            for &(x2, y2) in &at[i + 1..] {
                assert!(
                    y2 > y || x2 >= x + w + ENTRY_GAP,
                    "entry {i} overlaps a later one"
                );
            }
        }
    }

    // What is drawn (through a recording backend).

    fn x_tick_labels(drawing: &recorder::Drawing) -> Vec<&str> {
        let ticks = drawing.texts_at(13.0, 'C', 'T');
        ticks.iter().map(|t| t.text.as_str()).collect()
    }

    #[test]
    fn a_one_epoch_history_shows_epoch_1_with_markers() {
        let panels = crate::ch13::history_panels(&[1.5519], &[0.8796], &[0.5687], &[0.7847]);
        let drawing = recorder::record((1100, 360), |root| panels_on(root, &panels, true));
        assert_eq!(x_tick_labels(&drawing), ["1", "1"]);
        // A filled marker on each of the four values, and in the two legend samples.
        let marked = |rgb| {
            drawing
                .discs
                .iter()
                .filter(|d| d.filled && d.color == rgb)
                .count()
        };
        assert_eq!((marked((0, 0, 255)), marked((255, 0, 0))), (3, 3));
    }

    #[test]
    fn a_five_epoch_history_is_numbered_as_the_log_and_its_legend_covers_no_curve() {
        let (loss, val) = (
            [1.55, 0.66, 0.45, 0.35, 0.29],
            [0.88, 0.50, 0.39, 0.34, 0.30],
        );
        let (acc, val_acc) = (
            [0.57, 0.84, 0.89, 0.91, 0.924],
            [0.78, 0.87, 0.90, 0.90, 0.921],
        );
        let panels = crate::ch13::history_panels(&loss, &val, &acc, &val_acc);
        let drawing = recorder::record((1100, 360), |root| panels_on(root, &panels, true));
        let numbers = ["1", "2", "3", "4", "5"];
        assert_eq!(x_tick_labels(&drawing), [numbers, numbers].concat());
        let legend = drawing.texts_at(13.0, 'L', 'C');
        let labels: Vec<&str> = legend.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(labels, ["train", "validation"]);
        let legend_bottom = legend.iter().map(|t| t.rect().1.1).max().unwrap();
        // The curves (strokes through the five points; a legend sample has two)
        // and the top of both plots (the highest y tick label) lie below the legend.
        let curves: Vec<(i32, i32)> = drawing
            .strokes
            .iter()
            .filter(|s| s.points.len() == 5)
            .flat_map(|s| s.points.iter().copied())
            .collect();
        assert_eq!(curves.len(), 4 * 5);
        assert!(
            curves.iter().all(|p| p.1 > legend_bottom),
            "{curves:?} vs {legend_bottom}"
        );
        let y_ticks = drawing.texts_at(13.0, 'R', 'C');
        assert!(y_ticks.iter().all(|t| t.rect().0.1 > legend_bottom));
    }

    #[test]
    fn without_a_font_the_legend_shows_its_samples_and_no_text() {
        let panels =
            crate::ch13::history_panels(&[1.5, 0.7], &[0.9, 0.5], &[0.6, 0.8], &[0.7, 0.85]);
        let drawing = recorder::record((1100, 360), |root| panels_on(root, &panels, false));
        assert!(drawing.texts.is_empty(), "{:?}", drawing.texts);
        // Two samples (blue, red) with a marker each, above the plots.
        let samples: Vec<&recorder::Stroke> = drawing
            .strokes
            .iter()
            .filter(|s| s.points.len() == 2 && s.points[0].1 == s.points[1].1)
            .filter(|s| s.color == (0, 0, 255) || s.color == (255, 0, 0))
            .collect();
        assert_eq!(samples.len(), 2);
        let curves_top = drawing
            .strokes
            .iter()
            .filter(|s| s.points.len() == 2 && s.points[0].1 != s.points[1].1)
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .min()
            .unwrap();
        assert!(samples.iter().all(|s| s.points[0].1 < curves_top));
    }

    /// The step function and its derivative on 12.5's grid, -4..4 in 200 steps.
    fn step_curve(z: &[f64], f: &[f64], df: &[f64]) -> Drawing {
        let curve = Curve {
            name: "step",
            z,
            f,
            df,
            f_jumps: &[0.0],
            df_jumps: &[],
        };
        recorder::record((300, 290), |root| {
            curve_grid_on(root, &[curve], (1, 1), true)
        })
    }

    use recorder::Drawing;

    #[test]
    fn the_step_function_is_drawn_as_a_jump_with_a_visible_derivative_label() {
        let z: Vec<f64> = (0..=200)
            .map(|i| -4.0 + 8.0 * f64::from(i) / 200.0)
            .collect();
        let f: Vec<f64> = z.iter().map(|&v| f64::from(u8::from(v >= 0.0))).collect();
        let drawing = step_curve(&z, &f, &vec![0.0; z.len()]);
        // Two blue pieces, each flat: no segment climbs from 0 to 1.
        let blue: Vec<&recorder::Stroke> = drawing
            .strokes
            .iter()
            .filter(|s| s.color == (0, 0, 255) && s.points.len() > 2)
            .collect();
        assert_eq!(blue.len(), 2);
        for stroke in &blue {
            assert!(
                stroke.points.iter().all(|p| p.1 == stroke.points[0].1),
                "{stroke:?}"
            );
        }
        // A filled dot at (0, 1) above an open one at (0, 0), where the pieces meet.
        let dot = |filled| {
            let dots: Vec<_> = drawing
                .discs
                .iter()
                .filter(|d| d.color == (0, 0, 255) && d.filled == filled && d.radius == 4)
                .collect();
            assert_eq!(dots.len(), 1, "filled {filled}: {dots:?}");
            dots[0].center
        };
        let (filled, open) = (dot(true), dot(false));
        assert_eq!(filled.0, open.0);
        assert_eq!(filled, blue[1].points[0]);
        assert_eq!(open, *blue[0].points.last().unwrap());
        assert!(
            filled.1 < open.1 - 100,
            "1 is drawn above 0: {filled:?} {open:?}"
        );
        let legend = drawing.texts_at(13.0, 'L', 'C');
        let labels: Vec<&str> = legend.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(labels, CURVE_LABELS);
        assert!(drawing.texts.iter().all(|t| !t.text.contains('\'')));
    }

    #[test]
    fn long_captions_shrink_to_fit_their_panel() {
        let z = [-1.0, 0.0, 1.0];
        let caption = "leaky_relu (a=10, negative_slope=0.1)";
        let curve = Curve {
            name: caption,
            z: &z,
            f: &z,
            df: &[1.0; 3],
            f_jumps: &[],
            df_jumps: &[],
        };
        let drawing = recorder::record((300, 290), |root| {
            curve_grid_on(root, &[curve], (1, 1), true)
        });
        let text = drawing.texts.iter().find(|t| t.text == caption).unwrap();
        let ((left, _), (right, _)) = text.rect();
        assert!(text.size < 18.0 && left >= 0 && right <= 300, "{text:?}");
    }
}
