//! Keras 3's stateful metrics (`keras/src/metrics/`) against values computed
//! by hand and the examples in Keras' docstrings: accumulation over batches
//! of different sizes, reset, names and `from_name`.

use hebb_layers::losses::Loss;
use hebb_layers::metrics::{
    self, Auc, AutoAccuracy, MeanFn, MeanMetricWrapper, Metric, Precision, Recall,
};
use hebb_tensor::Tensor;

fn t(v: &[f32], s: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), s).unwrap()
}

fn mean(f: MeanFn) -> MeanMetricWrapper {
    MeanMetricWrapper::new(f)
}

fn close(a: f32, b: f64, tol: f64) {
    assert!((f64::from(a) - b).abs() <= tol, "{a} vs {b}");
}

#[test]
fn keras_docstring_examples() {
    // BinaryAccuracy: [[1], [1], [0], [0]] vs [[0.98], [1], [0], [0.6]] -> 0.75.
    let mut m = mean(MeanFn::BinaryAccuracy { threshold: 0.5 });
    m.update_state(
        &t(&[1., 1., 0., 0.], &[4, 1]),
        &t(&[0.98, 1., 0., 0.6], &[4, 1]),
    )
    .unwrap();
    assert_eq!(m.result(), 0.75);
    assert_eq!(m.name(), "binary_accuracy");
    // Accuracy: [[1], [2], [3], [4]] vs [[0], [2], [3], [4]] -> 0.75.
    let mut m = mean(MeanFn::Accuracy);
    m.update_state(
        &t(&[1., 2., 3., 4.], &[4, 1]),
        &t(&[0., 2., 3., 4.], &[4, 1]),
    )
    .unwrap();
    assert_eq!(m.result(), 0.75);
    // CategoricalAccuracy -> 0.5.
    let y = t(&[0., 0., 1., 0., 1., 0.], &[2, 3]);
    let p = t(&[0.1, 0.9, 0.8, 0.05, 0.95, 0.], &[2, 3]);
    let mut m = mean(MeanFn::CategoricalAccuracy);
    m.update_state(&y, &p).unwrap();
    assert_eq!(m.result(), 0.5);
    // TopKCategoricalAccuracy(k=1) -> 0.5.
    let mut m = mean(MeanFn::TopKCategoricalAccuracy { k: 1 });
    m.update_state(&y, &p).unwrap();
    assert_eq!(m.result(), 0.5);
    // SparseCategoricalAccuracy: [[2], [1]] vs [[0.1, 0.6, 0.3], [0.05, 0.95, 0]] -> 0.5.
    let mut m = mean(MeanFn::SparseCategoricalAccuracy);
    m.update_state(
        &t(&[2., 1.], &[2, 1]),
        &t(&[0.1, 0.6, 0.3, 0.05, 0.95, 0.], &[2, 3]),
    )
    .unwrap();
    assert_eq!(m.result(), 0.5);
    // SparseTopKCategoricalAccuracy(k=1): [2, 1] -> 0.5.
    let mut m = mean(MeanFn::SparseTopKCategoricalAccuracy { k: 1 });
    m.update_state(&t(&[2., 1.], &[2]), &p).unwrap();
    assert_eq!(m.result(), 0.5);
    // Precision: [0, 1, 1, 1] vs [1, 0, 1, 1] -> 2/3.
    let mut m = Precision::new();
    m.update_state(&t(&[0., 1., 1., 1.], &[4]), &t(&[1., 0., 1., 1.], &[4]))
        .unwrap();
    close(m.result(), 2.0 / 3.0, 1e-7);
    // Recall: [0, 1, 1, 1] vs [1, 0, 1, 1] -> 2/3.
    let mut m = Recall::new();
    m.update_state(&t(&[0., 1., 1., 1.], &[4]), &t(&[1., 0., 1., 1.], &[4]))
        .unwrap();
    close(m.result(), 2.0 / 3.0, 1e-7);
    // AUC(num_thresholds=3): thresholds [-1e-7, 0.5, 1 + 1e-7],
    // tp = [2, 1, 0], fp = [2, 0, 0], fn = [0, 1, 2], tn = [0, 2, 2] -> 0.75.
    let mut m = Auc::new().with_num_thresholds(3).unwrap();
    m.update_state(&t(&[0., 0., 1., 1.], &[4]), &t(&[0., 0.5, 0.3, 0.9], &[4]))
        .unwrap();
    let (tp, fp, tn, fn_) = m.counts();
    assert_eq!(
        (tp, fp, tn, fn_),
        (
            &[2., 1., 0.][..],
            &[2., 0., 0.][..],
            &[0., 2., 2.][..],
            &[0., 1., 2.][..]
        )
    );
    assert_eq!(m.result(), 0.75);
}

#[test]
fn binary_accuracy_compares_labels_exactly_with_the_thresholded_prediction() {
    // Keras: equal(y_true, cast(y_pred > threshold)); 0.5 itself is not above.
    let mut m = mean(MeanFn::BinaryAccuracy { threshold: 0.5 });
    m.update_state(
        &t(&[1., 0., 0.9, 1.], &[4]),
        &t(&[0.5, 0.5, 0.9, 0.51], &[4]),
    )
    .unwrap();
    assert_eq!(m.result(), 0.5);
    // [batch, k]: each sample contributes the mean over its k elements.
    let mut m = mean(MeanFn::BinaryAccuracy { threshold: 0.7 });
    m.update_state(
        &t(&[1., 1., 0., 0., 0., 1.], &[2, 3]),
        &t(&[0.8, 0.6, 0.1, 0.9, 0.2, 0.75], &[2, 3]),
    )
    .unwrap();
    close(m.result(), (2.0 / 3.0 + 2.0 / 3.0) / 2.0, 1e-7);
}

#[test]
fn argmax_ties_and_in_top_k_ties() {
    // argmax takes the first maximum.
    let mut m = mean(MeanFn::SparseCategoricalAccuracy);
    m.update_state(&t(&[0., 1.], &[2]), &t(&[0.5, 0.5, 0.5, 0.5], &[2, 2]))
        .unwrap();
    assert_eq!(m.result(), 0.5);
    // in_top_k: classes tied at the boundary are all in; non-finite targets never.
    let row = [0.1, 0.6, 0.9, 0.9, 0.5];
    for (label, k, hit) in [
        (3., 1, true),
        (2., 1, true),
        (1., 2, false),
        (1., 3, true),
        (0., 4, false),
        (0., 5, true),
        (4., 0, false),
    ] {
        let mut m = mean(MeanFn::SparseTopKCategoricalAccuracy { k });
        m.update_state(&t(&[label], &[1]), &t(&row, &[1, 5]))
            .unwrap();
        assert_eq!(
            m.result(),
            if hit { 1.0 } else { 0.0 },
            "label {label}, k {k}"
        );
    }
    let mut m = mean(MeanFn::SparseTopKCategoricalAccuracy { k: 5 });
    m.update_state(&t(&[0.], &[1]), &t(&[f32::NAN, 0.1], &[1, 2]))
        .unwrap();
    assert_eq!(m.result(), 0.0);
    // Default k = 5 of 10 classes: the label ranks 5th, then 6th.
    let p: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
    let mut m = metrics::from_name("sparse_top_k_categorical_accuracy", None).unwrap();
    m.update_state(&t(&[5., 4.], &[2]), &t(&[p.clone(), p].concat(), &[2, 10]))
        .unwrap();
    assert_eq!(m.result(), 0.5);
}

#[test]
fn mean_metrics_weight_batches_by_their_size() {
    // 32 samples with 16 hits, then 16 with 16: 32/48, not (0.5 + 1)/2.
    let mut m = metrics::from_name("sparse_categorical_accuracy", None).unwrap();
    let p32: Vec<f32> = (0..32).flat_map(|_| [0.9, 0.1]).collect();
    let y32: Vec<f32> = (0..32).map(|i| (i % 2) as f32).collect();
    m.update_state(&t(&y32, &[32]), &t(&p32, &[32, 2])).unwrap();
    assert_eq!(m.result(), 0.5);
    m.update_state(&t(&[0.; 16], &[16]), &t(&p32[..32], &[16, 2]))
        .unwrap();
    assert_eq!(m.result(), 32.0 / 48.0);
    m.reset_state();
    assert_eq!(m.result(), 0.0);
    m.update_state(&t(&[0.; 16], &[16]), &t(&p32[..32], &[16, 2]))
        .unwrap();
    assert_eq!(m.result(), 1.0);

    // mse over [3, 1] then [1, 1]: per-sample errors 1, 0, 4 then 9.
    let mut m = metrics::from_name("mse", None).unwrap();
    assert_eq!(m.name(), "mse");
    m.update_state(&t(&[0., 0., 0.], &[3, 1]), &t(&[1., 0., 2.], &[3, 1]))
        .unwrap();
    close(m.result(), 5.0 / 3.0, 1e-6);
    m.update_state(&t(&[3.], &[1]), &t(&[0.], &[1, 1])).unwrap();
    close(m.result(), 14.0 / 4.0, 1e-6);
    // [batch, k] values are averaged per sample first.
    let mut m = mean(MeanFn::Loss(Loss::MeanAbsoluteError));
    m.update_state(
        &t(&[0., 0., 0., 0.], &[2, 2]),
        &t(&[1., 3., -2., 0.], &[2, 2]),
    )
    .unwrap();
    m.update_state(&t(&[0., 0.], &[1, 2]), &t(&[4., 4.], &[1, 2]))
        .unwrap();
    close(m.result(), (2.0 + 1.0 + 4.0) / 3.0, 1e-6);
    assert_eq!((m.total(), m.count()), (7.0, 3.0));
}

#[test]
fn loss_metrics_match_the_losses() {
    let y = t(&[0., 1., 0., 1., 0., 0.], &[2, 3]);
    let p = t(&[0.2, 0.7, 0.1, 0.5, 0.25, 0.25], &[2, 3]);
    for (name, want) in [
        (
            "categorical_crossentropy",
            (-(0.7f64.ln()) - 0.5f64.ln()) / 2.0,
        ),
        (
            "mae",
            ((0.2 + 0.3 + 0.1) / 3.0 + (0.5 + 0.25 + 0.25) / 3.0) / 2.0,
        ),
        (
            "categorical_hinge",
            ((0.2 - 0.7 + 1.0) + (0.25 - 0.5 + 1.0)) / 2.0,
        ),
        (
            "mape",
            (100.0 * (0.2 / 1e-7 + 0.3 + 0.1 / 1e-7) / 3.0
                + 100.0 * (0.5 + 0.25 / 1e-7 + 0.25 / 1e-7) / 3.0)
                / 2.0,
        ),
    ] {
        let mut m = metrics::from_name(name, None).unwrap();
        m.update_state(&y, &p).unwrap();
        close(m.result(), want, 1e-6 * want.abs().max(1.0));
    }
    let mut m = metrics::from_name("sparse_categorical_crossentropy", None).unwrap();
    m.update_state(&t(&[1., 0.], &[2]), &p).unwrap();
    close(m.result(), (-(0.7f64.ln()) - 0.5f64.ln()) / 2.0, 1e-6);
    let mut m = metrics::from_name("hinge", None).unwrap();
    m.update_state(&t(&[1., 0.], &[2, 1]), &t(&[0.5, 0.5], &[2, 1]))
        .unwrap();
    close(m.result(), (0.5 + 1.5) / 2.0, 1e-7);
}

#[test]
fn precision_recall_accumulate_counts() {
    let mut p = metrics::from_name("precision", None).unwrap();
    let mut r = metrics::from_name("recall", None).unwrap();
    assert_eq!((p.result(), r.result()), (0.0, 0.0));
    // Batch 1: tp 1 (0.9), fp 1 (0.6), fn 1 (0.5 is not above 0.5).
    let (y1, p1) = (
        t(&[1., 0., 1., 0.], &[4, 1]),
        t(&[0.9, 0.6, 0.5, 0.1], &[4, 1]),
    );
    // Batch 2 of another size: tp 2, fp 0, fn 0; labels other than 0 are positive.
    let (y2, p2) = (t(&[2., 1.], &[2]), t(&[0.7, 0.51], &[2]));
    for m in [&mut p, &mut r] {
        m.update_state(&y1, &p1).unwrap();
        m.update_state(&y2, &p2).unwrap();
    }
    close(p.result(), 3.0 / 4.0, 1e-7);
    close(r.result(), 3.0 / 4.0, 1e-7);
    let mut q = Precision::new().with_threshold(0.95).unwrap();
    q.update_state(&y1, &p1).unwrap();
    assert_eq!(q.counts(), (0.0, 0.0));
    assert_eq!(q.result(), 0.0);
    assert!(Precision::new().with_threshold(1.5).is_err());
    assert!(Recall::new().with_threshold(-0.1).is_err());
    p.reset_state();
    assert_eq!(p.result(), 0.0);
    assert!(
        p.update_state(&t(&[1., 0.], &[2]), &t(&[0.5, 0.5, 0.5], &[3]))
            .is_err()
    );
}

#[test]
fn auc_over_two_hundred_thresholds() {
    let mut m = metrics::from_name("auc", None).unwrap();
    assert_eq!(m.name(), "auc");
    // Pairs (positive, negative) ranked correctly: (0.35, 0.1), (0.8, 0.1),
    // (0.8, 0.4); wrongly: (0.35, 0.4). The buckets separate them: 3/4.
    m.update_state(&t(&[0., 0.], &[2]), &t(&[0.1, 0.4], &[2]))
        .unwrap();
    m.update_state(&t(&[1., 1.], &[2, 1]), &t(&[0.35, 0.8], &[2, 1]))
        .unwrap();
    close(m.result(), 0.75, 1e-6);
    m.reset_state();
    assert_eq!(m.result(), 0.0);
    // Perfect separation, predictions outside [0, 1] clipped.
    m.update_state(
        &t(&[0., 0., 1., 1.], &[4]),
        &t(&[-0.5, 0.2, 0.7, 1.5], &[4]),
    )
    .unwrap();
    close(m.result(), 1.0, 1e-6);
    let auc = Auc::new();
    let th = auc.thresholds();
    assert_eq!(th.len(), 200);
    assert_eq!((th[0], th[199]), (-1e-7, 1.0 + 1e-7));
    close(th[1], 1.0 / 199.0, 1e-9);
    close(th[198], 198.0 / 199.0, 1e-7);
    assert!(Auc::new().with_num_thresholds(1).is_err());
    // from_logits applies the sigmoid first: same ranking, same AUC.
    let mut m = Auc::new().with_from_logits(true);
    m.update_state(&t(&[0., 1., 0., 1.], &[4]), &t(&[-2., 0.5, 0.1, 3.], &[4]))
        .unwrap();
    close(m.result(), 1.0, 1e-6);
}

#[test]
fn accuracy_resolves_like_keras_compile() {
    // Hints from the loss, before any batch.
    for (loss, want) in [
        (
            "sparse_categorical_crossentropy",
            MeanFn::SparseCategoricalAccuracy,
        ),
        ("categorical_crossentropy", MeanFn::CategoricalAccuracy),
        (
            "binary_crossentropy",
            MeanFn::BinaryAccuracy { threshold: 0.5 },
        ),
    ] {
        let a = AutoAccuracy::new("accuracy", Some(Loss::from_name(loss).unwrap()));
        assert_eq!(a.function(), want, "{loss}");
        assert!(!a.is_resolved());
    }
    // Keras 3's shape rule.
    assert_eq!(
        AutoAccuracy::resolve(&[8], &[8, 10]),
        MeanFn::SparseCategoricalAccuracy
    );
    assert_eq!(
        AutoAccuracy::resolve(&[8, 1], &[8, 10]),
        MeanFn::SparseCategoricalAccuracy
    );
    assert_eq!(
        AutoAccuracy::resolve(&[8, 10], &[8, 10]),
        MeanFn::CategoricalAccuracy
    );
    assert_eq!(
        AutoAccuracy::resolve(&[8], &[8, 1]),
        MeanFn::BinaryAccuracy { threshold: 0.5 }
    );
    assert_eq!(
        AutoAccuracy::resolve(&[8, 1], &[8, 1]),
        MeanFn::BinaryAccuracy { threshold: 0.5 }
    );
    // The name stays what was asked for, in any case.
    for name in ["accuracy", "acc", "Accuracy", "ACC"] {
        let mut m = metrics::from_name(name, Some("sparse_categorical_crossentropy")).unwrap();
        assert_eq!(m.name(), name);
        m.update_state(&t(&[1., 0.], &[2]), &t(&[0.2, 0.8, 0.4, 0.6], &[2, 2]))
            .unwrap();
        assert_eq!(m.result(), 0.5);
    }
    // No hint: the first batch decides; here binary.
    let mut m = metrics::from_name("accuracy", None).unwrap();
    m.update_state(&t(&[1., 0., 1.], &[3]), &t(&[0.7, 0.2, 0.4], &[3, 1]))
        .unwrap();
    close(m.result(), 2.0 / 3.0, 1e-7);
    // A categorical hint meeting class-index labels: the shapes win, as in Keras 3.
    let mut a = AutoAccuracy::new(
        "acc",
        Some(Loss::CategoricalCrossentropy { from_logits: true }),
    );
    a.update_state(&t(&[2.], &[1]), &t(&[0.1, 0.2, 0.7], &[1, 3]))
        .unwrap();
    assert_eq!(a.function(), MeanFn::SparseCategoricalAccuracy);
    assert!(a.is_resolved());
    assert_eq!(a.result(), 1.0);
    // The choice survives reset_state.
    a.reset_state();
    assert_eq!(a.result(), 0.0);
    assert_eq!(a.function(), MeanFn::SparseCategoricalAccuracy);
    // An unknown loss is no hint, not an error.
    assert!(metrics::from_name("accuracy", Some("my_custom_loss")).is_ok());
}

#[test]
fn names_and_errors() {
    for &name in metrics::NAMES {
        let m = metrics::from_name(name, None).unwrap();
        assert_eq!(m.name(), name);
        assert_eq!(m.result(), 0.0);
    }
    let err = metrics::from_name("f1", None).unwrap_err().to_string();
    assert!(
        err.contains("\"f1\"")
            && err.contains("sparse_categorical_accuracy")
            && err.contains("auc"),
        "{err}"
    );
    assert!(metrics::from_name("Mse", None).is_err());
    assert_eq!(
        mean(MeanFn::Loss(Loss::MeanSquaredError)).name(),
        "mean_squared_error"
    );
    assert_eq!(
        mean(MeanFn::TopKCategoricalAccuracy { k: 5 }).name(),
        "top_k_categorical_accuracy"
    );
    assert_eq!(mean(MeanFn::Accuracy).with_name("exact").name(), "exact");
}

#[test]
fn shape_and_label_errors_leave_the_state_alone() {
    let mut m = mean(MeanFn::SparseCategoricalAccuracy);
    m.update_state(&t(&[1.], &[1]), &t(&[0.3, 0.7], &[1, 2]))
        .unwrap();
    for (y, p, needle) in [
        (
            t(&[2.], &[1]),
            t(&[0.3, 0.7], &[1, 2]),
            "label 2 at position 0",
        ),
        (
            t(&[0.5], &[1]),
            t(&[0.3, 0.7], &[1, 2]),
            "label 0.5 at position 0",
        ),
        (t(&[1., 0.], &[2]), t(&[0.3, 0.7], &[1, 2]), "[2]"),
    ] {
        let err = m.update_state(&y, &p).unwrap_err().to_string();
        assert!(
            err.contains(needle) && err.contains("sparse_categorical_accuracy"),
            "{err}"
        );
    }
    assert_eq!((m.total(), m.count()), (1.0, 1.0));
    let mut c = mean(MeanFn::CategoricalAccuracy);
    let err = c
        .update_state(&t(&[0., 1.], &[2]), &t(&[0.3, 0.7], &[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2]") && err.contains("[1, 2]"), "{err}");
    let mut b = mean(MeanFn::BinaryAccuracy { threshold: 0.5 });
    assert!(
        b.update_state(&t(&[0., 1., 1.], &[3]), &t(&[0.3, 0.7], &[2]))
            .is_err()
    );
    let mut auto = AutoAccuracy::new("accuracy", None);
    assert!(
        auto.update_state(&t(&[5.], &[1]), &t(&[0.3, 0.7], &[1, 2]))
            .is_err()
    );
    assert!(!auto.is_resolved());
}
