//! CPU/GPU parity of the 2-D convolution (feature `cuda`): `im2col` and
//! `col2im`, `Tensor::conv2d` and both gradients of
//! `Tensor::conv2d_backward`, for named shapes (the MNIST convnet's layers,
//! batch 1, one output pixel, 'same' with odd and even kernels and strides
//! that do not divide, a kernel larger than the image, strides larger than
//! the kernel, dilation, 1×1) and random ones (odd sizes, strides 1 to 3,
//! dilation 1 or 2, both paddings, batches of 1 to 3), every result checked
//! to stay on the GPU.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device (..)` without one.
//!
//! Tolerances:
//! - im2col copies and col2im sums the same columns in the CPU's order
//!   (output pixels row-major, one IEEE addition each, no products), so
//!   both agree with the CPU bit for bit;
//! - the convolution and its kernel gradient are dot products of length
//!   `k` (`k = kh·kw·c` for `y`, `k = batch·out_h·out_w` for `dK`) that the
//!   CPU's blocked GEMM and cuBLAS sum in different orders. In any order
//!   (and with or without fused multiply-adds) a dot product of length `k`
//!   errs from the exact one by at most `γ_k Σ|a·b|`, `γ_k = k·u / (1 - k·u)`,
//!   `u = 2^-24` (Higham, "Accuracy and Stability of Numerical
//!   Algorithms", 2nd ed., 3.1), so the GPU is checked against an `f64`
//!   reference to `γ_k Σ|a·b|` (plus `2^-40 Σ|a·b|` for the reference's own
//!   rounding) and against the CPU to twice that, per element, with
//!   `Σ|a·b|` summed over the element's own terms;
//! - the input gradient is col2im of `dY·Kᵀ`: dot products of length
//!   `filters`, then a sum of the at most `kh·kw` entries that read the
//!   element, so it errs by at most `γ_filters S + γ_taps (1 + γ_filters) S
//!   <= γ_(filters + taps) S` with `S` the sum of `|dy·k|` over every
//!   (output pixel, tap, filter) reading the element; again twice that
//!   against the CPU.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::conv::Conv2dGeometry;
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Error, Tensor};

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// `γ_k = k·u / (1 - k·u)`.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * U;
    ku / (1.0 - ku)
}

/// A convolution case: batch, input `[h, w, c]`, kernel `[kh, kw]`,
/// filters, strides, dilation, padding.
#[derive(Debug, Clone, Copy)]
struct Case {
    batch: usize,
    input: [usize; 3],
    kernel: [usize; 2],
    filters: usize,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
}

impl Case {
    fn geometry(&self) -> hebb_tensor::Result<Conv2dGeometry> {
        Conv2dGeometry::new(
            self.input,
            self.kernel,
            self.filters,
            self.strides,
            self.dilation,
            self.padding,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    batch: usize,
    input: [usize; 3],
    kernel: [usize; 2],
    filters: usize,
    strides: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
) -> Case {
    Case {
        batch,
        input,
        kernel,
        filters,
        strides,
        dilation,
        padding,
    }
}

/// Standard normal values, `len` of them, from `seed`.
fn randn(len: usize, seed: u32) -> Vec<f32> {
    RandomState::new(seed)
        .randn_vec(len)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// The input coordinate of output `o` and tap `t` along an axis, if inside.
fn at(o: usize, t: usize, stride: usize, dil: usize, pad: usize, size: usize) -> Option<usize> {
    let v = (o * stride + t * dil) as isize - pad as isize;
    (0..size as isize).contains(&v).then_some(v as usize)
}

/// An `f64` reference value and the sum of the absolute values of its
/// terms, with the number of terms (the `k` of `γ_k`).
#[derive(Clone, Copy, Default)]
struct Exact {
    value: f64,
    abs: f64,
    terms: usize,
}

/// Plain loops in `f64`: `y`, `dx` and `dk` for the loss `Σ gy·y`, each
/// with its terms' absolute sum. For `dx` the term count is `filters` plus
/// the number of (output pixel, tap) pairs reading the element.
fn reference(
    c: &Case,
    g: &Conv2dGeometry,
    x: &[f32],
    k: &[f32],
    gy: &[f32],
) -> (Vec<Exact>, Vec<Exact>, Vec<Exact>) {
    let [h, w, ch] = c.input;
    let [kh, kw] = c.kernel;
    let [oh, ow, f] = g.output_hwc();
    let [pt, pl] = g.pad_top_left();
    let mut y = vec![Exact::default(); c.batch * oh * ow * f];
    let mut dx = vec![Exact::default(); x.len()];
    let mut dk = vec![Exact::default(); k.len()];
    for n in 0..c.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for i in 0..kh {
                    for j in 0..kw {
                        let (Some(iy), Some(ix)) = (
                            at(oy, i, c.strides[0], c.dilation[0], pt, h),
                            at(ox, j, c.strides[1], c.dilation[1], pl, w),
                        ) else {
                            // A tap in the padding: a zero term of y's
                            // and dk's dot products.
                            for fi in 0..f {
                                y[((n * oh + oy) * ow + ox) * f + fi].terms += ch;
                                for cc in 0..ch {
                                    dk[((i * kw + j) * ch + cc) * f + fi].terms += 1;
                                }
                            }
                            continue;
                        };
                        for cc in 0..ch {
                            let xi = ((n * h + iy) * w + ix) * ch + cc;
                            dx[xi].terms += 1;
                            for fi in 0..f {
                                let yi = ((n * oh + oy) * ow + ox) * f + fi;
                                let ki = ((i * kw + j) * ch + cc) * f + fi;
                                let (xv, kv, gv) =
                                    (f64::from(x[xi]), f64::from(k[ki]), f64::from(gy[yi]));
                                y[yi].value += xv * kv;
                                y[yi].abs += (xv * kv).abs();
                                y[yi].terms += 1;
                                dx[xi].value += gv * kv;
                                dx[xi].abs += (gv * kv).abs();
                                dk[ki].value += gv * xv;
                                dk[ki].abs += (gv * xv).abs();
                                dk[ki].terms += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    for e in &mut dx {
        e.terms += f;
    }
    (y, dx, dk)
}

/// `got` (on the GPU) agrees with the `f64` reference to `γ_k Σ|a·b|` and
/// with the CPU's `cpu` to twice that, element by element.
fn assert_within(what: &str, c: &Case, dev: Device, got: &Tensor, cpu: &Tensor, want: &[Exact]) {
    assert_eq!(got.device(), dev, "{what}: result left the GPU ({c:?})");
    assert_eq!(got.shape(), cpu.shape(), "{what}: shape ({c:?})");
    let (g, cv) = (got.try_to_vec().unwrap(), cpu.to_vec());
    assert_eq!(g.len(), want.len(), "{what}: length ({c:?})");
    for (i, ((&g, &cv), e)) in g.iter().zip(&cv).zip(want).enumerate() {
        let bound = gamma(e.terms) * e.abs + e.abs * 2f64.powi(-40);
        let (g, cv) = (f64::from(g), f64::from(cv));
        assert!(
            (g - e.value).abs() <= bound,
            "{what}[{i}]: GPU {g:e} vs exact {:e} (bound {bound:e}, {} terms) in {c:?}",
            e.value,
            e.terms
        );
        assert!(
            (g - cv).abs() <= 2.0 * bound,
            "{what}[{i}]: GPU {g:e} vs CPU {cv:e} (bound {:e}) in {c:?}",
            2.0 * bound
        );
    }
}

/// Bit-for-bit equality of a GPU result with the CPU's.
fn assert_bits(what: &str, c: &Case, dev: Device, got: &Tensor, cpu: &Tensor) {
    assert_eq!(got.device(), dev, "{what}: result left the GPU ({c:?})");
    assert_eq!(got.shape(), cpu.shape(), "{what}: shape ({c:?})");
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert!(
        bits(got.try_to_vec().unwrap()) == bits(cpu.to_vec()),
        "{what}: GPU and CPU differ in {c:?}"
    );
}

/// Every op of the convolution on the GPU against the CPU and the loops.
fn check(c: &Case, dev: Device, seed: u32) {
    let g = c.geometry().unwrap();
    let [h, w, ch] = c.input;
    let [oh, ow, f] = g.output_hwc();
    let x = randn(c.batch * h * w * ch, seed);
    let k = randn(g.patch_len() * f, seed + 1);
    let gy = randn(c.batch * oh * ow * f, seed + 2);
    let (ry, rdx, rdk) = reference(c, &g, &x, &k, &gy);

    let xc = Tensor::from_vec(x, &[c.batch, h, w, ch]).unwrap();
    let kc = Tensor::from_vec(k, &g.kernel_shape()).unwrap();
    let gc = Tensor::from_vec(gy, &[c.batch, oh, ow, f]).unwrap();
    let (xg, kg, gg) = (
        xc.to_device(dev).unwrap(),
        kc.to_device(dev).unwrap(),
        gc.to_device(dev).unwrap(),
    );

    // im2col copies: exact.
    let cols_cpu = g.im2col(&xc).unwrap();
    assert_bits("im2col", c, dev, &g.im2col(&xg).unwrap(), &cols_cpu);
    // col2im of the same columns sums in the CPU's order: exact.
    let dcols = Tensor::from_vec(randn(cols_cpu.len(), seed + 3), cols_cpu.shape()).unwrap();
    assert_bits(
        "col2im",
        c,
        dev,
        &g.col2im(&dcols.to_device(dev).unwrap()).unwrap(),
        &g.col2im(&dcols).unwrap(),
    );

    let (s, p, d) = (c.strides, c.padding, c.dilation);
    let y = xg.conv2d(&kg, s, p, d).unwrap();
    assert_within("y", c, dev, &y, &xc.conv2d(&kc, s, p, d).unwrap(), &ry);
    let (dx_cpu, dk_cpu) = xc.conv2d_backward(&kc, &gc, s, p, d, [true, true]).unwrap();
    let (dx, dk) = xg.conv2d_backward(&kg, &gg, s, p, d, [true, true]).unwrap();
    assert_within("dx", c, dev, &dx.unwrap(), &dx_cpu.unwrap(), &rdx);
    assert_within("dk", c, dev, &dk.unwrap(), &dk_cpu.clone().unwrap(), &rdk);
    // Each gradient alone is the same as both together.
    let (none, dk1) = xg
        .conv2d_backward(&kg, &gg, s, p, d, [false, true])
        .unwrap();
    assert!(none.is_none());
    assert_within("dk alone", c, dev, &dk1.unwrap(), &dk_cpu.unwrap(), &rdk);
    let (dx1, none) = xg
        .conv2d_backward(&kg, &gg, s, p, d, [true, false])
        .unwrap();
    assert!(none.is_none());
    assert_eq!(dx1.unwrap().device(), dev);
}

#[test]
fn named_shapes_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    use Padding::{Same, Valid};
    let cases = [
        // The MNIST convnet's layers, batch 2.
        case(2, [28, 28, 1], [3, 3], 8, [1, 1], [1, 1], Valid),
        case(2, [13, 13, 32], [3, 3], 64, [1, 1], [1, 1], Valid),
        // Batch 1, one channel, one filter.
        case(1, [5, 4, 1], [2, 3], 1, [1, 1], [1, 1], Valid),
        // Kernel = input size: one output pixel.
        case(3, [4, 5, 2], [4, 5], 3, [1, 1], [1, 1], Valid),
        // Same, odd and even kernels, strides that do not divide.
        case(2, [7, 6, 3], [3, 3], 4, [1, 1], [1, 1], Same),
        case(2, [7, 6, 3], [2, 4], 4, [2, 3], [1, 1], Same),
        case(1, [5, 5, 2], [4, 4], 2, [3, 2], [1, 1], Same),
        // Same with a kernel larger than the image.
        case(2, [2, 3, 2], [5, 4], 3, [1, 1], [1, 1], Same),
        // Strides larger than the kernel (pixels no tap reads).
        case(2, [9, 8, 2], [2, 2], 3, [3, 4], [1, 1], Valid),
        // Dilation 2, valid and same.
        case(2, [9, 10, 2], [3, 2], 3, [1, 1], [2, 2], Valid),
        case(2, [8, 7, 3], [3, 3], 2, [1, 1], [2, 2], Same),
        // 1×1 kernels: pointwise (no im2col), and strided.
        case(2, [3, 4, 5], [1, 1], 6, [1, 1], [1, 1], Valid),
        case(2, [5, 4, 3], [1, 1], 2, [2, 3], [1, 1], Same),
    ];
    for (i, c) in cases.iter().enumerate() {
        check(c, dev, 10 * i as u32);
    }
}

#[test]
fn random_shapes_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut rng = RandomState::new(2024);
    let mut pick = |lo: usize, hi: usize| lo + (rng.next_u32() as usize) % (hi - lo + 1);
    let mut done = 0;
    while done < 40 {
        let strides = [pick(1, 3), pick(1, 3)];
        // Keras refuses strides > 1 together with dilation > 1; the op allows it.
        let dilation = [pick(1, 2), pick(1, 2)];
        let c = case(
            pick(1, 3),
            [pick(1, 9), pick(1, 9), pick(1, 4)],
            [pick(1, 4), pick(1, 4)],
            pick(1, 5),
            strides,
            dilation,
            if pick(0, 1) == 1 {
                Padding::Same
            } else {
                Padding::Valid
            },
        );
        if c.geometry().is_err() {
            continue;
        }
        check(&c, dev, 1000 + done);
        done += 1;
    }
}

#[test]
fn tensors_on_two_devices_and_bad_columns_are_refused() {
    let Some(dev) = gpu() else { return };
    let x = Tensor::zeros(&[1, 5, 5, 2]).to_device(dev).unwrap();
    let k = Tensor::zeros(&[3, 3, 2, 4]);
    let e = x.conv2d(&k, [1, 1], Padding::Valid, [1, 1]).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    let kg = k.to_device(dev).unwrap();
    let gy = Tensor::zeros(&[1, 3, 3, 4]);
    let e = x
        .conv2d_backward(&kg, &gy, [1, 1], Padding::Valid, [1, 1], [true, true])
        .unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    let g = Conv2dGeometry::new([5, 5, 2], [3, 3], 4, [1, 1], [1, 1], Padding::Valid).unwrap();
    let e = g
        .col2im(&Tensor::zeros(&[10, 18]).to_device(dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[10, 18]") && e.contains("[batch · 9, 18]"),
        "{e}"
    );
    let e = g
        .im2col(&Tensor::zeros(&[1, 5, 4, 2]).to_device(dev).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("[1, 5, 4, 2]") && e.contains("[5, 5, 2]"), "{e}");
    // An empty batch gives empty results on the device.
    let x0 = Tensor::zeros(&[0, 5, 5, 2]).to_device(dev).unwrap();
    let y0 = x0.conv2d(&kg, [1, 1], Padding::Valid, [1, 1]).unwrap();
    assert_eq!((y0.shape(), y0.device()), (&[0, 3, 3, 4][..], dev));
    let g0 = Tensor::zeros(&[0, 3, 3, 4]).to_device(dev).unwrap();
    let (dx0, dk0) = x0
        .conv2d_backward(&kg, &g0, [1, 1], Padding::Valid, [1, 1], [true, true])
        .unwrap();
    assert_eq!(dx0.unwrap().shape(), &[0, 5, 5, 2]);
    let dk0 = dk0.unwrap();
    assert_eq!(dk0.device(), dev);
    assert_eq!(dk0.try_to_vec().unwrap(), vec![0.0; 72]);
}
