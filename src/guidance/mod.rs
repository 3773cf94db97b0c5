//! Guidance: how the class steers the reverse process, one concept a file.
//!
//! - [`request`]: what a run asks for (the modes, the strengths, the guidance interval, the form
//!   of the classifier's gradient), its labels and its checks.
//! - [`gradient`]: the classifier's log p_phi(y | x_t, t) and its gradient by autodiff
//!   (guided-diffusion's `cond_fn`), the only file that runs the classifier.
//! - [`formulas`]: the papers' equations. Classifier guidance (Dhariwal & Nichol 2021,
//!   Algorithm 1 and 2): the gradient shifts the DDPM mean ([`condition_mean`]) or the DDIM eps
//!   ([`condition_score`]), as guided-diffusion's `condition_mean` / `condition_score` do.
//!   Classifier-free guidance (Ho & Salimans 2022, Eq. 6): [`cfg_mix`].
//! - `batch`: a run's guidance as its batched steps apply it, one setting or one per sample.

mod batch;
pub mod formulas;
pub mod gradient;
pub mod request;

pub(crate) use batch::BatchGuidance;
pub use formulas::*;
pub use gradient::*;
pub use request::*;
