//! Any grey image as a 28 x 28 digit the way MNIST's digits were made (LeCun et al. 1998, "The
//! MNIST database"): light ink on a dark ground; the ink's bounding box scaled to fit a 20 x 20 box,
//! its aspect kept and anti-aliased; then placed so that its centre of mass sits at the centre of
//! the 28 x 28 field. `sample --init` and `--mask` read images through it.

use crate::nn::SIDE;
use crate::Error;

/// The side of the box the ink is scaled to fit.
const BOX: usize = 20;
/// Subsamples per target pixel along each axis: the mean of 8 x 8 bilinear reads of the source,
/// so a shrink of up to about 8x averages every source pixel it covers.
const SUB: usize = 8;

/// Which way round an image's ink is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Ink {
    /// Read it from the border: a light border is paper, so the ink is dark.
    Auto,
    /// Light ink on a dark ground, as MNIST's digits and the samples are.
    Light,
    /// Dark ink on a light ground, as on paper.
    Dark,
}

/// How an image of `width` x `height` maps onto the 28 x 28 field: found once from the image
/// ([`Fit::of`]) and applied to it and to a mask of the same size ([`Fit::apply`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    width: usize,
    height: usize,
    /// The image as it is, 28 x 28 and light on dark: no resampling at all.
    identity: bool,
    /// Whether the ink is dark (the image is inverted before anything else).
    invert: bool,
    /// The ground and the peak ink after inversion: stretched to 0 and 255, so paper that is not
    /// white becomes MNIST's black ground.
    levels: [f64; 2],
    /// The ink's bounding box in source pixels: left, top, width, height.
    ink_box: [f64; 4],
    /// Source pixels per field pixel.
    scale: f64,
    /// Where the scaled box's top-left corner lands in the field (whole pixels).
    at: [i64; 2],
}

impl Fit {
    /// The fit of `grey` (`width` x `height` bytes). The ground is the mean of the border; ink is
    /// what stands more than 20% of the way from it to the brightest ink. An image without ink (no
    /// pixel 20% of the full range from its ground) is refused with a sentence.
    pub fn of(width: usize, height: usize, grey: &[u8], ink: Ink) -> Result<Fit, Error> {
        assert_eq!(grey.len(), width * height, "one byte per pixel");
        let invert = match ink {
            Ink::Light => false,
            Ink::Dark => true,
            Ink::Auto => border_mean(width, height, grey) > 127.0,
        };
        if (width, height) == (SIDE, SIDE) && !invert {
            return Ok(Fit::identity(width, height));
        }
        Fit::fitted(width, height, grey, invert)
    }

    /// The fit of a drawing on the page's 28 x 28 pad (light ink on black, [`Fit::image`] of it
    /// is what "Edit drawing" starts from): unlike [`of`](Self::of), which takes a 28 x 28
    /// light-on-dark image as it is, the ink is always scaled into the 20 x 20 box and centred by
    /// its mass, as MNIST's digits were, wherever and however large it was drawn.
    pub fn drawing(grey: &[u8]) -> Result<Fit, Error> {
        if grey.len() != SIDE * SIDE {
            return Err(Error::Setting(format!(
                "a drawing is {SIDE} x {SIDE} pixels, got {} values",
                grey.len()
            )));
        }
        Fit::fitted(SIDE, SIDE, grey, false)
    }

    fn identity(width: usize, height: usize) -> Fit {
        Fit {
            width,
            height,
            identity: true,
            invert: false,
            levels: [0.0, 255.0],
            ink_box: [0.0, 0.0, SIDE as f64, SIDE as f64],
            scale: 1.0,
            at: [0, 0],
        }
    }

    /// The ink's box of `grey` scaled into the 20 x 20 box and centred by mass (`invert`: the ink
    /// is dark).
    fn fitted(width: usize, height: usize, grey: &[u8], invert: bool) -> Result<Fit, Error> {
        let value = |i: usize| if invert { 255 - grey[i] } else { grey[i] };
        let border = border_mean(width, height, grey);
        let ground = if invert { 255.0 - border } else { border };
        let peak = (0..grey.len()).map(value).max().unwrap_or(0) as f64;
        if peak - ground < 0.2 * 255.0 {
            return Err(Error::Setting(
                "the image has no ink: no pixel stands out from its ground by 20% of the range"
                    .into(),
            ));
        }
        let threshold = ground + 0.2 * (peak - ground);
        let (mut left, mut top, mut right, mut bottom) = (width, height, 0, 0);
        for y in 0..height {
            for x in 0..width {
                if value(y * width + x) as f64 > threshold {
                    left = left.min(x);
                    top = top.min(y);
                    right = right.max(x + 1);
                    bottom = bottom.max(y + 1);
                }
            }
        }
        let (bw, bh) = ((right - left) as f64, (bottom - top) as f64);
        let scale = bw.max(bh) / BOX as f64;
        let mut fit = Fit {
            width,
            height,
            identity: false,
            invert,
            levels: [ground, peak],
            ink_box: [left as f64, top as f64, bw, bh],
            scale,
            at: [0, 0],
        };
        // Centre of mass of the scaled ink, placed at the field's centre.
        let (tw, th) = fit.box_size();
        let scaled = fit.scaled(grey, true);
        let (mut mass, mut mx, mut my) = (0.0, 0.0, 0.0);
        for y in 0..th {
            for x in 0..tw {
                let v = scaled[y * tw + x] as f64;
                mass += v;
                mx += v * (x as f64 + 0.5);
                my += v * (y as f64 + 0.5);
            }
        }
        let centre = SIDE as f64 / 2.0;
        let place =
            |com: f64, size: usize| ((centre - com).round() as i64).clamp(0, (SIDE - size) as i64);
        fit.at = [place(mx / mass, tw), place(my / mass, th)];
        Ok(fit)
    }

    /// The scaled box's width and height in field pixels (the longer side 20).
    fn box_size(&self) -> (usize, usize) {
        let [_, _, bw, bh] = self.ink_box;
        let side = |v: f64| ((v / self.scale).round() as usize).clamp(1, BOX);
        (side(bw), side(bh))
    }

    /// The ink box scaled to [`box_size`](Self::box_size); with `levels`, inverted where the ink
    /// is dark and stretched from the ground (0) to the peak ink (255).
    fn scaled(&self, grey: &[u8], levels: bool) -> Vec<u8> {
        let (tw, th) = self.box_size();
        let [left, top, bw, bh] = self.ink_box;
        // Field pixels per box side may round; spread the box over exactly tw x th.
        let (sx, sy) = (bw / tw as f64, bh / th as f64);
        let mut out = Vec::with_capacity(tw * th);
        for y in 0..th {
            for x in 0..tw {
                let mut sum = 0.0;
                for j in 0..SUB {
                    for i in 0..SUB {
                        let u = left + (x as f64 + (i as f64 + 0.5) / SUB as f64) * sx;
                        let v = top + (y as f64 + (j as f64 + 0.5) / SUB as f64) * sy;
                        sum += self.bilinear(grey, u - 0.5, v - 0.5, levels);
                    }
                }
                let mean = sum / (SUB * SUB) as f64;
                let v = match levels {
                    true => {
                        let [ground, peak] = self.levels;
                        (mean - ground) * 255.0 / (peak - ground)
                    }
                    false => mean,
                };
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
        out
    }

    /// The source at (u, v) in pixel-centre coordinates, bilinear, edges clamped; with `levels`,
    /// inverted where the ink is dark.
    fn bilinear(&self, grey: &[u8], u: f64, v: f64, levels: bool) -> f64 {
        let at = |x: i64, y: i64| {
            let x = x.clamp(0, self.width as i64 - 1) as usize;
            let y = y.clamp(0, self.height as i64 - 1) as usize;
            let g = grey[y * self.width + x] as f64;
            if levels && self.invert {
                255.0 - g
            } else {
                g
            }
        };
        let (x0, y0) = (u.floor(), v.floor());
        let (fx, fy) = (u - x0, v - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
        let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// The image this fit was found on as a 28 x 28 digit: light ink on a black ground.
    pub fn image(&self, grey: &[u8]) -> Vec<u8> {
        self.place(grey, true)
    }

    /// A mask of the image's size (white = keep) moved and scaled as the image is, its values
    /// as they are; a 28 x 28 mask is taken as it is.
    pub fn mask(&self, width: usize, height: usize, grey: &[u8]) -> Result<Vec<u8>, Error> {
        if (width, height) == (SIDE, SIDE) {
            return Ok(grey.to_vec());
        }
        if (width, height) != (self.width, self.height) {
            return Err(Error::Setting(format!(
                "the mask must be the size of the image it masks ({} x {}), or {SIDE} x {SIDE}; \
                 got {width} x {height}",
                self.width, self.height
            )));
        }
        Ok(self.place(grey, false))
    }

    fn place(&self, grey: &[u8], levels: bool) -> Vec<u8> {
        if self.identity {
            return grey.to_vec();
        }
        let (tw, th) = self.box_size();
        let scaled = self.scaled(grey, levels);
        let mut out = vec![0u8; SIDE * SIDE];
        for y in 0..th {
            for x in 0..tw {
                let (fx, fy) = (self.at[0] as usize + x, self.at[1] as usize + y);
                out[fy * SIDE + fx] = scaled[y * tw + x];
            }
        }
        out
    }
}

/// Where MNIST's digits have their centre of mass, (row, column) in pixel indices: measured on
/// the 1,000 held-out digits, (14.00, 14.01) with a spread of 0.3 pixels in each, the spread of
/// rounding to whole pixels (`guided-ddpm-lab probe`, docs/realism/probe.md).
pub const MASS_CENTRE: (f64, f64) = (14.0, 14.0);

/// Digits in [-1, 1] (`[N, 28, 28]` row-major, -1 black) each moved by whole pixels so that its
/// ink's centre of mass, with ink (x + 1) / 2, lands on [`MASS_CENTRE`], as MNIST's digits were
/// placed; what moves past an edge is dropped and what comes in is black. A blank image stays.
pub fn centred_by_mass(x: &[f32]) -> Vec<f32> {
    x.chunks(SIDE * SIDE)
        .flat_map(|d| moved_to(d, -1.0, MASS_CENTRE))
        .collect()
}

/// The grey level (of 255) at and below which [`placed`] clears a pixel to black: the faint
/// haze the U-Net leaves where MNIST's backgrounds are exactly black (81% of the held-out
/// digits' pixels, 56% of the default's as drawn; 79% once cleared at this level,
/// docs/realism/probe.md).
pub const HAZE_LEVEL: u8 = 8;

/// Digits in [-1, 1] (`[N, 28, 28]` row-major, -1 black) finished as MNIST's digits were: every
/// pixel whose grey byte ([`grid::to_bytes`](crate::grid::to_bytes)) is at most [`HAZE_LEVEL`]
/// set to black, then each digit moved by whole pixels to centre its mass
/// ([`centred_by_mass`]). What the demo shows at the end of a run from noise
/// ([`SampleSettings::place`](crate::settings::SampleSettings::place)); measured in
/// docs/EVAL.md as the rows labelled `placed`.
pub fn placed(x: &[f32]) -> Vec<f32> {
    // (v + 1) * 127.5 rounds to at most HAZE_LEVEL exactly when it is below HAZE_LEVEL + 0.5.
    let below = -1.0 + (f32::from(HAZE_LEVEL) + 0.5) / 127.5;
    let cleared: Vec<f32> = x
        .iter()
        .map(|&v| if v < below { -1.0 } else { v })
        .collect();
    centred_by_mass(&cleared)
}

/// The centre of mass (row, column, in pixel indices) of one 28 x 28 digit whose ground is
/// `ground` and whose full ink is 1 (ink (x - ground) / (1 - ground)); `None` for a blank.
pub fn mass_centre(d: &[f32], ground: f32) -> Option<(f64, f64)> {
    let (mut m, mut r, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in d.iter().enumerate() {
        let ink = f64::from((v - ground) / (1.0 - ground)).max(0.0);
        m += ink;
        r += ink * (i / SIDE) as f64;
        c += ink * (i % SIDE) as f64;
    }
    (m > 1e-6).then(|| (r / m, c / m))
}

/// One 28 x 28 digit on a ground of `ground`, moved by whole pixels so that its centre of mass
/// ([`mass_centre`]) lands nearest `at`; what moves past an edge is dropped and ground comes in.
/// A blank digit stays.
pub fn moved_to(d: &[f32], ground: f32, at: (f64, f64)) -> Vec<f32> {
    let (dr, dc) = mass_centre(d, ground).map_or((0, 0), |(r, c)| {
        ((at.0 - r).round() as i64, (at.1 - c).round() as i64)
    });
    let side = SIDE as i64;
    (0..side * side)
        .map(|i| {
            let (sr, sc) = (i / side - dr, i % side - dc);
            match (0..side).contains(&sr) && (0..side).contains(&sc) {
                true => d[(sr * side + sc) as usize],
                false => ground,
            }
        })
        .collect()
}

/// Mean of the outermost ring of pixels.
fn border_mean(width: usize, height: usize, grey: &[u8]) -> f64 {
    let ring: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .filter(|&(x, y)| x == 0 || y == 0 || x + 1 == width || y + 1 == height)
        .map(|(x, y)| grey[y * width + x])
        .collect();
    ring.iter().map(|&v| v as f64).sum::<f64>() / ring.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dark bar on light paper, 90 x 60, off centre.
    fn paper() -> (usize, usize, Vec<u8>) {
        let (w, h) = (90, 60);
        let mut px = vec![240u8; w * h];
        for y in 10..50 {
            for x in 60..70 {
                px[y * w + x] = 20;
            }
        }
        (w, h, px)
    }

    #[test]
    fn a_dark_stroke_on_paper_becomes_a_centred_light_digit_in_a_20_pixel_box() {
        let (w, h, px) = paper();
        let fit = Fit::of(w, h, &px, Ink::Auto).unwrap();
        assert!(fit.invert, "a light border is paper");
        let out = fit.image(&px);
        let ink: Vec<(usize, usize)> = (0..SIDE * SIDE)
            .filter(|&i| out[i] > 127)
            .map(|i| (i % SIDE, i / SIDE))
            .collect();
        let rows =
            ink.iter().map(|p| p.1).max().unwrap() - ink.iter().map(|p| p.1).min().unwrap() + 1;
        let cols =
            ink.iter().map(|p| p.0).max().unwrap() - ink.iter().map(|p| p.0).min().unwrap() + 1;
        // 40 x 10 source pixels: 20 field rows, 5 columns.
        assert_eq!((rows, cols), (20, 5));
        let mass: f64 = out.iter().map(|&v| v as f64).sum();
        let com = |f: &dyn Fn(usize) -> f64| {
            (0..SIDE * SIDE).map(|i| out[i] as f64 * f(i)).sum::<f64>() / mass
        };
        let (cx, cy) = (
            com(&|i| (i % SIDE) as f64 + 0.5),
            com(&|i| (i / SIDE) as f64 + 0.5),
        );
        assert!(
            (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
            "centre of mass ({cx}, {cy})"
        );
        // The ground is black, the stroke near white.
        assert_eq!(out[0], 0);
        assert!(out.iter().copied().max().unwrap() > 200);
    }

    #[test]
    fn a_small_drawing_in_a_corner_is_scaled_into_the_box_and_centred() {
        // A 6 x 4 block of ink in the pad's top-left corner.
        let mut pad = vec![0u8; SIDE * SIDE];
        for y in 2..8 {
            for x in 3..7 {
                pad[y * SIDE + x] = 255;
            }
        }
        let out = Fit::drawing(&pad).unwrap().image(&pad);
        let inked: Vec<(usize, usize)> = (0..SIDE * SIDE)
            .filter(|&i| out[i] > 127)
            .map(|i| (i % SIDE, i / SIDE))
            .collect();
        let rows = inked.iter().map(|p| p.1);
        let (top, bottom) = (rows.clone().min().unwrap(), rows.max().unwrap());
        assert_eq!(
            bottom + 1 - top,
            BOX,
            "the taller side fills the 20-pixel box"
        );
        let n = inked.len() as f64;
        let cx = inked.iter().map(|p| p.0 as f64 + 0.5).sum::<f64>() / n;
        let cy = inked.iter().map(|p| p.1 as f64 + 0.5).sum::<f64>() / n;
        assert!(
            (cx - 14.0).abs() <= 1.0 && (cy - 14.0).abs() <= 1.0,
            "centre ({cx}, {cy})"
        );
        // `of` takes the same 28 x 28 light-on-dark image as it is.
        assert_eq!(
            Fit::of(SIDE, SIDE, &pad, Ink::Auto).unwrap().image(&pad),
            pad
        );
        assert!(Fit::drawing(&[0u8; 10]).is_err());
        assert!(Fit::drawing(&vec![0u8; SIDE * SIDE]).is_err(), "no ink");
    }

    #[test]
    fn a_top_heavy_drawing_stays_whole_inside_the_field() {
        // A "T" on a dark pad: a thick bar along the top, a one-pixel stem down to the bottom.
        // Its mass sits near the top, so centring its mass would push the 20-pixel box off the
        // field's bottom edge; the box is held inside the field and every row of ink is kept.
        let (w, h) = (40, 40);
        let mut px = vec![0u8; w * h];
        for y in 0..40 {
            for x in 0..40 {
                let bar = y < 12;
                let stem = (19..21).contains(&x);
                if bar || stem {
                    px[y * w + x] = 255;
                }
            }
        }
        let out = Fit::of(w, h, &px, Ink::Light).unwrap().image(&px);
        assert_eq!(out.len(), SIDE * SIDE);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|&r| (0..SIDE).any(|c| out[r * SIDE + c] > 32))
            .collect();
        assert_eq!(
            rows.len(),
            20,
            "every row of the 20-pixel box is on the field: {rows:?}"
        );
        assert_eq!(
            *rows.last().unwrap(),
            SIDE - 1,
            "the box rests on the field's bottom edge"
        );
    }

    #[test]
    fn centring_by_mass_moves_a_digit_by_whole_pixels_onto_the_mass_centre() {
        // A 3 x 3 block of ink with its centre at (5, 20), and a second image left blank.
        let mut x = vec![-1.0f32; 2 * SIDE * SIDE];
        for r in 4..7 {
            for c in 19..22 {
                x[r * SIDE + c] = 1.0;
            }
        }
        let y = centred_by_mass(&x);
        assert_eq!(y.len(), x.len());
        let lit: Vec<usize> = (0..SIDE * SIDE).filter(|&i| y[i] > 0.0).collect();
        let want: Vec<usize> = (13..16)
            .flat_map(|r| (13..16).map(move |c| r * SIDE + c))
            .collect();
        assert_eq!(
            lit, want,
            "the block's centre moves from (5, 20) to (14, 14)"
        );
        assert!(
            y[SIDE * SIDE..].iter().all(|&v| v == -1.0),
            "a blank stays blank"
        );
        // Ink near an edge: moved toward the centre, nothing wraps around.
        let mut edge = vec![-1.0f32; SIDE * SIDE];
        edge[SIDE - 1] = 1.0;
        let moved = centred_by_mass(&edge);
        assert_eq!(moved.iter().filter(|&&v| v > 0.0).count(), 1);
        assert_eq!(moved[14 * SIDE + 14], 1.0);
    }

    #[test]
    fn placing_clears_the_haze_at_and_below_its_level_then_centres() {
        // A 2 x 2 block of full ink at rows 2-3, columns 2-3 (centre (2.5, 2.5)), haze of grey
        // 8 (cleared) and grey 9 (kept) far from it.
        let grey = |b: f32| b / 127.5 - 1.0;
        let mut x = vec![-1.0f32; SIDE * SIDE];
        for (r, c) in [(2, 2), (2, 3), (3, 2), (3, 3)] {
            x[r * SIDE + c] = 1.0;
        }
        x[27 * SIDE + 27] = grey(8.0);
        x[20 * SIDE] = grey(9.0);
        let bytes = crate::grid::to_bytes(&x);
        assert_eq!((bytes[27 * SIDE + 27], bytes[20 * SIDE]), (8, 9));
        let y = placed(&x);
        let out = crate::grid::to_bytes(&y);
        let lit: Vec<(usize, u8)> = (0..SIDE * SIDE)
            .filter(|&i| out[i] > 0)
            .map(|i| (i, out[i]))
            .collect();
        // Only the kept grey-9 pixel (ink 9/255 at row 20, column 0) pulls the mass centre off
        // the block's: (4 * 2.5 + 20 * 9/255) / (4 + 9/255) = 2.65 rows, 2.48 columns, so the
        // digit moves 11 rows and 12 columns. Uncleared, the grey-8 pixel would pull it to a
        // move of 11 and 11; the grey-9 one cleared, to 12 and 12.
        let want: Vec<(usize, u8)> = vec![
            (13 * SIDE + 14, 255),
            (13 * SIDE + 15, 255),
            (14 * SIDE + 14, 255),
            (14 * SIDE + 15, 255),
        ];
        assert_eq!(&lit[..4], &want[..], "the block, moved");
        assert_eq!(
            lit.len(),
            4,
            "haze of grey 9 moved off the field, grey 8 cleared: {lit:?}"
        );
    }

    #[test]
    fn a_28_pixel_light_digit_is_kept_as_it_is_and_a_blank_is_refused() {
        let px: Vec<u8> = (0..SIDE * SIDE).map(|i| (i * 7 % 256) as u8 / 4).collect();
        let fit = Fit::of(SIDE, SIDE, &px, Ink::Light).unwrap();
        assert_eq!(fit.image(&px), px);
        let blank = vec![30u8; 50 * 40];
        let err = Fit::of(50, 40, &blank, Ink::Light).unwrap_err().to_string();
        assert!(err.contains("no ink"), "{err}");
        let (w, h, paper) = paper();
        let fit = Fit::of(w, h, &paper, Ink::Auto).unwrap();
        assert!(fit.mask(20, 20, &blank[..400]).is_err());
        // A mask of the image's size moves with the image: its kept part covers the stroke.
        let mask: Vec<u8> = paper
            .iter()
            .map(|&v| if v < 128 { 255 } else { 0 })
            .collect();
        let moved = fit.mask(w, h, &mask).unwrap();
        let image = fit.image(&paper);
        assert!((0..SIDE * SIDE).all(|i| (moved[i] > 127) == (image[i] > 127)));
    }
}
