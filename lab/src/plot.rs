//! Small raster plots for the evaluation's PNGs (docs/): line and scatter panels with ticks and
//! labels drawn in a built-in 5 x 7 pixel font, so the plots need no font file and no plotting
//! crate. Text is upper case (lower-case letters are drawn as capitals).

/// An RGBA image with a white ground.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

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

/// Pixel rows of each glyph, top first; bit 4 is the leftmost column.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [30, 17, 17, 17, 17, 17, 30],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 10, 4, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ',' => [0, 0, 0, 0, 12, 4, 8],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        '=' => [0, 0, 31, 0, 31, 0, 0],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        '(' => [2, 4, 8, 8, 8, 4, 2],
        ')' => [8, 4, 2, 2, 2, 4, 8],
        '/' => [0, 1, 2, 4, 8, 16, 0],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '*' => [0, 17, 10, 4, 10, 17, 0],
        '>' => [8, 4, 2, 1, 2, 4, 8],
        '<' => [2, 4, 8, 16, 8, 4, 2],
        _ => [0; 7],
    }
}

/// Width of `text` in pixels at `scale` (6 columns per character, the last one's gap dropped).
pub fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 6).saturating_sub(1) * scale
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            rgba: [255u8, 255, 255, 255].repeat(width * height),
        }
    }

    /// Writes the canvas as an RGBA PNG.
    pub fn write_png(&self, path: &std::path::Path) -> Result<(), guided_ddpm::Error> {
        guided_ddpm::grid::write_png(path, self.width, self.height, &self.rgba, 1)
    }

    pub fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 4 * (y as usize * self.width + x as usize);
            self.rgba[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.set(x, y, c);
            }
        }
    }

    /// A square of `colour` with corner (x, y) and side `size` + 1, white inside but for a
    /// 2-pixel rim: a key's swatch for hollow markers.
    pub fn hollow_square(&mut self, x: i64, y: i64, size: i64, colour: Rgb) {
        self.fill(x, y, x + size, y + size, colour);
        self.fill(x + 2, y + 2, x + size - 2, y + size - 2, WHITE);
    }

    /// A line `width` pixels thick (Bresenham's, with a square pen).
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb, width: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        let r = (width - 1) / 2;
        loop {
            self.fill(x - r, y - r, x - r + width - 1, y - r + width - 1, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// `text` with its top-left corner at (x, y), each font pixel `scale` pixels square.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: usize) {
        let s = scale as i64;
        for (i, ch) in text.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (16 >> col) != 0 {
                        let (px, py) = (x + (i as i64 * 6 + col) * s, y + row as i64 * s);
                        self.fill(px, py, px + s - 1, py + s - 1, c);
                    }
                }
            }
        }
    }

    /// `text` drawn bottom to top (for a y-axis title), its top-left corner at (x, y).
    pub fn text_up(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: usize) {
        let s = scale as i64;
        let len = text.chars().count() as i64;
        for (i, ch) in text.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (16 >> col) != 0 {
                        // Rotated a quarter turn anticlockwise.
                        let (px, py) = (x + row as i64 * s, y + ((len - i as i64) * 6 - col) * s);
                        self.fill(px, py, px + s - 1, py + s - 1, c);
                    }
                }
            }
        }
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
    fn text_is_drawn_where_asked_and_nowhere_else() {
        let mut c = Canvas::new(20, 10);
        c.text(1, 1, "1", BLACK, 1);
        let dark: Vec<(usize, usize)> = (0..200)
            .filter(|i| c.rgba[4 * i] == 0)
            .map(|i| (i % 20, i / 20))
            .collect();
        // '1': rows 4, 12, 4, 4, 4, 4, 14 (bit 4 leftmost) from (1, 1).
        assert_eq!(dark.len(), 1 + 2 + 1 + 1 + 1 + 1 + 3);
        assert!(dark.contains(&(3, 1)) && dark.contains(&(2, 2)) && dark.contains(&(4, 7)));
        assert!(dark
            .iter()
            .all(|&(x, y)| (2..=4).contains(&x) && (1..=7).contains(&y)));
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
