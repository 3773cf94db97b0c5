//! `guided-ddpm bench`: the native half of docs/BENCHMARKS.md, on flex (CPU). The browser half
//! comes from `tests/page/bench.mjs`, which also writes the combined report.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{matmul, steps, BenchSettings, MatmulReport, StepReport};
use crate::nn::{Classifier, UNet, UNetConfig};
use crate::sampler::Sampler;
use crate::settings::{Method, SampleSettings, DEFAULT_METHOD, DEFAULT_STEPS};
use crate::train::{train_unet, TrainOptions};
use crate::{data, weights, Error};

#[derive(clap::Args)]
pub struct BenchOptions {
    /// Folder with the int8 weights.
    #[arg(long, default_value = "weights")]
    pub weights: PathBuf,
    /// Where the digits are (for the training-throughput run).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The JSON report, read by tests/page/bench.mjs.
    #[arg(long, default_value = "target/bench/native.json")]
    pub out: PathBuf,
    /// Batch sizes to time.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub batches: Vec<usize>,
    /// Steps timed phase by phase (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    pub phase_steps: usize,
    /// Steps of the whole unfenced run.
    #[arg(long, default_value_t = 100)]
    pub run_steps: usize,
    /// Side of the square matrices of the reference product.
    #[arg(long, default_value_t = 1024)]
    pub matmul: usize,
    /// U-Net training steps timed, after two untimed ones.
    #[arg(long, default_value_t = 6)]
    pub train_steps: usize,
    /// Batch sizes of the timed training steps, each timed in turn in this one process.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub train_batches: Vec<usize>,
    /// Parts each training batch is split into (`train --shards`), each timed in turn at every
    /// batch size with malloc tuned as the trainer tunes it and its own convolution weight gradient,
    /// after one run in one part with glibc's malloc and burn's convolution backward and one in
    /// the default parts with malloc tuned and burn's backward; 0 stands for one per CPU
    /// thread, the trainer's default.
    #[arg(long, value_delimiter = ',', default_value = "1,0")]
    pub train_shards: Vec<usize>,
}

/// Everything the native run measured.
#[derive(Serialize, Deserialize)]
pub struct NativeReport {
    pub device: String,
    pub threads: usize,
    pub steps: Vec<StepReport>,
    pub matmul: MatmulReport,
    /// U-Net training throughput: one part with malloc untuned and burn's convolution backward
    /// at each of `--train-batches`, then at each batch size with malloc tuned: one part per
    /// thread with burn's convolution backward, and each of `--train-shards` with the
    /// trainer's own weight gradient, in that order.
    pub train: Vec<TrainReport>,
    /// Time to the first finished image at the default guidance, batch 1: the demo's default
    /// sampler and steps, and DDPM at 100 steps (the default before DPM-Solver++), each cold
    /// and warm. Empty in reports from before it was measured.
    #[serde(default)]
    pub time_to_image: Vec<ImageTime>,
    /// Peak resident memory of the process (VmHWM), bytes; 0 where it cannot be read.
    pub peak_rss_bytes: u64,
}

/// Seconds from asking to a finished image, as the CLI draws one.
#[derive(Serialize, Deserialize)]
pub struct ImageTime {
    pub method: Method,
    pub steps: usize,
    /// Reading the weights from disk and the whole run, in a process that has run nothing of
    /// this sampler before.
    pub cold_s: f64,
    /// The same run again (another seed), weights loaded and the process warm.
    pub warm_s: f64,
}

/// Times [`ImageTime`] for `method` at `steps` with the default guidance, batch 1 (class 7).
fn time_to_image(weights_dir: &Path, method: Method, steps: usize) -> Result<ImageTime, Error> {
    let device = Device::flex();
    let run = |unet: UNet, classifier: Classifier, seed: u64| -> Result<(), Error> {
        let settings = SampleSettings::new(
            vec![7],
            crate::guidance::DEFAULT,
            steps,
            method,
            seed,
            crate::schedule::TRAINED,
        );
        let x = Sampler::new(unet, classifier, settings, &device)?
            .run(|_| std::ops::ControlFlow::Continue(()))
            .expect("never cancelled");
        // The image on the host, as the CLI writes it.
        x.try_into_vec_as::<f32>()
            .map(drop)
            .map_err(|e| Error::Setting(format!("reading the image back: {e:?}")))
    };
    let started = Instant::now();
    let (_, unet, classifier) = weights::load_dir(weights_dir, &device)?;
    let classifier = classifier.to_device(&device.clone().autodiff()).freeze();
    run(unet.clone(), classifier.clone(), 1)?;
    let cold_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    run(unet, classifier, 2)?;
    Ok(ImageTime {
        method,
        steps,
        cold_s,
        warm_s: started.elapsed().as_secs_f64(),
    })
}

impl NativeReport {
    /// The report as `guided-ddpm bench` prints it: a row per batch of the step's phases, a line
    /// per time to an image, then the matrix product, training throughput and peak memory, each
    /// line ending in a newline.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}\n",
            "batch", "unet ms", "clf ms", "update", "readback", "run ms/st", "steps/s", "GFLOP/s"
        );
        for s in &self.steps {
            let p = &s.phases;
            out += &format!(
                "{:<8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>8.2} {:>8.2}\n",
                s.settings.batch,
                p.unet,
                p.classifier,
                p.update,
                p.readback,
                s.run_ms_per_step,
                s.steps_per_s,
                s.gflops
            );
        }
        let train: Vec<String> = self
            .train
            .iter()
            .map(|t| {
                format!(
                    "{:.1} samples/s at batch {} in {} part(s){}{}",
                    t.samples_per_s,
                    t.batch,
                    t.shards,
                    if t.tuned_allocator {
                        ", tuned malloc"
                    } else {
                        ""
                    },
                    if t.own_weight_grad {
                        ""
                    } else {
                        ", burn's conv backward"
                    }
                )
            })
            .collect();
        for t in &self.time_to_image {
            out += &format!(
                "time to one default image, {} {} steps: {:.2} s cold, {:.2} s warm\n",
                t.method.name(),
                t.steps,
                t.cold_s,
                t.warm_s
            );
        }
        out += &format!(
            "matmul {n}x{n}: {:.1} GFLOP/s; U-Net training: {}; peak RSS {:.0} MB; ",
            self.matmul.gflops,
            train.join(", "),
            self.peak_rss_bytes as f64 / 1e6,
            n = self.matmul.n
        );
        out
    }
}

/// U-Net training steps on flex at one batch size, split into `shards` parts.
#[derive(Serialize, Deserialize)]
pub struct TrainReport {
    pub batch: usize,
    pub shards: usize,
    /// Whether malloc was tuned as the trainer tunes it (`train::tune_allocator`).
    pub tuned_allocator: bool,
    /// Whether the convolutions' weight gradient was the trainer's own (`nn::flex_conv`) or
    /// burn's.
    pub own_weight_grad: bool,
    pub samples_per_s: f64,
}

/// Runs a future to completion on this thread. flex answers readbacks at once, so this never
/// waits long; it parks until woken otherwise.
pub fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples per second of U-Net training steps on flex (forward, backward, AdamW, EMA), in a
/// scratch folder: `train_steps` timed after two untimed steps.
fn train_throughput(
    digits_dir: &Path,
    batch: usize,
    shards: usize,
    train_steps: usize,
) -> Result<f64, Error> {
    let (train_set, _) = data::load(digits_dir)?.split();
    let dir = std::env::temp_dir().join(format!("guided-ddpm-bench-{}", std::process::id()));
    let mut opts = TrainOptions {
        steps: 2,
        batch,
        shards,
        lr: 4e-4,
        warmup: 200,
        ema_decay: 0.999,
        p_uncond: crate::train::P_UNCOND,
        checkpoint_every: Duration::from_secs(3600),
        seed: 0,
        dir: dir.clone(),
        resume: false,
        quiet: true,
        max_shift: crate::train::DEFAULT_MAX_SHIFT,
    };
    let device = Device::flex().autodiff();
    let result = (|| {
        let (_, warm) = train_unet(&UNetConfig::new(), &train_set, &opts, &device)?;
        opts.steps = 2 + train_steps.max(1);
        opts.resume = true;
        let (_, done) = train_unet(&UNetConfig::new(), &train_set, &opts, &device)?;
        Ok((done.samples_seen - warm.samples_seen) as f64 / (done.wall_secs - warm.wall_secs))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

impl BenchOptions {
    /// Rejects counts the benchmark cannot use, with a sentence naming the flag.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Setting(what));
        if self.batches.is_empty() {
            return bad("--batches needs at least one batch size".into());
        }
        for &b in &self.batches {
            crate::settings::check_batch(b)?;
        }
        if self.phase_steps == 0 || self.run_steps == 0 || self.run_steps > crate::schedule::T {
            return bad(format!(
                "--phase-steps must be at least 1 and --run-steps from 1 to {}, got {} and {}",
                crate::schedule::T,
                self.phase_steps,
                self.run_steps
            ));
        }
        if !(1..=8192).contains(&self.matmul) {
            return bad(format!(
                "--matmul must be from 1 to 8192, got {}",
                self.matmul
            ));
        }
        if self.train_steps == 0 {
            return bad("--train-steps must be at least 1, got 0".into());
        }
        if self.train_batches.is_empty()
            || self.train_batches.iter().any(|b| !(1..=1024).contains(b))
        {
            return bad(format!(
                "--train-batches must list sizes from 1 to 1024, got {:?}",
                self.train_batches
            ));
        }
        Ok(())
    }
}

pub fn run(opts: &BenchOptions) -> Result<NativeReport, Error> {
    opts.validate()?;
    let device = Device::flex();
    let (_, unet, classifier) = weights::load_dir(&opts.weights, &device)?;
    let classifier = classifier.to_device(&device.clone().autodiff()).freeze();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Time to an image first, before anything else has run in this process: the new default's
    // cold figure is the one a user of the CLI sees.
    let mut time_to = Vec::new();
    for (method, steps) in [(DEFAULT_METHOD, DEFAULT_STEPS), (Method::Ddpm, 100)] {
        if time_to
            .iter()
            .any(|t: &ImageTime| (t.method, t.steps) == (method, steps))
        {
            continue;
        }
        let t = time_to_image(&opts.weights, method, steps)?;
        eprintln!(
            "flex, time to one default image with {} at {steps} steps: {:.2} s cold, {:.2} s warm",
            method.name(),
            t.cold_s,
            t.warm_s
        );
        time_to.push(t);
    }
    let mut reports = Vec::new();
    for &batch in &opts.batches {
        let settings = BenchSettings {
            batch,
            guidance: crate::guidance::DEFAULT,
            phase_steps: opts.phase_steps,
            run_steps: opts.run_steps,
        };
        let started = Instant::now();
        let r = block_on(steps(&unet, &classifier, &settings, &device))?;
        eprintln!(
            "flex, batch {batch}: {:.1} ms/step, {:.2} steps/s ({:.0} s)",
            r.run_ms_per_step,
            r.steps_per_s,
            started.elapsed().as_secs_f64()
        );
        reports.push(r);
    }
    let matmul = block_on(matmul(opts.matmul, 3, &device))?;
    eprintln!(
        "flex, {n}x{n} matmul: {:.1} GFLOP/s",
        matmul.gflops,
        n = matmul.n
    );
    // First each batch as the trainer ran before `1ed1d60` (one part, glibc's defaults, burn's
    // convolution backward); then, with the allocator tuned for the rest of this process, as it
    // ran from `1ed1d60` (one part per thread, burn's convolution backward), and each
    // `--train-shards` setting with the trainer's own convolution weight gradient.
    let mut train = Vec::new();
    let mut time = |batch: usize, shards: usize, tuned_allocator: bool, own_weight_grad: bool| {
        crate::nn::flex_conv::use_own_weight_grad(own_weight_grad);
        let timed = train_throughput(&opts.data, batch, shards, opts.train_steps);
        crate::nn::flex_conv::use_own_weight_grad(true);
        let samples_per_s = timed?;
        let malloc = if tuned_allocator { "tuned" } else { "default" };
        let grad = if own_weight_grad { "own" } else { "burn's" };
        eprintln!(
            "flex, U-Net training at batch {batch} in {shards} part(s), {malloc} malloc, \
             {grad} conv weight gradient: {samples_per_s:.1} samples/s"
        );
        train.push(TrainReport {
            batch,
            shards,
            tuned_allocator,
            own_weight_grad,
            samples_per_s,
        });
        Ok::<(), Error>(())
    };
    for &batch in &opts.train_batches {
        time(batch, 1, false, false)?;
    }
    let tuned = crate::train::tune_allocator();
    for &batch in &opts.train_batches {
        time(batch, crate::train::default_shards(batch), tuned, false)?;
        for &asked in &opts.train_shards {
            let shards = match asked {
                0 => crate::train::default_shards(batch),
                n => n.min(batch),
            };
            time(batch, shards, tuned, true)?;
        }
    }
    let report = NativeReport {
        device: "flex (CPU, native)".into(),
        threads,
        steps: reports,
        matmul,
        train,
        time_to_image: time_to,
        peak_rss_bytes: peak_rss_bytes(),
    };
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    }
    crate::atomic::write(
        &opts.out,
        serde_json::to_string_pretty(&report)
            .expect("the report serializes")
            .as_bytes(),
    )?;
    Ok(report)
}
