//! The IDX reader on small files written here, plain and gzip-compressed:
//! well-formed files, every kind of malformed file (each a typed error naming
//! the file), and property tests that random or corrupted input never panics.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use hebb_data::idx::{MAX_IDX_BYTES, read_idx_from};
use hebb_data::{Error, IdxArray, read_idx};
use proptest::prelude::*;

/// An IDX file of unsigned bytes: magic `00 00 08 <dims>`, the sizes as
/// big-endian u32, then `data`.
fn idx_bytes(shape: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes `bytes` to `name` in a fresh temporary directory.
fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Reads `bytes` written as `name`, plain, and gzipped as `name.gz`.
fn read_both(name: &str, bytes: &[u8]) -> [(PathBuf, hebb_data::Result<IdxArray>); 2] {
    let (_d1, plain) = write(name, bytes);
    let (_d2, gz) = write(&format!("{name}.gz"), &gzip(bytes));
    [
        (plain.clone(), read_idx(&plain)),
        (gz.clone(), read_idx(&gz)),
    ]
}

fn assert_names(err: &Error, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} does not name {}",
        path.display()
    );
}

#[test]
fn reads_plain_and_gzipped_files() {
    let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 10) as u8).collect();
    for (path, result) in read_both("images-idx3-ubyte", &idx_bytes(&[2, 3, 4], &pixels)) {
        let a = result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(a.shape(), &[2, 3, 4]);
        assert_eq!(a.rank(), 3);
        assert_eq!(a.len(), 2);
        assert_eq!(a.data(), &pixels[..]);
        assert_eq!(a.item(1), Some(&pixels[12..]));
    }
    for (_, result) in read_both("labels-idx1-ubyte", &idx_bytes(&[5], &[7, 2, 1, 0, 4])) {
        let a = result.unwrap();
        assert_eq!(
            (a.shape(), a.data()),
            (&[5usize][..], &[7u8, 2, 1, 0, 4][..])
        );
    }
    // Four dimensions, and an empty array.
    let (_, result) = &read_both("x", &idx_bytes(&[1, 2, 1, 2], &[1, 2, 3, 4]))[1];
    assert_eq!(result.as_ref().unwrap().shape(), &[1, 2, 1, 2]);
    let (_, result) = &read_both("x", &idx_bytes(&[0, 28, 28], &[]))[0];
    assert!(result.as_ref().unwrap().is_empty());
}

#[test]
fn compression_is_detected_by_content_not_name() {
    let bytes = idx_bytes(&[3], &[1, 2, 3]);
    let (_d, gz_without_suffix) = write("labels", &gzip(&bytes));
    assert_eq!(read_idx(&gz_without_suffix).unwrap().data(), &[1, 2, 3]);
    let (_d, plain_with_suffix) = write("labels.gz", &bytes);
    assert_eq!(read_idx(&plain_with_suffix).unwrap().data(), &[1, 2, 3]);
    // Concatenated gzip members are one stream (as gzip -d reads them).
    let mut two = gzip(&bytes[..6]);
    two.extend(gzip(&bytes[6..]));
    let (_d, path) = write("two-members.gz", &two);
    assert_eq!(read_idx(&path).unwrap().data(), &[1, 2, 3]);
}

#[test]
fn reads_from_any_reader() {
    let bytes = idx_bytes(&[2, 2], &[1, 2, 3, 4]);
    let name = Path::new("in-memory");
    let a = read_idx_from(Cursor::new(&bytes), name).unwrap();
    assert_eq!(a.shape(), &[2, 2]);
    let a = read_idx_from(Cursor::new(gzip(&bytes)), name).unwrap();
    assert_eq!(a.data(), &[1, 2, 3, 4]);
    let err = read_idx_from(Cursor::new(&bytes[..7]), name).unwrap_err();
    assert!(matches!(
        err,
        Error::IdxTruncated {
            expected: 12,
            found: 7,
            ..
        }
    ));
    assert!(err.to_string().starts_with("in-memory: truncated"), "{err}");
}

#[test]
fn wrong_magic_is_an_error() {
    let mut bytes = idx_bytes(&[3], &[1, 2, 3]);
    bytes[1] = 1;
    for (path, result) in read_both("labels", &bytes) {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::IdxMagic { found, .. } if found == &[0, 1, 8, 1]),
            "{err:?}"
        );
        assert_names(&err, &path);
        assert!(
            err.to_string()
                .contains("not an IDX file: it starts with 00 01 08 01")
        );
    }
}

#[test]
fn a_png_file_is_not_an_idx_file() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x1c\0\0\0\x1c\x08\0\0\0\0";
    let (_d, path) = write("train-images-idx3-ubyte.gz", png);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, Error::IdxMagic { .. }), "{err:?}");
    assert_names(&err, &path);
    assert!(
        err.to_string().contains("89 50 4e 47 (a PNG image)"),
        "{err}"
    );
    // An HTML error page saved in place of the data.
    let (_d, path) = write(
        "t10k-labels-idx1-ubyte.gz",
        b"<html><body>404</body></html>",
    );
    let err = read_idx(&path).unwrap_err();
    assert!(err.to_string().contains("(HTML or XML"), "{err}");
}

#[test]
fn unsupported_element_types_are_named() {
    for (code, name) in [
        (0x09, "signed byte"),
        (0x0B, "short, 2 bytes"),
        (0x0C, "int, 4 bytes"),
        (0x0D, "float, 4 bytes"),
        (0x0E, "double, 8 bytes"),
        (0x42, "not an IDX type"),
    ] {
        let mut bytes = idx_bytes(&[1], &[0, 0, 0, 0]);
        bytes[2] = code;
        for (path, result) in read_both("data", &bytes) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::IdxType { code: c, .. } if *c == code),
                "{err:?}"
            );
            assert_names(&err, &path);
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("type 0x{code:02x} ({name})")),
                "{msg}"
            );
            assert!(msg.contains("only 0x08 (unsigned byte)"), "{msg}");
        }
    }
}

#[test]
fn the_number_of_dimensions_must_be_1_to_4() {
    for dims in [0u8, 5, 255] {
        let (path, result) = read_both("data", &[0, 0, 8, dims, 0, 0, 0, 1, 9])
            .into_iter()
            .next()
            .unwrap();
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::IdxDims { dims: d, .. } if *d == dims),
            "{err:?}"
        );
        assert_names(&err, &path);
    }
}

#[test]
fn truncated_data_is_an_error_with_both_counts() {
    let full = idx_bytes(&[2, 28, 28], &[7; 2 * 28 * 28]);
    let cut = &full[..full.len() - 100];
    for (path, result) in read_both("train-images-idx3-ubyte", cut) {
        let err = result.unwrap_err();
        let compressed = path.extension().is_some();
        assert!(
            matches!(
                &err,
                Error::IdxTruncated { expected: 1584, found: 1484, compressed: c, .. } if *c == compressed
            ),
            "{err:?}"
        );
        assert_names(&err, &path);
        let msg = err.to_string();
        assert!(
            msg.contains("truncated: 1584 bytes expected (16-byte header + [2, 28, 28] = 1568 bytes of data), the file holds 1484"),
            "{msg}"
        );
        assert_eq!(
            compressed,
            msg.ends_with("after gzip decompression"),
            "{msg}"
        );
    }
}

#[test]
fn a_truncated_header_is_an_error() {
    let header = idx_bytes(&[60000, 28, 28], &[]);
    for (len, expected) in [(0, 4), (2, 4), (3, 4), (4, 16), (10, 16), (15, 16)] {
        for (path, result) in read_both("images", &header[..len]) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::IdxTruncated { expected: e, found: f, .. } if *e == expected && *f == len as u64),
                "{len} bytes: {err:?}"
            );
            assert_names(&err, &path);
        }
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = idx_bytes(&[3], &[1, 2, 3]);
    bytes.extend_from_slice(b"junk");
    let [(plain, plain_result), (gz, gz_result)] = read_both("labels", &bytes);
    let err = plain_result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdxTrailing {
                expected: 11,
                found: Some(15),
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &plain);
    assert!(
        err.to_string().contains(": 4 trailing bytes after the 11"),
        "{err}"
    );
    let err = gz_result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdxTrailing {
                expected: 11,
                found: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_names(&err, &gz);
}

#[test]
fn huge_declared_sizes_are_refused_without_allocating() {
    for shape in [
        vec![65535, 65535, 65535],
        vec![u32::MAX; 4],                // overflows u64
        vec![(MAX_IDX_BYTES + 1) as u32], // just over the limit
        vec![1 << 16, 1 << 16],           // 4 GiB
    ] {
        for (path, result) in read_both("huge", &idx_bytes(&shape, &[1, 2, 3])) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::IdxTooLarge { shape: s, limit, .. } if *s == shape && *limit == MAX_IDX_BYTES),
                "{err:?}"
            );
            assert_names(&err, &path);
        }
    }
    // At the limit the header is accepted, and the missing data is reported
    // (for a plain file, from its length, before anything is read).
    let at_limit = idx_bytes(&[1 << 15, 1 << 15], &[1, 2, 3]);
    for (path, result) in read_both("big", &at_limit) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::IdxTruncated { expected, found: 15, .. } if expected == 12 + (1 << 30)),
            "{}: {err:?}",
            path.display()
        );
    }
}

#[test]
fn corrupt_gzip_data_is_an_error() {
    let bytes = idx_bytes(&[100], &[3; 100]);
    let gz = gzip(&bytes);
    // Cut short.
    let (_d, path) = write("labels.gz", &gz[..gz.len() / 2]);
    let err = read_idx(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gzip { .. }
                | Error::IdxTruncated {
                    compressed: true,
                    ..
                }
        ),
        "{err:?}"
    );
    assert_names(&err, &path);
    // Without its 8-byte trailer (CRC and length).
    let (_d, path) = write("labels.gz", &gz[..gz.len() - 8]);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
    // A wrong CRC.
    let mut bad_crc = gz.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    let (_d, path) = write("labels.gz", &bad_crc);
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
    assert!(
        err.to_string().contains("corrupt or truncated gzip data"),
        "{err}"
    );
    assert_names(&err, &path);
    // Garbage after the gzip signature.
    let (_d, path) = write("labels.gz", b"\x1f\x8b\x00\x00garbage");
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, Error::Gzip { .. }), "{err:?}");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-file-idx1-ubyte.gz");
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_names(&err, &path);
}

#[test]
fn conversions_to_tensors() {
    let a = IdxArray::new(vec![2, 2], vec![0, 255, 51, 102]).unwrap();
    let x = a.to_f32_divided(255.0).unwrap();
    assert_eq!(x.shape(), &[2, 2]);
    assert_eq!(x.to_vec(), [0.0, 1.0, 0.2, 0.4]);
    assert_eq!(a.to_tensor().unwrap().to_vec(), [0.0, 255.0, 51.0, 102.0]);
    assert_eq!(
        a.to_f32_scaled(1.0 / 255.0).unwrap().to_vec(),
        [0.0, 1.0, 51.0 * (1.0f32 / 255.0), 102.0 * (1.0f32 / 255.0)]
    );
}

/// A valid IDX file of a random small shape.
fn valid_idx() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u32..5, 1..=4).prop_flat_map(|shape| {
        let n: u32 = shape.iter().product();
        prop::collection::vec(any::<u8>(), n as usize)
            .prop_map(move |data| idx_bytes(&shape, &data))
    })
}

/// `bytes` with some bytes overwritten, then possibly cut or extended.
fn corrupted(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = bytes.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        prop::option::of(0..=len),
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(move |(edits, cut, extra)| {
            let mut b = bytes.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Some(cut) = cut {
                b.truncate(cut);
            }
            b.extend(extra);
            b
        })
}

/// Reads `bytes` from a file and from memory: both succeed or both fail
/// (with an error, not a panic), and an array returned is consistent.
fn never_panics(bytes: &[u8], dir: &Path) -> Result<(), TestCaseError> {
    let path = dir.join("case");
    std::fs::write(&path, bytes).unwrap();
    let from_file = read_idx(&path);
    let from_memory = read_idx_from(bytes, &path);
    // The two readers agree on whether the bytes are a valid IDX file.
    prop_assert_eq!(from_file.as_ref().ok(), from_memory.as_ref().ok());
    if let Ok(a) = from_file {
        prop_assert_eq!(a.data().len(), a.shape().iter().product::<usize>());
        prop_assert!((1..=4).contains(&a.rank()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let dir = tempfile::tempdir().unwrap();
        never_panics(&bytes, dir.path())?;
        // Behind an IDX-looking prefix, and gzipped.
        let mut prefixed = vec![0, 0, 8];
        prefixed.extend(&bytes);
        never_panics(&prefixed, dir.path())?;
        never_panics(&gzip(&prefixed), dir.path())?;
    }

    #[test]
    fn corrupted_files_never_panic(bytes in valid_idx().prop_flat_map(corrupted)) {
        let dir = tempfile::tempdir().unwrap();
        never_panics(&bytes, dir.path())?;
        never_panics(&gzip(&bytes), dir.path())?;
    }

    #[test]
    fn corrupted_gzip_never_panics(
        gz in valid_idx().prop_map(|b| gzip(&b)).prop_flat_map(corrupted)
    ) {
        let dir = tempfile::tempdir().unwrap();
        never_panics(&gz, dir.path())?;
    }

    #[test]
    fn valid_files_round_trip(bytes in valid_idx()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.gz");
        std::fs::write(&path, gzip(&bytes)).unwrap();
        let a = read_idx(&path).unwrap();
        let dims = usize::from(bytes[3]);
        prop_assert_eq!(idx_bytes(
            &a.shape().iter().map(|&d| d as u32).collect::<Vec<_>>(),
            a.data(),
        ), bytes.clone());
        prop_assert_eq!(a.rank(), dims);
    }
}
