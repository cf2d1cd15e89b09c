//! `cargo xtask reproduce convnet`: Keras' "Simple MNIST convnet" example
//! (keras-io `examples/vision/mnist_convnet.py`), the network every Keras
//! user trains after the MLP of lecture 13.5, with hebb's image layers:
//!
//! ```text
//! Input (28, 28, 1) -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2x2) -> Conv2D(64, 3x3, relu)
//! -> MaxPooling2D(2x2) -> Flatten -> Dropout(0.5) -> Dense(10, softmax)
//! adam, batch_size 128, 15 epochs, validation_split 0.1
//! ```
//!
//! It prints the summary, the fit log, the test loss and accuracy and the
//! first predictions, and draws the learning curves, the first layer's
//! filters, the feature maps of one test image and the test images the
//! network gets wrong.

mod plots;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hebb_data::DataDir;
use hebb_layers::{Activation, Conv2D, Dense, Dropout, Flatten, MaxPooling2D};
use hebb_models::sequential::callbacks::{Callback, Control, Logs};
use hebb_models::sequential::{FitOptions, History, Sequential};
use hebb_tensor::Tensor;

use crate::ReproduceArgs;
use crate::ch13::{heading, history_panels, load_mnist_like, mnist_tensors};
use crate::plot::{self, Image};
use plots::{ColorMap, MapGrid, map_grids, symmetric_range, value_range};

/// The recipe's batch size.
pub(crate) const BATCH_SIZE: usize = 128;
/// The recipe's epochs.
pub(crate) const EPOCHS: usize = 15;
/// The recipe's share of the training images held out for validation (the last 10%).
pub(crate) const VALIDATION_SPLIT: f64 = 0.1;

/// Keras' "Simple MNIST convnet", compiled as the example compiles it
/// (adam, accuracy), with sparse categorical cross-entropy on the integer
/// labels where the example one-hot encodes them for the categorical one:
/// the same loss, value for value. 34,826 parameters.
pub(crate) fn convnet_model(seed: u64) -> Result<Sequential> {
    let mut model = Sequential::new().with_seed(seed);
    model.add(
        Conv2D::new(32, [3, 3])
            .activation(Activation::Relu)
            .input_shape(&[28, 28, 1]),
    )?;
    model.add(MaxPooling2D::new([2, 2]))?;
    model.add(Conv2D::new(64, [3, 3]).activation(Activation::Relu))?;
    model.add(MaxPooling2D::new([2, 2]))?;
    model.add(Flatten::new())?;
    model.add(Dropout::new(0.5))?;
    model.add(Dense::new(10).activation(Activation::Softmax))?;
    model.compile("adam", "sparse_categorical_crossentropy", vec!["accuracy"])?;
    Ok(model)
}

/// Images `[n, 28, 28]` as the network takes them: `[n, 28, 28, 1]`
/// (NumPy's `np.expand_dims(x, -1)`; the same values in the same order).
pub(crate) fn with_channel_axis(x: &Tensor) -> Result<Tensor> {
    let shape = x.shape();
    let [n, rows, cols] = shape[..] else {
        bail!("images of shape {shape:?}, expected [n, rows, cols]");
    };
    Ok(x.reshape(&[n, rows, cols, 1])?)
}

/// Seconds of each epoch of a fit (training and validation pass), measured
/// from the start of training and from one epoch's end to the next's.
#[derive(Debug, Clone)]
pub(crate) struct EpochTimes {
    since: Instant,
    seconds: Arc<Mutex<Vec<f64>>>,
}

impl EpochTimes {
    /// A timer, and the list it fills.
    pub(crate) fn new() -> (Self, Arc<Mutex<Vec<f64>>>) {
        let seconds = Arc::new(Mutex::new(Vec::new()));
        let timer = Self {
            since: Instant::now(),
            seconds: Arc::clone(&seconds),
        };
        (timer, seconds)
    }
}

impl Callback for EpochTimes {
    fn on_train_begin(&mut self) -> hebb_models::Result<()> {
        self.since = Instant::now();
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &Logs,
        _weights: &[Tensor],
    ) -> hebb_models::Result<Control> {
        let now = Instant::now();
        let secs = now.duration_since(self.since).as_secs_f64();
        self.seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(secs);
        self.since = now;
        Ok(Control::Continue)
    }
}

/// The class names of `dataset`'s labels: digits, or Fashion-MNIST's.
fn class_name(dataset: &str, label: usize) -> String {
    match dataset {
        "fashion-mnist" => hebb_data::fashion_mnist::CLASS_NAMES
            .get(label)
            .map_or_else(|| label.to_string(), |s| (*s).to_string()),
        _ => label.to_string(),
    }
}

/// Why the convnet cannot run on `device` (a layer without kernels there),
/// or `None` if it can: what `--device auto` asks before it picks a GPU.
pub(crate) fn refuses(device: hebb_tensor::Device) -> Option<String> {
    match convnet_model(0) {
        Ok(mut model) => model.to_device(device).err().map(|e| e.to_string()),
        Err(e) => Some(format!("{e:#}")),
    }
}

/// Runs the recipe: data, model, fit, evaluation, predictions, figures.
pub(crate) fn run(args: &ReproduceArgs) -> Result<()> {
    if let Some(s) = &args.section {
        bail!(
            "reproduce convnet has no sections (it runs the whole recipe); --section {s} does not apply"
        );
    }
    let device = args.device()?;
    let out = args.prepare_out_dir()?;
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let dataset = args.dataset.as_str();
    heading(&format!(
        "Keras' \"Simple MNIST convnet\" on {dataset} (keras-io examples/vision/mnist_convnet.py)"
    ));
    let data = load_mnist_like(args, &data_dir)?;
    let (x_train, mut y_train) = mnist_tensors(&data.x_train, &data.y_train)?;
    let (x_test, y_test) = mnist_tensors(&data.x_test, &data.y_test)?;
    let mut x_train = with_channel_axis(&x_train)?;
    let x_test = with_channel_axis(&x_test)?;
    println!("x_train shape: {}", python_shape(x_train.shape()));
    println!("{} train samples", x_train.shape()[0]);
    println!("{} test samples", x_test.shape()[0]);
    if let Some(n) = args.subset {
        let rows: Vec<usize> = (0..n.min(x_train.shape()[0])).collect();
        println!(
            "--subset {n}: training on the first {} images only",
            rows.len()
        );
        x_train = x_train.gather_rows(&rows)?;
        y_train = y_train.gather_rows(&rows)?;
    }

    let seed = u64::from(args.seed);
    let mut model = convnet_model(seed)?;
    crate::data_parallel(&mut model, device)?;
    model.to_device(device)?;
    if device.is_cuda() {
        println!("(training on {device})");
    }
    println!("{}", model.summary()?);
    let epochs = args.epochs.unwrap_or(EPOCHS);
    let batch_size = args.batch_size.unwrap_or(BATCH_SIZE);
    println!(
        "compile: optimizer=\"adam\", loss=\"sparse_categorical_crossentropy\" (the example one-hot \
         encodes the labels for \"categorical_crossentropy\": the same values), metrics=[\"accuracy\"]"
    );
    println!(
        "fit: batch_size={batch_size}, epochs={epochs}, validation_split={VALIDATION_SPLIT}, seed {seed}"
    );
    let (timer, seconds) = EpochTimes::new();
    let start = Instant::now();
    let history = model.fit(
        &x_train,
        &y_train,
        FitOptions {
            batch_size,
            epochs,
            validation_split: VALIDATION_SPLIT,
            verbose: args.verbose,
            seed,
            callbacks: vec![Box::new(timer)],
            ..Default::default()
        },
    )?;
    let fit_secs = start.elapsed().as_secs_f64();
    let seconds = seconds.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("{}", epoch_times_line(&seconds, fit_secs));

    let values = model.evaluate(&x_test, &y_test, 32, 0)?;
    let [loss, accuracy, ..] = values[..] else {
        bail!("evaluate returned {values:?}, not a loss and an accuracy");
    };
    println!("Test loss: {loss:.4}");
    println!("Test accuracy: {accuracy:.4}");
    if dataset == "mnist" && args.subset.is_none() && args.epochs.is_none() {
        println!(
            "(Keras' example reports a test accuracy of 0.9922; the target here is >= 0.990: {})",
            if accuracy >= 0.990 { "met" } else { "NOT met" }
        );
    }

    let probs = model.predict(&x_test, 128)?;
    let predicted = argmax_rows(&probs)?;
    let labels: Vec<usize> = data.y_test.data().iter().map(|&l| usize::from(l)).collect();
    println!("model.predict(x_test[:4]):");
    for row in probs.as_slice().chunks(10).take(4) {
        let cells: Vec<String> = row.iter().map(|p| format!("{p:.4}")).collect();
        println!("  [{}]", cells.join(", "));
    }
    println!(
        "np.argmax(..., axis=1)[:10] = {:?}; y_test[:10] = {:?}",
        &predicted[..predicted.len().min(10)],
        &labels[..labels.len().min(10)]
    );
    let mistakes: Vec<usize> = (0..labels.len().min(predicted.len()))
        .filter(|&i| predicted[i] != labels[i])
        .collect();
    println!(
        "{} of {} test images misclassified",
        mistakes.len(),
        labels.len()
    );

    let name = |figure: &str| out.join(format!("convnet-{dataset}-{figure}.png"));
    let path = name("history");
    plot_history(
        &path,
        &format!("Simple MNIST convnet on {dataset}: training history"),
        &history,
    )?;
    println!("figure: {}", path.display());
    let path = name("filters");
    plot_filters(&path, &model)?;
    println!("figure: {}", path.display());
    let path = name("feature-maps");
    let first = (labels[0], predicted[0]);
    plot_feature_maps(&path, dataset, &mut model, &x_test, first)?;
    println!("figure: {}", path.display());
    let path = name("mistakes");
    if mistakes.is_empty() {
        println!("no test image is misclassified: no figure of mistakes");
    } else {
        plot_mistakes(&path, dataset, &data.x_test, &mistakes, &labels, &predicted)?;
        println!("figure: {}", path.display());
    }
    Ok(())
}

/// `(60000, 28, 28, 1)`: a shape as NumPy prints it.
fn python_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    }
}

/// The line that sums up the epochs' times: each epoch's seconds, their
/// mean, and the whole fit's.
pub(crate) fn epoch_times_line(seconds: &[f64], fit_secs: f64) -> String {
    let each: Vec<String> = seconds.iter().map(|s| format!("{s:.2}")).collect();
    let mean = if seconds.is_empty() {
        f64::NAN
    } else {
        seconds.iter().sum::<f64>() / seconds.len() as f64
    };
    format!(
        "epoch seconds (training and validation): [{}]; mean {mean:.2} s an epoch, {fit_secs:.2} s the fit",
        each.join(", ")
    )
}

/// The index of each row's largest value of a `[n, classes]` tensor.
fn argmax_rows(probs: &Tensor) -> Result<Vec<usize>> {
    Ok(probs
        .argmax(1)?
        .to_vec()
        .iter()
        .map(|&p| p as usize)
        .collect())
}

/// Loss and accuracy per epoch, training (blue) and validation (red).
fn plot_history(path: &Path, title: &str, history: &History) -> Result<()> {
    let series = |key: &str| -> Vec<f64> {
        history
            .get(key)
            .unwrap_or(&[])
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    let (loss, val_loss) = (series("loss"), series("val_loss"));
    let (acc, val_acc) = (series("accuracy"), series("val_accuracy"));
    plot::panels(
        path,
        Some(title),
        &history_panels(&loss, &val_loss, &acc, &val_acc),
    )
}

/// The first Conv2D layer's kernel `[3, 3, 1, filters]` in grey, twice: on
/// one scale for all, centred on 0 (mid-grey), which compares the filters'
/// sizes; and each filter on its own scale (divided by its largest
/// |weight|), which shows the pattern of the small ones too.
fn plot_filters(path: &Path, model: &Sequential) -> Result<()> {
    let layer = model
        .get_layer("conv2d")
        .context("the model has no layer conv2d")?;
    let kernel = layer
        .weights()
        .first()
        .map(|w| w.value().clone())
        .context("layer conv2d has no kernel")?;
    let kernel = kernel.to_device(hebb_tensor::Device::Cpu)?;
    let shape = kernel.shape().to_vec();
    let [rows, cols, 1, filters] = shape[..] else {
        bail!("conv2d's kernel has shape {shape:?}, expected [rows, cols, 1, filters]");
    };
    let values = kernel.as_slice();
    let (lo, hi) = symmetric_range(values);
    let shared = MapGrid {
        caption: format!("one scale for all {filters}: black {lo:.2}, mid-grey 0, white +{hi:.2}"),
        values,
        rows,
        cols,
        channels: filters,
        columns: 8,
        pixel: 20,
        color_map: ColorMap::Grey,
        range: (lo, hi),
        per_map: false,
        numbered: true,
        bar_label: "weight",
    };
    let own = MapGrid {
        caption: "each filter on its own scale: black -max |w|, white +max |w| of that filter"
            .to_string(),
        range: (-1.0, 1.0),
        per_map: true,
        bar_label: "w / max |w|",
        ..shared.clone()
    };
    map_grids(
        path,
        800,
        &format!(
            "conv2d: the {filters} {rows}x{cols} filters of the first layer (kernel {shape:?})"
        ),
        &[shared, own],
    )
}

/// Test image 0 and what the Conv2D layers make of it: the 32 maps of the
/// first, the 64 of the second (after ReLU), each layer on one colour scale
/// from 0 (dark violet) to its largest value (yellow).
fn plot_feature_maps(
    path: &Path,
    dataset: &str,
    model: &mut Sequential,
    x_test: &Tensor,
    (label, predicted): (usize, usize),
) -> Result<()> {
    let image = x_test.gather_rows(&[0])?;
    let outputs = model.layer_outputs(&image)?;
    let mut host = Vec::with_capacity(outputs.len());
    for t in &outputs {
        host.push(t.to_device(hebb_tensor::Device::Cpu)?);
    }
    let pixels = image.to_device(hebb_tensor::Device::Cpu)?;
    let mut grids = vec![MapGrid {
        caption: format!(
            "input: test image 0, y={}, predicted {}",
            class_name(dataset, label),
            class_name(dataset, predicted)
        ),
        values: pixels.as_slice(),
        rows: 28,
        cols: 28,
        channels: 1,
        columns: 1,
        pixel: 6,
        color_map: ColorMap::Grey,
        range: (0.0, 1.0),
        per_map: false,
        numbered: false,
        bar_label: "pixel / 255",
    }];
    // The Conv2D layers' outputs, first to last: 32 maps in 4 rows, 64 in 4 rows.
    let convs: Vec<(usize, String)> = model
        .layers()
        .enumerate()
        .filter(|(_, l)| l.class_name() == "Conv2D")
        .map(|(i, l)| (i, l.name().to_string()))
        .collect();
    for (index, name) in &convs {
        let maps = host
            .get(*index)
            .with_context(|| format!("layer_outputs gave no output for layer {index} ({name})"))?;
        let shape = maps.shape().to_vec();
        let [1, rows, cols, channels] = shape[..] else {
            bail!("{name} gave an output of shape {shape:?}, expected [1, rows, cols, channels]");
        };
        let values = maps.as_slice();
        grids.push(MapGrid {
            caption: format!(
                "{name} (ReLU): {channels} maps of {rows}x{cols}; map k is filter k's response"
            ),
            values,
            rows,
            cols,
            channels,
            columns: channels.div_ceil(4),
            // About 80 pixels a map: 3 a value for 26x26, 7 for 11x11 (shrunk to fit the width).
            pixel: (80 / cols.max(1)).clamp(1, 8) as u32,
            color_map: ColorMap::Viridis,
            range: value_range(values),
            per_map: false,
            numbered: true,
            bar_label: "activation",
        });
    }
    map_grids(
        path,
        900,
        "Feature maps of one test image (one colour scale per layer)",
        &grids,
    )
}

/// The first misclassified test images (at most 8), titled with the label
/// and the prediction.
fn plot_mistakes(
    path: &Path,
    dataset: &str,
    images: &hebb_data::IdxArray,
    mistakes: &[usize],
    labels: &[usize],
    predicted: &[usize],
) -> Result<()> {
    let shown = &mistakes[..mistakes.len().min(8)];
    let titles: Vec<String> = shown
        .iter()
        .map(|&i| {
            format!(
                "test image {i}\ny={}\ny_pred={}",
                class_name(dataset, labels[i]),
                class_name(dataset, predicted[i])
            )
        })
        .collect();
    let pixels = images.data();
    let figures: Vec<Image<'_>> = shown
        .iter()
        .zip(&titles)
        .map(|(&i, title)| Image {
            title,
            pixels: &pixels[i * 784..(i + 1) * 784],
            rows: 28,
            cols: 28,
        })
        .collect();
    plot::images(path, &figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_of_the_convnet_has_gpu_kernels() {
        assert_eq!(refuses(hebb_tensor::Device::Cpu), None);
        #[cfg(feature = "cuda")]
        {
            // Where no GPU is usable, moving is refused for that reason;
            // never for a layer without kernels.
            if let Some(why) = refuses(hebb_tensor::Device::Cuda(0)) {
                assert!(!why.contains("has no kernels"), "{why}");
            }
        }
    }

    #[test]
    fn images_get_a_channel_axis_with_their_values_in_order() {
        let x = Tensor::from_vec((0..2 * 3 * 4).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
        let y = with_channel_axis(&x).unwrap();
        assert_eq!(y.shape(), &[2, 3, 4, 1]);
        assert_eq!(y.to_vec(), x.to_vec());
        let e = with_channel_axis(&y).unwrap_err().to_string();
        assert_eq!(e, "images of shape [2, 3, 4, 1], expected [n, rows, cols]");
    }

    #[test]
    fn shapes_print_as_numpy_prints_them() {
        assert_eq!(python_shape(&[60000, 28, 28, 1]), "(60000, 28, 28, 1)");
        assert_eq!(python_shape(&[10]), "(10,)");
    }

    #[test]
    fn the_epoch_line_lists_each_epoch_and_the_mean() {
        assert_eq!(
            epoch_times_line(&[2.0, 1.5, 1.0], 4.6),
            "epoch seconds (training and validation): [2.00, 1.50, 1.00]; mean 1.50 s an epoch, \
             4.60 s the fit"
        );
    }

    #[test]
    fn fashion_labels_are_named() {
        assert_eq!(class_name("fashion-mnist", 9), "Ankle boot");
        assert_eq!(class_name("mnist", 7), "7");
        assert_eq!(class_name("fashion-mnist", 12), "12");
    }
}
