//! The training loop's checkpoints: a run stopped and resumed reaches the same step count and
//! keeps learning, with or without the optimizer state (which stays out of git). Checked by hand:
//! with the optimizer file required again on resume (the code before this test), it fails with
//! "cannot resume from .../tiny-optim.bpk".
#![cfg(not(target_family = "wasm"))]

use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use guided_ddpm::nn::ClassifierConfig;
use guided_ddpm::train::{fit, gradients, read_state, CheckpointFiles, Drawn, TrainOptions};

fn opts(dir: &std::path::Path, steps: usize, resume: bool) -> TrainOptions {
    TrainOptions {
        steps,
        batch: 4,
        shards: 2,
        lr: 1e-2,
        warmup: 2,
        ema_decay: 0.9,
        p_uncond: 0.15,
        checkpoint_every: Duration::from_secs(3600),
        seed: 3,
        dir: dir.to_path_buf(),
        resume,
        quiet: true,
        max_shift: guided_ddpm::train::DEFAULT_MAX_SHIFT,
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
    let batch = Drawn {
        x0: vec![0.5f32; 4 * 28 * 28],
        labels: vec![0; 4],
        t: vec![10, 20, 30, 40],
        eps: Vec::new(),
    };
    let (_, state) = fit(
        "tiny",
        net,
        &opts(dir, steps, resume),
        |_| batch.clone(),
        |m, part| {
            let t = guided_ddpm::nn::t_tensor(&part.t, &device);
            m.forward(part.x0(&device), t).powi_scalar(2).mean()
        },
    )
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

/// Largest gap between two gradients of the same parameters, and the largest entry of the
/// first. (Some entries are zero in exact arithmetic, a conv bias right before a GroupNorm, so
/// the gaps are measured against the largest entry of all parameters, not each one's own.)
#[derive(Default)]
struct GradientGap {
    gap: f32,
    scale: f32,
    params: usize,
}

impl GradientGap {
    fn of(net: &impl Module, a: &GradientsParams, b: &GradientsParams) -> f32 {
        struct Visit<'a>(&'a GradientsParams, &'a GradientsParams, GradientGap);
        impl ModuleVisitor for Visit<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let a = self.0.get::<D>(param.id).expect("a gradient");
                let b = self.1.get::<D>(param.id).expect("a gradient");
                let scale = a.clone().abs().max().into_scalar::<f32>();
                let gap = (a - b).abs().max().into_scalar::<f32>();
                self.2.scale = self.2.scale.max(scale);
                self.2.gap = self.2.gap.max(gap);
                self.2.params += 1;
            }
        }
        let mut visit = Visit(a, b, GradientGap::default());
        net.visit(&mut visit);
        assert!(visit.2.params > 10 && visit.2.scale > 0.0);
        visit.2.gap / visit.2.scale
    }
}

/// A batch split into parts run side by side (`train --shards`) gives the whole batch's mean
/// loss and gradient: 5 rows in 1, 2 (3 + 2 rows) and 5 parts. Checked by hand: without the
/// n_i / n weighting in `train::gradients` the 2-part loss is 2x and this fails.
#[test]
fn a_batch_split_into_parts_gives_the_whole_batch_loss_and_gradient() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let net = ClassifierConfig::new()
        .with_channels([8, 8, 16])
        .with_emb_dim(8)
        .init(&device);
    let n = 5;
    let batch = Drawn {
        x0: (0..n * 28 * 28)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
        labels: vec![3, 1, 4, 1, 5],
        t: vec![0, 250, 500, 750, 999],
        eps: Vec::new(),
    };
    let loss = |m: &guided_ddpm::nn::Classifier, part: Drawn| {
        let logits = m.forward(
            part.x0(&device),
            guided_ddpm::nn::t_tensor(&part.t, &device),
        );
        guided_ddpm::train::cross_entropy(logits, &part.labels)
    };
    let (whole, g1) = gradients(&net, batch.clone(), 1, &loss);
    for shards in [2, 5] {
        let (split, g) = gradients(&net, batch.clone(), shards, &loss);
        assert!(
            (split - whole).abs() < 1e-5 * whole.abs().max(1.0),
            "{shards} parts: loss {split} against {whole}"
        );
        let gap = GradientGap::of(&net, &g1, &g);
        assert!(gap < 1e-5, "{shards} parts: gradient off by {gap}");
    }
}

/// Split keeps every row once, in order, the parts' sizes within one of each other.
#[test]
fn drawn_batches_split_by_rows() {
    let px = 28 * 28;
    let batch = Drawn {
        x0: (0..7 * px).map(|i| i as f32).collect(),
        labels: (0..7).collect(),
        t: (10..17).collect(),
        eps: (0..7 * px).map(|i| -(i as f32)).collect(),
    };
    let parts = batch.clone().split(3);
    let sizes: Vec<usize> = parts.iter().map(Drawn::len).collect();
    assert_eq!(sizes, [3, 2, 2]);
    assert_eq!(parts[1].labels, [3, 4]);
    assert_eq!(parts[2].t, [15, 16]);
    assert_eq!(parts[1].x0[0], (3 * px) as f32);
    assert_eq!(parts[2].eps.len(), 2 * px);
    let joined: Vec<f32> = parts.iter().flat_map(|p| p.x0.clone()).collect();
    assert_eq!(joined, batch.x0);
    assert_eq!(batch.clone().split(20).len(), 7);
    assert_eq!(batch.split(1).len(), 1);
}
