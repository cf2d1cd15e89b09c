//! The Iris reader: the real files, centring, and every error it reports.

use std::path::{Path, PathBuf};

use hebb_data::{DataDir, Error, IrisSplit, load_iris, load_iris_test, read_iris_csv};
use proptest::prelude::*;

/// `$HEBB_DATA_DIR`, else `/work/shared/datasets` (`../../../shared/datasets`
/// from this crate); `None` (and a message) if neither exists.
fn real_data_dir() -> Option<DataDir> {
    let dir = std::env::var_os("HEBB_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"));
    if dir.join("iris").is_dir() {
        Some(DataDir::new(dir))
    } else {
        eprintln!(
            "skipping: no Iris files in {} (set HEBB_DATA_DIR)",
            dir.display()
        );
        None
    }
}

/// Writes `content` to `name` in a fresh temporary directory.
fn write_csv(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    (dir, path)
}

fn label_counts(split: &IrisSplit) -> Vec<usize> {
    let mut counts = vec![0; split.n_classes()];
    split.labels.iter().for_each(|&l| counts[l] += 1);
    counts
}

#[test]
fn real_files_parse() {
    let Some(dir) = real_data_dir() else { return };
    let (train, test) = load_iris(&dir).unwrap();

    assert_eq!(
        (train.len(), train.n_features, train.features.len()),
        (120, 4, 480)
    );
    assert_eq!(
        (test.len(), test.n_features, test.features.len()),
        (30, 4, 120)
    );
    for split in [&train, &test] {
        assert_eq!(split.class_names, ["setosa", "versicolor", "virginica"]);
    }
    assert_eq!(train.features[..4], [6.4, 2.8, 5.6, 2.2]);
    assert_eq!(train.labels[0], 2);
    assert_eq!(test.features[..4], [5.9, 3.0, 4.2, 1.5]);
    assert_eq!(test.labels[0], 1);
    assert_eq!(label_counts(&train), [42, 36, 42]);
    assert_eq!(label_counts(&test), [8, 14, 8]);

    let x = train.features_tensor().unwrap();
    assert_eq!(x.shape(), &[120, 4]);
    assert_eq!(x.to_vec()[..4], [6.4f32, 2.8, 5.6, 2.2]);
    let y = train.one_hot().unwrap();
    assert_eq!(y.shape(), &[120, 3]);
    assert_eq!(y.to_vec()[..3], [0.0, 0.0, 1.0]);
}

#[test]
fn real_files_centre_each_split_with_its_own_mean() {
    let Some(dir) = real_data_dir() else { return };
    let (train, test) = load_iris(&dir).unwrap();
    let (train_c, test_c) = (train.centred(), test.centred());
    for (raw, centred) in [(&train, &train_c), (&test, &test_c)] {
        assert!(centred.column_means().iter().all(|m| m.abs() < 1e-12));
        let means = raw.column_means();
        for (i, (x, c)) in raw.features.iter().zip(&centred.features).enumerate() {
            assert_eq!(*c, x - means[i % 4]);
        }
        assert_eq!(
            (&centred.labels, &centred.class_names),
            (&raw.labels, &raw.class_names)
        );
    }
    // The splits have different means, so their own mean is what was used.
    assert_ne!(train.column_means(), test.column_means());
    // np.mean(x, axis=0) on the lecture's x = np.array(df)[:, 0:4], printed
    // with repr() by NumPy: equal to the last bit.
    assert_eq!(
        train.column_means(),
        [
            5.845000000000001,
            3.064999999999999,
            3.739166666666667,
            1.196666666666666
        ]
    );
    assert_eq!(
        test.column_means(),
        [
            5.836666666666665,
            3.01,
            3.836666666666667,
            1.2066666666666663
        ]
    );
}

#[test]
fn means_add_rows_in_order_then_divide() {
    let (_dir, path) = write_csv("m.csv", "3,1,a\n0.1,0\n0.2,0\n0.3,0\n");
    let split = read_iris_csv(&path).unwrap();
    // ((0.1 + 0.2) + 0.3) / 3 in f64, as NumPy computes it.
    assert_eq!(split.column_means(), [((0.1 + 0.2) + 0.3) / 3.0]);
    let centred = split.centred();
    assert_eq!(centred.features[0], 0.1 - ((0.1 + 0.2) + 0.3) / 3.0);
}

#[test]
fn labels_may_be_integral_floats_and_fields_may_have_spaces() {
    let (_dir, path) = write_csv("f.csv", "2,2,a,b,c\n 1.5 , -2e-1 ,2.0\n0,0,0\n");
    let split = read_iris_csv(&path).unwrap();
    assert_eq!(split.features, [1.5, -0.2, 0.0, 0.0]);
    assert_eq!(split.labels, [2, 0]);
}

#[test]
fn empty_split_is_fine() {
    let (_dir, path) = write_csv("e.csv", "0,4,a,b,c\n");
    let split = read_iris_csv(&path).unwrap();
    assert!(split.is_empty());
    assert_eq!(split.features_tensor().unwrap().shape(), &[0, 4]);
    assert!(split.column_means().iter().all(|m| m.is_nan()));
}

/// Asserts the message names the file name and every piece in `parts`.
fn assert_message(err: &Error, file: &str, parts: &[&str]) {
    let msg = err.to_string();
    assert!(msg.contains(file), "{msg:?} does not name {file}");
    for part in parts {
        assert!(msg.contains(part), "{msg:?} does not contain {part:?}");
    }
}

#[test]
fn truncated_row() {
    let (_dir, path) = write_csv("iris_training.csv", "2,4,a,b,c\n1,2,3,4,0\n1,2,3,1\n");
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RowLength {
                line: 3,
                expected: 5,
                found: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(
        &err,
        "iris_training.csv",
        &["line 3", "expected 5 fields", "found 4"],
    );
}

#[test]
fn non_numeric_field() {
    let (_dir, path) = write_csv(
        "iris_training.csv",
        "3,4,a,b,c\n1,2,3,4,0\n1,2,3,4,1\n1,2,abc,4,1\n",
    );
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                line: 4,
                column: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(
        &err,
        "iris_training.csv",
        &["line 4, column 3", "\"abc\" is not a number"],
    );

    std::fs::write(&path, "1,4,a,b,c\n1,2,3,4,\n").unwrap();
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                line: 2,
                column: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(
        &err,
        "iris_training.csv",
        &["line 2, column 5", "not a class label"],
    );

    std::fs::write(&path, "1,4,a,b,c\n1,2,3,4,1.5\n").unwrap();
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                line: 2,
                column: 5,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn label_out_of_range() {
    let (_dir, path) = write_csv("iris_test.csv", "2,4,a,b,c\n1,2,3,4,2\n1,2,3,4,3\n");
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                line: 3,
                column: 5,
                label: 3,
                classes: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(
        &err,
        "iris_test.csv",
        &["line 3, column 5", "label 3", "3 classes"],
    );
}

/// The test split alone: `iris_training.csv` is neither read nor needed
/// (`cargo xtask model evaluate --dataset iris` needed it).
#[test]
fn load_iris_test_needs_only_the_test_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("iris")).unwrap();
    std::fs::write(
        dir.path().join("iris/iris_test.csv"),
        "3,4,setosa,versicolor,virginica\n5.9,3.0,4.2,1.5,1\n6.9,3.1,5.4,2.1,2\n5.1,3.3,1.7,0.5,0\n",
    )
    .unwrap();
    // A mirror nothing listens on: the training file cannot be had.
    let data_dir = DataDir::new(dir.path()).with_mirror("http://127.0.0.1:9");
    let err = load_iris(&data_dir).unwrap_err();
    assert!(
        matches!(&err, Error::Missing { file, .. } if file == "iris/iris_training.csv"),
        "{err:?}"
    );
    let test = load_iris_test(&data_dir).unwrap();
    assert_eq!((test.len(), test.n_features, test.n_classes()), (3, 4, 3));
    assert_eq!(test.labels, [1, 2, 0]);
    assert_eq!(&test.features[..4], [5.9, 3.0, 4.2, 1.5]);
    assert!(!dir.path().join("iris/iris_training.csv").exists());
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iris_nowhere.csv");
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert_message(&err, "iris_nowhere.csv", &[]);
}

#[test]
fn fewer_or_more_rows_than_declared() {
    let (_dir, path) = write_csv("iris_training.csv", "3,4,a,b,c\n1,2,3,4,0\n1,2,3,4,1\n");
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RowCount {
                declared: 3,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_message(&err, "iris_training.csv", &["declares 3 rows", "has 2"]);

    std::fs::write(&path, "1,4,a,b,c\n1,2,3,4,0\n1,2,3,4,1\n").unwrap();
    let err = read_iris_csv(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RowCount {
                declared: 1,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_header() {
    let cases = [
        ("", "empty"),
        (
            "sepal_length,sepal_width,label\n",
            "\"sepal_length\" (column 1) is not a row count",
        ),
        (
            "120,four,setosa\n",
            "\"four\" (column 2) is not a feature count",
        ),
        ("120\n", "\"\" (column 2) is not a feature count"),
        ("120,4\n", "no class names"),
    ];
    for (content, detail) in cases {
        let (_dir, path) = write_csv("iris_training.csv", content);
        let err = read_iris_csv(&path).unwrap_err();
        assert!(matches!(err, Error::Header { .. }), "{err:?}");
        assert_message(&err, "iris_training.csv", &["line 1", detail]);
    }
}

#[test]
fn invalid_utf8_is_a_csv_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin.csv");
    std::fs::write(&path, b"1,1,a\n\xff,0\n").unwrap();
    let err = read_iris_csv(&path).unwrap_err();
    assert!(matches!(err, Error::Csv { .. }), "{err:?}");
    assert_message(&err, "bin.csv", &["line 2"]);
}

proptest! {
    /// Whatever f64 is written (Rust's shortest round-trip form), the same
    /// f64 is read back, and a centred split has zero column means.
    #[test]
    fn values_round_trip(
        rows in prop::collection::vec((prop::collection::vec(-1e6f64..1e6, 3), 0usize..4), 1..20)
    ) {
        let mut csv = format!("{},3,a,b,c,d\n", rows.len());
        for (x, label) in &rows {
            csv += &format!("{},{},{},{label}\n", x[0], x[1], x[2]);
        }
        let (_dir, path) = write_csv("p.csv", &csv);
        let split = read_iris_csv(&path).unwrap();
        let expected: Vec<f64> = rows.iter().flat_map(|(x, _)| x.clone()).collect();
        prop_assert_eq!(&split.features, &expected);
        prop_assert_eq!(&split.labels, &rows.iter().map(|r| r.1).collect::<Vec<_>>());
        for m in split.centred().column_means() {
            prop_assert!(m.abs() <= 1e-9, "mean {}", m);
        }
    }
}

#[test]
fn non_finite_field() {
    for bad in ["nan", "inf", "-inf", "NaN"] {
        let (_dir, path) = write_csv(
            "iris_training.csv",
            &format!("2,4,a,b,c\n1,2,3,4,0\n1,{bad},3,4,1\n"),
        );
        let err = read_iris_csv(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Parse {
                    line: 3,
                    column: 2,
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert_message(
            &err,
            "iris_training.csv",
            &["line 3, column 2", "is not a finite number"],
        );
    }
}
