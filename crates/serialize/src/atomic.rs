//! Atomic file replacement: write a temporary file in the target's directory,
//! flush and `sync_all` it, then rename it over the target. A failure (or a
//! crash) before the rename leaves the old file as it was and removes the
//! temporary file (a crash may leave a `.NAME.*.tmp` file behind, never a
//! half-written target).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: `write(file, bytes)` writes them to
/// the temporary file (through the file itself in production; tests inject
/// writers that fail halfway).
///
/// # Errors
/// [`Error::AlreadyExists`] if `overwrite` is false and `path` exists (checked
/// first, and again by the final no-clobber rename); [`Error::Io`] naming
/// `path` if creating, writing, syncing or renaming fails (a missing
/// directory is named as such, never the temporary file).
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
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // The mode a plain `File::create` gives (0o666 less the umask), not
        // tempfile's private 0o600: a saved model is an ordinary file.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        detail: create_failure(dir, &e),
    })?;
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

/// Why the temporary file could not be created in `dir`, in terms of the
/// target: its directory is missing, or is not a directory, or the system's
/// reason (without the temporary file's random name, which `tempfile` puts
/// in its message and which the user never asked for).
fn create_failure(dir: &Path, e: &std::io::Error) -> String {
    match std::fs::metadata(dir) {
        Err(m) if m.kind() == std::io::ErrorKind::NotFound => format!(
            "cannot write the file: the directory {} does not exist",
            dir.display()
        ),
        Err(m) => format!("cannot write the file: {}: {m}", dir.display()),
        Ok(m) if !m.is_dir() => format!(
            "cannot write the file: {} is not a directory",
            dir.display()
        ),
        Ok(_) => {
            // tempfile wraps the system's error with the temporary path.
            let reason = e
                .get_ref()
                .and_then(|inner| inner.source())
                .map_or_else(|| e.to_string(), ToString::to_string);
            format!(
                "cannot create a file in {} to write it: {reason}",
                dir.display()
            )
        }
    }
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same
/// directory, flushed and synced to disk, then renamed over `path` (the
/// directory is synced too, where the system allows). An error or a crash
/// mid-write leaves any old file intact and removes the temporary file
/// (a crash may leave a hidden `.NAME.*.tmp` behind, never a half-written
/// `path`). hebb writes every model file this way.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("model.keras");
/// hebb_serialize::write_atomic(&path, b"first", false)?;
/// assert!(hebb_serialize::write_atomic(&path, b"second", false).is_err());
/// hebb_serialize::write_atomic(&path, b"second", true)?;
/// assert_eq!(std::fs::read(&path)?, b"second");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::AlreadyExists`] if `overwrite` is false and `path` exists;
/// [`Error::Io`] naming `path` if creating, writing, syncing or renaming
/// fails, e.g. `out/m.keras: cannot write the file: the directory out does
/// not exist` (the directory is not created, as in Keras).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8], overwrite: bool) -> Result<()> {
    write_with(path.as_ref(), overwrite, bytes, |mut file, bytes| {
        file.write_all(bytes)?;
        file.flush()
    })
}
