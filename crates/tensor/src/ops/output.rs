//! Outputs written in place: an op whose kernel writes every element of its
//! result can put it in a tensor the caller keeps from call to call (a
//! layer's output, its gradients), so a training step allocates nothing
//! while the batch size stays the same.

#[cfg(feature = "cuda")]
use std::sync::Arc;

use crate::tensor::{Storage, element_count};
use crate::{Error, Result, Tensor};

/// The element count of `shape`, or an error naming `op`.
fn count(op: &'static str, shape: &[usize]) -> Result<usize> {
    element_count(shape).ok_or_else(|| Error::InvalidArgument {
        op,
        reason: format!("shape {shape:?} has more elements than usize can count"),
    })
}

/// Makes `out` a host tensor of `shape` whose elements the caller then
/// overwrites, all of them: its buffer is kept when it is on the CPU, holds
/// as many elements and no other tensor shares it; otherwise `out` becomes
/// a fresh tensor (a shared buffer is left to its other owners, not copied).
pub(crate) fn host<'a>(
    op: &'static str,
    out: &'a mut Tensor,
    shape: &[usize],
) -> Result<&'a mut [f32]> {
    let n = count(op, shape)?;
    let keep = match &mut out.storage {
        Storage::Cpu(data) => data.len() == n && std::sync::Arc::get_mut(data).is_some(),
        #[cfg(feature = "cuda")]
        Storage::Cuda(_) => false,
    };
    if keep {
        out.shape = shape.to_vec();
    } else {
        *out = Tensor::try_full(shape, 0.0)?;
    }
    Ok(out.as_mut_slice())
}

/// Makes `out` a tensor of `shape` on `backend`'s device whose elements
/// the caller's kernels then overwrite, all of them (as [`host`]: the
/// buffer is kept when it is on that device, of that length and not
/// shared; otherwise a fresh, uninitialised buffer replaces it).
#[cfg(feature = "cuda")]
pub(crate) fn device<'a>(
    op: &'static str,
    out: &'a mut Tensor,
    shape: &[usize],
    backend: &Arc<crate::cuda::Backend>,
) -> Result<&'a mut cudarc::driver::CudaSlice<f32>> {
    let n = count(op, shape)?;
    let keep = match &mut out.storage {
        Storage::Cuda(c) => {
            c.backend.ordinal == backend.ordinal
                && c.data.len() == n.max(1)
                && Arc::get_mut(&mut c.data).is_some()
        }
        Storage::Cpu(_) => false,
    };
    if keep {
        out.shape = shape.to_vec();
    } else {
        *out = Tensor::from_cuda(backend.output(n)?, shape.to_vec(), backend.clone());
    }
    match &mut out.storage {
        // Not shared: `make_mut` forgets the host copy and copies nothing.
        Storage::Cuda(c) => c.make_mut(),
        Storage::Cpu(_) => Err(Error::Cuda {
            op,
            message: "the output buffer is not on the device".into(),
        }),
    }
}
