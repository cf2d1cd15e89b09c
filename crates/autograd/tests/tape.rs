//! Semantics of `GradientTape::gradient` and `Variable`, with exact expected
//! values.

use hebb_autograd::{Error, GradientTape, Variable};
use hebb_tensor::Tensor;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn assert_close(got: &Tensor, want: &[f64], tol: f64) {
    let got = got.to_vec();
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "element {i}: got {g}, want {w} (tolerance {tol}); got {got:?}, want {want:?}"
        );
    }
}

// -------------------------------------------------------------- gradient

#[test]
fn unconnected_source_gets_zeros_of_its_shape() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, 2.0], &[2]));
    let z = tape.watch_tensor(t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    let y = x.square().sum_all();
    let g = tape.gradient(y, &[z, x])?;
    assert_eq!(g[0], Tensor::zeros(&[2, 3]));
    assert_eq!(g[1], t(&[2.0, 4.0], &[2]));
    Ok(())
}

#[test]
fn source_recorded_after_the_target_gets_zeros() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[3.0], &[1]));
    let y = x.mul_scalar(2.0);
    let later = x.square();
    let g = tape.gradient(y, &[later, x])?;
    assert_eq!(g[0], Tensor::zeros(&[1]));
    assert_eq!(g[1], t(&[2.0], &[1]));
    Ok(())
}

#[test]
fn var_used_twice_accumulates() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[-1.5, 0.0, 2.0, 3.0], &[2, 2]));
    let y = x.mul(x)?;
    let g = tape.gradient(y, &[x])?;
    assert_eq!(g[0], t(&[-3.0, 0.0, 4.0, 6.0], &[2, 2]));

    // Along two paths of different length: y = x·x + 3x  ->  2x + 3.
    let y = x.mul(x)?.add(x.mul_scalar(3.0))?;
    let g = tape.gradient(y, &[x])?;
    assert_eq!(g[0], t(&[0.0, 3.0, 7.0, 9.0], &[2, 2]));
    Ok(())
}

#[test]
fn constants_get_zeros() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, 2.0], &[2]));
    let c = tape.constant(t(&[5.0, 7.0], &[2]));
    let y = x.mul(c)?.sum_all();
    let g = tape.gradient(y, &[c, x])?;
    assert_eq!(g[0], Tensor::zeros(&[2]));
    assert_eq!(g[1], t(&[5.0, 7.0], &[2]));
    Ok(())
}

#[test]
fn ops_on_constants_only_give_zeros() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(Tensor::scalar(1.0));
    let c = tape.constant(t(&[5.0, 7.0], &[2]));
    let y = c.square().sum_all();
    assert_eq!(y.value(), Tensor::scalar(74.0));
    let g = tape.gradient(y, &[c, x])?;
    assert_eq!(g[0], Tensor::zeros(&[2]));
    assert_eq!(g[1], Tensor::zeros(&[]));
    Ok(())
}

#[test]
fn gradient_of_a_source_by_itself_is_ones() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, 2.0, 3.0], &[3]));
    let g = tape.gradient(x, &[x])?;
    assert_eq!(g[0], Tensor::ones(&[3]));
    Ok(())
}

#[test]
fn gradient_by_an_intermediate_var() -> TestResult {
    // y = h², h = 2x: dy/dh = 2h, dy/dx = 8x.
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, -2.0], &[2]));
    let h = x.mul_scalar(2.0);
    let y = h.square();
    let g = tape.gradient(y, &[h, x])?;
    assert_eq!(g[0], t(&[4.0, -8.0], &[2]));
    assert_eq!(g[1], t(&[8.0, -16.0], &[2]));
    Ok(())
}

#[test]
fn same_source_twice_gets_the_same_gradient() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, 2.0], &[2]));
    let y = x.square();
    let g = tape.gradient(y, &[x, x])?;
    assert_eq!(g[0], t(&[2.0, 4.0], &[2]));
    assert_eq!(g[1], g[0]);
    Ok(())
}

#[test]
fn gradient_can_be_asked_twice() -> TestResult {
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[0.5, -1.0, 2.0], &[3]));
    let w = tape.watch_tensor(t(&[2.0, 3.0, 4.0], &[3]));
    let y = x.mul(w)?.sigmoid().sum_all();
    let first = tape.gradient(y, &[x, w])?;
    let len = tape.len();
    let second = tape.gradient(y, &[x, w])?;
    assert_eq!(first, second);
    assert_eq!(tape.len(), len, "gradient() must not record nodes");
    // And for another target on the same tape afterwards.
    let z = x.sum_all();
    assert_eq!(
        tape.gradient(z, &[x, w])?,
        vec![Tensor::ones(&[3]), Tensor::zeros(&[3])]
    );
    Ok(())
}

#[test]
fn non_scalar_target_is_summed() -> TestResult {
    // y = x² · [1, 2, 3] broadcast over rows: d Σy / dx = 2x · [1, 2, 3].
    let tape = GradientTape::new();
    let x = tape.watch_tensor(t(&[1.0, 2.0, 3.0, -1.0, -2.0, -3.0], &[2, 3]));
    let c = tape.constant(t(&[1.0, 2.0, 3.0], &[3]));
    let y = x.square().mul(c)?;
    assert_eq!(y.shape(), vec![2, 3]);
    let g = tape.gradient(y, &[x])?;
    assert_eq!(g[0], t(&[2.0, 8.0, 18.0, -2.0, -8.0, -18.0], &[2, 3]));
    let summed = tape.gradient(y.sum_all(), &[x])?;
    assert_eq!(g, summed);
    Ok(())
}

#[test]
fn len_counts_recorded_nodes() -> TestResult {
    let tape = GradientTape::new();
    assert!(tape.is_empty());
    let x = tape.watch_tensor(Tensor::scalar(1.0));
    let c = tape.constant(Tensor::scalar(2.0));
    let _ = x.add(c)?.neg();
    assert_eq!(tape.len(), 4);
    assert!(!tape.is_empty());
    Ok(())
}

// ----------------------------------------------------------- foreign Vars

#[test]
fn foreign_var_in_a_binary_op() {
    let (t1, t2) = (GradientTape::new(), GradientTape::new());
    let a = t1.watch_tensor(t(&[1.0, 2.0], &[2]));
    let b = t2.watch_tensor(t(&[3.0, 4.0], &[2]));
    assert_eq!(a.add(b).unwrap_err(), Error::ForeignVar { op: "add" });
    assert_eq!(b.sub(a).unwrap_err(), Error::ForeignVar { op: "sub" });
    assert_eq!(a.mul(b).unwrap_err(), Error::ForeignVar { op: "mul" });
    assert_eq!(a.div(b).unwrap_err(), Error::ForeignVar { op: "div" });
    assert_eq!(
        a.maximum(b).unwrap_err(),
        Error::ForeignVar { op: "maximum" }
    );
    assert_eq!(
        a.minimum(b).unwrap_err(),
        Error::ForeignVar { op: "minimum" }
    );
    let m1 = t1.watch_tensor(Tensor::ones(&[2, 2]));
    let m2 = t2.constant(Tensor::ones(&[2, 2]));
    assert_eq!(
        m1.matmul(m2).unwrap_err(),
        Error::ForeignVar { op: "matmul" }
    );
    // Nothing was recorded by the failed ops.
    assert_eq!((t1.len(), t2.len()), (2, 2));
    let msg = a.add(b).unwrap_err().to_string();
    assert!(
        msg.contains("add") && msg.contains("different tapes"),
        "{msg}"
    );
}

#[test]
fn foreign_var_in_gradient() -> TestResult {
    let (t1, t2) = (GradientTape::new(), GradientTape::new());
    let x1 = t1.watch_tensor(t(&[1.0, 2.0], &[2]));
    let y1 = x1.square();
    let x2 = t2.watch_tensor(t(&[1.0, 2.0], &[2]));
    let y2 = x2.square();
    // A foreign source, a foreign target, and both.
    assert_eq!(
        t1.gradient(y1, &[x2]).unwrap_err(),
        Error::ForeignVar { op: "gradient" }
    );
    assert_eq!(
        t1.gradient(y2, &[x1]).unwrap_err(),
        Error::ForeignVar { op: "gradient" }
    );
    assert_eq!(
        t2.gradient(y1, &[x1]).unwrap_err(),
        Error::ForeignVar { op: "gradient" }
    );
    // The tapes still work after the errors.
    assert_eq!(t1.gradient(y1, &[x1])?[0], t(&[2.0, 4.0], &[2]));
    assert_eq!(t2.gradient(y2, &[x2])?[0], t(&[2.0, 4.0], &[2]));
    Ok(())
}

// --------------------------------------------------------------- Variable

#[test]
fn variable_watch_and_assign_sub() -> TestResult {
    let mut w = Variable::new("dense/kernel", t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    assert_eq!(w.name(), "dense/kernel");
    assert_eq!(w.shape(), &[2, 2]);
    let grad = {
        let tape = GradientTape::new();
        let wv = tape.watch(&w);
        let loss = wv.square().mul_scalar(0.5).sum_all();
        tape.gradient(loss, &[wv])?.remove(0)
    };
    assert_eq!(grad, *w.value());
    w.assign_sub(&grad.mul_scalar(0.25))?;
    assert_eq!(*w.value(), t(&[0.75, 1.5, 2.25, 3.0], &[2, 2]));
    w.assign(t(&[0.0; 4], &[2, 2]))?;
    assert_eq!(*w.value(), Tensor::zeros(&[2, 2]));
    Ok(())
}

#[test]
fn variable_assign_sub_rejects_a_shape_that_broadcasts_to_a_larger_one() {
    let mut w = Variable::new("dense/bias", t(&[1.0, 2.0, 3.0], &[3]));
    let err = w.assign_sub(&Tensor::zeros(&[2, 3])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("dense/bias"),
        "message should name the variable: {msg}"
    );
    assert!(msg.contains("[3]") && msg.contains("[2, 3]"), "{msg}");
    assert_eq!(
        *w.value(),
        t(&[1.0, 2.0, 3.0], &[3]),
        "value must be unchanged"
    );
}

#[test]
fn variable_assign_rejects_a_wrong_shape() {
    let mut w = Variable::new("dense/bias", t(&[1.0, 2.0, 3.0], &[3]));
    let msg = w.assign(Tensor::zeros(&[1, 3])).unwrap_err().to_string();
    assert!(
        msg.contains("dense/bias"),
        "message should name the variable: {msg}"
    );
    assert_eq!(*w.value(), t(&[1.0, 2.0, 3.0], &[3]));
}

/// BUG (variable.rs): `assign_sub` computes `value.sub(delta)` first, so an
/// incompatible delta fails inside `sub` with a message that does not name
/// the variable.
#[test]
fn variable_assign_sub_error_names_the_variable_for_incompatible_shapes() {
    let mut w = Variable::new("dense/kernel", Tensor::zeros(&[2, 3]));
    let msg = w
        .assign_sub(&Tensor::zeros(&[3, 2]))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("dense/kernel"),
        "message should name the variable: {msg}"
    );
}

/// BUG (variable.rs): the doc promises `ShapeMismatch` "if `delta` has another
/// shape" (and `tf.Variable.assign_sub` requires equal shapes), but a delta
/// that broadcasts up to the variable's shape is accepted.
#[test]
fn variable_assign_sub_rejects_a_broadcasting_delta() {
    let mut w = Variable::new("dense/kernel", Tensor::zeros(&[2, 3]));
    let err = w.assign_sub(&Tensor::ones(&[3]));
    assert!(
        err.is_err(),
        "delta [3] for a [2, 3] variable was accepted: {:?}",
        w.value()
    );
    let err = w.assign_sub(&Tensor::scalar(1.0));
    assert!(
        err.is_err(),
        "delta [] for a [2, 3] variable was accepted: {:?}",
        w.value()
    );
}

// --------------------------------------------------------------- lecture

/// Lecture 12.4: one input, a sigmoid hidden unit and a sigmoid output,
/// `L = 1/2 (y - y_o)²`. The expected gradients are the hand-written chain
/// rule in `f64`.
#[test]
fn lecture_12_4_two_sigmoid_units() -> TestResult {
    let (x, y, w_h, b_h, w_o, b_o) = (1.0f64, 0.8, 0.2, 0.1, 0.3, 0.2);
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let y_h = sigmoid(w_h * x + b_h);
    let y_o = sigmoid(w_o * y_h + b_o);
    let loss = 0.5 * (y - y_o).powi(2);
    // δ_o = ∂L/∂z_o, δ_h = ∂L/∂z_h.
    let delta_o = (y_o - y) * y_o * (1.0 - y_o);
    let delta_h = delta_o * w_o * y_h * (1.0 - y_h);
    let want = [delta_h * x, delta_h, delta_o * y_h, delta_o];
    assert!((want[2] + 0.028_856).abs() < 1e-6, "dL/dw_o = {}", want[2]);

    let scalar = |v: f64| Tensor::scalar(v as f32);
    let tape = GradientTape::new();
    let w_hv = tape.watch_tensor(scalar(w_h));
    let b_hv = tape.watch_tensor(scalar(b_h));
    let w_ov = tape.watch_tensor(scalar(w_o));
    let b_ov = tape.watch_tensor(scalar(b_o));
    let xv = tape.constant(scalar(x));
    let yv = tape.constant(scalar(y));
    let y_hv = w_hv.mul(xv)?.add(b_hv)?.sigmoid();
    let y_ov = w_ov.mul(y_hv)?.add(b_ov)?.sigmoid();
    let lv = yv.sub(y_ov)?.square().mul_scalar(0.5);

    assert_close(&y_hv.value(), &[y_h], 1e-6);
    assert_close(&y_ov.value(), &[y_o], 1e-6);
    assert_close(&lv.value(), &[loss], 1e-6);
    let grads = tape.gradient(lv, &[w_hv, b_hv, w_ov, b_ov])?;
    for (name, (g, &w)) in ["w_h", "b_h", "w_o", "b_o"]
        .iter()
        .zip(grads.iter().zip(&want))
    {
        assert_eq!(g.shape(), &[] as &[usize], "dL/d{name}");
        assert!(
            (f64::from(g.item()?) - w).abs() < 1e-6,
            "dL/d{name}: got {g:?}, want {w}"
        );
    }
    Ok(())
}
