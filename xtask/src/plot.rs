//! PNG figures drawn with plotters' bitmap backend.
//!
//! Text uses a TrueType font found under the system font directories and
//! rendered by `ab_glyph`, so no C library is needed. Without a font the
//! figures are still drawn (lines, axes, legend swatches), only without text.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
pub(crate) use plotters::style::{BLUE, RED};

/// One line on a panel.
pub(crate) struct Series<'a> {
    /// Legend entry (empty: not listed in the legend).
    pub label: &'a str,
    /// Line colour.
    pub color: RGBColor,
    /// y values at x = 0, 1, 2, ...; non-finite values are left out.
    pub values: &'a [f64],
}

/// One panel (subplot) of [`panels`].
pub(crate) struct Panel<'a> {
    /// Description under the x axis.
    pub x_label: &'a str,
    /// Description left of the y axis.
    pub y_label: &'a str,
    /// The lines, drawn in order, all listed in one legend.
    pub series: Vec<Series<'a>>,
}

/// One activation function of [`curve_grid`]: `f` and `df` are sampled at `z`.
pub(crate) struct Curve<'a> {
    /// Panel title.
    pub name: &'a str,
    /// Sample points.
    pub z: &'a [f64],
    /// f(z) at each sample point.
    pub f: &'a [f64],
    /// f'(z) at each sample point.
    pub df: &'a [f64],
}

/// Side-by-side panels in one PNG at `path`, like matplotlib's
/// `plt.figure(figsize=(10, 3)); plt.subplot(121); ...` with legends.
pub(crate) fn panels(path: &Path, title: Option<&str>, panels: &[Panel<'_>]) -> Result<()> {
    let text = text_enabled();
    let title = title.filter(|_| text);
    let size = (1100, if title.is_some() { 400 } else { 360 });
    draw_png(path, size, title, |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(&areas) {
            let lines: Vec<Line<'_>> = panel
                .series
                .iter()
                .map(|s| Line::new(s.label, s.color, false, (0u32..).map(f64::from), s.values))
                .collect();
            chart(area, None, (panel.x_label, panel.y_label), &lines, text)?;
        }
        Ok(())
    })
}

/// A grid of activation-function plots in one PNG at `path`, `columns` wide:
/// each panel shows f(z) in blue and f'(z) dashed in red, titled by the name.
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
        250 * rows as u32 + if text { 40 } else { 0 },
    );
    draw_png(path, size, Some(title).filter(|_| text), |root| {
        let areas = root.split_evenly((rows, columns));
        for (curve, area) in curves.iter().zip(&areas) {
            let z = || curve.z.iter().copied();
            let lines = [
                Line::new("f(z)", BLUE, false, z(), curve.f),
                Line::new("f'(z)", RED, true, z(), curve.df),
            ];
            chart(area, Some(curve.name), ("z", ""), &lines, text)?;
        }
        Ok(())
    })
}

/// The drawing area of a PNG figure (or part of one), in pixels.
pub(crate) type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

/// A line in data coordinates, ready to draw.
struct Line<'a> {
    label: &'a str,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

impl<'a> Line<'a> {
    /// The line through the points `(x, y)` of `xs` zipped with `ys`.
    fn new(
        label: &'a str,
        color: RGBColor,
        dashed: bool,
        xs: impl Iterator<Item = f64>,
        ys: &[f64],
    ) -> Self {
        let points = xs.zip(ys.iter().copied()).collect();
        Self {
            label,
            color,
            dashed,
            points,
        }
    }
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

/// Draws one panel: axes, the lines (non-finite points break a line) and a legend.
fn chart(
    area: &Area<'_>,
    caption: Option<&str>,
    (x_desc, y_desc): (&str, &str),
    lines: &[Line<'_>],
    text: bool,
) -> Result<()> {
    let finite = |&&(x, y): &&(f64, f64)| x.is_finite() && y.is_finite();
    let all = || lines.iter().flat_map(|l| l.points.iter()).filter(finite);
    let (xs, ys) = (
        range(all().map(|p| p.0), 0.0),
        range(all().map(|p| p.1), 0.05),
    );

    let mut builder = ChartBuilder::on(area);
    builder.margin(12);
    if text {
        builder.x_label_area_size(if x_desc.is_empty() { 24 } else { 40 });
        builder.y_label_area_size(if y_desc.is_empty() { 45 } else { 65 });
        if let Some(caption) = caption {
            builder.caption(caption, ("sans-serif", 18));
        }
    } else {
        builder.x_label_area_size(6).y_label_area_size(6);
    }
    let mut chart = builder.build_cartesian_2d(xs, ys)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08));
    mesh.x_labels(6)
        .y_labels(8)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick);
    if text {
        mesh.x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 13));
        mesh.axis_desc_style(("sans-serif", 15));
    } else {
        mesh.disable_x_axis().disable_y_axis(); // their tick labels would need a font
    }
    mesh.draw()?;
    let plot = chart.plotting_area().strip_coord_spec();
    let (w, h) = (plot.dim_in_pixel().0 as i32, plot.dim_in_pixel().1 as i32);
    if !text {
        plot.draw(&PathElement::new(
            [(0, 0), (0, h - 1), (w - 1, h - 1)],
            BLACK,
        ))?;
    }

    for line in lines {
        let style = line.color.stroke_width(2);
        for run in line.points.split(|p| !finite(&p)).filter(|r| !r.is_empty()) {
            if let [point] = run {
                chart.draw_series([Circle::new(*point, 2, style.filled())])?;
            } else if line.dashed {
                chart.draw_series(DashedLineSeries::new(run.iter().copied(), 7, 5, style))?;
            } else {
                chart.draw_series(LineSeries::new(run.iter().copied(), style))?;
            }
        }
    }
    let (bx, by) = plot.get_base_pixel();
    let pixels: Vec<(i32, i32)> = all()
        .map(|p| chart.backend_coord(p))
        .map(|(x, y)| (x - bx, y - by))
        .collect();
    let entries: Vec<LegendEntry<'_>> = lines
        .iter()
        .map(|l| LegendEntry {
            label: l.label,
            color: l.color,
            dashed: l.dashed,
        })
        .collect();
    legend(&plot, &entries, &pixels, text, 2)
}

/// One row of a legend: a line sample (dashed or solid) and its label.
pub(crate) struct LegendEntry<'a> {
    /// The label; an empty one is not listed.
    pub label: &'a str,
    /// The line's colour.
    pub color: RGBColor,
    /// Drawn as two dashes.
    pub dashed: bool,
}

/// Draws the legend of `entries` (samples `stroke` pixels wide) into the
/// corner of `plot` that covers the fewest of the data points at `pixels`
/// (relative to `plot`).
pub(crate) fn legend(
    plot: &Area<'_>,
    entries: &[LegendEntry<'_>],
    pixels: &[(i32, i32)],
    text: bool,
    stroke: u32,
) -> Result<()> {
    let entries: Vec<&LegendEntry<'_>> = entries.iter().filter(|l| !l.label.is_empty()).collect();
    if entries.is_empty() {
        return Ok(());
    }
    let font =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut text_w = 0;
    for line in entries.iter().filter(|_| text) {
        text_w = text_w.max(plot.estimate_text_size(line.label, &font)?.0 as i32 + 8);
    }
    let (box_w, box_h) = (34 + text_w, 8 + 18 * entries.len() as i32);
    let covered = |&(x0, y0): &(i32, i32)| {
        let inside =
            |(x, y): &&(i32, i32)| (x0..=x0 + box_w).contains(x) && (y0..=y0 + box_h).contains(y);
        pixels.iter().filter(inside).count()
    };
    let (w, h) = (plot.dim_in_pixel().0 as i32, plot.dim_in_pixel().1 as i32);
    let (left, right, top, bottom) = (6, w - box_w - 6, 6, h - box_h - 6);
    let corners = [(right, top), (left, top), (left, bottom), (right, bottom)];
    let (x0, y0) = corners
        .into_iter()
        .min_by_key(covered)
        .unwrap_or((right, top));

    let frame = [(x0, y0), (x0 + box_w, y0 + box_h)];
    plot.draw(&Rectangle::new(frame, WHITE.mix(0.85).filled()))?;
    plot.draw(&Rectangle::new(frame, BLACK.mix(0.25)))?;
    for (i, line) in entries.iter().enumerate() {
        let y = y0 + 13 + 18 * i as i32;
        let dashes: &[(i32, i32)] = if line.dashed {
            &[(6, 14), (20, 28)]
        } else {
            &[(6, 28)]
        };
        for &(a, b) in dashes {
            plot.draw(&PathElement::new(
                [(x0 + a, y), (x0 + b, y)],
                line.color.stroke_width(stroke),
            ))?;
        }
        if text {
            plot.draw_text(line.label, &font, (x0 + 34, y))?;
        }
    }
    Ok(())
}

/// A tick label: at most three decimals, without trailing zeros.
pub(crate) fn tick(v: &f64) -> String {
    let rounded = (v * 1000.0).round() / 1000.0 + 0.0; // `+ 0.0` turns -0 into 0
    let s = format!("{rounded:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The span of the finite `values`, widened by `margin` of its length on each side.
fn range(values: impl Iterator<Item = f64>, margin: f64) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi - lo > 1e-12 * hi.abs().max(1.0) {
        (hi - lo) * margin
    } else {
        0.5 * hi.abs().max(1.0)
    };
    (lo - pad)..(hi + pad)
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
            },
            Panel {
                x_label: "Iteration",
                y_label: "Accuracy",
                series: series(&acc, &test_acc),
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
            },
            Curve {
                name: "relu",
                z: &z,
                f: &relu,
                df: &drelu,
            },
            Curve {
                name: "step",
                z: &z,
                f: &drelu,
                df: &[0.0; 101],
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
            },
            Panel {
                x_label: "",
                y_label: "",
                series: Vec::new(),
            },
        ];
        panels(&dir.join("nan.png"), None, &figure).unwrap();
        panels(&dir.join("none.png"), None, &[]).unwrap();
        let curve = Curve {
            name: "nan",
            z: &values,
            f: &nans,
            df: &[],
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
        }];
        let draw =
            |root: &Area<'_>| chart(root, Some("no text"), ("Iteration", "Loss"), &lines, false);
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
}
