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
