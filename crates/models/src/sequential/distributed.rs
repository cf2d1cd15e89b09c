//! Data-parallel training, as Horovod runs Keras' `fit` (Sergeev & Del
//! Balso 2018) and PyTorch's `DistributedDataParallel`: N processes run the
//! same program, each holding a copy of the model.
//!
//! - At the start of `fit` rank 0's weights are broadcast, so every copy
//!   starts the same; the model, batch size, epochs, seed and sample count
//!   are compared first, and a mismatch is refused on every rank.
//! - `batch_size` stays the global mini-batch: the shuffled order is the
//!   same on every rank (a function of the seed and the epoch), and each
//!   global batch is cut into `size` contiguous shards, one per rank.
//! - Each rank computes the gradient of its shard's mean loss; the
//!   gradients travel in one fused buffer per step, each weighted by its
//!   shard's samples, so that the sum divided by the batch's samples is the
//!   gradient of the whole batch, exactly for an uneven last batch too.
//!   Non-trainable weights (BatchNormalization's moving statistics) are
//!   averaged the same way, so the copies stay identical.
//! - Every rank applies the same update. Losses and metrics (means over
//!   samples, as every built-in metric) are reduced the same way, so the
//!   History is the one of a single-process fit; the validation pass and
//!   `evaluate` are sharded and reduced too.
//! - Output (the progress bar, the epoch lines) and the callbacks that
//!   write files ([`Callback::on_every_rank`](super::callbacks::Callback::on_every_rank))
//!   act on rank 0 only; the others, `EarlyStopping` and `TerminateOnNaN`,
//!   see the reduced figures and decide the same on every rank.
//!
//! The engine is a [`Collective`]: `hebb-distributed` implements it on MPI.
//! Dropout keys each element's draw by its index in the global batch
//! ([`Pass::first_row`](hebb_layers::Pass::first_row)), so the shards'
//! masks together are the single process's mask, and a model with Dropout
//! trains as the single process does. BatchNormalization normalises each
//! shard with the shard's own statistics (as Horovod and PyTorch's DDP do
//! without a synchronised BatchNormalization), and its moving statistics
//! are averaged over the shards, weighted by their samples.

use std::fmt;

use hebb_tensor::{Device, Tensor};

use crate::{Error, Result};

/// A group of processes training one model together (an MPI world):
/// the collective operations data-parallel `fit` needs. Every rank calls
/// each operation in the same order with buffers of the same length.
pub trait Collective: Send + Sync + fmt::Debug {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// The engine's name, for messages (`MPI`).
    fn engine(&self) -> &str;
    /// Sums `buffer` element-wise over the processes, in place
    /// (`MPI_Allreduce` with `MPI_SUM`).
    ///
    /// # Errors
    /// [`Error::Distributed`] if the group is broken (a dead worker).
    fn all_reduce_sum(&self, buffer: &mut [f32]) -> Result<()>;
    /// [`all_reduce_sum`](Self::all_reduce_sum) in f64 (losses, counts).
    ///
    /// # Errors
    /// As `all_reduce_sum`.
    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()>;
    /// Copies rank `root`'s `buffer` into every rank's (`MPI_Bcast`).
    ///
    /// # Errors
    /// As `all_reduce_sum`.
    fn broadcast(&self, buffer: &mut [f32], root: usize) -> Result<()>;
    /// Copies rank `root`'s bytes, of any length, into every rank's.
    ///
    /// # Errors
    /// As `all_reduce_sum`.
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()>;

    /// Ends every process of the group at once with exit status `code`
    /// (`MPI_Abort`): what a process that fails alone calls, since the
    /// others would otherwise wait for it in their next collective call
    /// (and it for them, in `MPI_Finalize`). A group that cannot abort
    /// (threads of one process) returns and leaves the exit to the caller,
    /// the default.
    fn abort(&self, code: i32) {
        let _ = code;
    }

    /// Sums `tensor` element-wise over the processes, in place, leaving it
    /// on its device (each step's fused gradients). The default goes
    /// through the host with [`all_reduce_sum`](Self::all_reduce_sum); an
    /// engine that reduces device memory directly (NCCL) overrides it.
    ///
    /// # Errors
    /// As `all_reduce_sum`; a failed copy to or from the device.
    fn all_reduce_sum_tensor(&self, tensor: &mut Tensor) -> Result<()> {
        if tensor.device() == Device::Cpu {
            return self.all_reduce_sum(tensor.as_mut_slice());
        }
        let mut host = tensor.try_to_vec()?;
        self.all_reduce_sum(&mut host)?;
        *tensor = Tensor::from_vec(host, tensor.shape())?.to_device(tensor.device())?;
        Ok(())
    }
}

/// The rows of `rows` that rank `rank` of `size` takes, and the index of
/// the first in `rows`: contiguous shards, the first `rows.len() % size`
/// one row longer.
pub(super) fn shard(rows: &[usize], rank: usize, size: usize) -> (usize, &[usize]) {
    let (base, extra) = (rows.len() / size, rows.len() % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    (start, &rows[start..start + len])
}

/// Refuses a program that differs between ranks: rank 0's `fingerprint`
/// (the model and the fit's options) is compared on every rank, and every
/// rank learns whether any differs.
pub(super) fn check_same_program(group: &dyn Collective, fingerprint: &str) -> Result<()> {
    let mut root = fingerprint.as_bytes().to_vec();
    group.broadcast_bytes(&mut root, 0)?;
    let differs = root != fingerprint.as_bytes();
    let mut count = [f64::from(u8::from(differs))];
    group.all_reduce_sum_f64(&mut count)?;
    if count[0] == 0.0 {
        return Ok(());
    }
    let detail = if differs {
        let root = String::from_utf8_lossy(&root);
        let first = root
            .split(", ")
            .zip(fingerprint.split(", "))
            .find(|(a, b)| a != b)
            .map_or_else(String::new, |(a, b)| {
                format!(" (first difference: `{a}` on rank 0, `{b}` here)")
            });
        format!(
            "rank {} runs another program than rank 0{first}; start every rank with the same \
             program and arguments. rank 0 has {root}; rank {} has {}",
            group.rank(),
            group.rank(),
            fingerprint
        )
    } else {
        format!(
            "{} of the {} ranks run another model or fit options than rank 0 ({fingerprint}); \
             their messages name the difference",
            count[0],
            group.size()
        )
    };
    Err(Error::Distributed { detail })
}

/// Adds to `buffer` and reduces `values` weighted by `weight` (a shard's
/// samples), then divides by the total weight: the mean over all shards.
/// Returns the total weight. A shard of weight 0 adds nothing (its values
/// may be NaN, as a metric of no samples).
pub(super) fn weighted_mean(
    group: &dyn Collective,
    values: &mut [f64],
    weight: f64,
) -> Result<f64> {
    let mut buffer: Vec<f64> = values
        .iter()
        .map(|v| if weight == 0.0 { 0.0 } else { v * weight })
        .collect();
    buffer.push(weight);
    group.all_reduce_sum_f64(&mut buffer)?;
    let total = buffer.pop().unwrap_or(0.0);
    for (v, s) in values.iter_mut().zip(buffer) {
        *v = if total > 0.0 { s / total } else { 0.0 };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_order_and_differ_by_at_most_one_row() {
        for n in 0..20 {
            for size in 1..6 {
                let rows: Vec<usize> = (100..100 + n).collect();
                let shards: Vec<&[usize]> = (0..size).map(|r| shard(&rows, r, size).1).collect();
                for r in 0..size {
                    let (start, part) = shard(&rows, r, size);
                    assert_eq!(&rows[start..start + part.len()], part);
                }
                assert_eq!(shards.concat(), rows, "n {n} size {size}");
                let lens: Vec<usize> = shards.iter().map(|s| s.len()).collect();
                let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(hi - lo <= 1, "{lens:?}");
            }
        }
    }
}
