//! The HDF5 subset: files written by h5py (made by
//! `tests/fixtures/hdf5/make_hdf5_fixtures.py`) read with their values;
//! what hebb writes reads back equal; damaged and crafted files give typed
//! errors, never a panic or an allocation beyond the file's size.

use std::path::{Path, PathBuf};

use hebb_serialize::Error;
use hebb_serialize::hdf5::{self, Attribute, Dataset, Dtype, Group, Node, Value};
use proptest::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hdf5")
        .join(name)
}

#[test]
fn h5py_default_layout_reads_with_its_values() {
    let file = hdf5::read(fixture("default.h5")).unwrap();
    let root = &file.root;
    let attr = |n: &str| root.attribute(n).unwrap();
    assert_eq!(attr("vlen").as_str(), Some("variable-length ünïcode"));
    assert_eq!(attr("fixed").as_str(), Some("fixed-length"));
    assert_eq!(
        attr("names").as_strings().unwrap(),
        ["dense", "dense_1", "activation"]
    );
    assert_eq!(attr("vlen_names").as_strings().unwrap(), ["a", "bb", ""]);
    assert_eq!(attr("ints").value, Value::Ints(vec![1, -2, 3]));
    assert_eq!(attr("empty").shape, [0]);
    assert_eq!(attr("empty").as_strings().unwrap(), Vec::<&str>::new());
    assert_eq!(attr("pi").value, Value::Floats(vec![3.25]));
    assert!(attr("pi").shape.is_empty());

    let kernel = root
        .dataset("model_weights/dense/sequential/dense/kernel")
        .unwrap();
    assert_eq!(
        (kernel.dtype, kernel.shape.as_slice()),
        (Dtype::F32, &[3, 4][..])
    );
    let want: Vec<f32> = (0..12).map(|i| i as f32 / 8.0).collect();
    assert_eq!(kernel.to_f32().unwrap(), want);
    let names = root
        .group("model_weights/dense")
        .unwrap()
        .attribute("weight_names")
        .unwrap();
    assert_eq!(
        names.as_strings().unwrap(),
        ["sequential/dense/kernel", "sequential/dense/bias"]
    );
    let be = root.dataset("big_endian").unwrap();
    assert_eq!(be.dtype, Dtype::F64);
    assert_eq!(be.to_f64(), [1.5, -2.0, 3.0, 1e300]);
    assert_eq!(root.dataset("int16").unwrap().to_f64(), [-3.0, 0.0, 7.0]);
    let iteration = root.dataset("iteration").unwrap();
    assert!(iteration.shape.is_empty());
    assert_eq!(iteration.to_i64_scalar().unwrap(), 1875);
    assert_eq!(
        root.dataset("compact").unwrap().to_f32().unwrap(),
        [1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(root.dataset("links/x").unwrap().to_f32().unwrap(), [2.5]);

    // 300 members: a B-tree of two levels, in name order.
    let many = root.group("many").unwrap();
    assert_eq!(many.members.len(), 300);
    for (i, (name, node)) in many.members.iter().enumerate() {
        assert_eq!(name, &format!("v{i:03}"));
        let Node::Dataset(d) = node else {
            panic!("{name}")
        };
        assert_eq!(d.to_f32().unwrap(), [i as f32]);
    }

    // What hebb does not read is in the tree, with the reason.
    for (path, why) in [
        ("chunked", "filters"),
        ("soft", "soft link"),
        ("links/external", "external link"),
        ("strings", "strings"),
    ] {
        match root.get(path) {
            Some(Node::Unsupported(w)) => assert!(w.contains(why), "{path}: {w}"),
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn libver_latest_reads_with_checksums_verified() {
    let file = hdf5::read(fixture("latest.h5")).unwrap();
    let root = &file.root;
    assert_eq!(
        root.attribute("model_config").unwrap().as_str(),
        Some("{\"class_name\": \"Sequential\"}")
    );
    let d = root.dataset("layers/dense/vars/0").unwrap();
    assert_eq!(d.to_f32().unwrap(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        root.group("layers/dense/vars")
            .unwrap()
            .attribute("name")
            .unwrap()
            .as_str(),
        Some("dense")
    );

    // Any flipped byte inside the superblock or an object header is a checksum error.
    let bytes = std::fs::read(fixture("latest.h5")).unwrap();
    let mut damaged = bytes.clone();
    damaged[20] ^= 1; // the superblock's root address
    let err = hdf5::parse(damaged, Path::new("latest.h5")).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn dense_link_storage_is_refused_by_name() {
    let err = hdf5::read(fixture("dense_links.h5")).unwrap_err();
    assert!(
        matches!(&err, Error::Hdf5Unsupported { detail, .. } if detail.contains("dense link storage")),
        "{err:?}"
    );
}

fn sample() -> Group {
    let mut root = Group::default();
    root.attributes
        .push(Attribute::string("model_config", "{\"a\": [1, 2]}"));
    root.attributes.push(Attribute::strings(
        "layer_names",
        &["dense", "dense_1", "ünï"],
    ));
    root.attributes.push(Attribute::floats("empty", &[]));
    root.insert(
        "model_weights/dense/kernel",
        Dataset::from_f32(&[2, 3], &[1.0, -2.0, 3.5, f32::NAN, 0.0, -0.0])
            .unwrap()
            .into(),
    )
    .unwrap();
    root.insert(
        "optimizer/vars/0",
        Dataset::from_i64(&[], &[1875]).unwrap().into(),
    )
    .unwrap();
    root.insert("empty_group", Group::default().into()).unwrap();
    root
}

/// `g` with every group's members sorted by name, as files hold them.
fn sorted(mut g: Group) -> Group {
    g.members.sort_by(|a, b| a.0.cmp(&b.0));
    g.members = g
        .members
        .into_iter()
        .map(|(n, m)| match m {
            Node::Group(c) => (n, Node::Group(sorted(c))),
            other => (n, other),
        })
        .collect();
    g
}

#[test]
fn what_hebb_writes_reads_back_equal() {
    let root = sample();
    let bytes = hdf5::to_bytes(&root).unwrap();
    let file = hdf5::parse(bytes, Path::new("mem.h5")).unwrap();
    // NaN != NaN: compare the bits of the one dataset holding it, then the rest.
    let k = file.root.dataset("model_weights/dense/kernel").unwrap();
    assert_eq!(
        k.raw(),
        sample()
            .dataset("model_weights/dense/kernel")
            .unwrap()
            .raw()
    );
    let strip = |mut g: Group| {
        g.members.retain(|(n, _)| n != "model_weights");
        g
    };
    assert_eq!(strip(file.root.clone()), strip(sorted(root)));
}

#[test]
fn write_refuses_what_hdf5_cannot_hold() {
    let mut root = Group::default();
    assert!(matches!(
        root.insert("a//b", Group::default().into()),
        Err(Error::Hdf5Value { .. })
    ));
    root.insert("a", Group::default().into()).unwrap();
    assert!(root.insert("a", Group::default().into()).is_err());
    let mut dup = Group::default();
    dup.attributes.push(Attribute::string("x", "1"));
    dup.attributes.push(Attribute::string("x", "2"));
    assert!(matches!(hdf5::to_bytes(&dup), Err(Error::Hdf5Value { .. })));
    let mut big = Group::default();
    big.attributes
        .push(Attribute::string("model_config", &"x".repeat(70_000)));
    let err = hdf5::to_bytes(&big).unwrap_err();
    assert!(err.to_string().contains("64 KiB"), "{err}");
    assert!(Dataset::from_f32(&[2, 2], &[1.0]).is_err());
}

#[test]
fn other_formats_and_truncation_are_typed_errors() {
    let err = hdf5::parse(b"PK\x03\x04 a zip file".to_vec(), Path::new("x.h5")).unwrap_err();
    assert!(
        matches!(&err, Error::Hdf5 { detail, .. } if detail.contains("not an HDF5 file")),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("x.h5: "), "{err}");
    let bytes = hdf5::to_bytes(&sample()).unwrap();
    for len in [0, 7, 8, 50, 96, bytes.len() / 2, bytes.len() - 1] {
        let err = hdf5::parse(bytes[..len].to_vec(), Path::new("t.h5")).unwrap_err();
        assert!(matches!(err, Error::Hdf5 { .. }), "{len}: {err:?}");
    }
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn a_huge_declared_size_is_an_error_not_an_allocation() {
    let mut root = Group::default();
    root.insert(
        "d",
        Dataset::from_f32(&[3], &[1.0, 2.0, 3.0]).unwrap().into(),
    )
    .unwrap();
    let bytes = hdf5::to_bytes(&root).unwrap();
    // The dataspace message of "d": version 1, rank 1, then the dimension 3 (8 bytes).
    let at = find(&bytes, &[1, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]) + 8;
    for dim in [1u64 << 40, u64::MAX / 2, u64::MAX] {
        let mut crafted = bytes.clone();
        crafted[at..at + 8].copy_from_slice(&dim.to_le_bytes());
        let err = hdf5::parse(crafted, Path::new("huge.h5")).unwrap_err();
        assert!(matches!(err, Error::Hdf5 { .. }), "{dim}: {err:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn damaged_files_never_panic(flips in prop::collection::vec((any::<usize>(), 1u8..=255), 1..6),
                                 which in 0usize..3) {
        let bytes = match which {
            0 => hdf5::to_bytes(&sample()).unwrap(),
            1 => std::fs::read(fixture("latest.h5")).unwrap(),
            _ => std::fs::read(fixture("default.h5")).unwrap(),
        };
        let mut damaged = bytes.clone();
        for (p, mask) in &flips {
            let n = damaged.len();
            damaged[p % n] ^= mask;
        }
        // An error, or a tree: either way no panic, and nothing larger than the file.
        if let Ok(file) = hdf5::parse(damaged, Path::new("damaged.h5")) {
            fn total(g: &Group) -> usize {
                g.members.iter().map(|(_, m)| match m {
                    Node::Group(c) => total(c),
                    Node::Dataset(d) => d.raw().len(),
                    Node::Unsupported(_) => 0,
                }).sum()
            }
            prop_assert!(total(&file.root) <= bytes.len());
        }
    }

    #[test]
    fn written_trees_read_back_equal(
        values in prop::collection::vec(prop::collection::vec(-1e6f32..1e6, 0..20), 1..40),
        names in prop::collection::vec("[a-z_]{1,12}", 1..40),
        text in "[ -~]{0,200}",
    ) {
        let mut root = Group::default();
        root.attributes.push(Attribute::string("text", &text));
        let mut used = std::collections::HashSet::new();
        for (i, (v, n)) in values.iter().zip(&names).enumerate() {
            let name = format!("{n}{i}");
            if !used.insert(name.clone()) {
                continue;
            }
            let path = if i % 3 == 0 { format!("g{}/{name}", i % 5) } else { name };
            let d = Dataset::from_f32(&[v.len()], v).unwrap();
            if root.insert(&path, d.into()).is_err() {
                continue;
            }
        }
        let file = hdf5::parse(hdf5::to_bytes(&root).unwrap(), Path::new("p.h5")).unwrap();
        prop_assert_eq!(file.root, sorted(root));
    }
}
