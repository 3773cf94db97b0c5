//! Native training of the three networks on the flex CPU backend: the U-Net eps-model, the
//! noise-aware guidance classifier, and the clean-digit judge used only for evaluation.
//!
//! One loop ([`fit`]) serves all three: AdamW with linear warm-up, an EMA of the weights,
//! checkpoints every few minutes (model, EMA, optimizer state, step counter) and `--resume`.
//! Each batch is split into parts that run forward and backward side by side on the CPU's
//! threads, their gradients summed into one update ([`TrainOptions::shards`]).

mod ema;
mod export;
mod tasks;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use export::{export, file_name, stage, weight_files, Staged};
pub use tasks::{cross_entropy, train_classifier, train_judge, train_unet, Net, P_UNCOND};

use crate::Error;

/// Set by Ctrl-C: the loop writes a checkpoint and returns at the end of the current step.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Settings of one training run.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Optimizer steps to reach (counted from the start of the run, across resumes).
    pub steps: usize,
    pub batch: usize,
    /// Parts each batch is split into, run forward and backward at once on the CPU's threads
    /// (each part on its own copy of the autodiff graph), their gradients summed. Every loss is
    /// a mean over samples that do not interact (GroupNorm, no BatchNorm), so the update is
    /// the one-part update up to float rounding; the parts keep cores busy that one part's
    /// serial stretches leave idle.
    pub shards: usize,
    /// Peak learning rate, reached after `warmup` steps.
    pub lr: f64,
    pub warmup: usize,
    /// EMA decay; the effective decay ramps up as min(decay, (1 + n) / (10 + n)).
    pub ema_decay: f64,
    /// The U-Net's label dropout: the probability that a training digit's label is replaced
    /// by the null class, which trains the unconditional model of classifier-free guidance
    /// (Ho & Salimans 2022, Sec. 3.2). The other networks ignore it.
    pub p_uncond: f64,
    /// Seconds between checkpoints.
    pub checkpoint_every: Duration,
    pub seed: u64,
    /// Folder of the checkpoint files and the CSV log.
    pub dir: PathBuf,
    /// Continue from the checkpoint in `dir` instead of starting afresh.
    pub resume: bool,
    /// Hide the progress bar (tests).
    pub quiet: bool,
    /// The largest random shift, in whole pixels along each axis, of each training digit
    /// ([`DEFAULT_MAX_SHIFT`]). Real MNIST digits sit within half a pixel of the field's centre
    /// of mass; a U-Net trained on shifted digits draws digits as spread as its training
    /// (docs/realism/probe.md), which 0 stops.
    pub max_shift: u32,
}

/// The shift every shipped network was trained with: up to 2 pixels each way.
pub const DEFAULT_MAX_SHIFT: u32 = 2;

/// The largest training batch: 16x the default, and far below what would exhaust memory here.
pub const MAX_TRAIN_BATCH: usize = 1024;

impl TrainOptions {
    /// Rejects settings the loop cannot run, with a sentence naming the flag.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |flag: &str, want: &str, got: String| {
            Err(Error::Setting(format!(
                "--{flag} must be {want}, got {got}"
            )))
        };
        if self.batch == 0 || self.batch > MAX_TRAIN_BATCH {
            return bad(
                "batch",
                &format!("between 1 and {MAX_TRAIN_BATCH}"),
                self.batch.to_string(),
            );
        }
        if self.shards == 0 || self.shards > self.batch {
            return bad(
                "shards",
                &format!("between 1 and the batch size ({})", self.batch),
                self.shards.to_string(),
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return bad(
                "lr",
                "a learning rate above 0 and at most 1",
                self.lr.to_string(),
            );
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(
                "ema-decay",
                "at least 0 and below 1",
                self.ema_decay.to_string(),
            );
        }
        if !(0.0..=1.0).contains(&self.p_uncond) {
            return bad(
                "p-uncond",
                "a probability from 0 to 1",
                self.p_uncond.to_string(),
            );
        }
        if self.max_shift > 4 {
            return bad(
                "max-shift",
                "from 0 to 4 pixels",
                self.max_shift.to_string(),
            );
        }
        if self.checkpoint_every.is_zero() {
            return bad("checkpoint-minutes", "positive", "0".into());
        }
        Ok(())
    }
}

/// What a checkpoint records besides the tensors.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunState {
    pub step: usize,
    pub samples_seen: usize,
    /// Wall-clock seconds spent training, summed over resumes.
    pub wall_secs: f64,
    /// Mean loss over the last logged window.
    pub last_loss: f64,
}

/// The trainer's default [`TrainOptions::shards`]: one part per thread of the pool the parts
/// run on, and no more parts than rows (at least one, so a zero batch is refused by
/// [`TrainOptions::validate`] for its batch, not its parts).
pub fn default_shards(batch: usize) -> usize {
    rayon::current_num_threads().min(batch.max(1))
}

/// One training batch drawn on the host, row by row: clean digits, labels, timesteps and the
/// noise q_sample adds. [`fit`] splits it by rows into [`TrainOptions::shards`] parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drawn {
    /// `[B, 1, SIDE, SIDE]` pixels in [-1, 1], row-major.
    pub x0: Vec<f32>,
    pub labels: Vec<usize>,
    pub t: Vec<usize>,
    /// As many values as `x0`, or none where the task adds no noise.
    pub eps: Vec<f32>,
}

impl Drawn {
    /// Samples in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The clean digits as a `[B, 1, SIDE, SIDE]` tensor.
    pub fn x0(&self, device: &Device) -> Tensor<4> {
        self.images(self.x0.clone(), device)
    }

    /// The noise as a `[B, 1, SIDE, SIDE]` tensor.
    pub fn eps(&self, device: &Device) -> Tensor<4> {
        self.images(self.eps.clone(), device)
    }

    fn images(&self, values: Vec<f32>, device: &Device) -> Tensor<4> {
        let side = crate::nn::SIDE;
        Tensor::from_data(TensorData::new(values, [self.len(), 1, side, side]), device)
    }

    /// Consecutive runs of rows, `parts` of them (at most one per row), their sizes differing by
    /// at most one, in order.
    pub fn split(self, parts: usize) -> Vec<Drawn> {
        let n = self.len();
        let parts = parts.clamp(1, n.max(1));
        let per = |v: usize| v.checked_div(n).unwrap_or(0);
        let (px, pe) = (per(self.x0.len()), per(self.eps.len()));
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for i in 0..parts {
            let end = start + n / parts + usize::from(i < n % parts);
            out.push(Drawn {
                x0: self.x0[start * px..end * px].to_vec(),
                labels: self.labels[start..end].to_vec(),
                t: self.t[start..end].to_vec(),
                eps: self.eps[start * pe..end * pe].to_vec(),
            });
            start = end;
        }
        out
    }
}

/// The files of one network's checkpoint.
pub struct CheckpointFiles {
    pub model: PathBuf,
    pub ema: PathBuf,
    pub optim: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

impl CheckpointFiles {
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            model: dir.join(format!("{name}.bpk")),
            ema: dir.join(format!("{name}-ema.bpk")),
            optim: dir.join(format!("{name}-optim.bpk")),
            state: dir.join(format!("{name}-state.json")),
            log: dir.join(format!("{name}-log.csv")),
        }
    }
}

/// Keeps freed memory in the process for reuse. By default glibc's malloc serves a buffer above
/// its mmap threshold (128 KiB at first, raised toward 32 MiB as such buffers are freed) with
/// fresh pages and returns them to the kernel when it is freed, and trims the heap's free top;
/// a training step allocates and frees hundreds of activations and gradients of 1-25 MB, and
/// the next step pays page faults and zeroing to get the memory back. This fixes the mmap
/// threshold at 32 MiB (its documented limit on 64-bit), the top padding at 256 MiB and the
/// trim threshold at i32::MAX bytes (2 GiB); the process then holds on to its peak heap.
/// Measured by `guided-ddpm bench` (docs/BENCHMARKS.md); changes no number a step computes.
/// Returns whether mallopt reported all three settings taken (always false on other C
/// libraries).
pub fn tune_allocator() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MIB: i32 = 1 << 20;
        let settings = [
            (libc::M_MMAP_THRESHOLD, 32 * MIB),
            (libc::M_TOP_PAD, 256 * MIB),
            (libc::M_TRIM_THRESHOLD, i32::MAX),
        ];
        // SAFETY: mallopt only changes malloc's tuning parameters and is thread-safe; every
        // value is within its parameter's documented range.
        settings
            .iter()
            .all(|&(param, value)| unsafe { libc::mallopt(param, value) } == 1)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Reads a run's state file.
pub fn read_state(path: &Path) -> Result<RunState, Error> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{} is corrupt: {e}", path.display())))
}

/// The U-Net shape of the run in `dir`: its `unet-config.json` where the run has one (a resume
/// must ask for that shape or none), else `asked` or the default shape. A run of the default
/// shape that predates the file (the shipped run) resumes as the default. The shape is written
/// beside the checkpoint (atomically) before training starts, so whoever loads the run
/// ([`load_unet_ema`]) builds the network it saved.
pub fn unet_run_config(
    dir: &Path,
    asked: Option<crate::nn::UNetConfig>,
    resume: bool,
) -> Result<crate::nn::UNetConfig, Error> {
    let path = unet_config_path(dir);
    let had_run = resume && CheckpointFiles::new(dir, Net::Unet.name()).state.exists();
    let config = if path.exists() && resume {
        let saved = read_unet_config(&path)?;
        if let Some(asked) = asked.filter(|a| *a != saved) {
            return Err(Error::Setting(format!(
                "the run in {} has the U-Net shape channels {:?}, emb-dim {}; --channels {:?} --emb-dim {} asks for another (start a fresh run in another --dir)",
                dir.display(),
                saved.channels,
                saved.emb_dim,
                asked.channels,
                asked.emb_dim
            )));
        }
        saved
    } else {
        let config = asked.unwrap_or_else(crate::nn::UNetConfig::new);
        if had_run && config != crate::nn::UNetConfig::new() {
            return Err(Error::Setting(format!(
                "the run in {} has no {} and so the default U-Net shape; it cannot resume with another",
                dir.display(),
                path.display()
            )));
        }
        config
    };
    config.validate()?;
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let json = serde_json::to_string_pretty(&config).expect("U-Net config serializes");
    crate::atomic::write(&path, json.as_bytes())?;
    Ok(config)
}

/// The U-Net of the run in `dir` with its EMA weights, in the shape its `unet-config.json`
/// records (the default shape where the run has none).
pub fn load_unet_ema(dir: &Path, device: &Device) -> Result<crate::nn::UNet, Error> {
    load_ema(unet_config_of(dir)?.init(device), dir, Net::Unet.name())
}

/// The U-Net shape of the run in `dir`: its `unet-config.json`, or the default shape where the
/// run has none.
pub fn unet_config_of(dir: &Path) -> Result<crate::nn::UNetConfig, Error> {
    let path = unet_config_path(dir);
    match path.exists() {
        true => read_unet_config(&path),
        false => Ok(crate::nn::UNetConfig::new()),
    }
}

fn unet_config_path(dir: &Path) -> PathBuf {
    dir.join(format!("{}-config.json", Net::Unet.name()))
}

fn read_unet_config(path: &Path) -> Result<crate::nn::UNetConfig, Error> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    let config: crate::nn::UNetConfig = serde_json::from_str(&text)
        .map_err(|e| Error::Data(format!("{} is corrupt: {e}", path.display())))?;
    config.validate()?;
    Ok(config)
}

/// Loads the EMA weights of a finished (or checkpointed) run into `model`.
pub fn load_ema<M: Module>(model: M, dir: &Path, name: &str) -> Result<M, Error> {
    let path = CheckpointFiles::new(dir, name).ema;
    model.try_load_file(&path).map_err(|e| {
        Error::Weights(format!(
            "cannot load {}: {e}; train it first with `guided-ddpm train {name}`",
            path.display()
        ))
    })
}

/// The training loop. `draw` draws a batch from `rng` on the host; `loss` returns the mean loss
/// of one part of it (a `[1]` tensor on the autodiff device).
pub fn fit<M, D, L>(
    name: &str,
    init: M,
    opts: &TrainOptions,
    mut draw: D,
    loss: L,
) -> Result<(M, RunState), Error>
where
    M: Module + Clone + Sync,
    D: FnMut(&mut StdRng) -> Drawn,
    L: Fn(&M, Drawn) -> Tensor<1> + Sync,
{
    opts.validate()?;
    std::fs::create_dir_all(&opts.dir)
        .map_err(Error::io(format!("creating {}", opts.dir.display())))?;
    let files = CheckpointFiles::new(&opts.dir, name);
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    // The step the learning-rate warm-up counts from: 0, or the resume step when the optimizer
    // state had to start afresh.
    let mut warm_from = 0;
    let (mut model, mut ema, mut state) = if opts.resume && files.state.exists() {
        let state = read_state(&files.state)?;
        let model = init
            .clone()
            .try_load_file(&files.model)
            .map_err(file_err("cannot resume from", &files.model))?;
        let ema = init
            .valid()
            .try_load_file(&files.ema)
            .map_err(file_err("cannot resume from", &files.ema))?;
        // The optimizer state stays out of git (twice the model's size): a run resumed from a
        // fresh clone starts AdamW's moments afresh and warms the learning rate up again.
        if files.optim.exists() {
            optim = optim
                .load(&files.optim)
                .map_err(file_err("cannot resume from", &files.optim))?;
        } else {
            warm_from = state.step;
        }
        (model, ema, state)
    } else {
        let ema = init.valid();
        (init, ema, RunState::default())
    };
    if state.step >= opts.steps {
        return Ok((ema, state));
    }
    let bar = progress_bar(opts, &state, name);
    let mut log = open_log(&files.log, state.step == 0)?;
    let mut rng =
        StdRng::seed_from_u64(opts.seed ^ (state.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let started = Instant::now();
    let wall_before = state.wall_secs;
    let mut last_save = Instant::now();
    let (mut window_loss, mut window_n) = (0.0, 0usize);
    while state.step < opts.steps {
        let lr =
            opts.lr * ((state.step - warm_from + 1) as f64 / opts.warmup.max(1) as f64).min(1.0);
        let batch = draw(&mut rng);
        let n = batch.len();
        let (value, grads) = gradients(&model, batch, opts.shards, &loss);
        model = optim.step(lr, model, grads);
        if !value.is_finite() {
            return Err(Error::Data(format!(
                "{name}: the loss became {value} at step {}; lower --lr",
                state.step
            )));
        }
        let decay = opts
            .ema_decay
            .min((1.0 + state.step as f64) / (10.0 + state.step as f64));
        ema = ema::update(ema, &model, decay);
        state.step += 1;
        state.samples_seen += n;
        window_loss += value;
        window_n += 1;
        state.wall_secs = wall_before + started.elapsed().as_secs_f64();
        if state.step % 25 == 0 || state.step == opts.steps {
            state.last_loss = window_loss / window_n as f64;
            writeln!(
                log,
                "{},{:.6},{:.3e},{},{:.1}",
                state.step, state.last_loss, lr, state.samples_seen, state.wall_secs
            )
            .map_err(Error::io("writing the training log"))?;
            (window_loss, window_n) = (0.0, 0);
        }
        if let Some(bar) = &bar {
            bar.set_position(state.step as u64);
            bar.set_message(format!(
                "loss {:.4}",
                window_loss.max(state.last_loss * window_n as f64) / window_n.max(1) as f64
            ));
        }
        let stop = STOP.load(Ordering::Relaxed);
        if stop || state.step == opts.steps || last_save.elapsed() >= opts.checkpoint_every {
            save(&files, &model, &ema, &optim, &state)?;
            last_save = Instant::now();
        }
        if stop {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok((ema, state))
}

/// The batch's mean loss and its gradient, from `shards` parts run side by side: part i's
/// mean loss weighted by its share of the batch, n_i / n, so the weighted losses and their
/// gradients sum to the whole batch's mean and its gradient. Parts after the first run on
/// forks of the model (the same parameters and ids, detached into their own autodiff graph),
/// so no two backward passes share a graph and its lock.
pub fn gradients<M, L>(model: &M, batch: Drawn, shards: usize, loss: &L) -> (f64, GradientsParams)
where
    M: Module + Clone + Sync,
    L: Fn(&M, Drawn) -> Tensor<1> + Sync,
{
    use rayon::prelude::*;
    let n = batch.len().max(1) as f64;
    let one = |replica: &M, part: Drawn| {
        let share = part.len() as f64 / n;
        let l = loss(replica, part) * share;
        let grads = GradientsParams::from_grads(l.backward(), replica);
        (l.into_scalar::<f32>() as f64, grads)
    };
    let parts = batch.split(shards);
    if parts.len() == 1 {
        let part = parts.into_iter().next().expect("one part");
        return one(model, part);
    }
    let device = model.devices().into_iter().next();
    let done: Vec<(f64, GradientsParams)> = parts
        .into_par_iter()
        .enumerate()
        .map(|(i, part)| match (i, &device) {
            (0, _) | (_, None) => one(model, part),
            (_, Some(device)) => one(&model.clone().fork(device), part),
        })
        .collect();
    let mut sum = GradientsAccumulator::<M>::new();
    let mut value = 0.0;
    for (v, grads) in done {
        value += v;
        sum.accumulate(model, grads);
    }
    (value, sum.grads())
}

fn save<M: Module + Clone>(
    files: &CheckpointFiles,
    model: &M,
    ema: &M,
    optim: &burn::optim::ModuleOptimizer,
    state: &RunState,
) -> Result<(), Error> {
    let err = |p: &Path| file_err("cannot write", p);
    // Each file goes to a temporary name first and is renamed into place, so a kill mid-save
    // keeps every file whole; the run state (the step counter) is replaced last.
    let tmp = |p: &Path| crate::atomic::temp_path(p);
    model
        .clone()
        .save_file(tmp(&files.model))
        .map_err(err(&files.model))?;
    ema.clone()
        .save_file(tmp(&files.ema))
        .map_err(err(&files.ema))?;
    optim.save(tmp(&files.optim)).map_err(err(&files.optim))?;
    for p in [&files.model, &files.ema, &files.optim] {
        std::fs::rename(tmp(p), p).map_err(Error::io(format!("replacing {}", p.display())))?;
    }
    let json = serde_json::to_string_pretty(state).expect("run state serializes");
    crate::atomic::write(&files.state, json.as_bytes())?;
    Ok(())
}

fn file_err<E: std::fmt::Display>(what: &str, path: &Path) -> impl FnOnce(E) -> Error {
    let what = format!("{what} {}", path.display());
    move |e| Error::Data(format!("{what}: {e}"))
}

fn open_log(path: &Path, fresh: bool) -> Result<std::fs::File, Error> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(path)
        .map_err(Error::io(format!("opening {}", path.display())))?;
    if fresh {
        writeln!(f, "step,loss,lr,samples_seen,wall_secs")
            .map_err(Error::io("writing the training log"))?;
    }
    Ok(f)
}

fn progress_bar(
    opts: &TrainOptions,
    state: &RunState,
    name: &str,
) -> Option<indicatif::ProgressBar> {
    if opts.quiet {
        return None;
    }
    let bar = indicatif::ProgressBar::new(opts.steps as u64).with_position(state.step as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{name} {{bar:30}} {{pos}}/{{len}} {{msg}} {{per_sec}} ETA {{eta}}"
        ))
        .expect("valid template"),
    );
    bar.reset_eta();
    Some(bar)
}
