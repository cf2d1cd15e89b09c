//! Reader for the IDX format of MNIST and Fashion-MNIST (lecture 13.5).
//!
//! The format, as described at <http://yann.lecun.com/exdb/mnist/>:
//!
//! ```text
//! offset  size       content
//! 0       2          0x00 0x00
//! 2       1          element type: 0x08 unsigned byte (others: 0x09 i8, 0x0B i16,
//!                    0x0C i32, 0x0D f32, 0x0E f64; hebb reads 0x08 only)
//! 3       1          number of dimensions d (1 for labels, 3 for images)
//! 4       4 * d      the sizes, each a big-endian u32: N, then e.g. rows, cols
//! 4+4d    N*rows*... the elements, row-major (C order), one byte each
//! ```
//!
//! MNIST's `train-images-idx3-ubyte` thus starts `00 00 08 03`, then
//! `60000, 28, 28`, then 47,040,000 pixels (0 = background, 255 = ink); its
//! `train-labels-idx1-ubyte` starts `00 00 08 01`, then `60000`, then one
//! label (0..=9) per image. The published files are gzip-compressed (`.gz`).
//!
//! [`read_idx`] accepts plain and gzip-compressed files alike: a file that
//! starts with the gzip signature `1f 8b` is decompressed (whatever its name),
//! any other file is read as it is. Before allocating, it checks the magic
//! number, the type byte, the number of dimensions (1 to 4), and that the
//! element count (the product of the sizes, computed with overflow checks) is
//! at most [`MAX_IDX_BYTES`]; for a plain file it also compares the file's
//! length with the length the header implies. The file must then hold exactly
//! that many bytes: a truncated file and trailing bytes are both errors. Every
//! error names the file; no input makes the reader panic.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use byteorder::{BigEndian, ByteOrder};
use flate2::read::MultiGzDecoder;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// The most element bytes [`read_idx`] reads from one file: 1 GiB. A header
/// declaring more is refused before anything is allocated (MNIST's largest
/// file holds 47,040,000).
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// The IDX type code of unsigned bytes, the only element type hebb reads.
pub const IDX_TYPE_U8: u8 = 0x08;

/// Bytes allocated up front for a stream whose length is not known before
/// it is read (a gzip-compressed file, or [`read_idx_from`]); more is
/// allocated as data arrives, so a small corrupt file cannot make the
/// reader reserve a gigabyte.
const UNKNOWN_LENGTH_CAPACITY: usize = 64 << 20;

/// An n-d array of bytes read from an IDX file: `shape` (1 to 4 dimensions)
/// and the elements in row-major order.
///
/// This is what Keras' `mnist.load_data()` returns as a `uint8` NumPy array:
/// images `[N, 28, 28]` with values `0..=255`, labels `[N]` with values
/// `0..=9`. Convert with [`to_f32_divided`](Self::to_f32_divided) (the
/// lecture's `tf.cast(x / 255.0, tf.float32)`), [`to_f32_scaled`](Self::to_f32_scaled)
/// or [`to_tensor`](Self::to_tensor).
///
/// The invariant `data.len() == shape.iter().product()` holds for every
/// value (see [`new`](Self::new)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// An array of `shape` holding `data` in row-major order.
    ///
    /// # Errors
    /// [`Error::Tensor`] ([`hebb_tensor::Error::ElementCount`]) if
    /// `data.len()` is not the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if n != Some(data.len()) {
            return Err(hebb_tensor::Error::ElementCount {
                op: "IdxArray::new",
                shape,
                len: data.len(),
            }
            .into());
        }
        Ok(Self { shape, data })
    }

    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions (1 for labels, 3 for images).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of examples: the size of the first dimension, as Python's
    /// `len()` of the NumPy array (60000 for MNIST's training images).
    /// The number of elements is `self.data().len()`.
    pub fn len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Whether the array has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements, row-major (`shape.iter().product()` bytes).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The elements, row-major, by value.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Example `i`: a slice of `shape[1..].iter().product()` bytes (a
    /// 28 × 28 image in row-major order, or a single label), or `None` if
    /// `i >= len()`.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let stride: usize = self.shape.iter().skip(1).product();
        let start = i.checked_mul(stride)?;
        self.data.get(start..start.checked_add(stride)?)
    }

    /// The elements as an `f32` tensor of the same shape, unscaled
    /// (`tf.cast(x, tf.float32)`: 0.0 to 255.0).
    ///
    /// # Errors
    /// None in practice; the shape is consistent by construction.
    pub fn to_tensor(&self) -> Result<Tensor> {
        self.map_f32(f32::from)
    }

    /// `x * scale` for every element `x`, computed in `f32`, as an `f32`
    /// tensor of the same shape (e.g. `scale = 1.0 / 255.0` maps pixels to
    /// `[0, 1]`). For the lecture's bit-exact `x / 255.0`, use
    /// [`to_f32_divided`](Self::to_f32_divided).
    ///
    /// # Errors
    /// None in practice; the shape is consistent by construction.
    pub fn to_f32_scaled(&self, scale: f32) -> Result<Tensor> {
        self.map_f32(|v| f32::from(v) * scale)
    }

    /// `x / divisor` computed in `f64` and rounded to the nearest `f32`, as
    /// an `f32` tensor of the same shape: exactly the lecture's (13.5)
    /// `tf.cast(train_x / 255.0, tf.float32)` with `divisor = 255.0`, since
    /// NumPy divides a `uint8` array by a Python float in `float64`.
    ///
    /// # Errors
    /// None in practice; the shape is consistent by construction.
    pub fn to_f32_divided(&self, divisor: f64) -> Result<Tensor> {
        self.map_f32(|v| (f64::from(v) / divisor) as f32)
    }

    /// Applies `f` to every element through a 256-entry table.
    fn map_f32(&self, f: impl Fn(u8) -> f32) -> Result<Tensor> {
        let table: [f32; 256] = std::array::from_fn(|v| f(v as u8));
        let values = self.data.iter().map(|&v| table[usize::from(v)]).collect();
        Ok(Tensor::from_vec(values, &self.shape)?)
    }
}

/// Reads the IDX file at `path`, plain or gzip-compressed (see the
/// [module docs](self) for the format and the checks).
///
/// # Errors
/// All name the file:
/// - [`Error::Io`] if it cannot be opened or read;
/// - [`Error::IdxMagic`] if it does not start with two zero bytes (e.g. a
///   PNG image or an HTML error page);
/// - [`Error::IdxType`] if the element type is not `0x08` (unsigned byte);
/// - [`Error::IdxDims`] if the number of dimensions is not 1 to 4;
/// - [`Error::IdxTooLarge`] if the sizes multiply to more than
///   [`MAX_IDX_BYTES`] (nothing is allocated);
/// - [`Error::IdxTruncated`] if the file ends inside the header or holds
///   fewer data bytes than the header declares (expected and found counts);
/// - [`Error::IdxTrailing`] if bytes follow the declared data;
/// - [`Error::Gzip`] if a gzip-compressed file is corrupt or cut short.
///
/// # Example
/// ```
/// use hebb_data::read_idx;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("labels-idx1-ubyte");
/// // magic 00 00 08 01, one dimension of size 3, then 3 labels
/// std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])?;
/// let labels = read_idx(&path)?;
/// assert_eq!(labels.shape(), &[3]);
/// assert_eq!(labels.data(), &[7, 2, 1]);
///
/// std::fs::write(&path, [0, 0, 8, 1, 0, 0, 0, 4, 7, 2, 1])?;
/// let err = read_idx(&path).unwrap_err();
/// assert!(err.to_string().contains("truncated: 12 bytes expected"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    decode(BufReader::with_capacity(1 << 16, file), path, Some(len))
}

/// Reads an IDX array from `reader` (plain or gzip-compressed, detected by
/// the gzip signature), naming `path` in errors. The same checks as
/// [`read_idx`], except that the length of the stream is only known once
/// it has been read, so a truncated stream is detected at its end (up to
/// 64 MiB is allocated up front, more only as data arrives).
///
/// # Errors
/// As [`read_idx`].
pub fn read_idx_from<R: Read>(reader: R, path: &Path) -> Result<IdxArray> {
    decode(reader, path, None)
}

/// Sniffs the gzip signature and parses the (decompressed) stream.
/// `plain_len` is the length of the file when known.
fn decode<R: Read>(mut reader: R, path: &Path, plain_len: Option<u64>) -> Result<IdxArray> {
    let mut signature = [0u8; 2];
    let n = read_full(&mut reader, &mut signature).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let head = signature.get(..n).unwrap_or_default();
    let stream = head.chain(reader);
    if head == [0x1f, 0x8b] {
        parse(MultiGzDecoder::new(stream), path, None, true)
    } else {
        parse(stream, path, plain_len, false)
    }
}

/// Parses header and data from `r`, which yields the IDX bytes.
fn parse<R: Read>(
    mut r: R,
    path: &Path,
    plain_len: Option<u64>,
    compressed: bool,
) -> Result<IdxArray> {
    let read_error = |source: std::io::Error, decompressed: u64| {
        let corrupt = matches!(
            source.kind(),
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof
        );
        if compressed && corrupt {
            Error::Gzip {
                path: path.to_path_buf(),
                decompressed,
                source,
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let truncated = |what: String, expected: u64, found: u64| Error::IdxTruncated {
        path: path.to_path_buf(),
        what,
        expected,
        found,
        compressed,
    };

    // Magic number: 00 00 <type> <dims>.
    let mut magic = [0u8; 4];
    let n = read_full(&mut r, &mut magic).map_err(|e| read_error(e, 0))?;
    let found = magic.get(..n).unwrap_or_default();
    if found.iter().take(2).any(|&b| b != 0) {
        return Err(Error::IdxMagic {
            path: path.to_path_buf(),
            found: found.to_vec(),
        });
    }
    let [_, _, code, dims] = magic;
    if n < 4 {
        return Err(truncated("4-byte magic number".into(), 4, n as u64));
    }
    if code != IDX_TYPE_U8 {
        return Err(Error::IdxType {
            path: path.to_path_buf(),
            code,
        });
    }
    if !(1..=4).contains(&dims) {
        return Err(Error::IdxDims {
            path: path.to_path_buf(),
            dims,
        });
    }

    // Sizes: `dims` big-endian u32.
    let header_len = 4 + 4 * usize::from(dims);
    let mut sizes = [0u8; 16];
    let sizes = sizes.get_mut(..4 * usize::from(dims)).unwrap_or_default();
    let n = read_full(&mut r, sizes).map_err(|e| read_error(e, 4))?;
    if n < sizes.len() {
        return Err(truncated(
            format!("{header_len}-byte header of {dims} dimensions"),
            header_len as u64,
            (4 + n) as u64,
        ));
    }
    let declared: Vec<u32> = sizes.chunks_exact(4).map(BigEndian::read_u32).collect();
    let count = declared
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .and_then(|c| usize::try_from(c).ok())
        .filter(|&c| c <= MAX_IDX_BYTES);
    let Some(count) = count else {
        return Err(Error::IdxTooLarge {
            path: path.to_path_buf(),
            shape: declared,
            limit: MAX_IDX_BYTES,
        });
    };
    let shape: Vec<usize> = declared.iter().map(|&d| d as usize).collect();
    let expected = (header_len + count) as u64;
    let what = format!("{header_len}-byte header + {shape:?} = {count} bytes of data");

    // A plain file's length is known: check it before allocating.
    if let Some(len) = plain_len {
        if len < expected {
            return Err(truncated(what, expected, len));
        }
        if len > expected {
            return Err(Error::IdxTrailing {
                path: path.to_path_buf(),
                what,
                expected,
                found: Some(len),
            });
        }
    }

    let capacity = match plain_len {
        Some(_) => count,
        None => count.min(UNKNOWN_LENGTH_CAPACITY),
    };
    let mut data = Vec::with_capacity(capacity);
    (&mut r)
        .take(count as u64)
        .read_to_end(&mut data)
        .map_err(|e| read_error(e, (header_len + data.len()) as u64))?;
    if data.len() < count {
        return Err(truncated(what, expected, (header_len + data.len()) as u64));
    }

    // Nothing may follow; for gzip, reading on to the end also checks the CRC.
    let mut extra = [0u8; 1];
    let n = read_full(&mut r, &mut extra).map_err(|e| read_error(e, expected))?;
    if n > 0 {
        return Err(Error::IdxTrailing {
            path: path.to_path_buf(),
            what,
            expected,
            found: plain_len,
        });
    }
    IdxArray::new(shape, data)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_slices_examples() {
        let a = IdxArray::new(vec![3, 2], vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.item(1), Some(&[3u8, 4][..]));
        assert_eq!(a.item(3), None);
        assert_eq!(a.item(usize::MAX), None);
        let labels = IdxArray::new(vec![2], vec![7, 9]).unwrap();
        assert_eq!(labels.item(1), Some(&[9u8][..]));
        let empty = IdxArray::new(vec![0, 28, 28], vec![]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.item(0), None);
    }

    #[test]
    fn new_checks_the_element_count() {
        assert!(IdxArray::new(vec![2, 2], vec![0; 3]).is_err());
        assert!(IdxArray::new(vec![usize::MAX, 2], vec![]).is_err());
    }

    #[test]
    fn conversions() {
        let a = IdxArray::new(vec![1, 3], vec![0, 51, 255]).unwrap();
        assert_eq!(a.to_tensor().unwrap().to_vec(), [0.0, 51.0, 255.0]);
        assert_eq!(a.to_tensor().unwrap().shape(), &[1, 3]);
        assert_eq!(a.to_f32_divided(255.0).unwrap().to_vec(), [0.0, 0.2, 1.0]);
        assert_eq!(a.to_f32_scaled(0.5).unwrap().to_vec(), [0.0, 25.5, 127.5]);
        // tf.cast(x / 255.0, tf.float32) for every byte value: f64 division,
        // then rounding to f32.
        let all = IdxArray::new(vec![256], (0..=255).collect()).unwrap();
        let t = all.to_f32_divided(255.0).unwrap().to_vec();
        for (v, got) in t.iter().enumerate() {
            assert_eq!(got.to_bits(), ((v as f64 / 255.0) as f32).to_bits());
        }
    }
}
