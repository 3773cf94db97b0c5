//! The benchmark's arithmetic: FLOPs counted from the layer shapes (pinned against an
//! independent count), and the timed step on small random networks.

mod common;

use burn::tensor::Device;
use guided_ddpm::bench::native::block_on;
use guided_ddpm::bench::{flops_per_step, matmul, steps, BenchSettings};
use guided_ddpm::guidance::{Guidance, Mode, FULL_STEP};
use guided_ddpm::nn::{ClassifierConfig, UNetConfig};

/// Multiply-accumulates per 28x28 sample of the shipped architectures, counted by hand from the
/// layer list (3x3 and 1x1 convolutions at 28/14/7, the embedding MLPs, the FiLM linears,
/// attention's qkv, QK^T, AV and projection at 7x7) in a separate script: U-Net [32, 64, 128],
/// emb 128; classifier [32, 64, 96], emb 64.
const UNET_MACS: u64 = 190_355_200;
const CLASSIFIER_MACS: u64 = 43_609_536;

#[test]
fn multiply_accumulates_match_an_independent_count() {
    let device = Device::flex();
    let unet = UNetConfig::new().init(&device);
    let classifier = ClassifierConfig::new().init(&device);
    assert_eq!(unet.macs_per_sample(), UNET_MACS);
    assert_eq!(classifier.macs_per_sample(), CLASSIFIER_MACS);
    // Both: U-Net on 2B, classifier forward + input-gradient backward on B.
    assert_eq!(
        flops_per_step(&unet, &classifier, FULL_STEP, 16),
        2 * (UNET_MACS * 32 + CLASSIFIER_MACS * 32)
    );
    let none = Guidance::new(Mode::None, 0.0, 0.0);
    assert_eq!(
        flops_per_step(&unet, &classifier, none, 1),
        2 * (UNET_MACS + CLASSIFIER_MACS)
    );
}

#[test]
fn a_timed_step_reports_every_phase_and_the_whole_run() {
    let (unet, classifier, device) = common::small_nets();
    let settings = BenchSettings {
        batch: 2,
        guidance: FULL_STEP,
        phase_steps: 2,
        run_steps: 3,
    };
    let r = block_on(steps(&unet, &classifier, &settings, &device)).unwrap();
    assert!(
        r.phases.unet > 0.0 && r.phases.classifier > 0.0,
        "{:?}",
        r.phases
    );
    assert!(r.run_ms_per_step > 0.0 && r.steps_per_s > 0.0);
    assert_eq!(
        r.flops_per_step,
        flops_per_step(&unet, &classifier, FULL_STEP, 2)
    );
    assert!((r.gflops - r.flops_per_step as f64 / (r.run_ms_per_step * 1e6)).abs() < 1e-9);

    let zero = BenchSettings {
        phase_steps: 0,
        ..settings
    };
    let err = block_on(steps(&unet, &classifier, &zero, &device)).unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
}

#[test]
fn the_reference_product_counts_two_n_cubed_flops() {
    let r = block_on(matmul(64, 2, &Device::flex())).unwrap();
    assert_eq!((r.n, r.reps), (64, 2));
    let expected = 2.0 * 64f64.powi(3) * 2.0 / (r.ms * 1e6);
    assert!((r.gflops - expected).abs() <= 1e-9 * expected.max(1.0));
}
