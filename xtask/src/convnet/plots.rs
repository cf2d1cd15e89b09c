//! The figures of `reproduce convnet` that show images rather than curves:
//! a convolution layer's filters and the feature maps of one image, each as
//! a grid of small images on one colour scale, with a colour bar that reads
//! the scale off.
//!
//! Fonts and the PNG file come from [`crate::plot`]; without a font the
//! figures are drawn without text. The layout is a pure function
//! ([`layout`]), so tests check where every map goes, and the drawing is
//! checked pixel by pixel on an in-memory bitmap.

use std::path::Path;

use anyhow::{Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::plot::{Axis, Backend, On, draw_png, text_enabled};

/// How values map to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColorMap {
    /// Black (low end) to white (high end), matplotlib's `gray`.
    Grey,
    /// Dark violet through teal to yellow, matplotlib's `viridis` (the
    /// colour map Keras' visualisation examples use for activations).
    Viridis,
}

/// matplotlib's `viridis` at 0, 0.1, ..., 1.
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

/// The colour a NaN is drawn in, on every map: it stands out of both scales.
pub(crate) const NAN_COLOR: RGBColor = RGBColor(255, 0, 0);

impl ColorMap {
    /// The colour of `t` in `[0, 1]` (clamped); NaN gets [`NAN_COLOR`].
    pub(crate) fn color(self, t: f64) -> RGBColor {
        if t.is_nan() {
            return NAN_COLOR;
        }
        let t = t.clamp(0.0, 1.0);
        match self {
            Self::Grey => {
                let v = (t * 255.0).round() as u8;
                RGBColor(v, v, v)
            }
            Self::Viridis => {
                let x = t * (VIRIDIS.len() - 1) as f64;
                let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
                let f = x - i as f64;
                let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
                let mix =
                    |p: u8, q: u8| (f64::from(p) + f * (f64::from(q) - f64::from(p))).round() as u8;
                RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
            }
        }
    }
}

/// One grid of a figure: `channels` maps of `rows × cols` values each,
/// stored channels last (`[rows, cols, channels]`), as a Conv2D kernel of
/// one input channel (`[3, 3, 1, 32]`) and an NHWC feature map of one image
/// (`[1, 26, 26, 32]`) are stored.
#[derive(Debug, Clone)]
pub(crate) struct MapGrid<'a> {
    /// The line above the grid.
    pub caption: String,
    /// The values, `rows * cols * channels` of them.
    pub values: &'a [f32],
    /// Height of one map.
    pub rows: usize,
    /// Width of one map.
    pub cols: usize,
    /// Number of maps.
    pub channels: usize,
    /// Maps per row of the grid.
    pub columns: usize,
    /// Side of one value in pixels, at most (smaller if the grid would not
    /// fit the figure's width).
    pub pixel: u32,
    /// The colours.
    pub color_map: ColorMap,
    /// The values drawn at the two ends of the colour map, `lo < hi`
    /// (see [`symmetric_range`], [`value_range`]); values outside are
    /// drawn at the nearer end.
    pub range: (f32, f32),
    /// Each map is divided by its own largest finite magnitude before it is
    /// coloured (a map of zeros stays 0), so that its pattern shows however
    /// small it is; `range` and the colour bar are then in those units
    /// (`-1..1`).
    pub per_map: bool,
    /// Each map gets its index above it (filter 0, 1, ...).
    pub numbered: bool,
    /// What the colour bar under the grid measures ("weight", "activation").
    pub bar_label: &'a str,
}

impl MapGrid<'_> {
    /// The value of map `k` at row `r`, column `c`.
    pub(crate) fn value(&self, r: usize, c: usize, k: usize) -> f32 {
        self.values[(r * self.cols + c) * self.channels + k]
    }

    /// What map `k`'s values are divided by before they are coloured: its
    /// largest finite magnitude with [`per_map`](Self::per_map) (1 for a
    /// map of zeros), else 1.
    pub(crate) fn divisor(&self, k: usize) -> f32 {
        if !self.per_map {
            return 1.0;
        }
        let m = (0..self.rows * self.cols)
            .map(|i| self.values[i * self.channels + k])
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()));
        if m > 0.0 { m } else { 1.0 }
    }

    /// Refuses a grid whose values are not `rows * cols * channels`, an
    /// empty one, and a range that is not finite and increasing.
    fn check(&self) -> Result<()> {
        let expected = self
            .rows
            .checked_mul(self.cols)
            .and_then(|n| n.checked_mul(self.channels));
        if expected != Some(self.values.len()) || self.values.is_empty() {
            bail!(
                "grid {:?}: {} values for {} maps of {}x{}",
                self.caption,
                self.values.len(),
                self.channels,
                self.rows,
                self.cols
            );
        }
        let (lo, hi) = self.range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            bail!(
                "grid {:?}: the colour range {lo}..{hi} is not finite and increasing",
                self.caption
            );
        }
        Ok(())
    }
}

/// A range centred on 0 that holds every finite value: `-m..m`, `m` their
/// largest magnitude (`-1..1` if all are 0 or none is finite). Weights
/// drawn on it show 0 as the colour map's middle (mid-grey), so the sign of
/// a weight is read off its colour.
pub(crate) fn symmetric_range(values: &[f32]) -> (f32, f32) {
    let m = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |m, v| m.max(v.abs()));
    if m > 0.0 { (-m, m) } else { (-1.0, 1.0) }
}

/// `min..max` of the finite values, starting at 0 when none is negative
/// (a ReLU's output: black is "off"); a range of width 1 above `min` when
/// all values are equal, or `0..1` when none is finite.
pub(crate) fn value_range(values: &[f32]) -> (f32, f32) {
    let mut finite = values.iter().copied().filter(|v| v.is_finite());
    let Some(first) = finite.next() else {
        return (0.0, 1.0);
    };
    let (lo, hi) = finite.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = lo.min(0.0);
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

/// Width of the margin at each side of a figure.
const MARGIN: i32 = 20;
/// Space between two maps of a grid.
const GAP: i32 = 8;
/// Height of a figure's title line.
const TITLE_HEIGHT: i32 = 44;
/// Height of a grid's caption line.
const CAPTION_HEIGHT: i32 = 30;
/// Height of the index above a numbered map.
const NUMBER_HEIGHT: i32 = 15;
/// Width of a colour bar, at most.
const BAR_WIDTH: i32 = 280;
/// Height of a colour bar.
const BAR_HEIGHT: i32 = 12;
/// Space from the colour bar to the next grid's caption (its tick labels sit there).
const AFTER_BAR: i32 = 40;

/// Pixels between a colour bar's end and its nearest round tick, at least,
/// for the end to get a label of its own.
const END_LABEL_ROOM: i32 = 40;

/// `v` with three significant digits (`0.391`, `-1.58`, `12.3`, `250`).
pub(crate) fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

/// Where one grid goes, in pixels from the figure's top-left corner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GridLayout {
    /// Centre of the caption's top edge.
    pub caption: (i32, i32),
    /// Side of one value.
    pub pixel: i32,
    /// Top-left corner of each map (its first value).
    pub maps: Vec<(i32, i32)>,
    /// Top-left corner and width of the colour bar.
    pub bar: (i32, i32, i32),
}

/// Where everything of a figure goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    /// Width and height of the figure.
    pub size: (u32, u32),
    /// The grids, top to bottom.
    pub grids: Vec<GridLayout>,
}

/// Lays `grids` out top to bottom in a figure `width` pixels wide (under
/// a title if `title`): each grid centred, `columns` maps a row, each
/// value `pixel` pixels square (fewer, at least 1, where the grid would be
/// wider than the figure), the colour bar centred under it.
///
/// # Errors
/// A grid whose values do not match its shape, or whose range is not
/// finite and increasing.
pub(crate) fn layout(width: u32, title: bool, grids: &[MapGrid<'_>]) -> Result<Layout> {
    let width = width as i32;
    let mut y = if title { TITLE_HEIGHT } else { MARGIN / 2 };
    let mut placed = Vec::with_capacity(grids.len());
    for grid in grids {
        grid.check()?;
        let caption = (width / 2, y);
        y += CAPTION_HEIGHT;
        let columns = grid.columns.clamp(1, grid.channels) as i32;
        let grid_rows = grid.channels.div_ceil(columns as usize) as i32;
        let (rows, cols) = (grid.rows as i32, grid.cols as i32);
        let room = (width - 2 * MARGIN - (columns - 1) * GAP).max(columns * cols);
        let pixel = (grid.pixel as i32).min(room / (columns * cols)).max(1);
        let (map_w, map_h) = (cols * pixel, rows * pixel);
        let grid_w = columns * map_w + (columns - 1) * GAP;
        let x0 = (width - grid_w) / 2;
        let number = if grid.numbered { NUMBER_HEIGHT } else { 0 };
        let maps = (0..grid.channels as i32)
            .map(|k| {
                let (row, col) = (k / columns, k % columns);
                (
                    x0 + col * (map_w + GAP),
                    y + row * (map_h + number + GAP) + number,
                )
            })
            .collect();
        y += grid_rows * (map_h + number + GAP) + 4;
        let bar_w = BAR_WIDTH.min(grid_w.max(120));
        let bar = ((width - bar_w) / 2, y, bar_w);
        y += BAR_HEIGHT + AFTER_BAR;
        placed.push(GridLayout {
            caption,
            pixel,
            maps,
            bar,
        });
    }
    let height = y - AFTER_BAR + 36;
    Ok(Layout {
        size: (width as u32, height.max(1) as u32),
        grids: placed,
    })
}

/// The grids in one PNG at `path`, `width` pixels wide, under `title`.
pub(crate) fn map_grids(path: &Path, width: u32, title: &str, grids: &[MapGrid<'_>]) -> Result<()> {
    let text = text_enabled();
    let layout = layout(width, text, grids)?;
    draw_png(path, layout.size, None, |root| {
        map_grids_on(root, title, grids, &layout, text)
    })
}

/// Draws `grids` where `layout` puts them, with `title` and the captions
/// when `text`.
pub(crate) fn map_grids_on<DB: Backend>(
    root: &On<DB>,
    title: &str,
    grids: &[MapGrid<'_>],
    layout: &Layout,
    text: bool,
) -> Result<()> {
    if text {
        let style = ("sans-serif", 22)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(title, &style, (layout.size.0 as i32 / 2, 12))?;
    }
    let frame = RGBColor(170, 170, 170);
    for (grid, place) in grids.iter().zip(&layout.grids) {
        if text {
            let style = ("sans-serif", 17)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw_text(&grid.caption, &style, place.caption)?;
        }
        let (lo, hi) = (f64::from(grid.range.0), f64::from(grid.range.1));
        let p = place.pixel;
        let (w, h) = (grid.cols as i32 * p, grid.rows as i32 * p);
        for (k, &(x0, y0)) in place.maps.iter().enumerate() {
            let divisor = f64::from(grid.divisor(k));
            root.draw(&Rectangle::new(
                [(x0 - 1, y0 - 1), (x0 + w, y0 + h)],
                frame.stroke_width(1),
            ))?;
            for r in 0..grid.rows {
                for c in 0..grid.cols {
                    let v = f64::from(grid.value(r, c, k)) / divisor;
                    let color = grid.color_map.color((v - lo) / (hi - lo));
                    let (x, y) = (x0 + c as i32 * p, y0 + r as i32 * p);
                    // A filled rectangle covers its corners' span less the last row and column.
                    root.draw(&Rectangle::new([(x, y), (x + p, y + p)], color.filled()))?;
                }
            }
            if text && grid.numbered {
                let style = ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(90, 90, 90))
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                root.draw_text(&k.to_string(), &style, (x0 + w / 2, y0 - 2))?;
            }
        }
        color_bar(root, grid, place.bar, text)?;
    }
    Ok(())
}

/// The colour bar of `grid` at `(x, y, width)`: the colour map from the
/// range's low end (left) to its high end (right), round values ticked
/// and labelled under it, and what it measures on its left.
fn color_bar<DB: Backend>(
    root: &On<DB>,
    grid: &MapGrid<'_>,
    (x, y, width): (i32, i32, i32),
    text: bool,
) -> Result<()> {
    let (lo, hi) = (f64::from(grid.range.0), f64::from(grid.range.1));
    for i in 0..width {
        let t = f64::from(i) / f64::from((width - 1).max(1));
        root.draw(&Rectangle::new(
            [(x + i, y), (x + i + 1, y + BAR_HEIGHT)],
            grid.color_map.color(t).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x - 1, y - 1), (x + width, y + BAR_HEIGHT)],
        BLACK.stroke_width(1),
    ))?;
    let axis = Axis::linear_over(lo..hi, false);
    let at = |v: f64| x + ((v - lo) / (hi - lo) * f64::from(width - 1)).round() as i32;
    let mut labels: Vec<(i32, String)> =
        axis.ticks.iter().map(|&t| (at(t), axis.label(t))).collect();
    // The ends too, where no round value is near: what black and white mean.
    for end in [lo, hi] {
        if labels
            .iter()
            .all(|(tx, _)| (tx - at(end)).abs() >= END_LABEL_ROOM)
        {
            labels.push((at(end), significant(end)));
        }
    }
    for (tx, label) in labels {
        root.draw(&PathElement::new(
            [(tx, y + BAR_HEIGHT), (tx, y + BAR_HEIGHT + 4)],
            BLACK.stroke_width(1),
        ))?;
        if text {
            let style = ("sans-serif", 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw_text(&label, &style, (tx, y + BAR_HEIGHT + 6))?;
        }
    }
    if text {
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        root.draw_text(grid.bar_label, &style, (x - 10, y + BAR_HEIGHT / 2))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grid of `channels` maps of `rows × cols`, value `k + (r * cols + c) / 100` for map `k`.
    fn ramp(rows: usize, cols: usize, channels: usize) -> Vec<f32> {
        let mut v = vec![0.0; rows * cols * channels];
        for r in 0..rows {
            for c in 0..cols {
                for k in 0..channels {
                    v[(r * cols + c) * channels + k] = k as f32 + (r * cols + c) as f32 / 100.0;
                }
            }
        }
        v
    }

    fn grid(values: &[f32], rows: usize, cols: usize, channels: usize) -> MapGrid<'_> {
        MapGrid {
            caption: "maps".into(),
            values,
            rows,
            cols,
            channels,
            columns: 8,
            pixel: 10,
            color_map: ColorMap::Grey,
            range: value_range(values),
            per_map: false,
            numbered: true,
            bar_label: "value",
        }
    }

    #[test]
    fn colour_maps_run_from_their_low_to_their_high_end() {
        assert_eq!(ColorMap::Grey.color(0.0), RGBColor(0, 0, 0));
        assert_eq!(ColorMap::Grey.color(1.0), RGBColor(255, 255, 255));
        assert_eq!(ColorMap::Grey.color(0.5), RGBColor(128, 128, 128));
        assert_eq!(ColorMap::Grey.color(-3.0), RGBColor(0, 0, 0));
        assert_eq!(ColorMap::Grey.color(7.0), RGBColor(255, 255, 255));
        assert_eq!(ColorMap::Viridis.color(0.0), RGBColor(68, 1, 84));
        assert_eq!(ColorMap::Viridis.color(0.5), RGBColor(33, 145, 140));
        assert_eq!(ColorMap::Viridis.color(1.0), RGBColor(253, 231, 37));
        // Halfway between two stops.
        assert_eq!(ColorMap::Viridis.color(0.95), RGBColor(221, 227, 38));
        assert_eq!(ColorMap::Viridis.color(f64::NAN), NAN_COLOR);
        // Viridis gets lighter all the way (green channel rises).
        let greens: Vec<u8> = (0..=100)
            .map(|i| ColorMap::Viridis.color(f64::from(i) / 100.0).1)
            .collect();
        assert!(greens.windows(2).all(|w| w[0] <= w[1]), "{greens:?}");
    }

    #[test]
    fn end_labels_have_three_significant_digits() {
        assert_eq!(significant(0.39123), "0.391");
        assert_eq!(significant(-1.5849), "-1.58");
        assert_eq!(significant(12.34), "12.3");
        assert_eq!(significant(250.4), "250");
        assert_eq!(significant(0.0), "0");
        assert_eq!(significant(-0.0001), "-0.000100");
    }

    #[test]
    fn ranges_hold_every_finite_value() {
        assert_eq!(symmetric_range(&[0.2, -0.5, f32::NAN, 0.1]), (-0.5, 0.5));
        assert_eq!(symmetric_range(&[0.0, 0.0]), (-1.0, 1.0));
        assert_eq!(value_range(&[0.0, 2.5, 1.0, f32::INFINITY]), (0.0, 2.5));
        assert_eq!(value_range(&[1.0, 2.0]), (0.0, 2.0));
        assert_eq!(value_range(&[-1.0, 2.0]), (-1.0, 2.0));
        assert_eq!(value_range(&[0.0; 4]), (0.0, 1.0));
        assert_eq!(value_range(&[-3.0; 2]), (-3.0, -2.0));
        assert_eq!(value_range(&[f32::NAN]), (0.0, 1.0));
    }

    #[test]
    fn maps_are_laid_out_in_rows_inside_the_figure_without_overlap() {
        let a = ramp(26, 26, 32);
        let b = ramp(11, 11, 64);
        let mut first = grid(&a, 26, 26, 32);
        first.pixel = 3;
        let mut second = grid(&b, 11, 11, 64);
        second.columns = 16;
        second.pixel = 100; // far too wide: shrunk to fit
        let layout = layout(900, true, &[first, second]).unwrap();
        let (w, h) = (layout.size.0 as i32, layout.size.1 as i32);
        assert_eq!(layout.grids[0].pixel, 3);
        let p = layout.grids[1].pixel;
        assert_eq!(p, (900 - 2 * MARGIN - 15 * GAP) / (16 * 11));
        let mut boxes = Vec::new();
        for (g, (rows, cols)) in layout.grids.iter().zip([(26, 26), (11, 11)]) {
            for &(x, y) in &g.maps {
                boxes.push((x, y, x + cols * g.pixel, y + rows * g.pixel));
            }
            // Row-major: map 1 right of map 0, map `columns` under it.
            assert_eq!(g.maps[1].1, g.maps[0].1);
            assert!(g.maps[1].0 > g.maps[0].0);
            assert!(g.caption.1 < g.maps[0].1);
            assert!(g.bar.1 > g.maps.last().unwrap().1 + rows * g.pixel);
            assert!(g.bar.0 >= 0 && g.bar.0 + g.bar.2 <= w);
        }
        assert_eq!(layout.grids[0].maps[8].0, layout.grids[0].maps[0].0);
        assert_eq!(layout.grids[1].maps[16].0, layout.grids[1].maps[0].0);
        assert!(layout.grids[1].caption.1 > layout.grids[0].bar.1);
        for (i, a) in boxes.iter().enumerate() {
            assert!(
                a.0 >= MARGIN / 2 && a.2 <= w - MARGIN / 2 && a.1 > 0 && a.3 < h,
                "{a:?}"
            );
            for b in &boxes[i + 1..] {
                let apart = a.2 <= b.0 || b.2 <= a.0 || a.3 <= b.1 || b.3 <= a.1;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn a_grid_of_the_wrong_size_or_range_is_refused_by_caption() {
        let v = ramp(3, 3, 2);
        let mut g = grid(&v, 3, 3, 3);
        g.caption = "conv2d".into();
        let e = layout(500, false, &[g]).unwrap_err().to_string();
        assert_eq!(e, "grid \"conv2d\": 18 values for 3 maps of 3x3");
        let mut g = grid(&v, 3, 3, 2);
        g.range = (1.0, 1.0);
        let e = layout(500, false, &[g]).unwrap_err().to_string();
        assert!(
            e.contains("the colour range 1..1 is not finite and increasing"),
            "{e}"
        );
    }

    /// Every value is drawn as a `pixel`-sized square of its colour, where
    /// the layout puts it, and the colour bar runs from the low end to the high end.
    #[test]
    fn each_value_is_drawn_in_its_colour_where_the_layout_puts_it() {
        let values = ramp(3, 4, 5);
        let mut g = grid(&values, 3, 4, 5);
        g.columns = 3;
        g.color_map = ColorMap::Viridis;
        g.range = (0.0, 5.0);
        let grids = [g];
        let layout = layout(300, false, &grids).unwrap();
        let (w, h) = layout.size;
        let mut buffer = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            map_grids_on(&root, "t", &grids, &layout, false).unwrap();
            root.present().unwrap();
        }
        let at = |x: i32, y: i32| {
            let i = ((y as u32 * w + x as u32) * 3) as usize;
            RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
        };
        let place = &layout.grids[0];
        let p = place.pixel;
        assert_eq!(p, 10);
        for k in 0..5 {
            let (x0, y0) = place.maps[k];
            for r in 0..3 {
                for c in 0..4 {
                    let expected =
                        ColorMap::Viridis.color(f64::from(grids[0].value(r, c, k)) / 5.0);
                    let (x, y) = (x0 + c as i32 * p, y0 + r as i32 * p);
                    for (dx, dy) in [
                        (0, 0),
                        (p - 1, 0),
                        (0, p - 1),
                        (p - 1, p - 1),
                        (p / 2, p / 2),
                    ] {
                        assert_eq!(at(x + dx, y + dy), expected, "map {k} ({r}, {c})");
                    }
                }
            }
        }
        let (bx, by, bw) = place.bar;
        assert_eq!(at(bx, by + 2), ColorMap::Viridis.color(0.0));
        assert_eq!(at(bx + bw - 1, by + 2), ColorMap::Viridis.color(1.0));
    }

    /// With `per_map`, each map's largest magnitude reaches an end of the
    /// colour map, however small the map's values are.
    #[test]
    fn per_map_scales_divide_each_map_by_its_largest_magnitude() {
        // Map 0 in [-0.01, 0.02], map 1 in [-4, 2], map 2 all zero.
        let values = [-0.01, -4.0, 0.0, 0.02, 2.0, 0.0, 0.005, 1.0, 0.0];
        let mut g = grid(&values, 1, 3, 3);
        g.range = (-1.0, 1.0);
        g.per_map = true;
        assert_eq!([g.divisor(0), g.divisor(1), g.divisor(2)], [0.02, 4.0, 1.0]);
        let grids = [g];
        let layout = layout(300, false, &grids).unwrap();
        let (w, h) = layout.size;
        let mut buffer = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            map_grids_on(&root, "t", &grids, &layout, false).unwrap();
            root.present().unwrap();
        }
        let place = &layout.grids[0];
        let at = |k: usize, c: usize| {
            let (x0, y0) = place.maps[k];
            let (x, y) = (x0 + c as i32 * place.pixel + 1, y0 + 1);
            let i = ((y as u32 * w + x as u32) * 3) as usize;
            RGBColor(buffer[i], buffer[i + 1], buffer[i + 2])
        };
        let grey = |t: f64| ColorMap::Grey.color(t);
        // t = (v / divisor + 1) / 2.
        assert_eq!(at(0, 0), grey(0.25));
        assert_eq!(at(0, 1), grey(1.0));
        assert_eq!(at(0, 2), grey(0.625));
        assert_eq!(at(1, 0), grey(0.0));
        assert_eq!(at(1, 1), grey(0.75));
        assert_eq!(at(2, 0), grey(0.5));
    }
}
