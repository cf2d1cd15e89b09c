//! Where a tensor's data lives.

use std::fmt;

/// The device that holds a tensor's elements.
///
/// Only the CPU exists in this build; the CUDA backend (cargo feature `cuda`)
/// adds `Device::Cuda(ordinal)` without changing any other public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; kernels use nalgebra's GEMM and plain loops.
    #[default]
    Cpu,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
        }
    }
}
