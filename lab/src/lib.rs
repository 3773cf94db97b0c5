//! `guided-ddpm-lab eval`: how well the shipped weights draw the asked digit.
//!
//! A judge (a classifier trained on clean digits only, never the guidance classifier, which would
//! be circular) labels generated samples; the judged accuracy per class, and the Frechet distance
//! of judge features to the held-out digits, are reported per guidance setting next to the
//! real-vs-real floor. Results go to `docs/eval.json` (one entry per setting, so an interrupted
//! run continues where it stopped) and `docs/EVAL.md` with a sample grid per setting.
//!
//! [`kept`] holds what `eval` keeps (the report's types, the settings it compares), [`eval`] the
//! run that fills it; [`judge`] judges digits and [`report`] writes the report from what was kept.

pub mod crosscheck;
pub mod curve;
pub mod eval;
pub mod fidelity;
pub mod frechet;
pub mod judge;
pub mod kept;
pub mod knowable;
pub mod plot;
pub mod probe;
pub mod realism;
pub mod report;
pub mod steps;
pub mod targets;

pub use eval::run;
pub use kept::{run_name, settings, EvalOptions, Report, SettingResult, RANDOM_DRAWS};
