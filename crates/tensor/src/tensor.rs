//! The [`Tensor`] type: shape plus shared, immutable storage.

use std::fmt;
use std::sync::Arc;

use crate::{Device, Error, Result};

/// The number of elements of `shape`, or `None` if it overflows `usize`.
/// Every tensor satisfies `element_count(shape) == Some(data.len())`.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// An empty vector with room for exactly the elements of `shape`, reserved
/// with `try_reserve_exact` after the byte count is checked, so that a size
/// the machine cannot hold is an error rather than an abort.
fn reserve(op: &'static str, shape: &[usize]) -> Result<(Vec<f32>, usize)> {
    let Some(n) = element_count(shape) else {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("shape {shape:?} has more elements than usize can count"),
        });
    };
    let mut data = Vec::new();
    reserve_total(&mut data, n, op, shape)?;
    Ok((data, n))
}

/// Makes room in `buffer` for `len` elements in all, with
/// `try_reserve_exact` after the byte count is checked: an
/// [`Error::Allocation`] naming `op`, `shape` and the bytes otherwise.
fn reserve_total(
    buffer: &mut Vec<f32>,
    len: usize,
    op: &'static str,
    shape: &[usize],
) -> Result<()> {
    let bytes = len as u128 * std::mem::size_of::<f32>() as u128;
    let fail = |reason| Error::Allocation {
        op,
        shape: shape.to_vec(),
        bytes,
        reason,
    };
    if bytes > isize::MAX as u128 {
        return Err(fail("more than a process can address"));
    }
    buffer
        .try_reserve_exact(len.saturating_sub(buffer.len()))
        .map_err(|_| fail("out of memory"))
}

/// Grows `buffer` to `len` elements (zeros), reserving fallibly as
/// [`reserve`] does: a kernel's scratch whose size comes from the user's
/// batch and image is an [`Error::Allocation`] (named by `op`, with
/// `shape`) rather than an abort.
pub(crate) fn try_grow(
    buffer: &mut Vec<f32>,
    len: usize,
    op: &'static str,
    shape: &[usize],
) -> Result<()> {
    if buffer.len() < len {
        reserve_total(buffer, len, op, shape)?;
        buffer.resize(len, 0.0);
    }
    Ok(())
}

/// Where the elements are. One variant per backend; the CUDA backend adds its
/// own beside `Cpu`, and only the kernels look inside.
#[derive(Clone)]
pub(crate) enum Storage {
    /// Row-major elements in host memory.
    Cpu(Arc<Vec<f32>>),
    /// Row-major elements on a GPU (feature `cuda`).
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

/// An n-dimensional array of `f32`, row-major (C order), immutable and cheap
/// to clone (the storage is reference-counted).
///
/// Ops return new tensors and never modify their inputs; shape errors are
/// [`Error`] values naming the op and both shapes. A rank-0 tensor (shape
/// `[]`) is a scalar.
///
/// ```
/// use hebb_tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])?;
/// let y = x.matmul(&x)?;
/// assert_eq!(y.to_vec(), vec![7.0, 10.0, 15.0, 22.0]);
/// # Ok::<(), hebb_tensor::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) storage: Storage,
}

impl Tensor {
    /// A tensor of `shape` holding `data` in row-major order.
    ///
    /// # Errors
    /// [`Error::ElementCount`] if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Self> {
        if element_count(shape) != Some(data.len()) {
            return Err(Error::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                len: data.len(),
            });
        }
        Ok(Self::from_parts(data, shape.to_vec()))
    }

    /// A tensor from `f64` values, each rounded to the nearest `f32`
    /// (NumPy's `astype(np.float32)`, TensorFlow's `tf.cast(x, tf.float32)`).
    ///
    /// # Errors
    /// [`Error::ElementCount`] if `data.len()` is not the product of `shape`.
    pub fn from_f64(data: &[f64], shape: &[usize]) -> Result<Self> {
        Self::from_vec(data.iter().map(|&v| v as f32).collect(), shape)
    }

    /// Builds a tensor whose length is already known to match (kernels).
    pub(crate) fn from_parts(data: Vec<f32>, shape: Vec<usize>) -> Self {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Self {
            shape,
            storage: Storage::Cpu(Arc::new(data)),
        }
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar(value: f32) -> Self {
        Self::from_parts(vec![value], Vec::new())
    }

    /// A tensor of `shape` filled with `value`.
    ///
    /// # Panics
    /// If the element count overflows `usize` or memory runs out, as `vec!` does.
    pub fn full(shape: &[usize], value: f32) -> Self {
        let Some(n) = element_count(shape) else {
            panic!("Tensor::full: shape {shape:?} has more elements than usize can count");
        };
        Self::from_parts(vec![value; n], shape.to_vec())
    }

    /// A tensor of `shape` filled with `value`, its memory reserved
    /// fallibly: what [`full`](Self::full) does, as an error instead of a
    /// panic or an abort. For tensors whose size comes from the user (a
    /// layer's weights), so that a size the machine cannot hold is reported
    /// and the program goes on.
    ///
    /// ```
    /// use hebb_tensor::{Error, Tensor};
    ///
    /// assert_eq!(Tensor::try_full(&[2], 0.5)?.to_vec(), vec![0.5, 0.5]);
    /// // 2^62 elements are 2^64 bytes, more than any process can address.
    /// let err = Tensor::try_full(&[1 << 31, 1 << 31], 0.0).unwrap_err();
    /// assert!(matches!(err, Error::Allocation { bytes, .. } if bytes == 1 << 64));
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the element count overflows `usize`;
    /// [`Error::Allocation`] naming the shape and the bytes if they are more
    /// than a process can address (`isize::MAX`) or the allocator refuses them.
    pub fn try_full(shape: &[usize], value: f32) -> Result<Self> {
        let (mut data, n) = reserve("try_full", shape)?;
        data.resize(n, value);
        Ok(Self::from_parts(data, shape.to_vec()))
    }

    /// A tensor of `shape` whose elements, in row-major order, are `f(0)`,
    /// `f(1)`, ... (called once each, in order, so `f` may draw from a
    /// random generator), its memory reserved fallibly first as in
    /// [`try_full`](Self::try_full).
    ///
    /// ```
    /// use hebb_tensor::Tensor;
    ///
    /// let t = Tensor::try_from_fn(&[2, 3], |i| i as f32 * 0.5)?;
    /// assert_eq!(t.to_vec(), vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    /// # Ok::<(), hebb_tensor::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`try_full`](Self::try_full).
    pub fn try_from_fn(shape: &[usize], f: impl FnMut(usize) -> f32) -> Result<Self> {
        let (mut data, n) = reserve("try_from_fn", shape)?;
        data.extend((0..n).map(f));
        Ok(Self::from_parts(data, shape.to_vec()))
    }

    /// A tensor of `shape` filled with zeros (`tf.zeros`).
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, 0.0)
    }

    /// A tensor of `shape` filled with ones (`tf.ones`).
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, 1.0)
    }

    /// A tensor of `shape` filled with `value` on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the element count overflows `usize`;
    /// [`Error::Cuda`] if device memory runs out.
    pub fn full_on(shape: &[usize], value: f32, device: Device) -> Result<Self> {
        if element_count(shape).is_none() {
            return Err(Error::InvalidArgument {
                op: "full_on",
                reason: format!("shape {shape:?} has more elements than usize can count"),
            });
        }
        match device {
            Device::Cpu => Ok(Self::full(shape, value)),
            #[cfg(feature = "cuda")]
            Device::Cuda(_) => crate::ops::unary::cuda_kernel::full(shape, value, device),
        }
    }

    /// A zero tensor with the shape of `self`, on the same device
    /// (`tf.zeros_like`, `torch.zeros_like`).
    ///
    /// # Panics
    /// On a GPU, if device memory runs out (as `vec!` does on the host).
    pub fn zeros_like(&self) -> Self {
        self.full_like(0.0)
    }

    /// A tensor of ones with the shape of `self`, on the same device.
    ///
    /// # Panics
    /// On a GPU, if device memory runs out (as `vec!` does on the host).
    pub fn ones_like(&self) -> Self {
        self.full_like(1.0)
    }

    fn full_like(&self, value: f32) -> Self {
        match Self::full_on(&self.shape, value, self.device()) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions (0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => c.device(),
        }
    }

    /// Copies the tensor to `device` (PyTorch's `.to(device)`; a cheap
    /// clone when it is already there). Copies to a GPU are enqueued on its
    /// stream; copies to the host wait for it.
    ///
    /// # Errors
    /// [`Error::NoCudaDevice`] if the GPU is not usable; [`Error::Cuda`] if
    /// the copy fails (out of device memory).
    pub fn to_device(&self, device: Device) -> Result<Self> {
        if device == self.device() {
            return Ok(self.clone());
        }
        match device {
            Device::Cpu => Ok(Self::from_parts(self.try_to_vec()?, self.shape.clone())),
            #[cfg(feature = "cuda")]
            Device::Cuda(ordinal) => {
                let backend = crate::cuda::backend(ordinal)?;
                let data = backend.upload(&self.try_to_vec()?)?;
                Ok(Self::from_cuda(data, self.shape.clone(), backend))
            }
        }
    }

    /// The elements in row-major order, copied to host memory (from a GPU
    /// this waits for its pending ops).
    ///
    /// # Errors
    /// [`Error::Cuda`] if the copy from the GPU fails (a kernel failed
    /// earlier, or the device was lost). Host tensors never fail.
    pub fn try_to_vec(&self) -> Result<Vec<f32>> {
        match &self.storage {
            Storage::Cpu(data) => Ok(data.to_vec()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => match c.host.get() {
                Some(host) => Ok(host.clone()),
                None => c.backend.download(&c.data, self.len()),
            },
        }
    }

    /// The elements in row-major order, copied to host memory.
    ///
    /// # Panics
    /// For a tensor on a GPU, if the copy fails (see [`try_to_vec`](Self::try_to_vec)).
    pub fn to_vec(&self) -> Vec<f32> {
        self.as_slice().to_vec()
    }

    /// The elements as a host slice, row-major. On the CPU this is the
    /// storage itself; a tensor on a GPU is copied to the host at the first
    /// call and the copy kept (tensors are immutable).
    ///
    /// # Panics
    /// For a tensor on a GPU, if the copy fails (a kernel failed earlier,
    /// or the device was lost); [`try_to_vec`](Self::try_to_vec) returns
    /// that as an error instead.
    pub fn as_slice(&self) -> &[f32] {
        match &self.storage {
            Storage::Cpu(data) => data,
            #[cfg(feature = "cuda")]
            Storage::Cuda(c) => c.host.get_or_init(|| {
                c.backend
                    .download(&c.data, self.len())
                    .unwrap_or_else(|e| panic!("{e}"))
            }),
        }
    }

    /// The elements as a mutable host slice, row-major, copying the storage
    /// first if it is shared (copy-on-write, `Arc::make_mut`). For in-place
    /// kernels such as optimiser updates.
    ///
    /// A tensor on a GPU moves to host memory first (and stays there); code
    /// meant for GPUs updates in place with device kernels instead (see
    /// `hebb_tensor::cuda::launch_elementwise`).
    ///
    /// # Panics
    /// For a tensor on a GPU, if the copy to the host fails.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        #[cfg(feature = "cuda")]
        if let Storage::Cuda(_) = &self.storage {
            let host = self.try_to_vec().unwrap_or_else(|e| panic!("{e}"));
            self.storage = Storage::Cpu(Arc::new(host));
        }
        match &mut self.storage {
            Storage::Cpu(data) => Arc::make_mut(data).as_mut_slice(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => unreachable!("moved to the host above"),
        }
    }

    /// The single element of a one-element tensor (of any rank), e.g. a loss
    /// (`tensor.item()` in PyTorch; from a GPU it waits for the device).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the tensor does not hold exactly one
    /// element; [`Error::Cuda`] if the copy from a GPU fails.
    pub fn item(&self) -> Result<f32> {
        if self.len() != 1 {
            return Err(Error::InvalidArgument {
                op: "item",
                reason: format!(
                    "needs a tensor of exactly one element, got shape {:?}",
                    self.shape
                ),
            });
        }
        match &self.storage {
            Storage::Cpu(data) => Ok(data[0]),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => Ok(self.try_to_vec()?[0]),
        }
    }

    /// The same elements with a new shape of equal element count.
    ///
    /// # Errors
    /// [`Error::ElementCount`] if the element counts differ.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if element_count(shape) != Some(self.len()) {
            return Err(Error::ElementCount {
                op: "reshape",
                shape: shape.to_vec(),
                len: self.len(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            storage: self.storage.clone(),
        })
    }

    /// Checks that `self` and `other` are on the same device.
    pub(crate) fn same_device(&self, other: &Self, op: &'static str) -> Result<()> {
        let (a, b) = (self.device(), other.device());
        if a == b {
            Ok(())
        } else {
            Err(Error::DeviceMismatch { op, lhs: a, rhs: b })
        }
    }

    /// Checks that the tensor has rank `expected`.
    pub(crate) fn expect_rank(&self, expected: usize, op: &'static str) -> Result<()> {
        if self.rank() == expected {
            Ok(())
        } else {
            Err(Error::Rank {
                op,
                expected,
                shape: self.shape.clone(),
            })
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("device", &self.device())
            .field("data", &self.as_slice())
            .finish()
    }
}

impl PartialEq for Tensor {
    /// Same shape and bitwise-equal elements (NaN != NaN, as for `f32`).
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.as_slice() == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflowing_shapes_are_errors_not_wrapped_counts() {
        let huge = [1usize << 32, 1usize << 32];
        let err = Tensor::from_vec(Vec::new(), &huge).unwrap_err();
        assert!(
            err.to_string()
                .contains("more elements than usize can count"),
            "{err}"
        );
        assert!(Tensor::zeros(&[2, 3]).reshape(&[usize::MAX, 2]).is_err());
        assert!(Tensor::one_hot(&[0, 1], usize::MAX).is_err());
        assert!(
            crate::random::RandomState::new(0)
                .randn_tensor(&huge)
                .is_err()
        );
    }

    /// Issue 11, item 9: sizes are checked before allocating, and a size
    /// no process can hold is an error naming the shape and the bytes.
    #[test]
    fn fallible_constructors_check_sizes_before_allocating() {
        assert_eq!(
            Tensor::try_full(&[2, 2], 1.5).unwrap(),
            Tensor::full(&[2, 2], 1.5)
        );
        let mut calls = Vec::new();
        let t = Tensor::try_from_fn(&[3], |i| {
            calls.push(i);
            i as f32
        })
        .unwrap();
        assert_eq!((t.to_vec(), calls), (vec![0.0, 1.0, 2.0], vec![0, 1, 2]));
        assert_eq!(
            Tensor::try_from_fn(&[0, 4], |_| 1.0).unwrap().shape(),
            &[0, 4]
        );

        // 2^61 elements: 2^63 bytes, one more than isize::MAX.
        let err = Tensor::try_full(&[1 << 30, 1 << 31], 0.0).unwrap_err();
        assert_eq!(
            err,
            Error::Allocation {
                op: "try_full",
                shape: vec![1 << 30, 1 << 31],
                bytes: 1 << 63,
                reason: "more than a process can address",
            }
        );
        assert_eq!(
            err.to_string(),
            "try_full: cannot allocate 9223372036854775808 bytes (8.0 EiB) for a tensor of \
             shape [1073741824, 2147483648]: more than a process can address"
        );
        // A count that overflows usize (it used to wrap to 0 in release builds).
        let err = Tensor::try_from_fn(&[1 << 40, 1 << 30], |_| 0.0).unwrap_err();
        assert!(
            err.to_string()
                .contains("more elements than usize can count"),
            "{err}"
        );
        assert_eq!(crate::human_bytes(1023), "1023 bytes");
        assert_eq!(crate::human_bytes(160_000_000_000), "149.0 GiB");
    }

    #[test]
    fn nan_follows_tensorflow_in_relu_and_argmax() {
        let t = Tensor::from_vec(vec![f32::NAN, 1.0, 1.0, f32::NAN], &[2, 2]).unwrap();
        assert!(t.relu().to_vec()[0].is_nan());
        assert_eq!(t.argmax(1).unwrap().to_vec(), vec![1.0, 0.0]);
    }
}
