//! Timing of the MNIST convnet's convolutions at batch 128 (not a test).
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::conv::{Conv2dGeometry, Conv2dGrads, Conv2dScratch};
use std::time::Instant;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i ^ seed).wrapping_mul(2_654_435_761).rotate_left(13);
            (h % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn time(name: &str, flops: f64, mut f: impl FnMut()) {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:40} {:8.2} ms {:8.1} GFLOP/s",
        best * 1e3,
        flops / best / 1e9
    );
}

fn main() {
    let batch = 128;
    for (name, input, filters, need_dx) in [
        ("conv1", [28, 28, 1], 32, false),
        ("conv2", [13, 13, 32], 64, true),
    ] {
        let g =
            Conv2dGeometry::new(input, [3, 3], filters, [1, 1], [1, 1], Padding::Valid).unwrap();
        let [h, w, c] = input;
        let [oh, ow, f] = g.output_hwc();
        let x = values(batch * h * w * c, 1);
        let k = values(g.patch_len() * f, 2);
        let b = values(f, 3);
        let gy = values(batch * oh * ow * f, 4);
        let mut y = vec![0f32; gy.len()];
        let (mut dx, mut dk, mut db) = (vec![0f32; x.len()], vec![0f32; k.len()], vec![0f32; f]);
        let mut s = Conv2dScratch::new();
        let fl = 2.0 * g.forward_macs(batch) as f64;
        time(&format!("{name} forward"), fl, || {
            g.forward(batch, &x, &k, Some(&b), &mut y, &mut s, |_, _| {})
                .unwrap()
        });
        time(
            &format!("{name} forward+backward"),
            fl * if need_dx { 3.0 } else { 2.0 },
            || {
                g.forward(batch, &x, &k, Some(&b), &mut y, &mut s, |_, _| {})
                    .unwrap();
                let grads = Conv2dGrads {
                    kernel: Some(&mut dk),
                    bias: Some(&mut db),
                    input: need_dx.then_some(&mut dx[..]),
                };
                g.backward(batch, &k, &mut gy.clone(), grads, &mut s, |_, _| {})
                    .unwrap();
            },
        );
        time(&format!("{name} fwd + bwd dK only"), fl * 2.0, || {
            g.forward(batch, &x, &k, Some(&b), &mut y, &mut s, |_, _| {})
                .unwrap();
            let grads = Conv2dGrads {
                kernel: Some(&mut dk),
                bias: None,
                input: None,
            };
            g.backward(batch, &k, &mut gy.clone(), grads, &mut s, |_, _| {})
                .unwrap();
        });
        time(&format!("{name} fwd + bwd dX only"), fl * 2.0, || {
            g.forward(batch, &x, &k, Some(&b), &mut y, &mut s, |_, _| {})
                .unwrap();
            let grads = Conv2dGrads {
                kernel: None,
                bias: None,
                input: Some(&mut dx),
            };
            g.backward(batch, &k, &mut gy.clone(), grads, &mut s, |_, _| {})
                .unwrap();
        });
    }
}
