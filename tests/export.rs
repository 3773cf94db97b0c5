//! Export is all or nothing: stopped between its weight files and its manifest, or killed at any
//! moment, the folder still holds a manifest whose files are there and load, the old weights or
//! the new ones. Checked by hand: with export writing fixed file names again, the staged check
//! fails ("unet.safetensors has sha256 ..., the manifest says ..."); with files written in
//! place (no temporary file), an abort half-way through rewriting the classifier leaves a folder
//! that does not load.
#![cfg(not(target_family = "wasm"))]

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use guided_ddpm::weights;

/// A checkpoint folder for `export` with the shipped classifier and the U-Net EMA from `unet_dir`.
fn checkpoints(root: &Path, name: &str, unet_dir: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (from, file) in [
        (unet_dir, "unet-ema.bpk"),
        (unet_dir, "unet-state.json"),
        ("checkpoints", "classifier-ema.bpk"),
        ("checkpoints", "classifier-state.json"),
    ] {
        std::fs::copy(Path::new(from).join(file), dir.join(file)).unwrap();
    }
    dir
}

/// `export` from `from` into `out`, aborted at the `abort_at`-th moment a write can be cut short
/// (`atomic::may_abort`), if any.
fn export(from: &Path, out: &Path, abort_at: Option<usize>) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guided-ddpm"));
    if let Some(n) = abort_at {
        cmd.env("GUIDED_DDPM_ABORT_AT", n.to_string());
    }
    cmd.args(["export", "--checkpoints"])
        .arg(from)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs")
}

/// The U-Net hash of the manifest in `out`, after checking that every file it names loads.
fn loadable(out: &Path) -> String {
    let (m, _, _) = weights::load_dir(out, &Device::flex()).expect("the folder loads");
    m.unet.sha256
}

#[test]
fn an_export_killed_at_any_moment_leaves_weights_that_load() {
    let root = std::env::temp_dir().join(format!("guided-ddpm-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (a, b) = (
        checkpoints(&root, "a", "checkpoints"),
        checkpoints(&root, "b", "checkpoints/run"),
    );
    let out = root.join("weights");
    assert!(export(&a, &out, None).wait().unwrap().success());
    let old = loadable(&out);
    assert!(export(&b, &out, None).wait().unwrap().success());
    let new = loadable(&out);
    assert_ne!(old, new, "the two checkpoints export different weights");
    // Only the files the manifest names are left.
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 3, "{left:?}");
    // Stopped after the new weight files are written and before the manifest is: the folder
    // still loads the old weights (this failed when export overwrote fixed file names: the old
    // manifest's hash no longer matched). Committed, it loads the new ones.
    let staged = guided_ddpm::train::stage(&a, &out).unwrap();
    assert_eq!(loadable(&out), new, "the staged files are not in use yet");
    staged.commit().unwrap();
    assert_eq!(loadable(&out), old);
    // Stop exports at every moment a write can be cut short (half-way through a temporary file,
    // once it is written, once it replaced its target, before a removal), alternately from each
    // checkpoint, so that each export replaces the other's weights: each time the folder loads and
    // holds one of the two exports whole. The export that runs to the end has passed every moment.
    let mut moments = 0;
    for n in 1.. {
        let from = if n % 2 == 0 { &a } else { &b };
        let status = export(from, &out, Some(n)).wait().unwrap();
        let got = loadable(&out);
        assert!(
            got == old || got == new,
            "after an abort at moment {n}: {got}"
        );
        if status.success() {
            moments = n - 1;
            break;
        }
    }
    // Three moments in each of the three files' writes, and one before the removal of the other
    // export's U-Net file (the two share the classifier's).
    assert_eq!(moments, 10, "the moments an export can be cut short");
    std::fs::remove_dir_all(&root).unwrap();
}
