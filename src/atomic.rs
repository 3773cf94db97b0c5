//! Files the project writes appear whole or not at all: each is written to a temporary file in the
//! same folder, flushed to disk, then renamed over its target (a rename within one file system
//! replaces the target in one step), so a kill mid-write leaves the previous file intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Error;

/// The temporary name beside `path` that [`write`] uses (one per process, so two writers never
/// share it).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::io(format!("writing {}", path.display())))
}
