//! Named `f32` tensors in the [safetensors] format.
//!
//! A safetensors file is an 8-byte little-endian header length `n`, `n` bytes
//! of JSON (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//! ..., "__metadata__": {"key": "value"}}`), then the tensors' bytes,
//! little-endian, row-major, back to back. hebb writes and reads `F32` only.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;

use hebb_tensor::Tensor;
use safetensors::{Dtype, SafeTensors, View};

use crate::{Error, Result, atomic, bounded};

/// The largest file [`load`] reads (4 GiB); [`load_with_limit`] takes another.
/// The size is checked before anything is read or allocated.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// The metadata key that safetensors reserves for the string map.
const METADATA_KEY: &str = "__metadata__";

/// What [`load`] returns: the tensors in file order and the string metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Loaded {
    /// `(name, tensor)` in the order of the tensors' bytes in the file.
    /// [`save`] (through the safetensors crate) lays tensors out sorted by
    /// name, so files written by hebb come back sorted by name (byte order:
    /// `dense/bias` before `dense/kernel` before `dense_1/bias`), whatever
    /// order they were saved in.
    pub tensors: Vec<(String, Tensor)>,
    /// The file's `__metadata__` string map (empty if it has none).
    pub metadata: HashMap<String, String>,
}

impl Loaded {
    /// The tensor called `name`, if the file has one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// An `F32` tensor as safetensors' [`View`]: its shape and little-endian bytes.
struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &F32View {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Saves named tensors to `path` in the safetensors format, as `F32`, with
/// an optional string `metadata` map (safetensors' `__metadata__`).
///
/// The file is written atomically: to a temporary file in the same
/// directory, flushed and synced to disk, then renamed over `path`, so a
/// failure or a crash mid-write leaves any old file intact and no
/// half-written `path`. Tensors are laid out sorted by name, whatever their
/// order in `tensors` (see [`Loaded::tensors`]).
///
/// # Errors
/// - [`Error::NoFileName`] if `path` is empty, ends with a directory
///   separator or is a directory;
/// - [`Error::AlreadyExists`] if `overwrite` is false and `path` exists;
/// - [`Error::Name`] if a name appears twice or is `__metadata__`;
/// - [`Error::Io`] naming `path` if the directory cannot be written, the
///   disk is full, or the rename fails;
/// - [`Error::Format`] if the safetensors crate refuses the header (e.g. larger than 100 MB).
pub fn save(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
    overwrite: bool,
) -> Result<()> {
    save_with(
        path.as_ref(),
        tensors,
        metadata,
        overwrite,
        |mut file, bytes| {
            file.write_all(bytes)?;
            file.flush()
        },
    )
}

/// [`save`], with `write(temporary_file, bytes)` doing the writing (tests
/// inject writers that fail halfway).
pub(crate) fn save_with(
    path: &Path,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
    overwrite: bool,
    write: impl FnOnce(&File, &[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let bytes = to_bytes(path, tensors, metadata)?;
    atomic::write_with(path, overwrite, &bytes, write)
}

/// The whole file's bytes.
fn to_bytes(
    path: &Path,
    tensors: &[(&str, &Tensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut views = Vec::with_capacity(tensors.len());
    for &(name, tensor) in tensors {
        let bad = |detail: &str| Error::Name {
            path: path.to_path_buf(),
            name: name.to_string(),
            detail: detail.to_string(),
        };
        if name == METADATA_KEY {
            return Err(bad("the name is reserved for the file's metadata"));
        }
        if !seen.insert(name) {
            return Err(bad("the name appears twice"));
        }
        let bytes = tensor
            .to_vec()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        views.push((
            name,
            F32View {
                shape: tensor.shape().to_vec(),
                bytes,
            },
        ));
    }
    safetensors::serialize(views.iter().map(|(n, v)| (*n, v)), metadata).map_err(|e| {
        Error::Format {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    })
}

/// Loads the `F32` tensors and the metadata of a safetensors file (at most
/// [`MAX_FILE_BYTES`]); tensors come in file order (see [`Loaded::tensors`]).
///
/// Everything is checked before any tensor is allocated: the file size
/// against the limit, the header (length, JSON, offsets within the file,
/// offsets that tile the data exactly, shapes whose byte counts match), and
/// every tensor's dtype. A file of another format, a truncated or corrupted
/// file gives an error, never a panic.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened or read; [`Error::TooLarge`];
/// [`Error::Format`] for anything that is not a well-formed safetensors
/// file; [`Error::Dtype`] naming the first tensor (in file order) that is
/// not `F32`. All name the file.
pub fn load(path: impl AsRef<Path>) -> Result<Loaded> {
    load_with_limit(path, MAX_FILE_BYTES)
}

/// [`load`] with another size limit in bytes.
///
/// # Errors
/// As [`load`].
pub fn load_with_limit(path: impl AsRef<Path>, max_bytes: u64) -> Result<Loaded> {
    let path = path.as_ref();
    let bytes = bounded::read(path, max_bytes)?;
    parse(&bytes, path)
}

/// [`load`] from bytes already in memory: parses a whole safetensors file
/// held in `bytes`, with the same checks; errors name `path` (which is not
/// read).
///
/// # Errors
/// As [`load`], without the I/O and size ones.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Loaded> {
    let format = |detail: String| Error::Format {
        path: path.to_path_buf(),
        detail,
    };
    let header_len = precheck(bytes).map_err(format)?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let data = &bytes[8 + header_len..];
    let names = metadata.offset_keys();
    // Every dtype first, so nothing is allocated for a file we refuse.
    let mut infos = Vec::with_capacity(names.len());
    for name in &names {
        let info = metadata
            .info(name)
            .ok_or_else(|| format(format!("tensor {name} is listed but has no entry")))?;
        if info.dtype != Dtype::F32 {
            return Err(Error::Dtype {
                path: path.to_path_buf(),
                name: name.clone(),
                dtype: info.dtype.to_string(),
            });
        }
        infos.push(info);
    }
    let mut tensors = Vec::with_capacity(names.len());
    for (name, info) in names.into_iter().zip(infos) {
        let (begin, end) = info.data_offsets;
        let raw = data.get(begin..end).ok_or_else(|| {
            format(format!(
                "tensor {name}: data_offsets [{begin}, {end}] lie outside the data"
            ))
        })?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let tensor = Tensor::from_vec(values, &info.shape)
            .map_err(|e| format(format!("tensor {name}: {e}")))?;
        tensors.push((name, tensor));
    }
    Ok(Loaded {
        tensors,
        metadata: metadata.metadata().clone().unwrap_or_default(),
    })
}

/// Checks the header length and that no `data_offsets` points past the end
/// of the data, before the safetensors crate adds up offsets (a crafted file
/// whose offsets sum past `usize::MAX` would otherwise overflow there).
/// Returns the header length. Other header problems are left to the
/// safetensors crate, whose messages are reported as they are.
fn precheck(bytes: &[u8]) -> std::result::Result<usize, String> {
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(format!(
            "{} bytes is too short for the 8-byte header length",
            bytes.len()
        ));
    };
    let n = u64::from_le_bytes(*len_bytes);
    let header_len = usize::try_from(n)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| {
            format!(
                "the header length {n} runs past the end of the file ({} bytes)",
                bytes.len()
            )
        })?;
    let data_len = (rest.len() - header_len) as u64;
    if let Ok(serde_json::Value::Object(map)) =
        serde_json::from_slice::<serde_json::Value>(&rest[..header_len])
    {
        for (name, entry) in &map {
            if name == METADATA_KEY {
                continue;
            }
            let offsets = entry
                .get("data_offsets")
                .and_then(serde_json::Value::as_array);
            for offset in offsets.into_iter().flatten() {
                if let Some(o) = offset.as_u64()
                    && o > data_len
                {
                    return Err(format!(
                        "tensor {name}: data offset {o} lies past the end of the data ({data_len} bytes)"
                    ));
                }
            }
        }
    }
    Ok(header_len)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    /// Writes `left` bytes to the file, then fails (a full disk).
    struct FailAfter<'a> {
        file: &'a File,
        left: usize,
    }

    impl Write for FailAfter<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("injected failure: no space left"));
            }
            let n = self.file.write(&buf[..buf.len().min(self.left)])?;
            self.left -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.file.flush()
        }
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_writer_failing_halfway_keeps_the_old_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let old = Tensor::from_vec(vec![1.0, 2.0], &[2]).unwrap();
        save(&path, &[("a", &old)], None, false).unwrap();
        let old_bytes = std::fs::read(&path).unwrap();

        let new = Tensor::from_vec((0..1000).map(|i| i as f32).collect(), &[10, 100]).unwrap();
        let err = save_with(&path, &[("a", &new)], None, true, |file, bytes| {
            FailAfter { file, left: 1500 }.write_all(bytes)
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::Io { path: p, detail } if *p == path && detail.contains("injected")),
            "{err:?}"
        );
        assert!(err.to_string().contains("w.safetensors"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), old_bytes);
        assert_eq!(dir_entries(dir.path()), ["w.safetensors"]);
        assert_eq!(load(&path).unwrap().get("a"), Some(&old));

        // A writer that fails at once, and a new file: nothing is created.
        let fresh = dir.path().join("fresh.safetensors");
        save_with(&fresh, &[("a", &new)], None, false, |file, bytes| {
            FailAfter { file, left: 0 }.write_all(bytes)
        })
        .unwrap_err();
        assert_eq!(dir_entries(dir.path()), ["w.safetensors"]);
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_get_the_mode_a_plain_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let saved = dir.path().join("w.safetensors");
        save(&saved, &[("a", &Tensor::zeros(&[1]))], None, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&saved), mode(&plain));
    }

    #[test]
    fn offsets_past_usize_max_are_a_format_error_not_an_overflow() {
        // Sixteen U8 tensors whose offsets chain up to 2^64 - 4: the sizes
        // agree with the shapes, so only the end-of-file sum could catch
        // them, and safetensors 0.8's `read_metadata` overflows computing it
        // (a panic in builds with overflow checks) unless `precheck` stops it.
        let step = 1u64 << 60;
        let mut entries = Vec::new();
        let mut begin = 0u64;
        for i in 0..16 {
            let len = if i == 15 { step - 4 } else { step };
            entries.push(format!(
                "\"t{i:02}\":{{\"dtype\":\"U8\",\"shape\":[{len}],\"data_offsets\":[{begin},{}]}}",
                begin + len
            ));
            begin += len;
        }
        let header = format!("{{{}}}", entries.join(","));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        let err = parse(&bytes, Path::new("crafted.safetensors")).unwrap_err();
        assert!(
            matches!(&err, Error::Format { detail, .. } if detail.contains("past the end")),
            "{err:?}"
        );
    }
}
