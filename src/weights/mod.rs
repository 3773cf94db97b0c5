//! Weight files: int8 quantization, the safetensors layout, and the manifest that describes them.
//!
//! Everything here works on bytes, so the browser (which fetches them) and the CLI (which reads
//! them from disk) share it.

pub mod manifest;
pub mod quant;
pub mod store;

pub use manifest::{Manifest, NetFile, FORMAT_VERSION, MANIFEST};

use burn::tensor::Device;

use crate::nn::{Classifier, UNet};
use crate::Error;

/// Checks `bytes` against the manifest entry and builds the U-Net from them on `device`.
pub fn unet_from_bytes(manifest: &Manifest, bytes: &[u8], device: &Device) -> Result<UNet, Error> {
    let entry = &manifest.unet;
    entry.verify(bytes)?;
    let stored = store::read_safetensors(bytes, &entry.file)?;
    store::load_into(entry.config.init(device), stored, &entry.file)
}

/// Checks `bytes` against the manifest entry and builds the classifier from them on `device`.
pub fn classifier_from_bytes(
    manifest: &Manifest,
    bytes: &[u8],
    device: &Device,
) -> Result<Classifier, Error> {
    let entry = &manifest.classifier;
    entry.verify(bytes)?;
    let stored = store::read_safetensors(bytes, &entry.file)?;
    store::load_into(entry.config.init(device), stored, &entry.file)
}

/// Reads a file of a weights folder, with a sentence naming the folder flag when it cannot.
#[cfg(not(target_family = "wasm"))]
fn read_in(dir: &std::path::Path, name: &str) -> Result<Vec<u8>, Error> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| {
        Error::Weights(format!("cannot read {}: {e}; pass --weights DIR with a manifest.json and both .safetensors files", path.display()))
    })
}

/// Reads and checks a folder's manifest alone (native), without building the networks.
#[cfg(not(target_family = "wasm"))]
pub fn read_manifest(dir: &std::path::Path) -> Result<Manifest, Error> {
    Manifest::parse(&String::from_utf8_lossy(&read_in(dir, MANIFEST)?))
}

/// Reads the manifest and both networks from a folder (native).
#[cfg(not(target_family = "wasm"))]
pub fn load_dir(
    dir: &std::path::Path,
    device: &Device,
) -> Result<(Manifest, UNet, Classifier), Error> {
    let manifest = read_manifest(dir)?;
    let unet = unet_from_bytes(&manifest, &read_in(dir, &manifest.unet.file)?, device)?;
    let classifier =
        classifier_from_bytes(&manifest, &read_in(dir, &manifest.classifier.file)?, device)?;
    Ok((manifest, unet, classifier))
}
