//! # hebb-data
//!
//! Data sets for hebb: a reader for TensorFlow's Iris CSV files (lecture
//! 12.1, 12.2, 12.6) that reproduces the lecture's pandas/NumPy preprocessing bit for
//! bit, a reader for the IDX files of MNIST and Fashion-MNIST (lecture 13),
//! and the data directory that finds data files, or downloads them from
//! their canonical URLs with a sha256 check.
//!
//! - [`read_iris_csv`] / [`load_iris`] ([`load_iris_test`] for the test
//!   split alone): header `N,F,class names...`, then `N`
//!   rows of `F` features and a label, into an [`IrisSplit`] with
//!   [`centred`](IrisSplit::centred), [`features_tensor`](IrisSplit::features_tensor)
//!   (`[N, F]`) and [`one_hot`](IrisSplit::one_hot) (`[N, C]`).
//! - [`read_idx`]: an IDX file (plain or gzip-compressed, unsigned bytes, 1 to
//!   4 dimensions) into an [`IdxArray`] (`shape` and bytes), with
//!   [`to_f32_divided`](IdxArray::to_f32_divided) for the lecture's
//!   `tf.cast(x / 255.0, tf.float32)`.
//! - [`mnist::load_data`] and [`fashion_mnist::load_data`]: Keras'
//!   `mnist.load_data()` / `fashion_mnist.load_data()`, an [`Mnist`] of
//!   `x_train [60000, 28, 28]`, `y_train [60000]`, `x_test [10000, 28, 28]`,
//!   `y_test [10000]`; Fashion-MNIST is also found where Debian's
//!   `dataset-fashion-mnist` package installs it
//!   ([`fashion_mnist::DEBIAN_DIR`]). [`mnist::load_test`] and
//!   [`fashion_mnist::load_test`] read the test split alone.
//! - [`MiniBatches`]: the batches of batch, stochastic and mini-batch
//!   gradient descent (lecture 13.1) as index slices, reshuffled every
//!   epoch from a seed if asked.
//! - [`DataDir`]: [`DataDir::resolve`] picks `--data-dir`, else
//!   `$HEBB_DATA_DIR`, else `../shared/datasets` beside the checkout when it
//!   holds data files, else `datasets/cache/` (the same for `cargo xtask`,
//!   the tests and the benchmarks; see [`dir`]); [`DataDir::file`] returns a
//!   file's path, downloading it first if needed (see
//!   [`manifest::MANIFEST`]).
//!
//! Errors are [`Error`] values naming the file, and for CSV the line and
//! column, for IDX the byte counts expected and found; nothing here panics
//! on bad input.
//!
//! ```
//! use hebb_data::read_iris_csv;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("iris_training.csv");
//! std::fs::write(&path, "3,2,setosa,versicolor\n1.0,2.0,0\n2.0,4.0,1\n3.0,6.0,1\n")?;
//!
//! let train = read_iris_csv(&path)?;
//! assert_eq!((train.len(), train.n_features), (3, 2));
//! assert_eq!(train.labels, [0, 1, 1]);
//! assert_eq!(train.column_means(), [2.0, 4.0]);
//!
//! // x_train = x_train - np.mean(x_train, axis=0); tf.cast(x_train, tf.float32)
//! let x = train.centred().features_tensor()?;
//! assert_eq!(x.shape(), &[3, 2]);
//! assert_eq!(x.to_vec(), [-1.0, -2.0, 0.0, 0.0, 1.0, 2.0]);
//! assert_eq!(train.one_hot()?.to_vec(), [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the real files (from the data directory [`DataDir::resolve`] finds,
//! downloaded into it on first use when missing):
//!
//! ```no_run
//! use hebb_data::{DataDir, load_iris};
//!
//! let (train, test) = load_iris(&DataDir::resolve(None))?;
//! assert_eq!((train.len(), test.len()), (120, 30));
//! # Ok::<(), hebb_data::Error>(())
//! ```

pub mod batches;
pub mod dir;
mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod iris;
pub mod manifest;
pub mod mnist;

pub use batches::{MiniBatches, Variant};
pub use dir::DataDir;
pub use error::{Error, Result};
pub use idx::{IdxArray, read_idx};
pub use iris::{IrisSplit, load_iris, load_iris_test, read_iris_csv};
pub use manifest::{Check, DatasetFile};
pub use mnist::Mnist;
