//! `guided-ddpm-lab eval`: how well the shipped weights draw the asked digit.
//!
//! A judge (a classifier trained on clean digits only, never the guidance classifier, which would
//! be circular) labels generated samples; the judged accuracy per class, and the Frechet distance
//! of judge features to the held-out digits, are reported per guidance setting next to the
//! real-vs-real floor. Results go to `docs/eval.json` (one entry per setting, so an interrupted
//! run continues where it stopped) and `docs/EVAL.md` with a sample grid per setting.

pub mod crosscheck;
pub mod curve;
pub mod fidelity;
pub mod frechet;
pub mod knowable;
pub mod plot;
pub mod steps;
pub mod targets;

use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use guided_ddpm::data::Digits;
use guided_ddpm::diffusion::q_sample;
use guided_ddpm::grid;
use guided_ddpm::guidance::{Grad, Guidance, Mode};
use guided_ddpm::nn::{t_tensor, Classifier, ClassifierConfig, UNet, NUM_CLASSES, SIDE};
use guided_ddpm::noise::gaussian;
use guided_ddpm::sampler::Sampler;
use guided_ddpm::schedule::{BetaSchedule, Schedule, T};
use guided_ddpm::settings::{Method, SampleSettings};
use guided_ddpm::weights::{self, Manifest};
use guided_ddpm::Error;

/// One evaluated guidance setting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SettingResult {
    pub label: String,
    pub guidance: Guidance,
    pub weights: String,
    pub n_per_class: usize,
    /// The reverse step; DDPM in rows from before the report recorded it.
    #[serde(default)]
    pub method: Method,
    pub steps: usize,
    pub accuracy_per_class: Vec<f64>,
    pub accuracy: f64,
    pub frechet: f64,
    /// Improved precision and recall against the held-out digits (judge features, k =
    /// `fidelity::K`); absent (0) in rows evaluated before they were measured.
    #[serde(default)]
    pub precision: f64,
    #[serde(default)]
    pub recall: f64,
    #[serde(default)]
    pub ink: fidelity::Ink,
    /// The share of the samples the judge assigns to each class, whatever was asked: for
    /// unguided sampling, the model's own mix of digits (the held-out digits' is about 0.1 each).
    #[serde(default)]
    pub judged_share: Vec<f64>,
    pub seconds: f64,
}

impl Report {
    /// The real-vs-real FD at the settings' N, where the report has it.
    pub fn same_n_floor(&self) -> Option<f64> {
        (self.real_vs_real_same_n_frechet > 0.0).then_some(self.real_vs_real_same_n_frechet)
    }

    /// The unguided model's floor, where the report has it: the mean and the standard deviation
    /// of the FDs of real digits drawn at random at the same N.
    pub fn random_floor(&self) -> Option<(f64, f64)> {
        mean_sd(&self.real_vs_real_random_frechet)
    }

    /// The spread of FD from one draw of real digits to the next at the settings' N: the mean
    /// and the standard deviation of `real_vs_real_same_n_draws`, where the report has them.
    pub fn same_n_spread(&self) -> Option<(f64, f64)> {
        mean_sd(&self.real_vs_real_same_n_draws)
    }

    /// The int8 row of unguided sampling, if it was measured.
    pub fn unguided(&self) -> Option<&SettingResult> {
        self.settings
            .iter()
            .find(|x| x.weights == "int8" && x.guidance.mode == Mode::None)
    }
}

/// The mean and the sample standard deviation of `v`, when it has two values or more.
fn mean_sd(v: &[f64]) -> Option<(f64, f64)> {
    (v.len() >= 2).then(|| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    })
}

impl SettingResult {
    /// Whether the row has the fidelity metrics (rows from before they existed do not).
    pub fn has_fidelity(&self) -> bool {
        self.ink.mean > 0.0
    }

    /// The row's name: the setting's label, followed by its sampler and steps unless they are
    /// DDPM's 100 (the table's rows from before other samplers were evaluated).
    pub fn name(&self) -> String {
        run_name(&self.label, self.method, self.steps)
    }

    /// Whether the row is of `label` sampled by `method` in `steps`.
    pub fn is_run(&self, label: &str, method: Method, steps: usize) -> bool {
        self.label == label && self.method == method && self.steps == steps
    }
}

/// A row's name ([`SettingResult::name`]).
pub fn run_name(label: &str, method: Method, steps: usize) -> String {
    match (method, steps) {
        (Method::Ddpm, 100) => label.to_string(),
        _ => format!("{label} · {} {steps}", method.name()),
    }
}

/// Everything `docs/eval.json` holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// sha256 of the evaluated U-Net file: results of other weights are discarded.
    pub unet_sha256: String,
    /// sha256 of the guidance classifier the rows that take its gradient were drawn with: when
    /// the shipped classifier changes, those rows are discarded (the others never read its
    /// gradient). Empty in reports from before it was recorded, whose rows are all of the
    /// classifier shipped when it was.
    #[serde(default)]
    pub classifier_sha256: String,
    pub judge_held_out_accuracy: f64,
    /// Guidance classifier (int8) on held-out q_sample(x0, t), t in each quarter of 0..T.
    pub classifier_accuracy_by_t_quartile: Vec<f64>,
    /// Frechet distance of judge features, 1,000 train digits vs the 1,000 held-out ones.
    pub real_vs_real_frechet: f64,
    /// Frechet distance of judge features, `n_per_class` train digits of each class (as many as
    /// a setting samples) vs the 1,000 held-out ones: the floor a setting's FD is held to, since
    /// FD at a smaller N sits higher. 0 in reports from before it was recorded.
    #[serde(default)]
    pub real_vs_real_same_n_frechet: f64,
    /// Frechet distance of judge features of `RANDOM_DRAWS` sets of train digits drawn at random
    /// (as many in all as a setting samples, any class) vs the 1,000 held-out ones: the floor of
    /// unguided sampling, whose class mix is its own and varies from draw to draw, where the
    /// same-N floor above has exactly `n_per_class` of each class. Empty in reports from before
    /// it was recorded.
    #[serde(default)]
    pub real_vs_real_random_frechet: Vec<f64>,
    /// Frechet distance of judge features of `RANDOM_DRAWS` sets of `n_per_class` train digits
    /// of each class, drawn at random, vs the 1,000 held-out ones: the spread of the same-N
    /// floor from one draw of real digits to the next, the yardstick for whether two settings'
    /// FDs differ by more than the luck of the draw. Empty in reports from before it was
    /// recorded.
    #[serde(default)]
    pub real_vs_real_same_n_draws: Vec<f64>,
    /// Precision and recall of real train digits (`n_per_class` of each class, as many as a
    /// setting samples) against the held-out ones: what a perfect sampler would score.
    #[serde(default)]
    pub real_vs_real_precision_recall: [f64; 2],
    /// Ink of the 1,000 held-out digits.
    #[serde(default)]
    pub held_out_ink: fidelity::Ink,
    /// Ink of the real train digits that the same-N floors use (`n_per_class` of each class):
    /// one draw of real digits at the settings' N. Zero in reports from before it was recorded.
    #[serde(default)]
    pub real_vs_real_ink: fidelity::Ink,
    /// Ink of all the train digits, each class weighted equally as the guided settings sample
    /// them: the ink the U-Net is trained to reproduce. Zero in reports from before it was
    /// recorded.
    #[serde(default)]
    pub train_ink: fidelity::Ink,
    pub settings: Vec<SettingResult>,
}

/// How many random draws of real digits the unguided floor averages
/// (`Report::real_vs_real_random_frechet`), and their seed.
pub const RANDOM_DRAWS: usize = 20;
const RANDOM_SEED: u64 = 7;

/// The settings the table compares, in order: (label, guidance, float weights instead of int8).
pub fn settings() -> Vec<(String, Guidance, bool)> {
    let g = Guidance::new;
    let mut out = vec![("none".to_string(), g(Mode::None, 0.0, 0.0), false)];
    for s in [0.5, 1.0, 2.0, 4.0, 8.0] {
        out.push((
            format!("classifier s={s}"),
            g(Mode::Classifier, s, 0.0),
            false,
        ));
    }
    // w = 0 is the conditional model alone, (1 + w) eps(x, y) - w eps(x, null) at w = 0.
    for w in [0.0, 0.25, 0.375, 0.5, 1.0, 2.0] {
        out.push((format!("free w={w}"), g(Mode::Free, 0.0, w), false));
    }
    // Weak settings too: the strong ones over-ink (docs/EVAL.md), and the default is picked as
    // the lowest FD among the settings judged at >= 99% that meet its other targets (issue 11).
    for (s, w) in [
        (1.0, 0.0),
        (1.0, 0.25),
        (1.0, 0.5),
        (2.0, 0.5),
        (2.0, 1.0),
        (4.0, 1.0),
    ] {
        out.push((format!("both s={s} w={w}"), g(Mode::Both, s, w), false));
    }
    // Classifier guidance applied where and as it helps (issue 32): a weaker gradient, and the
    // gradient only over the middle of the noise levels (`Guidance::interval`), where the
    // classifier reads the digit but has not yet settled its strokes (docs/EVAL.md, "What the
    // noise leaves knowable").
    for (mode, s, w, interval) in [
        (Mode::Both, 0.5, 0.0, None),
        (Mode::Both, 0.75, 0.0, None),
        (Mode::Both, 1.0, 0.0, Some([250, 749])),
        (Mode::Both, 2.0, 0.0, Some([250, 749])),
        (Mode::Classifier, 8.0, 0.0, Some([250, 749])),
    ] {
        let guidance = Guidance {
            interval,
            ..g(mode, s, w)
        };
        out.push((guidance.label(), guidance, false));
    }
    // The other forms of the gradient (`Guidance::grad`), each at the s that drew its best
    // digits in a 20-per-class sweep of 2026-12-05 (docs/EVAL.md, "Forms of the gradient"):
    // normalised to the model's push, and taken at the predicted x0; with the conditional model,
    // and alone on the unconditional one (the paper's setting).
    for (mode, s, grad) in [
        (Mode::Both, 0.01, Grad::Norm),
        (Mode::Both, 16.0, Grad::X0),
        (Mode::Both, 32.0, Grad::X0),
        (Mode::Classifier, 0.08, Grad::Norm),
        (Mode::Classifier, 16.0, Grad::X0),
    ] {
        let guidance = Guidance {
            grad,
            ..g(mode, s, 0.0)
        };
        out.push((guidance.label(), guidance, false));
    }
    out
}

#[derive(clap::Args)]
pub struct EvalOptions {
    /// Folder with the int8 weights to judge (read only).
    #[arg(long, default_value = "weights")]
    pub weights: PathBuf,
    /// Folder with the judge and the float EMA checkpoints.
    #[arg(long, default_value = "checkpoints")]
    pub checkpoints: PathBuf,
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Where eval.json, EVAL.md and the sample grids go.
    #[arg(long, default_value = "docs")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub n_per_class: usize,
    /// Reverse steps per sample; a list (`8,15,100`) evaluates each setting at each.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub steps: Vec<usize>,
    /// The reverse step (ddpm, ddim, dpm, dpm-sde); a list evaluates each setting with each.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ddpm")]
    pub method: Vec<Method>,
    /// Also evaluate this setting with the float EMA weights (int8-vs-float check).
    #[arg(skip = Some(("default".to_string(), guided_ddpm::guidance::DEFAULT)))]
    pub float_check: Option<(String, Guidance)>,
    /// Only these settings (labels as in docs/EVAL.md, e.g. "none", "classifier s=2",
    /// "default (float)"; a label of a setting the list does not hold, such as "both s=1 w=0
    /// t=500-999", is evaluated too); repeatable. All by default.
    #[arg(long)]
    pub only: Vec<String>,
    /// Only rewrite EVAL.md and the accuracy-against-FD plot from eval.json (no sampling).
    #[arg(long)]
    pub report_only: bool,
}

/// Judge predictions and features of a batch of images in [-1, 1].
fn judge(judge: &Classifier, x: Tensor<4>) -> (Vec<usize>, Vec<f32>) {
    let b = x.dims()[0];
    let device = x.device();
    let features = judge.features(x, t_tensor(&vec![0; b], &device));
    let logits = judge.head_forward(features.clone());
    let p = softmax(logits, 1)
        .try_into_vec_as::<f32>()
        .expect("judge output");
    let pred = p.chunks(NUM_CLASSES).map(argmax).collect();
    (
        pred,
        features.try_into_vec_as::<f32>().expect("judge features"),
    )
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::MIN),
            |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
        )
        .0
}

fn batch_of(digits: &Digits, idx: &[usize], device: &Device) -> Tensor<4> {
    let v: Vec<f32> = idx.iter().flat_map(|&i| digits.image(i)).collect();
    Tensor::from_data(TensorData::new(v, [idx.len(), 1, SIDE, SIDE]), device)
}

/// Judge accuracy and features over a whole digit set.
fn judge_digits(
    j: &Classifier,
    digits: &Digits,
    idx: &[usize],
    device: &Device,
) -> (f64, Vec<f32>) {
    let (mut correct, mut feats) = (0, Vec::new());
    for chunk in idx.chunks(250) {
        let (pred, f) = judge(j, batch_of(digits, chunk, device));
        correct += chunk
            .iter()
            .zip(&pred)
            .filter(|(&i, &p)| digits.labels[i] as usize == p)
            .count();
        feats.extend(f);
    }
    (correct as f64 / idx.len() as f64, feats)
}

/// Accuracy of the noise-aware classifier on q_sample(x0, t), t uniform within each quarter.
fn classifier_by_quartile(
    c: &Classifier,
    held: &Digits,
    kind: BetaSchedule,
    device: &Device,
) -> Vec<f64> {
    let schedule = Schedule::new(kind);
    let mut rng = StdRng::seed_from_u64(2024);
    let all: Vec<usize> = (0..held.len()).collect();
    (0..4)
        .map(|q| {
            let mut correct = 0;
            for chunk in all.chunks(250) {
                let t: Vec<usize> = chunk
                    .iter()
                    .map(|_| rng.random_range(q * T / 4..(q + 1) * T / 4))
                    .collect();
                let x0 = batch_of(held, chunk, device);
                let eps = gaussian(x0.dims(), &mut rng, device);
                let x = q_sample(&schedule, x0, eps, &t);
                let p = softmax(c.forward(x, t_tensor(&t, device)), 1)
                    .try_into_vec_as::<f32>()
                    .expect("logits");
                correct += chunk
                    .iter()
                    .zip(p.chunks(NUM_CLASSES))
                    .filter(|(&i, p)| held.labels[i] as usize == argmax(p))
                    .count();
            }
            correct as f64 / held.len() as f64
        })
        .collect()
}

/// The real digits a setting's samples are set against, as the judge sees them: the held-out
/// digits, and `n` train digits of each class (the first ones, as many as a setting samples)
/// with their FD, precision and recall against the held-out ones, what a perfect sampler would
/// score.
pub(crate) struct RealDigits {
    /// The judge's accuracy on the held-out digits.
    pub held_accuracy: f64,
    pub held_feats: Vec<f32>,
    /// FD of the `n` train digits of each class against the held-out ones: the floor a setting
    /// sampling `n` per class is held to (FD falls as N grows).
    pub same_n_frechet: f64,
    pub precision: f64,
    pub recall: f64,
    pub held_ink: fidelity::Ink,
    /// Ink of the `n` train digits of each class.
    pub same_n_ink: fidelity::Ink,
    /// Ink of all train digits, classes weighted equally.
    pub train_ink: fidelity::Ink,
}

impl RealDigits {
    pub fn judge(
        judge: &Classifier,
        train: &Digits,
        held: &Digits,
        n: usize,
        device: &Device,
    ) -> Self {
        let held_idx: Vec<usize> = (0..held.len()).collect();
        let (held_accuracy, held_feats) = judge_digits(judge, held, &held_idx, device);
        let same_n = first_per_class(train, n);
        let (_, same_n_feats) = judge_digits(judge, train, &same_n, device);
        let d = judge.feature_dim();
        let (precision, recall) =
            fidelity::precision_recall(&held_feats, &same_n_feats, d, fidelity::K);
        let held_pixels: Vec<f32> = (0..held.len()).flat_map(|i| held.image(i)).collect();
        let same_n_pixels: Vec<f32> = same_n.iter().flat_map(|&i| train.image(i)).collect();
        RealDigits {
            held_accuracy,
            same_n_frechet: frechet::between(&same_n_feats, &held_feats, d),
            held_feats,
            precision,
            recall,
            held_ink: fidelity::ink(&held_pixels),
            same_n_ink: fidelity::ink(&same_n_pixels),
            train_ink: fidelity::balanced_ink(train),
        }
    }
}

/// Samples `n` per class with one setting; returns the judged result and the first ten samples
/// of each class as grey bytes (row per class).
#[allow(clippy::too_many_arguments)]
fn run_setting(
    label: &str,
    guidance: Guidance,
    (method, steps): (Method, usize),
    unet: &UNet,
    classifier: &Classifier,
    judge_net: &Classifier,
    held_feats: &[f32],
    opts: &EvalOptions,
    weights_name: &str,
    schedule: BetaSchedule,
    device: &Device,
) -> Result<(SettingResult, Vec<u8>), Error> {
    let started = std::time::Instant::now();
    let batches = opts.n_per_class.div_ceil(PER_BATCH);
    let (mut correct, mut feats, mut grid_rows) = (
        vec![0usize; NUM_CLASSES],
        Vec::new(),
        vec![Vec::new(); NUM_CLASSES],
    );
    let mut total = vec![0usize; NUM_CLASSES];
    let mut judged = [0usize; NUM_CLASSES];
    let mut pixels = Vec::new();
    for b in 0..batches {
        let settings = batch_settings(b, guidance, (method, steps), schedule);
        let classes = settings.classes.clone();
        let x = Sampler::new(unet.clone(), classifier.clone(), settings, device)?
            .run(|_| std::ops::ControlFlow::Continue(()))
            .expect("never cancelled");
        let values = x.clone().try_into_vec_as::<f32>().expect("samples");
        pixels.extend_from_slice(&values);
        let (pred, f) = judge(judge_net, x);
        feats.extend(f);
        for (i, (&c, &p)) in classes.iter().zip(&pred).enumerate() {
            correct[c] += (c == p) as usize;
            total[c] += 1;
            judged[p] += 1;
            if b == 0 {
                grid_rows[c].extend(grid::to_bytes(
                    &values[i * SIDE * SIDE..(i + 1) * SIDE * SIDE],
                ));
            }
        }
        eprintln!(
            "  {label}: batch {}/{batches}, {:.0} s",
            b + 1,
            started.elapsed().as_secs_f64()
        );
    }
    let per_class: Vec<f64> = correct
        .iter()
        .zip(&total)
        .map(|(&c, &t)| c as f64 / t as f64)
        .collect();
    let d = judge_net.feature_dim();
    let (precision, recall) = fidelity::precision_recall(held_feats, &feats, d, fidelity::K);
    let result = SettingResult {
        label: label.to_string(),
        guidance,
        weights: weights_name.to_string(),
        n_per_class: total[0],
        method,
        steps,
        accuracy: per_class.iter().sum::<f64>() / NUM_CLASSES as f64,
        accuracy_per_class: per_class,
        frechet: frechet::between(&feats, held_feats, d),
        precision,
        recall,
        ink: fidelity::ink(&pixels),
        judged_share: {
            let n = total.iter().sum::<usize>() as f64;
            judged.iter().map(|&j| j as f64 / n).collect()
        },
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((result, grid_rows.concat()))
}

/// Samples of each class in one of eval's batches.
pub const PER_BATCH: usize = 10;

/// Batch `b` of eval's samples of a setting: [`PER_BATCH`] of each class, in class order, from
/// seed 1000 + b. The cross-check draws the same.
pub fn batch_settings(
    b: usize,
    guidance: Guidance,
    (method, steps): (Method, usize),
    schedule: BetaSchedule,
) -> SampleSettings {
    SampleSettings {
        classes: (0..NUM_CLASSES)
            .flat_map(|c| std::iter::repeat_n(c, PER_BATCH))
            .collect(),
        guidance,
        steps,
        method,
        seed: 1000 + b as u64,
        schedule,
        first_image: 0,
        per_sample: Vec::new(),
        same_noise: false,
        edit: None,
    }
}

/// Indices of the first `n` digits of each class.
fn first_per_class(digits: &Digits, n: usize) -> Vec<usize> {
    let mut per = [0usize; NUM_CLASSES];
    (0..digits.len())
        .filter(|&i| {
            let c = digits.labels[i] as usize;
            per[c] += 1;
            per[c] <= n
        })
        .collect()
}

fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .replace("--", "-")
}

impl EvalOptions {
    /// Options that only rewrite the report in `out` from its JSON files (`--report-only`).
    pub fn report_only(out: &std::path::Path) -> Self {
        EvalOptions {
            weights: "weights".into(),
            checkpoints: "checkpoints".into(),
            data: "data".into(),
            out: out.to_path_buf(),
            n_per_class: 50,
            steps: vec![100],
            method: vec![Method::Ddpm],
            float_check: None,
            only: Vec::new(),
            report_only: true,
        }
    }

    /// Rejects counts the evaluation cannot use, with a sentence naming the flag.
    pub fn validate(&self) -> Result<(), Error> {
        // The real-vs-real rows take as many train digits per class as a setting samples; the
        // smallest class (5) has 763 train digits.
        if !(1..=750).contains(&self.n_per_class) {
            return Err(Error::Setting(format!(
                "--n-per-class must be from 1 to 750, got {}",
                self.n_per_class
            )));
        }
        if let Some(bad) = self.steps.iter().find(|&&n| n == 0 || n > T) {
            return Err(Error::Setting(format!(
                "--steps must be from 1 to {T}, got {bad}"
            )));
        }
        if self.steps.is_empty() || self.method.is_empty() {
            return Err(Error::Setting(
                "--steps and --method each need at least one value".into(),
            ));
        }
        Ok(())
    }
}

/// Runs (or continues) the evaluation and writes `eval.json`, `EVAL.md` and the grids in `out`.
pub fn run(opts: &EvalOptions) -> Result<Report, Error> {
    opts.validate()?;
    let json_path = opts.out.join("eval.json");
    if opts.report_only {
        let manifest = weights::read_manifest(&opts.weights)?;
        let text = std::fs::read_to_string(&json_path)
            .map_err(Error::io(format!("reading {}", json_path.display())))?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{} is corrupt: {e}", json_path.display())))?;
        write_report(&report, &manifest, opts)?;
        return Ok(report);
    }
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let (manifest, unet, classifier) = weights::load_dir(&opts.weights, &device)?;
    let classifier = classifier.to_device(&ad).freeze();
    let judge_net = guided_ddpm::train::load_ema(
        ClassifierConfig::new().init(&device),
        &opts.checkpoints,
        "judge",
    )?;
    let (train_set, held) = guided_ddpm::data::load(&opts.data)?.split();
    std::fs::create_dir_all(&opts.out)
        .map_err(Error::io(format!("creating {}", opts.out.display())))?;
    let mut report: Report = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|r: &Report| r.unet_sha256 == manifest.unet.sha256)
        .unwrap_or_default();
    report.unet_sha256 = manifest.unet.sha256.clone();
    if report.classifier_sha256 != manifest.classifier.sha256 {
        if !report.classifier_sha256.is_empty() {
            report
                .settings
                .retain(|r| !r.guidance.mode.uses_classifier());
        }
        report.classifier_sha256 = manifest.classifier.sha256.clone();
    }

    let real = RealDigits::judge(&judge_net, &train_set, &held, opts.n_per_class, &device);
    report.judge_held_out_accuracy = real.held_accuracy;
    // Every train digit judged once: the unguided floor draws from all of them, the 1,000-digit
    // floor takes the first 100 of each class.
    let all_train: Vec<usize> = (0..train_set.len()).collect();
    let (_, all_feats) = judge_digits(&judge_net, &train_set, &all_train, &device);
    let d = judge_net.feature_dim();
    let train_feats: Vec<f32> = first_per_class(&train_set, 100)
        .iter()
        .flat_map(|&i| all_feats[i * d..(i + 1) * d].iter().copied())
        .collect();
    report.real_vs_real_frechet = frechet::between(&train_feats, &real.held_feats, d);
    report.real_vs_real_same_n_frechet = real.same_n_frechet;
    report.real_vs_real_random_frechet = frechet::random_subsets(
        &all_feats,
        &real.held_feats,
        d,
        NUM_CLASSES * opts.n_per_class,
        RANDOM_DRAWS,
        RANDOM_SEED,
    );
    report.real_vs_real_same_n_draws = frechet::stratified_subsets(
        &all_feats,
        &train_set.labels,
        &real.held_feats,
        d,
        opts.n_per_class,
        RANDOM_DRAWS,
        RANDOM_SEED,
    );
    report.real_vs_real_precision_recall = [real.precision, real.recall];
    report.held_out_ink = real.held_ink;
    report.real_vs_real_ink = real.same_n_ink;
    report.train_ink = real.train_ink;
    report.classifier_accuracy_by_t_quartile =
        classifier_by_quartile(&classifier, &held, manifest.schedule.kind, &ad);
    eprintln!(
        "judge {:.2}% on held-out; classifier by t-quartile {:?}; real-vs-real FD {:.3}",
        100.0 * real.held_accuracy,
        report.classifier_accuracy_by_t_quartile,
        report.real_vs_real_frechet
    );

    // The table follows this order, the float check last.
    let order = settings();
    let mut todo: Vec<(String, Guidance, bool)> = order.clone();
    if let Some((label, g)) = &opts.float_check {
        todo.push((format!("{label} (float)"), *g, true));
    }
    // A label no list names is read as a setting of its own ("both s=1 w=0 t=500-999").
    for label in &opts.only {
        if !todo.iter().any(|(l, _, _)| l == label) {
            todo.push((label.clone(), Guidance::from_label(label)?, false));
        }
    }
    todo.retain(|(label, _, _)| opts.only.is_empty() || opts.only.contains(label));
    let runs: Vec<(Method, usize)> = opts
        .method
        .iter()
        .flat_map(|&m| opts.steps.iter().map(move |&n| (m, n)))
        .collect();
    let todo = todo
        .into_iter()
        .flat_map(|t| runs.iter().map(move |&run| (t.clone(), run)));
    for ((label, guidance, float), (method, steps)) in todo {
        if report.settings.iter().any(|r| {
            r.is_run(&label, method, steps)
                && r.guidance == guidance
                && r.n_per_class >= opts.n_per_class
                && r.has_fidelity()
        }) {
            continue;
        }
        let name = run_name(&label, method, steps);
        let float_unet;
        let (u, c, weights_name) = if float {
            float_unet = guided_ddpm::train::load_ema(
                manifest.unet.config.init(&device),
                &opts.checkpoints,
                "unet",
            )?;
            let c = guided_ddpm::train::load_ema(
                manifest.classifier.config.init(&ad),
                &opts.checkpoints,
                "classifier",
            )?
            .freeze();
            (&float_unet, c, "float EMA checkpoint")
        } else {
            (&unet, classifier.clone(), "int8")
        };
        let (result, rows) = run_setting(
            &label,
            guidance,
            (method, steps),
            u,
            &c,
            &judge_net,
            &real.held_feats,
            opts,
            weights_name,
            manifest.schedule.kind,
            &device,
        )?;
        let (w, h, px) = grid::layout(&rows, 10);
        grid::write_png(
            &opts.out.join(format!("samples-{}.png", slug(&name))),
            w,
            h,
            &px,
            2,
        )?;
        eprintln!(
            "{name}: judged accuracy {:.1}%, FD {:.3}",
            100.0 * result.accuracy,
            result.frechet
        );
        report.settings.retain(|r| !r.is_run(&label, method, steps));
        report.settings.push(result);
        report.settings.sort_by_key(|r| {
            let at = order.iter().position(|(l, _, _)| *l == r.label);
            (at.unwrap_or(order.len()), r.method.name(), r.steps)
        });
        write_report(&report, &manifest, opts)?;
    }
    write_report(&report, &manifest, opts)?;
    Ok(report)
}

/// Writes eval.json, EVAL.md and the accuracy-against-FD plot in `out`. The shipped manifest is
/// never written here: eval reports, export ships.
fn write_report(report: &Report, manifest: &Manifest, opts: &EvalOptions) -> Result<(), Error> {
    let out = &opts.out;
    let json = serde_json::to_string_pretty(report).expect("report serializes");
    guided_ddpm::atomic::write(&out.join("eval.json"), json.as_bytes())?;
    // The training-progress section (`guided-ddpm-lab curve`) is kept as it is.
    let eval_md = out.join("EVAL.md");
    let old = std::fs::read_to_string(&eval_md).unwrap_or_default();
    let mut md = markdown(report, manifest);
    // The noise's readers (`guided-ddpm-lab knowable`), from their own file, when they were measured
    // on these weights.
    let knowable = std::fs::read_to_string(out.join(knowable::FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<knowable::Knowable>(&t).ok())
        .filter(|k| k.unet_sha256 == manifest.unet.sha256 && !k.classifier.is_empty());
    if let Some(k) = knowable {
        md = format!("{}\n\n{}", md.trim_end(), knowable::section(&k));
    }
    // The steps sweep (`steps`), from its own folder, when it was measured on these weights.
    let sweep = std::fs::read_to_string(out.join(steps::FOLDER).join("eval.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Report>(&t).ok())
        .filter(|s| s.unet_sha256 == manifest.unet.sha256 && steps::is_sweep(s));
    if let Some(sweep) = sweep {
        md = format!("{}\n\n{}", md.trim_end(), steps::section(&sweep));
    }
    if let Some(section) = curve::kept(&old) {
        md = curve::splice(&md, section);
    }
    guided_ddpm::atomic::write(&eval_md, md.as_bytes())?;
    if steps::is_sweep(report) {
        steps::plot(report).write_png(&out.join(steps::PLOT))?;
    }
    sweep_plot(report).write_png(&out.join("accuracy-vs-fd.png"))
}

fn markdown(r: &Report, m: &Manifest) -> String {
    let mut s = String::new();
    s += "# Evaluation of the shipped weights\n\n";
    s += "Generated by `guided-ddpm-lab eval` (see the README); numbers are from that run, on this machine.\n\n";
    s += &format!(
        "- Weights: `weights/{}` sha256 `{}`, trained {} steps ({} samples seen).\n",
        m.unet.file,
        &m.unet.sha256[..16],
        m.provenance["unet"]["steps"],
        m.provenance["unet"]["samples_seen"]
    );
    s += &format!("- Judge (clean-digit classifier, never used for guidance): {:.1}% on the 1,000 held-out digits.\n", 100.0 * r.judge_held_out_accuracy);
    let q: Vec<String> = r
        .classifier_accuracy_by_t_quartile
        .iter()
        .enumerate()
        .map(|(i, a)| format!("t {}-{}: {:.1}%", i * 250, i * 250 + 249, 100.0 * a))
        .collect();
    s += &format!(
        "- Guidance classifier (int8) on noisy held-out digits, by t-quartile: {}.\n",
        q.join(", ")
    );
    s += &format!("- Real-vs-real floor: Frechet distance of judge features, 1,000 train vs 1,000 held-out digits: {:.3}.\n", r.real_vs_real_frechet);
    if let Some(floor) = r.same_n_floor() {
        s += &format!("- Real-vs-real FD at the table's N (train digits, as many per class as each setting samples, against the 1,000 held-out ones): {floor:.3}. FD falls as N grows, so a setting's FD is held to this floor (the \"FD / floor\" column and the targets below).\n");
    }
    if let Some((mean, sd)) = r.same_n_spread() {
        s += &format!(
            "- Spread of FD between draws of real digits at the table's N: {} draws of as many train digits of each class, drawn at random, against the held-out ones: mean {mean:.3}, sd {sd:.3}. Two settings whose FDs differ by less than this differ by about as much as two draws of real digits do.\n",
            r.real_vs_real_same_n_draws.len()
        );
    }
    if let Some((mean, sd)) = r.random_floor() {
        let v = &r.real_vs_real_random_frechet;
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
        s += &format!("- Real digits drawn at random, the unguided row's floor: {} draws of as many train digits as a setting samples, of any class, against the 1,000 held-out ones: FD {mean:.3} on average (sd {sd:.3}, from {lo:.3} to {hi:.3}). Unguided sampling cannot be asked for a number of each class: its mix of digits is its own and varies from run to run as these draws' does, and FD in judge features follows the mix of classes closely, so a perfect unconditional model would score about this, not the floor above.\n", v.len());
    }
    let [rp, rr] = r.real_vs_real_precision_recall;
    s += &format!("- Real-vs-real precision / recall (train digits, as many per class as each setting samples, against the held-out ones; k = {}): {rp:.3} / {rr:.3}. Held-out ink: mean {:.3}, stroke share {:.3}.\n", fidelity::K, r.held_out_ink.mean, r.held_out_ink.stroke);
    let (ri, t) = (r.real_vs_real_ink, r.train_ink);
    if ri.mean > 0.0 && t.mean > 0.0 {
        let off = |x: f64| 100.0 * (x / r.held_out_ink.mean - 1.0);
        s += &format!("- Real-vs-real ink: the same train digits, mean {:.3} ({:+.1}% against the held-out digits'), stroke share {:.3}; all the train digits, each class weighted equally as the settings sample them, mean {:.3} ({:+.1}%), stroke share {:.3}. The U-Net is trained on the latter, so a sampler that drew the training digits exactly would score about that.\n", ri.mean, off(ri.mean), ri.stroke, t.mean, off(t.mean), t.stroke);
    }
    s += "\n";
    s += "Samples: each row's sampler (DDPM, DDIM or DPM-Solver++(2M)) and steps, fixed seeds, all classes in each batch; judged accuracy = share of samples the judge labels as the asked class; FD = Frechet distance of judge features to the held-out digits (lower is closer to real digits); precision / recall = improved precision and recall (Kynkaanniemi et al. 2019) in judge features against the held-out digits; ink = mean darkness of the samples, (x + 1) / 2 per pixel, next to the held-out digits' above.\n\n";
    s += "| setting | weights | sampler | steps | N/class | judged acc. | FD | FD / floor | precision | recall | ink | ";
    s += &(0..NUM_CLASSES)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    s += " | time |\n|---|---|---|---|---|---|---|---|---|---|---|";
    s += &"---|".repeat(NUM_CLASSES + 1);
    s += "\n";
    for x in &r.settings {
        let fid = |v: f64| {
            if x.has_fidelity() {
                format!("{v:.3}")
            } else {
                "–".into()
            }
        };
        s += &format!(
            "| {} | {} | {} | {} | {} | **{:.1}%** | {:.3} | {} | {} | {} | {} | ",
            x.label,
            x.weights,
            x.method.name(),
            x.steps,
            x.n_per_class,
            100.0 * x.accuracy,
            x.frechet,
            match (x.guidance.mode, r.random_floor(), r.same_n_floor()) {
                (Mode::None, Some((floor, _)), _) => format!("{:.2}x*", x.frechet / floor),
                (_, _, Some(floor)) => format!("{:.2}x", x.frechet / floor),
                _ => "–".into(),
            },
            fid(x.precision),
            fid(x.recall),
            fid(x.ink.mean)
        );
        s += &x
            .accuracy_per_class
            .iter()
            .map(|a| format!("{:.0}", 100.0 * a))
            .collect::<Vec<_>>()
            .join(" | ");
        s += &format!(" | {:.0} s |\n", x.seconds);
    }
    if r.random_floor().is_some() && r.unguided().is_some() {
        s += "\n\\* against the FD of real digits drawn at random (above), the unguided floor.\n";
    }
    if let Some(u) = r.unguided().filter(|u| !u.judged_share.is_empty()) {
        let mix: Vec<String> = u
            .judged_share
            .iter()
            .enumerate()
            .map(|(c, share)| format!("{c}: {:.1}%", 100.0 * share))
            .collect();
        s += &format!("\nThe unguided model's own mix of digits ({}, as the judge labels its samples; the held-out digits are about 10% each): {}.\n", u.label, mix.join(", "));
    }
    let checks = targets::checks(r);
    if !checks.is_empty() {
        s += "\n## Targets\n\nThe shipped weights' targets, checked on the table above (`lab/src/targets.rs`):\n\n| target | measured | bound | met |\n|---|---|---|---|\n";
        for c in &checks {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                c.what,
                c.measured,
                c.bound,
                if c.met { "yes" } else { "**no**" }
            );
        }
    }
    s += &forms_section(r);
    s += "\nJudged accuracy against FD for each setting (int8; FD on a log axis, lower is closer to real digits; the demo's default in red, the real-vs-real floor at the same N grey). Left, every setting; right, zoomed, those judged at 95% or more, with the 99% bar the default is picked above. A hollow marker is a setting judged at 99% or more that misses another of the default's targets (\"Targets\" above), so the rule passes it by:\n\n![judged accuracy against FD](accuracy-vs-fd.png)\n";
    s += "\nOne row per class (0 at the top), the first ten samples of each:\n\n";
    for x in &r.settings {
        let name = x.name();
        s += &format!("**{name}**\n\n![{name}](samples-{}.png)\n\n", slug(&name));
    }
    s
}

/// The rows that take the classifier's gradient, compared by the form of the gradient
/// (`Guidance::grad`): for each form and mode, the int8 row of lowest FD among those judged at
/// 99% or more, or the best judged where none is.
fn forms_section(r: &Report) -> String {
    let rows: Vec<&SettingResult> = r
        .settings
        .iter()
        .filter(|x| x.weights == "int8" && x.guidance.mode.uses_classifier())
        .collect();
    if !rows.iter().any(|x| !x.guidance.grad.is_xt()) {
        return String::new();
    }
    let mut s = String::from("\n## Forms of the classifier's gradient\n\nThe rows above that take the classifier's gradient, by where it is taken and how it is sized (`Guidance::grad`, `--grad`, the page's gradient menu): the paper's, at x_t (no `g=` in the label); `g=norm`, the same gradient rescaled per sample to the length of the model's own score, so s is the ratio of the classifier's push to the model's; `g=x0`, the gradient of the clean-digit reading taken at the predicted x0, a step of s times it on x0. For each form and mode, the row of lowest FD among those judged at 99% or more (the best judged where none is):\n\n| form | mode | row | judged | FD / floor | ink against the held-out digits' |\n|---|---|---|---|---|---|\n");
    let floor = r.same_n_floor();
    for grad in [Grad::Xt, Grad::Norm, Grad::X0] {
        for mode in [Mode::Classifier, Mode::Both] {
            let of: Vec<&&SettingResult> = rows
                .iter()
                .filter(|x| x.guidance.grad == grad && x.guidance.mode == mode)
                .collect();
            let at_bar = of.iter().filter(|x| x.accuracy >= 0.99);
            let best = match at_bar.clone().count() {
                0 => of.iter().max_by(|a, b| a.accuracy.total_cmp(&b.accuracy)),
                _ => at_bar.min_by(|a, b| a.frechet.total_cmp(&b.frechet)),
            };
            let Some(x) = best else { continue };
            s += &format!(
                "| {} | {} | {} | {:.1}% | {} | {:+.1}% |\n",
                grad.word(),
                match mode {
                    Mode::Classifier => "classifier alone",
                    _ => "both",
                },
                x.name(),
                100.0 * x.accuracy,
                floor.map_or("–".into(), |f| format!("{:.2}x", x.frechet / f)),
                100.0 * (x.ink.mean / r.held_out_ink.mean - 1.0)
            );
        }
    }
    s
}

/// Judged accuracy against FD of each int8 setting of `r`, in two panels: every setting (left)
/// and, zoomed, those judged at `ZOOM_FROM` % or more (right), where the default is picked
/// (`targets::front_pick`: the lowest FD at >= 99% within the default's other targets). A point
/// per setting with its label, the default (`guidance::DEFAULT`) in red, the real-vs-real FD (at
/// the same N where the report has it) as a vertical grey line, the 99% bar as a horizontal
/// one; the left panel outlines the region the right one shows and labels only the points
/// outside it.
fn sweep_plot(r: &Report) -> plot::Canvas {
    use plot::{Axis, Canvas, Panel};
    const ZOOM_FROM: f64 = 95.0;
    let mut c = Canvas::new(1000, 430);
    let rows: Vec<&SettingResult> = r.settings.iter().filter(|x| x.weights == "int8").collect();
    // The floor at the settings' own N where the report has it (FD falls as N grows).
    let floor = r.same_n_floor().unwrap_or(r.real_vs_real_frechet);
    let zoomed_in = |x: &SettingResult| 100.0 * x.accuracy >= ZOOM_FROM;
    let zoomed: Vec<&SettingResult> = rows.iter().copied().filter(|x| zoomed_in(x)).collect();
    let all = Panel {
        left: 80,
        top: 50,
        width: 390,
        height: 330,
        x: Axis::covering(rows.iter().map(|x| x.frechet).chain([floor]), true),
        y: Axis {
            lo: 0.0,
            hi: 105.0,
            log: false,
        },
    };
    let zoom = Panel {
        left: 580,
        top: 50,
        width: 390,
        height: 330,
        x: Axis::covering(zoomed.iter().map(|x| x.frechet).chain([floor]), true),
        y: Axis {
            lo: ZOOM_FROM - 0.5,
            hi: 100.5,
            log: false,
        },
    };
    let x_title = "frechet distance to held-out digits (log)";
    all.draw_axes(&mut c, "ALL SETTINGS", x_title, "judged accuracy %");
    zoom.draw_axes(
        &mut c,
        &format!("JUDGED AT {ZOOM_FROM}% OR MORE"),
        x_title,
        "judged accuracy %",
    );
    for p in [&all, &zoom] {
        let (floor_x, _) = p.at(floor, 0.0);
        if (p.left..=p.left + p.width).contains(&floor_x) {
            c.line((floor_x, p.top), (floor_x, p.top + p.height), plot::GREY, 1);
            c.text(
                floor_x + 4,
                p.top + p.height - 12,
                "REAL VS REAL",
                plot::GREY,
                1,
            );
        }
    }
    let (_, bar_y) = zoom.at(zoom.x.lo, 99.0);
    for x in (zoom.left..zoom.left + zoom.width).step_by(6) {
        c.line((x, bar_y), (x + 2, bar_y), plot::GREY, 1);
    }
    c.text(
        zoom.left + zoom.width - 4 - plot::text_width("99%", 1) as i64,
        bar_y + 4,
        "99%",
        plot::GREY,
        1,
    );
    if !zoomed.is_empty() {
        let (x0, y0) = all.at(zoom.x.lo, zoom.y.hi);
        let (x1, y1) = all.at(zoom.x.hi, zoom.y.lo);
        let (x0, x1) = (x0.max(all.left), x1.min(all.left + all.width));
        for (a, b) in [
            ((x0, y0), (x1, y0)),
            ((x1, y0), (x1, y1)),
            ((x1, y1), (x0, y1)),
            ((x0, y1), (x0, y0)),
        ] {
            c.line(a, b, plot::GREY, 1);
        }
    } else {
        c.text(
            zoom.left + 10,
            zoom.top + zoom.height / 2,
            &format!("NO SETTING IS JUDGED AT {ZOOM_FROM}% OR MORE"),
            plot::GREY,
            1,
        );
    }
    let is_default = |x: &SettingResult| targets::is_default(x);
    let ruled_out = |x: &SettingResult| {
        x.accuracy >= targets::MIN_ACCURACY && !targets::meets_row_targets(r, x)
    };
    // The default's label first, then the rest from the lowest FD up: the labels placed first
    // get the places beside their points.
    let mut order = rows.clone();
    order.sort_by(|a, b| {
        is_default(b)
            .cmp(&is_default(a))
            .then(a.frechet.total_cmp(&b.frechet))
    });
    for (p, in_zoom) in [(&all, false), (&zoom, true)] {
        // Left: every point, labelled outside the zoomed region; right: the zoomed points.
        let shown: Vec<&SettingResult> = order
            .iter()
            .copied()
            .filter(|x| !in_zoom || zoomed_in(x))
            .collect();
        let to_label: Vec<&SettingResult> = shown
            .iter()
            .copied()
            .filter(|x| in_zoom || !zoomed_in(x))
            .collect();
        let texts: Vec<String> = to_label
            .iter()
            .map(|x| match is_default(x) {
                true => format!("{} (default)", x.name()),
                false => x.name(),
            })
            .collect();
        let points: Vec<(i64, i64)> = to_label
            .iter()
            .map(|x| p.at(x.frechet, 100.0 * x.accuracy))
            .collect();
        let widths: Vec<i64> = texts
            .iter()
            .map(|t| plot::text_width(t, 1) as i64)
            .collect();
        let bounds = plot::Rect {
            x0: p.left + 2,
            y0: p.top + 2,
            x1: p.left + p.width - 2,
            y1: p.top + p.height - 2,
        };
        let at = plot::place_labels(&points, &widths, 9, bounds);
        let colour = |x: &SettingResult| if is_default(x) { plot::RED } else { plot::BLUE };
        for (((x, text), &point), (&label_at, &w)) in to_label
            .iter()
            .zip(&texts)
            .zip(&points)
            .zip(at.iter().zip(&widths))
        {
            plot::label_leader(&mut c, point, label_at, w, plot::GREY);
            c.text(label_at.0, label_at.1, text, colour(x), 1);
        }
        // Markers last, over the leaders; the default's last of all. A setting judged at >= 99%
        // that misses another of the default's targets is drawn hollow: the rule passes it by.
        for x in shown.iter().rev() {
            let size = if is_default(x) { 9 } else { 6 };
            p.marker(&mut c, x.frechet, 100.0 * x.accuracy, colour(x), size);
            if ruled_out(x) {
                p.marker(&mut c, x.frechet, 100.0 * x.accuracy, plot::WHITE, size - 4);
            }
        }
    }
    if rows.iter().any(|x| ruled_out(x)) {
        let (lx, ly) = (all.left, all.top + all.height + 36);
        c.hollow_square(lx, ly, 5, plot::BLUE);
        c.text(
            lx + 12,
            ly - 1,
            "HOLLOW: JUDGED >= 99% BUT MISSES ANOTHER DEFAULT TARGET (INK, P/R, FD)",
            plot::BLACK,
            1,
        );
    }
    c
}
