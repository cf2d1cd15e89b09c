//! Chapter 12 of the lecture: from the M-P neuron to a multi-layer network
//! on Iris. Every number printed here is computed by hebb.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hebb_autograd::{GradientTape, Variable};
use hebb_data::{DataDir, IrisSplit, load_iris};
use hebb_layers::{Activation, PRelu, RRelu, losses};
use hebb_models::lowlevel::{Dataset, IterationLog, LogisticRegression, Network};
use hebb_models::sequential::layers::Dense;
use hebb_models::sequential::{FitOptions, Sequential};
use hebb_models::{McCullochPitts, Perceptron};
use hebb_tensor::Tensor;

use crate::ReproduceArgs;
use crate::plot::{self, BLUE, Curve, Panel, RED, Series};

const SECTIONS: [&str; 7] = ["12.1", "12.2", "12.3", "12.3.2", "12.4", "12.5", "12.6"];

/// Runs the requested sections of chapter 12 in lecture order.
pub(crate) fn run(args: &ReproduceArgs) -> Result<()> {
    if let Some(s) = &args.section
        && !SECTIONS.contains(&s.as_str())
    {
        bail!(
            "chapter 12 has no section {s:?}; sections: {}",
            SECTIONS.join(", ")
        );
    }
    // A GPU asked for and not there fails before any output.
    args.device()?;
    let out = args.prepare_out_dir()?;
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let iris = || -> Result<(IrisSplit, IrisSplit)> {
        load_iris(&data_dir)
            .with_context(|| format!("loading Iris from {}", data_dir.root().display()))
    };
    if args.wants("12.1") {
        section_12_1(&iris()?)?;
    }
    if args.wants("12.2") {
        let title = "12.2 Softmax regression: a single-layer network on Iris";
        gradient_descent(
            title,
            &iris()?,
            &[4, 3],
            args,
            &out.join("12.2-softmax-regression.png"),
        )?;
    }
    if args.wants("12.3") {
        section_12_3()?;
    }
    if args.wants("12.3.2") {
        section_12_3_2(&iris()?, args)?;
    }
    if args.wants("12.4") {
        section_12_4()?;
    }
    if args.wants("12.5") {
        section_12_5(&out)?;
    }
    if args.wants("12.6") {
        let title = "12.6 A multi-layer network on Iris";
        let sizes = [4, args.hidden as usize, 3];
        gradient_descent(
            title,
            &iris()?,
            &sizes,
            args,
            &out.join("12.6-multilayer-network.png"),
        )?;
    }
    Ok(())
}

fn heading(title: &str) {
    println!("\n== {title} ==");
}

/// The four inputs of a two-input truth table, `[4, 2]`.
fn truth_inputs() -> Result<Tensor> {
    Ok(Tensor::from_vec(
        vec![0., 0., 0., 1., 1., 0., 1., 1.],
        &[4, 2],
    )?)
}

fn bits(t: &Tensor) -> String {
    t.to_vec().iter().map(|v| format!("{v:>6}")).collect()
}

fn section_12_1((train, test): &(IrisSplit, IrisSplit)) -> Result<()> {
    heading("12.1 Neurons and the perceptron");
    println!(
        "M-P neuron (McCulloch & Pitts, 1943): y = step(sum_j w_j x_j - theta), fixed weights"
    );
    println!(
        "{:<6} {:<10} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "gate", "w", "theta", "(0,0)", "(0,1)", "(1,0)", "(1,1)"
    );
    let x = truth_inputs()?;
    for (name, n) in [
        ("AND", McCullochPitts::and()),
        ("OR", McCullochPitts::or()),
        ("NAND", McCullochPitts::nand()),
        ("NOR", McCullochPitts::nor()),
    ] {
        let w = format!("{:?}", n.weights);
        println!("{name:<6} {w:<14} {:>6}{}", n.theta, bits(&n.output(&x)?));
    }
    let not = McCullochPitts::not();
    let x1 = Tensor::from_vec(vec![0., 1.], &[2, 1])?;
    let w = format!("{:?}", not.weights);
    println!(
        "{:<6} {w:<10} {:>6}   x=0 -> {}, x=1 -> {}",
        "NOT",
        not.theta,
        not.output(&x1)?.to_vec()[0],
        not.output(&x1)?.to_vec()[1]
    );

    let eta = 0.1;
    println!(
        "\nPerceptron (Rosenblatt, 1957): w_i += eta (y - y_hat) x_i, eta = {eta}, w = 0 at the start"
    );
    for (name, y) in [
        ("AND", [0., 0., 0., 1.]),
        ("OR", [0., 1., 1., 1.]),
        ("XOR", [0., 1., 1., 0.]),
    ] {
        let mut p = Perceptron::new(2, eta);
        match p.fit(&x, &y, 100) {
            Ok(fit) => {
                let w: Vec<String> = p.weights.iter().map(|w| format!("{w:.1}")).collect();
                println!(
                    "{name:<4} learned w0 (bias), w1, w2 = [{}] in {} epochs ({} updates); outputs{}",
                    w.join(", "),
                    fit.epochs,
                    fit.updates,
                    bits(&p.predict(&x)?)
                );
            }
            Err(e) => println!("{name:<4} {e}: XOR is not linearly separable"),
        }
    }

    // The delta rule: gradient descent on a sigmoid neuron (logistic regression).
    let pick = |s: &IrisSplit| -> Result<(Tensor, Vec<f32>)> {
        let rows: Vec<usize> = (0..s.len()).filter(|&i| s.labels[i] < 2).collect();
        let f = s.n_features;
        let mut x = Vec::with_capacity(rows.len() * f);
        for &i in &rows {
            x.extend_from_slice(&s.features[i * f..(i + 1) * f]);
        }
        let subset = IrisSplit {
            features: x,
            labels: rows.iter().map(|&i| s.labels[i]).collect(),
            n_features: f,
            class_names: s.class_names.clone(),
        }
        .centred();
        Ok((
            subset.features_tensor()?,
            subset.labels.iter().map(|&l| l as f32).collect(),
        ))
    };
    let (x_train, y_train) = pick(train)?;
    let (x_test, y_test) = pick(test)?;
    let (lr, iters) = (0.1, 100);
    println!(
        "\nDelta rule: y = sigmoid(W^T X), gradient descent on the mean cross-entropy,\n\
         Iris setosa (0) vs versicolor (1), {} training and {} test samples, 4 centred features, lr = {lr}",
        y_train.len(),
        y_test.len()
    );
    let mut model = LogisticRegression::new(4)?;
    let logs = model.train(&x_train, &y_train, lr, iters)?;
    for log in logs.iter().filter(|l| l.iteration % 20 == 0) {
        println!(
            "i: {:>3}, Loss: {:.6}, Acc: {:.6}",
            log.iteration, log.loss, log.accuracy
        );
    }
    let test_acc =
        hebb_layers::metrics::binary_accuracy(&model.neuron.predict(&x_test)?, &y_test, 0.5)?;
    let w: Vec<String> = model
        .neuron
        .kernel()
        .context("the neuron has no kernel")?
        .value()
        .to_vec()
        .iter()
        .map(|w| format!("{w:.4}"))
        .collect();
    println!(
        "learned w = [{}], b = {:.4}; test accuracy {test_acc:.6}",
        w.join(", "),
        model
            .neuron
            .bias()
            .context("the neuron has no bias")?
            .value()
            .item()?
    );
    Ok(())
}

fn gradient_descent(
    title: &str,
    (train, test): &(IrisSplit, IrisSplit),
    sizes: &[usize],
    args: &ReproduceArgs,
    png: &Path,
) -> Result<()> {
    heading(title);
    let (train, test) = (train.centred(), test.centred());
    let data = Dataset {
        x_train: train.features_tensor()?,
        y_train: train.labels.clone(),
        x_test: test.features_tensor()?,
        y_test: test.labels.clone(),
        classes: train.n_classes(),
    };
    let kernels: Vec<String> = sizes
        .windows(2)
        .map(|w| format!("randn({}, {})", w[0], w[1]))
        .collect();
    println!(
        "X_train {:?}, X_test {:?} (each centred on its own mean); np.random.seed({}), W = {}, B = 0; \
         learn_rate = {}, iter = {}",
        data.x_train.shape(),
        data.x_test.shape(),
        args.seed,
        kernels.join(" then "),
        args.lr,
        args.iters
    );
    let device = args.device()?;
    let data = data.to_device(device)?;
    let mut net = Network::lecture_init(args.seed, sizes)?;
    net.to_device(device)?;
    if device.is_cuda() {
        println!("(training on {device})");
    }
    let step = args.display_step as usize;
    let logs = net.train(&data, args.lr, args.iters as usize, |log| {
        if log.iteration % step == 0 {
            println!("{}", log.lecture_line());
        }
    })?;
    let col =
        |f: fn(&IterationLog) -> f32| logs.iter().map(|l| f64::from(f(l))).collect::<Vec<_>>();
    let (ltr, lte, atr, ate) = (
        col(|l| l.train_loss),
        col(|l| l.test_loss),
        col(|l| l.train_acc),
        col(|l| l.test_acc),
    );
    plot::panels(
        png,
        Some(title),
        &[
            train_test_panel("Loss", &ltr, &lte),
            train_test_panel("Accuracy", &atr, &ate),
        ],
    )?;
    println!("figure: {}", png.display());
    Ok(())
}

/// A panel with a blue training curve and a red test curve, like the lecture's figures.
fn train_test_panel<'a>(y_label: &'a str, train: &'a [f64], test: &'a [f64]) -> Panel<'a> {
    Panel {
        x_label: "Iteration",
        y_label,
        series: vec![
            Series {
                label: "train",
                color: BLUE,
                values: train,
            },
            Series {
                label: "test",
                color: RED,
                values: test,
            },
        ],
        first_x: 0,
    }
}

fn section_12_3() -> Result<()> {
    heading("12.3 XOR by a two-layer network of step neurons");
    println!("h1 = step(2x1 + 2x2 - 3), h2 = step(-2x1 - 2x2 + 1), y = step(-2h1 - 2h2 + 1)");
    let x = truth_inputs()?;
    let h1 = McCullochPitts::new(vec![2., 2.], 3.);
    let h2 = McCullochPitts::new(vec![-2., -2.], -1.);
    let out = McCullochPitts::new(vec![-2., -2.], -1.);
    let (z1, z2) = (h1.net_input(&x)?, h2.net_input(&x)?);
    let (a1, a2) = (z1.step(), z2.step());
    let hidden = Tensor::from_vec(
        a1.to_vec()
            .into_iter()
            .zip(a2.to_vec())
            .flat_map(|(a, b)| [a, b])
            .collect(),
        &[4, 2],
    )?;
    let (z, y) = (out.net_input(&hidden)?, out.output(&hidden)?);
    println!(
        "{:<9} {:>4} {:>4} {:>4} {:>4} {:>4} {:>4} {:>5}",
        "(x1,x2)", "z1", "h1", "z2", "h2", "z", "y", "XOR"
    );
    let xs = x.to_vec();
    let cols = [
        z1.to_vec(),
        a1.to_vec(),
        z2.to_vec(),
        a2.to_vec(),
        z.to_vec(),
        y.to_vec(),
    ];
    for i in 0..4 {
        let (p, q) = (xs[2 * i], xs[2 * i + 1]);
        let xor = f32::from(u8::from(p != q));
        let row: String = cols.iter().map(|c| format!(" {:>4}", c[i])).collect();
        println!("({p}, {q})   {row} {xor:>5}");
        if y.to_vec()[i] != xor {
            bail!(
                "the two-layer network gave {} for XOR({p}, {q})",
                y.to_vec()[i]
            );
        }
    }
    println!("y = XOR(x1, x2) for all four inputs");
    Ok(())
}

fn section_12_3_2((train, test): &(IrisSplit, IrisSplit), args: &ReproduceArgs) -> Result<()> {
    heading("12.3.2 Hyper-parameters and the validation set");
    let (x_train, y_train) = crate::ch13::iris_tensors(&train.centred())?;
    let (x_test, y_test) = crate::ch13::iris_tensors(&test.centred())?;
    let epochs = args.epochs.unwrap_or(100);
    let batch_size = args.batch_size.unwrap_or(32);
    println!(
        "12 candidates: 1, 2 or 3 hidden ReLU layers of 4, 16, 32 or 64 units, softmax output; SGD(learning_rate=0.1), \
         sparse categorical cross-entropy, {epochs} epochs of batch {batch_size}.\n\
         Each is trained on the first 80% of iris_training.csv and judged on the last 20% (validation_split=0.2);\n\
         the test set is used once, for the chosen model only."
    );
    println!(
        "{:>6} {:>6} {:>8} {:>10} {:>10} {:>10}",
        "layers", "units", "params", "loss", "val_loss", "val_acc"
    );
    let mut best: Option<(f32, usize, usize, Sequential)> = None;
    for layers in 1..=3 {
        for units in [4, 16, 32, 64] {
            let mut model = Sequential::new().with_seed(u64::from(args.seed));
            for l in 0..layers {
                let dense = Dense::new(units).activation(Activation::Relu);
                model.add(if l == 0 {
                    dense.input_shape(&[4])
                } else {
                    dense
                })?;
            }
            model.add(Dense::new(3).activation(Activation::Softmax))?;
            let sgd: Box<dyn hebb_optim::Optimizer> = Box::new(hebb_optim::Sgd::new(0.1));
            model.compile(
                sgd,
                "sparse_categorical_crossentropy",
                vec!["sparse_categorical_accuracy"],
            )?;
            let options = FitOptions {
                batch_size,
                epochs,
                validation_split: 0.2,
                verbose: 0,
                seed: u64::from(args.seed),
                ..Default::default()
            };
            let history = model.fit(&x_train, &y_train, options)?;
            let last = |key: &str| {
                history
                    .get(key)
                    .and_then(|v| v.last().copied())
                    .unwrap_or(f32::NAN)
            };
            let val_loss = last("val_loss");
            println!(
                "{layers:>6} {units:>6} {:>8} {:>10.4} {val_loss:>10.4} {:>10.4}",
                model.count_params(),
                last("loss"),
                last("val_sparse_categorical_accuracy")
            );
            if best.as_ref().is_none_or(|b| val_loss < b.0) {
                best = Some((val_loss, layers, units, model));
            }
        }
    }
    let Some((val_loss, layers, units, mut model)) = best else {
        bail!("no candidate finished training");
    };
    let test_values = model.evaluate(&x_test, &y_test, 32, 0)?;
    println!(
        "chosen by the lowest val_loss ({val_loss:.4}): {layers} hidden layer(s) of {units} units; \
         its test loss {:.4}, test accuracy {:.4}",
        test_values[0],
        test_values.get(1).copied().unwrap_or(f32::NAN)
    );
    Ok(())
}

fn section_12_4() -> Result<()> {
    heading("12.4 Back-propagation: the worked 1-1-1 example");
    let (x, y, eta) = (1.0f64, 0.8f64, 0.5f64);
    let (w_h, b_h, w_o, b_o) = (0.2f64, 0.1f64, 0.3f64, 0.2f64);
    println!(
        "x = {x}, y = {y}, w_h = {w_h}, b_h = {b_h}, w_o = {w_o}, b_o = {b_o}, eta = {eta}, Loss = 1/2 (y - y_o)^2"
    );

    // The lecture's chain, from y_h and y_o rounded to two decimals.
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let yh = round2(sigmoid(w_h * x + b_h));
    let yo = round2(sigmoid(w_o * yh + b_o));
    let loss = 0.5 * (y - yo).powi(2);
    let (dl_dyo, dyo_dzo, dyh_dzh) = (-(y - yo), yo * (1.0 - yo), yh * (1.0 - yh));
    let d_wo = dl_dyo * dyo_dzo * yh;
    let d_bo = dl_dyo * dyo_dzo;
    let d_wh = dl_dyo * dyo_dzo * w_o * dyh_dzh * x;
    let d_bh = dl_dyo * dyo_dzo * w_o * dyh_dzh;
    let lecture = [
        yh,
        yo,
        loss,
        dl_dyo,
        dyo_dzo,
        dyh_dzh,
        d_wo,
        w_o - eta * d_wo,
        d_bo,
        b_o - eta * d_bo,
        d_wh,
        w_h - eta * d_wh,
        d_bh,
        b_h - eta * d_bh,
    ];

    // hebb's autograd, no rounding (f32).
    let vars = [w_h, b_h, w_o, b_o].map(|v| Variable::new("p", Tensor::scalar(v as f32)));
    let tape = GradientTape::new();
    let [wh, bh, wo, bo] = [0, 1, 2, 3].map(|i| tape.watch(&vars[i]));
    let xv = tape.constant(Tensor::scalar(x as f32));
    let zh = wh.mul(xv)?.add(bh)?;
    let yh_t = zh.sigmoid();
    let zo = wo.mul(yh_t)?.add(bo)?;
    let yo_t = zo.sigmoid();
    let loss_t = losses::half_squared_error(tape.constant(Tensor::scalar(y as f32)), yo_t)?;
    let g = tape.gradient(loss_t, &[wh, bh, wo, bo])?;
    let (g, yh_e, yo_e) = (
        g.iter()
            .map(|t| t.item().map(f64::from))
            .collect::<Result<Vec<_>, _>>()?,
        f64::from(yh_t.value().item()?),
        f64::from(yo_t.value().item()?),
    );
    let exact = [
        yh_e,
        yo_e,
        f64::from(loss_t.value().item()?),
        -(y - yo_e),
        yo_e * (1.0 - yo_e),
        yh_e * (1.0 - yh_e),
        g[2],
        w_o - eta * g[2],
        g[3],
        b_o - eta * g[3],
        g[0],
        w_h - eta * g[0],
        g[1],
        b_h - eta * g[1],
    ];

    let rows: [(&str, usize); 14] = [
        ("y_h = sigmoid(w_h x + b_h)", 2),
        ("y_o = sigmoid(w_o y_h + b_o)", 2),
        ("Loss", 5),
        ("dLoss/dy_o = -(y - y_o)", 2),
        ("dy_o/dz_o = y_o (1 - y_o)", 4),
        ("dy_h/dz_h = y_h (1 - y_h)", 4),
        ("dLoss/dw_o", 8),
        ("w_o(1) = w_o - eta dLoss/dw_o", 9),
        ("dLoss/db_o", 6),
        ("b_o(1)", 7),
        ("dLoss/dw_h", 8),
        ("w_h(1)", 9),
        ("dLoss/db_h", 8),
        ("b_h(1)", 9),
    ];
    println!(
        "{:<32} {:>16} {:>16}",
        "quantity", "lecture (rounded)", "hebb autograd"
    );
    for ((name, digits), (l, e)) in rows.iter().zip(lecture.iter().zip(exact)) {
        println!("{name:<32} {:>16} {:>16.9}", format!("{l:.digits$}"), e);
    }
    println!(
        "The lecture rounds y_h = {:.4} to {yh} and y_o = sigmoid(w_o {yh} + b_o) = {:.4} to {yo} before differentiating;\n\
         autograd keeps every digit (y_o = {yo_e:.4}), so the gradients differ from the second or third significant digit on.",
        sigmoid(w_h * x + b_h),
        sigmoid(w_o * yh + b_o),
    );
    Ok(())
}

/// Where a function of 12.5's figure jumps: `(f, f')` ([`Curve::f_jumps`]).
type Jumps = (&'static [f64], &'static [f64]);
/// A jump at z = 0.
const AT_0: &[f64] = &[0.0];
/// No jump.
const NONE: &[f64] = &[];

fn section_12_5(out: &Path) -> Result<()> {
    heading("12.5 Activation functions and their derivatives");
    let z = Tensor::from_vec(vec![-2., -1., 0., 1., 2.], &[5])?;
    let leaky = Activation::LeakyRelu { a: 10.0 };
    let prelu = PRelu::new("prelu", &[], 0.25);
    let rrelu = RRelu::new(1.0 / 8.0, 1.0 / 3.0, 0)?;
    // (name, (f, f'), where f jumps, where f' jumps)
    type Row = (String, (Tensor, Tensor), Jumps);
    let table = |z: &Tensor| -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        for a in [
            Activation::Step,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Relu,
        ] {
            let name = if a == Activation::Sigmoid {
                "logistic".to_string()
            } else {
                a.name().to_string()
            };
            let jumps = match a {
                Activation::Step => (AT_0, NONE),
                Activation::Relu => (NONE, AT_0),
                _ => (NONE, NONE),
            };
            rows.push((name, (a.call(z)?, a.derivative(z)?), jumps));
        }
        rows.push((
            leaky.to_string(),
            (leaky.call(z)?, leaky.derivative(z)?),
            (NONE, AT_0),
        ));
        rows.push((
            "prelu (alpha=0.25)".into(),
            (prelu.call(z)?, prelu.derivative(z)?),
            (NONE, AT_0),
        ));
        let mut r = rrelu.clone();
        rows.push((
            format!("rrelu (test, slope {:.6})", r.inference_slope()),
            (r.call(z, false)?, r.derivative(z)?),
            (NONE, AT_0),
        ));
        Ok(rows)
    };
    let rows = table(&z)?;
    let width = rows
        .iter()
        .map(|r| r.0.len() + 2)
        .max()
        .unwrap_or(0)
        .max(32);
    print!("{:<width$}", "z");
    for v in z.to_vec() {
        print!("{v:>10}");
    }
    println!();
    for (name, (f, df), _) in rows {
        for (label, t) in [(name.clone(), f), (format!("{name}'"), df)] {
            print!("{label:<width$}");
            for v in t.to_vec() {
                print!("{v:>10.6}");
            }
            println!();
        }
    }
    println!(
        "(step' is 0 away from 0 and undefined at 0; the ReLU family takes the left derivative at 0, as TensorFlow does)"
    );

    let grid: Vec<f32> = (0..=200).map(|i| -4.0 + 8.0 * i as f32 / 200.0).collect();
    let zg = Tensor::from_vec(grid.clone(), &[grid.len()])?;
    let rows = table(&zg)?;
    let zs: Vec<f64> = grid.iter().map(|&v| f64::from(v)).collect();
    let values: Vec<(String, Vec<f64>, Vec<f64>, Jumps)> = rows
        .into_iter()
        .map(|(n, (f, df), jumps)| {
            (
                n,
                f.to_vec().into_iter().map(f64::from).collect(),
                df.to_vec().into_iter().map(f64::from).collect(),
                jumps,
            )
        })
        .collect();
    let curves: Vec<Curve<'_>> = values
        .iter()
        .map(|(n, f, df, (f_jumps, df_jumps))| Curve {
            name: n,
            z: &zs,
            f,
            df,
            f_jumps,
            df_jumps,
        })
        .collect();
    let png = out.join("12.5-activations.png");
    plot::curve_grid(
        &png,
        "Activation functions f(z) and their derivatives df/dz",
        &curves,
        4,
    )?;
    println!("figure: {}", png.display());
    Ok(())
}
