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
                &self.sha256[..self.sha256.len().min(12)]
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
        serde_json::from_str(text)
            .map_err(|e| Error::Weights(format!("{MANIFEST} is not valid: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes")
    }
}
