//! Lecture 13.1's one-variable linear regression on the real Iris data (all
//! 150 flowers: petal length -> petal width): batch gradient descent through
//! the tape reaches the closed-form least-squares line. The data directory
//! is `cargo xtask`'s ([`DataDir::resolve`]: `HEBB_DATA_DIR`, else
//! `../shared/datasets` beside the checkout, else the download cache,
//! downloading if needed).

use hebb_data::{DataDir, MiniBatches, load_iris};
use hebb_models::regression::{LinearRegression, RegressionData};
use hebb_optim::Sgd;

fn petals() -> RegressionData {
    let (train, test) = load_iris(&DataDir::resolve(None)).expect("Iris data (set HEBB_DATA_DIR)");
    RegressionData::iris_petals(&[&train, &test]).unwrap()
}

#[test]
fn closed_form_is_numpy_polyfit() {
    let data = petals();
    assert_eq!(data.len(), 150);
    let ls = data.least_squares().unwrap();
    // np.polyfit(petal_length, petal_width, 1) on the two CSV files (float64):
    // [0.41641913, -0.36651405]; the loss ½Σr² = 3.171746. (R's copy of Iris,
    // with the UCI errata fixed, gives 0.415755 and -0.363076.)
    assert!((ls.w - 0.416_419_13).abs() < 1e-7, "{ls:?}");
    assert!((ls.b + 0.366_514_05).abs() < 1e-7, "{ls:?}");
    assert!((ls.loss - 3.171_746).abs() < 1e-5, "{ls:?}");
}

#[test]
fn bgd_through_the_tape_reaches_the_closed_form_within_1e_4() {
    let data = petals();
    let exact = data.least_squares().unwrap();
    let (_, l_max) = data.hessian_eigenvalues();
    // η = 1/λ_max of the summed loss: stable (the limit is 2/λ_max).
    let eta = (1.0 / l_max) as f32;
    let mut model = LinearRegression::new(0.0, 0.0);
    let mut bgd = MiniBatches::full(data.len());
    let trace = model
        .fit(&data, &mut bgd, &mut Sgd::new(eta), 3000, false)
        .unwrap();
    assert!(!trace.diverged);
    let (dw, db) = (model.w() - exact.w, model.b() - exact.b);
    assert!(
        dw.abs() < 1e-4 && db.abs() < 1e-4,
        "w {} b {} vs {exact:?}",
        model.w(),
        model.b()
    );
    let last = trace.epochs.last().unwrap();
    assert!(
        last.loss - exact.loss < 1e-6 * exact.loss.max(1.0),
        "{last:?} vs {exact:?}"
    );
}

#[test]
fn sgd_and_mbgd_get_close_but_a_fixed_rate_keeps_sgd_noisy() {
    let data = petals();
    let exact = data.least_squares().unwrap();
    let fit = |t: usize, eta0: f32, epochs: usize| {
        let mut model = LinearRegression::new(0.0, 0.0);
        let mut batches = MiniBatches::new(data.len(), t).unwrap().with_shuffle(612);
        // η = η₀ / t: the same step per sample's gradient for every batch size.
        let mut sgd = Sgd::new(eta0 / t as f32);
        model
            .fit(&data, &mut batches, &mut sgd, epochs, false)
            .unwrap()
    };
    // With η = η₀/t every step makes about the same progress, so MBGD with
    // 5 steps an epoch needs more epochs than SGD with 150.
    let sgd = fit(1, 0.02, 50);
    let mbgd = fit(32, 0.02, 300);
    let excess = |trace: &hebb_models::regression::Trace| {
        trace.epochs.last().unwrap().loss / exact.loss - 1.0
    };
    // Both get within 10% of the minimum...
    assert!(excess(&sgd) < 0.1, "SGD {}", excess(&sgd));
    assert!(excess(&mbgd) < 0.1, "MBGD {}", excess(&mbgd));
    // ...but SGD's loss, epoch to epoch, goes up as well as down.
    let ups = sgd.epochs[10..]
        .windows(2)
        .filter(|p| p[1].loss > p[0].loss)
        .count();
    assert!(
        ups > 0,
        "SGD with a fixed rate never went up after epoch 10"
    );
}

/// Batches larger than the data with the short batch dropped leave nothing
/// to train on: an error, not epochs that never move `(w, b)`.
#[test]
fn no_batches_is_an_error() {
    let data = petals();
    let mut model = LinearRegression::new(0.0, 0.0);
    let mut batches = MiniBatches::new(data.len(), 256)
        .unwrap()
        .with_drop_last(true);
    let err = model
        .fit(&data, &mut batches, &mut Sgd::new(0.01), 5, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no batch to train on"), "{err}");
}
