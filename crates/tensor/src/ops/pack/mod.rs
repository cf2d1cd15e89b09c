//! Packing several tensors into one flat buffer and back, scaled: how a
//! data-parallel step sends all its gradients in one all-reduce (Horovod's
//! "tensor fusion", Sergeev & Del Balso 2018) and spreads the sum back.
//!
//! [`pack_scaled`] writes `scale · part` for each part, one after another
//! in row-major order, then a few host values (the `tail`, e.g. a loss);
//! [`unpack_scaled`] is its inverse. Both write into buffers the caller
//! keeps from step to step, so a step allocates nothing. On a GPU each part
//! is one kernel launch on the device's stream, and only the tail crosses
//! to or from the host.

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

/// The elements `parts` and `tail` take, checked against the packed
/// buffer's length and every part's device.
fn check(op: &'static str, packed: &Tensor, parts: &[&Tensor], tail: usize) -> Result<()> {
    let device = packed.device();
    for p in parts {
        if p.device() != device {
            return Err(Error::DeviceMismatch {
                op,
                lhs: device,
                rhs: p.device(),
            });
        }
    }
    let needed = parts.iter().map(|p| p.len()).sum::<usize>() + tail;
    if needed != packed.len() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: packed.shape().to_vec(),
            rhs: vec![needed],
            detail: format!(
                "the packed buffer holds {} elements; the {} parts and {tail} tail values take {needed}",
                packed.len(),
                parts.len()
            ),
        });
    }
    Ok(())
}

/// Writes `scale · parts[0]`, `scale · parts[1]`, ... (each flattened,
/// row-major) and then `tail` (unscaled) into `packed`, which keeps its
/// shape. `packed` is written in place when no other tensor shares its
/// storage (else it is copied first, as every in-place op).
///
/// Shapes: `packed.len() == Σ parts[i].len() + tail.len()`.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the lengths do not add up;
/// [`Error::DeviceMismatch`] unless every part is on `packed`'s device;
/// [`Error::Cuda`] if a launch or copy fails on a GPU.
pub fn pack_scaled(packed: &mut Tensor, parts: &[&Tensor], scale: f32, tail: &[f32]) -> Result<()> {
    check("pack_scaled", packed, parts, tail.len())?;
    #[cfg(feature = "cuda")]
    if let crate::tensor::Storage::Cuda(storage) = &mut packed.storage {
        let backend = storage.backend.clone();
        let out = storage.make_mut()?;
        let mut offset = 0;
        for p in parts {
            let src = p.cuda().ok_or_else(|| mismatch("pack_scaled", p))?;
            cuda_kernel::pack_part(&backend, out, offset, &src.data, p.len(), scale)?;
            offset += p.len();
        }
        return cuda_kernel::write_tail(&backend, out, offset, tail);
    }
    let sources: Vec<&[f32]> = parts.iter().map(|p| p.as_slice()).collect();
    let out = packed.as_mut_slice();
    let mut offset = 0;
    for src in sources {
        cpu_kernel::scale_copy(&mut out[offset..offset + src.len()], src, scale);
        offset += src.len();
    }
    out[offset..].copy_from_slice(tail);
    Ok(())
}

/// The inverse of [`pack_scaled`]: each of `parts` (keeping its shape)
/// becomes `scale ·` its span of `packed`, and `tail` receives the values
/// after the parts (on a GPU: the one copy to the host, which waits for the
/// device). Each part is written in place when nothing shares its storage.
///
/// # Errors
/// As [`pack_scaled`].
pub fn unpack_scaled(
    packed: &Tensor,
    parts: &mut [Tensor],
    scale: f32,
    tail: &mut [f32],
) -> Result<()> {
    {
        let views: Vec<&Tensor> = parts.iter().collect();
        check("unpack_scaled", packed, &views, tail.len())?;
    }
    #[cfg(feature = "cuda")]
    if let Some(src) = packed.cuda() {
        let backend = src.backend.clone();
        let mut offset = 0;
        for p in parts.iter_mut() {
            let len = p.len();
            let out = match &mut p.storage {
                crate::tensor::Storage::Cuda(c) => c.make_mut()?,
                crate::tensor::Storage::Cpu(_) => {
                    return Err(mismatch("unpack_scaled", p));
                }
            };
            cuda_kernel::unpack_part(&backend, &src.data, offset, out, len, scale)?;
            offset += len;
        }
        return cuda_kernel::read_tail(&backend, &src.data, offset, tail);
    }
    let src = packed.as_slice();
    let mut offset = 0;
    for p in parts.iter_mut() {
        let len = p.len();
        cpu_kernel::scale_copy(p.as_mut_slice(), &src[offset..offset + len], scale);
        offset += len;
    }
    tail.copy_from_slice(&src[offset..]);
    Ok(())
}

#[cfg(feature = "cuda")]
fn mismatch(op: &'static str, part: &Tensor) -> Error {
    Error::DeviceMismatch {
        op,
        lhs: crate::Device::Cuda(0),
        rhs: part.device(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_then_unpack_scales_each_part_and_carries_the_tail() -> Result<()> {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
        let b = Tensor::from_vec(vec![-1.0, 0.5], &[2])?;
        let mut packed = Tensor::zeros(&[7]);
        pack_scaled(&mut packed, &[&a, &b], 2.0, &[9.0])?;
        assert_eq!(packed.to_vec(), vec![2.0, 4.0, 6.0, 8.0, -2.0, 1.0, 9.0]);
        let mut parts = vec![Tensor::zeros(&[2, 2]), Tensor::zeros(&[2])];
        let mut tail = [0.0];
        unpack_scaled(&packed, &mut parts, 0.5, &mut tail)?;
        assert_eq!(parts[0].to_vec(), a.to_vec());
        assert_eq!(parts[0].shape(), &[2, 2]);
        assert_eq!(parts[1].to_vec(), b.to_vec());
        assert_eq!(tail, [9.0]);
        Ok(())
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused_with_both() {
        let a = Tensor::zeros(&[3]);
        let mut packed = Tensor::zeros(&[5]);
        let e = pack_scaled(&mut packed, &[&a], 1.0, &[0.0]).unwrap_err();
        assert!(
            e.to_string().contains("holds 5 elements") && e.to_string().contains("take 4"),
            "{e}"
        );
        let mut parts = vec![Tensor::zeros(&[6])];
        let e = unpack_scaled(&packed, &mut parts, 1.0, &mut []).unwrap_err();
        assert!(e.to_string().contains("take 6"), "{e}");
    }

    #[test]
    fn an_unshared_buffer_is_written_in_place() -> Result<()> {
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2])?;
        let mut packed = Tensor::zeros(&[2]);
        let before = packed.as_slice().as_ptr();
        pack_scaled(&mut packed, &[&a], 3.0, &[])?;
        assert_eq!(packed.as_slice().as_ptr(), before);
        assert_eq!(packed.to_vec(), vec![3.0, 6.0]);
        Ok(())
    }
}
