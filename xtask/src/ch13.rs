//! Chapter 13 of the lecture: Keras-style `Sequential` models on Iris (13.4)
//! and MNIST (13.5), and saving and loading them (13.6). Every number
//! printed here is computed by hebb (and, in 13.6, by TensorFlow when it is
//! installed).

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

const SECTIONS: [&str; 3] = ["13.4", "13.5", "13.6"];

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
    // A GPU asked for and not there fails before any output.
    args.device()?;
    let out = args.prepare_out_dir()?;
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    if args.wants("13.4") {
        section_13_4(args, &data_dir)?;
    }
    let trained = if args.wants("13.5") {
        Some(section_13_5(args, &data_dir, &out)?)
    } else {
        None
    };
    if args.wants("13.6") {
        section_13_6(args, &data_dir, &out, trained)?;
    }
    Ok(())
}

pub(crate) fn heading(title: &str) {
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
    model.to_device(args.device()?)?;
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
pub(crate) fn mnist_tensors(images: &IdxArray, labels: &IdxArray) -> Result<(Tensor, Tensor)> {
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

fn section_13_5(args: &ReproduceArgs, data_dir: &DataDir, out: &Path) -> Result<Sequential> {
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
    let device = args.device()?;
    crate::data_parallel(&mut model, device)?;
    model.to_device(device)?;
    if device.is_cuda() {
        println!("(training on {device})");
    }
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
    Ok(model)
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
    plot::panels(
        path,
        Some(title),
        &history_panels(&loss, &val_loss, &acc, &val_acc),
    )
}

/// The two panels of a fit's history: loss and accuracy per epoch, training
/// (blue) and validation (red), epochs numbered 1..N as Keras' log numbers
/// them (`Epoch 1/5`).
pub(crate) fn history_panels<'a>(
    loss: &'a [f64],
    val_loss: &'a [f64],
    acc: &'a [f64],
    val_acc: &'a [f64],
) -> [Panel<'a>; 2] {
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
        first_x: 1,
    };
    [
        panel("Loss", loss, val_loss),
        panel("Accuracy", acc, val_acc),
    ]
}

/// Loss and accuracy of `model` on the test split.
fn loss_and_accuracy(model: &mut Sequential, x: &Tensor, y: &Tensor) -> Result<(f32, f32)> {
    let values = model.evaluate(x, y, 32, 0)?;
    match values[..] {
        [loss, accuracy, ..] => Ok((loss, accuracy)),
        _ => bail!("the model was compiled without an accuracy metric"),
    }
}

/// The 13.5 recipe (batch 64, `validation_split = 0.2`) for `epochs`, when 13.6 runs alone.
fn train_for_13_6(args: &ReproduceArgs, data: &hebb_data::mnist::Mnist) -> Result<Sequential> {
    let epochs = args.epochs.unwrap_or(1);
    let batch_size = args.batch_size.unwrap_or(64);
    let (x, y) = match args.subset {
        Some(n) => subset_tensors(data, n)?,
        None => mnist_tensors(&data.x_train, &data.y_train)?,
    };
    println!(
        "--section 13.6 alone: training the 13.5 model first ({epochs} epoch(s), batch {batch_size}, \
         validation_split 0.2, {} images, on the CPU; run all of ch13 to save the model 13.5 trained, 5 epochs)",
        x.shape()[0]
    );
    let mut model = mnist_model(u64::from(args.seed))?;
    model.fit(
        &x,
        &y,
        FitOptions {
            batch_size,
            epochs,
            validation_split: 0.2,
            verbose: 0,
            seed: u64::from(args.seed),
            ..Default::default()
        },
    )?;
    Ok(model)
}

/// Runs this program again as `ch13-child ...`: a new process, as the
/// lecture restarts its Jupyter kernel. Returns the lines it printed.
fn spawn_child(args: &ReproduceArgs, child: &[&str]) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("finding the xtask binary to start a new process")?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("ch13-child").args(child);
    cmd.args(["--seed", &args.seed.to_string(), "--dataset", &args.dataset]);
    if let Some(dir) = &args.data_dir {
        cmd.arg("--data-dir").arg(dir);
    }
    let output = cmd
        .output()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "the new process ({} ch13-child {}) failed:\n{stdout}{}",
            exe.display(),
            child.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout.lines().map(str::to_string).collect())
}

/// The `RESULT loss accuracy` line of a child's output, the other lines printed indented.
fn child_result(lines: &[String]) -> Result<(f32, f32)> {
    let mut result = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let mut it = rest.split_whitespace().map(str::parse::<f32>);
            if let (Some(Ok(l)), Some(Ok(a))) = (it.next(), it.next()) {
                result = Some((l, a));
            }
        } else {
            println!("  | {line}");
        }
    }
    result.context("the new process printed no RESULT line")
}

fn side_by_side(rows: &[(&str, (f32, f32))]) {
    println!("  {:<48} {:>10} {:>10}", "", "loss", "accuracy");
    for (what, (l, a)) in rows {
        println!("  {what:<48} {l:>10.6} {a:>10.4}");
    }
    let first = rows[0].1;
    let same = rows
        .iter()
        .all(|(_, (l, a))| l.to_bits() == first.0.to_bits() && a.to_bits() == first.1.to_bits());
    println!(
        "  {}",
        if same {
            "identical, bit for bit"
        } else {
            "NOT identical"
        }
    );
}

/// Section 13.6: saving and loading weights and whole models, the
/// overwrite refusal, resuming training in a new process, and Keras files
/// that TensorFlow loads.
fn section_13_6(
    args: &ReproduceArgs,
    data_dir: &DataDir,
    out: &Path,
    trained: Option<Sequential>,
) -> Result<()> {
    heading("13.6 Saving and loading models");
    let data = load_mnist_like(args, data_dir)?;
    let (x_test, y_test) = mnist_tensors(&data.x_test, &data.y_test)?;
    let mut model = match trained {
        Some(mut m) => {
            println!("the model trained in 13.5:");
            if m.device().is_cuda() {
                // The files' checks compare bits with processes on the host.
                println!(
                    "(13.6 runs on the CPU: the model trained on {} is copied to the host)",
                    m.device()
                );
                m.to_device(hebb_tensor::Device::Cpu)?;
            }
            m
        }
        None => train_for_13_6(args, &data)?,
    };
    let here = loss_and_accuracy(&mut model, &x_test, &y_test)?;
    let dataset = &args.dataset;

    println!("\n-- model.save_weights / model.load_weights (weights only, a new process) --");
    let weights = out.join(format!("13.6-{dataset}-weights.safetensors"));
    model.save_weights(&weights, true)?;
    println!(
        "model.save_weights({:?}) -> {} bytes",
        weights.display().to_string(),
        std::fs::metadata(&weights)?.len()
    );
    println!(
        "new process: build the same model (other initial weights), evaluate, load_weights, evaluate:"
    );
    let path = weights.display().to_string();
    let lines = spawn_child(args, &["load-weights", &path])?;
    let loaded = child_result(&lines)?;
    side_by_side(&[
        ("this process, trained", here),
        ("new process, after load_weights", loaded),
    ]);

    println!("\n-- model.save_weights(..., overwrite=False) on an existing file --");
    match model.save_weights(&weights, false) {
        Err(e) => println!("refused: {e}"),
        Ok(()) => bail!(
            "save_weights with overwrite = false replaced {}",
            weights.display()
        ),
    }
    println!(
        "(the lecture's Keras asks \"overwrite? [y/n]\"; hebb returns an AlreadyExists error)"
    );

    println!(
        "\n-- model.save / load_model (architecture, weights, compile configuration, optimizer state) --"
    );
    let whole = out.join(format!("13.6-{dataset}-model.safetensors"));
    model.save(&whole, true)?;
    println!(
        "model.save({:?}) -> {} bytes",
        whole.display().to_string(),
        std::fs::metadata(&whole)?.len()
    );
    let path = whole.display().to_string();
    let lines = spawn_child(args, &["load-model", &path])?;
    let reloaded = child_result(&lines)?;
    side_by_side(&[
        ("this process, trained", here),
        ("new process, load_model", reloaded),
    ]);

    resume_in_a_new_process(args, &data, out)?;

    println!("\n-- Keras files: model.save(\"....keras\") and model.save(\"....h5\") --");
    let keras = out.join(format!("13.6-{dataset}-model.keras"));
    let h5 = out.join(format!("13.6-{dataset}-model.h5"));
    let mut rows = vec![("hebb, trained".to_string(), here)];
    for path in [&keras, &h5] {
        model.save(path, true)?;
        let mut copy = hebb_models::sequential::load_model(path)?;
        let values = loss_and_accuracy(&mut copy, &x_test, &y_test)?;
        println!(
            "wrote {} ({} bytes)",
            path.display(),
            std::fs::metadata(path)?.len()
        );
        rows.push((format!("hebb, load_model({})", file_name(path)), values));
    }
    let shown: Vec<(&str, (f32, f32))> = rows.iter().map(|(w, v)| (w.as_str(), *v)).collect();
    side_by_side(&shown);
    tensorflow_check(args, data_dir, here, &[&keras, &h5])
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Fit 1 epoch, save, load in a new process and fit 1 more == fit 2 epochs straight.
fn resume_in_a_new_process(
    args: &ReproduceArgs,
    data: &hebb_data::mnist::Mnist,
    out: &Path,
) -> Result<()> {
    const SUBSET: usize = 12_000;
    println!(
        "\n-- resuming training: fit 1 epoch, save, load in a new process, fit epoch 2 \
         (initial_epoch=1), against 2 epochs straight (first {SUBSET} images, batch 64) --"
    );
    let (x, y) = subset_tensors(data, SUBSET)?;
    let seed = u64::from(args.seed);
    let options = |initial_epoch, epochs| FitOptions {
        batch_size: 64,
        epochs,
        initial_epoch,
        verbose: 0,
        seed,
        ..Default::default()
    };
    let mut straight = mnist_model(seed)?;
    straight.fit(&x, &y, options(0, 2))?;
    let mut half = mnist_model(seed)?;
    half.fit(&x, &y, options(0, 1))?;
    let saved = out.join(format!("13.6-{}-after-epoch-1.safetensors", args.dataset));
    let resumed = out.join(format!("13.6-{}-resumed.safetensors", args.dataset));
    half.save(&saved, true)?;
    let (s, r) = (saved.display().to_string(), resumed.display().to_string());
    let lines = spawn_child(
        args,
        &["resume", &s, "--out", &r, "--subset", &SUBSET.to_string()],
    )?;
    for line in &lines {
        println!("  | {line}");
    }
    let resumed = hebb_models::sequential::load_model(&resumed)?;
    let (a, b) = (straight.get_weights(), resumed.get_weights());
    let total: usize = a.iter().map(Tensor::len).sum();
    let differing: usize = a
        .iter()
        .zip(&b)
        .map(|(p, q)| {
            p.as_slice()
                .iter()
                .zip(q.as_slice())
                .filter(|(u, v)| u.to_bits() != v.to_bits())
                .count()
        })
        .sum();
    let steps = |m: &Sequential| m.optimizer().map_or(0, |o| o.iterations());
    println!(
        "2 epochs straight vs 1 + (save, new process, load) + 1: {differing} of {total} weights differ; \
         optimizer steps {} vs {}",
        steps(&straight),
        steps(&resumed)
    );
    if differing != 0 || steps(&straight) != steps(&resumed) {
        bail!("resumed training is not bit-identical to training straight through");
    }
    println!("bit-identical");
    Ok(())
}

/// The first `n` training images and labels.
fn subset_tensors(data: &hebb_data::mnist::Mnist, n: usize) -> Result<(Tensor, Tensor)> {
    let (x, y) = mnist_tensors(&data.x_train, &data.y_train)?;
    let rows: Vec<usize> = (0..n.min(x.shape()[0])).collect();
    Ok((x.gather_rows(&rows)?, y.gather_rows(&rows)?))
}

/// Has TensorFlow load the Keras files and evaluate them, when `python3 -c
/// "import tensorflow"` works; otherwise says so and skips.
fn tensorflow_check(
    args: &ReproduceArgs,
    data_dir: &DataDir,
    hebb: (f32, f32),
    models: &[&Path],
) -> Result<()> {
    let has_tf = std::process::Command::new("python3")
        .args(["-c", "import tensorflow"])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tf {
        println!(
            "TensorFlow is not available (python3 -c \"import tensorflow\" failed): skipping the \
             check that TensorFlow loads the .keras and .h5 files"
        );
        return Ok(());
    }
    let (subdir, also): (&str, Vec<&Path>) = match args.dataset.as_str() {
        "fashion-mnist" => (
            hebb_data::fashion_mnist::SUBDIR,
            vec![Path::new(hebb_data::fashion_mnist::DEBIAN_DIR)],
        ),
        _ => (hebb_data::mnist::SUBDIR, Vec::new()),
    };
    let [_, _, images, labels] = hebb_data::mnist::FILES;
    let images = data_dir.file_also_in(&format!("{subdir}/{images}"), &also)?;
    let labels = data_dir.file_also_in(&format!("{subdir}/{labels}"), &also)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/tf_check.py");
    println!("TensorFlow: python3 xtask/python/tf_check.py --images ... --labels ... MODEL...");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg("--images")
        .arg(&images)
        .arg("--labels")
        .arg(&labels)
        .args(models)
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .context("running python3")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "TensorFlow could not load or evaluate the files:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("  {:<48} {:>10} {:>10}", "", "loss", "accuracy");
    println!("  {:<48} {:>10.6} {:>10.4}", "hebb", hebb.0, hebb.1);
    let mut agree = true;
    for line in stdout.lines().filter_map(|l| l.strip_prefix("RESULT ")) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (Some(path), Some(loss), Some(acc)) = (parts.first(), parts.get(1), parts.get(2))
        else {
            continue;
        };
        let (loss, acc): (f32, f32) = (loss.parse()?, acc.parse()?);
        let rest = parts[3..].join(" ");
        println!(
            "  {:<48} {loss:>10.6} {acc:>10.4}   first four: {rest}",
            format!("TensorFlow, load_model({})", file_name(Path::new(path)))
        );
        agree &= (acc - hebb.1).abs() < 1e-4 && (loss - hebb.0).abs() < 1e-4;
    }
    println!(
        "  {}",
        if agree {
            "TensorFlow agrees with hebb (accuracy equal, loss within 1e-4)"
        } else {
            "TensorFlow DISAGREES with hebb"
        }
    );
    if !agree {
        bail!("TensorFlow's evaluation of the exported files differs from hebb's");
    }
    Ok(())
}

/// Options of the hidden `ch13-child` subcommand: the new process of 13.6.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ChildArgs {
    /// `load-weights`, `load-model` or `resume`.
    #[arg(value_parser = ["load-weights", "load-model", "resume"])]
    mode: String,
    /// The file to load.
    path: std::path::PathBuf,
    /// Where `resume` saves the model.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Training images `resume` uses.
    #[arg(long, default_value_t = 12_000)]
    subset: usize,
    #[arg(long, default_value_t = 612)]
    seed: u32,
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

/// The new process of 13.6: loads what the parent saved, and evaluates
/// (or trains on), printing `RESULT loss accuracy`.
pub(crate) fn child(args: &ChildArgs) -> Result<()> {
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let data = match args.dataset.as_str() {
        "fashion-mnist" => hebb_data::fashion_mnist::load_data(&data_dir)?,
        _ => hebb_data::mnist::load_data(&data_dir)?,
    };
    let (x_test, y_test) = mnist_tensors(&data.x_test, &data.y_test)?;
    let pid = std::process::id();
    match args.mode.as_str() {
        "load-weights" => {
            // A freshly built identical model: other initial weights (another seed).
            let mut model = mnist_model(u64::from(args.seed) + 1)?;
            let (l, a) = loss_and_accuracy(&mut model, &x_test, &y_test)?;
            println!(
                "process {pid}: fresh model before load_weights: loss {l:.4}, accuracy {a:.4}"
            );
            model.load_weights(&args.path)?;
            let (l, a) = loss_and_accuracy(&mut model, &x_test, &y_test)?;
            println!("process {pid}: model.load_weights({})", args.path.display());
            println!("RESULT {l} {a}");
        }
        "load-model" => {
            let mut model = crate::model::load(&args.path)?;
            println!("process {pid}: load_model({})", args.path.display());
            crate::model::describe_compile(&model);
            let (l, a) = loss_and_accuracy(&mut model, &x_test, &y_test)?;
            println!("RESULT {l} {a}");
        }
        _ => {
            let out = args.out.as_ref().context("resume needs --out")?;
            let mut model = hebb_models::sequential::load_model(&args.path)?;
            let (x, y) = subset_tensors(&data, args.subset)?;
            let steps = model.optimizer().map_or(0, |o| o.iterations());
            println!(
                "process {pid}: load_model({}) after {steps} steps; fit(epochs=2, initial_epoch=1)",
                args.path.display()
            );
            model.fit(
                &x,
                &y,
                FitOptions {
                    batch_size: 64,
                    epochs: 2,
                    initial_epoch: 1,
                    verbose: 0,
                    seed: u64::from(args.seed),
                    ..Default::default()
                },
            )?;
            model.save(out, true)?;
            println!("process {pid}: model.save({})", out.display());
        }
    }
    Ok(())
}
