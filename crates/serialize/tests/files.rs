//! `save`/`load`: bit-exact round trips, the overwrite rule, and typed errors
//! (never panics) for files of another format, truncated, corrupted or of
//! another dtype.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use hebb_serialize::{Error, Loaded, load, load_with_limit, save};
use hebb_tensor::Tensor;
use proptest::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    t.as_slice().iter().map(|v| v.to_bits()).collect()
}

/// A small file with two tensors and metadata; returns its bytes.
fn write_sample(path: &Path) -> Vec<u8> {
    let kernel =
        Tensor::from_vec((0..12).map(|i| i as f32 * 0.37 - 2.0).collect(), &[3, 4]).unwrap();
    let bias = Tensor::from_vec(vec![0.5, -0.25, 1e-3, 7.0], &[4]).unwrap();
    let metadata = HashMap::from([("format".to_string(), "test".to_string())]);
    save(
        path,
        &[("dense/kernel", &kernel), ("dense/bias", &bias)],
        Some(metadata),
        true,
    )
    .unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn round_trip_is_bit_exact_with_metadata_and_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.safetensors");
    let special = Tensor::from_vec(
        vec![
            f32::from_bits(0x7fc0_1234), // NaN with a payload
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 8.0, // subnormal
            f32::MAX,
        ],
        &[2, 3],
    )
    .unwrap();
    let scalar = Tensor::scalar(3.5);
    let empty = Tensor::zeros(&[0, 3]);
    let big =
        Tensor::from_vec((0..1000).map(|i| (i as f32).sin()).collect(), &[10, 10, 10]).unwrap();
    let metadata = HashMap::from([
        ("format".to_string(), "hebb-weights".to_string()),
        ("note".to_string(), "ünïcode, \"quotes\"".to_string()),
    ]);
    let saved = [
        ("z/special", &special),
        ("a/scalar", &scalar),
        ("m/empty", &empty),
        ("b", &big),
    ];
    save(&path, &saved, Some(metadata.clone()), false).unwrap();

    let Loaded {
        tensors,
        metadata: read,
    } = load(&path).unwrap();
    assert_eq!(read, metadata);
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a/scalar", "b", "m/empty", "z/special"]);
    for (name, original) in saved {
        let (_, t) = tensors.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(t.shape(), original.shape(), "{name}");
        assert_eq!(bits(t), bits(original), "{name}");
    }
}

#[test]
fn no_metadata_loads_as_an_empty_map_and_no_tensors_is_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    save(&path, &[], None, false).unwrap();
    assert_eq!(load(&path).unwrap(), Loaded::default());
}

#[test]
fn overwrite_false_refuses_an_existing_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let before = write_sample(&path);
    let other = Tensor::zeros(&[2]);
    let err = save(&path, &[("x", &other)], None, false).unwrap_err();
    assert_eq!(err, Error::AlreadyExists { path: path.clone() });
    let message = err.to_string();
    assert!(message.contains(&*path.to_string_lossy()), "{message}");
    assert!(message.contains("overwrite"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    save(&path, &[("x", &other)], None, true).unwrap();
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.tensors, vec![("x".to_string(), other)]);
    // Only the file itself is left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn duplicate_and_reserved_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.safetensors");
    let t = Tensor::zeros(&[1]);
    let err = save(&path, &[("a", &t), ("a", &t)], None, false).unwrap_err();
    assert!(
        matches!(&err, Error::Name { name, .. } if name == "a"),
        "{err:?}"
    );
    let err = save(&path, &[("__metadata__", &t)], None, false).unwrap_err();
    assert!(matches!(&err, Error::Name { .. }), "{err:?}");
    assert!(!path.exists());
}

#[test]
fn every_truncation_of_a_valid_file_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.safetensors");
    let bytes = write_sample(&path);
    let cut = dir.path().join("cut.safetensors");
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        match load(&cut) {
            Err(Error::Format { path, .. }) => assert_eq!(path, cut),
            other => panic!("truncated to {len} of {} bytes: {other:?}", bytes.len()),
        }
    }
    // A byte too many is refused as well: the data must end with the file.
    let mut longer = bytes.clone();
    longer.push(0);
    std::fs::write(&cut, &longer).unwrap();
    assert!(matches!(load(&cut), Err(Error::Format { .. })));
}

#[test]
fn other_formats_and_random_bytes_are_format_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let csv = b"120,4,setosa,versicolor,virginica\n6.4,2.8,5.6,2.2,2\n".to_vec();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    // A plausible length followed by something that is not JSON.
    let mut not_json = 16u64.to_le_bytes().to_vec();
    not_json.extend(b"not json at all!");
    // JSON of the wrong shape.
    let mut wrong_json = 2u64.to_le_bytes().to_vec();
    wrong_json.extend(b"[]");
    for bytes in [random, csv, png, not_json, wrong_json] {
        std::fs::write(&path, &bytes).unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Format { path: p, .. } if *p == path),
            "{err:?}"
        );
        assert!(err.to_string().contains("other.safetensors"), "{err}");
    }
}

#[test]
fn a_tensor_of_another_dtype_is_a_dtype_error_naming_it() {
    struct F64View(Vec<u8>);
    impl safetensors::View for &F64View {
        fn dtype(&self) -> safetensors::Dtype {
            safetensors::Dtype::F64
        }
        fn shape(&self) -> &[usize] {
            &[2]
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.0)
        }
        fn data_len(&self) -> usize {
            self.0.len()
        }
    }
    let view = F64View([1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect());
    let bytes = safetensors::serialize([("dense/kernel", &view)], None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f64.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let err = load(&path).unwrap_err();
    assert_eq!(
        err,
        Error::Dtype {
            path: path.clone(),
            name: "dense/kernel".into(),
            dtype: "F64".into()
        }
    );
    assert!(err.to_string().contains("F32"), "{err}");
}

#[test]
fn a_missing_file_is_an_io_error_and_the_size_limit_is_checked_first() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    let err = load(&missing).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing),
        "{err:?}"
    );

    let path = dir.path().join("w.safetensors");
    let bytes = write_sample(&path);
    let err = load_with_limit(&path, 100).unwrap_err();
    assert_eq!(
        err,
        Error::TooLarge {
            path: path.clone(),
            size: bytes.len() as u64,
            limit: 100
        }
    );
    assert!(load_with_limit(&path, bytes.len() as u64).is_ok());

    let missing_dir = dir.path().join("no/such/dir/w.safetensors");
    let err = save(&missing_dir, &[], None, false).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == missing_dir),
        "{err:?}"
    );
}

/// Issue 11, item 10: a write into a missing directory names the target
/// and the directory, never the hidden temporary file (it said
/// `No such file or directory (os error 2) at path ".../.w.safetensors.2BuNcl.tmp"`).
#[test]
fn a_write_into_a_missing_directory_names_the_target_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("no/such");
    let target = parent.join("w.safetensors");
    for err in [
        save(&target, &[], None, false).unwrap_err(),
        save(&target, &[], None, true).unwrap_err(),
        hebb_serialize::write_atomic(&target, b"x", true).unwrap_err(),
    ] {
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot write the file: the directory {} does not exist",
                target.display(),
                parent.display()
            )
        );
    }
    // A file where the directory should be.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"").unwrap();
    let target = file.join("w.safetensors");
    let err = save(&target, &[], None, true).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: cannot write the file: {} is not a directory",
            target.display(),
            file.display()
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Flipped bytes, overwritten bytes and truncation give `Ok` or `Err`,
    /// never a panic; whatever loads is self-consistent.
    #[test]
    fn corrupted_files_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..8),
        truncate in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut bytes = write_sample(&path);
        for (at, value, flip) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = if *flip { bytes[i] ^ (1 << (value % 8)) } else { *value };
        }
        if let Some(at) = truncate {
            bytes.truncate(at.index(bytes.len()));
        }
        std::fs::write(&path, &bytes).unwrap();
        match load(&path) {
            Ok(loaded) => {
                for (_, t) in &loaded.tensors {
                    prop_assert_eq!(t.as_slice().len(), t.shape().iter().product::<usize>());
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("c.safetensors"), "{}", e),
        }
    }
}
