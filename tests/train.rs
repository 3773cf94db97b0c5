//! The training loop's checkpoints: a run stopped and resumed reaches the same step count and
//! keeps learning, with or without the optimizer state (which stays out of git). Checked by hand:
//! with the optimizer file required again on resume (the code before this test), it fails with
//! "cannot resume from .../tiny-optim.bpk".
#![cfg(not(target_family = "wasm"))]

use std::time::Duration;

use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::nn::ClassifierConfig;
use guided_ddpm::train::{fit, read_state, CheckpointFiles, TrainOptions};

fn opts(dir: &std::path::Path, steps: usize, resume: bool) -> TrainOptions {
    TrainOptions {
        steps,
        batch: 4,
        lr: 1e-2,
        warmup: 2,
        ema_decay: 0.9,
        checkpoint_every: Duration::from_secs(3600),
        seed: 3,
        dir: dir.to_path_buf(),
        resume,
        quiet: true,
    }
}

/// Squared output of a tiny classifier on a fixed input: a loss any optimizer step lowers.
fn run(dir: &std::path::Path, steps: usize, resume: bool) -> f64 {
    let device = Device::flex().autodiff();
    device.seed(1);
    let net = ClassifierConfig::new()
        .with_channels([8, 8, 16])
        .with_emb_dim(8)
        .init(&device);
    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.5f32; 4 * 28 * 28], [4, 1, 28, 28]),
        &device,
    );
    let t = guided_ddpm::nn::t_tensor(&[10, 20, 30, 40], &device);
    let (_, state) = fit("tiny", net, &opts(dir, steps, resume), |m, _| {
        (m.forward(x.clone(), t.clone()).powi_scalar(2).mean(), 4)
    })
    .unwrap();
    state.last_loss
}

#[test]
fn a_resumed_run_goes_on_from_its_checkpoint_with_or_without_the_optimizer_state() {
    let dir = std::env::temp_dir().join(format!("guided-ddpm-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = CheckpointFiles::new(&dir, "tiny");
    let first = run(&dir, 4, false);
    assert_eq!(read_state(&files.state).unwrap().step, 4);
    assert!(files.optim.exists());
    // Resumed with the optimizer state.
    run(&dir, 6, true);
    let state = read_state(&files.state).unwrap();
    assert_eq!((state.step, state.samples_seen), (6, 24));
    // Resumed from a clone without it: AdamW starts afresh and the run still goes on and learns.
    std::fs::remove_file(&files.optim).unwrap();
    let last = run(&dir, 12, true);
    assert_eq!(read_state(&files.state).unwrap().step, 12);
    assert!(last.is_finite() && last < first, "loss {first} -> {last}");
    let log = std::fs::read_to_string(&files.log).unwrap();
    assert!(log.lines().next().unwrap().starts_with("step,loss"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `atomic::write` replaces a file whole and leaves no temporary file behind; a write that cannot
/// happen leaves the old file as it was and says which file it was writing.
#[test]
fn atomic_writes_replace_whole_files_or_nothing() {
    use guided_ddpm::atomic;
    let dir = std::env::temp_dir().join(format!("guided-ddpm-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("manifest.json");
    atomic::write(&path, b"old").unwrap();
    atomic::write(&path, b"new contents").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    assert!(!atomic::temp_path(&path).exists());
    // A temporary file that cannot be renamed over a directory: the write fails and says so.
    let blocked = dir.join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    let err = atomic::write(&blocked, b"x").err().unwrap().to_string();
    assert!(err.contains("writing") && err.contains("blocked"), "{err}");
    assert!(blocked.join("inside").is_dir() && !atomic::temp_path(&blocked).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
