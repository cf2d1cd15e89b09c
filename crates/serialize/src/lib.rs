//! # hebb-serialize
//!
//! On-disk formats for hebb: named `f32` tensors in the
//! [safetensors](https://huggingface.co/docs/safetensors) format (what
//! `Sequential::save_weights` writes and `load_weights` reads, and the
//! tensors of a whole saved model), and the HDF5 subset of Keras files,
//! written atomically and read with every size checked.
//!
//! - [`save`]: `(name, tensor)` pairs and an optional string metadata map to
//!   a file, through a temporary file in the same directory that is synced
//!   and then renamed over the target, so an error or a crash mid-write
//!   leaves any old file intact. `overwrite = false` refuses to replace a
//!   file ([`Error::AlreadyExists`]).
//! - [`load`]: the tensors (in file order, which for files written by
//!   [`save`] is sorted by name) and the metadata, as a [`Loaded`]. Sizes,
//!   header, offsets, shapes and dtypes (`F32` only) are all checked before
//!   any tensor is allocated.
//!
//! - [`hdf5`]: the part of HDF5 that Keras model files (`.h5`, and the
//!   weights inside `.keras`) use, read and written in pure Rust with the
//!   same guarantees.
//! - [`write_atomic`] and [`read_bounded`]: the atomic write and the
//!   size-checked read the formats above use, for other file formats.
//!
//! Errors are [`Error`] values naming the file; nothing here panics on bad
//! input, whether another format, a truncated file or flipped bytes.
//!
//! ```
//! use std::collections::HashMap;
//! use hebb_serialize::{load, save};
//! use hebb_tensor::Tensor;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("weights.safetensors");
//! let kernel = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.25], &[2, 2])?;
//! let bias = Tensor::zeros(&[2]);
//! let metadata = HashMap::from([("format".to_string(), "example".to_string())]);
//! save(&path, &[("dense/kernel", &kernel), ("dense/bias", &bias)], Some(metadata), false)?;
//!
//! // Refuses to replace the file unless asked to.
//! assert!(matches!(
//!     save(&path, &[("dense/bias", &bias)], None, false),
//!     Err(hebb_serialize::Error::AlreadyExists { .. })
//! ));
//!
//! let loaded = load(&path)?;
//! assert_eq!(loaded.metadata["format"], "example");
//! let names: Vec<&str> = loaded.tensors.iter().map(|(n, _)| n.as_str()).collect();
//! assert_eq!(names, ["dense/bias", "dense/kernel"]); // sorted by name
//! assert_eq!(loaded.get("dense/kernel"), Some(&kernel));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod atomic;
mod bounded;
mod error;
pub mod hdf5;
mod tensors;

pub use atomic::write_atomic;
pub use bounded::read_bounded;
pub use error::{Error, Result};
pub use tensors::{Loaded, MAX_FILE_BYTES, load, load_with_limit, parse, save};
