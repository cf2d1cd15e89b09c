//! MPI's world as a [`Collective`], on a thread of its own.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use hebb_models::sequential::Collective;
use hebb_models::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

/// The caller's buffer, lent to the MPI thread for one call: the caller
/// waits for the reply before it touches the buffer again, so the MPI
/// thread is its only user meanwhile (no copy, no allocation per call).
struct Lent<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: a `Lent` is made from a `&mut [T]` whose owner blocks until the
// MPI thread replies (or is gone, having dropped the request), so the
// buffer outlives its use there and nothing else accesses it meanwhile.
unsafe impl<T: Send> Send for Lent<T> {}

impl<T> Lent<T> {
    fn new(buffer: &mut [T]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
        }
    }

    /// The buffer, on the MPI thread.
    ///
    /// # Safety
    /// Only while the lender waits for the reply (see `Lent`).
    unsafe fn get(&mut self) -> &mut [T] {
        // SAFETY: see the type's docs; `ptr` and `len` come from a live slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// One collective call on a lent buffer, and where to say it is done.
enum Request {
    SumF32(Lent<f32>, Sender<()>),
    SumF64(Lent<f64>, Sender<()>),
    Broadcast(Lent<f32>, usize, Sender<()>),
    BroadcastBytes(Vec<u8>, usize, Sender<Vec<u8>>),
    /// `MPI_Abort` with this code: ends every process of the world.
    Abort(i32),
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
    // The sums' receive buffers, grown to the largest call and kept.
    let (mut sum_f32, mut sum_f64) = (Vec::<f32>::new(), Vec::<f64>::new());
    while let Ok(request) = requests.recv() {
        match request {
            Request::SumF32(mut lent, reply) => {
                // SAFETY: the caller waits for `reply`.
                let buffer = unsafe { lent.get() };
                sum_f32.resize(buffer.len(), 0.0);
                world.all_reduce_into(&*buffer, &mut sum_f32[..], SystemOperation::sum());
                buffer.copy_from_slice(&sum_f32);
                let _ = reply.send(());
            }
            Request::SumF64(mut lent, reply) => {
                // SAFETY: the caller waits for `reply`.
                let buffer = unsafe { lent.get() };
                sum_f64.resize(buffer.len(), 0.0);
                world.all_reduce_into(&*buffer, &mut sum_f64[..], SystemOperation::sum());
                buffer.copy_from_slice(&sum_f64);
                let _ = reply.send(());
            }
            Request::Broadcast(mut lent, root, reply) => {
                let root = world.process_at_rank(i32::try_from(root).unwrap_or(0));
                // SAFETY: the caller waits for `reply`.
                root.broadcast_into(unsafe { lent.get() });
                let _ = reply.send(());
            }
            Request::Abort(code) => world.abort(code),
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
        self.call("all-reduce", |tx| Request::SumF32(Lent::new(buffer), tx))
    }

    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()> {
        self.call("all-reduce", |tx| Request::SumF64(Lent::new(buffer), tx))
    }

    fn broadcast(&self, buffer: &mut [f32], root: usize) -> Result<()> {
        self.call("broadcast", |tx| {
            Request::Broadcast(Lent::new(buffer), root, tx)
        })
    }

    /// `MPI_Abort(MPI_COMM_WORLD, code)` on the MPI thread: mpirun ends
    /// every rank. Waits there, as the process is about to end.
    fn abort(&self, code: i32) {
        if let Ok(guard) = self.requests.lock()
            && let Some(sender) = guard.as_ref()
            && sender.send(Request::Abort(code)).is_ok()
        {
            loop {
                std::thread::park();
            }
        }
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        *bytes = self.call("broadcast", |tx| {
            Request::BroadcastBytes(std::mem::take(bytes), root, tx)
        })?;
        Ok(())
    }
}
