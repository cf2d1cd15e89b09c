//! Where a tensor's data lives.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The device that holds a tensor's elements.
///
/// Every tensor lives on one device; an op on tensors of two devices is an
/// [`Error::DeviceMismatch`] naming both, and [`Tensor::to_device`](crate::Tensor::to_device)
/// copies explicitly (PyTorch's `.to(device)`). `Device::Cuda(ordinal)`
/// exists with the cargo feature `cuda`; get one with [`Device::cuda`],
/// which checks that the GPU is there, or [`Device::cuda_if_available`].
///
/// Parsed from and printed as `cpu`, `cuda` (ordinal 0) and `cuda:N`, as in
/// PyTorch (`gpu` and upper case are accepted too). `auto` parses to the GPU
/// if one is usable, else the CPU ([`Device::auto`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; kernels use the crate's GEMM and plain loops.
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal (`CUDA_VISIBLE_DEVICES` order),
    /// through cuBLAS and kernels compiled once with NVRTC.
    #[cfg(feature = "cuda")]
    Cuda(usize),
}

impl Device {
    /// The CUDA device `ordinal`, after checking that the CUDA driver,
    /// cuBLAS and NVRTC load and that the device exists (the first call
    /// creates its context, stream and cuBLAS handle).
    ///
    /// # Errors
    /// [`Error::NoCudaDevice`] naming what is missing: the library that
    /// would not load, the device count, or that this build lacks the
    /// `cuda` feature.
    pub fn cuda(ordinal: usize) -> Result<Self> {
        #[cfg(feature = "cuda")]
        {
            crate::cuda::backend(ordinal)?;
            Ok(Device::Cuda(ordinal))
        }
        #[cfg(not(feature = "cuda"))]
        {
            Err(Error::NoCudaDevice {
                reason: format!(
                    "cuda:{ordinal} asked for, but hebb-tensor was built without its `cuda` feature"
                ),
            })
        }
    }

    /// `cuda:0` when [`Device::cuda`] succeeds, else the CPU (PyTorch's
    /// `"cuda" if torch.cuda.is_available() else "cpu"`); the device `auto`
    /// names.
    pub fn cuda_if_available() -> Self {
        Self::auto().0
    }

    /// The device `auto` names, with the reason when it is not a GPU:
    /// `(cuda:0, None)` when [`Device::cuda`]`(0)` succeeds (the driver,
    /// cuBLAS and NVRTC load and a device is there), else `(Device::Cpu,
    /// Some(error))` with [`Device::cuda`]'s [`Error::NoCudaDevice`] saying
    /// what is missing (without the `cuda` feature: that feature).
    ///
    /// ```
    /// use hebb_tensor::Device;
    ///
    /// let (device, why_not_gpu) = Device::auto();
    /// assert_eq!("auto".parse::<Device>()?, device);
    /// assert_eq!(device.is_cuda(), why_not_gpu.is_none());
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    pub fn auto() -> (Self, Option<Error>) {
        match Self::cuda(0) {
            Ok(device) => (device, None),
            Err(e) => (Device::Cpu, Some(e)),
        }
    }

    /// True for a GPU.
    pub fn is_cuda(&self) -> bool {
        !matches!(self, Device::Cpu)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            #[cfg(feature = "cuda")]
            Device::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    /// `cpu`, `cuda` or `cuda:N`, or `auto` ([`Device::auto`]: the GPU if
    /// one is usable, else the CPU); a CUDA device is checked with
    /// [`Device::cuda`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for other text; [`Error::NoCudaDevice`]
    /// when the GPU asked for is not there (never for `auto`).
    fn from_str(s: &str) -> Result<Self> {
        let ordinal = match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => return Ok(Device::Cpu),
            "auto" => return Ok(Self::auto().0),
            "cuda" | "gpu" => 0,
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| Error::InvalidArgument {
                    op: "Device::from_str",
                    reason: format!(
                        "unknown device {s:?}: expected cpu, cuda (or gpu), cuda:N or auto"
                    ),
                })?,
        };
        Self::cuda(ordinal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print_as_in_pytorch() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!(Device::Cpu.to_string(), "cpu");
        let err = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(err.contains("unknown device \"tpu\""), "{err}");
        assert!("cuda:x".parse::<Device>().is_err());
        // Without a GPU (or without the feature) asking for one is an error
        // that says why, and the fallback is the CPU.
        match "cuda:0".parse::<Device>() {
            Ok(d) => assert!(d.is_cuda()),
            Err(e) => {
                assert!(matches!(e, Error::NoCudaDevice { .. }), "{e}");
                assert_eq!(Device::cuda_if_available(), Device::Cpu);
            }
        }
    }

    #[test]
    fn auto_is_the_gpu_if_one_is_usable_else_the_cpu() {
        let (device, why_not_gpu) = Device::auto();
        assert_eq!("auto".parse::<Device>().unwrap(), device);
        assert_eq!(" Auto ".parse::<Device>().unwrap(), device);
        assert_eq!(Device::cuda_if_available(), device);
        match Device::cuda(0) {
            Ok(gpu) => {
                assert_eq!(device, gpu);
                assert!(why_not_gpu.is_none(), "{why_not_gpu:?}");
            }
            Err(e) => {
                assert_eq!(device, Device::Cpu);
                let why = why_not_gpu.expect("a reason when auto is the CPU");
                assert!(matches!(why, Error::NoCudaDevice { .. }), "{why}");
                assert_eq!(why.to_string(), e.to_string());
            }
        }
        // Without the feature there is no GPU to find.
        #[cfg(not(feature = "cuda"))]
        {
            assert_eq!(device, Device::Cpu);
            let why = Device::auto().1.unwrap().to_string();
            assert!(why.contains("built without its `cuda` feature"), "{why}");
        }
    }
}
