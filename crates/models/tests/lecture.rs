//! The lecture's printed tables (12.2 and 12.6), reproduced on the real Iris
//! data. The data directory is `cargo xtask`'s ([`DataDir::resolve`]:
//! `HEBB_DATA_DIR`, else `../shared/datasets` beside the checkout, else the
//! download cache, downloading if needed).

use hebb_data::{DataDir, IrisSplit, load_iris};
use hebb_models::lowlevel::{Dataset, Network};

fn iris() -> Dataset {
    let (train, test): (IrisSplit, IrisSplit) =
        load_iris(&DataDir::resolve(None)).expect("Iris data (set HEBB_DATA_DIR)");
    let (train, test) = (train.centred(), test.centred());
    Dataset {
        x_train: train.features_tensor().unwrap(),
        y_train: train.labels.clone(),
        x_test: test.features_tensor().unwrap(),
        y_test: test.labels.clone(),
        classes: 3,
    }
}

/// Runs the lecture's loop and returns the lines it prints (every 10th iteration).
fn lecture_lines(sizes: &[usize]) -> Vec<String> {
    let mut net = Network::lecture_init(612, sizes).unwrap();
    let logs = net.train(&iris(), 0.5, 50, |_| {}).unwrap();
    logs.iter()
        .filter(|l| l.iteration % 10 == 0)
        .map(|l| l.lecture_line())
        .collect()
}

#[test]
fn softmax_regression_12_2_matches_the_lecture() {
    let expected = [
        "i: 0, TrainAcc:0.333333, TrainLoss: 2.066978 ,TestAcc:0.266667, TestLoss: 1.880856",
        "i: 10, TrainAcc:0.875000, TrainLoss: 0.339410 ,TestAcc:0.866667, TestLoss: 0.461705",
        "i: 20, TrainAcc:0.875000, TrainLoss: 0.279647 ,TestAcc:0.866667, TestLoss: 0.368414",
        "i: 30, TrainAcc:0.916667, TrainLoss: 0.245924 ,TestAcc:0.933333, TestLoss: 0.314814",
        "i: 40, TrainAcc:0.933333, TrainLoss: 0.222922 ,TestAcc:0.933333, TestLoss: 0.278643",
        "i: 50, TrainAcc:0.933333, TrainLoss: 0.205636 ,TestAcc:0.966667, TestLoss: 0.251937",
    ];
    assert_eq!(lecture_lines(&[4, 3]), expected);
}

#[test]
fn multilayer_network_12_6_matches_the_lecture() {
    let expected = [
        "i: 0, TrainAcc:0.433333, TrainLoss: 2.205641 ,TestAcc:0.400000, TestLoss: 1.721138",
        "i: 10, TrainAcc:0.941667, TrainLoss: 0.205314 ,TestAcc:0.966667, TestLoss: 0.249661",
        "i: 20, TrainAcc:0.950000, TrainLoss: 0.149540 ,TestAcc:1.000000, TestLoss: 0.167103",
        "i: 30, TrainAcc:0.958333, TrainLoss: 0.122346 ,TestAcc:1.000000, TestLoss: 0.124693",
        "i: 40, TrainAcc:0.958333, TrainLoss: 0.105099 ,TestAcc:1.000000, TestLoss: 0.099869",
        "i: 50, TrainAcc:0.958333, TrainLoss: 0.092934 ,TestAcc:1.000000, TestLoss: 0.084885",
    ];
    assert_eq!(lecture_lines(&[4, 16, 3]), expected);
}

/// TensorFlow 2.21 on this machine, same program with seed 0 and 8 hidden
/// units: the printed figures agree to one unit in the sixth decimal.
#[test]
fn other_settings_track_tensorflow() {
    let mut net = Network::lecture_init(0, &[4, 8, 3]).unwrap();
    let logs = net.train(&iris(), 0.1, 30, |_| {}).unwrap();
    let last = logs[30];
    // tf: i: 30, TrainAcc:0.925000, TrainLoss: 0.293146 ,TestAcc:0.933333, TestLoss: 0.356356
    assert_eq!((last.train_acc, last.test_acc), (0.925, 14.0 / 15.0));
    assert!(
        (last.train_loss - 0.293_146).abs() <= 1.5e-6,
        "{}",
        last.lecture_line()
    );
    assert!(
        (last.test_loss - 0.356_356).abs() <= 1.5e-6,
        "{}",
        last.lecture_line()
    );
}
