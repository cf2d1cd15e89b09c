//! Chapter 13 of the lecture: Keras-style `Sequential` models on Iris (13.4)
//! and MNIST (13.5). Every number printed here is computed by hebb.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hebb_data::{DataDir, IdxArray, load_iris};
use hebb_layers::Activation;
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, History, Sequential};
use hebb_optim::Sgd;
use hebb_tensor::Tensor;

use crate::ReproduceArgs;
use crate::plot::{self, BLUE, Image, Panel, RED, Series};

const SECTIONS: [&str; 2] = ["13.4", "13.5"];

/// Runs the requested sections of chapter 13 in lecture order.
pub(crate) fn run(args: &ReproduceArgs) -> Result<()> {
    if let Some(s) = &args.section
        && !SECTIONS.contains(&s.as_str())
    {
        bail!(
            "chapter 13 has no section {s:?}; sections: {}",
            SECTIONS.join(", ")
        );
    }
    let out = args.prepare_out_dir()?;
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    if args.wants("13.4") {
        section_13_4(args, &data_dir)?;
    }
    if args.wants("13.5") {
        section_13_5(args, &data_dir, &out)?;
    }
    Ok(())
}

fn heading(title: &str) {
    println!("\n== {title} ==");
}

/// Features `[n, 4]` and labels `[n]` (as f32 class indices) of an Iris split.
pub(crate) fn iris_tensors(split: &hebb_data::IrisSplit) -> Result<(Tensor, Tensor)> {
    let labels: Vec<f32> = split.labels.iter().map(|&l| l as f32).collect();
    Ok((
        split.features_tensor()?,
        Tensor::from_vec(labels, &[split.len()])?,
    ))
}

fn section_13_4(args: &ReproduceArgs, data_dir: &DataDir) -> Result<()> {
    heading("13.4 The Sequential model: a 4-8-4-3 network on Iris");
    let (train, test) = load_iris(data_dir)
        .with_context(|| format!("loading Iris from {}", data_dir.root().display()))?;
    let (train, test) = (train.centred(), test.centred());
    let (x_train, y_train) = iris_tensors(&train)?;
    let (x_test, y_test) = iris_tensors(&test)?;

    let mut model = Sequential::new().with_seed(u64::from(args.seed));
    model.add(Dense::new(8).activation(Activation::Relu).input_shape(&[4]))?;
    model.add(Dense::new(4).activation(Activation::Relu))?;
    model.add(Dense::new(3).activation(Activation::Softmax))?;
    println!("{}", model.summary()?);
    let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(Sgd::new(0.1));
    model.compile(
        sgd,
        "sparse_categorical_crossentropy",
        vec!["sparse_categorical_accuracy"],
    )?;
    println!("metrics_names: {:?}", model.metrics_names());
    let epochs = args.epochs.unwrap_or(100);
    let batch_size = args.batch_size.unwrap_or(32);
    println!(
        "fit: batch_size={batch_size}, epochs={epochs}, SGD(learning_rate=0.1); the log shows every 20th epoch"
    );
    let history = model.fit(
        &x_train,
        &y_train,
        FitOptions {
            batch_size,
            epochs,
            verbose: 0,
            seed: u64::from(args.seed),
            ..Default::default()
        },
    )?;
    let (loss, acc) = (
        history.get("loss").unwrap_or(&[]),
        history.get("sparse_categorical_accuracy").unwrap_or(&[]),
    );
    for (e, (l, a)) in loss.iter().zip(acc).enumerate() {
        if e == 0 || (e + 1) % 20 == 0 {
            println!(
                "Epoch {}/{epochs} - loss: {l:.4} - sparse_categorical_accuracy: {a:.4}",
                e + 1
            );
        }
    }
    print!("evaluate on the test set: ");
    let values = model.evaluate(&x_test, &y_test, 32, 2)?;
    println!("{values:?}");
    Ok(())
}

/// Images `[n, 28, 28]` scaled to [0, 1] and labels `[n]`, as the lecture prepares them.
fn mnist_tensors(images: &IdxArray, labels: &IdxArray) -> Result<(Tensor, Tensor)> {
    Ok((images.to_f32_divided(255.0)?, labels.to_f32_scaled(1.0)?))
}

/// The lecture's MNIST model: Flatten(28, 28) - Dense(128, relu) - Dense(10, softmax).
pub(crate) fn mnist_model(seed: u64) -> Result<Sequential> {
    let mut model = Sequential::new().with_seed(seed);
    model.add(Flatten::new().input_shape(&[28, 28]))?;
    model.add(Dense::new(128).activation(Activation::Relu))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile(
        "adam",
        "sparse_categorical_crossentropy",
        vec!["sparse_categorical_accuracy"],
    )?;
    Ok(model)
}

/// The data set chosen by `--dataset`.
pub(crate) fn load_mnist_like(
    args: &ReproduceArgs,
    data_dir: &DataDir,
) -> Result<hebb_data::mnist::Mnist> {
    let data = match args.dataset.as_str() {
        "mnist" => hebb_data::mnist::load_data(data_dir),
        "fashion-mnist" => hebb_data::fashion_mnist::load_data(data_dir),
        other => bail!("unknown dataset {other:?}; known: mnist, fashion-mnist"),
    };
    data.with_context(|| {
        format!(
            "loading {} from {}",
            args.dataset,
            data_dir.root().display()
        )
    })
}

fn section_13_5(args: &ReproduceArgs, data_dir: &DataDir, out: &Path) -> Result<()> {
    heading(&format!(
        "13.5 Handwritten digits: {} with a Sequential model",
        args.dataset
    ));
    let data = load_mnist_like(args, data_dir)?;
    println!(
        "x_train {:?}, y_train {:?}, x_test {:?}, y_test {:?} (u8); X = x / 255",
        data.x_train.shape(),
        data.y_train.shape(),
        data.x_test.shape(),
        data.y_test.shape()
    );
    let (mut x_train, mut y_train) = mnist_tensors(&data.x_train, &data.y_train)?;
    let (x_test, y_test) = mnist_tensors(&data.x_test, &data.y_test)?;
    if let Some(n) = args.subset {
        let rows: Vec<usize> = (0..n.min(x_train.shape()[0])).collect();
        println!(
            "--subset {n}: training on the first {} images only",
            rows.len()
        );
        x_train = x_train.gather_rows(&rows)?;
        y_train = y_train.gather_rows(&rows)?;
    }

    let mut model = mnist_model(u64::from(args.seed))?;
    println!("{}", model.summary()?);
    let epochs = args.epochs.unwrap_or(5);
    let batch_size = args.batch_size.unwrap_or(64);
    let history = model.fit(
        &x_train,
        &y_train,
        FitOptions {
            batch_size,
            epochs,
            validation_split: 0.2,
            verbose: args.verbose,
            seed: u64::from(args.seed),
            ..Default::default()
        },
    )?;
    let values = model.evaluate(&x_test, &y_test, 32, 2)?;
    println!("evaluate: {values:?}");
    if let Some(&acc) = values.get(1) {
        println!("test accuracy {acc:.4} (the lecture printed 0.9730 for MNIST)");
    }

    let first = x_test.gather_rows(&[0, 1, 2, 3])?;
    let probs = model.predict(&first, 32)?;
    let predicted: Vec<usize> = probs
        .argmax(1)?
        .to_vec()
        .iter()
        .map(|&p| p as usize)
        .collect();
    println!("model.predict(X_test[0:4]):");
    for row in probs.to_vec().chunks(10) {
        let cells: Vec<String> = row.iter().map(|p| format!("{p:.8e}")).collect();
        println!("  [{}]", cells.join(", "));
    }
    let labels: Vec<u8> = data.y_test.data()[..4].to_vec();
    println!("np.argmax(..., axis=1) = {predicted:?}; y_test[0:4] = {labels:?}");

    let titles: Vec<String> = labels
        .iter()
        .zip(&predicted)
        .map(|(y, p)| format!("y={y}\ny_pred={p}"))
        .collect();
    let pixels = data.x_test.data();
    let images: Vec<Image<'_>> = (0..4)
        .map(|i| Image {
            title: &titles[i],
            pixels: &pixels[i * 784..(i + 1) * 784],
            rows: 28,
            cols: 28,
        })
        .collect();
    let digits = out.join(format!("13.5-{}-first-four.png", args.dataset));
    plot::images(&digits, &images)?;
    println!("figure: {}", digits.display());
    let curves = out.join(format!("13.5-{}-history.png", args.dataset));
    plot_history(
        &curves,
        &format!("13.5 {} training history", args.dataset),
        &history,
    )?;
    println!("figure: {}", curves.display());
    Ok(())
}

/// Loss and accuracy per epoch, training (blue) and validation (red).
fn plot_history(path: &Path, title: &str, history: &History) -> Result<()> {
    let series = |key: &str| {
        history
            .get(key)
            .unwrap_or(&[])
            .iter()
            .map(|&v| f64::from(v))
            .collect::<Vec<_>>()
    };
    let (loss, val_loss) = (series("loss"), series("val_loss"));
    let (acc, val_acc) = (
        series("sparse_categorical_accuracy"),
        series("val_sparse_categorical_accuracy"),
    );
    let panel = |y_label, train, val| Panel {
        x_label: "Epoch",
        y_label,
        series: vec![
            Series {
                label: "train",
                color: BLUE,
                values: train,
            },
            Series {
                label: "validation",
                color: RED,
                values: val,
            },
        ],
    };
    plot::panels(
        path,
        Some(title),
        &[
            panel("Loss", &loss, &val_loss),
            panel("Accuracy", &acc, &val_acc),
        ],
    )
}
