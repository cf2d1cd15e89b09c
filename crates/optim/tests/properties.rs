//! Property tests: every optimiser follows the f64 reference of the Keras
//! rule on random inputs, and updates each element independently (so
//! several variables in one call equal separate calls, bit for bit).

mod common;

use common::Config;
use hebb_autograd::Variable;
use hebb_tensor::Tensor;
use proptest::prelude::*;

fn vector(n: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-3.0_f32..3.0, n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Three steps with arbitrary gradients (not a quadratic) match the
    /// reference to 1e-6 of the weights' scale (the errors seen are below
    /// 2e-7: f32 rounding).
    #[test]
    fn matches_the_reference(
        which in 0usize..10,
        w0 in vector(6),
        g in prop::collection::vec(vector(6), 3),
    ) {
        let (_, config) = Config::all()[which];
        let mut opt = config.build();
        let mut w = Variable::new("w", Tensor::from_vec(w0.clone(), &[2, 3]).unwrap());
        let mut reference = config.reference(6);
        let mut w_ref: Vec<f64> = w0.iter().map(|&v| f64::from(v)).collect();
        for g in &g {
            opt.apply_gradients(&mut [&mut w], &[Tensor::from_vec(g.clone(), &[2, 3]).unwrap()]).unwrap();
            let g_ref: Vec<f64> = g.iter().map(|&v| f64::from(v)).collect();
            reference.step(&mut w_ref, &g_ref);
        }
        // Relative to the value plus the inputs' scale (|w0| <= 3): f32
        // cancellation leaves absolute errors of a few ulps of 3.
        let got = w.value().to_vec();
        for (i, (&a, &b)) in got.iter().zip(&w_ref).enumerate() {
            let tol = 1e-6 * (b.abs() + 3.0);
            prop_assert!((f64::from(a) - b).abs() <= tol, "{:?} w[{}]: got {}, want {}", config, i, a, b);
        }
    }

    /// Two variables in one call give bit-for-bit the results of two
    /// optimisers, one per variable.
    #[test]
    fn variables_are_updated_independently(
        which in 0usize..10,
        a0 in vector(4),
        b0 in vector(3),
        ga in prop::collection::vec(vector(4), 2),
        gb in prop::collection::vec(vector(3), 2),
    ) {
        let (_, config) = Config::all()[which];
        let mut together = config.build();
        let (mut a, mut b) = (
            Variable::new("a", Tensor::from_vec(a0.clone(), &[4]).unwrap()),
            Variable::new("b", Tensor::from_vec(b0.clone(), &[3]).unwrap()),
        );
        let (mut opt_a, mut opt_b) = (config.build(), config.build());
        let (mut a2, mut b2) = (a.clone(), b.clone());
        for (ga, gb) in ga.iter().zip(&gb) {
            let (ga, gb) = (Tensor::from_vec(ga.clone(), &[4]).unwrap(), Tensor::from_vec(gb.clone(), &[3]).unwrap());
            together.apply_gradients(&mut [&mut a, &mut b], &[ga.clone(), gb.clone()]).unwrap();
            opt_a.apply_gradients(&mut [&mut a2], &[ga]).unwrap();
            opt_b.apply_gradients(&mut [&mut b2], &[gb]).unwrap();
        }
        prop_assert_eq!(a.value(), a2.value());
        prop_assert_eq!(b.value(), b2.value());
    }
}
