//! # hebb-distributed
//!
//! Data-parallel training on MPI, as Horovod runs Keras' `fit`: started by
//! `mpirun -np N`, every process runs the same program, and
//! [`Sequential::distribute`](hebb_models::sequential::Sequential::distribute)
//! makes `fit` and `evaluate` shard each global batch over the processes
//! and all-reduce the gradients (see [`hebb_models::sequential::distributed`]
//! for the semantics).
//!
//! ```no_run
//! # fn main() -> Result<(), hebb_models::Error> {
//! use hebb_models::sequential::Sequential;
//! let mut model = Sequential::new();
//! // ... add layers, compile ...
//! if let Some(group) = hebb_distributed::init()? {
//!     model.distribute(group); // under mpirun: data-parallel
//! }
//! // model.fit(...) as always
//! # Ok(()) }
//! ```
//!
//! On GPUs (feature `cuda`), [`on_device`] puts NCCL under the MPI group:
//! the fused gradients are all-reduced in GPU memory (`Nccl`), one GPU
//! per rank ([`local_device`]).
//!
//! The engine is MPI through the `mpi` crate (rsmpi) against the system's
//! OpenMPI, behind the cargo feature `mpi` (Debian: `libopenmpi-dev`,
//! `openmpi-bin`, and `libclang-dev` for rsmpi's bindings). MPI is
//! initialised on a thread of its own, through which every collective
//! call is funnelled (`MPI_THREAD_FUNNELED`): `fit` runs on rayon's
//! workers and MPI's handles may not move between threads. Without the
//! feature, [`init`] refuses a program that `mpirun` started several times
//! (each copy would train alone) and names the fix.

use std::sync::Arc;

use hebb_models::Error;
use hebb_models::sequential::Collective;

#[cfg(feature = "mpi")]
mod mpi_engine;
#[cfg(feature = "mpi")]
pub use mpi_engine::Mpi;
#[cfg(feature = "cuda")]
mod nccl_engine;
#[cfg(feature = "cuda")]
pub use nccl_engine::Nccl;

use hebb_tensor::Device;

/// The size of the MPI world this process was started in, read from the
/// environment `mpirun` (Open MPI, MPICH, Slurm's PMI) gives its
/// processes, or `None` outside `mpirun`.
pub fn launched_world_size() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())
}

/// This process's rank among those `mpirun` started on its host (Open
/// MPI's `OMPI_COMM_WORLD_LOCAL_RANK`, MPICH's `MPI_LOCALRANKID`, Slurm's
/// `SLURM_LOCALID`), or `None` outside `mpirun`.
pub fn local_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())
}

/// The device this process trains on when the program asks for `device`:
/// under `mpirun`, a GPU means this process's own one, `cuda:(local rank
/// mod GPUs)` (one GPU per rank, as Horovod's `local_rank()` pins them;
/// NCCL refuses two ranks on one GPU); the CPU, or any device outside
/// `mpirun`, is left as it is.
///
/// # Errors
/// A tensor error ([`Error::Layers`]) if the GPUs cannot be counted.
pub fn local_device(device: Device) -> Result<Device, Error> {
    match (device, local_rank()) {
        #[cfg(feature = "cuda")]
        (Device::Cuda(_), Some(rank)) if launched_world_size().is_some() => {
            let count = hebb_tensor::cuda::device_count()?.max(1);
            Ok(Device::cuda(rank % count)?)
        }
        _ => Ok(device),
    }
}

/// The group for a model on `device`, and a line that says how its
/// gradients travel. On a GPU (feature `cuda`) every rank joins an NCCL
/// communicator over `group` (`Nccl`), so the gradients are reduced in
/// GPU memory; where a rank cannot load `libnccl`, every rank keeps
/// `group` (the gradients go through the host) and the line says why. On
/// the CPU, `group` as it is. Collective: every rank calls it.
///
/// # Errors
/// [`Error::Distributed`] if NCCL loads but fails to start; the host
/// engine's errors.
pub fn on_device(
    group: Arc<dyn Collective>,
    device: Device,
) -> Result<(Arc<dyn Collective>, String), Error> {
    if !device.is_cuda() {
        let line = format!("gradients all-reduced by {}", group.engine());
        return Ok((group, line));
    }
    #[cfg(feature = "cuda")]
    {
        let missing = nccl_engine::ranks_without_nccl(group.as_ref())?;
        if missing == 0 {
            let nccl = Nccl::over(group, device)?;
            let line = format!(
                "gradients all-reduced on the GPUs by NCCL {} (this rank: {device})",
                nccl.version()
            );
            return Ok((Arc::new(nccl), line));
        }
        let line = format!(
            "gradients all-reduced through the host by {}: NCCL's library (libnccl.so) could \
             not be loaded on {missing} of the {} ranks (install NCCL and put the folder of \
             libnccl.so on LD_LIBRARY_PATH; where only libnccl.so.2 exists, link libnccl.so to it)",
            group.engine(),
            group.size()
        );
        Ok((group, line))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let line = format!(
            "gradients all-reduced through the host by {}",
            group.engine()
        );
        Ok((group, line))
    }
}

/// The group to train with: under `mpirun`, MPI's world (also of one
/// process); outside it, `None`, and the program trains alone as without
/// this crate.
///
/// # Errors
/// [`Error::Distributed`] if MPI cannot be initialised (its libraries or
/// `mpirun` missing or broken), or, in a build without the `mpi` feature,
/// if `mpirun` started several processes: each would train alone; the
/// message names the fix (`--features mpi`, `cargo xtask-mpi`).
pub fn init() -> Result<Option<Arc<dyn Collective>>, Error> {
    let Some(size) = launched_world_size() else {
        return Ok(None);
    };
    #[cfg(feature = "mpi")]
    {
        let _ = size;
        Ok(Some(Arc::new(Mpi::init()?)))
    }
    #[cfg(not(feature = "mpi"))]
    {
        if size > 1 {
            return Err(Error::Distributed {
                detail: format!(
                    "mpirun started {size} processes, but this program was built without \
                     hebb-distributed's `mpi` feature: each would train alone; build it with \
                     `--features mpi` (the xtask: `cargo build -p xtask --release --features mpi`, \
                     or `cargo xtask-mpi`) and install OpenMPI (Debian: libopenmpi-dev openmpi-bin)"
                ),
            });
        }
        Ok(None)
    }
}

/// The group of one process, outside `mpirun`: every collective leaves its
/// buffer as it is (the sum over one rank). What NCCL runs over on a
/// single GPU (world size 1), and a stand-in where a program wants a group
/// either way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn engine(&self) -> &str {
        "one process"
    }

    fn all_reduce_sum(&self, _: &mut [f32]) -> Result<(), Error> {
        Ok(())
    }

    fn all_reduce_sum_f64(&self, _: &mut [f64]) -> Result<(), Error> {
        Ok(())
    }

    fn broadcast(&self, _: &mut [f32], _: usize) -> Result<(), Error> {
        Ok(())
    }

    fn broadcast_bytes(&self, _: &mut Vec<u8>, _: usize) -> Result<(), Error> {
        Ok(())
    }
}

/// The line a data-parallel program prints first: `data-parallel over 2
/// workers (MPI)`.
pub fn describe(group: &dyn Collective) -> String {
    format!(
        "data-parallel over {} worker{} ({})",
        group.size(),
        if group.size() == 1 { "" } else { "s" },
        group.engine()
    )
}
