//! Dropout's mask: a counter-based hash, the same bits on every device.
//!
//! Inverted dropout (Srivastava et al. 2014; Keras `Dropout`) multiplies
//! each element by `scale = 1 / (1 - rate)` or by 0. Which elements are
//! kept is a pure function of a 64-bit `key`, the element's global index
//! and a 24-bit `threshold`, so it does not depend on the device, the
//! thread count or how a batch is split between workers:
//!
//! ```text
//! u(i)    = mix(key + (i + 1) · γ) >> 40      γ = 0x9E3779B97F4A7C15   (the i-th SplitMix64 output of `key`, top 24 bits)
//! kept(i) = u(i) >= threshold
//! mix(z): z = (z ^ z >> 30) · 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) · 0x94D049BB133111EB; z ^ z >> 31
//! y[j]    = x[j] · (kept(first + j) ? scale : 0)
//! ```
//!
//! (all arithmetic wrapping on `u64`; `mix` is SplitMix64's output
//! function, Steele, Lea and Flood 2014). Element `j` of the tensor has the
//! global index `first + j`: a data-parallel worker's shard passes the
//! global index of its first element, so the shards together draw the mask
//! of the whole batch. A threshold of `ceil(rate · 2^24)` drops each element
//! with probability `rate` up to `2^-24`. The CPU kernel and the CUDA kernel
//! (`dropout.cu`, in `unsigned long long` arithmetic with the same wrapping
//! products) compute this same function, so **the same key gives the same
//! mask on the CPU and on a GPU**, bit for bit, and the same outputs: each
//! is one IEEE product `x · scale`, or 0.
//!
//! The gradient of `y` is the same mask applied to the output's gradient,
//! so the backward pass is this op again with the same [`DropoutMask`].

mod cpu_kernel;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

/// SplitMix64's increment, the golden ratio in 64 bits.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea and Flood 2014): a bijection
/// of `u64` that mixes every input bit into every output bit.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the element of global index `index` is kept under `key`: the
/// top 24 bits of `mix(key + (index + 1) · γ)` reach `threshold` (see the
/// module docs). A threshold of 0 keeps everything; one above `2^24 - 1`
/// drops everything.
#[inline]
pub fn kept(key: u64, index: u64, threshold: u32) -> bool {
    let bits = mix(key.wrapping_add(index.wrapping_add(1).wrapping_mul(GAMMA)));
    (bits >> 40) >= u64::from(threshold)
}

/// One dropout mask over a tensor: element `j` is kept when
/// [`kept`]`(key, first + j, threshold)`, and then multiplied by `scale`;
/// the others become 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    /// The pass's key (hebb's `Dropout` layer derives it from its seed and
    /// its count of training passes).
    pub key: u64,
    /// The global index of the tensor's element 0 (a shard's first row
    /// times the elements per row; 0 for a whole batch).
    pub first: u64,
    /// The 24-bit draw an element must reach to be kept: `ceil(rate · 2^24)`.
    pub threshold: u32,
    /// The factor of the kept elements, `1 / (1 - rate)` in inverted dropout.
    pub scale: f32,
}

impl DropoutMask {
    /// Whether element `j` of the tensor (global index `first + j`, wrapping) is kept.
    #[inline]
    pub fn keeps(&self, j: u64) -> bool {
        kept(self.key, self.first.wrapping_add(j), self.threshold)
    }

    /// The factor of element `j`: `scale` when it is kept, else 0.
    #[inline]
    pub fn value(&self, j: u64) -> f32 {
        if self.keeps(j) { self.scale } else { 0.0 }
    }
}

/// The CPU kernel on host slices: `dst[j] = src[j] · mask.value(j)` (0 for
/// a dropped element, whatever `src[j]` is), in parallel over fixed chunks
/// of elements, so the result does not depend on the thread count. For
/// callers that keep their own output buffers; [`dropout_into`] is the
/// same on tensors of any device.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `src` and `dst` differ in length.
pub fn apply_mask(src: &[f32], dst: &mut [f32], mask: &DropoutMask) -> Result<()> {
    if src.len() != dst.len() {
        return Err(Error::ShapeMismatch {
            op: "dropout",
            lhs: vec![src.len()],
            rhs: vec![dst.len()],
            detail: "the source and destination slices differ in length".into(),
        });
    }
    cpu_kernel::apply(src, dst, mask);
    Ok(())
}

/// Applies `mask` to `x` into `out` (any shape, on `x`'s device): `out`
/// becomes a tensor of `x`'s shape with `out[j] = x[j] · mask.value(j)`.
/// `out`'s buffer is reused when it is on `x`'s device, holds as many
/// elements and no other tensor shares it (a training step's layer output),
/// otherwise replaced. On a GPU one kernel launch on the device's stream,
/// nothing copied to the host.
///
/// ```
/// use hebb_tensor::Tensor;
/// use hebb_tensor::ops::dropout::{DropoutMask, dropout_into};
///
/// let mask = DropoutMask { key: 7, first: 0, threshold: 1 << 23, scale: 2.0 };
/// let x = Tensor::ones(&[2, 3]);
/// let mut y = Tensor::zeros(&[0]);
/// dropout_into(&x, &mut y, &mask)?;
/// assert_eq!(y.shape(), &[2, 3]);
/// for (j, v) in y.to_vec().into_iter().enumerate() {
///     assert_eq!(v, if mask.keeps(j as u64) { 2.0 } else { 0.0 });
/// }
/// # Ok::<(), hebb_tensor::Error>(())
/// ```
///
/// # Errors
/// [`Error::Cuda`] if device memory runs out or the launch fails on a GPU;
/// [`Error::Allocation`] if host memory for a new output cannot be had.
pub fn dropout_into(x: &Tensor, out: &mut Tensor, mask: &DropoutMask) -> Result<()> {
    #[cfg(feature = "cuda")]
    if let Some(src) = x.cuda() {
        let backend = src.backend.clone();
        let dst = super::output::device("dropout", out, x.shape(), &backend)?;
        return cuda_kernel::apply(&backend, dst, &src.data, x.len(), mask);
    }
    let dst = super::output::host("dropout", out, x.shape())?;
    cpu_kernel::apply(x.as_slice(), dst, mask);
    Ok(())
}

impl Tensor {
    /// `self · mask`: each element multiplied by `mask.value(j)` (its
    /// `scale` or 0; see [`ops::dropout`](crate::ops::dropout)), a new
    /// tensor on `self`'s device. The same mask gives the same result on
    /// the CPU and on a GPU.
    ///
    /// # Errors
    /// As [`dropout_into`].
    pub fn dropout(&self, mask: &DropoutMask) -> Result<Tensor> {
        let mut out = Tensor::zeros(&[0]);
        dropout_into(self, &mut out, mask)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition, one element at a time.
    fn reference(x: &[f32], mask: &DropoutMask) -> Vec<f32> {
        x.iter()
            .enumerate()
            .map(|(j, &v)| {
                if mask.keeps(j as u64) {
                    v * mask.scale
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn mix_is_splitmix64() {
        // SplitMix64 seeded with 0 (the reference C code's first outputs).
        assert_eq!(mix(GAMMA), 0xE220_A839_7B1D_CDAF);
        assert_eq!(mix(GAMMA.wrapping_mul(2)), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn chunks_and_offsets_match_the_definition() {
        let n = 2 * cpu_kernel::CHUNK + 77;
        let x: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
        for (key, first) in [(1u64, 0u64), (u64::MAX, 5), (42, u64::MAX - 100)] {
            let mask = DropoutMask {
                key,
                first,
                threshold: 5_000_000,
                scale: 1.25,
            };
            let mut y = vec![f32::NAN; n];
            apply_mask(&x, &mut y, &mask).unwrap();
            assert_eq!(y, reference(&x, &mask), "key {key} first {first}");
            // A shard starting at element 1000 is the whole tensor's tail.
            let shard = DropoutMask {
                first: first.wrapping_add(1000),
                ..mask
            };
            let mut tail = vec![0.0; n - 1000];
            apply_mask(&x[1000..], &mut tail, &shard).unwrap();
            assert_eq!(tail, y[1000..]);
        }
    }

    #[test]
    fn dropped_elements_are_zero_and_thresholds_bound_the_mask() {
        let x = Tensor::from_vec(vec![f32::NAN, f32::INFINITY, -1.0, 3.0], &[2, 2]).unwrap();
        let all = DropoutMask {
            key: 3,
            first: 0,
            threshold: 0,
            scale: 2.0,
        };
        let y = x.dropout(&all).unwrap().to_vec();
        assert!(y[0].is_nan());
        assert_eq!(y[1..], [f32::INFINITY, -2.0, 6.0]);
        let none = DropoutMask {
            threshold: 1 << 24,
            ..all
        };
        assert_eq!(x.dropout(&none).unwrap().to_vec(), vec![0.0; 4]);
    }

    #[test]
    fn an_unshared_output_is_reused_and_a_shared_one_left_alone() {
        let mask = DropoutMask {
            key: 9,
            first: 0,
            threshold: 1 << 23,
            scale: 2.0,
        };
        let x = Tensor::ones(&[3, 4]);
        let mut out = Tensor::zeros(&[4, 3]);
        let before = out.as_slice().as_ptr();
        dropout_into(&x, &mut out, &mask).unwrap();
        assert_eq!(out.as_slice().as_ptr(), before);
        assert_eq!(out.shape(), &[3, 4]);
        let kept = out.clone();
        dropout_into(&x.mul_scalar(3.0), &mut out, &mask).unwrap();
        assert_eq!(kept.to_vec(), reference(x.as_slice(), &mask));
        assert_eq!(out.to_vec(), reference(&[3.0; 12], &mask));
        let e = apply_mask(&[1.0; 3], &mut [0.0; 2], &mask).unwrap_err();
        assert!(e.to_string().contains("dropout"), "{e}");
    }
}
