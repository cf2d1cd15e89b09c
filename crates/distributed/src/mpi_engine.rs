//! MPI's world as a [`Collective`], on a thread of its own.

use std::fmt;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use hebb_models::sequential::Collective;
use hebb_models::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

/// One collective call and where its result goes.
enum Request {
    SumF32(Vec<f32>, Sender<Vec<f32>>),
    SumF64(Vec<f64>, Sender<Vec<f64>>),
    Broadcast(Vec<f32>, usize, Sender<Vec<f32>>),
    BroadcastBytes(Vec<u8>, usize, Sender<Vec<u8>>),
}

/// MPI's `MPI_COMM_WORLD`, initialised on its own thread, which makes every
/// collective call (`MPI_THREAD_FUNNELED`) and finalises MPI when the last
/// handle is dropped.
pub struct Mpi {
    rank: usize,
    size: usize,
    requests: Mutex<Option<Sender<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Mpi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mpi {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

fn broken(what: &str) -> Error {
    Error::Distributed {
        detail: format!("MPI {what}: the MPI thread has stopped (MPI failed or was finalised)"),
    }
}

impl Mpi {
    /// Initialises MPI (once per process) on a new thread.
    ///
    /// # Errors
    /// [`Error::Distributed`] if MPI was initialised before or cannot be.
    pub fn init() -> Result<Self> {
        let (ready_tx, ready_rx) = channel::<std::result::Result<(usize, usize), String>>();
        let (tx, rx) = channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("mpi".into())
            .spawn(move || serve(&ready_tx, &rx))
            .map_err(|e| Error::Distributed {
                detail: format!("cannot start the MPI thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok((rank, size))) => Ok(Self {
                rank,
                size,
                requests: Mutex::new(Some(tx)),
                thread: Some(thread),
            }),
            Ok(Err(detail)) => Err(Error::Distributed { detail }),
            Err(_) => Err(broken("initialisation")),
        }
    }

    fn call<T>(&self, what: &str, make: impl FnOnce(Sender<T>) -> Request) -> Result<T> {
        let (tx, rx) = channel();
        {
            let guard = self.requests.lock().map_err(|_| broken(what))?;
            let sender = guard.as_ref().ok_or_else(|| broken(what))?;
            sender.send(make(tx)).map_err(|_| broken(what))?;
        }
        rx.recv().map_err(|_| broken(what))
    }
}

/// The MPI thread: initialises MPI, answers requests until every sender
/// is gone, then finalises MPI (dropping the universe).
fn serve(
    ready: &Sender<std::result::Result<(usize, usize), String>>,
    requests: &Receiver<Request>,
) {
    let Some((universe, _threading)) = mpi::initialize_with_threading(mpi::Threading::Funneled)
    else {
        let _ = ready.send(Err(
            "MPI was initialised already in this process (or cannot be)".into(),
        ));
        return;
    };
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    let _ = ready.send(Ok((
        usize::try_from(rank).unwrap_or(0),
        usize::try_from(size).unwrap_or(1),
    )));
    while let Ok(request) = requests.recv() {
        match request {
            Request::SumF32(send, reply) => {
                let mut sum = vec![0f32; send.len()];
                world.all_reduce_into(&send[..], &mut sum[..], SystemOperation::sum());
                let _ = reply.send(sum);
            }
            Request::SumF64(send, reply) => {
                let mut sum = vec![0f64; send.len()];
                world.all_reduce_into(&send[..], &mut sum[..], SystemOperation::sum());
                let _ = reply.send(sum);
            }
            Request::Broadcast(mut buffer, root, reply) => {
                let root = world.process_at_rank(i32::try_from(root).unwrap_or(0));
                root.broadcast_into(&mut buffer[..]);
                let _ = reply.send(buffer);
            }
            Request::BroadcastBytes(mut bytes, root, reply) => {
                let root = world.process_at_rank(i32::try_from(root).unwrap_or(0));
                let mut len = [bytes.len() as u64];
                root.broadcast_into(&mut len[..]);
                bytes.resize(usize::try_from(len[0]).unwrap_or(0), 0);
                root.broadcast_into(&mut bytes[..]);
                let _ = reply.send(bytes);
            }
        }
    }
    drop(universe);
}

impl Drop for Mpi {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which finalises MPI.
        if let Ok(mut guard) = self.requests.lock() {
            guard.take();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn engine(&self) -> &str {
        "MPI"
    }

    fn all_reduce_sum(&self, buffer: &mut [f32]) -> Result<()> {
        let sum = self.call("all-reduce", |tx| Request::SumF32(buffer.to_vec(), tx))?;
        buffer.copy_from_slice(&sum);
        Ok(())
    }

    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()> {
        let sum = self.call("all-reduce", |tx| Request::SumF64(buffer.to_vec(), tx))?;
        buffer.copy_from_slice(&sum);
        Ok(())
    }

    fn broadcast(&self, buffer: &mut [f32], root: usize) -> Result<()> {
        let got = self.call("broadcast", |tx| {
            Request::Broadcast(buffer.to_vec(), root, tx)
        })?;
        buffer.copy_from_slice(&got);
        Ok(())
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        *bytes = self.call("broadcast", |tx| {
            Request::BroadcastBytes(std::mem::take(bytes), root, tx)
        })?;
        Ok(())
    }
}
