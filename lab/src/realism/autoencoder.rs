//! The autoencoder whose code is eval's second feature space: trained to redraw the train
//! digits, never told their class.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};
use rand::Rng;

use guided_ddpm::nn::blocks::{conv, conv3x3, upsample_nearest2x};
use guided_ddpm::nn::SIDE;

use super::rows;

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
