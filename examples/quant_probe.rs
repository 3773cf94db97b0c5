//! Which int8 weights of the U-Net bias the strokes? A probe run by hand, from the repository
//! root, on the EMA checkpoint in `checkpoints/` (the one `weights/` is exported from). It
//! quantizes every convolution and linear weight the export could (`store::to_safetensors`'s
//! rule), ignoring `UNet::F32_WEIGHTS`, which it is there to choose.
//!
//! `cargo run --release --example quant_probe -- proxy`
//!   The float model's guided (default setting) x0 prediction on 20 held-out digits of each
//!   class noised at six t, as mean ink; then the shift of that ink with every quantizable
//!   weight in int8, and with each one alone in int8. One line per weight, about 15 s each here.
//! `cargo run --release --example quant_probe -- sample N [name ...]`
//!   Mean ink of N per class DDPM samples at the default setting (100 steps, `eval`'s seeds),
//!   every quantizable weight in int8 except the named ones; `float` alone keeps all f32.
//!   `sample 20 up0.skip.weight` samples what `export` writes now.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::guidance::{cfg_mix, DEFAULT};
use guided_ddpm::nn::{label_tensor, t_tensor, UNet, NULL_CLASS, NUM_CLASSES};
use guided_ddpm::sampler::{Method, SampleSettings, Sampler};
use guided_ddpm::schedule::{BetaSchedule, Schedule};
use guided_ddpm::weights::quant::{dequantize, quantize};

#[derive(Default)]
struct Names {
    path: Vec<(String, String)>,
    /// (name, owner type, shape, values)
    out: Vec<(String, String, Vec<usize>, Vec<f32>)>,
}
impl ModuleVisitor for Names {
    fn enter_module(&mut self, name: &str, c: &str) {
        self.path
            .push((name.into(), c.trim_start_matches("Struct:").into()));
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let name = self
            .path
            .iter()
            .map(|p| p.0.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let owner = self.path.last().map(|p| p.1.clone()).unwrap_or_default();
        let t = p.val();
        self.out.push((
            name,
            owner,
            t.dims().to_vec(),
            t.try_into_vec_as::<f32>().unwrap(),
        ));
    }
}

struct Replace {
    path: Vec<String>,
    with: HashMap<String, Vec<f32>>,
}
impl ModuleMapper for Replace {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.with.remove(&self.path.join(".")) {
            Some(v) => {
                let shape = p.lazy_shape().to_vec();
                let t = Tensor::<D>::from_data(TensorData::new(v, shape), &p.lazy_device());
                Param::initialized(p.id, t)
            }
            None => p,
        }
    }
}

fn axis(owner: &str, shape: &[usize]) -> Option<usize> {
    match (owner, shape.len()) {
        ("Conv2d", 4) if shape[0] > 1 => Some(0),
        ("Linear", 2) => Some(1),
        _ => None,
    }
}

/// `float` with the weights `int8` picks replaced by their int8 round trip.
fn hybrid(float: &UNet, quant: &[(String, Vec<f32>, usize)], int8: impl Fn(&str) -> bool) -> UNet {
    let with = quant
        .iter()
        .filter(|(n, _, _)| int8(n))
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect();
    float.clone().map(&mut Replace { path: vec![], with })
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
    let mut names = Names::default();
    float.visit(&mut names);
    let quant: Vec<(String, Vec<f32>, usize)> = names
        .out
        .iter()
        .filter_map(|(n, o, s, v)| {
            let a = axis(o, s)?;
            Some((n.clone(), dequantize(&quantize(v, s, a)), v.len()))
        })
        .collect();
    match args.first().map(String::as_str) {
        Some("proxy") => proxy(&float, &quant, &device),
        Some("sample") => {
            let n: usize = args[1].parse().unwrap();
            let keep: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            let unet = if keep == ["float"] {
                float.clone()
            } else {
                for k in &keep {
                    assert!(quant.iter().any(|q| q.0 == *k), "no layer {k}");
                }
                hybrid(&float, &quant, |n| !keep.contains(&n))
            };
            let (_, _, classifier) =
                guided_ddpm::weights::load_dir(Path::new("weights"), &device).unwrap();
            let mut sum = 0.0;
            let mut count = 0usize;
            for b in 0..n.div_ceil(10) {
                let classes: Vec<usize> = (0..NUM_CLASSES)
                    .flat_map(|c| std::iter::repeat_n(c, 10))
                    .collect();
                let settings = SampleSettings {
                    classes,
                    guidance: DEFAULT,
                    steps: 100,
                    method: Method::Ddpm,
                    seed: 1000 + b as u64,
                    schedule: BetaSchedule::Linear,
                    first_image: 0,
                    per_sample: Vec::new(),
                    same_noise: false,
                    edit: None,
                };
                let x = Sampler::new(unet.clone(), classifier.clone(), settings, &device)
                    .unwrap()
                    .run(|_| std::ops::ControlFlow::Continue(()))
                    .unwrap();
                let v = x.try_into_vec_as::<f32>().unwrap();
                sum += v.iter().map(|&x| (x as f64 + 1.0) / 2.0).sum::<f64>();
                count += v.len();
                eprintln!("batch {b}: ink so far {:.5}", sum / count as f64);
            }
            println!(
                "sample {n}/class keep f32 {keep:?}: ink {:.5}",
                sum / count as f64
            );
        }
        _ => eprintln!("usage: quant_probe proxy | sample N [name ...]"),
    }
}

fn proxy(float: &UNet, quant: &[(String, Vec<f32>, usize)], device: &Device) {
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
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let ts = [50usize, 200, 400, 600, 800, 950];
    let inputs: Vec<(usize, Tensor<4>)> = ts
        .iter()
        .map(|&t| {
            let e: Vec<f32> = (0..b * 784)
                .map(|_| {
                    // Box-Muller
                    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
                })
                .collect();
            let e = Tensor::<4>::from_data(TensorData::new(e, [b, 1, 28, 28]), device);
            let a = schedule.sqrt_alphas_cumprod[t];
            let s = schedule.sqrt_one_minus_alphas_cumprod[t];
            (t, x0.clone() * a + e * s)
        })
        .collect();
    let x0_ink = |unet: &UNet| -> Vec<f64> {
        inputs
            .iter()
            .map(|(t, xt)| {
                let tt = t_tensor(&vec![*t; b], device);
                let ec = unet.forward(xt.clone(), tt.clone(), label_tensor(&labels, device));
                let eu = unet.forward(xt.clone(), tt, label_tensor(&vec![NULL_CLASS; b], device));
                let eps = cfg_mix(ec, eu, DEFAULT.cfg_scale);
                let x0 = (xt.clone() * schedule.sqrt_recip_alphas_cumprod[*t]
                    - eps * schedule.sqrt_recipm1_alphas_cumprod[*t])
                    .clamp(-1.0, 1.0);
                let v = x0.try_into_vec_as::<f32>().unwrap();
                v.iter().map(|&x| (x as f64 + 1.0) / 2.0).sum::<f64>() / v.len() as f64
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
        let v = x0_ink(unet);
        let d: Vec<String> = v
            .iter()
            .zip(&base)
            .map(|(a, b)| format!("{:+.5}", a - b))
            .collect();
        let mean = v.iter().zip(&base).map(|(a, b)| a - b).sum::<f64>() / v.len() as f64;
        println!("{mean:+.5} {label} {d:?}");
    };
    report("ALL int8", &hybrid(float, quant, |_| true));
    for (name, _, len) in quant {
        report(
            &format!("{name} ({len})"),
            &hybrid(float, quant, |n| n == name),
        );
    }
}
