//! Samples as pictures: [-1, 1] floats to grey bytes, and a grid of digits written as a PNG.

use crate::nn::SIDE;

/// Maps [-1, 1] to 0..=255 (values outside are clipped).
pub fn to_bytes(x: &[f32]) -> Vec<u8> {
    x.iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// The push map's colour scale for a run of `steps` steps (in units of x, where 2 spans black to
/// white): a pixel pushed this much or more in one step is drawn at full colour. A run of fewer
/// steps moves each pixel further per step, so the scale is 1 / steps (`guided-ddpm sample
/// --push-png` draws a run's pushes at it; docs/PAGE.md gives a measured run's largest push).
pub fn push_scale(steps: usize) -> f32 {
    1.0 / steps.max(1) as f32
}

/// Signed values as RGBA bytes on a white ground: red where positive (the step made the pixel
/// brighter), blue where negative, the colour's strength |v| / `scale`, full at |v| >= scale.
pub fn signed_rgba(values: &[f32], scale: f32) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| {
            let a = (v.abs() / scale).min(1.0);
            let fade = (255.0 * (1.0 - a)).round() as u8;
            match v >= 0.0 {
                true => [255, fade, fade, 255],
                false => [fade, fade, 255, 255],
            }
        })
        .collect()
}

/// Lays out `n` 28x28 digits (row-major bytes) in rows of `cols`, with a 2-pixel gap.
/// Returns (width, height, pixels).
pub fn layout(digits: &[u8], cols: usize) -> (usize, usize, Vec<u8>) {
    layout_pixels(digits, cols, 1)
}

/// [`layout`] for digits of `channels` bytes per pixel (4 for RGBA); the gaps are zero bytes.
pub fn layout_pixels(digits: &[u8], cols: usize, channels: usize) -> (usize, usize, Vec<u8>) {
    let px = SIDE * channels;
    let n = digits.len() / (SIDE * px);
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let gap = 2;
    let (w, h) = (cols * (SIDE + gap) + gap, rows * (SIDE + gap) + gap);
    let mut out = vec![0u8; w * h * channels];
    for i in 0..n {
        let (r0, c0) = (
            gap + (i / cols) * (SIDE + gap),
            gap + (i % cols) * (SIDE + gap),
        );
        for r in 0..SIDE {
            let src = &digits[(i * SIDE + r) * px..][..px];
            out[((r0 + r) * w + c0) * channels..][..px].copy_from_slice(src);
        }
    }
    (w, h, out)
}

/// Writes a PNG of grey (1 byte per pixel) or RGBA (4 bytes) pixels, as `pixels` holds for
/// `width` x `height`, scaled up by `zoom` (nearest neighbour) so digits are visible (native
/// command line only).
#[cfg(feature = "cli")]
pub fn write_png(
    path: &std::path::Path,
    width: usize,
    height: usize,
    pixels: &[u8],
    zoom: usize,
) -> Result<(), crate::Error> {
    let channels = pixels.len() / (width * height).max(1);
    encode_png(path, width, height, pixels, channels, zoom)
}

/// Reads a PNG as grey bytes (the mean of red, green and blue for a colour image; alpha ignored):
/// (width, height, pixels) (native command line only).
#[cfg(feature = "cli")]
pub fn read_png(path: &std::path::Path) -> Result<(usize, usize, Vec<u8>), crate::Error> {
    use crate::Error;
    let bad = |e: png::DecodingError| {
        Error::Setting(format!("{} is not a PNG image ({e})", path.display()))
    };
    let file =
        std::fs::File::open(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(bad)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let grey = buf[..w * h * channels]
        .chunks(channels)
        .map(|px| match channels {
            3 | 4 => ((px[0] as u32 + px[1] as u32 + px[2] as u32) / 3) as u8,
            _ => px[0],
        })
        .collect();
    Ok((w, h, grey))
}

#[cfg(feature = "cli")]
fn encode_png(
    path: &std::path::Path,
    width: usize,
    height: usize,
    pixels: &[u8],
    channels: usize,
    zoom: usize,
) -> Result<(), crate::Error> {
    use crate::Error;
    let (zw, zh) = (width * zoom, height * zoom);
    let mut big = Vec::with_capacity(zw * zh * channels);
    for r in 0..zh {
        for c in 0..zw {
            let at = ((r / zoom) * width + c / zoom) * channels;
            big.extend_from_slice(&pixels[at..at + channels]);
        }
    }
    let mut encoded = Vec::new();
    let mut enc = png::Encoder::new(&mut encoded, zw as u32, zh as u32);
    enc.set_color(match channels {
        4 => png::ColorType::Rgba,
        _ => png::ColorType::Grayscale,
    });
    enc.set_depth(png::BitDepth::Eight);
    let fail = |e: png::EncodingError| Error::Io {
        context: format!("writing {}", path.display()),
        source: std::io::Error::other(e),
    };
    enc.write_header()
        .map_err(fail)?
        .write_image_data(&big)
        .map_err(fail)?;
    crate::atomic::write(path, &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The push map's colours: red where a step brightened a pixel, blue where it darkened it,
    /// white where it did nothing, fading with |v| / scale and full from `scale` on. Checked by
    /// hand: with red and blue swapped this fails.
    #[test]
    fn signed_rgba_is_red_for_brighter_blue_for_darker_white_for_none() {
        let px = signed_rgba(&[0.0, 0.02, -0.02, 0.005, -0.005], 0.01);
        let at = |i: usize| <[u8; 4]>::try_from(&px[4 * i..4 * i + 4]).unwrap();
        assert_eq!(at(0), [255, 255, 255, 255]);
        assert_eq!(at(1), [255, 0, 0, 255]);
        assert_eq!(at(2), [0, 0, 255, 255]);
        assert_eq!(at(3), [255, 128, 128, 255]);
        assert_eq!(at(4), [128, 128, 255, 255]);
    }
}
