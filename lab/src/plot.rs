//! The evaluation's plots (docs/), drawn by plotters as SVG: line and scatter panels with
//! ticks, labels placed apart from each other, and legends. Text is set in the viewer's
//! monospace font at 10 px (6 px a character, [`text_width`]), so label placement can measure
//! it without a font file.

use plotters::prelude::{
    DrawingArea, FontDesc, FontFamily, FontStyle, FontTransform, IntoDrawingArea, PathElement,
    RGBColor, Rectangle, SVGBackend, ShapeStyle, Text,
};
use plotters::style::Color;

pub type Rgb = [u8; 3];
pub const BLACK: Rgb = [0, 0, 0];
pub const WHITE: Rgb = [255, 255, 255];
pub const GREY: Rgb = [170, 170, 170];
pub const LIGHT: Rgb = [225, 225, 225];
pub const BLUE: Rgb = [31, 100, 180];
pub const ORANGE: Rgb = [230, 120, 20];
pub const RED: Rgb = [200, 30, 30];
pub const GREEN: Rgb = [40, 150, 60];
pub const PURPLE: Rgb = [120, 60, 160];

/// Width of a character of text at scale 1, in pixels: monospace at 10 px is 0.6 em wide.
const CHAR_WIDTH: usize = 6;

/// Width of `text` in pixels at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * CHAR_WIDTH * scale
}

/// One thing drawn on a [`Canvas`], in pixel coordinates.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    /// The pixels from (x0, y0) to (x1, y1), both included.
    Fill([i64; 4], Rgb),
    Line((i64, i64), (i64, i64), Rgb, i64),
    /// Text with its top-left corner at the point; `up`: read bottom to top, its box's
    /// top-left corner at the point.
    Text {
        at: (i64, i64),
        text: String,
        colour: Rgb,
        scale: usize,
        up: bool,
    },
}

/// A plot in the making: a white ground and the shapes drawn on it, in order, rendered by
/// plotters' SVG backend ([`Canvas::to_svg`]).
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    shapes: Vec<Shape>,
}

fn colour(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            shapes: Vec::new(),
        }
    }

    /// The canvas as an SVG document.
    pub fn to_svg(&self) -> Result<String, guided_ddpm::Error> {
        let failed = |e: String| guided_ddpm::Error::Data(format!("drawing a plot: {e}"));
        let mut svg = String::new();
        {
            let size = (self.width as u32, self.height as u32);
            let root: DrawingArea<SVGBackend, _> =
                SVGBackend::with_string(&mut svg, size).into_drawing_area();
            root.fill(&colour(WHITE))
                .map_err(|e| failed(e.to_string()))?;
            let xy = |(x, y): (i64, i64)| (x as i32, y as i32);
            for shape in &self.shapes {
                let drawn = match shape {
                    Shape::Fill([x0, y0, x1, y1], c) => root.draw(&Rectangle::new(
                        [xy((*x0, *y0)), xy((x1 + 1, y1 + 1))],
                        colour(*c).filled(),
                    )),
                    Shape::Line(a, b, c, width) => root.draw(&PathElement::new(
                        vec![xy(*a), xy(*b)],
                        ShapeStyle::from(colour(*c)).stroke_width(*width as u32),
                    )),
                    Shape::Text {
                        at,
                        text,
                        colour: c,
                        scale,
                        up,
                    } => {
                        // plotters' SVG text is `size / 1.24` px: 10 px per scale.
                        let font = FontDesc::new(
                            FontFamily::Monospace,
                            12.4 * *scale as f64,
                            FontStyle::Normal,
                        );
                        let (font, at) = match up {
                            // Turned a quarter anticlockwise about its start, which is then
                            // the bottom-left corner of the box.
                            true => (
                                font.transform(FontTransform::Rotate270),
                                (at.0, at.1 + text_width(text, *scale) as i64),
                            ),
                            false => (font, *at),
                        };
                        root.draw(&Text::new(text.clone(), xy(at), font.color(&colour(*c))))
                    }
                };
                drawn.map_err(|e| failed(e.to_string()))?;
            }
            root.present().map_err(|e| failed(e.to_string()))?;
        }
        Ok(svg)
    }

    /// Writes the canvas as an SVG file, atomically.
    pub fn write_svg(&self, path: &std::path::Path) -> Result<(), guided_ddpm::Error> {
        guided_ddpm::atomic::write(path, self.to_svg()?.as_bytes())
    }

    pub fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        let (x0, x1, y0, y1) = (x0.min(x1), x0.max(x1), y0.min(y1), y0.max(y1));
        self.shapes.push(Shape::Fill([x0, y0, x1, y1], c));
    }

    /// A square of `colour` with corner (x, y) and side `size` + 1, white inside but for a
    /// 2-pixel rim: a key's swatch for hollow markers.
    pub fn hollow_square(&mut self, x: i64, y: i64, size: i64, colour: Rgb) {
        self.fill(x, y, x + size, y + size, colour);
        self.fill(x + 2, y + 2, x + size - 2, y + size - 2, WHITE);
    }

    /// A line `width` pixels thick.
    pub fn line(&mut self, a: (i64, i64), b: (i64, i64), c: Rgb, width: i64) {
        self.shapes.push(Shape::Line(a, b, c, width));
    }

    /// `text` with its top-left corner at (x, y), 10 px tall per `scale`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: usize) {
        self.push_text((x, y), text, c, scale, false);
    }

    /// `text` read bottom to top (for a y-axis title), the top-left corner of its box at (x, y).
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: usize) {
        self.push_text((x, y), text, c, scale, true);
    }

    fn push_text(&mut self, at: (i64, i64), text: &str, colour: Rgb, scale: usize, up: bool) {
        self.shapes.push(Shape::Text {
            at,
            text: text.into(),
            colour,
            scale,
            up,
        });
    }
}

/// How one axis maps values to pixels: linear or logarithmic (base 10) between `lo` and `hi`.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Axis {
    /// An axis covering `values` with a margin of 5% of the range on each side (log: of the
    /// decades); zero-width ranges are widened.
    pub fn covering(values: impl IntoIterator<Item = f64>, log: bool) -> Axis {
        let (mut lo, mut hi) = values
            .into_iter()
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .map(|v| if log { v.log10() } else { v })
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-9 {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        let pad = 0.05 * (hi - lo);
        let (lo, hi) = (lo - pad, hi + pad);
        match log {
            true => Axis {
                lo: 10f64.powf(lo),
                hi: 10f64.powf(hi),
                log,
            },
            false => Axis { lo, hi, log },
        }
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        match self.log {
            true => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
            false => (v - self.lo) / (self.hi - self.lo),
        }
    }

    /// Tick values inside the axis: 1, 2 and 5 times powers of ten, at least about `n` of them on
    /// a linear axis; on a log axis each power of ten, with 2 and 5 when the axis spans at most
    /// three decades, and where that gives fewer than three ticks (an axis narrower than a
    /// factor of about 2.5), the linear axis's round numbers instead.
    pub fn ticks(&self, n: usize) -> Vec<f64> {
        if self.log {
            let decades = self.log_ticks();
            if decades.len() >= 3 {
                return decades;
            }
            let linear = Axis {
                log: false,
                ..*self
            };
            return linear.ticks(n);
        }
        let raw = (self.hi - self.lo) / n.max(1) as f64;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw / 1.5)
            .unwrap_or(10.0 * mag);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }

    fn log_ticks(&self) -> Vec<f64> {
        let (a, b) = (
            self.lo.log10().floor() as i32,
            self.hi.log10().ceil() as i32,
        );
        let steps: &[f64] = if b - a <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
        (a..=b)
            .flat_map(|e| steps.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= self.lo && *v <= self.hi)
            .collect()
    }
}

/// A tick label: no more digits than the value needs (0.05, 0.12, 2, 12000; at most 4 decimals).
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let from = (-(v.abs().log10().floor()) as i64).clamp(0, 4) as usize;
    (from..=4)
        .map(|d| format!("{v:.d$}"))
        .find(|s| (s.parse::<f64>().unwrap_or(f64::NAN) - v).abs() <= 1e-9 * v.abs())
        .unwrap_or_else(|| format!("{v:.4}"))
}

/// A panel of a canvas: its plot area in pixels and the two axes.
pub struct Panel {
    pub left: i64,
    pub top: i64,
    pub width: i64,
    pub height: i64,
    pub x: Axis,
    pub y: Axis,
}

impl Panel {
    /// The pixel of the value pair (x, y).
    pub fn at(&self, x: f64, y: f64) -> (i64, i64) {
        (
            self.left + (self.x.frac(x) * self.width as f64).round() as i64,
            self.top + self.height - (self.y.frac(y) * self.height as f64).round() as i64,
        )
    }

    /// Grid lines, ticks with labels, the frame, the title and the axis titles.
    pub fn draw_axes(&self, c: &mut Canvas, title: &str, x_title: &str, y_title: &str) {
        let (l, t, w, h) = (self.left, self.top, self.width, self.height);
        for v in self.x.ticks(5) {
            let (px, _) = self.at(v, self.y.lo);
            c.line((px, t), (px, t + h), LIGHT, 1);
            let label = tick_label(v);
            c.text(
                px - text_width(&label, 1) as i64 / 2,
                t + h + 6,
                &label,
                BLACK,
                1,
            );
        }
        for v in self.y.ticks(5) {
            let (_, py) = self.at(self.x.lo, v);
            c.line((l, py), (l + w, py), LIGHT, 1);
            let label = tick_label(v);
            c.text(
                l - 6 - text_width(&label, 1) as i64,
                py - 3,
                &label,
                BLACK,
                1,
            );
        }
        c.line((l, t), (l + w, t), BLACK, 1);
        c.line((l, t + h), (l + w, t + h), BLACK, 1);
        c.line((l, t), (l, t + h), BLACK, 1);
        c.line((l + w, t), (l + w, t + h), BLACK, 1);
        c.text(l, t - 22, title, BLACK, 2);
        c.text(
            l + w / 2 - text_width(x_title, 1) as i64 / 2,
            t + h + 20,
            x_title,
            BLACK,
            1,
        );
        c.text_up(
            l - 52,
            t + h / 2 - text_width(y_title, 1) as i64 / 2,
            y_title,
            BLACK,
            1,
        );
    }

    /// A polyline through the points (in value space), clipped to nothing: points outside the
    /// axes are drawn where they fall.
    pub fn polyline(&self, c: &mut Canvas, points: &[(f64, f64)], colour: Rgb, width: i64) {
        for pair in points.windows(2) {
            c.line(
                self.at(pair[0].0, pair[0].1),
                self.at(pair[1].0, pair[1].1),
                colour,
                width,
            );
        }
    }

    /// A filled square marker of side `size` at (x, y).
    pub fn marker(&self, c: &mut Canvas, x: f64, y: f64, colour: Rgb, size: i64) {
        let (px, py) = self.at(x, y);
        c.fill(
            px - size / 2,
            py - size / 2,
            px + size / 2,
            py + size / 2,
            colour,
        );
    }

    /// A legend entry (a short line and its text) below the panel's axis title, in column `col`
    /// (180 px wide) of line `line` (outside the plot, so it never hides a point).
    pub fn legend(&self, c: &mut Canvas, col: usize, line: usize, text: &str, colour: Rgb) {
        let x = self.left + col as i64 * 180;
        let y = self.legend_y(line);
        c.fill(x, y + 2, x + 16, y + 4, colour);
        c.text(x + 22, y, text, BLACK, 1);
    }

    /// The top of legend line `line` under the panel.
    pub fn legend_y(&self, line: usize) -> i64 {
        self.top + self.height + 38 + line as i64 * 14
    }
}

/// A rectangle of pixels, edges included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 <= o.x1 && o.x0 <= self.x1 && self.y0 <= o.y1 && o.y0 <= self.y1
    }

    pub fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }
}

/// Height of a line of text at scale 1.
pub const TEXT_HEIGHT: i64 = 7;

/// Where the label of each point goes (the top-left corner of its text at scale 1), so that
/// no label overlaps another label or any point's marker (a square of side `marker`) and each
/// stays inside `bounds`. Labels are placed in the order given, each at the first free place
/// of: right of its point, left of it, then right and left moved up or down in steps of 10
/// pixels, up to 90 (`label_leader` draws the line that then ties label to point); so put
/// the labels that matter most first. A label with no free place goes right of its point.
pub fn place_labels(
    points: &[(i64, i64)],
    widths: &[i64],
    marker: i64,
    bounds: Rect,
) -> Vec<(i64, i64)> {
    let gap = marker / 2 + 4;
    let mut taken: Vec<Rect> = points
        .iter()
        .map(|&(x, y)| Rect {
            x0: x - marker / 2 - 1,
            y0: y - marker / 2 - 1,
            x1: x + marker / 2 + 1,
            y1: y + marker / 2 + 1,
        })
        .collect();
    let mut out = Vec::with_capacity(points.len());
    for (&(px, py), &w) in points.iter().zip(widths) {
        let rect = |x: i64, y: i64| Rect {
            x0: x - 1,
            y0: y - 1,
            x1: x + w,
            y1: y + TEXT_HEIGHT,
        };
        let right = px + gap;
        let left = px - gap - w;
        let top = py - TEXT_HEIGHT / 2;
        let candidates = std::iter::once(0)
            .chain((1..=9).flat_map(|k| [-10 * k, 10 * k]))
            .flat_map(|dy| [(right, top + dy), (left, top + dy)]);
        let mut chosen = (right, top);
        for (x, y) in candidates {
            let r = rect(x, y);
            if r.inside(&bounds) && !taken.iter().any(|t| t.overlaps(&r)) {
                chosen = (x, y);
                break;
            }
        }
        taken.push(rect(chosen.0, chosen.1));
        out.push(chosen);
    }
    out
}

/// A thin line from a point to its label when `place_labels` moved the label off the point's
/// row: to the label's nearer end, at the text's middle height.
pub fn label_leader(
    c: &mut Canvas,
    (px, py): (i64, i64),
    (lx, ly): (i64, i64),
    width: i64,
    colour: Rgb,
) {
    let mid = ly + TEXT_HEIGHT / 2;
    if (mid - py).abs() <= TEXT_HEIGHT / 2 {
        return;
    }
    let end = if lx > px { lx - 2 } else { lx + width + 1 };
    c.line((px, py), (end, mid), colour, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_numbers_inside_the_axis() {
        let a = Axis {
            lo: 0.013,
            hi: 0.094,
            log: false,
        };
        let t = a.ticks(5);
        let want = [0.02, 0.04, 0.06, 0.08];
        assert_eq!(t.len(), want.len(), "{t:?}");
        for (got, want) in t.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{t:?}");
        }
        assert_eq!(tick_label(0.06), "0.06");
        assert_eq!(tick_label(12000.0), "12000");
    }

    #[test]
    fn log_axes_place_decades_evenly() {
        let a = Axis {
            lo: 0.1,
            hi: 10.0,
            log: true,
        };
        assert!((a.frac(1.0) - 0.5).abs() < 1e-12);
        assert_eq!(a.ticks(5), vec![0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
        // Narrower than 0.1..0.25: round numbers as on a linear axis, still placed by log.
        let narrow = Axis {
            lo: 0.075,
            hi: 0.17,
            log: true,
        };
        let got = narrow.ticks(5);
        let want = [0.08, 0.1, 0.12, 0.14, 0.16];
        assert_eq!(got.len(), want.len(), "{got:?}");
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12),
            "{got:?}"
        );
        let labels: Vec<String> = got.iter().map(|v| tick_label(*v)).collect();
        assert_eq!(labels, ["0.08", "0.1", "0.12", "0.14", "0.16"]);
        let wide = Axis::covering([0.01, 100.0], true);
        assert!(wide.lo < 0.01 && wide.hi > 100.0);
        assert_eq!(
            wide.ticks(5).len(),
            5,
            "one tick per decade: {:?}",
            wide.ticks(5)
        );
    }

    #[test]
    fn the_svg_holds_each_shape_where_it_was_drawn() {
        let mut c = Canvas::new(200, 100);
        c.fill(10, 20, 19, 24, RED);
        c.line((0, 50), (199, 50), BLUE, 2);
        c.text(30, 40, "FD < 0.1", BLACK, 1);
        c.text_up(5, 10, "judged %", BLACK, 1);
        let svg = c.to_svg().unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains(r##"width="200" height="100""##),
            "{svg}"
        );
        // The fill covers its last pixels: 10..=19 is 10 wide.
        assert!(
            svg.contains(
                r##"<rect x="10" y="20" width="10" height="5" opacity="1" fill="#C81E1E""##
            ),
            "{svg}"
        );
        assert!(svg.contains(r##"<polyline fill="none" opacity="1" stroke="#1F64B4" stroke-width="2" points="0,50 199,50 "##), "{svg}");
        // Escaped, at its top-left corner, 10 px monospace.
        assert!(svg.contains(r##"x="30" y="40" dy="0.76em" text-anchor="start" font-family="monospace" font-size="10""##), "{svg}");
        assert!(svg.contains("FD &lt; 0.1"), "{svg}");
        // Read upwards from the bottom of its box: 8 characters, 48 px.
        assert!(svg.contains(r##"transform="rotate(270, 5, 58)""##), "{svg}");
    }

    #[test]
    fn labels_of_a_cluster_of_points_neither_overlap_nor_cover_a_point() {
        // Six points within a few pixels of each other, as the settings near the front sit.
        let points = [
            (200, 100),
            (203, 101),
            (206, 99),
            (201, 104),
            (209, 102),
            (205, 96),
        ];
        let widths = [131, 65, 59, 83, 83, 77];
        let bounds = Rect {
            x0: 0,
            y0: 0,
            x1: 400,
            y1: 300,
        };
        let at = place_labels(&points, &widths, 6, bounds);
        let rects: Vec<Rect> = at
            .iter()
            .zip(widths)
            .map(|(&(x, y), w)| Rect {
                x0: x,
                y0: y,
                x1: x + w - 1,
                y1: y + TEXT_HEIGHT - 1,
            })
            .collect();
        for (i, a) in rects.iter().enumerate() {
            assert!(a.inside(&bounds), "label {i} at {a:?}");
            for b in &rects[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} and {b:?} overlap: {at:?}");
            }
            for &(x, y) in &points {
                let m = Rect {
                    x0: x - 3,
                    y0: y - 3,
                    x1: x + 3,
                    y1: y + 3,
                };
                assert!(!a.overlaps(&m), "{a:?} covers the point at ({x}, {y})");
            }
        }
        // The first label keeps its point's row: left of it, since the other points sit right.
        assert_eq!(at[0], (200 - 7 - 131, 100 - 3));
        // A lone point's label goes right of it.
        let lone = place_labels(&[(100, 50)], &[60], 6, bounds);
        assert_eq!(lone[0], (100 + 7, 50 - 3));
        // Near the right edge a label goes left of its point.
        let edge = place_labels(&[(390, 50)], &[60], 6, bounds);
        assert_eq!(edge[0], (390 - 7 - 60, 50 - 3));
    }
}
