//! Atomic file replacement: write a temporary file in the target's directory,
//! flush and `sync_all` it, then rename it over the target. A failure (or a
//! crash) before the rename leaves the old file as it was and removes the
//! temporary file (a crash may leave a `.NAME.*.tmp` file behind, never a
//! half-written target).

use std::fs::File;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: `write(file, bytes)` writes them to
/// the temporary file (through the file itself in production; tests inject
/// writers that fail halfway).
///
/// # Errors
/// [`Error::AlreadyExists`] if `overwrite` is false and `path` exists (checked
/// first, and again by the final no-clobber rename); [`Error::Io`] naming
/// `path` if creating, writing, syncing or renaming fails.
pub(crate) fn write_with(
    path: &Path,
    overwrite: bool,
    bytes: &[u8],
    write: impl FnOnce(&File, &[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let exists = || Error::AlreadyExists {
        path: path.to_path_buf(),
    };
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map_or_else(|| "hebb".into(), |n| n.to_string_lossy())
    );
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    write(tmp.as_file(), bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    // On failure `persist` hands the temporary file back inside the error;
    // dropping it removes it.
    if overwrite {
        tmp.persist(path).map_err(|e| io(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                io(e.error)
            }
        })?;
    }
    // Make the rename itself durable where directories can be synced (Unix);
    // best effort, the data is already on disk.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
