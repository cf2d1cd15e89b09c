//! Reading a whole file with a size limit checked before anything is allocated.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Reads the file at `path` into memory if it has at most `max_bytes`
/// bytes. The size is checked before reading, and the read stops one byte
/// past the limit, so a file that grows meanwhile cannot make it allocate more.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::TooLarge`]
/// if it has more than `max_bytes` bytes. Both name the file.
pub fn read_bounded(path: impl AsRef<Path>, max_bytes: u64) -> Result<Vec<u8>> {
    read(path.as_ref(), max_bytes)
}

pub(crate) fn read(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |size| Error::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: max_bytes,
    };
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}
