//! Samples as pictures: [-1, 1] floats to grey bytes, and a grid of digits written as a PNG.

use crate::nn::SIDE;

/// Maps [-1, 1] to 0..=255 (values outside are clipped).
pub fn to_bytes(x: &[f32]) -> Vec<u8> {
    x.iter()
        .map(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// Lays out `n` 28x28 digits (row-major bytes) in rows of `cols`, with a 2-pixel gap.
/// Returns (width, height, pixels).
pub fn layout(digits: &[u8], cols: usize) -> (usize, usize, Vec<u8>) {
    let n = digits.len() / (SIDE * SIDE);
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let gap = 2;
    let (w, h) = (cols * (SIDE + gap) + gap, rows * (SIDE + gap) + gap);
    let mut out = vec![0u8; w * h];
    for i in 0..n {
        let (r0, c0) = (
            gap + (i / cols) * (SIDE + gap),
            gap + (i % cols) * (SIDE + gap),
        );
        for r in 0..SIDE {
            let src = &digits[i * SIDE * SIDE + r * SIDE..][..SIDE];
            out[(r0 + r) * w + c0..][..SIDE].copy_from_slice(src);
        }
    }
    (w, h, out)
}

/// Writes a greyscale PNG, scaled up by `zoom` (nearest neighbour) so digits are visible
/// (native command line only).
#[cfg(feature = "cli")]
pub fn write_png(
    path: &std::path::Path,
    width: usize,
    height: usize,
    pixels: &[u8],
    zoom: usize,
) -> Result<(), crate::Error> {
    use crate::Error;
    let (zw, zh) = (width * zoom, height * zoom);
    let mut big = Vec::with_capacity(zw * zh);
    for r in 0..zh {
        for c in 0..zw {
            big.push(pixels[(r / zoom) * width + c / zoom]);
        }
    }
    let mut encoded = Vec::new();
    let mut enc = png::Encoder::new(&mut encoded, zw as u32, zh as u32);
    enc.set_color(png::ColorType::Grayscale);
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
