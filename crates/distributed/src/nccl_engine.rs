//! NCCL between GPUs (cudarc's `nccl`): the fused gradients of a model on a
//! GPU are all-reduced in device memory, on the device's own stream, while
//! the small host collectives (the program check, the weights' broadcast,
//! the metrics) stay on the host engine (MPI), which also carries NCCL's
//! unique id from rank 0 to the others.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::{Arc, Mutex};

use cudarc::nccl::safe::{Comm, Id, ReduceOp};
use hebb_models::sequential::Collective;
use hebb_models::{Error, Result};
use hebb_tensor::{Device, Tensor};

/// An NCCL communicator, movable to the thread that runs a step.
struct SendComm(Comm);

// SAFETY: an NCCL communicator may be used from any thread as long as no
// two calls on it run at once (NCCL's "thread safety" note); the `Mutex`
// in `Nccl` serialises every call.
unsafe impl Send for SendComm {}

/// Data-parallel on GPUs: NCCL's all-reduce on device memory for the
/// tensors on this rank's GPU, the host engine (`host`, MPI) for the rest.
///
/// Every rank uses NCCL or none does: [`Nccl::over`] first checks on every
/// rank that `libnccl` loads, and refuses on all of them if one lacks it.
pub struct Nccl {
    host: Arc<dyn Collective>,
    device: Device,
    comm: Mutex<SendComm>,
    version: i32,
    /// `"MPI + NCCL"`: the host engine's name and NCCL.
    engine: String,
}

impl fmt::Debug for Nccl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Nccl {{ rank: {}, size: {}, device: {} }}",
            self.host.rank(),
            self.host.size(),
            self.device
        )
    }
}

fn failed(what: &str, e: &cudarc::nccl::result::NcclError) -> Error {
    Error::Distributed {
        detail: format!("NCCL {what} failed: {:?}", e.0),
    }
}

/// Whether `libnccl` loads (cudarc looks for `libnccl.so` on the
/// loader's path, not for `libnccl.so.2`).
fn nccl_loads() -> bool {
    // SAFETY: only tries to `dlopen` libnccl and closes it.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// How many ranks of `host` cannot load `libnccl` (collective).
pub(crate) fn ranks_without_nccl(host: &dyn Collective) -> Result<usize> {
    let mut missing = [f64::from(u8::from(!nccl_loads()))];
    host.all_reduce_sum_f64(&mut missing)?;
    Ok(missing[0] as usize)
}

impl Nccl {
    /// NCCL over the ranks of `host`, on `device` (a GPU; one per rank:
    /// NCCL refuses two ranks on one GPU). Rank 0 makes NCCL's unique id
    /// and `host` broadcasts it; every rank then joins the communicator.
    /// Collective: every rank of `host` calls it.
    ///
    /// # Errors
    /// [`Error::Distributed`] on every rank if a rank cannot load
    /// `libnccl` (the message names the fix), if `device` is the CPU, or if
    /// NCCL fails to start; [`Error::Layers`] with the tensor error if the
    /// GPU cannot be used.
    pub fn over(host: Arc<dyn Collective>, device: Device) -> Result<Self> {
        if !device.is_cuda() {
            return Err(Error::Distributed {
                detail: format!("NCCL reduces GPU memory, but the model is on {device}"),
            });
        }
        let missing = ranks_without_nccl(host.as_ref())?;
        if missing > 0 {
            return Err(Error::Distributed {
                detail: format!(
                    "NCCL's library (libnccl.so) could not be loaded on {} of the {} ranks: \
                     install NCCL (Debian/Ubuntu with NVIDIA's repository: libnccl2 libnccl-dev; \
                     or pip nvidia-nccl-cu12) and put the folder of libnccl.so on \
                     LD_LIBRARY_PATH (where only libnccl.so.2 exists, link libnccl.so to it)",
                    missing,
                    host.size()
                ),
            });
        }
        let stream = hebb_tensor::cuda::stream(device)?;
        let mut id = Vec::new();
        if host.rank() == 0 {
            let made = Id::new().map_err(|e| failed("ncclGetUniqueId", &e))?;
            id = made.internal().iter().map(|&c| c as u8).collect();
        }
        host.broadcast_bytes(&mut id, 0)?;
        let internal: [std::ffi::c_char; 128] = id
            .iter()
            .map(|&b| b as std::ffi::c_char)
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| Error::Distributed {
                detail: format!(
                    "NCCL's unique id from rank 0 has {} bytes, not 128",
                    id.len()
                ),
            })?;
        let comm = Comm::from_rank(stream, host.rank(), host.size(), Id::uninit(internal))
            .map_err(|e| failed("ncclCommInitRank", &e))?;
        let version =
            cudarc::nccl::result::get_nccl_version().map_err(|e| failed("ncclGetVersion", &e))?;
        let engine = format!("{} + NCCL", host.engine());
        Ok(Self {
            host,
            device,
            comm: Mutex::new(SendComm(comm)),
            version,
            engine,
        })
    }

    /// The GPU this rank's communicator reduces on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// NCCL's version as `major.minor.patch` (from `ncclGetVersion`).
    pub fn version(&self) -> String {
        // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
        let v = self.version;
        format!("{}.{}.{}", v / 10000, (v / 100) % 100, v % 100)
    }
}

impl Collective for Nccl {
    fn rank(&self) -> usize {
        self.host.rank()
    }

    fn size(&self) -> usize {
        self.host.size()
    }

    fn engine(&self) -> &str {
        &self.engine
    }

    fn all_reduce_sum(&self, buffer: &mut [f32]) -> Result<()> {
        self.host.all_reduce_sum(buffer)
    }

    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()> {
        self.host.all_reduce_sum_f64(buffer)
    }

    fn broadcast(&self, buffer: &mut [f32], root: usize) -> Result<()> {
        self.host.broadcast(buffer, root)
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        self.host.broadcast_bytes(bytes, root)
    }

    fn abort(&self, code: i32) {
        self.host.abort(code);
    }

    /// On this rank's GPU: NCCL's in-place all-reduce, enqueued on the
    /// device's stream after the ops that wrote `tensor` and before those
    /// that read it (no wait on the host). Elsewhere: the host engine.
    fn all_reduce_sum_tensor(&self, tensor: &mut Tensor) -> Result<()> {
        if tensor.device() != self.device {
            return self.host.all_reduce_sum_tensor(tensor);
        }
        let len = tensor.len();
        // The step may run on another thread than the last call.
        hebb_tensor::cuda::stream(self.device)?;
        let comm = self.comm.lock().map_err(|_| Error::Distributed {
            detail: "NCCL: an earlier call panicked with the communicator".into(),
        })?;
        let Some(buffer) = hebb_tensor::cuda::device_buffer_mut(tensor)? else {
            return Err(Error::Distributed {
                detail: format!("NCCL: a tensor said to be on {} is not", self.device),
            });
        };
        let mut view = buffer
            .try_slice_mut(..len)
            .ok_or_else(|| Error::Distributed {
                detail: format!("NCCL: the device buffer holds fewer than {len} elements"),
            })?;
        comm.0
            .all_reduce_in_place(&mut view, &ReduceOp::Sum)
            .map_err(|e| failed("ncclAllReduce", &e))?;
        Ok(())
    }
}
