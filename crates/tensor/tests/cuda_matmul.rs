//! CPU/GPU parity of the CUDA backend's matrix ops (feature `cuda`):
//! `matmul_with` through cuBLAS in all four transpose combinations,
//! `transpose`, `softmax`, the fused `softmax_cross_entropy` (sparse and
//! dense labels) and `sigmoid_cross_entropy`, and `gather_rows`.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device (..)` and
//! passes without one (the kernel sources are still compiled by NVRTC in
//! the crate's unit tests where `libnvrtc` loads).
//!
//! Tolerances. The GPU computes the same formulas in f32, but sums in
//! another order (cuBLAS splits `k`; softmax adds across a warp) and its
//! `expf`/`logf` may differ from the host's by an ulp or two, so results
//! agree to rounding, not bit for bit:
//! - elementwise results (softmax, losses, gradients) within a relative
//!   `1e-5` of the CPU's. Probabilities, gradients `p·Σy - y` and losses
//!   `(m - z_t) + ln s` are sums and differences of terms of size about 1,
//!   whose rounding error is absolute (a few f32 ulps of 1, ~1e-7) when
//!   they cancel, so the bound is `1e-5 · (|cpu| + 1)`;
//! - matrix products: an element `c_ij = Σ_p a_ip b_pj` summed in two
//!   orders differs by up to about `√k · ε · Σ_p |a_ip b_pj|` (random
//!   rounding errors; the worst case is `k · ε`), which for `k = 784` and
//!   `ε = 6e-8` is `1.7e-6` of `Σ|a||b|`, while `|c_ij|` itself can be far
//!   smaller after cancellation. So the bound is `1e-5 · Σ_p |a_ip b_pj|`
//!   (computed in f64): relative to the magnitude of the terms rather than
//!   of their sum, with a margin of five at the largest `k`.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Error, Tensor};

/// Normal samples of `shape` scaled by `scale`.
fn randn(seed: u32, shape: &[usize], scale: f32) -> Tensor {
    RandomState::new(seed)
        .randn_tensor(shape)
        .unwrap()
        .mul_scalar(scale)
}

/// `gpu` is on `device`, has `cpu`'s shape, and each element is within
/// `1e-5 · (|cpu| + 1)` (see the module doc).
fn assert_close(what: &str, gpu: &Tensor, cpu: &Tensor, device: Device) {
    assert_eq!(gpu.device(), device, "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    for (i, (g, c)) in gpu.to_vec().iter().zip(cpu.to_vec()).enumerate() {
        let ok = (g - c).abs() <= 1e-5 * (c.abs() + 1.0) || (g.is_nan() && c.is_nan());
        assert!(ok, "{what}: element {i}: GPU {g} vs CPU {c}");
    }
}

/// `op(x)[i][j]` of a row-major `[rows, cols]` buffer.
fn at(x: &[f32], cols: usize, transpose: bool, i: usize, j: usize) -> f64 {
    f64::from(if transpose {
        x[j * cols + i]
    } else {
        x[i * cols + j]
    })
}

#[test]
fn matmul_matches_the_cpu_in_every_transpose_combination() {
    let Some(dev) = gpu() else { return };
    let sizes = [
        (37, 61, 5),
        (1, 1, 1),
        (1, 300, 7),
        (7, 300, 1),
        (1, 9, 1),
        (120, 4, 3),
        (33, 20, 17),
        (64, 784, 128),
    ];
    let mut seed = 0;
    for &(m, k, n) in &sizes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            seed += 1;
            let a_shape = if ta { [k, m] } else { [m, k] };
            let b_shape = if tb { [n, k] } else { [k, n] };
            let a = randn(seed, &a_shape, 1.0);
            let b = randn(seed + 1000, &b_shape, 1.0);
            let cpu = a.matmul_with(&b, ta, tb).unwrap();
            let (ga, gb) = (a.to_device(dev).unwrap(), b.to_device(dev).unwrap());
            let got = ga.matmul_with(&gb, ta, tb).unwrap();
            let what = format!("[{m}x{k}]·[{k}x{n}], transpose ({ta}, {tb})");
            assert_eq!(got.device(), dev, "{what}");
            assert_eq!(got.shape(), &[m, n], "{what}");
            let (av, bv) = (a.to_vec(), b.to_vec());
            for (idx, (g, c)) in got.to_vec().iter().zip(cpu.to_vec()).enumerate() {
                let (i, j) = (idx / n, idx % n);
                let terms: f64 = (0..k)
                    .map(|p| (at(&av, a_shape[1], ta, i, p) * at(&bv, b_shape[1], tb, p, j)).abs())
                    .sum();
                let err = f64::from((g - c).abs());
                assert!(
                    err <= 1e-5 * terms,
                    "{what}: C[{i}][{j}]: GPU {g} vs CPU {c} (Σ|a||b| = {terms})"
                );
            }
        }
    }
}

#[test]
fn matmul_with_an_empty_dimension_gives_zeros() {
    let Some(dev) = gpu() else { return };
    for (m, k, n) in [(0, 4, 3), (3, 0, 2), (3, 4, 0), (0, 0, 0)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a_shape = if ta { [k, m] } else { [m, k] };
            let b_shape = if tb { [n, k] } else { [k, n] };
            let a = Tensor::ones(&a_shape).to_device(dev).unwrap();
            let b = Tensor::ones(&b_shape).to_device(dev).unwrap();
            let c = a.matmul_with(&b, ta, tb).unwrap();
            assert_eq!(c.shape(), &[m, n]);
            assert_eq!(c.device(), dev);
            assert_eq!(c.to_vec(), vec![0.0; m * n], "{m}x{k}x{n} ({ta}, {tb})");
        }
    }
}

#[test]
fn matmul_errors_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let a = Tensor::ones(&[2, 3]).to_device(dev).unwrap();
    assert!(matches!(
        a.matmul(&Tensor::ones(&[3, 2])),
        Err(Error::DeviceMismatch { .. })
    ));
    let msg = a
        .matmul(&Tensor::ones(&[2, 3]).to_device(dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[2, 3]") && msg.contains("inner dimensions 3 and 2"),
        "{msg}"
    );
}

#[test]
fn transpose_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for shape in [[37, 61], [1, 5], [5, 1], [300, 257], [0, 3], [3, 0]] {
        let x = randn(7, &shape, 1.0);
        let got = x.to_device(dev).unwrap().transpose().unwrap();
        assert_eq!(got.device(), dev);
        // A copy: bit for bit.
        assert_eq!(got, x.transpose().unwrap(), "{shape:?}");
    }
}

#[test]
fn softmax_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let cases = [
        (randn(1, &[4, 10], 3.0), "[4, 10]"),
        (
            randn(2, &[3, 1000], 5.0),
            "[3, 1000]: rows longer than a warp",
        ),
        (randn(3, &[2, 3, 7], 2.0), "rank 3"),
        (randn(4, &[1], 1.0), "rank 1, one class"),
        (
            randn(5, &[70, 33], 1.0),
            "70 rows, more than the warps of a block",
        ),
        (
            Tensor::from_vec(
                vec![1e4, 1e4 - 1.0, 0.0, -1e4, 1000.0, 1001.0, 1002.0, 999.0],
                &[2, 4],
            )
            .unwrap(),
            "large values",
        ),
        (Tensor::zeros(&[0, 5]), "no rows"),
    ];
    for (x, what) in &cases {
        let got = x.to_device(dev).unwrap().softmax().unwrap();
        let cpu = x.softmax().unwrap();
        assert_close(what, &got, &cpu, dev);
        assert!(got.to_vec().iter().all(|p| p.is_finite()), "{what}");
    }
    assert!(
        Tensor::zeros(&[2, 0])
            .to_device(dev)
            .unwrap()
            .softmax()
            .is_err()
    );
}

/// `(loss, grad)` on the GPU against the CPU's.
fn assert_loss_close(what: &str, gpu: (Tensor, Tensor), cpu: (Tensor, Tensor), dev: Device) {
    assert_close(&format!("{what}: loss"), &gpu.0, &cpu.0, dev);
    assert_close(&format!("{what}: gradient"), &gpu.1, &cpu.1, dev);
}

#[test]
fn softmax_cross_entropy_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for (rows, classes, scale) in [
        (1, 1, 1.0),
        (5, 3, 1.0),
        (64, 10, 4.0),
        (300, 7, 30.0),
        (2, 100, 2.0),
    ] {
        let z = randn(rows as u32, &[rows, classes], scale);
        let sparse = Tensor::from_vec(
            (0..rows).map(|r| ((r * 7 + 3) % classes) as f32).collect(),
            &[rows],
        )
        .unwrap();
        let dense = randn(99, &[rows, classes], 1.0).abs();
        let gz = z.to_device(dev).unwrap();
        for (labels, kind) in [(&sparse, "sparse"), (&dense, "dense")] {
            let what = format!("{kind} [{rows}, {classes}]");
            let gpu = gz
                .softmax_cross_entropy(&labels.to_device(dev).unwrap())
                .unwrap();
            let cpu = z.softmax_cross_entropy(labels).unwrap();
            assert_loss_close(&what, gpu, cpu, dev);
        }
    }
    // Logits of ±1e4 stay finite, as on the CPU.
    let z = Tensor::from_vec(vec![1e4, 0.0, -1e4, -1e4, 1e4, 1e4], &[2, 3]).unwrap();
    let gz = z.to_device(dev).unwrap();
    for labels in [
        Tensor::from_vec(vec![2.0, 0.0], &[2]).unwrap(),
        Tensor::from_vec(vec![0.0, 0.5, 0.5, 0.25, 0.25, 0.5], &[2, 3]).unwrap(),
    ] {
        let gpu = gz
            .softmax_cross_entropy(&labels.to_device(dev).unwrap())
            .unwrap();
        assert!(
            gpu.0
                .to_vec()
                .iter()
                .chain(&gpu.1.to_vec())
                .all(|v| v.is_finite())
        );
        let cpu = z.softmax_cross_entropy(&labels).unwrap();
        assert_loss_close("large logits", gpu, cpu, dev);
    }
    // No rows: empty results, nothing launched.
    let (loss, grad) = Tensor::zeros(&[0, 4])
        .to_device(dev)
        .unwrap()
        .softmax_cross_entropy(&Tensor::zeros(&[0]).to_device(dev).unwrap())
        .unwrap();
    assert_eq!((loss.shape(), grad.shape()), (&[0][..], &[0, 4][..]));
}

#[test]
fn softmax_cross_entropy_checks_labels_it_can_see() {
    let Some(dev) = gpu() else { return };
    let z = randn(3, &[3, 4], 1.0).to_device(dev).unwrap();
    let bad = Tensor::from_vec(vec![1.0, 4.0, 2.0], &[3]).unwrap();
    // Labels on the device without a host copy: the kernel cannot fail,
    // so the bad row's loss and gradient are NaN and the others are right.
    let fresh = bad.to_device(dev).unwrap();
    let (loss, grad) = z.softmax_cross_entropy(&fresh).unwrap();
    let (loss, grad) = (loss.to_vec(), grad.to_vec());
    assert!(
        loss[1].is_nan() && grad[4..8].iter().all(|g| g.is_nan()),
        "{loss:?}"
    );
    assert!(loss[0].is_finite() && loss[2].is_finite(), "{loss:?}");
    // With the host copy at hand, the labels are checked: Error::Index.
    let _ = fresh.as_slice();
    assert!(matches!(
        z.softmax_cross_entropy(&fresh),
        Err(Error::Index {
            index: 4,
            bound: 4,
            ..
        })
    ));
    // Devices must match; shape errors name both shapes.
    assert!(matches!(
        z.softmax_cross_entropy(&bad),
        Err(Error::DeviceMismatch { .. })
    ));
    let msg = z
        .softmax_cross_entropy(&Tensor::zeros(&[3, 5]).to_device(dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("[3, 4]") && msg.contains("[3, 5]"), "{msg}");
}

#[test]
fn sigmoid_cross_entropy_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for (rows, classes, scale) in [(1, 1, 1.0), (5, 3, 1.0), (64, 10, 4.0), (300, 7, 30.0)] {
        let z = randn(rows as u32 + 50, &[rows, classes], scale);
        let y = randn(77, &[rows, classes], 1.0).sigmoid();
        let gpu = z
            .to_device(dev)
            .unwrap()
            .sigmoid_cross_entropy(&y.to_device(dev).unwrap())
            .unwrap();
        let cpu = z.sigmoid_cross_entropy(&y).unwrap();
        assert_loss_close(&format!("[{rows}, {classes}]"), gpu, cpu, dev);
    }
    let z = Tensor::from_vec(vec![1e4, 0.0, -1e4, -1e4, 1e4, 1e4], &[2, 3]).unwrap();
    let y = Tensor::from_vec(vec![0.0, 0.5, 0.5, 0.25, 0.25, 0.5], &[2, 3]).unwrap();
    let gpu = z
        .to_device(dev)
        .unwrap()
        .sigmoid_cross_entropy(&y.to_device(dev).unwrap())
        .unwrap();
    assert!(
        gpu.0
            .to_vec()
            .iter()
            .chain(&gpu.1.to_vec())
            .all(|v| v.is_finite())
    );
    assert_loss_close(
        "large logits",
        gpu,
        z.sigmoid_cross_entropy(&y).unwrap(),
        dev,
    );
    let (loss, grad) = Tensor::zeros(&[0, 2])
        .to_device(dev)
        .unwrap()
        .sigmoid_cross_entropy(&Tensor::zeros(&[0, 2]).to_device(dev).unwrap())
        .unwrap();
    assert_eq!((loss.shape(), grad.shape()), (&[0][..], &[0, 2][..]));
}

#[test]
fn gather_rows_matches_the_cpu_and_stays_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let cases: [(&[usize], &[usize]); 5] = [
        (&[5, 3], &[4, 0, 4, 2]),
        (&[10], &[9, 0, 3]),
        (&[4, 2, 3], &[3, 1]),
        (&[6, 7], &[]),
        (&[3, 0], &[2, 1]),
    ];
    for (shape, indices) in cases {
        let x = randn(11, shape, 1.0);
        let got = x.to_device(dev).unwrap().gather_rows(indices).unwrap();
        assert_eq!(got.device(), dev);
        // A copy: bit for bit.
        assert_eq!(
            got,
            x.gather_rows(indices).unwrap(),
            "{shape:?} {indices:?}"
        );
    }
    let x = Tensor::zeros(&[3, 2]).to_device(dev).unwrap();
    assert!(matches!(
        x.gather_rows(&[0, 3]),
        Err(Error::Index {
            index: 3,
            bound: 3,
            ..
        })
    ));
}
