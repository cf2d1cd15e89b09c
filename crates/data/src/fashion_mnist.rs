//! Fashion-MNIST, as Keras' `tf.keras.datasets.fashion_mnist.load_data()`
//! provides it: Zalando's drop-in replacement for MNIST, 28 × 28 greyscale
//! images of clothing in 10 classes ([`CLASS_NAMES`]), in the same IDX
//! format, shapes and file names as [MNIST](crate::mnist).
//!
//! The files are looked for, in order:
//!
//! 1. `fashion-mnist/` in the data directory ([`DataDir`]);
//! 2. [`DEBIAN_DIR`], `/usr/share/datasets/fashion-mnist`, where Debian's
//!    `dataset-fashion-mnist` package (`apt-get install dataset-fashion-mnist`)
//!    installs the four `.gz` files under the same names;
//! 3. a download from Zalando's canonical location,
//!    `http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/`, into
//!    `fashion-mnist/` in the data directory, checked against the sha256 in
//!    the [manifest](crate::manifest::MANIFEST).
//!
//! Debian's files hold the same data as Zalando's but are not the same bytes:
//! the package re-wrote the gzip headers (time stamp, no file name), so their
//! sha256 differs from the manifest's. Like files already in the data
//! directory, they are used as they are, checked only by parsing.
//!
//! ```no_run
//! use hebb_data::{DataDir, fashion_mnist};
//!
//! let data = fashion_mnist::load_data(&DataDir::resolve(None))?;
//! assert_eq!(data.x_train.shape(), &[60000, 28, 28]);
//! let first = usize::from(data.y_train.data()[0]);
//! assert_eq!(fashion_mnist::CLASS_NAMES[first], "Ankle boot");
//! # Ok::<(), hebb_data::Error>(())
//! ```

use std::path::{Path, PathBuf};

use crate::idx::IdxArray;
use crate::mnist::{FILES, Mnist, read_split};
use crate::{DataDir, Result};

/// The subdirectory of the data directory holding Fashion-MNIST's files.
pub const SUBDIR: &str = "fashion-mnist";

/// Where Debian's `dataset-fashion-mnist` package installs the four files
/// (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
/// `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`).
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The class names, by label (Zalando's README; Keras' documentation).
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads Fashion-MNIST: each file from the data directory, else from
/// [`DEBIAN_DIR`], else downloaded into the data directory (see the
/// [module docs](self)); then read and checked as by
/// [`Mnist::from_files`].
///
/// # Errors
/// Those of [`DataDir::file_also_in`] (a file found nowhere that cannot be
/// downloaded: [`Error::Missing`](crate::Error::Missing) names the file, the
/// URL, the data directory and [`DEBIAN_DIR`], and says that Debian's
/// `dataset-fashion-mnist` package installs the files there) and of
/// [`read_split`].
pub fn load_data(dir: &DataDir) -> Result<Mnist> {
    load_data_also_in(dir, &[Path::new(DEBIAN_DIR)])
}

/// [`load_data`] with other directories than [`DEBIAN_DIR`] to look in after
/// the data directory and before downloading (none: `&[]`).
///
/// # Errors
/// As [`load_data`]; the error names Debian's package when `also_in` holds
/// [`DEBIAN_DIR`].
pub fn load_data_also_in(dir: &DataDir, also_in: &[&Path]) -> Result<Mnist> {
    // One file after the other: a file found nowhere stops before the next.
    let [a, b, c, d] = FILES;
    Mnist::from_files(
        &find(dir, a, also_in)?,
        &find(dir, b, also_in)?,
        &find(dir, c, also_in)?,
        &find(dir, d, also_in)?,
    )
}

/// The test split only, `(x_test [10000, 28, 28], y_test [10000])`, found as
/// by [`load_data`]: the training files are neither read nor needed (for
/// evaluating a trained model).
///
/// # Errors
/// As [`load_data`], for the two test files.
pub fn load_test(dir: &DataDir) -> Result<(IdxArray, IdxArray)> {
    load_test_also_in(dir, &[Path::new(DEBIAN_DIR)])
}

/// [`load_test`] with other directories than [`DEBIAN_DIR`] to look in, as
/// [`load_data_also_in`].
///
/// # Errors
/// As [`load_data_also_in`], for the two test files.
pub fn load_test_also_in(dir: &DataDir, also_in: &[&Path]) -> Result<(IdxArray, IdxArray)> {
    let [_, _, images, labels] = FILES;
    read_split(&find(dir, images, also_in)?, &find(dir, labels, also_in)?)
}

/// The path of Fashion-MNIST's file `name` (see [`DataDir::file_also_in`]).
fn find(dir: &DataDir, name: &str, also_in: &[&Path]) -> Result<PathBuf> {
    dir.file_also_in(&format!("{SUBDIR}/{name}"), also_in)
}
