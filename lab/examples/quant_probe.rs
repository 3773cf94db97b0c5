//! Which int8 weights of the U-Net bias the strokes? A probe run by hand, from the repository
//! root, on the EMA checkpoint in `checkpoints/` (the one `weights/` is exported from). Its int8
//! weights are `store::to_safetensors(unet, &[])` read back: every convolution and linear weight
//! the export could quantize, ignoring `UNet::F32_WEIGHTS`, which the probe is there to choose.
//!
//! `cargo run --release -p guided-ddpm-lab --example quant_probe -- proxy`
//!   The float model's guided (default setting) x0 prediction on 20 held-out digits of each
//!   class noised at six t, as mean ink; then the shift of that ink with every quantizable
//!   weight in int8, and with each one alone in int8. One line per weight, about 15 s each here.
//! `cargo run --release -p guided-ddpm-lab --example quant_probe -- sample N [name ...]`
//!   Mean ink of N per class DDPM samples at the default setting (100 steps, `eval`'s seeds),
//!   every quantizable weight in int8 except the named ones; `float` alone keeps all f32.
//!   `sample 20 up0.skip.weight` samples what `export` writes now.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::diffusion::{predict_x0, q_sample, StepCoefs};
use guided_ddpm::guidance::{cfg_mix, DEFAULT};
use guided_ddpm::nn::{label_tensor, t_tensor, UNet, UNetConfig, NULL_CLASS, NUM_CLASSES};
use guided_ddpm::noise::gaussian;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::{BetaSchedule, Schedule};
use guided_ddpm::settings::{Method, SampleSettings};
use guided_ddpm::weights::store::{self, Stored};
use guided_ddpm_lab::fidelity::ink;
use rand::SeedableRng;

/// The U-Net's parameters by name, as f32 and as their int8 round trip, and the names the
/// export quantizes (those stored with a `.scale`), in file order.
struct Weights {
    config: UNetConfig,
    float: HashMap<String, Stored>,
    int8: HashMap<String, Stored>,
    quantized: Vec<String>,
}

impl Weights {
    fn new(float: &UNet, config: UNetConfig) -> Self {
        let int8_bytes = store::to_safetensors(float, &[]).unwrap();
        let int8 = store::read_safetensors(&int8_bytes, "int8").unwrap();
        let names: Vec<&str> = int8.keys().map(String::as_str).collect();
        let float =
            store::read_safetensors(&store::to_safetensors(float, &names).unwrap(), "f32").unwrap();
        let st = safetensors::SafeTensors::deserialize(&int8_bytes).unwrap();
        let mut quantized: Vec<String> = st
            .names()
            .into_iter()
            .filter_map(|n| n.strip_suffix(".scale").map(String::from))
            .collect();
        quantized.sort();
        Weights {
            config,
            float,
            int8,
            quantized,
        }
    }

    /// The U-Net with the weights `int8` picks in their int8 round trip, the rest f32.
    fn hybrid(&self, int8: impl Fn(&str) -> bool, device: &Device) -> UNet {
        let pick = |name: &String| {
            let from = if self.quantized.contains(name) && int8(name) {
                &self.int8
            } else {
                &self.float
            };
            let s = &from[name];
            let stored = Stored {
                shape: s.shape.clone(),
                values: s.values.clone(),
            };
            (name.clone(), stored)
        };
        let stored = self.float.keys().map(pick).collect();
        store::load_into(self.config.init(device), stored, "probe").unwrap()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = Device::flex();
    let manifest = guided_ddpm::weights::read_manifest(Path::new("weights")).unwrap();
    let float = guided_ddpm::train::load_ema(
        manifest.unet.config.init(&device),
        Path::new("checkpoints"),
        "unet",
    )
    .unwrap();
    let weights = Weights::new(&float, manifest.unet.config.clone());
    match args.first().map(String::as_str) {
        Some("proxy") => proxy(&float, &weights, &device),
        Some("sample") => {
            let n: usize = args[1].parse().unwrap();
            let keep: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            let unet = if keep == ["float"] {
                float.clone()
            } else {
                for k in &keep {
                    assert!(
                        weights.quantized.iter().any(|q| q == k),
                        "no int8 weight {k}"
                    );
                }
                weights.hybrid(|n| !keep.contains(&n), &device)
            };
            let (_, _, classifier) =
                guided_ddpm::weights::load_dir(Path::new("weights"), &device).unwrap();
            let mut pixels = Vec::new();
            for b in 0..n.div_ceil(10) {
                let classes: Vec<usize> = (0..NUM_CLASSES)
                    .flat_map(|c| std::iter::repeat_n(c, 10))
                    .collect();
                let settings = SampleSettings::new(
                    classes,
                    DEFAULT,
                    100,
                    Method::Ddpm,
                    1000 + b as u64,
                    BetaSchedule::Linear,
                );
                let x = Sampler::new(unet.clone(), classifier.clone(), settings, &device)
                    .unwrap()
                    .run(|_| std::ops::ControlFlow::Continue(()))
                    .unwrap();
                pixels.extend(x.try_into_vec_as::<f32>().unwrap());
                eprintln!("batch {b}: ink so far {:.5}", ink(&pixels).mean);
            }
            println!(
                "sample {n}/class keep f32 {keep:?}: ink {:.5}",
                ink(&pixels).mean
            );
        }
        _ => eprintln!("usage: quant_probe proxy | sample N [name ...]"),
    }
}

fn proxy(float: &UNet, weights: &Weights, device: &Device) {
    let digits = guided_ddpm::data::load(Path::new("data")).unwrap();
    let (_, held) = digits.split();
    // 20 held-out digits of each class.
    let mut per = [0usize; NUM_CLASSES];
    let idx: Vec<usize> = (0..held.len())
        .filter(|&i| {
            let c = held.labels[i] as usize;
            per[c] += 1;
            per[c] <= 20
        })
        .collect();
    let b = idx.len();
    let x0: Vec<f32> = idx.iter().flat_map(|&i| held.image(i)).collect();
    let x0 = Tensor::<4>::from_data(TensorData::new(x0, [b, 1, 28, 28]), device);
    let labels: Vec<usize> = idx.iter().map(|&i| held.labels[i] as usize).collect();
    let schedule = Schedule::new(BetaSchedule::Linear);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let ts = [50usize, 200, 400, 600, 800, 950];
    let inputs: Vec<(usize, Tensor<4>)> = ts
        .iter()
        .map(|&t| {
            let eps = gaussian(x0.dims(), &mut rng, device);
            (t, q_sample(&schedule, x0.clone(), eps, &vec![t; b]))
        })
        .collect();
    // The full schedule: step k is timestep k.
    let x0_ink = |unet: &UNet| -> Vec<f64> {
        inputs
            .iter()
            .map(|(t, xt)| {
                let tt = t_tensor(&vec![*t; b], device);
                let ec = unet.forward(xt.clone(), tt.clone(), label_tensor(&labels, device));
                let eu = unet.forward(xt.clone(), tt, label_tensor(&vec![NULL_CLASS; b], device));
                let eps = cfg_mix(ec, eu, DEFAULT.cfg_scale);
                let x0 = predict_x0(
                    &StepCoefs::at(
                        &schedule,
                        *t,
                        0.0,
                        guided_ddpm::settings::Method::Ddpm,
                        false,
                    ),
                    xt.clone(),
                    eps,
                );
                ink(&x0.try_into_vec_as::<f32>().unwrap()).mean
            })
            .collect()
    };
    let base = x0_ink(float);
    println!("t: {ts:?}");
    println!(
        "float x0 ink: {:?}",
        base.iter().map(|v| format!("{v:.5}")).collect::<Vec<_>>()
    );
    let report = |label: &str, unet: &UNet| {
        let d: Vec<f64> = x0_ink(unet).iter().zip(&base).map(|(a, b)| a - b).collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let d: Vec<String> = d.iter().map(|v| format!("{v:+.5}")).collect();
        println!("{mean:+.5} {label} {d:?}");
    };
    report("ALL int8", &weights.hybrid(|_| true, device));
    for name in &weights.quantized {
        let len = weights.float[name].values.len();
        report(
            &format!("{name} ({len})"),
            &weights.hybrid(|n| n == name, device),
        );
    }
}
