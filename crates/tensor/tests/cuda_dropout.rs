//! CPU/GPU parity of the dropout mask (`ops::dropout`): for several keys,
//! first indices (a shard's offset in the global batch, up to the `u64`
//! wrap) and sizes (empty, below one block of 256 threads, and not
//! multiples of it, across the CPU's 16384-element chunks), the GPU keeps
//! exactly the elements the CPU keeps and gives the same bits.
//!
//! Tolerance: none. The mask is integer arithmetic (`u64` on the CPU,
//! `unsigned long long` on the GPU, both wrapping), and a kept element is
//! one IEEE product `x · scale`, a dropped one 0, so the results agree bit
//! for bit, infinities, signed zeros and subnormals included. A NaN stays
//! NaN, but IEEE 754 leaves its payload open: an NVIDIA GPU returns its
//! canonical NaN (`0x7fffffff`) where the CPU keeps the input's, so NaNs
//! are compared as NaN.
//!
//! Every test needs a GPU and prints `skipped: no CUDA device ...` without one.
#![cfg(feature = "cuda")]

use hebb_tensor::cuda::gpu_or_skip as gpu;
use hebb_tensor::ops::dropout::{DropoutMask, dropout_into};
use hebb_tensor::random::RandomState;
use hebb_tensor::{Device, Tensor};

/// Standard normal values, `len` of them, from `seed`, with a few IEEE
/// specials mixed in.
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut v: Vec<f32> = RandomState::new(seed)
        .randn_vec(len)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    for (i, s) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-40]
        .into_iter()
        .enumerate()
    {
        if let Some(slot) = v.get_mut(i * 7) {
            *slot = s;
        }
    }
    v
}

/// The bits of each value, every NaN as the CPU's `f32::NAN`.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| if x.is_nan() { f32::NAN } else { *x }.to_bits())
        .collect()
}

#[test]
fn gpu_masks_are_the_cpu_masks_bit_for_bit() {
    let Some(device) = gpu() else { return };
    let sizes = [0usize, 1, 7, 255, 256, 257, 1000, 4099, 16_384 + 33, 70_001];
    let keys = [0u64, 1, 0x9E37_79B9_7F4A_7C15, u64::MAX, 1_234_567_891_011];
    let firsts = [0u64, 3, 1 << 33, u64::MAX - 50];
    let mut case = 0u32;
    for &n in &sizes {
        for (k, &key) in keys.iter().enumerate() {
            // Every first index for one key, one more for each key.
            let mut starts = if k == 0 { firsts.to_vec() } else { Vec::new() };
            starts.push(k as u64 * 977);
            for first in starts {
                case += 1;
                // Rates 0.1 to 0.9, and 0 (everything kept).
                let rate = f64::from(case % 10) / 10.0;
                let mask = DropoutMask {
                    key,
                    first,
                    threshold: (rate * f64::from(1u32 << 24)).ceil() as u32,
                    scale: (1.0 / (1.0 - rate)) as f32,
                };
                let x = Tensor::from_vec(values(n, case), &[n]).unwrap();
                let cpu = x.dropout(&mask).unwrap();
                let gx = x.to_device(device).unwrap();
                let g = gx.dropout(&mask).unwrap();
                assert_eq!(g.device(), device);
                assert_eq!(
                    bits(&g.to_vec()),
                    bits(&cpu.to_vec()),
                    "n {n} key {key} first {first} rate {rate}"
                );
                // The definition, element by element.
                let want: Vec<f32> = x
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| {
                        if mask.keeps(j as u64) {
                            v * mask.scale
                        } else {
                            0.0
                        }
                    })
                    .collect();
                assert_eq!(bits(&cpu.to_vec()), bits(&want));
            }
        }
    }
}

#[test]
fn shards_draw_the_whole_batch_mask_on_the_gpu() {
    let Some(device) = gpu() else { return };
    // Rows of 13 elements; a batch of 40 rows cut at rows 0, 17, 31.
    let x = Tensor::from_vec(values(40 * 13, 9), &[40, 13]).unwrap();
    let mask = DropoutMask {
        key: 77,
        first: 0,
        threshold: 1 << 23,
        scale: 2.0,
    };
    let whole = x.dropout(&mask).unwrap().to_vec();
    for (start, end) in [(0usize, 17usize), (17, 31), (31, 40)] {
        let rows: Vec<usize> = (start..end).collect();
        let shard = x.gather_rows(&rows).unwrap().to_device(device).unwrap();
        let m = DropoutMask {
            first: (start * 13) as u64,
            ..mask
        };
        let y = shard.dropout(&m).unwrap().to_vec();
        assert_eq!(
            bits(&y),
            bits(&whole[start * 13..end * 13]),
            "rows {start}..{end}"
        );
    }
}

#[test]
fn outputs_are_reused_on_the_device_and_never_copied_to_the_host() {
    let Some(device) = gpu() else { return };
    let mask = DropoutMask {
        key: 5,
        first: 0,
        threshold: 1 << 22,
        scale: 4.0 / 3.0,
    };
    let x = Tensor::from_vec(values(300, 2), &[3, 100])
        .unwrap()
        .to_device(device)
        .unwrap();
    let mut out = Tensor::zeros(&[0]);
    dropout_into(&x, &mut out, &mask).unwrap();
    assert_eq!((out.shape(), out.device()), (&[3usize, 100][..], device));
    let first = out.to_vec();
    // Reused in place: a shared copy keeps the old values.
    let kept = out.clone();
    let x2 = x.mul_scalar(2.0);
    dropout_into(&x2, &mut out, &mask).unwrap();
    assert_eq!(bits(&kept.to_vec()), bits(&first));
    let want = x2.to_device(Device::Cpu).unwrap().dropout(&mask).unwrap();
    assert_eq!(bits(&out.to_vec()), bits(&want.to_vec()));
    // A CPU output buffer is replaced by a device one.
    let mut host = Tensor::zeros(&[3, 100]);
    dropout_into(&x, &mut host, &mask).unwrap();
    assert_eq!(host.device(), device);
    assert_eq!(bits(&host.to_vec()), bits(&first));
}
