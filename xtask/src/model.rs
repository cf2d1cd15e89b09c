//! `cargo xtask model summary|evaluate PATH`: any model file hebb reads
//! (hebb's safetensors models, Keras `.h5` and `.keras` files) from the
//! command line.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use hebb_data::{DataDir, load_iris_test};
use hebb_models::sequential::{LoadedModel, Sequential, load_model_with_notes};
use hebb_tensor::Tensor;

/// Options of `cargo xtask model`.
#[derive(Args, Debug, Clone)]
pub(crate) struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum ModelCommand {
    /// Print the Keras-style summary of a model file (hebb, .h5 or .keras),
    /// its compile configuration and optimiser state.
    Summary {
        /// The model file.
        path: PathBuf,
    },
    /// Evaluate a model file on a data set's test split: loss, metrics, and
    /// the classes predicted for the first five test samples.
    Evaluate {
        /// The model file.
        path: PathBuf,
        /// The data set: its test split is used (MNIST and Fashion-MNIST
        /// scaled to [0, 1]; Iris centred as in 13.4).
        #[arg(long, value_parser = ["mnist", "fashion-mnist", "iris"])]
        dataset: String,
        #[arg(long, help = crate::DATA_DIR_HELP)]
        data_dir: Option<PathBuf>,
        /// Batch size of the evaluation.
        #[arg(long, default_value_t = 32, value_parser = crate::at_least_one)]
        batch_size: usize,
    },
}

/// Runs `cargo xtask model ...`.
pub(crate) fn run(args: &ModelArgs) -> Result<()> {
    match &args.command {
        ModelCommand::Summary { path } => summary(path),
        ModelCommand::Evaluate {
            path,
            dataset,
            data_dir,
            batch_size,
        } => evaluate(path, dataset, data_dir.as_deref(), *batch_size),
    }
}

/// Loads a model file, printing its format and the notes on what was left out.
pub(crate) fn load(path: &Path) -> Result<Sequential> {
    let LoadedModel {
        model,
        format,
        notes,
    } = load_model_with_notes(path)?;
    println!("{}: {format}", path.display());
    for note in &notes {
        println!("note: {note}");
    }
    Ok(model)
}

fn summary(path: &Path) -> Result<()> {
    let model = load(path)?;
    match model.summary() {
        Ok(s) => println!("{s}"),
        Err(_) => println!(
            "model {} is not built (the file has no input shape)",
            model.name()
        ),
    }
    // Keras' table has no activations; a Leaky-ReLU shows the lecture's a
    // and Keras' negative_slope.
    let activations: Vec<String> = model
        .layers()
        .filter(|layer| layer.config().get("activation").is_some())
        .map(|layer| format!("{} {}", layer.name(), layer.activation()))
        .collect();
    if !activations.is_empty() {
        println!("activations: {}", activations.join(", "));
    }
    describe_compile(&model);
    Ok(())
}

/// Prints the loss, metrics and optimiser (with its state) of a model.
pub(crate) fn describe_compile(model: &Sequential) {
    let (Some(optimizer), Some(loss)) = (model.optimizer(), model.loss()) else {
        println!("not compiled");
        return;
    };
    // The hyperparameters as given (`learning_rate=0.001`, `amsgrad=false`),
    // not `config()`'s f64 widening kept for saving.
    println!(
        "optimizer: {}, {} steps taken, {} slot tensors",
        optimizer.describe(),
        optimizer.iterations(),
        optimizer.slots().len()
    );
    println!(
        "loss: {}{}; metrics: {:?}",
        loss.name(),
        if loss.from_logits() {
            " (from logits)"
        } else {
            ""
        },
        &model.metrics_names()[1..]
    );
}

/// A data set's test split: inputs and class indices.
pub(crate) fn test_split(dataset: &str, data_dir: &DataDir) -> Result<(Tensor, Tensor)> {
    Ok(match dataset {
        // The test split alone: the training files are not needed (for
        // Iris either).
        "mnist" | "fashion-mnist" => {
            let (x_test, y_test) = if dataset == "mnist" {
                hebb_data::mnist::load_test(data_dir)
            } else {
                hebb_data::fashion_mnist::load_test(data_dir)
            }?;
            (x_test.to_f32_divided(255.0)?, y_test.to_f32_scaled(1.0)?)
        }
        "iris" => crate::ch13::iris_tensors(&load_iris_test(data_dir)?.centred())?,
        other => bail!("unknown dataset {other:?}; known: mnist, fashion-mnist, iris"),
    })
}

/// `x` reshaped to the model's input (e.g. images `[n, 28, 28]` for a
/// model of `[784]`), or an error naming the file and both shapes.
pub(crate) fn fit_input(
    model: &Sequential,
    x: &Tensor,
    path: &Path,
    dataset: &str,
) -> Result<Tensor> {
    let sample = &x.shape()[1..];
    let Some(want) = model.input_shape() else {
        return Ok(x.clone());
    };
    if want == sample {
        return Ok(x.clone());
    }
    if want.iter().product::<usize>() == sample.iter().product::<usize>() {
        let mut shape = vec![x.shape()[0]];
        shape.extend(want);
        return Ok(x.reshape(&shape)?);
    }
    bail!(
        "{}: the model takes samples of shape {want:?}, but {dataset} has samples of shape {sample:?}",
        path.display()
    )
}

fn evaluate(path: &Path, dataset: &str, data_dir: Option<&Path>, batch_size: usize) -> Result<()> {
    let mut model = load(path)?;
    let data_dir = DataDir::resolve(data_dir);
    let (x, labels) = test_split(dataset, &data_dir)?;
    let x = fit_input(&model, &x, path, dataset)?;
    if model.optimizer().is_none() {
        println!(
            "note: the file has no compile configuration; compiling as the lecture does \
             (adam, sparse_categorical_crossentropy, sparse_categorical_accuracy)"
        );
        model.compile(
            "adam",
            "sparse_categorical_crossentropy",
            vec!["sparse_categorical_accuracy"],
        )?;
    }
    describe_compile(&model);
    // One message for every model and loss: "labels have classes up to 9
    // but the model has 3 outputs (layer dense_1); ..."
    model.build(&x.shape()[1..])?;
    model
        .check_class_labels(&labels)
        .map_err(|e| anyhow!("{} on {dataset}: {e}", path.display()))?;
    let probs = model.predict(&x, batch_size)?;
    let classes = probs.shape().last().copied().unwrap_or(0);
    let y = match model.loss() {
        Some(loss) if !loss.is_sparse() => {
            let ids: Vec<usize> = labels.as_slice().iter().map(|&v| v as usize).collect();
            Tensor::one_hot(&ids, classes)?
        }
        _ => labels.clone(),
    };
    let values = model.evaluate(&x, &y, batch_size, 0)?;
    println!(
        "evaluate on the {dataset} test split ({} samples):",
        x.shape()[0]
    );
    for (name, v) in model.metrics_names().iter().zip(&values) {
        println!("  {name}: {v:.4}");
    }
    let first: Vec<usize> = (0..5.min(x.shape()[0])).collect();
    let predicted: Vec<usize> = probs
        .gather_rows(&first)?
        .argmax(1)?
        .as_slice()
        .iter()
        .map(|&p| p as usize)
        .collect();
    let truth: Vec<usize> = first
        .iter()
        .map(|&i| labels.as_slice()[i] as usize)
        .collect();
    println!("predicted classes of the first five test samples: {predicted:?} (labels: {truth:?})");
    Ok(())
}
