//! MNIST, as Keras' `tf.keras.datasets.mnist.load_data()` provides it
//! (lecture 13.5).
//!
//! Four IDX files ([`crate::idx`]) under `mnist/` in the data directory,
//! downloaded on first use from the mirror torchvision uses and checked
//! against their sha256 ([`crate::manifest::MANIFEST`]):
//!
//! | file | array | shape |
//! |---|---|---|
//! | `train-images-idx3-ubyte.gz` | `x_train` | `[60000, 28, 28]`, pixels `0..=255` |
//! | `train-labels-idx1-ubyte.gz` | `y_train` | `[60000]`, digits `0..=9` |
//! | `t10k-images-idx3-ubyte.gz` | `x_test` | `[10000, 28, 28]` |
//! | `t10k-labels-idx1-ubyte.gz` | `y_test` | `[10000]` |
//!
//! The lecture then scales the pixels, `tf.cast(train_x / 255.0, tf.float32)`:
//! [`IdxArray::to_f32_divided`]`(255.0)` does the same bit for bit.
//!
//! ```no_run
//! use hebb_data::{DataDir, mnist};
//!
//! let data = mnist::load_data(&DataDir::resolve(None))?;
//! assert_eq!(data.x_train.shape(), &[60000, 28, 28]);
//! assert_eq!(data.y_test.data()[..5], [7, 2, 1, 0, 4]);
//! let x_train = data.x_train.to_f32_divided(255.0)?; // [60000, 28, 28] in [0, 1]
//! # Ok::<(), hebb_data::Error>(())
//! ```

use std::path::Path;

use crate::idx::{IdxArray, read_idx};
use crate::{DataDir, Error, Result};

/// Number of classes of MNIST and Fashion-MNIST: labels are `0..10`.
pub const CLASSES: usize = 10;

/// File names of the four IDX files, in the order
/// `x_train`, `y_train`, `x_test`, `y_test`. The same names are used by
/// MNIST (under `mnist/`) and Fashion-MNIST (under `fashion-mnist/`).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The subdirectory of the data directory holding MNIST's files.
pub const SUBDIR: &str = "mnist";

/// An MNIST-format data set, as Keras' `load_data()` returns it:
/// `(x_train, y_train), (x_test, y_test)`, `uint8` arrays.
///
/// Invariants checked by the loaders: images are `[N, rows, cols]`, labels
/// `[N]` with the same `N` as their images, and every label is below
/// [`CLASSES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// Training images, `[60000, 28, 28]`, pixels `0..=255`.
    pub x_train: IdxArray,
    /// Training labels, `[60000]`, `0..=9`.
    pub y_train: IdxArray,
    /// Test images, `[10000, 28, 28]`.
    pub x_test: IdxArray,
    /// Test labels, `[10000]`.
    pub y_test: IdxArray,
}

impl Mnist {
    /// Reads and checks the four files: training images and labels, then
    /// test images and labels (each pair checked as by [`read_split`]).
    ///
    /// # Errors
    /// Those of [`read_split`].
    pub fn from_files(
        train_images: &Path,
        train_labels: &Path,
        test_images: &Path,
        test_labels: &Path,
    ) -> Result<Self> {
        let (x_train, y_train) = read_split(train_images, train_labels)?;
        let (x_test, y_test) = read_split(test_images, test_labels)?;
        Ok(Self {
            x_train,
            y_train,
            x_test,
            y_test,
        })
    }
}

/// Loads MNIST from `dir`: the four files of [`FILES`] under `mnist/`,
/// each downloaded first if missing (see [`DataDir::file`]), then read and
/// checked as by [`Mnist::from_files`].
///
/// # Errors
/// Those of [`DataDir::file`] (a missing file that cannot be downloaded, a
/// download whose sha256 differs) and of [`read_split`].
pub fn load_data(dir: &DataDir) -> Result<Mnist> {
    let [a, b, c, d] = FILES.map(|name| format!("{SUBDIR}/{name}"));
    Mnist::from_files(
        &dir.file(&a)?,
        &dir.file(&b)?,
        &dir.file(&c)?,
        &dir.file(&d)?,
    )
}

/// Loads MNIST's test split only, `(x_test [10000, 28, 28], y_test
/// [10000])`, from `dir` as [`load_data`] does: the training files are
/// neither read nor needed (for evaluating a trained model).
///
/// # Errors
/// As [`load_data`], for the two test files.
pub fn load_test(dir: &DataDir) -> Result<(IdxArray, IdxArray)> {
    let [_, _, images, labels] = FILES.map(|name| format!("{SUBDIR}/{name}"));
    read_split(&dir.file(&images)?, &dir.file(&labels)?)
}

/// Reads an image file and its label file and checks them as a pair: images
/// of rank 3 (`[N, rows, cols]`), labels of rank 1 (`[N]`) with the same
/// `N`, every label below [`CLASSES`].
///
/// # Errors
/// - those of [`read_idx`];
/// - [`Error::IdxRank`] if the images are not rank 3 or the labels not rank 1;
/// - [`Error::CountMismatch`] (naming both files and both counts) if the
///   counts differ;
/// - [`Error::IdxLabelOutOfRange`] (naming the file and the index) for a
///   label of 10 or more.
pub fn read_split(images: &Path, labels: &Path) -> Result<(IdxArray, IdxArray)> {
    let x = read_idx(images)?;
    check_rank(&x, images, "images [N, rows, cols]", 3)?;
    let y = read_idx(labels)?;
    check_rank(&y, labels, "labels [N]", 1)?;
    if x.len() != y.len() {
        return Err(Error::CountMismatch {
            images_path: images.to_path_buf(),
            images: x.len(),
            labels_path: labels.to_path_buf(),
            labels: y.len(),
        });
    }
    if let Some((index, &label)) = y
        .data()
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= CLASSES)
    {
        return Err(Error::IdxLabelOutOfRange {
            path: labels.to_path_buf(),
            index,
            label,
            classes: CLASSES,
        });
    }
    Ok((x, y))
}

fn check_rank(a: &IdxArray, path: &Path, role: &'static str, expected: usize) -> Result<()> {
    if a.rank() == expected {
        return Ok(());
    }
    Err(Error::IdxRank {
        path: path.to_path_buf(),
        role,
        expected,
        shape: a.shape().to_vec(),
    })
}
