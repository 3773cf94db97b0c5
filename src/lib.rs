//! Classifier-guided DDPM sampling of MNIST digits (Ho et al. 2020; Dhariwal & Nichol 2021).
//!
//! The data flow, from a weight file to an image:
//!
//! ```text
//! weights/*.safetensors (int8 + f32 scales) --weights--> UNet + Classifier (nn)
//! schedule (f64 betas, abar, posterior)     --diffusion--> one reverse step from eps
//! settings (the request) + noise (seeded)
//! guidance (classifier gradient, CFG mix)   --sampler--> the loop over t, frames to an observer
//!                                           --replay--> the same step recorded once, replayed
//!                                                       at every t on WebGPU
//! run (one step per call, a token per run, steering) --web--> the page's frames (wasm)
//! ```
//!
//! Natively the crate also trains the networks (`train`, behind the `cli` feature).

#[cfg(not(target_family = "wasm"))]
pub mod atomic;
// The wasm module times steps for `make bench` only with the test hooks.
#[cfg(any(not(target_family = "wasm"), test_hooks))]
pub mod bench;
#[cfg(target_family = "wasm")]
pub mod ctors;
pub mod diffusion;
pub mod digit;
pub mod frame;
pub mod grid;
pub mod guidance;
pub mod nn;
pub mod noise;
pub mod replay;
pub mod run;
pub mod sampler;
pub mod schedule;
pub mod settings;
#[cfg(target_family = "wasm")]
pub mod web;
pub mod weights;

#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod data;
#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod npz;
#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod sample;
#[cfg(all(feature = "cli", not(target_family = "wasm")))]
pub mod train;

/// Everything that can go wrong, each with a message a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An impossible setting (a class outside 0..9, zero steps, a negative scale, ...).
    #[error("{0}")]
    Setting(String),
    /// A missing, corrupt or mismatched weight file.
    #[error("{0}")]
    Weights(String),
    /// The training data is missing or malformed.
    #[error("{0}")]
    Data(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// How the command-line tools (`guided-ddpm`, `guided-ddpm-lab`) end: success, or the error as
/// one `error:` line on standard error and exit code 2.
#[cfg(feature = "cli")]
pub fn exit(result: Result<(), Error>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
