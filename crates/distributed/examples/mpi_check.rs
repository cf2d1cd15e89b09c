//! Data-parallel training on MPI, checked: run under `mpirun -np 2` (CI
//! does, see `.ci/run`).
//!
//! - `mpi_check` (no argument): a data-parallel fit of an MLP (4 epochs,
//!   global batch 32, an uneven last batch, validation split) ends with
//!   the weights of a one-process fit within 1e-5 relative, the same
//!   History, and bit-identical weights on every rank; it prints the
//!   figures and the time per step spent in the all-reduce.
//! - `mpi_check convnet`: the same for a small convnet with Dropout
//!   (Conv2D, MaxPooling2D, Flatten, Dropout, Dense) on 8x8 images: the
//!   workers' Dropout masks together are the one process's.
//! - `mpi_check nccl` (built with `--features mpi,cuda`): the MLP on this
//!   rank's GPU, its gradients all-reduced by NCCL in device memory,
//!   against a one-process fit on the GPU (CI runs it on the CPU stand-in
//!   driver and NCCL of `scripts/fake-cuda`). Outside mpirun it runs NCCL
//!   over one process (world size 1), for a GPU machine without MPI.
//! - `mpi_check kill`: rank 1 kills itself (`kill -9`) in the second
//!   epoch; the others must not hang (mpirun ends the job).
//! - `mpi_check checkpoint DIR`, then `mpi_check resume DIR`: the first
//!   trains epoch by epoch, rank 0 saving the model (with its optimiser
//!   state) after each, until rank 1 kills itself in the third epoch; the
//!   second loads the last checkpoint on every rank, trains the remaining
//!   epochs from `initial_epoch`, and must end with the weights of an
//!   uninterrupted one-process fit (within 1e-5).

use std::sync::Arc;
use std::time::Instant;

use hebb_layers::{Activation, Conv2D, Dropout, MaxPooling2D};
use hebb_models::sequential::callbacks::{Callback, Control};
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{Collective, FitOptions, Sequential, load_model};
use hebb_tensor::{Device, Tensor};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

fn data() -> Fallible<(Tensor, Tensor)> {
    let n = 203; // 162 train (the last batch of 32 has 2), 41 validate
    let x: Vec<f32> = (0..n * 12)
        .map(|i| ((i * 7919 % 211) as f32 / 211.0) - 0.5)
        .collect();
    let y: Vec<f32> = (0..n).map(|i| ((i * 31 % 17) % 3) as f32).collect();
    Ok((Tensor::from_vec(x, &[n, 3, 4])?, Tensor::from_vec(y, &[n])?))
}

fn model(seed: u64) -> Fallible<Sequential> {
    let mut m = Sequential::new().with_seed(seed);
    m.add(Flatten::new().input_shape(&[3, 4]))?;
    m.add(Dense::new(64).activation(Activation::Relu))?;
    m.add(Dense::new(3).activation(Activation::Softmax))?;
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
    Ok(m)
}

/// A small convnet with Dropout on 8x8 images.
fn convnet(seed: u64) -> Fallible<Sequential> {
    let mut m = Sequential::new().with_seed(seed);
    m.add(
        Conv2D::new(4, [3, 3])
            .activation(Activation::Relu)
            .input_shape(&[8, 8, 1]),
    )?;
    m.add(MaxPooling2D::new([2, 2]))?;
    m.add(Flatten::new())?;
    m.add(Dropout::new(0.5))?;
    m.add(Dense::new(3).activation(Activation::Softmax))?;
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
    Ok(m)
}

/// `data()`'s labels with 8x8 images whose brightness follows them.
fn images() -> Fallible<(Tensor, Tensor)> {
    let (_, y) = data()?;
    let labels = y.to_vec();
    let x: Vec<f32> = (0..labels.len() * 64)
        .map(|i| labels[i / 64] * 0.3 + ((i * 7919 % 211) as f32 / 211.0) - 0.5)
        .collect();
    Ok((Tensor::from_vec(x, &[labels.len(), 8, 8, 1])?, y))
}

/// What the equivalence check trains: a model builder, its data, the device.
struct Job {
    build: fn(u64) -> Fallible<Sequential>,
    data: fn() -> Fallible<(Tensor, Tensor)>,
    device: Device,
}

fn options(callbacks: Vec<Box<dyn Callback>>) -> FitOptions {
    FitOptions {
        batch_size: 32,
        epochs: 4,
        verbose: 0,
        validation_split: 0.2,
        callbacks,
        ..Default::default()
    }
}

/// Kills this process with SIGKILL at the first batch of epoch `.0` (0-based).
struct KillSelf(usize);

impl Callback for KillSelf {
    fn on_batch_end(&mut self, epoch: usize, _: usize, _: f32) -> hebb_models::Result<Control> {
        if epoch == self.0 {
            eprintln!("rank 1: kill -9 {}", std::process::id());
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        Ok(Control::Continue)
    }
}

fn flat(m: &Sequential) -> Vec<f32> {
    m.get_weights().iter().flat_map(Tensor::to_vec).collect()
}

fn max_relative(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs() / scale))
}

/// The checkpoint written after `epoch` epochs.
fn checkpoint(dir: &str, epoch: usize) -> std::path::PathBuf {
    std::path::Path::new(dir).join(format!("model.{epoch}.hebb"))
}

/// `checkpoint DIR` and `resume DIR`: train epoch by epoch, saving after
/// each; resume from the last checkpoint and compare with one process.
fn checkpoint_and_resume(group: &Arc<dyn Collective>, resume: bool, dir: &str) -> Fallible<()> {
    let rank = group.rank();
    let (x, y) = data()?;
    let epochs = options(Vec::new()).epochs;
    let (mut m, start) = if resume {
        let done = (1..=epochs)
            .rev()
            .find(|&e| checkpoint(dir, e).exists())
            .ok_or("no checkpoint to resume from")?;
        if rank == 0 {
            println!(
                "resuming after epoch {done} from {}",
                checkpoint(dir, done).display()
            );
        }
        (load_model(checkpoint(dir, done))?, done)
    } else {
        (model(7 + rank as u64 * 100)?, 0)
    };
    m.distribute(group.clone());
    for epoch in start..epochs {
        let callbacks: Vec<Box<dyn Callback>> = if !resume && rank == 1 {
            vec![Box::new(KillSelf(2))]
        } else {
            Vec::new()
        };
        let mut o = options(callbacks);
        o.initial_epoch = epoch;
        o.epochs = epoch + 1;
        m.fit(&x, &y, o)?;
        m.save(checkpoint(dir, epoch + 1), true)?; // rank 0 writes
    }
    let mine = flat(&m);
    let mut root = mine.clone();
    group.broadcast(&mut root, 0)?;
    if root != mine {
        return Err(format!("rank {rank}'s weights differ from rank 0's").into());
    }
    if rank == 0 {
        let mut single = model(7)?;
        single.fit(&x, &y, options(Vec::new()))?;
        let d = max_relative(&flat(&single), &mine);
        println!(
            "resumed fit against an uninterrupted one-process fit: max relative difference {d:.2e} (limit 1e-5)"
        );
        if d > 1e-5 {
            return Err("the resumed fit differs from the uninterrupted one".into());
        }
    }
    Ok(())
}

fn main() -> Fallible<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `nccl` outside mpirun: NCCL over one process (world size 1), which
    // needs no MPI (a GPU machine without OpenMPI; scripts/gpu-check.sh).
    let group: Arc<dyn Collective> = match hebb_distributed::init()? {
        Some(g) => g,
        None if args == ["nccl"] => Arc::new(hebb_distributed::Single),
        None => return Err("run me under mpirun -np 2".into()),
    };
    let rank = group.rank();
    if rank == 0 {
        println!("{}", hebb_distributed::describe(group.as_ref()));
    }
    let mlp = Job {
        build: model,
        data,
        device: Device::Cpu,
    };
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [mode @ ("checkpoint" | "resume"), dir] => {
            checkpoint_and_resume(&group, mode == "resume", dir)
        }
        [] => equivalence(group, &mlp, false),
        ["kill"] => equivalence(group, &mlp, true),
        ["convnet"] => {
            let job = Job {
                build: convnet,
                data: images,
                device: Device::Cpu,
            };
            equivalence(group, &job, false)
        }
        ["nccl"] => {
            let device = hebb_distributed::local_device(Device::cuda(0)?)?;
            let (group, line) = hebb_distributed::on_device(group, device)?;
            if rank == 0 {
                println!("{line}");
            }
            if !group.engine().ends_with("NCCL") {
                return Err(format!("NCCL was not used: {line}").into());
            }
            let job = Job {
                build: model,
                data,
                device,
            };
            equivalence(group, &job, false)
        }
        _ => Err("usage: mpi_check [kill | convnet | nccl | checkpoint DIR | resume DIR]".into()),
    }
}

/// Trains `job` data-parallel (rank 1 killing itself in epoch 2 with
/// `kill`) and checks it against one process: the same weights within
/// 1e-5 relative, the same History and evaluation, and the weights
/// bit-identical on every rank; prints the all-reduce's timing.
fn equivalence(group: Arc<dyn Collective>, job: &Job, kill: bool) -> Fallible<()> {
    let rank = group.rank();
    let (x, y) = (job.data)()?;
    let (x, y) = (x.to_device(job.device)?, y.to_device(job.device)?);
    // Another seed on every rank: rank 0's weights are broadcast.
    let mut m = (job.build)(7 + rank as u64 * 100)?;
    m.to_device(job.device)?;
    m.distribute(group.clone());
    let callbacks: Vec<Box<dyn Callback>> = if kill && rank == 1 {
        vec![Box::new(KillSelf(1))]
    } else {
        Vec::new()
    };
    let start = Instant::now();
    let history = m.fit(&x, &y, options(callbacks))?;
    let fit_seconds = start.elapsed().as_secs_f64();
    let evaluated = m.evaluate(&x, &y, 50, 0)?;

    // Every rank holds rank 0's weights, bit for bit.
    let mine = flat(&m);
    let mut root = mine.clone();
    group.broadcast(&mut root, 0)?;
    let mut differ = [f64::from(u8::from(root != mine))];
    group.all_reduce_sum_f64(&mut differ)?;
    if differ[0] != 0.0 {
        return Err(format!("{} ranks' weights differ from rank 0's", differ[0]).into());
    }

    // The all-reduce of the fit's fused buffer, timed alone, on the
    // model's device.
    let floats: usize = m
        .trainable_variables()
        .iter()
        .map(|v| v.value().len())
        .sum();
    let reps = 50;
    let time = |len: usize| -> Fallible<f64> {
        let mut buffer = Tensor::ones(&[len]).to_device(job.device)?;
        let t = Instant::now();
        for _ in 0..reps {
            group.all_reduce_sum_tensor(&mut buffer)?;
        }
        let _ = buffer.try_to_vec()?; // waits for a GPU
        Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(reps))
    };
    let allreduce_us = time(floats + 1)?;
    // The same for the MNIST MLP of lecture 13.5 (784-128-10: 101,770 floats).
    let mlp_us = time(101_770 + 1)?;

    if rank == 0 {
        let mut single = (job.build)(7)?;
        single.to_device(job.device)?;
        let single_history = single.fit(&x, &y, options(Vec::new()))?;
        let single_evaluated = single.evaluate(&x, &y, 50, 0)?;
        let weights = max_relative(&flat(&single), &mine);
        println!(
            "weights: max |difference| / max |weight| against one process = {weights:.2e} (limit 1e-5)"
        );
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            let (a, b) = (
                history.get(key).ok_or(key)?,
                single_history.get(key).ok_or(key)?,
            );
            println!("{key}: {a:?} (one process: {b:?})");
            if max_relative(b, a) > 1e-5 {
                return Err(format!("{key} differs from one process's").into());
            }
        }
        println!("evaluate: {evaluated:?} (one process: {single_evaluated:?})");
        println!("the weights are identical on all {} ranks", group.size());
        println!(
            "fit {fit_seconds:.3} s on {}; all-reduce ({}) of {floats} floats: {allreduce_us:.0} us \
             a step; of the 13.5 MLP's 101,770: {mlp_us:.0} us",
            job.device,
            group.engine()
        );
        if weights > 1e-5 || max_relative(&single_evaluated, &evaluated) > 1e-5 {
            return Err("the data-parallel fit differs from one process's".into());
        }
    }
    Ok(())
}
