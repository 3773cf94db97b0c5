//! Files the project writes appear whole or not at all: each is written to a temporary file in the
//! same folder, flushed to disk, then renamed over its target (a rename within one file system
//! replaces the target in one step), and the folder is flushed so the rename itself is on disk:
//! a kill mid-write leaves the previous file intact.

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

/// Test hook: with `GUIDED_DDPM_ABORT_AT=N` in the environment, the process aborts (as a kill
/// would stop it) at the N-th of the moments a write can be cut short, counted from 1 across the
/// process: half-way through writing a temporary file, once it is written, and once it has
/// replaced its target, in each [`write`], and before each removal that [`removing`] announces.
/// A test steps N through every moment of a command (`tests/export.rs`). Unset, it does nothing.
pub fn may_abort() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    static AT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("GUIDED_DDPM_ABORT_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = *at {
        if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == at {
            std::process::abort();
        }
    }
}

/// Announces that a file is about to be removed: one of the moments [`may_abort`] counts.
pub fn removing() {
    may_abort();
}

/// Replaces `path` with `bytes` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half])?;
        may_abort();
        f.write_all(&bytes[half..])?;
        f.sync_all()?;
        may_abort();
        std::fs::rename(&tmp, path)?;
        sync_folder(path)?;
        may_abort();
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::io(format!("writing {}", path.display())))
}

/// Flushes the folder that holds `path`, so the rename that put `path` in place survives a
/// power cut as well as a kill (a rename is an entry of the folder, which `sync_all` on the file
/// does not write). Where a folder cannot be opened as a file (not on Unix), nothing is done.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(folder)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
