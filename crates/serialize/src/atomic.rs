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
/// [`Error::NoFileName`] if `path` is empty, ends with a directory separator
/// or is a directory (checked first); [`Error::AlreadyExists`] if
/// `overwrite` is false and `path` exists (checked next, and again by the
/// final no-clobber rename); [`Error::Io`] naming `path` and its directory
/// if creating, writing, syncing or renaming fails (never the temporary
/// file).
pub(crate) fn write_with(
    path: &Path,
    overwrite: bool,
    bytes: &[u8],
    write: impl FnOnce(&File, &[u8]) -> std::io::Result<()>,
) -> Result<()> {
    check_names_a_file(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let prefix = format!(
        ".{}.",
        path.file_name()
            .map_or_else(|| "hebb".into(), |n| n.to_string_lossy())
    );
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        detail: format!(
            "cannot write the file in {}: {}",
            dir.display(),
            without_temporary_name(&e, &prefix)
        ),
    };
    let exists = || Error::AlreadyExists {
        path: path.to_path_buf(),
    };
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
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
        detail: create_failure(dir, &e, &prefix),
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

/// [`Error::NoFileName`] if `path` is empty, ends with a directory
/// separator (`/tmp/`, `m/`: `Path` would drop the separator and write
/// `/tmp`, or fail with "Not a directory") or is a directory.
fn check_names_a_file(path: &Path) -> Result<()> {
    let text = path.as_os_str().to_string_lossy();
    let reason = if text.is_empty() {
        "the path is empty"
    } else if text.chars().last().is_some_and(std::path::is_separator) {
        "it ends with a directory separator"
    } else if path.file_name().is_none() || path.is_dir() {
        "it is a directory"
    } else {
        return Ok(());
    };
    Err(Error::NoFileName {
        path: path.to_path_buf(),
        reason: reason.into(),
    })
}

/// The system's message of `e` without the temporary file's path, which
/// `tempfile` appends (`... at path "/d/.m.keras.aDfSCx.tmp"`) and the user
/// never asked for; `prefix` is the start of the temporary file's name.
fn without_temporary_name(e: &std::io::Error, prefix: &str) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at path ") {
        Some((reason, tmp)) if tmp.contains(prefix) => reason.to_string(),
        // A message that names the temporary file some other way: the
        // kind of error alone.
        _ if text.contains(prefix) => std::io::Error::from(e.kind()).to_string(),
        _ => text,
    }
}

/// Why the temporary file could not be created in `dir`, in terms of the
/// target: its directory is missing, or is not a directory, or does not
/// take a new file, with the system's reason (without the temporary file's
/// random name; `prefix` is its start).
fn create_failure(dir: &Path, e: &std::io::Error, prefix: &str) -> String {
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
        // E.g. a read-only directory, or /proc (which answers "No such
        // file or directory").
        Ok(_) => format!(
            "cannot write the file: the directory {} does not take a new file ({})",
            dir.display(),
            without_temporary_name(e, prefix)
        ),
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
/// [`Error::NoFileName`] if `path` is empty, ends with a directory
/// separator (`/tmp/`) or is a directory; [`Error::AlreadyExists`] if
/// `overwrite` is false and `path` exists; [`Error::Io`] naming `path` and
/// its directory, never the temporary file, if creating, writing, syncing
/// or renaming fails, e.g. `out/m.keras: cannot write the file: the
/// directory out does not exist` (the directory is not created, as in
/// Keras) or `/proc/m.keras: cannot write the file: the directory /proc
/// does not take a new file (No such file or directory (os error 2))`.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8], overwrite: bool) -> Result<()> {
    write_with(path.as_ref(), overwrite, bytes, |mut file, bytes| {
        file.write_all(bytes)?;
        file.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11 follow-up: a write that fails, or a directory that takes no
    /// file, names the target and its directory, never the temporary file.
    #[test]
    fn failures_name_the_target_and_its_directory_never_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.keras");
        let err = write_with(&path, false, b"x", |_, _| {
            Err(std::io::Error::other("injected: no space left on device"))
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot write the file in {}: injected: no space left on device",
                path.display(),
                dir.path().display()
            )
        );
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        // tempfile's wrapping of a system error is taken off.
        let wrapped = std::io::Error::other(format!(
            "No such file or directory (os error 2) at path \"{}/.m.keras.aDfSCx.tmp\"",
            dir.path().display()
        ));
        assert_eq!(
            without_temporary_name(&wrapped, ".m.keras."),
            "No such file or directory (os error 2)"
        );

        #[cfg(target_os = "linux")]
        {
            // /proc takes no new file (ENOENT, even for root).
            let err = write_atomic("/proc/m.keras", b"x", false).unwrap_err();
            let text = err.to_string();
            assert_eq!(
                text,
                "/proc/m.keras: cannot write the file: the directory /proc does not take a new \
                 file (No such file or directory (os error 2))"
            );
            assert!(!text.contains(".tmp"), "{text}");
        }
    }

    /// `/tmp/`, `m/` and `` name no file: said so, before anything is
    /// tried (they said "Not a directory (os error 20)" and ": No such file
    /// or directory").
    #[test]
    fn a_path_that_names_no_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let slash = format!("{}/", dir.path().display());
        let missing = format!("{}/m/", dir.path().display());
        let cases = [
            (slash.as_str(), "it ends with a directory separator"),
            (missing.as_str(), "it ends with a directory separator"),
            ("", "the path is empty"),
            ("..", "it is a directory"),
        ];
        for (path, reason) in cases {
            for overwrite in [false, true] {
                let err = write_atomic(path, b"x", overwrite).unwrap_err();
                assert_eq!(
                    err,
                    Error::NoFileName {
                        path: path.into(),
                        reason: reason.into()
                    }
                );
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{path:?} names no file ({reason}); give the file's name, e.g. \
                         models/model.keras"
                    )
                );
            }
        }
        let err = write_atomic(dir.path(), b"x", true).unwrap_err();
        assert!(
            matches!(&err, Error::NoFileName { reason, .. } if reason == "it is a directory"),
            "{err:?}"
        );
        assert!(dir.path().is_dir());
        assert!(!dir.path().join("m").exists());
    }
}
