//! Index ops: `one_hot` encoding of class labels and `gather_rows`.
//!
//! `one_hot` builds a host tensor; `gather_rows` on a GPU tensor (feature
//! `cuda`) checks the indices on the host and gathers with a kernel.

#[cfg(feature = "cuda")]
pub(crate) mod cuda_kernel;

use crate::{Error, Result, Tensor};

impl Tensor {
    /// One-hot encoding (`tf.one_hot(indices, depth)`): `[n] labels -> [n, depth]`
    /// with a 1 in column `labels[i]` of row `i`.
    ///
    /// # Errors
    /// [`Error::Index`] if a label is `>= depth`; [`Error::ElementCount`] if
    /// the result would have more elements than `usize` can count.
    pub fn one_hot(labels: &[usize], depth: usize) -> Result<Tensor> {
        let shape = [labels.len(), depth];
        let n = crate::tensor::element_count(&shape).ok_or_else(|| Error::ElementCount {
            op: "one_hot",
            shape: shape.to_vec(),
            len: 0,
        })?;
        let mut data = vec![0.0f32; n];
        for (row, &label) in labels.iter().enumerate() {
            if label >= depth {
                return Err(Error::Index {
                    op: "one_hot",
                    index: label,
                    bound: depth,
                });
            }
            data[row * depth + label] = 1.0;
        }
        Ok(Tensor::from_parts(data, vec![labels.len(), depth]))
    }

    /// The rows `indices` of a tensor of rank >= 1, in that order
    /// (`tf.gather(x, indices, axis=0)`): `[n, ..] -> [indices.len(), ..]`.
    /// A GPU tensor's result stays on its device (the indices are checked
    /// on the host, then copied to the device).
    ///
    /// # Errors
    /// [`Error::Rank`] for a scalar; [`Error::Index`] if an index is `>= n`;
    /// [`Error::Cuda`] if the copy or the kernel fails on a GPU.
    pub fn gather_rows(&self, indices: &[usize]) -> Result<Tensor> {
        let Some((&n, rest)) = self.shape.split_first() else {
            return Err(Error::Rank {
                op: "gather_rows",
                expected: 1,
                shape: Vec::new(),
            });
        };
        let row: usize = rest.iter().product();
        #[cfg(feature = "cuda")]
        if let Some(x) = self.cuda() {
            if let Some(&i) = indices.iter().find(|&&i| i >= n) {
                return Err(Error::Index {
                    op: "gather_rows",
                    index: i,
                    bound: n,
                });
            }
            let mut shape = self.shape.clone();
            shape[0] = indices.len();
            return cuda_kernel::gather_rows(x, indices, row, shape);
        }
        let x = self.as_slice();
        let mut data = Vec::with_capacity(indices.len() * row);
        for &i in indices {
            if i >= n {
                return Err(Error::Index {
                    op: "gather_rows",
                    index: i,
                    bound: n,
                });
            }
            data.extend_from_slice(&x[i * row..(i + 1) * row]);
        }
        let mut shape = self.shape.clone();
        shape[0] = indices.len();
        Ok(Tensor::from_parts(data, shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_and_gather() {
        let y = Tensor::one_hot(&[2, 0], 3).unwrap();
        assert_eq!(y.to_vec(), vec![0., 0., 1., 1., 0., 0.]);
        assert!(matches!(
            Tensor::one_hot(&[3], 3),
            Err(Error::Index {
                index: 3,
                bound: 3,
                ..
            })
        ));
        let x = Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], &[3, 2]).unwrap();
        assert_eq!(
            x.gather_rows(&[2, 0]).unwrap().to_vec(),
            vec![5., 6., 1., 2.]
        );
        assert!(x.gather_rows(&[3]).is_err());
    }
}
