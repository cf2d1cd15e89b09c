//! Gradient checks of [`Var::conv2d`]: the tape's gradients of the input and
//! the kernel against central finite differences ([`GradCheck`]) on random
//! shapes, strides, dilations and both paddings, and the gradient of a
//! constant input is not computed.

use hebb_autograd::gradcheck::GradCheck;
use hebb_autograd::{GradientTape, Var};
use hebb_tensor::Tensor;
use hebb_tensor::ops::Padding;
use hebb_tensor::ops::conv::Conv2dGeometry;
use proptest::prelude::*;

/// `(x, kernel, strides, dilation, padding)` with values in `[-1.9, 1.9]`
/// (so that `x ± 2^-7` is exact, as the gradcheck tolerance assumes).
type Case = (Tensor, Tensor, [usize; 2], [usize; 2], Padding);

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=2, 1usize..=6, 1usize..=6, 1usize..=3),
        (1usize..=3, 1usize..=3, 1usize..=3),
        (1usize..=2, 1usize..=2, 1usize..=2, 1usize..=2),
        any::<bool>(),
    )
        .prop_filter_map(
            "a kernel that fits",
            |((n, h, w, c), (kh, kw, f), (sh, sw, dh, dw), same)| {
                let padding = if same { Padding::Same } else { Padding::Valid };
                Conv2dGeometry::new([h, w, c], [kh, kw], f, [sh, sw], [dh, dw], padding).ok()?;
                Some(([n, h, w, c], [kh, kw, c, f], [sh, sw], [dh, dw], padding))
            },
        )
        .prop_flat_map(|(xs, ks, strides, dilation, padding)| {
            let values = |shape: [usize; 4]| {
                prop::collection::vec(-1.9f32..=1.9, shape.iter().product::<usize>())
                    .prop_map(move |v| Tensor::from_vec(v, &shape).unwrap())
            };
            (values(xs), values(ks)).prop_map(move |(x, k)| (x, k, strides, dilation, padding))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv2d((x, k, strides, dilation, padding) in case()) {
        let shapes = (x.shape().to_vec(), k.shape().to_vec());
        let worst = GradCheck::default()
            .run(&[x, k], |_, v| v[0].conv2d(v[1], strides, padding, dilation))
            .unwrap();
        prop_assert!(
            worst.is_none(),
            "conv2d {shapes:?} strides {strides:?} dilation {dilation:?} {padding:?}: {worst:?}"
        );
    }
}

/// A constant input gets no gradient; the kernel's equals `Σ` over the
/// output of `x` under each tap (here: all ones, so each tap sums its window).
#[test]
fn constant_input_and_kernel_gradient() {
    let tape = GradientTape::new();
    let x = tape
        .constant(Tensor::from_vec((1..=9).map(|v| v as f32).collect(), &[1, 3, 3, 1]).unwrap());
    let k = tape.watch_tensor(Tensor::full(&[2, 2, 1, 1], 1.0));
    let y: Var<'_> = x.conv2d(k, [1, 1], Padding::Valid, [1, 1]).unwrap();
    assert_eq!(y.value().to_vec(), vec![12.0, 16.0, 24.0, 28.0]);
    let grads = tape.gradient(y.sum_all(), &[k]).unwrap();
    // Tap (i, j) sees x[i..i+2, j..j+2]: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
    assert_eq!(grads[0].to_vec(), vec![12.0, 16.0, 24.0, 28.0]);
    assert!(
        x.conv2d(
            tape.constant(Tensor::zeros(&[2, 2, 2, 1])),
            [1, 1],
            Padding::Valid,
            [1, 1]
        )
        .is_err()
    );
}
