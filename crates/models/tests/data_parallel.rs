//! Data-parallel `fit` (`Sequential::distribute`) against a single-process
//! fit, with the ranks as threads of this test: a stand-in for MPI that
//! runs the same collective calls (`hebb-distributed`'s tests run the same
//! under `mpirun -np 2`).

use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use hebb_layers::{Activation, Conv2D, Dropout, MaxPooling2D};
use hebb_models::Error;
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{Collective, FitOptions, History, Sequential};
use hebb_tensor::Tensor;

/// Ranks as threads: every collective call meets at barriers.
#[derive(Debug)]
struct Threads {
    size: usize,
    barrier: Barrier,
    sum: Mutex<Vec<f64>>,
    bytes: Mutex<Vec<u8>>,
}

#[derive(Debug)]
struct Rank {
    rank: usize,
    group: Arc<Threads>,
}

impl Rank {
    fn reduce(&self, values: &mut [f64]) {
        let g = &self.group;
        if g.barrier.wait().is_leader() {
            *g.sum.lock().unwrap() = vec![0.0; values.len()];
        }
        g.barrier.wait();
        for (s, v) in g.sum.lock().unwrap().iter_mut().zip(values.iter()) {
            *s += v;
        }
        g.barrier.wait();
        values.copy_from_slice(&g.sum.lock().unwrap());
        g.barrier.wait();
    }
}

impl Collective for Rank {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.group.size
    }
    fn engine(&self) -> &str {
        "threads"
    }
    fn all_reduce_sum(&self, buffer: &mut [f32]) -> hebb_models::Result<()> {
        let mut wide: Vec<f64> = buffer.iter().map(|&v| f64::from(v)).collect();
        self.reduce(&mut wide);
        for (b, w) in buffer.iter_mut().zip(wide) {
            *b = w as f32;
        }
        Ok(())
    }
    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> hebb_models::Result<()> {
        self.reduce(buffer);
        Ok(())
    }
    fn broadcast(&self, buffer: &mut [f32], root: usize) -> hebb_models::Result<()> {
        let mut bytes: Vec<u8> = buffer.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.broadcast_bytes(&mut bytes, root)?;
        for (b, c) in buffer.iter_mut().zip(bytes.chunks_exact(4)) {
            *b = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>, root: usize) -> hebb_models::Result<()> {
        let g = &self.group;
        g.barrier.wait();
        if self.rank == root {
            *g.bytes.lock().unwrap() = bytes.clone();
        }
        g.barrier.wait();
        *bytes = g.bytes.lock().unwrap().clone();
        g.barrier.wait();
        Ok(())
    }
}

/// `size` ranks, each running `job(rank)` on its own thread and rayon pool.
fn run_ranks<T: Send + 'static>(
    size: usize,
    job: impl Fn(Arc<dyn Collective>) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let group = Arc::new(Threads {
        size,
        barrier: Barrier::new(size),
        sum: Mutex::new(Vec::new()),
        bytes: Mutex::new(Vec::new()),
    });
    let job = Arc::new(job);
    let handles: Vec<_> = (0..size)
        .map(|rank| {
            let (group, job) = (group.clone(), job.clone());
            thread::spawn(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap();
                pool.install(|| job(Arc::new(Rank { rank, group })))
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn data() -> (Tensor, Tensor) {
    let n = 203; // 162 train (the last batch of 32 has 2), 41 validate
    let x: Vec<f32> = (0..n * 12)
        .map(|i| ((i * 7919 % 211) as f32 / 211.0) - 0.5)
        .collect();
    let y: Vec<f32> = (0..n).map(|i| ((i * 31 % 17) % 3) as f32).collect();
    (
        Tensor::from_vec(x, &[n, 3, 4]).unwrap(),
        Tensor::from_vec(y, &[n]).unwrap(),
    )
}

/// An MLP; `seed` differs per rank to show that rank 0's weights win.
fn model(seed: u64) -> Sequential {
    let mut m = Sequential::new().with_seed(seed);
    m.add(Flatten::new().input_shape(&[3, 4])).unwrap();
    m.add(Dense::new(16).activation(Activation::Relu)).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    m
}

fn options() -> FitOptions {
    FitOptions {
        batch_size: 32,
        epochs: 4,
        verbose: 0,
        validation_split: 0.2,
        ..Default::default()
    }
}

/// A small convnet with Dropout on 8x8 images: Conv2D, MaxPooling2D,
/// Flatten, Dropout(0.5), Dense softmax.
fn convnet(seed: u64) -> Sequential {
    let mut m = Sequential::new().with_seed(seed);
    m.add(
        Conv2D::new(4, [3, 3])
            .activation(Activation::Relu)
            .input_shape(&[8, 8, 1]),
    )
    .unwrap();
    m.add(MaxPooling2D::new([2, 2])).unwrap();
    m.add(Flatten::new()).unwrap();
    m.add(Dropout::new(0.5)).unwrap();
    m.add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    m.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])
        .unwrap();
    m
}

/// `data()`'s labels with 8x8 images whose mean brightness follows them.
fn images() -> (Tensor, Tensor) {
    let (_, y) = data();
    let labels = y.to_vec();
    let x: Vec<f32> = (0..labels.len() * 64)
        .map(|i| labels[i / 64] * 0.3 + ((i * 7919 % 211) as f32 / 211.0) - 0.5)
        .collect();
    (Tensor::from_vec(x, &[labels.len(), 8, 8, 1]).unwrap(), y)
}

fn fit(group: Option<Arc<dyn Collective>>) -> (Vec<Vec<f32>>, History, Vec<f32>) {
    fit_model(group, model, data)
}

/// Fits `build(seed)` on `data()`, data-parallel in `group`, evaluates it
/// and returns its weights, History and evaluation.
fn fit_model(
    group: Option<Arc<dyn Collective>>,
    build: fn(u64) -> Sequential,
    data: fn() -> (Tensor, Tensor),
) -> (Vec<Vec<f32>>, History, Vec<f32>) {
    let rank = group.as_ref().map_or(0, |g| g.rank());
    let mut m = build(7 + rank as u64 * 100);
    if let Some(g) = group {
        m.distribute(g);
    }
    let (x, y) = data();
    let history = m.fit(&x, &y, options()).unwrap();
    let evaluated = m.evaluate(&x, &y, 50, 0).unwrap();
    let weights = m.get_weights().iter().map(Tensor::to_vec).collect();
    (weights, history, evaluated)
}

fn assert_relative(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn two_workers_end_with_the_weights_and_history_of_one_process() {
    let (single, history, evaluated) = fit(None);
    let ranks = run_ranks(2, |g| fit(Some(g)));
    // Every rank holds the same model, bit for bit.
    assert_eq!(ranks[0].0, ranks[1].0);
    assert_eq!(ranks[0].2, ranks[1].2);
    for (i, (w, s)) in ranks[0].0.iter().zip(&single).enumerate() {
        assert_relative(&format!("weight {i}"), w, s, 1e-5);
    }
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        assert_relative(
            key,
            ranks[0].1.get(key).unwrap(),
            history.get(key).unwrap(),
            1e-5,
        );
    }
    assert_relative("evaluate", &ranks[0].2, &evaluated, 1e-5);
}

#[test]
fn a_rank_without_samples_in_the_last_batch_adds_nothing() {
    // 3 ranks: the last batch's 2 samples leave rank 2 none.
    let (single, history, _) = fit(None);
    let ranks = run_ranks(3, |g| fit(Some(g)));
    assert_eq!(ranks[0].0, ranks[2].0);
    for (i, (w, s)) in ranks[2].0.iter().zip(&single).enumerate() {
        assert_relative(&format!("weight {i}"), w, s, 1e-5);
    }
    assert_relative(
        "loss",
        ranks[2].1.get("loss").unwrap(),
        history.get("loss").unwrap(),
        1e-5,
    );
}

#[test]
fn a_convnet_with_dropout_trains_over_workers_as_in_one_process() {
    // Dropout keys its mask by the global row, so the shards' masks make
    // the single process's; 3 ranks leave rank 2 without samples in the
    // last batch, and its Dropout still counts the pass.
    let (single, history, evaluated) = fit_model(None, convnet, images);
    for size in [2, 3] {
        let ranks = run_ranks(size, |g| fit_model(Some(g), convnet, images));
        assert_eq!(ranks[0].0, ranks[size - 1].0, "{size} ranks");
        for (i, (w, s)) in ranks[0].0.iter().zip(&single).enumerate() {
            assert_relative(&format!("{size} ranks: weight {i}"), w, s, 1e-5);
        }
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert_relative(
                &format!("{size} ranks: {key}"),
                ranks[0].1.get(key).unwrap(),
                history.get(key).unwrap(),
                1e-5,
            );
        }
        assert_relative("evaluate", &ranks[0].2, &evaluated, 1e-5);
    }
}

#[test]
fn a_batch_smaller_than_the_workers_is_refused() {
    let errors = run_ranks(3, |g| {
        let mut m = model(1);
        m.distribute(g);
        let (x, y) = data();
        let options = FitOptions {
            batch_size: 2,
            verbose: 0,
            ..Default::default()
        };
        m.fit(&x, &y, options).unwrap_err().to_string()
    });
    for e in errors {
        assert!(e.contains("batch_size 2") && e.contains("3 workers"), "{e}");
    }
}

#[test]
fn ranks_with_other_batch_sizes_are_refused_naming_both() {
    let errors = run_ranks(2, |g| {
        let rank = g.rank();
        let mut m = model(1);
        m.distribute(g);
        let (x, y) = data();
        let options = FitOptions {
            batch_size: 32 + rank,
            verbose: 0,
            ..Default::default()
        };
        match m.fit(&x, &y, options) {
            Err(e @ Error::Distributed { .. }) => e.to_string(),
            other => panic!("{other:?}"),
        }
    });
    assert!(errors[1].contains("rank 0 has") && errors[1].contains("batch_size 32,"));
    assert!(errors[1].contains("rank 1 has") && errors[1].contains("batch_size 33,"));
    assert!(
        errors[1].contains("first difference: `batch_size 32` on rank 0, `batch_size 33` here"),
        "{}",
        errors[1]
    );
    assert!(errors[0].contains("1 of the 2 ranks"), "{}", errors[0]);
}
