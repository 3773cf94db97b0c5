//! `sample --npz`: samples as a NumPy `.npz` archive (npyz over the zip crate), stored without
//! compression as NumPy's `np.savez` stores it: `x` uint8 [n, 28, 28] (the images as grey bytes)
//! and `y` int64 [n] (each image's asked class).

use std::io::Cursor;
use std::path::Path;

use npyz::npz::{NpzArchive, NpzWriter};
use npyz::zip::{write::FileOptions, CompressionMethod};
use npyz::WriterBuilder;

use crate::nn::SIDE;
use crate::Error;

/// Writes `images` (n x 28 x 28 grey bytes) and their `labels` (n) to `path`, atomically.
pub fn write_samples(path: &Path, images: &[u8], labels: &[i64]) -> Result<(), Error> {
    let n = labels.len();
    if images.len() != n * SIDE * SIDE {
        return Err(Error::Setting(format!(
            "{} images need {} bytes, got {}",
            n,
            n * SIDE * SIDE,
            images.len()
        )));
    }
    let io = |e: std::io::Error| Error::Io {
        context: format!("encoding {}", path.display()),
        source: e,
    };
    let stored = || FileOptions::default().compression_method(CompressionMethod::Stored);
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    npz.array::<u8>("x", stored())
        .map_err(io)?
        .default_dtype()
        .shape(&[n as u64, SIDE as u64, SIDE as u64])
        .begin_nd()
        .map_err(io)?
        .extend(images.iter().copied())
        .map_err(io)?;
    npz.array::<i64>("y", stored())
        .map_err(io)?
        .default_dtype()
        .shape(&[n as u64])
        .begin_nd()
        .map_err(io)?
        .extend(labels.iter().copied())
        .map_err(io)?;
    let bytes = npz
        .zip_writer()
        .finish()
        .map_err(|e| io(e.into()))?
        .into_inner();
    crate::atomic::write(path, &bytes)
}

/// An archive's samples, as [`read_samples`] reads them.
pub struct Samples {
    /// Grey bytes, image after image.
    pub images: Vec<u8>,
    /// `x`'s shape: [n, 28, 28].
    pub shape: Vec<u64>,
    pub labels: Vec<i64>,
}

/// Samples as [`write_samples`] wrote them.
pub fn read_samples(path: &Path) -> Result<Samples, Error> {
    let bad = |why: String| {
        Error::Data(format!(
            "{} is not a samples archive: {why}",
            path.display()
        ))
    };
    let mut npz =
        NpzArchive::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
    let x = npz
        .by_name("x")
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no array x".into()))?;
    let shape = x.shape().to_vec();
    let images = x.into_vec::<u8>().map_err(|e| bad(e.to_string()))?;
    let y = npz
        .by_name("y")
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no array y".into()))?;
    let labels = y.into_vec::<i64>().map_err(|e| bad(e.to_string()))?;
    Ok(Samples {
        images,
        shape,
        labels,
    })
}
