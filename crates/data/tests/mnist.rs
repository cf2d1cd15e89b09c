//! MNIST and Fashion-MNIST: the real MNIST files (from the data directory of
//! [`DataDir::resolve`], never downloaded), and small generated data sets laid out as a data
//! directory, for the pair checks and Fashion-MNIST's lookup order.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use hebb_data::mnist::{self, FILES};
use hebb_data::{DataDir, Error, Mnist, fashion_mnist};

fn idx_gz(shape: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, shape.len() as u8];
    for d in shape {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(&bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes a small MNIST-format data set (`n_train` and `n_test` 2 × 3
/// images, pixel `i` of image `k` = `k + i`, label `k % 10`) into `dir`.
fn write_small_set(dir: &Path, n_train: u32, n_test: u32, salt: u8) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, name) in FILES.iter().enumerate() {
        let n = if i < 2 { n_train } else { n_test };
        let bytes = if i % 2 == 0 {
            let pixels: Vec<u8> = (0..n * 6)
                .map(|p| ((p / 6 + p % 6) as u8).wrapping_add(salt))
                .collect();
            idx_gz(&[n, 2, 3], &pixels)
        } else {
            idx_gz(&[n], &(0..n).map(|k| (k % 10) as u8).collect::<Vec<_>>())
        };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn assert_small_set(data: &Mnist, n_train: usize, n_test: usize, salt: u8) {
    assert_eq!(data.x_train.shape(), &[n_train, 2, 3]);
    assert_eq!(data.y_train.shape(), &[n_train]);
    assert_eq!(data.x_test.shape(), &[n_test, 2, 3]);
    assert_eq!(data.y_test.shape(), &[n_test]);
    assert_eq!(
        data.x_train.item(1).unwrap(),
        [1, 2, 3, 4, 5, 6].map(|p: u8| p.wrapping_add(salt))
    );
    assert_eq!(data.y_test.data()[..3], [0, 1, 2]);
}

// ---- the real MNIST files ----

/// The directory holding the real files, as `cargo xtask` finds it
/// ([`DataDir::resolve`]: `$HEBB_DATA_DIR`, else `../shared/datasets` beside
/// the checkout, else the download cache).
fn real_data_dir() -> PathBuf {
    DataDir::resolve(None).root().to_path_buf()
}

/// MNIST, read once for all tests; `None` (and the tests skip) where the
/// files are not present, so nothing is downloaded.
fn real_mnist() -> Option<&'static Mnist> {
    static DATA: OnceLock<Option<Mnist>> = OnceLock::new();
    DATA.get_or_init(|| {
        let root = real_data_dir();
        if FILES.iter().any(|f| !root.join("mnist").join(f).is_file()) {
            eprintln!("skipping: MNIST is not in {}", root.display());
            return None;
        }
        Some(mnist::load_data(&DataDir::new(root)).unwrap())
    })
    .as_ref()
}

#[test]
fn real_mnist_shapes_and_first_labels() {
    let Some(data) = real_mnist() else { return };
    assert_eq!(data.x_train.shape(), &[60000, 28, 28]);
    assert_eq!(data.y_train.shape(), &[60000]);
    assert_eq!(data.x_test.shape(), &[10000, 28, 28]);
    assert_eq!(data.y_test.shape(), &[10000]);
    assert_eq!(data.y_test.data()[..5], [7, 2, 1, 0, 4]);
    assert_eq!(data.y_train.data()[0], 5);
    assert_eq!(data.y_train.data()[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
}

#[test]
fn real_mnist_values() {
    let Some(data) = real_mnist() else { return };
    // train_x.min(), train_x.max() == (0, 255); train_y.min(), .max() == (0, 9)
    for x in [&data.x_train, &data.x_test] {
        assert_eq!(x.data().iter().min(), Some(&0));
        assert_eq!(x.data().iter().max(), Some(&255));
    }
    for y in [&data.y_train, &data.y_test] {
        assert_eq!(
            (y.data().iter().min(), y.data().iter().max()),
            (Some(&0), Some(&9))
        );
    }
    // Pixel sums (computed independently with Python's gzip module).
    let sum = |s: &[u8]| s.iter().map(|&p| u64::from(p)).sum::<u64>();
    assert_eq!(sum(data.x_train.item(0).unwrap()), 27525);
    assert_eq!(sum(data.x_test.item(0).unwrap()), 18454);
    assert_eq!(sum(data.x_test.data()), 264_923_200);
    // The training set's class counts.
    let mut counts = [0usize; 10];
    for &label in data.y_train.data() {
        counts[usize::from(label)] += 1;
    }
    assert_eq!(
        counts,
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
}

#[test]
fn real_mnist_scaled_like_the_lecture() {
    let Some(data) = real_mnist() else { return };
    // X_test = tf.cast(test_x / 255.0, tf.float32)
    let x = data.x_test.to_f32_divided(255.0).unwrap();
    assert_eq!(x.shape(), &[10000, 28, 28]);
    let first: Vec<f32> = x.to_vec()[..784].to_vec();
    let raw = data.x_test.item(0).unwrap();
    for (v, &p) in first.iter().zip(raw) {
        assert_eq!(*v, (f64::from(p) / 255.0) as f32);
    }
    assert_eq!(first.iter().cloned().fold(f32::MIN, f32::max), 1.0);
}

// ---- generated data sets: the pair checks ----

#[test]
fn load_data_reads_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_small_set(&dir.path().join("mnist"), 12, 5, 0);
    let data = mnist::load_data(&DataDir::new(dir.path())).unwrap();
    assert_small_set(&data, 12, 5, 0);
}

/// Writes only the two test files of a small set into `dir`.
fn write_test_files_only(dir: &Path, n_test: u32, salt: u8) {
    write_small_set(dir, 1, n_test, salt);
    for name in &FILES[..2] {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
}

#[test]
fn load_test_needs_only_the_test_files() {
    let dir = tempfile::tempdir().unwrap();
    write_test_files_only(&dir.path().join("mnist"), 5, 0);
    // A mirror nothing listens on: the training files cannot be had.
    let data_dir = DataDir::new(dir.path()).with_mirror("http://127.0.0.1:9");
    let err = mnist::load_data(&data_dir).unwrap_err();
    assert!(
        matches!(&err, Error::Missing { file, .. } if file == "mnist/train-images-idx3-ubyte.gz"),
        "{err:?}"
    );
    let (x_test, y_test) = mnist::load_test(&data_dir).unwrap();
    assert_eq!((x_test.shape(), y_test.shape()), (&[5, 2, 3][..], &[5][..]));
    assert_eq!(x_test.item(1).unwrap(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(y_test.data(), [0, 1, 2, 3, 4]);

    write_test_files_only(&dir.path().join("fashion-mnist"), 4, 7);
    let system = tempfile::tempdir().unwrap();
    assert!(fashion_mnist::load_data_also_in(&data_dir, &[system.path()]).is_err());
    let (x_test, y_test) = fashion_mnist::load_test_also_in(&data_dir, &[system.path()]).unwrap();
    assert_eq!((x_test.shape(), y_test.shape()), (&[4, 2, 3][..], &[4][..]));
    assert_eq!(x_test.item(0).unwrap(), [7, 8, 9, 10, 11, 12]);
    // Found in the system directory too, as by load_data.
    std::fs::remove_dir_all(dir.path().join("fashion-mnist")).unwrap();
    write_test_files_only(system.path(), 3, 2);
    let (x_test, _) = fashion_mnist::load_test_also_in(&data_dir, &[system.path()]).unwrap();
    assert_eq!(x_test.shape(), &[3, 2, 3]);
}

#[test]
fn label_count_must_match_image_count() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("train-images-idx3-ubyte.gz");
    let labels = dir.path().join("train-labels-idx1-ubyte.gz");
    std::fs::write(&images, idx_gz(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(&labels, idx_gz(&[4], &[1, 2, 3, 4])).unwrap();
    let err = mnist::read_split(&images, &labels).unwrap_err();
    assert!(
        matches!(
            err,
            Error::CountMismatch {
                images: 3,
                labels: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} holds 3 images but {} holds 4 labels",
            images.display(),
            labels.display()
        )
    );
}

#[test]
fn labels_must_be_below_10() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("x.gz");
    let labels = dir.path().join("y.gz");
    std::fs::write(&images, idx_gz(&[4, 1, 1], &[0; 4])).unwrap();
    std::fs::write(&labels, idx_gz(&[4], &[9, 0, 10, 255])).unwrap();
    let err = mnist::read_split(&images, &labels).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdxLabelOutOfRange {
                index: 2,
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: label 10 at index 2 is out of range for 10 classes (0..10)",
            labels.display()
        )
    );
}

#[test]
fn images_must_be_rank_3_and_labels_rank_1() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("x.gz");
    let labels = dir.path().join("y.gz");
    std::fs::write(&images, idx_gz(&[4, 4], &[0; 16])).unwrap();
    std::fs::write(&labels, idx_gz(&[4], &[0; 4])).unwrap();
    let err = mnist::read_split(&images, &labels).unwrap_err();
    assert!(
        matches!(&err, Error::IdxRank { expected: 3, shape, .. } if shape == &[4, 4]),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&images.display().to_string()));

    std::fs::write(&images, idx_gz(&[4, 1, 1], &[0; 4])).unwrap();
    std::fs::write(&labels, idx_gz(&[4, 1], &[0; 4])).unwrap();
    let err = mnist::read_split(&images, &labels).unwrap_err();
    assert!(matches!(err, Error::IdxRank { expected: 1, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("expected labels [N] of rank 1, found shape [4, 1]")
    );
}

#[test]
fn a_bad_file_in_a_data_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mnist_dir = dir.path().join("mnist");
    write_small_set(&mnist_dir, 3, 2, 0);
    let bad = mnist_dir.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n").unwrap();
    let err = mnist::load_data(&DataDir::new(dir.path())).unwrap_err();
    assert!(matches!(err, Error::IdxMagic { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&bad.display().to_string()),
        "{err}"
    );
}

// ---- Fashion-MNIST ----

#[test]
fn fashion_mnist_reads_the_data_directory_layout() {
    let dir = tempfile::tempdir().unwrap();
    write_small_set(&dir.path().join("fashion-mnist"), 7, 4, 3);
    let data = fashion_mnist::load_data(&DataDir::new(dir.path())).unwrap();
    assert_small_set(&data, 7, 4, 3);
    assert_eq!(fashion_mnist::CLASS_NAMES[9], "Ankle boot");
}

#[test]
fn fashion_mnist_data_directory_comes_before_the_system_directory() {
    let data_dir = tempfile::tempdir().unwrap();
    let system = tempfile::tempdir().unwrap();
    write_small_set(&data_dir.path().join("fashion-mnist"), 7, 4, 1);
    write_small_set(system.path(), 5, 3, 2);
    let dir = DataDir::new(data_dir.path());
    let data = fashion_mnist::load_data_also_in(&dir, &[system.path()]).unwrap();
    assert_small_set(&data, 7, 4, 1);

    // Where the data directory lacks a file, the system directory's is used,
    // file by file.
    for name in &FILES[2..] {
        std::fs::remove_file(data_dir.path().join("fashion-mnist").join(name)).unwrap();
    }
    let data = fashion_mnist::load_data_also_in(&dir, &[system.path()]).unwrap();
    assert_eq!((data.x_train.len(), data.x_test.len()), (7, 3));

    std::fs::remove_dir_all(data_dir.path().join("fashion-mnist")).unwrap();
    let data = fashion_mnist::load_data_also_in(&dir, &[system.path()]).unwrap();
    assert_small_set(&data, 5, 3, 2);
}

#[test]
fn fashion_mnist_found_nowhere_names_every_place() {
    let data_dir = tempfile::tempdir().unwrap();
    let system = tempfile::tempdir().unwrap();
    // A mirror on a port nothing listens on: the download cannot connect.
    let dir = DataDir::new(data_dir.path()).with_mirror("http://127.0.0.1:9");
    let err = fashion_mnist::load_data_also_in(&dir, &[system.path()]).unwrap_err();
    let Error::Missing {
        file,
        also_searched,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(file, "fashion-mnist/train-images-idx3-ubyte.gz");
    assert_eq!(also_searched, &[system.path().to_path_buf()]);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "not found in {} nor in {} and could not be downloaded from http://127.0.0.1:9/fashion-mnist/train-images-idx3-ubyte.gz",
            data_dir.path().display(),
            system.path().display()
        )),
        "{msg}"
    );
    assert!(msg.contains("HEBB_DATA_DIR"), "{msg}");
}

#[test]
fn fashion_mnist_missing_names_debians_package() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data_dir.path()).with_mirror("http://127.0.0.1:9");
    // Searching elsewhere than Debian's directory: no word of the package.
    let system = tempfile::tempdir().unwrap();
    let err = fashion_mnist::load_data_also_in(&dir, &[system.path()]).unwrap_err();
    assert!(matches!(&err, Error::Missing { .. }), "{err:?}");
    assert!(!err.to_string().contains("dataset-fashion-mnist"), "{err}");

    let debian = Path::new(fashion_mnist::DEBIAN_DIR);
    if FILES.iter().any(|f| debian.join(f).is_file()) {
        eprintln!("skipping the rest: Debian's dataset-fashion-mnist is installed here");
        return;
    }
    for err in [
        fashion_mnist::load_data(&dir).unwrap_err(),
        fashion_mnist::load_test(&dir).unwrap_err(),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("nor in {}", fashion_mnist::DEBIAN_DIR)),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "; on Debian, `apt-get install dataset-fashion-mnist` installs Fashion-MNIST \
                 in /usr/share/datasets/fashion-mnist, where hebb looks"
            ),
            "{msg}"
        );
    }
}

#[test]
fn fashion_mnist_downloads_are_checked_against_the_manifest() {
    // A mirror serving a file that is not Zalando's: the sha256 check fails
    // and nothing is kept.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok(request) = server.recv() {
            let url = request.url().to_string();
            let _ = request.respond(tiny_http::Response::from_data(idx_gz(&[1], &[0])));
            return url;
        }
        String::new()
    });
    let data_dir = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data_dir.path()).with_mirror(format!("http://127.0.0.1:{port}"));
    let err = fashion_mnist::load_data_also_in(&dir, &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Checksum { expected, .. }
            if expected == "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "{err:?}"
    );
    assert_eq!(
        handle.join().unwrap(),
        "/fashion-mnist/train-images-idx3-ubyte.gz"
    );
    assert!(
        !data_dir
            .path()
            .join("fashion-mnist/train-images-idx3-ubyte.gz")
            .exists()
    );
}

#[test]
fn fashion_mnist_manifest_entries() {
    for name in FILES {
        let entry = hebb_data::DatasetFile::find(&format!("fashion-mnist/{name}")).unwrap();
        assert_eq!(
            entry.url,
            format!("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{name}")
        );
        assert_eq!(entry.sha256().map(str::len), Some(64));
    }
    assert_eq!(
        fashion_mnist::DEBIAN_DIR,
        "/usr/share/datasets/fashion-mnist"
    );
}

/// The real Fashion-MNIST, where it is present: in the data directory
/// (`$HEBB_DATA_DIR` or `../shared/datasets`) or installed by Debian's
/// `dataset-fashion-mnist` package. Skipped elsewhere (no download).
#[test]
fn real_fashion_mnist_where_present() {
    let root = real_data_dir();
    let present = |dir: &Path| FILES.iter().all(|f| dir.join(f).is_file());
    if !present(&root.join("fashion-mnist")) && !present(Path::new(fashion_mnist::DEBIAN_DIR)) {
        eprintln!(
            "skipping: Fashion-MNIST is neither in {} nor in {}",
            root.join("fashion-mnist").display(),
            fashion_mnist::DEBIAN_DIR
        );
        return;
    }
    let data = fashion_mnist::load_data(&DataDir::new(root)).unwrap();
    assert_eq!(data.x_train.shape(), &[60000, 28, 28]);
    assert_eq!(data.y_train.shape(), &[60000]);
    assert_eq!(data.x_test.shape(), &[10000, 28, 28]);
    assert_eq!(data.y_test.shape(), &[10000]);
    assert_eq!(data.y_train.data()[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(data.y_test.data()[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    let sum = |s: &[u8]| s.iter().map(|&p| u64::from(p)).sum::<u64>();
    assert_eq!(sum(data.x_train.item(0).unwrap()), 76247);
    assert_eq!(sum(data.x_test.item(0).unwrap()), 33456);
    // Each class has 6000 training and 1000 test examples.
    for (y, per_class) in [(&data.y_train, 6000), (&data.y_test, 1000)] {
        let mut counts = [0usize; 10];
        for &label in y.data() {
            counts[usize::from(label)] += 1;
        }
        assert_eq!(counts, [per_class; 10]);
    }
}
