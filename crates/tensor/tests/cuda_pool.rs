//! CPU/GPU parity of the pooling ops (`hebb_tensor::ops::pool`), forward
//! and backward: max and average pooling on random channels-last shapes
//! (odd sizes, batch and channels from 1, pools and strides 1 to 3 each, so
//! strides below, equal to and above the pool, `valid` and `same`), values
//! with many ties, NaNs, infinities and signed zeros; global average and
//! global max pooling; the empty cases; the errors.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device ...` without one.
//!
//! Tolerance: none, every result must agree bit for bit, on a real GPU as
//! on the fake driver, because each GPU element is computed with the same
//! IEEE operations in the same order as the CPU's:
//! - max pooling only compares and selects (strictly greater replaces, a
//!   first NaN replaces a number, so ties and NaNs pick the CPU's element),
//!   and the arg-max indices are the same integers;
//! - its backward pass gathers, for each input cell, the gradients of the
//!   outputs whose arg-max it is, added to 0 in increasing output order:
//!   the same additions, in the same order, as the CPU's scatter;
//! - average pooling adds a window's image cells to 0 in scan order and
//!   divides once by their count; its backward adds `g / count` of each
//!   covering window in output order, as the CPU's scatter does. Additions
//!   and IEEE division (NVRTC runs with `--prec-div=true --ftz=false`) are
//!   correctly rounded, and there is no multiplication for `--fmad` to
//!   contract into a fused multiply-add, so no rounding differs;
//! - the global average sums in `f64` in scan order and divides in `f64`,
//!   rounding to `f32` once, on both; its backward is one division.
//!
//! The one exception is the bits of a NaN that arithmetic returns (a sum
//! with a NaN in it, or `∞ - ∞`): IEEE 754 leaves its payload to the
//! hardware (x86 passes an input NaN's on, an NVIDIA GPU returns its
//! canonical `0x7fffffff`; seen on an H200), so the averages compare a NaN
//! as equal to any NaN ([`canon`]). Max pooling only copies values, so its
//! NaNs keep their bits and are compared as they are.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::pool::Pool2d;
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Error, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// The bits of each value, every NaN as `f32::NAN`'s: for results of
/// arithmetic, whose NaN payloads are the hardware's.
fn canon(t: &Tensor) -> Vec<u32> {
    t.to_vec()
        .iter()
        .map(|v| if v.is_nan() { f32::NAN } else { *v }.to_bits())
        .collect()
}

/// A small integer in `lo..=hi`.
fn int(rng: &mut RandomState, lo: usize, hi: usize) -> usize {
    lo + rng.next_u32() as usize % (hi - lo + 1)
}

/// Values in {-2, -1.5, .., 2} (many ties), with about one in 40 a NaN, an
/// infinity or a signed zero.
fn values(rng: &mut RandomState, len: usize) -> Vec<f32> {
    const SPECIALS: [f32; 5] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
    (0..len)
        .map(|_| {
            if rng.next_u32().is_multiple_of(40) {
                SPECIALS[rng.next_u32() as usize % SPECIALS.len()]
            } else {
                (rng.next_u32() % 9) as f32 / 2.0 - 2.0
            }
        })
        .collect()
}

/// Standard normal gradients (distinct values, so a wrong order of the
/// additions would show in the last bits).
fn grads(rng: &mut RandomState, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.randn() as f32).collect()
}

/// A random geometry: `[n, h, w, c]` with n, c in 1..=3 and h, w in 1..=9,
/// a pool and strides in 1..=3 each, a padding; `valid` cases whose pool
/// does not fit the image are made `same`.
fn geometry(rng: &mut RandomState) -> Pool2d {
    let shape = [
        int(rng, 1, 3),
        int(rng, 1, 9),
        int(rng, 1, 9),
        int(rng, 1, 3),
    ];
    let pool = [int(rng, 1, 3), int(rng, 1, 3)];
    let strides = [int(rng, 1, 3), int(rng, 1, 3)];
    let fits = pool[0] <= shape[1] && pool[1] <= shape[2];
    let padding = if rng.next_u32().is_multiple_of(2) && fits {
        Padding::Valid
    } else {
        Padding::Same
    };
    Pool2d::new(&shape, pool, strides, padding).unwrap()
}

fn describe(g: &Pool2d) -> String {
    format!(
        "input {:?} pool {:?} strides {:?} {:?}",
        g.input_shape(),
        g.pool(),
        g.strides(),
        g.padding()
    )
}

/// Max pooling's output, arg-max indices and input gradient on the GPU are
/// the CPU's, and stay on the GPU.
fn check_max(device: Device, g: &Pool2d, x: &Tensor, grad_out: &Tensor) {
    let what = describe(g);
    let (pool, strides, padding) = (g.pool(), g.strides(), g.padding());
    let xd = x.to_device(device).unwrap();
    let (y, argmax) = x.max_pool2d_with_argmax(pool, strides, padding).unwrap();
    let (yd, argmax_d) = xd.max_pool2d_with_argmax(pool, strides, padding).unwrap();
    assert_eq!(yd.device(), device, "{what}");
    assert_eq!(argmax_d.device(), device, "{what}");
    assert_eq!(yd.shape(), y.shape(), "{what}");
    assert_eq!(bits(&yd), bits(&y), "{what}: max_pool2d");
    assert_eq!(
        argmax_d.to_vec().unwrap(),
        argmax.to_vec().unwrap(),
        "{what}: argmax"
    );
    assert_eq!(argmax_d.geometry(), *g);
    let plain = xd.max_pool2d(pool, strides, padding).unwrap();
    assert_eq!(bits(&plain), bits(&y), "{what}: max_pool2d without argmax");

    let gd = grad_out.to_device(device).unwrap();
    let gi = x.max_pool2d_backward(grad_out, &argmax).unwrap();
    let gid = xd.max_pool2d_backward(&gd, &argmax_d).unwrap();
    assert_eq!(gid.device(), device, "{what}");
    assert_eq!(gid.shape(), x.shape(), "{what}");
    assert_eq!(bits(&gid), bits(&gi), "{what}: max_pool2d_backward");
}

/// Average pooling's output and input gradient on the GPU are the CPU's.
fn check_avg(device: Device, g: &Pool2d, x: &Tensor, grad_out: &Tensor) {
    let what = describe(g);
    let (pool, strides, padding) = (g.pool(), g.strides(), g.padding());
    let xd = x.to_device(device).unwrap();
    let y = x.avg_pool2d(pool, strides, padding).unwrap();
    let yd = xd.avg_pool2d(pool, strides, padding).unwrap();
    assert_eq!(yd.device(), device, "{what}");
    assert_eq!(yd.shape(), y.shape(), "{what}");
    assert_eq!(canon(&yd), canon(&y), "{what}: avg_pool2d");

    let gd = grad_out.to_device(device).unwrap();
    let gi = x
        .avg_pool2d_backward(grad_out, pool, strides, padding)
        .unwrap();
    let gid = xd.avg_pool2d_backward(&gd, pool, strides, padding).unwrap();
    assert_eq!(gid.device(), device, "{what}");
    assert_eq!(gid.shape(), x.shape(), "{what}");
    assert_eq!(canon(&gid), canon(&gi), "{what}: avg_pool2d_backward");
}

#[test]
fn max_and_average_pooling_match_the_cpu_bit_for_bit() {
    let Some(device) = gpu() else { return };
    let mut rng = RandomState::new(7);
    let (mut overlapping, mut same, mut valid) = (0, 0, 0);
    for _ in 0..300 {
        let g = geometry(&mut rng);
        let x = Tensor::from_vec(values(&mut rng, g.input_len()), &g.input_shape()).unwrap();
        let go = Tensor::from_vec(grads(&mut rng, g.output_len()), &g.output_shape()).unwrap();
        check_max(device, &g, &x, &go);
        check_avg(device, &g, &x, &go);
        overlapping += usize::from(g.strides()[0] < g.pool()[0] || g.strides()[1] < g.pool()[1]);
        match g.padding() {
            Padding::Same => same += 1,
            Padding::Valid => valid += 1,
        }
    }
    // The draw covered what it should.
    assert!(
        overlapping > 50 && same > 50 && valid > 50,
        "{overlapping} {same} {valid}"
    );
}

/// The convnet's shapes (Keras' MNIST example: 26×26×32 and 11×11×64,
/// pool 2), and an overlapping 3×3 / 2 'same' pool, on larger batches.
#[test]
fn convnet_shapes_match_the_cpu_bit_for_bit() {
    let Some(device) = gpu() else { return };
    let mut rng = RandomState::new(11);
    for (shape, pool, strides, padding) in [
        ([8, 26, 26, 32], [2, 2], [2, 2], Padding::Valid),
        ([8, 11, 11, 64], [2, 2], [2, 2], Padding::Valid),
        ([4, 13, 15, 16], [3, 3], [2, 2], Padding::Same),
    ] {
        let g = Pool2d::new(&shape, pool, strides, padding).unwrap();
        let x = Tensor::from_vec(values(&mut rng, g.input_len()), &shape).unwrap();
        let go = Tensor::from_vec(grads(&mut rng, g.output_len()), &g.output_shape()).unwrap();
        check_max(device, &g, &x, &go);
        check_avg(device, &g, &x, &go);
    }
}

/// Ties send the gradient to the first maximum in scan order, and the
/// first NaN of a window is its maximum; overlapping windows that share a
/// maximum add their gradients.
#[test]
fn ties_and_nans_take_the_first_maximum() {
    let Some(device) = gpu() else { return };
    let x = Tensor::from_vec(vec![1.0; 9], &[1, 3, 3, 1]).unwrap();
    let xd = x.to_device(device).unwrap();
    let (y, argmax) = xd
        .max_pool2d_with_argmax([2, 2], [1, 1], Padding::Valid)
        .unwrap();
    assert_eq!(y.to_vec(), [1.0; 4]);
    assert_eq!(argmax.to_vec().unwrap(), [0, 1, 3, 4]);
    let g = Tensor::from_vec(vec![1.0, 2.0, 4.0, 8.0], &[1, 2, 2, 1])
        .unwrap()
        .to_device(device)
        .unwrap();
    let gi = xd.max_pool2d_backward(&g, &argmax).unwrap();
    assert_eq!(gi.to_vec(), [1.0, 2.0, 0.0, 4.0, 8.0, 0.0, 0.0, 0.0, 0.0]);

    // One maximum shared by all four windows of a 'same' 2×2 / 1 pool.
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 5.0], &[1, 2, 2, 1])
        .unwrap()
        .to_device(device)
        .unwrap();
    let (_, argmax) = x
        .max_pool2d_with_argmax([2, 2], [1, 1], Padding::Same)
        .unwrap();
    assert_eq!(argmax.to_vec().unwrap(), [3, 3, 3, 3]);
    let g = Tensor::from_vec(vec![1.0, 2.0, 4.0, 8.0], &[1, 2, 2, 1])
        .unwrap()
        .to_device(device)
        .unwrap();
    assert_eq!(
        x.max_pool2d_backward(&g, &argmax).unwrap().to_vec(),
        [0.0, 0.0, 0.0, 15.0]
    );

    // NaNs: the first one wins over numbers and later NaNs.
    let nan2 = f32::from_bits(0x7fc0_0002);
    let x = Tensor::from_vec(vec![3.0, f32::NAN, nan2, 9.0], &[1, 2, 2, 1])
        .unwrap()
        .to_device(device)
        .unwrap();
    let (y, argmax) = x
        .max_pool2d_with_argmax([2, 2], [2, 2], Padding::Valid)
        .unwrap();
    assert_eq!(bits(&y), [f32::NAN.to_bits()]);
    assert_eq!(argmax.to_vec().unwrap(), [1]);
}

#[test]
fn global_pooling_matches_the_cpu_bit_for_bit() {
    let Some(device) = gpu() else { return };
    let mut rng = RandomState::new(3);
    let mut shapes: Vec<[usize; 4]> =
        vec![[1, 1, 1, 1], [2, 5, 5, 64], [3, 1, 7, 2], [4, 13, 13, 3]];
    for _ in 0..60 {
        shapes.push([
            int(&mut rng, 1, 3),
            int(&mut rng, 1, 9),
            int(&mut rng, 1, 9),
            int(&mut rng, 1, 5),
        ]);
    }
    for s in shapes {
        let [n, _, _, c] = s;
        let len = s.iter().product();
        // Normal values: the f64 sums of the average differ from f32 ones.
        let mut data = grads(&mut rng, len);
        if rng.next_u32().is_multiple_of(4) {
            data = values(&mut rng, len);
        }
        let x = Tensor::from_vec(data, &s).unwrap();
        let xd = x.to_device(device).unwrap();
        let go = Tensor::from_vec(grads(&mut rng, n * c), &[n, c]).unwrap();
        let god = go.to_device(device).unwrap();

        let y = x.global_avg_pool2d().unwrap();
        let yd = xd.global_avg_pool2d().unwrap();
        assert_eq!((yd.shape(), yd.device()), (&[n, c][..], device), "{s:?}");
        assert_eq!(canon(&yd), canon(&y), "{s:?}: global_avg_pool2d");
        let gi = x.global_avg_pool2d_backward(&go).unwrap();
        let gid = xd.global_avg_pool2d_backward(&god).unwrap();
        assert_eq!((gid.shape(), gid.device()), (&s[..], device), "{s:?}");
        assert_eq!(canon(&gid), canon(&gi), "{s:?}: global_avg_pool2d_backward");
        // Keras' keepdims shape of the gradient is taken too.
        let kept = god.reshape(&[n, 1, 1, c]).unwrap();
        assert_eq!(
            canon(&xd.global_avg_pool2d_backward(&kept).unwrap()),
            canon(&gi)
        );

        let (y, argmax) = x.global_max_pool2d_with_argmax().unwrap();
        let (yd, argmax_d) = xd.global_max_pool2d_with_argmax().unwrap();
        assert_eq!((yd.shape(), yd.device()), (&[n, c][..], device), "{s:?}");
        assert_eq!(bits(&yd), bits(&y), "{s:?}: global_max_pool2d");
        assert_eq!(bits(&xd.global_max_pool2d().unwrap()), bits(&y));
        assert_eq!(argmax_d.to_vec().unwrap(), argmax.to_vec().unwrap());
        let gi = x.max_pool2d_backward(&go, &argmax).unwrap();
        let gid = xd.max_pool2d_backward(&god, &argmax_d).unwrap();
        assert_eq!(gid.device(), device);
        assert_eq!(bits(&gid), bits(&gi), "{s:?}: global max backward");
        assert_eq!(
            bits(&xd.max_pool2d_backward(&kept, &argmax_d).unwrap()),
            bits(&gi)
        );
    }
}

/// An empty batch or no channels: empty results on the device, no launch.
#[test]
fn empty_batches_and_channels() {
    let Some(device) = gpu() else { return };
    for s in [[0, 4, 4, 2], [2, 4, 4, 0]] {
        let x = Tensor::zeros(&s).to_device(device).unwrap();
        let (y, argmax) = x
            .max_pool2d_with_argmax([2, 2], [2, 2], Padding::Valid)
            .unwrap();
        let out = [s[0], 2, 2, s[3]];
        assert_eq!((y.shape(), y.device()), (&out[..], device));
        assert!(argmax.is_empty() && argmax.to_vec().unwrap().is_empty());
        let g = Tensor::zeros(&out).to_device(device).unwrap();
        let gi = x.max_pool2d_backward(&g, &argmax).unwrap();
        assert_eq!((gi.shape(), gi.len()), (&s[..], 0));
        let y = x.avg_pool2d([3, 3], [1, 1], Padding::Same).unwrap();
        assert_eq!(y.shape(), &[s[0], 4, 4, s[3]]);
        let gi = x
            .avg_pool2d_backward(&y, [3, 3], [1, 1], Padding::Same)
            .unwrap();
        assert_eq!(gi.shape(), &s[..]);
        let y = x.global_avg_pool2d().unwrap();
        assert_eq!(y.shape(), &[s[0], s[3]]);
        assert_eq!(x.global_avg_pool2d_backward(&y).unwrap().shape(), &s[..]);
        assert_eq!(x.global_max_pool2d().unwrap().shape(), &[s[0], s[3]]);
    }
}

/// Mismatched devices, shapes and geometries are typed errors naming the op.
#[test]
fn errors_name_the_op_shapes_and_devices() {
    let Some(device) = gpu() else { return };
    let x = Tensor::ones(&[2, 4, 4, 3]);
    let xd = x.to_device(device).unwrap();
    let (_, argmax_cpu) = x
        .max_pool2d_with_argmax([2, 2], [2, 2], Padding::Valid)
        .unwrap();
    let (yd, argmax) = xd
        .max_pool2d_with_argmax([2, 2], [2, 2], Padding::Valid)
        .unwrap();
    let g = Tensor::ones(&[2, 2, 2, 3]);

    // The gradient on the CPU, the indices on the GPU, and the reverse.
    let e = xd.max_pool2d_backward(&g, &argmax).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DeviceMismatch {
                op: "max_pool2d_backward",
                ..
            }
        ),
        "{e:?}"
    );
    let e = xd.max_pool2d_backward(&yd, &argmax_cpu).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    let e = x.max_pool2d_backward(&g, &argmax).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    let e = xd
        .avg_pool2d_backward(&g, [2, 2], [2, 2], Padding::Valid)
        .unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");
    let e = xd
        .global_avg_pool2d_backward(&Tensor::ones(&[2, 3]))
        .unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch { .. }), "{e:?}");

    // Shapes: another input, another output gradient.
    let other = Tensor::ones(&[2, 6, 4, 3]).to_device(device).unwrap();
    let e = other.max_pool2d_backward(&yd, &argmax).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::ShapeMismatch { .. })
            && text.contains("[2, 6, 4, 3]")
            && text.contains("[2, 4, 4, 3]"),
        "{text}"
    );
    let bad = Tensor::ones(&[2, 2, 2, 2]).to_device(device).unwrap();
    let e = xd.max_pool2d_backward(&bad, &argmax).unwrap_err();
    assert!(e.to_string().contains("[2, 2, 2, 2]"), "{e}");
    let e = xd
        .avg_pool2d_backward(&bad, [2, 2], [2, 2], Padding::Valid)
        .unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e:?}");
    let e = xd.global_avg_pool2d_backward(&bad).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e:?}");

    // The geometry is checked before anything runs on the device.
    let e = xd.max_pool2d([5, 5], [1, 1], Padding::Valid).unwrap_err();
    assert!(e.to_string().contains("larger"), "{e}");
    assert!(xd.avg_pool2d([0, 2], [1, 1], Padding::Same).is_err());
    let flat = Tensor::ones(&[2, 48]).to_device(device).unwrap();
    assert!(matches!(flat.global_max_pool2d(), Err(Error::Rank { .. })));
}
