//! The error type of hebb-tensor.

use crate::Device;

/// Errors returned by tensor constructors and ops.
///
/// Every variant names the op that failed and the shapes (or values) involved,
/// so that a message such as
/// `matmul: shapes [120, 4] and [3, 16] are incompatible (inner dimensions 4 and 3 differ)`
/// is enough to find the bug.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two operands have shapes the op cannot combine.
    #[error("{op}: shapes {lhs:?} and {rhs:?} are incompatible{}", detail_suffix(.detail))]
    ShapeMismatch {
        /// The op, e.g. `"add"` or `"matmul"`.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
        /// What exactly does not fit (may be empty).
        detail: String,
    },
    /// A buffer's length does not match the element count of the requested shape.
    #[error("{op}: {len} elements cannot have shape {shape:?} ({})", count(shape))]
    ElementCount {
        /// The op, e.g. `"from_vec"` or `"reshape"`.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// The number of elements supplied.
        len: usize,
    },
    /// An op needs a tensor of a particular rank.
    #[error("{op}: expected a tensor of rank {expected}, got shape {shape:?}")]
    Rank {
        /// The op.
        op: &'static str,
        /// The rank the op needs.
        expected: usize,
        /// The shape it got.
        shape: Vec<usize>,
    },
    /// An axis argument is outside `0..rank`.
    #[error("{op}: axis {axis} is out of range for shape {shape:?}")]
    Axis {
        /// The op.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// An index (a class label, a row) is out of range.
    #[error("{op}: index {index} is out of range 0..{bound}")]
    Index {
        /// The op.
        op: &'static str,
        /// The offending index.
        index: usize,
        /// The exclusive upper bound.
        bound: usize,
    },
    /// An op was asked to reduce an empty axis where the result is undefined (max, argmax).
    #[error("{op}: cannot reduce an empty axis of shape {shape:?}")]
    EmptyReduction {
        /// The op.
        op: &'static str,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// Operands live on different devices.
    #[error("{op}: operands are on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        /// The op.
        op: &'static str,
        /// Device of the left operand.
        lhs: Device,
        /// Device of the right operand.
        rhs: Device,
    },
    /// A CUDA device was asked for and is not usable: the driver, cuBLAS or
    /// NVRTC did not load, the ordinal is beyond the device count, or the
    /// build lacks the `cuda` feature.
    #[error("no CUDA device: {reason}")]
    NoCudaDevice {
        /// What is missing.
        reason: String,
    },
    /// The CUDA driver, cuBLAS or NVRTC returned an error inside an op
    /// (out of device memory, a kernel that failed to compile or launch).
    #[error("{op} on the GPU: {message}")]
    Cuda {
        /// The op.
        op: &'static str,
        /// The driver's message.
        message: String,
    },
    /// Host memory for a tensor's elements could not be had: more bytes
    /// than a process can address (`isize::MAX`), or the allocator refused
    /// them (out of memory). Checked before anything is written, so the
    /// process goes on (Rust's `vec!` would abort it).
    #[error("{op}: cannot allocate {bytes} bytes ({}) for a tensor of shape {shape:?}: {reason}", human_bytes(*.bytes))]
    Allocation {
        /// The constructor, e.g. `"try_full"`.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// The bytes its `f32` elements need.
        bytes: u128,
        /// Why: `more than a process can address` or `out of memory`.
        reason: &'static str,
    },
    /// A scalar argument is invalid (e.g. `clip` with `min > max`).
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// The op.
        op: &'static str,
        /// What is wrong with the argument.
        reason: String,
    },
}

fn count(shape: &[usize]) -> String {
    match crate::tensor::element_count(shape) {
        Some(n) => format!("{n} elements"),
        None => "more elements than usize can count".into(),
    }
}

/// `160000000000` -> `149.0 GiB`: a byte count in binary units, one decimal.
pub fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

/// `Result` with hebb-tensor's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
