//! `weights/manifest.json`: what the browser and the CLI read first. It names the format
//! version, both network configs, the schedule, each file's size and sha256, and where the
//! weights came from. Writer and reader share this one type (STYLE 9).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::nn::{ClassifierConfig, UNetConfig};
use crate::schedule::BetaSchedule;
use crate::Error;

/// The manifest layout this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub schedule: ScheduleInfo,
    pub unet: NetFile<UNetConfig>,
    pub classifier: NetFile<ClassifierConfig>,
    /// Free-form record of the data, the training runs and the evaluation.
    pub provenance: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub kind: BetaSchedule,
    /// Training timesteps T.
    pub steps: usize,
}

/// One weight file as the manifest describes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetFile<C> {
    pub file: String,
    pub bytes: usize,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    pub config: C,
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A weight file's name (a plain file name beside the manifest, never a path) and its sha256 (64
/// lower-case hex digits).
fn check_entry(file: &str, sha256: &str) -> Result<(), Error> {
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain {
        return Err(Error::Weights(format!(
            "{MANIFEST} names the weight file {file:?}; it must be a plain file name beside the manifest"
        )));
    }
    if sha256.len() != 64 || !sha256.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(Error::Weights(format!(
            "{MANIFEST} gives {file} the sha256 {sha256:?}; it must be 64 lower-case hex digits"
        )));
    }
    Ok(())
}

impl<C> NetFile<C> {
    /// Checks that `bytes` are this file: its size first (a truncated download), then its hash.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() != self.bytes {
            return Err(Error::Weights(format!(
                "{} has {} bytes, the manifest says {}: the download was cut short or the file is stale; fetch it again",
                self.file,
                bytes.len(),
                self.bytes
            )));
        }
        let got = sha256_hex(bytes);
        if got != self.sha256 {
            return Err(Error::Weights(format!(
                "{} has sha256 {}, the manifest says {}: the file is corrupt or from another export; fetch it again",
                self.file,
                &got[..12],
                self.sha256.chars().take(12).collect::<String>()
            )));
        }
        Ok(())
    }
}

impl Manifest {
    /// Parses and checks the manifest's version.
    pub fn parse(text: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let v: Version = serde_json::from_str(text)
            .map_err(|e| Error::Weights(format!("{MANIFEST} is not valid: {e}")))?;
        if v.format_version != FORMAT_VERSION {
            return Err(Error::Weights(format!(
                "{MANIFEST} has format version {}, this build reads version {FORMAT_VERSION}: use the weights that came with this version, or re-export them",
                v.format_version
            )));
        }
        let m: Self = serde_json::from_str(text)
            .map_err(|e| Error::Weights(format!("{MANIFEST} is not valid: {e}")))?;
        m.check()?;
        Ok(m)
    }

    /// Checks what the types cannot: the schedule length, each file's name and hash format, and
    /// both network shapes. A manifest is input (downloaded, or edited by hand), so each problem
    /// is a sentence, never an assert further down.
    fn check(&self) -> Result<(), Error> {
        if self.schedule.steps != crate::schedule::T {
            return Err(Error::Weights(format!(
                "{MANIFEST} says the networks were trained with {} timesteps; this build samples with {}",
                self.schedule.steps,
                crate::schedule::T
            )));
        }
        check_entry(&self.unet.file, &self.unet.sha256)?;
        check_entry(&self.classifier.file, &self.classifier.sha256)?;
        self.unet.config.validate()?;
        self.classifier.config.validate()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes")
    }
}
