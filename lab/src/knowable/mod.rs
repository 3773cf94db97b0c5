//! What the noise leaves knowable: how well any classifier could read the class of a noisy
//! held-out digit x_t, set beside the guidance classifier on the very same x_t.
//!
//! Three readers of the same noisy digits, per timestep t of a grid:
//! - the guidance classifier (the shipped int8 weights), with its calibration: expected
//!   calibration error (ECE, Guo et al. 2017: 15 equal-width confidence bins), since an
//!   overconfident classifier's gradient vanishes where guidance needs it;
//! - a kernel Bayes classifier that takes the train digits as the data distribution: under that
//!   prior p(x_t, y) = (1 / N) sum over the class-y digits x0_i of N(x_t; sqrt(abar_t) x0_i,
//!   (1 - abar_t) I) (DDPM Eq. 4), so p(y | x_t) is exact for it: the best any reader can do if
//!   digits were exactly the train digits;
//! - the conditional U-Net as a classifier (Li et al. 2023, "Your Diffusion Model is Secretly a
//!   Zero-Shot Classifier") with x_t as the data: x_t is noised further to a few levels s > t
//!   with fresh draws shared by every label, and the label under which the model denoises x_t
//!   best is the reading ([`unet_probs`]).

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use guided_ddpm::data::Digits;
use guided_ddpm::nn::{label_tensor, t_tensor, Classifier, UNet, NUM_CLASSES, SIDE};
use guided_ddpm::noise::gaussian_values;
use guided_ddpm::schedule::{Schedule, T};

const PX: usize = SIDE * SIDE;

/// Confidence bins of the expected calibration error.
pub const ECE_BINS: usize = 15;

/// How one reader did on the noisy digits at one t.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Share of digits whose most probable class is the true one.
    pub accuracy: f64,
    /// Expected calibration error of the top class's probability ([`ECE_BINS`] bins).
    pub ece: f64,
    /// Mean top-class probability (confidence); above `accuracy` is overconfident.
    pub confidence: f64,
}

impl Reading {
    /// The reading of class probabilities `probs` (`labels.len()` rows of 10) against `labels`.
    pub fn of(probs: &[f64], labels: &[usize]) -> Reading {
        let n = labels.len();
        assert_eq!(probs.len(), n * NUM_CLASSES, "one row of 10 per label");
        let mut bins = [(0usize, 0.0f64, 0.0f64); ECE_BINS]; // (count, hits, confidence)
        let (mut hits, mut conf) = (0.0, 0.0);
        for (row, &y) in probs.chunks(NUM_CLASSES).zip(labels) {
            let (top, p) = row
                .iter()
                .copied()
                .enumerate()
                .fold((0, f64::MIN), |a, (i, p)| if p > a.1 { (i, p) } else { a });
            let hit = (top == y) as u8 as f64;
            let bin = ((p * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
            bins[bin].0 += 1;
            bins[bin].1 += hit;
            bins[bin].2 += p;
            hits += hit;
            conf += p;
        }
        let ece = bins
            .iter()
            .map(|&(_, hits, conf)| (hits - conf).abs())
            .sum::<f64>()
            / n as f64;
        Reading {
            accuracy: hits / n as f64,
            ece,
            confidence: conf / n as f64,
        }
    }
}

/// The three readers at every t of the grid.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Knowable {
    /// sha256 of the guidance classifier and the U-Net files read.
    pub classifier_sha256: String,
    pub unet_sha256: String,
    /// The timesteps, each the centre of an equal share of 0..T.
    pub t: Vec<usize>,
    /// Held-out digits noised at each t (one draw each), read by the classifier and the kernel.
    pub digits: usize,
    /// Train digits that make the kernel's data distribution.
    pub kernel_digits: usize,
    pub classifier: Vec<Reading>,
    pub kernel: Vec<Reading>,
    /// The U-Net reader, on the first `unet_digits` of the held-out digits (the first ones of
    /// each class, as many of each), with `unet_draws` draws of the further noise.
    pub unet_digits: usize,
    pub unet_draws: usize,
    pub unet: Vec<Reading>,
    /// The guidance classifier on the U-Net reader's digits, for a like-for-like comparison.
    pub classifier_on_unet_digits: Vec<Reading>,
}

/// How many further noise levels the U-Net reader scores each label at ([`unet_probs`]).
pub const LEVELS: usize = 4;

/// `n` timesteps, the centres of `n` equal shares of 0..T.
pub fn t_grid(n: usize) -> Vec<usize> {
    (0..n).map(|i| (2 * i + 1) * T / (2 * n)).collect()
}

/// The mean reading over the grid's timesteps in each quarter of 0..T; `None` for a quarter
/// none of `readings` falls in (a measurement still under way).
pub fn by_quartile(t: &[usize], readings: &[Reading]) -> Vec<Option<Reading>> {
    (0..4)
        .map(|q| {
            let in_q: Vec<&Reading> = t
                .iter()
                .zip(readings)
                .filter(|(&t, _)| t * 4 / T == q)
                .map(|(_, r)| r)
                .collect();
            let n = in_q.len() as f64;
            (n > 0.0).then(|| Reading {
                accuracy: in_q.iter().map(|r| r.accuracy).sum::<f64>() / n,
                ece: in_q.iter().map(|r| r.ece).sum::<f64>() / n,
                confidence: in_q.iter().map(|r| r.confidence).sum::<f64>() / n,
            })
        })
        .collect()
}

/// The digits as rows of 784 values in [-1, 1].
fn pixels(digits: &Digits, idx: &[usize]) -> Vec<f32> {
    idx.iter().flat_map(|&i| digits.image(i)).collect()
}

/// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (DDPM Eq. 4), eps drawn from `seed`.
fn noised(x0: &[f32], abar: f64, seed: u64) -> Vec<f32> {
    let eps = gaussian_values(x0.len(), &mut StdRng::seed_from_u64(seed));
    let (a, s) = (abar.sqrt() as f32, (1.0 - abar).sqrt() as f32);
    x0.iter().zip(&eps).map(|(x, e)| a * x + s * e).collect()
}

/// The guidance classifier's p(y | x_t) of rows `x` (784 values each) at timestep `t`.
fn classifier_probs(c: &Classifier, x: &[f32], t: usize, device: &Device) -> Vec<f64> {
    x.chunks(250 * PX)
        .flat_map(|chunk| {
            let b = chunk.len() / PX;
            let xt =
                Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), [b, 1, SIDE, SIDE]), device);
            softmax(c.forward(xt, t_tensor(&vec![t; b], device)), 1)
                .try_into_vec_as::<f32>()
                .expect("classifier output")
        })
        .map(f64::from)
        .collect()
}

/// Squared norms of rows of 784 values, in f64.
fn row_norms(v: &[f32]) -> Vec<f64> {
    v.chunks(PX)
        .map(|r| r.iter().map(|&p| (p as f64) * (p as f64)).sum())
        .collect()
}

/// The kernel Bayes classifier's data distribution: the train digits (rows of 784) on the
/// device, transposed for the distance product, with their squared norms and labels, made once
/// for every timestep read.
pub struct KernelPrior {
    train_t: Tensor<2>,
    norms: Vec<f64>,
    labels: Vec<usize>,
}

impl KernelPrior {
    pub fn new(train: &[f32], labels: &[usize], device: &Device) -> KernelPrior {
        let m = train.len() / PX;
        assert_eq!(m, labels.len(), "one label per train digit");
        KernelPrior {
            train_t: Tensor::<2>::from_data(TensorData::new(train.to_vec(), [m, PX]), device)
                .transpose(),
            norms: row_norms(train),
            labels: labels.to_vec(),
        }
    }
}

/// The kernel Bayes posterior p(y | x_t) of rows `x` under `prior`, at abar = `abar`:
/// log p(x_t, y) = logsumexp over the class-y digits of -||x_t - sqrt(abar) x0_i||^2 /
/// (2 (1 - abar)), up to a constant shared by every class; the distances come from one matrix
/// product.
pub fn kernel_probs(x: &[f32], prior: &KernelPrior, abar: f64) -> Vec<f64> {
    let n = x.len() / PX;
    let m = prior.labels.len();
    let (tn, train_labels) = (&prior.norms, &prior.labels);
    let a = abar.sqrt();
    let var = 1.0 - abar;
    let xn = row_norms(x);
    let device = prior.train_t.device();
    let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, PX]), &device);
    let dots = xt
        .matmul(prior.train_t.clone())
        .try_into_vec_as::<f32>()
        .expect("dot products");
    let mut out = Vec::with_capacity(n * NUM_CLASSES);
    for i in 0..n {
        let mut best = [f64::NEG_INFINITY; NUM_CLASSES];
        let logits: Vec<f64> = (0..m)
            .map(|j| {
                let d = xn[i] - 2.0 * a * dots[i * m + j] as f64 + abar * tn[j];
                -d / (2.0 * var)
            })
            .collect();
        for (j, &l) in logits.iter().enumerate() {
            let c = train_labels[j];
            best[c] = best[c].max(l);
        }
        let mut sums = [0.0f64; NUM_CLASSES];
        for (j, &l) in logits.iter().enumerate() {
            let c = train_labels[j];
            sums[c] += (l - best[c]).exp();
        }
        let log_joint: Vec<f64> = (0..NUM_CLASSES).map(|c| best[c] + sums[c].ln()).collect();
        out.extend(normalised(&log_joint));
    }
    out
}

/// softmax of log-weights, in f64.
fn normalised(log_w: &[f64]) -> Vec<f64> {
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// The U-Net reader's p(y | x_t) of rows `x` at timestep `t` (Li et al. 2023's classifier with
/// x_t as the data; module doc). x_t is noised further to each of [`LEVELS`] levels s_j evenly
/// spaced over (t, T): x_s = sqrt(abar_s / abar_t) x_t + sqrt(1 - abar_s / abar_t) eps'. Under
/// label y the model's x0 prediction gives E[x_t | x_s, y] = c0 x0_hat_y + c1 x_s (the mean of
/// q(x_t | x_s, x0), DDPM Eq. 7 for the jump s -> t, is linear in x0), and label y's error is
/// the eps-space denoising error of x_t, abar_st / (1 - abar_st) ||x_t - E[x_t | x_s, y]||^2
/// per pixel, summed over the levels and averaged over `draws` draws of eps' (one draw shared
/// by every label, as Li et al. pair them). The label with the lowest error is the reading; the
/// "probabilities" are softmax(-error), uncalibrated, so only the accuracy means anything.
pub fn unet_probs(
    unet: &UNet,
    schedule: &Schedule,
    x: &[f32],
    t: usize,
    draws: usize,
    seed: u64,
    device: &Device,
) -> Vec<f64> {
    let n = x.len() / PX;
    let per_batch = 25; // digits per forward: 250 rows, one per (digit, label)
    let mut error = vec![0.0f64; n * NUM_CLASSES];
    let mut rng = StdRng::seed_from_u64(seed);
    let abar_t = schedule.alphas_cumprod[t];
    for j in 1..=LEVELS {
        let s = t + (T - 1 - t) * j / LEVELS;
        if s == t {
            continue;
        }
        let abar_s = schedule.alphas_cumprod[s];
        let abar_st = abar_s / abar_t;
        let c0 = abar_t.sqrt() * (1.0 - abar_st) / (1.0 - abar_s);
        let c1 = abar_st.sqrt() * (1.0 - abar_t) / (1.0 - abar_s);
        let weight = abar_st / (1.0 - abar_st) / (draws * PX) as f64;
        let (ra, rm) = ((1.0 / abar_s).sqrt(), (1.0 / abar_s - 1.0).sqrt());
        let (a, b) = (abar_st.sqrt() as f32, (1.0 - abar_st).sqrt() as f32);
        for _ in 0..draws {
            for start in (0..n).step_by(per_batch) {
                let rows = (n - start).min(per_batch);
                let chunk = &x[start * PX..(start + rows) * PX];
                let eps = gaussian_values(chunk.len(), &mut rng);
                let xs: Vec<f32> = chunk.iter().zip(&eps).map(|(x, e)| a * x + b * e).collect();
                // Each digit's x_s once per label, labels 0..9 in turn.
                let xs_rep: Vec<f32> = xs
                    .chunks(PX)
                    .flat_map(|r| std::iter::repeat_n(r, NUM_CLASSES).flatten().copied())
                    .collect();
                let labels: Vec<usize> = (0..rows).flat_map(|_| 0..NUM_CLASSES).collect();
                let b_all = rows * NUM_CLASSES;
                let xs_t = Tensor::<4>::from_data(
                    TensorData::new(xs_rep.clone(), [b_all, 1, SIDE, SIDE]),
                    device,
                );
                let eps_hat = unet
                    .forward(
                        xs_t,
                        t_tensor(&vec![s; b_all], device),
                        label_tensor(&labels, device),
                    )
                    .try_into_vec_as::<f32>()
                    .expect("U-Net output");
                for (row, (xs_row, e_row)) in xs_rep.chunks(PX).zip(eps_hat.chunks(PX)).enumerate()
                {
                    let digit = start + row / NUM_CLASSES;
                    let y = row % NUM_CLASSES;
                    let xt_row = &x[digit * PX..(digit + 1) * PX];
                    let mut sq = 0.0f64;
                    for p in 0..PX {
                        // x0_hat = sqrt(1/abar_s) x_s - sqrt(1/abar_s - 1) eps (DDPM Eq. 15).
                        let x0 = ra * xs_row[p] as f64 - rm * e_row[p] as f64;
                        let d = xt_row[p] as f64 - (c0 * x0 + c1 * xs_row[p] as f64);
                        sq += d * d;
                    }
                    error[digit * NUM_CLASSES + y] += weight * sq;
                }
            }
        }
    }
    error
        .chunks(NUM_CLASSES)
        .flat_map(|e| normalised(&e.iter().map(|v| -v).collect::<Vec<_>>()))
        .collect()
}

/// What [`measure`] reads and how much.
pub struct Plan {
    /// Timesteps of the grid.
    pub grid: usize,
    /// Held-out digits per class for the U-Net reader (all readers take every held-out digit
    /// otherwise).
    pub unet_per_class: usize,
    pub unet_draws: usize,
    pub seed: u64,
    /// The schedule the networks were trained with (the manifest's).
    pub schedule: guided_ddpm::schedule::BetaSchedule,
}

/// Measures the three readers at every t of the grid that `k` (a fresh [`Knowable::new`] or
/// one a stopped run left) has not read yet; `progress` hears each t as it is done.
pub fn measure(
    mut k: Knowable,
    (classifier, unet): (&Classifier, &UNet),
    train: &Digits,
    held: &Digits,
    plan: &Plan,
    device: &Device,
    mut progress: impl FnMut(&Knowable) -> Result<(), guided_ddpm::Error>,
) -> Result<Knowable, guided_ddpm::Error> {
    let schedule = Schedule::new(plan.schedule);
    let all: Vec<usize> = (0..held.len()).collect();
    let labels: Vec<usize> = held.labels.iter().map(|&l| l as usize).collect();
    let x0 = pixels(held, &all);
    let train_idx: Vec<usize> = (0..train.len()).collect();
    let train_labels: Vec<usize> = train.labels.iter().map(|&l| l as usize).collect();
    let prior = KernelPrior::new(&pixels(train, &train_idx), &train_labels, device);
    let unet_idx = super::judge::first_per_class(held, plan.unet_per_class);
    let unet_labels: Vec<usize> = unet_idx.iter().map(|&i| labels[i]).collect();
    for t in k.t.clone().into_iter().skip(k.classifier.len()) {
        let abar = schedule.alphas_cumprod[t];
        let xt = noised(&x0, abar, plan.seed + t as u64);
        let c = classifier_probs(classifier, &xt, t, device);
        k.classifier.push(Reading::of(&c, &labels));
        let kp = kernel_probs(&xt, &prior, abar);
        k.kernel.push(Reading::of(&kp, &labels));
        if unet_idx.is_empty() {
            progress(&k)?;
            continue;
        }
        let sub: Vec<f32> = unet_idx
            .iter()
            .flat_map(|&d| xt[d * PX..(d + 1) * PX].iter().copied())
            .collect();
        let c_sub: Vec<f64> = unet_idx
            .iter()
            .flat_map(|&d| c[d * NUM_CLASSES..(d + 1) * NUM_CLASSES].iter().copied())
            .collect();
        k.classifier_on_unet_digits
            .push(Reading::of(&c_sub, &unet_labels));
        let seed = plan.seed ^ ((t as u64) << 20);
        let u = unet_probs(unet, &schedule, &sub, t, plan.unet_draws, seed, device);
        k.unet.push(Reading::of(&u, &unet_labels));
        progress(&k)?;
    }
    Ok(k)
}

impl Knowable {
    /// An empty measurement of `plan` on these weights and digits.
    pub fn new(shas: (String, String), train: &Digits, held: &Digits, plan: &Plan) -> Knowable {
        Knowable {
            classifier_sha256: shas.0,
            unet_sha256: shas.1,
            t: t_grid(plan.grid),
            digits: held.len(),
            kernel_digits: train.len(),
            unet_digits: NUM_CLASSES * plan.unet_per_class,
            unet_draws: plan.unet_draws,
            ..Default::default()
        }
    }

    /// Whether `other` measures the same thing (weights, grid, digits, draws), so a stopped run
    /// can go on from it.
    pub fn same_plan(&self, other: &Knowable) -> bool {
        (
            &self.classifier_sha256,
            &self.unet_sha256,
            &self.t,
            self.digits,
            self.kernel_digits,
            self.unet_digits,
            self.unet_draws,
        ) == (
            &other.classifier_sha256,
            &other.unet_sha256,
            &other.t,
            other.digits,
            other.kernel_digits,
            other.unet_digits,
            other.unet_draws,
        )
    }

    /// Whether every t of the grid has been read.
    pub fn is_complete(&self) -> bool {
        self.classifier.len() == self.t.len()
    }
}

/// `guided-ddpm-lab knowable`: the options of the measurement.
#[derive(clap::Args)]
pub struct KnowableOptions {
    /// Folder with the int8 weights (the guidance classifier and the U-Net read).
    #[arg(long, default_value = "weights")]
    pub weights: std::path::PathBuf,
    #[arg(long, default_value = "data")]
    pub data: std::path::PathBuf,
    /// Where knowable.json goes; EVAL.md there is rewritten with it.
    #[arg(long, default_value = "docs")]
    pub out: std::path::PathBuf,
    /// Timesteps of the grid (the centres of equal shares of 0..T).
    #[arg(long, default_value_t = 20)]
    pub grid: usize,
    /// Held-out digits per class the U-Net reader takes (0-100; 0 leaves the U-Net reader out).
    #[arg(long, default_value_t = 30)]
    pub unet_per_class: usize,
    /// Read the guidance classifier from this training run's float EMA checkpoint (a folder
    /// with classifier-ema.bpk) instead of the shipped int8 weights: how a run in progress
    /// compares. Give it its own --out.
    #[arg(long)]
    pub classifier_run: Option<std::path::PathBuf>,
    /// Draws of the further noise per digit for the U-Net reader.
    #[arg(long, default_value_t = 2)]
    pub unet_draws: usize,
}

/// The file [`run`] writes in `--out`.
pub const FILE: &str = "knowable.json";

/// Runs (or continues) the measurement, writing `knowable.json` after every t.
pub fn run(opts: &KnowableOptions) -> Result<Knowable, guided_ddpm::Error> {
    use guided_ddpm::Error;
    if opts.unet_per_class > guided_ddpm::data::HELD_OUT_PER_CLASS
        || opts.grid == 0
        || opts.grid > T
        || opts.unet_draws == 0
    {
        return Err(Error::Setting(format!(
            "--unet-per-class must be from 0 to {}, --grid from 1 to {T} and --unet-draws at \
             least 1",
            guided_ddpm::data::HELD_OUT_PER_CLASS
        )));
    }
    let device = Device::flex();
    let (manifest, unet, mut classifier) = guided_ddpm::weights::load_dir(&opts.weights, &device)?;
    let mut classifier_id = manifest.classifier.sha256.clone();
    if let Some(dir) = &opts.classifier_run {
        classifier = guided_ddpm::train::load_ema(
            manifest.classifier.config.init(&device),
            dir,
            "classifier",
        )?;
        let state = guided_ddpm::train::read_state(
            &guided_ddpm::train::CheckpointFiles::new(dir, "classifier").state,
        )?;
        classifier_id = format!("{} (float EMA) at step {}", dir.display(), state.step);
    }
    let (train, held) = guided_ddpm::data::load(&opts.data)?.split();
    let plan = Plan {
        grid: opts.grid,
        unet_per_class: opts.unet_per_class,
        unet_draws: opts.unet_draws,
        seed: 2026,
        schedule: manifest.schedule.kind,
    };
    let fresh = Knowable::new(
        (classifier_id, manifest.unet.sha256.clone()),
        &train,
        &held,
        &plan,
    );
    let path = opts.out.join(FILE);
    let start = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Knowable>(&t).ok())
        .filter(|k| fresh.same_plan(k))
        .unwrap_or(fresh);
    std::fs::create_dir_all(&opts.out)
        .map_err(Error::io(format!("creating {}", opts.out.display())))?;
    let started = std::time::Instant::now();
    measure(
        start,
        (&classifier, &unet),
        &train,
        &held,
        &plan,
        &device,
        |k| {
            let i = k.classifier.len() - 1;
            let unet = match (k.unet.get(i), k.classifier_on_unet_digits.get(i)) {
                (Some(u), Some(c)) => format!(
                    ", U-Net {:5.1}% (classifier on its digits {:5.1}%)",
                    100.0 * u.accuracy,
                    100.0 * c.accuracy
                ),
                _ => String::new(),
            };
            eprintln!(
                "t = {:>3}: classifier {:5.1}% (ECE {:.3}), kernel {:5.1}%{unet}; {:.0} s",
                k.t[i],
                100.0 * k.classifier[i].accuracy,
                k.classifier[i].ece,
                100.0 * k.kernel[i].accuracy,
                started.elapsed().as_secs_f64()
            );
            let json = serde_json::to_string_pretty(k).expect("serializes");
            guided_ddpm::atomic::write(&path, json.as_bytes())
        },
    )
}

mod section;
pub use section::section;

#[cfg(test)]
mod tests;
