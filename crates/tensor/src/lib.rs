//! # hebb-tensor
//!
//! n-dimensional `f32` tensors for hebb, row-major, immutable and cheap to
//! clone, with the ops that the lecture's networks need: matrix products
//! through nalgebra's GEMM, broadcasting arithmetic, activations, reductions
//! along an axis, softmax and one-hot encoding. Shape errors are [`Error`]
//! values that name the op and both shapes; no op panics on user input.
//!
//! The storage is an enum over devices: host memory and, with the cargo
//! feature `cuda`, NVIDIA GPUs (`Device::Cuda(n)`; see the `cuda` module).
//! Each op lives in a folder with its CPU kernel (`cpu_kernel.rs`) and its
//! CUDA kernel (`cuda_kernel.rs` and a `.cu` source), and has the same API
//! on every device. [`random::RandomState`] is NumPy's legacy generator,
//! bit for bit, so the lecture's `np.random.seed(612)` weights are reproduced.
//!
//! ```
//! use hebb_tensor::{Tensor, random::RandomState};
//!
//! // Y = softmax(X W + B), lecture 12.2
//! let x = Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.0], &[2, 2])?;
//! let w = RandomState::new(612).randn_tensor(&[2, 3])?;
//! let b = Tensor::zeros(&[3]);
//! let y = x.matmul(&w)?.add(&b)?.softmax()?;
//! assert_eq!(y.shape(), &[2, 3]);
//! # Ok::<(), hebb_tensor::Error>(())
//! ```

#[cfg(feature = "cuda")]
pub mod cuda;
mod device;
mod error;
pub mod ops;
pub mod random;
mod tensor;

pub use device::Device;
pub use error::{Error, Result, human_bytes};
pub use ops::broadcast_shapes;
pub use tensor::Tensor;
