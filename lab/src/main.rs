//! `guided-ddpm-lab`: the project's own evaluation and reports of the shipped weights (eval,
//! knowable, crosscheck, curve). Apart from `guided-ddpm` (sample, train, export, bench) and from
//! the library the site compiles: it writes docs/EVAL.md, docs/eval.json and their figures, never
//! the weights or their manifest.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use guided_ddpm::Error;
use guided_ddpm_lab as lab;

#[derive(Parser)]
#[command(version, about = "guided-ddpm's evaluation and reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge the shipped weights per guidance setting; writes docs/EVAL.md (resumable).
    Eval(lab::EvalOptions),
    /// How well the guidance classifier reads noisy held-out digits per t, beside what the noise
    /// leaves knowable (a kernel Bayes classifier, the U-Net as a classifier); writes
    /// docs/knowable.json and its section of docs/EVAL.md (resumable).
    Knowable(lab::knowable::KnowableOptions),
    /// A second judge, independent of eval's: each run's samples (eval's seeds) labelled by their
    /// nearest train digit in pixels, and their FD in 7 x 7 block-averaged pixels; prints a
    /// Markdown table.
    Crosscheck(lab::crosscheck::CrosscheckOptions),
    /// Judge a training run's latest checkpoint (default guidance and unguided) and add it to
    /// the run's FD-against-steps curve: docs/training-eval.csv, docs/training-curve.svg and the
    /// "Training progress" section of docs/EVAL.md.
    Curve(lab::curve::CurveOptions),
    /// Train the autoencoder whose code is eval's second feature space (a network trained to
    /// redraw the train digits, never told their class); checkpoints/autoencoder*.
    Autoencoder(lab::realism::AutoencoderOptions),
    /// What tells one setting's digits from real ones: the two-sample test with the background
    /// haze zeroed, with the output clipped to black, per class, and the test's extremes drawn;
    /// writes probe.md and probe-extremes.png.
    Probe(lab::probe::ProbeOptions),
}

fn main() -> ExitCode {
    guided_ddpm::exit(run(Cli::parse().command))
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Eval(opts) => {
            let report = lab::run(&opts)?;
            for r in &report.settings {
                println!(
                    "{:<32} judged accuracy {:5.1}%  FD {:.3}",
                    r.name(),
                    100.0 * r.accuracy,
                    r.frechet
                );
            }
            Ok(())
        }
        Command::Crosscheck(opts) => {
            let rows = lab::crosscheck::run(&opts)?;
            println!("| samples | nearest train digit of the asked class | FD, 7 x 7 pixels |");
            println!("|---|---:|---:|");
            for r in rows {
                println!(
                    "| {} | {:.1}% | {:.4} |",
                    r.what,
                    100.0 * r.nearest_accuracy,
                    r.pixel_frechet
                );
            }
            Ok(())
        }
        Command::Knowable(opts) => {
            lab::knowable::run(&opts)?;
            // EVAL.md takes the section where the folder holds an evaluation to put it in.
            if opts.out.join("eval.json").exists() {
                lab::run(&lab::EvalOptions::report_only(&opts.out))?;
            }
            Ok(())
        }
        Command::Probe(opts) => {
            print!("{}", lab::probe::run(&opts)?);
            Ok(())
        }
        Command::Autoencoder(opts) => {
            let loss = lab::realism::train_autoencoder(&opts)?;
            println!("autoencoder: last loss {loss:.5}");
            Ok(())
        }
        Command::Curve(opts) => {
            for r in lab::curve::run(&opts)? {
                println!(
                    "{} step {:>6} {:<8} N {:>3}/class  judged accuracy {:5.1}%  FD {:.3} ({:.2}x the floor at that N)",
                    r.run,
                    r.step,
                    r.setting,
                    r.n_per_class,
                    100.0 * r.accuracy,
                    r.frechet,
                    r.frechet / r.floor
                );
            }
            Ok(())
        }
    }
}
