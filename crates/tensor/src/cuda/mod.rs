//! The CUDA backend (cargo feature `cuda`): one context, stream and cuBLAS
//! handle per device, kernels compiled once per device with NVRTC, and the
//! device storage of a [`Tensor`].
//!
//! Every op on a device enqueues its kernels on that device's one stream and
//! returns without waiting; only a copy to the host waits. The CUDA
//! libraries (`libcuda`, `libcublas`, `libnvrtc`) are opened at run time, so
//! a build with this feature runs on machines without them and answers
//! [`Error::NoCudaDevice`] when a GPU is asked for.
//!
//! Custom fused kernels (the optimisers' updates) go through
//! [`launch_elementwise`]: a CUDA C source, compiled once and cached, over
//! tensors of one device and equal length.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};

use crate::tensor::Storage;
use crate::{Device, Error, Result, Tensor};

/// Threads per block for elementwise kernels.
pub(crate) const BLOCK: u32 = 256;

/// One GPU: its context, its stream (every op of this device runs on it, in
/// order), its cuBLAS handle and its compiled modules.
pub(crate) struct Backend {
    pub(crate) ordinal: usize,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) blas: CudaBlas,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    /// Kernels looked up so far, by source name and kernel name.
    functions: Mutex<HashMap<&'static str, HashMap<String, CudaFunction>>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{}", self.ordinal)
    }
}

/// The backends made so far, by ordinal.
fn registry() -> &'static Mutex<HashMap<usize, Arc<Backend>>> {
    static BACKENDS: OnceLock<Mutex<HashMap<usize, Arc<Backend>>>> = OnceLock::new();
    BACKENDS.get_or_init(Default::default)
}

/// Whether the driver, cuBLAS and NVRTC libraries load, checked once
/// (cudarc panics on first use of a library it cannot open, so nothing
/// touches them before this says yes).
fn libraries() -> Result<()> {
    static FOUND: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            // SAFETY: each call only tries `dlopen` on the library's usual
            // names and closes what it opened; no symbol is called.
            let checks = unsafe {
                [
                    ("libcuda (the NVIDIA driver)", cudarc::driver::sys::is_culib_present()),
                    ("libcublas (cuBLAS)", cudarc::cublas::sys::is_culib_present()),
                    ("libnvrtc (NVRTC)", cudarc::nvrtc::sys::is_culib_present()),
                ]
            };
            match checks.iter().find(|(_, present)| !present) {
                Some((name, _)) => Err(format!(
                    "{name} could not be loaded (install the CUDA driver and toolkit libraries, or add their folder to LD_LIBRARY_PATH)"
                )),
                None => Ok(()),
            }
        })
        .clone()
        .map_err(|reason| Error::NoCudaDevice { reason })
}

/// The backend of device `ordinal`, made at the first call.
///
/// # Errors
/// [`Error::NoCudaDevice`] when a library is missing or there is no such device.
pub(crate) fn backend(ordinal: usize) -> Result<Arc<Backend>> {
    libraries()?;
    let mut backends = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = backends.get(&ordinal) {
        return Ok(b.clone());
    }
    let no_device = |e: &dyn std::fmt::Display| Error::NoCudaDevice {
        reason: format!("cuda:{ordinal}: {e}"),
    };
    let count = CudaContext::device_count().map_err(|e| no_device(&e))?;
    if ordinal >= usize::try_from(count).unwrap_or(0) {
        return Err(no_device(&format_args!(
            "the driver sees {count} device(s)"
        )));
    }
    let ctx = CudaContext::new(ordinal).map_err(|e| no_device(&e))?;
    // SAFETY: every tensor of this device is used on this one stream, in
    // order, so cudarc's cross-stream events are not needed.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.default_stream();
    let blas = CudaBlas::new(stream.clone()).map_err(|e| no_device(&e))?;
    let b = Arc::new(Backend {
        ordinal,
        stream,
        blas,
        modules: Mutex::new(HashMap::new()),
        functions: Mutex::new(HashMap::new()),
    });
    backends.insert(ordinal, b.clone());
    Ok(b)
}

/// The number of GPUs the driver sees.
///
/// # Errors
/// [`Error::NoCudaDevice`] when a CUDA library is missing or the driver fails.
pub fn device_count() -> Result<usize> {
    libraries()?;
    let count = CudaContext::device_count().map_err(|e| Error::NoCudaDevice {
        reason: format!("{e}"),
    })?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The stream every op of `device` runs on, in order, for a library that
/// enqueues its own work among hebb's ops (NCCL's collectives in
/// data-parallel training): work on this stream needs no synchronisation
/// with the tensors' ops. The device's context is made current on the
/// calling thread.
///
/// # Errors
/// [`Error::NoCudaDevice`] for the CPU or a GPU that cannot be used.
pub fn stream(device: Device) -> Result<Arc<CudaStream>> {
    let Device::Cuda(ordinal) = device else {
        return Err(Error::NoCudaDevice {
            reason: "the CPU has no CUDA stream".into(),
        });
    };
    let backend = backend(ordinal)?;
    backend
        .stream
        .context()
        .bind_to_thread()
        .map_err(fail("bind_to_thread"))?;
    Ok(backend.stream.clone())
}

/// The device memory of a GPU tensor, to be written in place by work on
/// its device's [`stream`] (copied first if another tensor shares it, as
/// every in-place op), or `None` for a tensor on the CPU. The buffer may
/// hold more elements than the tensor (one for an empty tensor); the first
/// [`Tensor::len`] are the tensor's.
///
/// # Errors
/// [`Error::Cuda`] if the copy of a shared buffer fails.
pub fn device_buffer_mut(tensor: &mut Tensor) -> Result<Option<&mut CudaSlice<f32>>> {
    match &mut tensor.storage {
        Storage::Cuda(c) => c.make_mut().map(Some),
        Storage::Cpu(_) => Ok(None),
    }
}

/// `cuda:0` for a test that needs a GPU, or `None` after printing
/// `skipped: <why>` to standard error: the CPU/GPU parity tests return
/// early with it where there is no GPU, and the runs that must not skip
/// (`scripts/fake-cuda/test.sh`, `scripts/gpu-check.sh`) look for that line.
pub fn gpu_or_skip() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// Turns a driver, cuBLAS or NVRTC error into [`Error::Cuda`] for `op`.
pub(crate) fn fail<E: std::fmt::Debug>(op: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Cuda {
        op,
        message: format!("{e:?}"),
    }
}

/// A CUDA C source whose `extern "C" __global__` kernels are compiled with
/// NVRTC the first time a device needs one, and cached for the process.
///
/// `name` identifies the source in the cache and in errors, so it must be
/// unique (the path of the `.cu` file is a good choice).
#[derive(Debug, Clone, Copy)]
pub struct CudaSource {
    /// Unique name, e.g. `"hebb-optim/adam.cu"`.
    pub name: &'static str,
    /// The CUDA C code, usually `include_str!` of a `.cu` file.
    pub code: &'static str,
}

/// The CUDA C sources of this crate's ops, one per op folder (each is
/// compiled at its first use on a device; [`compile_check`] compiles one
/// without a GPU).
pub const SOURCES: [&CudaSource; 11] = [
    &crate::ops::batch_norm::cuda_kernel::SOURCE,
    &crate::ops::binary::cuda_kernel::SOURCE,
    &crate::ops::conv::cuda_kernel::SOURCE,
    &crate::ops::dropout::cuda_kernel::SOURCE,
    &crate::ops::index::cuda_kernel::SOURCE,
    &crate::ops::matmul::cuda_kernel::SOURCE,
    &crate::ops::pack::cuda_kernel::SOURCE,
    &crate::ops::pool::cuda_kernel::SOURCE,
    &crate::ops::reduce::cuda_kernel::SOURCE,
    &crate::ops::softmax::cuda_kernel::SOURCE,
    &crate::ops::unary::cuda_kernel::SOURCE,
];

/// NVRTC's options for every source: IEEE division and square root and no
/// flush-to-zero, so results follow the CPU kernels to rounding.
fn compile_options() -> cudarc::nvrtc::CompileOptions {
    cudarc::nvrtc::CompileOptions {
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        fmad: Some(true),
        ..Default::default()
    }
}

/// Compiles `source` to PTX with NVRTC, without a GPU (only `libnvrtc` is
/// needed): what tests use to check every kernel source on any machine.
///
/// # Errors
/// [`Error::NoCudaDevice`] if NVRTC does not load; [`Error::Cuda`] with
/// NVRTC's log if the source does not compile.
pub fn compile_check(source: &CudaSource) -> Result<()> {
    // SAFETY: only tries to `dlopen` libnvrtc.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::NoCudaDevice {
            reason: "libnvrtc (NVRTC) could not be loaded".into(),
        });
    }
    cudarc::nvrtc::compile_ptx_with_opts(source.code, compile_options())
        .map(|_| ())
        .map_err(|e| Error::Cuda {
            op: "compile",
            message: format!("{}: {e}", source.name),
        })
}

impl Backend {
    /// The kernel `kernel` of `source`, compiling the source at its first use.
    pub(crate) fn function(&self, source: &CudaSource, kernel: &str) -> Result<CudaFunction> {
        let cached = self
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source.name)
            .and_then(|kernels| kernels.get(kernel).cloned());
        if let Some(f) = cached {
            return Ok(f);
        }
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match modules.get(source.name) {
                Some(m) => m.clone(),
                None => {
                    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source.code, compile_options())
                        .map_err(|e| Error::Cuda {
                            op: "compile",
                            message: format!("{}: {e}", source.name),
                        })?;
                    let m = self
                        .stream
                        .context()
                        .load_module(ptx)
                        .map_err(fail("load_module"))?;
                    modules.insert(source.name, m.clone());
                    m
                }
            }
        };
        let f = module.load_function(kernel).map_err(|e| Error::Cuda {
            op: "load_function",
            message: format!("{}::{kernel}: {e:?}", source.name),
        })?;
        self.functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(source.name)
            .or_default()
            .insert(kernel.to_string(), f.clone());
        Ok(f)
    }

    /// `n` zeros on this device.
    pub(crate) fn zeros(&self, n: usize) -> Result<CudaSlice<f32>> {
        self.stream
            .alloc_zeros::<f32>(n.max(1))
            .map_err(|e| alloc_failed(n, e))
    }

    /// A buffer of `n` elements (at least one) for a kernel to fill: its
    /// contents are whatever the memory held, so only for outputs that the
    /// launch that follows writes completely (saves the memset of
    /// [`zeros`](Self::zeros), one driver call per op).
    pub(crate) fn output(&self, n: usize) -> Result<CudaSlice<f32>> {
        // SAFETY: every bit pattern is a valid f32, and callers overwrite
        // each of the `n` elements before anything reads them (the fake
        // driver's test runs fill fresh memory with NaN to check that).
        unsafe { self.stream.alloc::<f32>(n.max(1)) }.map_err(|e| alloc_failed(n, e))
    }

    /// Copies `data` to this device.
    pub(crate) fn upload<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        data: &[T],
    ) -> Result<CudaSlice<T>> {
        if data.is_empty() {
            // cudarc cannot allocate 0 bytes; a 1-element buffer stands in.
            return self.stream.alloc_zeros::<T>(1).map_err(fail("upload"));
        }
        self.stream.clone_htod(data).map_err(fail("upload"))
    }

    /// Copies the first `len` elements of `data` to the host (waits for the stream).
    pub(crate) fn download(&self, data: &CudaSlice<f32>, len: usize) -> Result<Vec<f32>> {
        let mut host = self.stream.clone_dtoh(data).map_err(fail("download"))?;
        host.truncate(len);
        Ok(host)
    }
}

/// The error for an allocation of `n` f32 that failed, with its size (as
/// PyTorch's "tried to allocate").
fn alloc_failed(n: usize, e: cudarc::driver::DriverError) -> Error {
    Error::Cuda {
        op: "alloc",
        message: format!(
            "could not allocate {n} f32 ({:.1} MiB): {e:?}",
            n as f64 * 4.0 / (1024.0 * 1024.0)
        ),
    }
}

/// A launch configuration with one thread per element of `n`.
pub(crate) fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).max(1);
    LaunchConfig {
        grid_dim: (u32::try_from(blocks).unwrap_or(u32::MAX), 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// A tensor's elements on a GPU, with a host copy made at the first
/// `as_slice` (tensors are immutable, so the copy stays valid; in-place
/// kernels replace the whole storage).
#[derive(Clone)]
pub(crate) struct CudaStorage {
    /// At least one element (cudarc cannot allocate 0 bytes); the tensor's
    /// shape says how many are used.
    pub(crate) data: Arc<CudaSlice<f32>>,
    pub(crate) backend: Arc<Backend>,
    pub(crate) host: Arc<OnceLock<Vec<f32>>>,
}

impl Drop for CudaStorage {
    /// cudarc frees device memory without making its context current on
    /// the dropping thread; a tensor dropped on a thread that never ran a
    /// GPU op would fail to free and leave an error that the next op of any
    /// thread reports. The last reference binds the context first.
    fn drop(&mut self) {
        if Arc::strong_count(&self.data) == 1 {
            // A failure here is recorded by cudarc's own free just after.
            let _ = self.backend.stream.context().bind_to_thread();
        }
    }
}

impl CudaStorage {
    pub(crate) fn new(data: CudaSlice<f32>, backend: Arc<Backend>) -> Self {
        Self {
            data: Arc::new(data),
            backend,
            host: Arc::new(OnceLock::new()),
        }
    }

    pub(crate) fn device(&self) -> Device {
        Device::Cuda(self.backend.ordinal)
    }

    /// The device buffer for an in-place kernel: copied first if another
    /// tensor shares it (copy-on-write), and the host copy forgotten.
    pub(crate) fn make_mut(&mut self) -> Result<&mut CudaSlice<f32>> {
        self.host = Arc::new(OnceLock::new());
        if Arc::get_mut(&mut self.data).is_none() {
            let copy = self
                .backend
                .stream
                .clone_dtod(self.data.as_ref())
                .map_err(fail("copy"))?;
            self.data = Arc::new(copy);
        }
        Arc::get_mut(&mut self.data).ok_or_else(|| Error::Cuda {
            op: "copy",
            message: "device buffer still shared after copying".into(),
        })
    }
}

impl Tensor {
    /// A tensor of `shape` whose elements are in `data` on `backend`'s device.
    pub(crate) fn from_cuda(
        data: CudaSlice<f32>,
        shape: Vec<usize>,
        backend: Arc<Backend>,
    ) -> Self {
        Self {
            shape,
            storage: Storage::Cuda(CudaStorage::new(data, backend)),
        }
    }

    /// The device storage, or `None` on the CPU.
    pub(crate) fn cuda(&self) -> Option<&CudaStorage> {
        match &self.storage {
            Storage::Cuda(c) => Some(c),
            Storage::Cpu(_) => None,
        }
    }
}

/// Runs `kernel` of `source` with one thread per element over tensors of
/// one CUDA device and one length `n`: the kernel is called as
///
/// ```c
/// extern "C" __global__ void kernel(size_t n, float *out_0, ..., const float *in_0, ..., float s_0, ...)
/// ```
///
/// with the `outputs` (updated in place; a buffer another tensor shares is
/// copied first), then the `inputs`, then the `scalars`. It is how the
/// optimisers run their fused updates.
///
/// # Errors
/// [`Error::DeviceMismatch`] unless every tensor is on the same CUDA device;
/// [`Error::ShapeMismatch`] unless all have the same number of elements;
/// [`Error::Cuda`] if the source does not compile or the launch fails.
pub fn launch_elementwise(
    source: &CudaSource,
    kernel: &'static str,
    outputs: &mut [&mut Tensor],
    inputs: &[&Tensor],
    scalars: &[f32],
) -> Result<()> {
    let first = outputs
        .first()
        .map(|t| &**t)
        .or(inputs.first().copied())
        .ok_or_else(|| Error::InvalidArgument {
            op: kernel,
            reason: "no tensors to run the kernel over".into(),
        })?;
    let (device, n, shape) = (first.device(), first.len(), first.shape().to_vec());
    let backend = match first.cuda() {
        Some(c) => c.backend.clone(),
        None => {
            return Err(Error::DeviceMismatch {
                op: kernel,
                lhs: device,
                rhs: Device::Cuda(0),
            });
        }
    };
    for t in outputs.iter().map(|t| &**t).chain(inputs.iter().copied()) {
        if t.device() != device {
            return Err(Error::DeviceMismatch {
                op: kernel,
                lhs: device,
                rhs: t.device(),
            });
        }
        if t.len() != n {
            return Err(Error::ShapeMismatch {
                op: kernel,
                lhs: shape,
                rhs: t.shape().to_vec(),
                detail: "the fused kernel needs tensors of equal length".into(),
            });
        }
    }
    let func = backend.function(source, kernel)?;
    let mut outs = Vec::with_capacity(outputs.len());
    for t in outputs.iter_mut() {
        match &mut t.storage {
            Storage::Cuda(c) => outs.push(c.make_mut()?),
            Storage::Cpu(_) => unreachable_device(kernel)?,
        }
    }
    let ins: Vec<&CudaSlice<f32>> = inputs
        .iter()
        .filter_map(|t| t.cuda().map(|c| c.data.as_ref()))
        .collect();
    let len = n as u64;
    let mut launch = backend.stream.launch_builder(&func);
    launch.arg(&len);
    for o in outs.iter_mut() {
        launch.arg(&mut **o);
    }
    for i in &ins {
        launch.arg(*i);
    }
    for s in scalars {
        launch.arg(s);
    }
    // SAFETY: every buffer holds at least `n` f32 (checked above; the kernel
    // convention is one thread per element below `n`), the outputs are
    // uniquely owned, and the argument list follows the documented signature.
    unsafe { launch.launch(grid(n)) }.map_err(fail(kernel))?;
    Ok(())
}

/// The error for a CPU tensor found after the device checks (not reachable).
fn unreachable_device(op: &'static str) -> Result<()> {
    Err(Error::DeviceMismatch {
        op,
        lhs: Device::Cpu,
        rhs: Device::Cuda(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NVRTC compiles every kernel source (where libnvrtc loads; no GPU
    /// needed). The fake driver's test run (`scripts/fake-cuda/test.sh`)
    /// then launches each kernel by name.
    #[test]
    fn every_source_compiles_with_nvrtc() {
        for source in SOURCES {
            match compile_check(source) {
                Ok(()) => {}
                Err(Error::NoCudaDevice { reason }) => {
                    eprintln!("skipped: {reason}");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}
