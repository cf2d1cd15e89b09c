//! The error type of hebb-serialize.

use std::path::PathBuf;

/// Errors from writing or reading a tensor file. Every variant names the
/// file, so that a message such as
/// `model.safetensors: tensor dense/kernel has dtype F64; hebb reads F32 tensors only`
/// is enough to find the problem.
///
/// I/O and format errors keep the system's or the safetensors crate's
/// message as text, so the type is `Clone` and `PartialEq` (and can sit
/// inside other crates' error enums that are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// [`save`](crate::save) with `overwrite = false` found the file already there.
    #[error("{}: the file already exists; pass overwrite = true to replace it", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// A path to write to names no file: it is empty, ends with a directory
    /// separator (`/tmp/`, `models/`), or is a directory. Nothing is written.
    #[error("{path:?} names no file ({reason}); give the file's name, e.g. models/model.keras")]
    NoFileName {
        /// The path as given.
        path: PathBuf,
        /// Why it names no file: `the path is empty`, `it ends with a
        /// directory separator`, `it is a directory`.
        reason: String,
    },
    /// Opening, reading, writing, syncing or renaming failed.
    #[error("{}: {detail}", path.display())]
    Io {
        /// The file (for a failed write: the target, not the temporary file).
        path: PathBuf,
        /// The system's message.
        detail: String,
    },
    /// The file is larger than the limit [`load`](crate::load) accepts.
    #[error("{}: the file is {size} bytes, more than the limit of {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not a valid safetensors file (another format, truncated,
    /// corrupted): a header that is too short, not JSON, or whose offsets,
    /// shapes and data lengths disagree.
    #[error("{}: not a valid safetensors file: {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (the safetensors crate's message, or ours).
        detail: String,
    },
    /// A tensor of another element type than `F32`.
    #[error("{}: tensor {name} has dtype {dtype}; hebb reads F32 tensors only", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Its dtype as safetensors spells it (`F64`, `I32`, `BF16`, ...).
        dtype: String,
    },
    /// A tensor name that cannot be saved: used twice, or the reserved
    /// `__metadata__`.
    #[error("{}: cannot save tensor {name:?}: {detail}", path.display())]
    Name {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Why not.
        detail: String,
    },
    /// The bytes are not a readable HDF5 file (another format, truncated,
    /// corrupted): `offset` is where in the file the problem was found.
    #[error("{}: not a readable HDF5 file: at byte {offset}: {detail}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The byte offset of the structure that is wrong.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A valid HDF5 file that uses a feature hebb does not read (chunked or
    /// compressed datasets, dense link storage, ...; see [`hdf5`](crate::hdf5)),
    /// or a structure too large for the limits.
    #[error("{}: HDF5 feature not supported by hebb: {detail}", path.display())]
    Hdf5Unsupported {
        /// The file.
        path: PathBuf,
        /// Which feature, and where.
        detail: String,
    },
    /// An in-memory HDF5 value that cannot be built or converted (values
    /// that do not fill the shape, an invalid path, a dataset that is not
    /// the type asked for).
    #[error("HDF5 value: {detail}")]
    Hdf5Value {
        /// What is wrong.
        detail: String,
    },
}

/// `Result` with hebb-serialize's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
