//! CPU/GPU parity of the elementwise ops (unary, broadcasting binary,
//! `sum_to_shape`) and the reductions, forward, on random inputs, odd and
//! empty shapes, and NaN, infinities and signed zeros.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device ...` without one.
//!
//! Tolerances:
//! - ops that IEEE 754 rounds exactly (negation, `|x|`, `x * x`, `1 / x`,
//!   `sqrt`, the scalar and broadcasting `+ - * /`, max/min, comparisons,
//!   relu and the other selections) must agree bit for bit: NVRTC compiles
//!   with `--prec-div=true --prec-sqrt=true --ftz=false`, and no kernel has a
//!   multiply-add that `--fmad` could contract;
//! - `exp`, `log`, `log1p`, `tanh`, `sigmoid` and `powf` use CUDA's libm, within 1 to 4
//!   ulp (CUDA C Programming Guide, "Mathematical Functions"), so relative
//!   error <= 1e-5 (about 80 ulp), with an absolute floor of `f32::MIN_POSITIVE`
//!   for subnormal results, which carry no relative precision;
//! - sums and means: the CPU adds along the last axis in `f32` (Eigen's
//!   order; along other axes in `f64`, rounding once) and the GPU in
//!   `f64`, rounding once. Recursive `f32` summation of `n` terms errs by at
//!   most `(n - 1) u sum|x|` (`u = 2^-24`, Higham, "Accuracy and Stability
//!   of Numerical Algorithms", 4.2), and the GPU by at most `u |s|` plus
//!   `n 2^-53 sum|x|`, so `|gpu - cpu| <= (n + 2) u sum|x|` (divided by `n`
//!   for a mean, plus the division's rounding). The GPU is also checked
//!   against an `f64` reference to `2u |s| + n 2^-52 sum|x|`, which only
//!   `f64` accumulation meets;
//! - max, min and argmax select elements, so they agree exactly.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Error, Tensor};

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Standard normal values times `scale`, `len` of them, from `seed`.
fn randn(len: usize, scale: f64, seed: u32) -> Vec<f32> {
    RandomState::new(seed)
        .randn_vec(len)
        .into_iter()
        .map(|v| (v * scale) as f32)
        .collect()
}

/// Values in {-3, -2.5, .., 3}: many ties, for comparisons and argmax.
fn halves(len: usize, seed: u32) -> Vec<f32> {
    randn(len, 1.5, seed)
        .into_iter()
        .map(|v| ((v * 2.0).round() / 2.0).clamp(-3.0, 3.0))
        .collect()
}

/// Values where the formulas branch or overflow, and the IEEE specials.
const SPECIALS: [f32; 22] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -2.0,
    1e-30,
    -1e-30,
    1e-40,
    -100.0,
    100.0,
    80.0,
    -80.0,
    1e20,
    -1e20,
    0.7,
    -0.7,
];

fn t(data: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(data, shape).unwrap()
}

/// `x` on `dev`.
fn on(x: &Tensor, dev: Device) -> Tensor {
    x.to_device(dev).unwrap()
}

/// Checks that `gpu` is on `dev`, has `cpu`'s shape, and agrees with it
/// elementwise: both NaN, or equal bits when `rel == 0`, or equal (as for
/// infinities) or within `rel |cpu|` (at least `f32::MIN_POSITIVE`).
fn assert_close(what: &str, cpu: &Tensor, gpu: &Tensor, dev: Device, rel: f32) {
    assert_eq!(gpu.device(), dev, "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    let (c, g) = (cpu.to_vec(), gpu.try_to_vec().unwrap());
    assert_eq!(c.len(), g.len(), "{what}: length");
    for (i, (&c, &g)) in c.iter().zip(&g).enumerate() {
        let ok = if c.is_nan() || g.is_nan() {
            c.is_nan() && g.is_nan()
        } else if rel == 0.0 {
            c.to_bits() == g.to_bits()
        } else {
            c == g || (g - c).abs() <= (rel * c.abs()).max(f32::MIN_POSITIVE)
        };
        assert!(ok, "{what}: element {i}: cpu {c:e}, gpu {g:e}");
    }
}

#[test]
fn unary_ops_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    type Op = (&'static str, f32, fn(&Tensor) -> Tensor);
    let ops: [Op; 21] = [
        ("neg", 0.0, |x| x.neg()),
        ("exp", 1e-5, |x| x.exp()),
        ("log", 1e-5, |x| x.log()),
        ("log1p", 1e-5, |x| x.log1p()),
        ("sqrt", 0.0, |x| x.sqrt()),
        ("square", 0.0, |x| x.square()),
        ("abs", 0.0, |x| x.abs()),
        ("reciprocal", 0.0, |x| x.reciprocal()),
        ("sigmoid", 1e-5, |x| x.sigmoid()),
        ("tanh", 1e-5, |x| x.tanh()),
        ("relu", 0.0, |x| x.relu()),
        ("step", 0.0, |x| x.step()),
        ("sign", 0.0, |x| x.sign()),
        ("add_scalar", 0.0, |x| x.add_scalar(0.3)),
        ("mul_scalar", 0.0, |x| x.mul_scalar(-1.7)),
        ("powf(2.5)", 1e-5, |x| x.powf(2.5)),
        ("powf(3)", 1e-5, |x| x.powf(3.0)),
        ("powf(-0.5)", 1e-5, |x| x.powf(-0.5)),
        ("clip", 0.0, |x| x.clip(-0.5, 0.7).unwrap()),
        ("leaky_relu", 0.0, |x| x.leaky_relu(0.01)),
        ("leaky_relu(-0.3)", 0.0, |x| x.leaky_relu(-0.3)),
    ];
    let inputs = [
        t(randn(1000 * 37, 3.0, 1), &[1000, 37]),
        t(SPECIALS.to_vec(), &[2, 11]),
        t(randn(5, 1.0, 2), &[5]),
        Tensor::scalar(-0.25),
        Tensor::zeros(&[0, 3]),
        Tensor::zeros(&[4, 0, 2]),
    ];
    for x in &inputs {
        let xg = on(x, dev);
        for (name, rel, f) in &ops {
            let what = format!("{name} of {:?}", x.shape());
            assert_close(&what, &f(x), &f(&xg), dev, *rel);
        }
        let what = format!("clip of {:?}", x.shape());
        assert!(xg.clip(1.0, 0.0).is_err(), "{what}: bad bounds");
    }
}

#[test]
fn binary_ops_broadcast_like_the_cpu() {
    let Some(dev) = gpu() else { return };
    type Op = (
        &'static str,
        fn(&Tensor, &Tensor) -> hebb_tensor::Result<Tensor>,
    );
    let ops: [Op; 11] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
        ("equal", |a, b| a.equal(b)),
        ("greater", |a, b| a.greater(b)),
        ("greater_equal", |a, b| a.greater_equal(b)),
        ("less", |a, b| a.less(b)),
        ("less_equal", |a, b| a.less_equal(b)),
    ];
    let shapes: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[3]),
        (&[3], &[2, 3]),
        (&[4, 1], &[1, 5]),
        (&[2, 3], &[]),
        (&[], &[2, 3]),
        (&[], &[]),
        (&[1000, 37], &[1000, 37]),
        (&[1000, 37], &[37]),
        (&[1000, 37], &[1000, 1]),
        (&[3, 1, 5], &[4, 1]),
        (&[2, 3, 4, 5], &[3, 1, 5]),
        (&[1, 1, 7], &[7]),
        // Eight dimensions that cannot merge: the kernel's maximum.
        (&[2, 1, 2, 1, 2, 1, 2, 1], &[1, 2, 1, 2, 1, 2, 1, 2]),
        // Twelve dimensions that merge into two.
        (&[2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1], &[3, 3, 3, 3, 3, 3]),
        (&[0, 3], &[3]),
        (&[2, 0], &[2, 1]),
        (&[0], &[]),
    ];
    for (k, &(sa, sb)) in shapes.iter().enumerate() {
        let (na, nb) = (sa.iter().product(), sb.iter().product());
        let seed = 10 + 2 * k as u32;
        // Random values, then ties and specials where they fit.
        let mut a = randn(na, 2.0, seed);
        let mut b = randn(nb, 2.0, seed + 1);
        let h = halves(na.max(nb), seed + 2);
        for i in (0..na).step_by(3) {
            a[i] = h[i];
        }
        for i in (0..nb).step_by(2) {
            b[i] = h[i];
        }
        for (i, &s) in SPECIALS.iter().enumerate() {
            if 7 * i + 1 < na {
                a[7 * i + 1] = s;
            }
            if 5 * i + 3 < nb {
                b[5 * i + 3] = SPECIALS[(i + 4) % SPECIALS.len()];
            }
        }
        let (a, b) = (t(a, sa), t(b, sb));
        let (ag, bg) = (on(&a, dev), on(&b, dev));
        for (name, f) in &ops {
            let what = format!("{name} of {sa:?} and {sb:?}");
            let cpu = f(&a, &b).unwrap();
            let gpu = f(&ag, &bg).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_close(&what, &cpu, &gpu, dev, 0.0);
        }
    }
}

#[test]
fn too_many_unmergeable_dimensions_are_an_error_on_the_gpu() {
    let Some(dev) = gpu() else { return };
    let sa = [2, 1, 2, 1, 2, 1, 2, 1, 2, 1];
    let sb = [1, 2, 1, 2, 1, 2, 1, 2, 1, 2];
    let (a, b) = (Tensor::ones(&sa), Tensor::ones(&sb));
    assert!(a.add(&b).is_ok(), "the CPU has no limit");
    let err = on(&a, dev).add(&on(&b, dev)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "add", .. }),
        "{err}"
    );
}

#[test]
fn mixing_devices_is_an_error_naming_both() {
    let Some(dev) = gpu() else { return };
    let cpu = Tensor::ones(&[2, 3]);
    let gpu = on(&cpu, dev);
    let err = cpu.add(&gpu).unwrap_err();
    assert_eq!(
        err,
        Error::DeviceMismatch {
            op: "add",
            lhs: Device::Cpu,
            rhs: dev
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("cpu") && msg.contains("cuda:0"), "{msg}");
    let err = gpu.less(&cpu).unwrap_err();
    assert_eq!(
        err,
        Error::DeviceMismatch {
            op: "less",
            lhs: dev,
            rhs: Device::Cpu
        }
    );
}

/// Host reference of a sum (or mean) along the middle axis of `(outer, n,
/// inner)`: the `f64` result and the sum of magnitudes, per output.
fn sums(x: &[f32], (outer, n, inner): (usize, usize, usize), mean: bool) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let (mut s, mut m) = (0f64, 0f64);
            for j in 0..n {
                let v = f64::from(x[(o * n + j) * inner + i]);
                s += v;
                m += v.abs();
            }
            out.push(if mean {
                (s / n as f64, m / n as f64)
            } else {
                (s, m)
            });
        }
    }
    out
}

/// Checks a GPU sum or mean over `n` terms against the CPU's and the `f64`
/// reference `want` (result, sum of magnitudes), with the bounds in the
/// file's docs.
fn assert_sums(what: &str, cpu: &Tensor, gpu: &Tensor, dev: Device, n: usize, want: &[(f64, f64)]) {
    assert_eq!(gpu.device(), dev, "{what}: result left the GPU");
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    let (c, g) = (cpu.to_vec(), gpu.try_to_vec().unwrap());
    assert_eq!(g.len(), want.len(), "{what}: length");
    let n = n as f64;
    for (i, ((&c, &g), &(s, m))) in c.iter().zip(&g).zip(want).enumerate() {
        if s.is_nan() || c.is_nan() {
            assert!(
                s.is_nan() && c.is_nan() && g.is_nan(),
                "{what}: element {i}: cpu {c}, gpu {g}, f64 {s}"
            );
            continue;
        }
        let (c, g) = (f64::from(c), f64::from(g));
        let vs_cpu = (n + 2.0) * U * m + 2.0 * U * s.abs();
        assert!(
            (g - c).abs() <= vs_cpu,
            "{what}: element {i}: cpu {c:e}, gpu {g:e}, bound {vs_cpu:e}"
        );
        let vs_f64 = 2.0 * U * s.abs() + n * f64::EPSILON * m;
        assert!(
            (g - s).abs() <= vs_f64,
            "{what}: element {i}: f64 {s:e}, gpu {g:e}, bound {vs_f64:e}"
        );
    }
}

#[test]
fn reductions_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let cases: &[&[usize]] = &[
        &[1000, 37],
        &[3, 4, 5],
        &[5000],
        &[7, 300, 3],
        &[2, 3000],
        &[64, 1],
        &[2, 0],
        &[0, 3],
        &[1],
    ];
    for (k, &shape) in cases.iter().enumerate() {
        let len: usize = shape.iter().product();
        let mut data = randn(len, 2.0, 100 + k as u32);
        // Ties for argmax in every other element.
        let h = halves(len, 200 + k as u32);
        for i in (0..len).step_by(2) {
            data[i] = h[i];
        }
        let x = t(data.clone(), shape);
        let xg = on(&x, dev);
        for axis in 0..shape.len() {
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let dims = (outer, shape[axis], inner);
            for keepdims in [false, true] {
                let what =
                    |op: &str| format!("{op} of {shape:?} along {axis} (keepdims {keepdims})");
                let cpu = x.sum(axis, keepdims).unwrap();
                let gpu = xg.sum(axis, keepdims).unwrap();
                assert_sums(
                    &what("sum"),
                    &cpu,
                    &gpu,
                    dev,
                    dims.1,
                    &sums(&data, dims, false),
                );
                let cpu = x.mean(axis, keepdims).unwrap();
                let gpu = xg.mean(axis, keepdims).unwrap();
                assert_sums(
                    &what("mean"),
                    &cpu,
                    &gpu,
                    dev,
                    dims.1,
                    &sums(&data, dims, true),
                );
                if dims.1 == 0 {
                    for gpu in [
                        xg.max(axis, keepdims),
                        xg.min(axis, keepdims),
                        xg.argmax(axis),
                    ] {
                        assert!(
                            matches!(gpu, Err(Error::EmptyReduction { .. })),
                            "{}",
                            what("max/min/argmax")
                        );
                    }
                    continue;
                }
                let cpu = x.max(axis, keepdims).unwrap();
                assert_close(
                    &what("max"),
                    &cpu,
                    &xg.max(axis, keepdims).unwrap(),
                    dev,
                    0.0,
                );
                let cpu = x.min(axis, keepdims).unwrap();
                assert_close(
                    &what("min"),
                    &cpu,
                    &xg.min(axis, keepdims).unwrap(),
                    dev,
                    0.0,
                );
            }
            if shape[axis] > 0 {
                let what = format!("argmax of {shape:?} along {axis}");
                assert_close(
                    &what,
                    &x.argmax(axis).unwrap(),
                    &xg.argmax(axis).unwrap(),
                    dev,
                    0.0,
                );
            }
        }
        let all = (1, len, 1);
        assert_sums(
            &format!("sum_all of {shape:?}"),
            &x.sum_all(),
            &xg.sum_all(),
            dev,
            len,
            &sums(&data, all, false),
        );
        assert_sums(
            &format!("mean_all of {shape:?}"),
            &x.mean_all(),
            &xg.mean_all(),
            dev,
            len,
            &sums(&data, all, true),
        );
    }
    // Scalars and empty tensors: 0 and NaN, as on the CPU.
    for x in [
        Tensor::scalar(2.5),
        Tensor::zeros(&[0]),
        Tensor::zeros(&[3, 0, 2]),
    ] {
        let xg = on(&x, dev);
        assert_close("sum_all", &x.sum_all(), &xg.sum_all(), dev, 0.0);
        assert_close("mean_all", &x.mean_all(), &xg.mean_all(), dev, 0.0);
    }
}

/// Issue 11's sizes: a sum or mean over millions of rows, along the first
/// axis (and a bias gradient, `sum_to_shape`), within `1e-6` relative on
/// the GPU as on the CPU.
#[test]
fn long_axes_sum_to_within_1e_6() {
    let Some(dev) = gpu() else { return };
    let rel = |v: f32, want: f64| ((f64::from(v) - want) / want).abs();
    let x = on(&Tensor::full(&[10_000_000, 2], 0.1), dev);
    let tenth = f64::from(0.1f32);
    for v in x.mean(0, false).unwrap().try_to_vec().unwrap() {
        assert!(rel(v, tenth) < 1e-6, "mean(0) = {v}");
    }
    assert!(rel(x.mean_all().try_to_vec().unwrap()[0], tenth) < 1e-6);
    let y = on(&Tensor::full(&[62_500, 2], 1.23456), dev);
    let sums = [
        y.sum(0, false).unwrap(),
        y.sum(0, true).unwrap(),
        y.sum_to_shape(&[2]).unwrap(),
        y.sum_to_shape(&[1, 2]).unwrap(),
    ];
    for s in sums {
        assert_eq!(s.device(), dev);
        for v in s.try_to_vec().unwrap() {
            assert!(rel(v, 77160.0) < 1e-6, "sum over 62,500 rows = {v}");
        }
    }
    let z = on(&Tensor::full(&[2, 62_500, 3], 1.23456), dev);
    for v in z.sum(1, false).unwrap().try_to_vec().unwrap() {
        assert!(rel(v, 77160.0) < 1e-6, "sum(1) = {v}");
    }
}

#[test]
fn reductions_handle_nan_infinities_and_ties_like_the_cpu() {
    let Some(dev) = gpu() else { return };
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    let rows: Vec<Vec<f32>> = vec![
        vec![1.0, nan, 3.0, 2.0],
        vec![nan, nan, nan, nan],
        vec![-inf, -inf, -inf, -inf],
        vec![2.0, 5.0, 5.0, 1.0],
        vec![nan, -inf, -1.0, -1.0],
        vec![inf, 1.0, inf, nan],
        vec![-0.0, 0.0, -0.0, 0.0],
        vec![0.0, -0.0, 0.0, -0.0],
    ];
    // Along rows (short axis) and, repeated 100 times, long rows for the
    // block-per-output kernel; and the transpose, along columns.
    for reps in [1, 100] {
        let width = 4 * reps;
        let data: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.iter().cycle().take(width).copied())
            .collect();
        let x = t(data.clone(), &[rows.len(), width]);
        let mut tr = vec![0.0; data.len()];
        for r in 0..rows.len() {
            for c in 0..width {
                tr[c * rows.len() + r] = data[r * width + c];
            }
        }
        let xt = t(tr, &[width, rows.len()]);
        for (x, axis) in [(x, 1), (xt, 0)] {
            let xg = on(&x, dev);
            let what = |op: &str| format!("{op} of {:?} along {axis}", x.shape());
            assert_close(
                &what("max"),
                &x.max(axis, false).unwrap(),
                &xg.max(axis, false).unwrap(),
                dev,
                0.0,
            );
            assert_close(
                &what("min"),
                &x.min(axis, false).unwrap(),
                &xg.min(axis, false).unwrap(),
                dev,
                0.0,
            );
            assert_close(
                &what("argmax"),
                &x.argmax(axis).unwrap(),
                &xg.argmax(axis).unwrap(),
                dev,
                0.0,
            );
            // Sums with NaN or both infinities are NaN, with one infinity infinite.
            let (c, g) = (
                x.sum(axis, false).unwrap().to_vec(),
                xg.sum(axis, false).unwrap().to_vec(),
            );
            for (i, (c, g)) in c.iter().zip(&g).enumerate() {
                if !c.is_finite() {
                    assert!(
                        (c.is_nan() && g.is_nan()) || c == g,
                        "{}: row {i}: cpu {c}, gpu {g}",
                        what("sum")
                    );
                }
            }
        }
    }
}

#[test]
fn sum_to_shape_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[3]),
        (&[2, 3], &[2, 1]),
        (&[2, 3], &[]),
        (&[2, 3], &[1, 1]),
        (&[2, 3], &[2, 3]),
        (&[1, 3], &[3]),
        (&[1000, 37], &[37]),
        (&[1000, 37], &[1000, 1]),
        (&[1000, 37], &[]),
        (&[4, 5, 6, 7], &[1, 5, 1, 7]),
        (&[4, 5, 6, 7], &[6, 1]),
        (&[0, 3], &[3]),
        (&[2, 0], &[2, 1]),
    ];
    for (k, &(src, dst)) in cases.iter().enumerate() {
        let len: usize = src.iter().product();
        let data = randn(len, 2.0, 300 + k as u32);
        let x = t(data.clone(), src);
        let xg = on(&x, dev);
        let cpu = x.sum_to_shape(dst).unwrap();
        let gpu = xg.sum_to_shape(dst).unwrap();
        // The f64 reference: each output sums the source elements that
        // broadcast from it; n is the largest count of terms.
        let full = hebb_tensor::broadcast_shapes("test", dst, src).unwrap();
        assert_eq!(full, src);
        let lead = src.len() - dst.len();
        let dst_len: usize = dst.iter().product();
        let mut want = vec![(0f64, 0f64); dst_len];
        for (flat, &v) in data.iter().enumerate() {
            let (mut rest, mut to, mut stride) = (flat, 0, 1);
            for a in (0..src.len()).rev() {
                let idx = rest % src[a];
                rest /= src[a];
                if a >= lead && dst[a - lead] != 1 {
                    to += idx * stride;
                    stride *= dst[a - lead];
                }
            }
            want[to].0 += f64::from(v);
            want[to].1 += f64::from(v).abs();
        }
        let n = len.checked_div(dst_len).unwrap_or(0);
        assert_sums(
            &format!("sum_to_shape {src:?} -> {dst:?}"),
            &cpu,
            &gpu,
            dev,
            n,
            &want,
        );
    }
    let xg = on(&Tensor::ones(&[2, 3]), dev);
    assert!(matches!(
        xg.sum_to_shape(&[2]),
        Err(Error::ShapeMismatch { .. })
    ));
}

/// A GPU tensor dropped on a thread that never ran a GPU op frees its
/// memory cleanly: later ops, on any thread, still work.
#[test]
fn tensors_dropped_on_other_threads_free_cleanly() {
    let Some(gpu) = gpu() else { return };
    let a = Tensor::ones(&[1000]).to_device(gpu).unwrap();
    std::thread::spawn(move || drop(a)).join().unwrap();
    let b = Tensor::ones(&[3]).to_device(gpu).unwrap();
    assert_eq!(b.mul_scalar(2.0).to_vec(), vec![2.0; 3]);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = Tensor::full(&[10], i as f32).to_device(gpu).unwrap();
            std::thread::spawn(move || t.add_scalar(1.0).sum_all().item().unwrap())
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), 10.0 * (i as f32 + 1.0));
    }
}

/// `pack_scaled` and `unpack_scaled` on the GPU: the parts (odd and empty
/// lengths) land at their offsets scaled exactly as on the CPU, the tail
/// crosses unscaled, and the buffers are written in place.
#[test]
fn pack_and_unpack_match_the_cpu_bit_for_bit() -> Result<(), Error> {
    use hebb_tensor::ops::pack::{pack_scaled, unpack_scaled};
    let Some(gpu) = gpu() else { return Ok(()) };
    let shapes: [&[usize]; 4] = [&[3, 5], &[0], &[7], &[2, 1, 3]];
    let parts: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::from_vec(randn(s.iter().product(), 1.0, 40 + i as u32), s))
        .collect::<Result<_, _>>()?;
    let total: usize = parts.iter().map(Tensor::len).sum::<usize>() + 2;
    let (scale, tail) = (1.0 / 3.0, [7.5f32, -0.25]);
    let mut cpu = Tensor::zeros(&[total]);
    let cpu_parts: Vec<&Tensor> = parts.iter().collect();
    pack_scaled(&mut cpu, &cpu_parts, scale, &tail)?;
    let on_gpu: Vec<Tensor> = parts
        .iter()
        .map(|p| p.to_device(gpu))
        .collect::<Result<_, _>>()?;
    let mut packed = Tensor::zeros(&[total]).to_device(gpu)?;
    let gpu_parts: Vec<&Tensor> = on_gpu.iter().collect();
    pack_scaled(&mut packed, &gpu_parts, scale, &tail)?;
    assert_eq!(packed.device(), gpu);
    assert_eq!(packed.to_vec(), cpu.to_vec());

    let mut back: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::zeros(s).to_device(gpu))
        .collect::<Result<_, _>>()?;
    let mut got = [0f32; 2];
    unpack_scaled(&packed, &mut back, 3.0, &mut got)?;
    assert_eq!(got, tail);
    let mut expected: Vec<Tensor> = shapes.iter().map(|s| Tensor::zeros(s)).collect();
    let mut cpu_tail = [0f32; 2];
    unpack_scaled(&cpu, &mut expected, 3.0, &mut cpu_tail)?;
    for (b, e) in back.iter().zip(&expected) {
        assert_eq!(b.device(), gpu);
        assert_eq!(b.shape(), e.shape());
        assert_eq!(b.to_vec(), e.to_vec());
    }
    // A part on the host is refused, naming both devices.
    let host = Tensor::zeros(&[total - 2]);
    let e = pack_scaled(&mut packed, &[&host], 1.0, &tail).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e}");
    Ok(())
}
