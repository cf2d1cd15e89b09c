//! The xtask binary as a user runs it: into a closed pipe, on a data
//! directory with a folder where a file should be, on a test split alone,
//! and finding `../shared/datasets` beside the checkout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use flate2::Compression;
use flate2::write::GzEncoder;
use hebb_layers::Activation;
use hebb_models::sequential::Sequential;
use hebb_models::sequential::layers::{Dense, Flatten};

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// The checkout this test was built in.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `output` is that of a program killed by SIGPIPE (or, where the program
/// was done before the pipe closed, of one that exited 0), with nothing on
/// standard error.
#[cfg(unix)]
fn assert_ended_quietly(output: &Output, pipe_closed_first: bool) {
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13;
    let stderr = text(&output.stderr);
    assert!(stderr.is_empty(), "standard error: {stderr}");
    if pipe_closed_first {
        assert_eq!(output.status.signal(), Some(SIGPIPE), "{:?}", output.status);
    } else {
        assert!(
            output.status.success() || output.status.signal() == Some(SIGPIPE),
            "{:?}",
            output.status
        );
    }
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_program_quietly() {
    let out = tempfile::tempdir().unwrap();
    let args = ["reproduce", "ch12", "--section", "12.3", "--out"];
    // The reader is gone before the program starts, so its first line meets
    // a closed pipe whatever the machine's load.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = xtask()
        .args(args)
        .arg(out.path())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_ended_quietly(&child.wait_with_output().unwrap(), true);

    // `| head -2`: two lines read, then the pipe closes.
    let mut child = xtask()
        .args(args)
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_two: Vec<String> = lines.by_ref().take(2).map(Result::unwrap).collect();
    assert_eq!(first_two.len(), 2);
    assert!(first_two[1].starts_with("== 12.3"), "{first_two:?}");
    drop(lines);
    assert_ended_quietly(&child.wait_with_output().unwrap(), false);
}

#[test]
fn a_directory_where_a_data_file_should_be_is_named_as_such() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("iris/iris_training.csv")).unwrap();
    let output = xtask()
        .args(["reproduce", "ch12", "--section", "12.1", "--data-dir"])
        .arg(data.path())
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let expected = format!(
        "{}: is a directory, not the data file iris/iris_training.csv",
        data.path().join("iris/iris_training.csv").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("not found"), "{stderr}");
}

/// `model` compiled as a classifier (adam, sparse categorical cross-entropy
/// and accuracy) and saved in hebb's format in `dir`; the file's path.
fn compiled_and_saved(mut model: Sequential, dir: &Path) -> PathBuf {
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )
        .unwrap();
    let path = dir.join("m.safetensors");
    model.save(&path, false).unwrap();
    path
}

/// A gzipped IDX file of unsigned bytes.
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

#[test]
fn model_evaluate_needs_only_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model.add(Flatten::new().input_shape(&[28, 28])).unwrap();
    model
        .add(Dense::new(10).activation(Activation::Softmax))
        .unwrap();
    let path = compiled_and_saved(model, dir.path());

    // Six test images and labels; no training files, and none to download.
    let data = dir.path().join("data");
    for sub in ["mnist", "fashion-mnist"] {
        std::fs::create_dir_all(data.join(sub)).unwrap();
        let pixels: Vec<u8> = (0..6 * 784).map(|i| (i % 251) as u8).collect();
        let images = idx_gz(&[6, 28, 28], &pixels);
        let labels = idx_gz(&[6], &[7, 2, 1, 0, 4, 1]);
        std::fs::write(data.join(sub).join("t10k-images-idx3-ubyte.gz"), images).unwrap();
        std::fs::write(data.join(sub).join("t10k-labels-idx1-ubyte.gz"), labels).unwrap();
    }
    for dataset in ["mnist", "fashion-mnist"] {
        let output = xtask()
            .args(["model", "evaluate"])
            .arg(&path)
            .args(["--dataset", dataset, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
        assert!(
            stdout.contains(&format!(
                "evaluate on the {dataset} test split (6 samples):"
            )),
            "{stdout}"
        );
        assert!(stdout.contains("(labels: [7, 2, 1, 0, 4])"), "{stdout}");
    }
}

/// `model evaluate --dataset iris` reads `iris_test.csv` alone, as the
/// README says: a directory where `iris_training.csv` would be (which
/// `load_iris` reports, and which rules out a download) does not matter.
#[test]
fn model_evaluate_on_iris_needs_only_the_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(3)
                .activation(Activation::Softmax)
                .input_shape(&[4]),
        )
        .unwrap();
    let path = compiled_and_saved(model, dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("iris/iris_training.csv")).unwrap();
    std::fs::write(
        data.join("iris/iris_test.csv"),
        "3,4,setosa,versicolor,virginica\n5.9,3.0,4.2,1.5,1\n6.9,3.1,5.4,2.1,2\n5.1,3.3,1.7,0.5,0\n",
    )
    .unwrap();
    let output = xtask()
        .args(["model", "evaluate"])
        .arg(&path)
        .args(["--dataset", "iris", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("evaluate on the iris test split (3 samples):"),
        "{stdout}"
    );
    assert!(stdout.contains("(labels: [1, 2, 0])"), "{stdout}");
}

/// `cargo xtask` without `--data-dir` and `HEBB_DATA_DIR` reads
/// `../shared/datasets` beside the checkout, as the tests do, and downloads
/// nothing into `datasets/cache`. Runs where that directory holds Iris and
/// the cache does not.
#[test]
fn without_a_data_dir_the_shared_datasets_beside_the_checkout_are_read() {
    let root = checkout();
    let shared = root.join("../shared/datasets");
    let cached = root.join("datasets/cache/iris/iris_training.csv");
    if !shared.join("iris/iris_training.csv").is_file() || cached.exists() {
        eprintln!(
            "skipped: needs {} and no {}",
            shared.join("iris/iris_training.csv").display(),
            cached.display()
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = xtask()
        .env_remove("HEBB_DATA_DIR")
        .args([
            "reproduce",
            "ch12",
            "--section",
            "12.2",
            "--iters",
            "0",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    // The lecture's first line, from the real Iris data.
    assert!(
        stdout.contains(
            "i: 0, TrainAcc:0.333333, TrainLoss: 2.066978 ,TestAcc:0.266667, TestLoss: 1.880856"
        ),
        "{stdout}"
    );
    assert!(!cached.exists(), "{} was downloaded", cached.display());
}

/// `reproduce convnet` end to end on a tiny MNIST of its own (40 training
/// and 12 test images of noise): the summary of Keras' convnet, the test
/// figures, and its four figures.
#[test]
fn reproduce_convnet_runs_the_recipe_and_draws_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    std::fs::create_dir_all(data.join("mnist")).unwrap();
    let pixels = |n: usize| -> Vec<u8> { (0..n * 784).map(|i| ((i * 7919) % 256) as u8).collect() };
    let labels = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 10) as u8).collect() };
    for (prefix, n) in [("train", 40), ("t10k", 12)] {
        let images = idx_gz(&[n as u32, 28, 28], &pixels(n));
        let classes = idx_gz(&[n as u32], &labels(n));
        std::fs::write(
            data.join(format!("mnist/{prefix}-images-idx3-ubyte.gz")),
            images,
        )
        .unwrap();
        std::fs::write(
            data.join(format!("mnist/{prefix}-labels-idx1-ubyte.gz")),
            classes,
        )
        .unwrap();
    }
    let output = xtask()
        .args([
            "reproduce",
            "convnet",
            "--epochs",
            "1",
            "--batch-size",
            "16",
        ])
        .args(["--verbose", "2", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for line in [
        "x_train shape: (40, 28, 28, 1)",
        "40 train samples",
        "12 test samples",
        "34,826",
        "fit: batch_size=16, epochs=1, validation_split=0.1",
        "Test loss: ",
        "Test accuracy: ",
        "y_test[:10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    // Keras' log: one line for the one epoch (3 steps of 16 of the 36 training images).
    assert!(stdout.contains("3/3 - "), "{stdout}");
    for figure in ["history", "filters", "feature-maps", "mistakes"] {
        let path = out.join(format!("convnet-mnist-{figure}.png"));
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5_000,
            "{} is not a figure",
            path.display()
        );
        assert!(
            stdout.contains(&format!("figure: {}", path.display())),
            "{stdout}"
        );
    }
}

#[cfg(not(feature = "mpi"))]
#[test]
fn mpirun_without_the_mpi_feature_is_refused_with_the_fix() {
    // As mpirun starts each of 2 processes (Open MPI's environment).
    let output = xtask()
        .args(["reproduce", "ch13", "--section", "13.5"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("mpirun started 2 processes"), "{err}");
    assert!(
        err.contains("--features mpi") && err.contains("cargo xtask-mpi"),
        "{err}"
    );
    assert!(text(&output.stdout).is_empty());
}
