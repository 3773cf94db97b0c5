//! Measures of realism that still see the gap once the judge's FD sits at its real-vs-real floor
//! (issue 43): a classifier two-sample test, the Frechet distance in an autoencoder's code (a
//! feature space trained to redraw digits, not to name them), and a copy test against the train
//! digits. Each has a reference of real digits at the same N, so a row reads against what real
//! digits score.
//!
//! Pixels here are in [0, 1] (grey byte / 255), digits `[N, 784]` row-major.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{relu, silu, softplus};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use guided_ddpm::data::Digits;
use guided_ddpm::nn::blocks::{conv, conv3x3, upsample_nearest2x};
use guided_ddpm::nn::{NUM_CLASSES, SIDE};

const PIXELS: usize = SIDE * SIDE;

// ---- the classifier two-sample test ------------------------------------------------------------

/// Folds of the two-sample test's cross-validation.
pub const FOLDS: usize = 5;
/// Hidden units of the two-sample test's network.
pub const HIDDEN: usize = 128;
/// Passes over a fold's training part, its minibatch and Adam's learning rate.
const EPOCHS: usize = 40;
const BATCH: usize = 100;
const LR: f64 = 1e-3;

/// A classifier two-sample test's result (Lopez-Paz & Oquab 2017, "Revisiting Classifier
/// Two-Sample Tests"): the held-out accuracy of a network trained to tell set A from set B, per
/// fold. 0.5 means it cannot tell them apart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TwoSample {
    /// Accuracy on each held-out fold (of each repeat, in order).
    pub folds: Vec<f64>,
}

impl TwoSample {
    /// The mean accuracy over the folds.
    pub fn accuracy(&self) -> f64 {
        self.folds.iter().sum::<f64>() / self.folds.len().max(1) as f64
    }

    /// The sample standard deviation over the folds (0 with fewer than two).
    pub fn fold_sd(&self) -> f64 {
        sd(&self.folds)
    }
}

/// The sample standard deviation of `v` (0 with fewer than two values).
pub fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// One hidden layer of ReLUs on raw pixels, one logit out: "this digit is from set B".
#[derive(Module, Debug)]
struct Mlp {
    w1: Param<Tensor<2>>,
    b1: Param<Tensor<1>>,
    w2: Param<Tensor<2>>,
    b2: Param<Tensor<1>>,
}

impl Mlp {
    /// Weights uniform in +-1/sqrt(fan_in) from `rng` (as burn's Linear draws them), so a test is
    /// the same from one run to the next.
    fn new(rng: &mut StdRng, device: &Device) -> Self {
        let mut uniform = |rows: usize, cols: usize| {
            let bound = 1.0 / (rows as f32).sqrt();
            let v: Vec<f32> = (0..rows * cols)
                .map(|_| rng.random_range(-bound..bound))
                .collect();
            v
        };
        let w1 = uniform(PIXELS, HIDDEN);
        let w2 = uniform(HIDDEN, 1);
        Mlp {
            w1: Param::from_tensor(Tensor::from_data(
                TensorData::new(w1, [PIXELS, HIDDEN]),
                device,
            )),
            b1: Param::from_tensor(Tensor::zeros([HIDDEN], device)),
            w2: Param::from_tensor(Tensor::from_data(TensorData::new(w2, [HIDDEN, 1]), device)),
            b2: Param::from_tensor(Tensor::zeros([1], device)),
        }
    }

    /// Logits `[B]` of pixels `[B, 784]`.
    fn forward(&self, x: Tensor<2>) -> Tensor<1> {
        let h = relu(x.matmul(self.w1.val()) + self.b1.val().unsqueeze());
        let z = h.matmul(self.w2.val()) + self.b2.val().unsqueeze();
        let b = z.dims()[0];
        z.reshape([b])
    }
}

/// Rows `idx` of `pixels` as a `[len, 784]` tensor.
fn rows(pixels: &[f32], idx: &[usize], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = idx
        .iter()
        .flat_map(|&i| pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied())
        .collect();
    Tensor::from_data(TensorData::new(v, [idx.len(), PIXELS]), device)
}

/// The classifier two-sample test of `a` against `b` (pixels in [0, 1], with their classes):
/// the two sets pooled, split into [`FOLDS`] folds stratified by set and class, and for each
/// fold a network trained on the others (binary cross-entropy, Adam) and scored on it. The
/// sets should be of the same size and class mix, so that 50% is chance.
pub fn two_sample(
    a: &[f32],
    a_classes: &[usize],
    b: &[f32],
    b_classes: &[usize],
    seed: u64,
    device: &Device,
) -> TwoSample {
    two_sample_scored(a, a_classes, b, b_classes, seed, device).0
}

/// [`two_sample`], and each pooled row's held-out logit (A's rows, then B's): above 0 where the
/// fold's network took the row for one of B's.
pub fn two_sample_scored(
    a: &[f32],
    a_classes: &[usize],
    b: &[f32],
    b_classes: &[usize],
    seed: u64,
    device: &Device,
) -> (TwoSample, Vec<f32>) {
    assert_eq!(
        a.len(),
        a_classes.len() * PIXELS,
        "set A's pixels and classes"
    );
    assert_eq!(
        b.len(),
        b_classes.len() * PIXELS,
        "set B's pixels and classes"
    );
    let pixels: Vec<f32> = a.iter().chain(b).copied().collect();
    let n = a_classes.len() + b_classes.len();
    let target: Vec<f32> = (0..n)
        .map(|i| f32::from(u8::from(i >= a_classes.len())))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    // Each (set, class) group dealt round-robin into the folds after a shuffle.
    let mut fold_of = vec![0usize; n];
    for set in 0..2 {
        for c in 0..NUM_CLASSES {
            let mut group: Vec<usize> = (0..n)
                .filter(|&i| target[i] as usize == set)
                .filter(|&i| {
                    let class = if set == 0 {
                        a_classes[i]
                    } else {
                        b_classes[i - a_classes.len()]
                    };
                    class == c
                })
                .collect();
            group.shuffle(&mut rng);
            let start = rng.random_range(0..FOLDS);
            for (k, i) in group.into_iter().enumerate() {
                fold_of[i] = (start + k) % FOLDS;
            }
        }
    }
    let ad = device.clone().autodiff();
    let mut scores = vec![0.0f32; n];
    let folds = (0..FOLDS)
        .map(|fold| {
            let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != fold).collect();
            let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == fold).collect();
            let model = fit_mlp(&pixels, &target, train, &mut rng, &ad);
            let logits = model
                .valid()
                .forward(rows(&pixels, &test, device))
                .try_into_vec_as::<f32>()
                .expect("two-sample logits");
            let right = test
                .iter()
                .zip(&logits)
                .filter(|(&i, &z)| (z > 0.0) == (target[i] > 0.5))
                .count();
            for (&i, &z) in test.iter().zip(&logits) {
                scores[i] = z;
            }
            right as f64 / test.len().max(1) as f64
        })
        .collect();
    (TwoSample { folds }, scores)
}

/// Trains the two-sample test's network on rows `train` of `pixels`: [`EPOCHS`] passes in
/// shuffled minibatches of [`BATCH`], mean binary cross-entropy with logits,
/// softplus(z) - y z.
fn fit_mlp(
    pixels: &[f32],
    target: &[f32],
    mut train: Vec<usize>,
    rng: &mut StdRng,
    ad: &Device,
) -> Mlp {
    let mut model = Mlp::new(rng, ad);
    let mut optim = AdamConfig::new().init();
    for _ in 0..EPOCHS {
        train.shuffle(rng);
        for batch in train.chunks(BATCH) {
            let x = rows(pixels, batch, ad);
            let y: Vec<f32> = batch.iter().map(|&i| target[i]).collect();
            let y = Tensor::<1>::from_data(TensorData::new(y, [batch.len()]), ad);
            let z = model.forward(x);
            let loss = (softplus(z.clone(), 1.0) - z * y).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(LR, model, grads);
        }
    }
    model
}

// ---- the autoencoder's code --------------------------------------------------------------------

/// Width of the autoencoder's code, the features its Frechet distance is taken in.
pub const CODE: usize = 32;
const AE_C: [usize; 2] = [16, 32];

/// A small convolutional autoencoder of digits in [-1, 1]: 28 -> 14 -> 7 by strided
/// convolutions, a linear map to a [`CODE`]-wide code, and back by nearest upsampling and
/// convolutions. Trained only to redraw train digits (mean squared error), never told their
/// class, so its code keeps what strokes look like where a classifier's features keep what
/// digit they are.
#[derive(Module, Debug)]
pub struct Autoencoder {
    down0: Conv2d,
    down1: Conv2d,
    to_code: Linear,
    from_code: Linear,
    up1: Conv2d,
    up0: Conv2d,
}

impl Autoencoder {
    pub fn new(device: &Device) -> Self {
        let [c0, c1] = AE_C;
        Autoencoder {
            down0: conv3x3(1, c0, 2, device),
            down1: conv3x3(c0, c1, 2, device),
            to_code: LinearConfig::new(c1 * 49, CODE).init(device),
            from_code: LinearConfig::new(CODE, c1 * 49).init(device),
            up1: conv3x3(c1, c0, 1, device),
            up0: conv3x3(c0, 1, 1, device),
        }
    }

    /// The code `[B, CODE]` of digits `[B, 1, 28, 28]` in [-1, 1].
    pub fn encode(&self, x: Tensor<4>) -> Tensor<2> {
        let h = silu(conv(&self.down0, x));
        let h = silu(conv(&self.down1, h));
        let [b, c, hh, ww] = h.dims();
        self.to_code.forward(h.reshape([b, c * hh * ww]))
    }

    /// Digits `[B, 1, 28, 28]` in [-1, 1] redrawn from their code.
    pub fn decode(&self, code: Tensor<2>) -> Tensor<4> {
        let b = code.dims()[0];
        let h = silu(self.from_code.forward(code)).reshape([b, AE_C[1], 7, 7]);
        let h = silu(conv(&self.up1, upsample_nearest2x(h)));
        conv(&self.up0, upsample_nearest2x(h)).tanh()
    }

    /// Mean squared error of redrawing `x`: the training loss.
    pub fn loss(&self, x: Tensor<4>) -> Tensor<1> {
        (self.decode(self.encode(x.clone())) - x)
            .powi_scalar(2)
            .mean()
    }

    /// Codes of rows `idx` of `pixels` (in [0, 1]), in batches.
    pub fn codes(&self, pixels: &[f32], idx: &[usize], device: &Device) -> Vec<f32> {
        idx.chunks(250)
            .flat_map(|chunk| {
                let x = rows(pixels, chunk, device).reshape([chunk.len(), 1, SIDE, SIDE]);
                self.encode(x * 2.0 - 1.0)
                    .try_into_vec_as::<f32>()
                    .expect("codes")
            })
            .collect()
    }
}

/// The autoencoder's checkpoint name in the checkpoints folder (`autoencoder-ema.bpk`).
pub const AUTOENCODER: &str = "autoencoder";

/// `guided-ddpm-lab autoencoder`: trains the autoencoder whose code eval's second Frechet
/// distance is taken in.
#[derive(clap::Args)]
pub struct AutoencoderOptions {
    /// Total optimizer steps of the run (across resumes).
    #[arg(long, default_value_t = 4000)]
    pub steps: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Checkpoint folder (the judge's).
    #[arg(long, default_value = "checkpoints")]
    pub dir: std::path::PathBuf,
    #[arg(long, default_value = "data")]
    pub data: std::path::PathBuf,
    /// Continue from the checkpoint in --dir.
    #[arg(long)]
    pub resume: bool,
}

/// Trains the autoencoder on the train digits (never the held-out ones), unshifted, by the
/// trainer's loop (AdamW, warm-up, EMA, resumable checkpoints); returns the last logged loss.
pub fn train_autoencoder(opts: &AutoencoderOptions) -> Result<f64, guided_ddpm::Error> {
    use guided_ddpm::train::{self, Drawn, TrainOptions};
    let (train_set, _) = guided_ddpm::data::load(&opts.data)?.split();
    let device = Device::flex().autodiff();
    let topts = TrainOptions {
        steps: opts.steps,
        batch: opts.batch,
        shards: train::default_shards(opts.batch),
        lr: 1e-3,
        warmup: 100,
        ema_decay: 0.999,
        p_uncond: 0.0,
        checkpoint_every: std::time::Duration::from_secs(300),
        seed: 11,
        dir: opts.dir.clone(),
        resume: opts.resume,
        quiet: false,
        max_shift: 0,
    };
    let (_, state) = train::fit(
        AUTOENCODER,
        Autoencoder::new(&device),
        &topts,
        |rng| {
            let idx: Vec<usize> = (0..opts.batch)
                .map(|_| rng.random_range(0..train_set.len()))
                .collect();
            Drawn {
                x0: idx.iter().flat_map(|&i| train_set.image(i)).collect(),
                labels: idx.iter().map(|&i| train_set.labels[i] as usize).collect(),
                t: vec![0; idx.len()],
                eps: Vec::new(),
            }
        },
        |model, part| model.loss(part.x0(&device)),
    )?;
    Ok(state.last_loss)
}

// ---- the copy test -------------------------------------------------------------------------------

/// How near samples come to the digits the U-Net learned from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Copying {
    /// The share of samples nearer to a train digit than the held-out digits' 1st percentile
    /// of the same distance.
    pub share: f64,
    /// The median distance to the nearest train digit (pixels in [0, 1], Euclidean over 784).
    pub median: f64,
}

/// Each row of `x`'s Euclidean distance to its nearest row of `train` (both `[_, 784]`),
/// through one matrix product per block: |x - t|^2 = |x|^2 + |t|^2 - 2 x.t.
pub fn nearest_distances(x: &[f32], train: &[f32], device: &Device) -> Vec<f64> {
    let n_train = train.len() / PIXELS;
    let t = Tensor::<2>::from_data(TensorData::new(train.to_vec(), [n_train, PIXELS]), device);
    let t_sq = t.clone().powi_scalar(2).sum_dim(1).reshape([1, n_train]);
    let tt = t.transpose();
    let n = x.len() / PIXELS;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(256) {
        let end = (start + 256).min(n);
        let xb = Tensor::<2>::from_data(
            TensorData::new(
                x[start * PIXELS..end * PIXELS].to_vec(),
                [end - start, PIXELS],
            ),
            device,
        );
        let x_sq = xb.clone().powi_scalar(2).sum_dim(1);
        let d2 = x_sq + t_sq.clone() - xb.matmul(tt.clone()) * 2.0;
        let min = d2.min_dim(1).try_into_vec_as::<f32>().expect("distances");
        out.extend(min.into_iter().map(|v| f64::from(v.max(0.0)).sqrt()));
    }
    out
}

/// The `q`-quantile of `v` (nearest rank, `q` in [0, 1]).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let at = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[at]
}

/// The copy test of samples whose nearest-train distances are `d`, against the held-out
/// digits' 1st percentile `threshold`.
pub fn copying(d: &[f64], threshold: f64) -> Copying {
    Copying {
        share: d.iter().filter(|&&x| x < threshold).count() as f64 / d.len().max(1) as f64,
        median: quantile(d, 0.5),
    }
}

/// The share of pixels that are exactly black (grey byte 0): 81% of a real digit's.
pub fn black_share(pixels: &[f32]) -> f64 {
    pixels
        .iter()
        .filter(|&&p| (p * 255.0).round() <= 0.0)
        .count() as f64
        / pixels.len().max(1) as f64
}

/// Digits' grey bytes as [0, 1] values.
pub fn unit_pixels(digits: &Digits, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| {
            digits.pixels[i * PIXELS..(i + 1) * PIXELS]
                .iter()
                .map(|&p| f32::from(p) / 255.0)
        })
        .collect()
}

// ---- a row's measures and the real digits' reference ---------------------------------------------

/// Repeats of a row's two-sample test, each against its own draw of held-out digits.
pub const REPEATS: usize = 2;
/// Draws of train digits in the two-sample test's real-vs-real reference.
pub const REFERENCE_DRAWS: usize = 4;

/// The realism measures of one row's samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RowRealism {
    /// Samples against held-out digits, as many of each class.
    pub two_sample: TwoSample,
    /// Frechet distance of autoencoder codes against the 1,000 held-out digits'.
    pub ae_frechet: f64,
    pub copying: Copying,
    /// The share of exactly black pixels.
    pub black: f64,
}

/// What real digits score on the same measures, at the rows' N.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RealismReference {
    pub n_per_class: usize,
    /// sha256 of the autoencoder checkpoint whose code the Frechet distances are taken in: rows
    /// measured in another autoencoder's code are measured again.
    pub autoencoder_sha256: String,
    /// Train digits (n of each class, a fresh draw each) against held-out digits, one test per
    /// draw, run as a row's is.
    pub two_sample: Vec<TwoSample>,
    /// The autoencoder FD of train digits (n of each class, drawn at random) against the
    /// held-out ones, per draw.
    pub ae_frechet_draws: Vec<f64>,
    /// The held-out digits' own copy test: their 1st percentile of nearest-train distance is
    /// the threshold, so the share is about 1% by construction.
    pub held_copying: Copying,
    pub copy_threshold: f64,
    /// The share of exactly black pixels in the held-out digits.
    pub held_black: f64,
}

impl RealismReference {
    /// The mean and the standard deviation over draws of the real digits' two-sample accuracy.
    pub fn two_sample_mean_sd(&self) -> (f64, f64) {
        let v: Vec<f64> = self.two_sample.iter().map(TwoSample::accuracy).collect();
        (v.iter().sum::<f64>() / v.len().max(1) as f64, sd(&v))
    }

    /// The mean and the standard deviation over draws of the real digits' autoencoder FD.
    pub fn ae_frechet_mean_sd(&self) -> (f64, f64) {
        let v = &self.ae_frechet_draws;
        (v.iter().sum::<f64>() / v.len().max(1) as f64, sd(v))
    }
}

/// What every row is measured against, prepared once per evaluation.
pub struct Realism {
    autoencoder: Autoencoder,
    held: Vec<f32>,
    held_classes: Vec<usize>,
    held_codes: Vec<f32>,
    train: Vec<f32>,
    threshold: f64,
    per_class: usize,
}

/// Indices of `k` digits of each class of `labels`, drawn at random without replacement (all of
/// a class that has fewer), in class order.
pub fn stratified(labels: &[u8], k: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..NUM_CLASSES)
        .flat_map(|c| {
            let mut of: Vec<usize> = (0..labels.len())
                .filter(|&i| labels[i] as usize == c)
                .collect();
            of.shuffle(rng);
            of.truncate(k);
            of.sort_unstable();
            of
        })
        .collect()
}

impl Realism {
    /// Loads the autoencoder from `checkpoints` and measures the real digits: the reference
    /// (reused from `previous` where it is of the same N and autoencoder) and what each row
    /// is set against. `draws` is how many draws of real digits the autoencoder FD's spread
    /// takes, and the seed of every draw.
    pub fn prepare(
        checkpoints: &std::path::Path,
        train_set: &Digits,
        held: &Digits,
        n_per_class: usize,
        previous: Option<&RealismReference>,
        draws: (usize, u64),
        device: &Device,
    ) -> Result<(Self, RealismReference), guided_ddpm::Error> {
        let path = checkpoints.join(format!("{AUTOENCODER}-ema.bpk"));
        let bytes = std::fs::read(&path).map_err(|e| {
            guided_ddpm::Error::Weights(format!(
                "cannot read {}: {e}; train it with `guided-ddpm-lab autoencoder`",
                path.display()
            ))
        })?;
        let sha = guided_ddpm::weights::manifest::sha256_hex(&bytes);
        let autoencoder =
            guided_ddpm::train::load_ema(Autoencoder::new(device), checkpoints, AUTOENCODER)?;
        let held_idx: Vec<usize> = (0..held.len()).collect();
        let train_idx: Vec<usize> = (0..train_set.len()).collect();
        let held_px = unit_pixels(held, &held_idx);
        let train_px = unit_pixels(train_set, &train_idx);
        let held_codes = autoencoder.codes(&held_px, &held_idx, device);
        let reuse = previous.filter(|p| {
            p.n_per_class == n_per_class && p.autoencoder_sha256 == sha && !p.two_sample.is_empty()
        });
        // The held-out digits' own copy test (a search of every train digit for each) only where
        // the reference is measured afresh; a reused one holds its threshold.
        let (threshold, held_copying) = match reuse {
            Some(p) => (p.copy_threshold, p.held_copying.clone()),
            None => {
                let held_d = nearest_distances(&held_px, &train_px, device);
                let threshold = quantile(&held_d, 0.01);
                (threshold, copying(&held_d, threshold))
            }
        };
        let per_class = n_per_class.min(guided_ddpm::data::HELD_OUT_PER_CLASS);
        let realism = Realism {
            held_classes: held.labels.iter().map(|&l| l as usize).collect(),
            held: held_px,
            held_codes,
            train: train_px,
            threshold,
            per_class,
            autoencoder,
        };
        if let Some(p) = reuse {
            return Ok((realism, p.clone()));
        }
        let train_codes = realism
            .autoencoder
            .codes(&realism.train, &train_idx, device);
        let ae_frechet_draws = crate::frechet::stratified_subsets(
            &train_codes,
            &train_set.labels,
            &realism.held_codes,
            CODE,
            n_per_class,
            draws.0,
            draws.1,
        );
        let mut rng = StdRng::seed_from_u64(draws.1);
        let two_sample = (0..REFERENCE_DRAWS)
            .map(|_| {
                let idx = stratified(&train_set.labels, per_class, &mut rng);
                let px = unit_pixels(train_set, &idx);
                let classes: Vec<usize> =
                    idx.iter().map(|&i| train_set.labels[i] as usize).collect();
                let seed = rng.random();
                realism.two_sample_against_held(&px, &classes, seed, device)
            })
            .collect();
        let reference = RealismReference {
            n_per_class,
            autoencoder_sha256: sha,
            two_sample,
            ae_frechet_draws,
            held_copying,
            copy_threshold: threshold,
            held_black: black_share(&realism.held),
        };
        Ok((realism, reference))
    }

    /// One two-sample test of `px` (with `classes`, `per_class` of each at most) against as many
    /// held-out digits of each class, drawn from `seed`, per repeat; the folds of all repeats.
    fn two_sample_against_held(
        &self,
        px: &[f32],
        classes: &[usize],
        seed: u64,
        device: &Device,
    ) -> TwoSample {
        let mut rng = StdRng::seed_from_u64(seed);
        let labels: Vec<u8> = self.held_classes.iter().map(|&c| c as u8).collect();
        let mut folds = Vec::new();
        for _ in 0..REPEATS {
            let held_idx = stratified(&labels, self.per_class, &mut rng);
            let held_px: Vec<f32> = held_idx
                .iter()
                .flat_map(|&i| self.held[i * PIXELS..(i + 1) * PIXELS].iter().copied())
                .collect();
            let held_classes: Vec<usize> = held_idx.iter().map(|&i| self.held_classes[i]).collect();
            let t = two_sample(px, classes, &held_px, &held_classes, rng.random(), device);
            folds.extend(t.folds);
        }
        TwoSample { folds }
    }

    /// The realism measures of samples (grey bytes, `[N, 784]`) drawn for `classes`. Where a
    /// class has more samples than the held-out digits it is tested against, its first ones
    /// are tested.
    pub fn measure(&self, bytes: &[u8], classes: &[usize], device: &Device) -> RowRealism {
        let px: Vec<f32> = bytes.iter().map(|&b| f32::from(b) / 255.0).collect();
        let all: Vec<usize> = (0..classes.len()).collect();
        let mut seen = [0usize; NUM_CLASSES];
        let kept: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| {
                seen[classes[i]] += 1;
                seen[classes[i]] <= self.per_class
            })
            .collect();
        let kept_px: Vec<f32> = kept
            .iter()
            .flat_map(|&i| px[i * PIXELS..(i + 1) * PIXELS].iter().copied())
            .collect();
        let kept_classes: Vec<usize> = kept.iter().map(|&i| classes[i]).collect();
        let codes = self.autoencoder.codes(&px, &all, device);
        RowRealism {
            two_sample: self.two_sample_against_held(&kept_px, &kept_classes, 43, device),
            ae_frechet: crate::frechet::between(&codes, &self.held_codes, CODE),
            copying: copying(&nearest_distances(&px, &self.train, device), self.threshold),
            black: black_share(&px),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sets of 200 noisy "digits" each: a bright square in the middle, A's one pixel
    /// further right when `shift`, on a faint background of noise in every pixel (784
    /// dimensions of noise for 320 training rows: a network scored on rows it trained on
    /// would tell even the same distribution apart).
    fn sets(shift: bool, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut draw = |dx: usize| -> Vec<f32> {
            (0..200)
                .flat_map(|_| {
                    let mut img: Vec<f32> =
                        (0..PIXELS).map(|_| rng.random_range(0.0..0.3)).collect();
                    for r in 10..18 {
                        for c in 10 + dx..18 + dx {
                            img[r * SIDE + c] = rng.random_range(0.6..1.0);
                        }
                    }
                    img
                })
                .collect()
        };
        let a = draw(usize::from(shift));
        let b = draw(0);
        let classes = (0..200).map(|i| i % NUM_CLASSES).collect();
        (a, b, classes)
    }

    #[test]
    fn the_two_sample_test_tells_apart_what_differs_and_not_what_does_not() {
        let device = Device::flex();
        let (a, b, y) = sets(true, 1);
        let apart = two_sample(&a, &y, &b, &y, 3, &device);
        assert_eq!(apart.folds.len(), FOLDS);
        assert!(apart.accuracy() > 0.95, "shifted squares: {apart:?}");
        let (a, b, y) = sets(false, 2);
        let same = two_sample(&a, &y, &b, &y, 3, &device);
        assert!(
            (same.accuracy() - 0.5).abs() < 0.12,
            "the same distribution: {same:?}"
        );
    }

    #[test]
    fn nearest_distances_match_a_direct_search() {
        let device = Device::flex();
        let mut rng = StdRng::seed_from_u64(4);
        let train: Vec<f32> = (0..30 * PIXELS).map(|_| rng.random::<f32>()).collect();
        let mut x: Vec<f32> = (0..5 * PIXELS).map(|_| rng.random::<f32>()).collect();
        // Sample 2 is train digit 17 moved by 0.1 in one pixel: its distance is 0.1.
        x[2 * PIXELS..3 * PIXELS].copy_from_slice(&train[17 * PIXELS..18 * PIXELS]);
        x[2 * PIXELS + 5] += 0.1;
        let d = nearest_distances(&x, &train, &device);
        for (i, &got) in d.iter().enumerate() {
            let want = (0..30)
                .map(|j| {
                    (0..PIXELS)
                        .map(|p| (x[i * PIXELS + p] - train[j * PIXELS + p]).powi(2) as f64)
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                (got - want).abs() < 1e-3,
                "sample {i}: {got} against {want}"
            );
        }
        assert!((d[2] - 0.1).abs() < 1e-3, "{}", d[2]);
    }

    #[test]
    fn the_copy_share_counts_samples_below_the_threshold() {
        let c = copying(&[0.5, 1.0, 2.0, 3.0], 1.5);
        assert_eq!(c.share, 0.5);
        assert_eq!(c.median, 1.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.01), 1.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 1.0), 5.0);
    }

    #[test]
    fn black_share_counts_pixels_at_zero() {
        assert_eq!(black_share(&[0.0, 0.001, 0.5, 1.0]), 0.5);
    }
}
