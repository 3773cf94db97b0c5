//! Autoguidance (Karras et al. 2024) in the sampler, and the U-Net shape a training run records
//! for its guide network.

mod common;

use std::ops::ControlFlow;

use burn::tensor::Device;
use guided_ddpm::guidance::{Guidance, Mode};
use guided_ddpm::nn::{UNet, UNetConfig};
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::settings::{Method, SampleSettings};
use guided_ddpm::train::unet_run_config;

fn settings(mode: Mode, method: Method) -> SampleSettings {
    SampleSettings::new(
        vec![2, 9],
        Guidance::new(mode, 1.0, 0.5),
        4,
        method,
        3,
        BetaSchedule::Linear,
    )
}

/// A guide smaller than the small test U-Net (its own shape and random weights).
fn guide(device: &Device) -> UNet {
    UNetConfig::new()
        .with_channels([8, 8, 16])
        .with_emb_dim(8)
        .with_heads(2)
        .init(device)
}

/// The final images of a run on `nets`, with autoguidance by `guide` at `w` where given. (Tests
/// run in parallel and share burn's init RNG, so each test builds its networks once.)
fn run(nets: &Nets, s: SampleSettings, autoguide: Option<(&UNet, f64)>) -> Vec<f32> {
    let (unet, classifier, device) = nets.clone();
    let mut sampler = Sampler::new(unet, classifier, s, &device).unwrap();
    if let Some((g, w)) = autoguide {
        sampler = sampler.with_autoguide(g.clone(), w);
    }
    sampler
        .run(|_| ControlFlow::Continue(()))
        .unwrap()
        .try_into_vec_as::<f32>()
        .unwrap()
}

type Nets = (UNet, guided_ddpm::nn::Classifier, Device);

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn autoguidance_at_w_1_is_the_model_alone_and_moves_the_images_otherwise() {
    let nets = common::small_nets();
    let g = guide(&nets.2);
    for (mode, method) in [
        (Mode::Both, Method::DpmSolver),
        (Mode::Free, Method::Ddpm),
        (Mode::Classifier, Method::Ddim),
    ] {
        let alone = run(&nets, settings(mode, method), None);
        let at_one = run(&nets, settings(mode, method), Some((&g, 1.0)));
        let d = largest_difference(&alone, &at_one);
        assert!(d < 1e-4, "{mode:?} {method:?}: w = 1 moved a pixel by {d}");
        let at_two = run(&nets, settings(mode, method), Some((&g, 2.0)));
        let d = largest_difference(&alone, &at_two);
        assert!(d > 1e-2, "{mode:?} {method:?}: w = 2 moved no pixel ({d})");
    }
}

#[test]
fn autoguidance_extrapolates_from_the_guide_through_the_model() {
    // eps(w) = eps_guide + w (eps_model - eps_guide): the guide alone at w = 0, the model alone
    // at w = 1, and on the line through them at w = 2.5, under the classifier-free mix too.
    let nets = common::small_nets();
    let g = guide(&nets.2);
    for mode in [Mode::Free, Mode::Classifier] {
        let eps = |autoguide: Option<(&UNet, f64)>, main: Option<&UNet>| {
            let (unet, classifier, device) = nets.clone();
            let unet = main.cloned().unwrap_or(unet);
            let mut sampler =
                Sampler::new(unet, classifier, settings(mode, Method::Ddim), &device).unwrap();
            if let Some((g, w)) = autoguide {
                sampler = sampler.with_autoguide(g.clone(), w);
            }
            let at = sampler.begin().unwrap();
            sampler.predict_eps(&at).try_into_vec_as::<f32>().unwrap()
        };
        let model = eps(None, None);
        let guide_alone = eps(None, Some(&g));
        let (e0, e1, e25) = (
            eps(Some((&g, 0.0)), None),
            eps(Some((&g, 1.0)), None),
            eps(Some((&g, 2.5)), None),
        );
        assert!(
            largest_difference(&e0, &guide_alone) < 1e-5,
            "{mode:?}: w = 0"
        );
        assert!(largest_difference(&e1, &model) < 1e-5, "{mode:?}: w = 1");
        let line: Vec<f32> = guide_alone
            .iter()
            .zip(&model)
            .map(|(g, m)| g + 2.5 * (m - g))
            .collect();
        assert!(largest_difference(&e25, &line) < 1e-4, "{mode:?}: w = 2.5");
        assert!(
            largest_difference(&model, &guide_alone) > 1e-2,
            "the guide is another net"
        );
    }
}

#[test]
fn a_training_run_records_its_unet_shape_and_a_resume_keeps_it() {
    let dir = std::env::temp_dir().join(format!("guided-ddpm-shape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let small = UNetConfig::new()
        .with_channels([16, 32, 64])
        .with_emb_dim(64);
    // A fresh run takes the asked shape and writes it beside its checkpoint.
    let got = unet_run_config(&dir, Some(small.clone()), true).unwrap();
    assert_eq!(got, small);
    assert!(dir.join("unet-config.json").exists());
    // A resume without a shape reads it back; one asking another shape is refused whole.
    assert_eq!(unet_run_config(&dir, None, true).unwrap(), small);
    let err = unet_run_config(&dir, Some(UNetConfig::new()), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("another"), "{err}");
    assert_eq!(unet_run_config(&dir, None, true).unwrap(), small);
    // A shape the layers cannot take is refused with a sentence.
    let odd = UNetConfig::new().with_channels([12, 32, 64]);
    let err = unet_run_config(&dir.join("odd"), Some(odd), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("multiple of"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
