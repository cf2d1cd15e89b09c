//! Tensor ops. Each op is a folder: `mod.rs` holds the public API, its docs
//! and tests; `cpu_kernel.rs` holds the host implementation. A CUDA backend
//! adds `cuda_kernel.rs` beside it and a match arm in `mod.rs`.

pub mod batch_norm;
pub mod binary;
pub mod conv;
pub mod dropout;
pub mod index;
pub mod matmul;
mod output;
pub mod pack;
pub mod padding;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod unary;

pub use binary::broadcast_shapes;
pub use padding::Padding;
