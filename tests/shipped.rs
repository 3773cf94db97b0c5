//! The weights in `weights/`: they decode, they are the int8 image of the committed EMA
//! checkpoints, and int8 costs the guidance classifier less than a point of accuracy.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use guided_ddpm::diffusion::q_sample;
use guided_ddpm::nn::{t_tensor, Classifier};
use guided_ddpm::noise::gaussian;
use guided_ddpm::schedule::{BetaSchedule, Schedule, T};
use guided_ddpm::train::{load_ema, read_state, weight_files, CheckpointFiles};
use guided_ddpm::weights::manifest::sha256_hex;
use guided_ddpm::weights::{self, Manifest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn shipped() -> (Manifest, guided_ddpm::nn::UNet, Classifier) {
    weights::load_dir(Path::new("weights"), &Device::flex()).expect("the shipped weights load")
}

fn params<M: Module>(m: &M) -> Vec<(Vec<usize>, Vec<f32>)> {
    struct V(Vec<(Vec<usize>, Vec<f32>)>);
    impl ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let t = p.val();
            self.0
                .push((t.dims().to_vec(), t.try_into_vec_as::<f32>().unwrap()));
        }
    }
    let mut v = V(Vec::new());
    m.visit(&mut v);
    v.0
}

/// The largest error of each int8 tensor stays within half a quantization step of its channel,
/// bounded here by half a step of the tensor's largest channel.
fn assert_int8_image<M: Module>(float: &M, int8: &M, what: &str) {
    let (a, b) = (params(float), params(int8));
    assert_eq!(a.len(), b.len(), "{what}: parameter count");
    for ((shape, x), (_, y)) in a.iter().zip(&b) {
        let max = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            err <= max / 254.0 + 1e-6,
            "{what} {shape:?}: error {err} over bound {}",
            max / 254.0
        );
    }
}

#[test]
fn the_shipped_weights_are_the_int8_image_of_the_committed_checkpoints() {
    let (m, unet, classifier) = shipped();
    let dir = Path::new("checkpoints");
    for (name, steps) in [
        ("unet", &m.provenance["unet"]["steps"]),
        ("classifier", &m.provenance["classifier"]["steps"]),
    ] {
        let state = read_state(&CheckpointFiles::new(dir, name).state).unwrap();
        assert_eq!(
            Some(state.step as u64),
            steps.as_u64(),
            "checkpoints/{name} is at step {} but weights/ were exported at {steps}: run `guided-ddpm export`",
            state.step
        );
    }
    let device = Device::flex();
    let float_unet = load_ema(m.unet.config.init(&device), dir, "unet").unwrap();
    let float_classifier = load_ema(m.classifier.config.init(&device), dir, "classifier").unwrap();
    assert_int8_image(&float_unet, &unet, "unet");
    assert_int8_image(&float_classifier, &classifier, "classifier");
    // Byte for byte what `export` writes from them now, layers kept f32 included.
    let (ub, cb) = weight_files(&float_unet, &float_classifier).unwrap();
    let files = [
        ("unet", &ub, &m.unet.file, &m.unet.sha256),
        ("classifier", &cb, &m.classifier.file, &m.classifier.sha256),
    ];
    for (net, bytes, file, sha256) in files {
        assert_eq!(
            &sha256_hex(bytes),
            sha256,
            "weights/{file} is not what `guided-ddpm export` writes from checkpoints/{net} now: run it"
        );
    }
}

/// Accuracy on q_sample(x0, t) of the held-out digits, t uniform over 0..T, fixed seed.
fn noisy_accuracy(c: &Classifier, digits: &guided_ddpm::data::Digits) -> f64 {
    let device = Device::flex();
    let s = Schedule::new(BetaSchedule::Linear);
    let mut rng = StdRng::seed_from_u64(99);
    let idx: Vec<usize> = (0..digits.len()).collect();
    let mut correct = 0;
    for chunk in idx.chunks(200) {
        let t: Vec<usize> = chunk.iter().map(|_| rng.random_range(0..T)).collect();
        let v: Vec<f32> = chunk.iter().flat_map(|&i| digits.image(i)).collect();
        let x0 = Tensor::<4>::from_data(TensorData::new(v, [chunk.len(), 1, 28, 28]), &device);
        let x = q_sample(&s, x0.clone(), gaussian(x0.dims(), &mut rng, &device), &t);
        let p = softmax(c.forward(x, t_tensor(&t, &device)), 1)
            .try_into_vec_as::<f32>()
            .unwrap();
        for (k, &i) in chunk.iter().enumerate() {
            let row = &p[k * 10..(k + 1) * 10];
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            correct += (best == digits.labels[i] as usize) as usize;
        }
    }
    correct as f64 / digits.len() as f64
}

#[test]
fn int8_costs_the_guidance_classifier_under_one_point_on_held_out_digits() {
    let (m, _, int8) = shipped();
    let float = load_ema(
        m.classifier.config.init(&Device::flex()),
        Path::new("checkpoints"),
        "classifier",
    )
    .unwrap();
    let (_, held) = guided_ddpm::data::load(Path::new("data"))
        .expect("`make data` fetched the digits")
        .split();
    let (a, b) = (noisy_accuracy(&float, &held), noisy_accuracy(&int8, &held));
    eprintln!(
        "noisy held-out accuracy: float {:.2}%, int8 {:.2}%",
        100.0 * a,
        100.0 * b
    );
    assert!((a - b).abs() <= 0.01, "float {a} vs int8 {b}");
    assert!(a > 0.5, "the classifier learned something: {a}");
}

/// `classes` sampled from the shipped weights on flex (DDPM, linear schedule), with the frozen
/// guidance classifier that steered them.
fn sample_shipped(
    guidance: guided_ddpm::guidance::Guidance,
    classes: &[usize],
    steps: usize,
    seed: u64,
    method: guided_ddpm::settings::Method,
) -> (Tensor<4>, Classifier) {
    use guided_ddpm::sampler::Sampler;
    use guided_ddpm::settings::SampleSettings;
    let (_, unet, classifier) = shipped();
    let device = Device::flex();
    let classifier = classifier.to_device(&device.clone().autodiff()).freeze();
    let settings = SampleSettings::new(
        classes.to_vec(),
        guidance,
        steps,
        method,
        seed,
        BetaSchedule::Linear,
    );
    let x = Sampler::new(unet, classifier.clone(), settings, &device)
        .unwrap()
        .run(|_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    (x, classifier)
}

/// Guidance pushes toward the asked class, under both samplers: ten steps of classifier guidance
/// at s = 4 from the same seed as ten unguided ones (scale 0, same starting noise and, for DDPM,
/// per-step noise) leave the shipped classifier more sure of the asked class, on average over 16
/// samples of mixed classes. A flipped sign in the guidance shift makes the guided run the less
/// sure one. Checked by hand: with `condition_mean` subtracting the shift the DDPM half failed,
/// and with `condition_score` adding it the DDIM half failed.
#[test]
fn classifier_guidance_raises_the_asked_class_probability() {
    use guided_ddpm::guidance::{classifier_log_prob, Guidance, Mode};
    use guided_ddpm::settings::Method;
    let classes: Vec<usize> = (0..16).map(|i| i % 10).collect();
    for method in Method::ALL {
        let final_log_p = |scale: f64| -> f64 {
            let guidance = Guidance::new(Mode::Classifier, scale, 0.0);
            let (x, classifier) = sample_shipped(guidance, &classes, 10, 11, method);
            let t = t_tensor(&vec![0; classes.len()], &x.device());
            let v = classifier_log_prob(&classifier, x, t, &classes)
                .try_into_vec_as::<f32>()
                .unwrap();
            v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
        };
        let (guided, unguided) = (final_log_p(4.0), final_log_p(0.0));
        assert!(
            guided > unguided + 0.5,
            "{method:?}: mean log p(y): guided {guided:.3}, unguided {unguided:.3}"
        );
    }
}

/// End to end, re-measured rather than read from docs/eval.json: the shipped int8 weights at the
/// default guidance draw two digits of every class in 25 DDPM steps, and the judge (a separate
/// clean-digit classifier, never used for guidance) labels at least 18 of the 20 as asked. The
/// full evaluation (100 steps, 500 samples) measured 100.0%. Checked by hand: with the
/// classifier-free mix's two branches swapped (pushing away from the class), the judge read 9 of
/// 20 as asked and this test failed.
#[test]
fn the_judge_reads_the_asked_digit_in_samples_from_the_shipped_weights() {
    use guided_ddpm::nn::ClassifierConfig;
    let classes: Vec<usize> = (0..20).map(|i| i % 10).collect();
    let (x, _) = sample_shipped(
        guided_ddpm::guidance::DEFAULT,
        &classes,
        25,
        7,
        guided_ddpm::settings::Method::Ddpm,
    );
    let device = x.device();
    let judge = load_ema(
        ClassifierConfig::new().init(&device),
        Path::new("checkpoints"),
        "judge",
    )
    .unwrap();
    let logits = judge
        .forward(x, t_tensor(&vec![0; classes.len()], &device))
        .try_into_vec_as::<f32>()
        .unwrap();
    let labels: Vec<usize> = logits
        .chunks_exact(10)
        .map(|row| (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap())
        .collect();
    let right = labels.iter().zip(&classes).filter(|(a, b)| a == b).count();
    assert!(right >= 18, "the judge read {labels:?} for {classes:?}");
}
