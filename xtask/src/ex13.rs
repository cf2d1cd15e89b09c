//! `cargo xtask reproduce ex13`: the exercise at the end of lecture 13
//! ("请使用低阶 API 分别实现随机梯度下降法和小批量梯度下降法": implement
//! stochastic and mini-batch gradient descent with the low-level API; give
//! the code, the experimental results and a short summary), measured on
//! real data, with the learning rates and optimisers of 13.2.
//!
//! Sections (`--section NAME`; all by default):
//! - `regression`: the lecture's one-variable linear regression (13.1) on
//!   Iris (petal length -> petal width, 150 rows) by BGD, SGD and MBGD with
//!   the tape, against the closed-form least-squares line;
//! - `schedules`: SGD on the same regression with each learning-rate
//!   schedule (fixed, exponential, step, piecewise, inverse-time, cyclical);
//! - `mnist`: the lecture's MNIST network (13.5) by BGD, SGD and MBGD,
//!   shuffled, not shuffled, and sorted by label; a schedule through
//!   `Sequential::compile`;
//! - `optimizers`: SGD, momentum, Nesterov, AdaGrad, RMSprop, AdaDelta and
//!   Adam on a 2-D function with a saddle point and a local minimum.
//!
//! Every number printed, and the summary at the end, is measured in this
//! run. `--epochs` and `--subset` shorten the MNIST section, `--seed` seeds
//! the shuffling and the MNIST weights.

mod plots;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hebb_autograd::{GradientTape, Variable};
use hebb_data::{DataDir, MiniBatches, load_iris};
use hebb_models::regression::{LinearRegression, Point, RegressionData, Trace};
use hebb_models::sequential::{Callback, Control, FitOptions};
use hebb_optim::schedules::{
    Constant, CyclicalLearningRate, CyclicalMode, ExponentialDecay, InverseTimeDecay,
    LearningRateSchedule, PiecewiseConstantDecay, Scheduled,
};
use hebb_optim::{Adadelta, Adagrad, Adam, Optimizer, RmsProp, Sgd};
use hebb_tensor::Tensor;

use crate::ReproduceArgs;
use crate::ch13::{heading, mnist_model, mnist_tensors};
use plots::{ContourPanel, Line, LinesPanel, Mark, PALETTE};

const SECTIONS: [&str; 4] = ["regression", "schedules", "mnist", "optimizers"];

/// The exercise's batch sizes; `None` is the whole training set (BGD).
const BATCH_SIZES: [Option<usize>; 7] = [
    Some(1),
    Some(8),
    Some(32),
    Some(64),
    Some(128),
    Some(256),
    None,
];

/// Epochs of each regression run: enough for BGD to reach the target.
const REGRESSION_EPOCHS: usize = 2000;
/// Epochs of BGD with `η = 1/λ_max` for the closed-form check.
const CLOSED_FORM_EPOCHS: usize = 3000;
/// The regression's target: within 1% of the least-squares loss.
const REGRESSION_TARGET: f64 = 1.01;
/// Epochs of each schedule run (SGD, 150 steps an epoch).
const SCHEDULE_EPOCHS: usize = 300;
/// Default MNIST training subset and epochs (`--subset`, `--epochs`).
const MNIST_SUBSET: usize = 10_000;
const MNIST_EPOCHS: usize = 5;
/// Keras SGD learning rate of the MNIST runs (the loss is a batch mean).
const MNIST_LR: f32 = 0.1;
/// The MNIST target: mean training cross-entropy.
const MNIST_TARGET: f64 = 0.35;
/// The rows of the MNIST table sorted by label (lecture 13.2: consecutive
/// samples are correlated) as well.
const SORTED_BATCH_SIZES: [usize; 2] = [1, 32];

/// Runs the requested sections and prints the summary.
pub(crate) fn run(args: &ReproduceArgs) -> Result<()> {
    if let Some(s) = &args.section
        && !SECTIONS.contains(&s.as_str())
    {
        bail!(
            "exercise 13 has no section {s:?}; sections: {}",
            SECTIONS.join(", ")
        );
    }
    let out = args.prepare_out_dir()?;
    let data_dir = DataDir::resolve(args.data_dir.as_deref());
    let mut summary = Vec::new();
    let mut figures = Vec::new();
    if args.wants("regression") || args.wants("schedules") {
        let (train, test) = load_iris(&data_dir)
            .with_context(|| format!("loading Iris from {}", data_dir.root().display()))?;
        let data = RegressionData::iris_petals(&[&train, &test])?;
        if args.wants("regression") {
            regression(args, &data, &out, &mut summary, &mut figures)?;
        }
        if args.wants("schedules") {
            schedules(args, &data, &out, &mut summary, &mut figures)?;
        }
    }
    if args.wants("mnist") {
        mnist(args, &data_dir, &out, &mut summary, &mut figures)?;
    }
    if args.wants("optimizers") {
        optimizers(&out, &mut summary, &mut figures)?;
    }
    heading("Summary (from the numbers above)");
    for line in &summary {
        println!("- {line}");
    }
    println!("\nFigures:");
    for f in &figures {
        println!("  {}", f.display());
    }
    Ok(())
}

/// `t` of a batch-size option for `n` samples.
fn batch_of(batch: Option<usize>, n: usize) -> usize {
    batch.unwrap_or(n).min(n).max(1)
}

/// `"SGD (t=1)"`, `"MBGD (t=32)"`, `"BGD (t=n=150)"`, `"BGD (t=256>=n)"`.
fn label(batch: Option<usize>, n: usize) -> String {
    match batch {
        None => format!("BGD (t=n={n})"),
        Some(t) if t >= n => format!("BGD (t={t}>=n)"),
        Some(1) => "SGD (t=1)".to_string(),
        Some(t) => format!("MBGD (t={t})"),
    }
}

/// At most `max` points of `points`, log-spaced in index (dense at the
/// start, where the curves change fastest), always keeping the last.
fn thin<T: Copy>(points: &[T], max: usize) -> Vec<T> {
    if points.len() <= max.max(2) {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(max + 1);
    let mut last = usize::MAX;
    let n = points.len() as f64;
    for k in 0..max {
        let i = ((n.powf(k as f64 / (max - 1) as f64)) - 1.0).round() as usize;
        let i = i.min(points.len() - 1);
        if i != last {
            out.push(points[i]);
            last = i;
        }
    }
    if last != points.len() - 1 {
        out.push(points[points.len() - 1]);
    }
    out
}

/// Evenly spaced, at most `max` points of `points` (keeps the last).
fn every<T: Copy>(points: &[T], max: usize) -> Vec<T> {
    let stride = points.len().div_ceil(max.max(1)).max(1);
    let mut out: Vec<T> = points.iter().step_by(stride).copied().collect();
    if points.len() > 1 && !(points.len() - 1).is_multiple_of(stride) {
        out.push(points[points.len() - 1]);
    }
    out
}

/// `v` as a percentage with 3 significant digits: `0.289%`, `48.1%`.
fn pct(v: f64) -> String {
    format!("{}%", sig(100.0 * v))
}

/// `1 epoch`, `5 epochs`.
fn epochs_word(n: usize) -> String {
    if n == 1 {
        "1 epoch".to_string()
    } else {
        format!("{n} epochs")
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A number in 3 significant digits, plain or in exponent form.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

// ---------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------

/// A path drawn on the regression's contours: batch size, name, colour
/// (palette index), the epochs shown, line width.
type PathChoice<'a> = (Option<usize>, &'a str, usize, std::ops::Range<usize>, u32);

/// One BGD/SGD/MBGD run on the regression.
struct RegressionRun {
    batch: Option<usize>,
    shuffle: bool,
    eta: f32,
    steps_per_epoch: usize,
    trace: Trace,
}

impl RegressionRun {
    fn first_below(&self, target: f64) -> Option<&Point> {
        self.trace.first_epoch_below(target)
    }

    fn last(&self) -> &Point {
        self.trace.epochs.last().unwrap_or(&self.trace.epochs[0])
    }

    /// Epochs among the last `k` whose loss was higher than the epoch before.
    fn rises(&self, k: usize) -> usize {
        let e = &self.trace.epochs;
        let from = e.len().saturating_sub(k + 1);
        e[from..]
            .windows(2)
            .filter(|p| p[1].loss > p[0].loss)
            .count()
    }
}

fn fit_regression(
    data: &RegressionData,
    t: usize,
    shuffle: Option<u64>,
    optimizer: &mut dyn Optimizer,
    epochs: usize,
) -> Result<Trace> {
    let mut batches = MiniBatches::new(data.len(), t)?;
    if let Some(seed) = shuffle {
        batches = batches.with_shuffle(seed);
    }
    let mut model = LinearRegression::new(0.0, 0.0);
    Ok(model.fit(data, &mut batches, optimizer, epochs, true)?)
}

fn regression(
    args: &ReproduceArgs,
    data: &RegressionData,
    out: &Path,
    summary: &mut Vec<String>,
    figures: &mut Vec<PathBuf>,
) -> Result<()> {
    heading("ex13 regression: Iris petal length -> petal width, all 150 rows (lecture 13.1)");
    let n = data.len();
    let exact = data.least_squares()?;
    let (l_min, l_max) = data.hessian_eigenvalues();
    println!(
        "model y = w x + b; loss = 1/2 sum (y_i - (w x_i + b))^2 over a batch; update w <- w - eta sum x_i (w x_i + b - y_i), b <- b - eta sum (w x_i + b - y_i)"
    );
    println!(
        "closed form (least squares): w* = {:.6}, b* = {:.6}, loss* = {:.6} (over all {n} rows)",
        exact.w, exact.b, exact.loss
    );
    println!(
        "Hessian of the loss over all rows: eigenvalues {} and {} (condition number {}); BGD is stable for eta < 2/lambda_max = {}",
        sig(l_min),
        sig(l_max),
        sig(l_max / l_min),
        sig(2.0 / l_max)
    );

    // The closed-form check: BGD through the tape with eta = 1/lambda_max.
    let eta_bgd = (1.0 / l_max) as f32;
    let mut model = LinearRegression::new(0.0, 0.0);
    let mut bgd = MiniBatches::full(n);
    let start = Instant::now();
    model.fit(
        data,
        &mut bgd,
        &mut Sgd::new(eta_bgd),
        CLOSED_FORM_EPOCHS,
        false,
    )?;
    let secs = start.elapsed().as_secs_f64();
    let (dw, db) = (model.w() - exact.w, model.b() - exact.b);
    let reached = dw.abs() < 1e-4 && db.abs() < 1e-4;
    println!(
        "BGD with eta = 1/lambda_max = {}, {CLOSED_FORM_EPOCHS} epochs ({:.3} s): w = {:.6}, b = {:.6}; |w - w*| = {:.1e}, |b - b*| = {:.1e}: closed form reached within 1e-4: {}",
        sig(f64::from(eta_bgd)),
        secs,
        model.w(),
        model.b(),
        dw.abs(),
        db.abs(),
        yes_no(reached)
    );
    summary.push(format!(
        "Regression: BGD through the tape reached the closed-form least-squares line (w* = {:.4}, b* = {:.4}) to |dw| = {:.1e}, |db| = {:.1e} ({}within 1e-4).",
        exact.w,
        exact.b,
        dw.abs(),
        db.abs(),
        if reached { "" } else { "NOT " }
    ));

    // The table: eta = eta0 / t, eta0 = 1 / max(x^2 + 1).
    let eta0 = 1.0
        / data
            .x()
            .as_slice()
            .iter()
            .map(|&x| f64::from(x * x) + 1.0)
            .fold(0.0, f64::max);
    let target = exact.loss * REGRESSION_TARGET;
    println!(
        "\nBGD / SGD / MBGD, {REGRESSION_EPOCHS} epochs each from w = b = 0, eta = eta0 / t with eta0 = 1/max(x_i^2 + 1) = {} (half SGD's stability limit: every batch size takes the same step per sample's gradient); target: loss <= {} (1% above loss*)",
        sig(eta0),
        sig(target)
    );
    let seed = u64::from(args.seed);
    let mut runs = Vec::new();
    for shuffle in [true, false] {
        for batch in BATCH_SIZES {
            let t = batch_of(batch, n);
            let eta = (eta0 / t as f64) as f32;
            let trace = fit_regression(
                data,
                t,
                shuffle.then_some(seed),
                &mut Sgd::new(eta),
                REGRESSION_EPOCHS,
            )?;
            runs.push(RegressionRun {
                batch,
                shuffle,
                eta,
                steps_per_epoch: n.div_ceil(t),
                trace,
            });
        }
    }
    let mut table = String::new();
    writeln!(
        table,
        "{:<16} {:>9} {:>8} {:>6} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "variant",
        "eta",
        "shuffled",
        "steps",
        "epochs->1%",
        "s->1%",
        "final loss",
        "excess",
        "|w-w*|",
        "|b-b*|",
        "ms/epoch",
        "rises"
    )?;
    for r in &runs {
        let hit = r.first_below(target);
        let last = r.last();
        writeln!(
            table,
            "{:<16} {:>9} {:>8} {:>6} {:>10} {:>9} {:>10.6} {:>9} {:>9.1e} {:>9.1e} {:>9.3} {:>8}",
            label(r.batch, n),
            format!("{:.3e}", r.eta),
            yes_no(r.shuffle),
            r.steps_per_epoch,
            hit.map_or("-".into(), |p| p.epoch.to_string()),
            hit.map_or("-".into(), |p| format!("{:.4}", p.seconds)),
            last.loss,
            pct(last.loss / exact.loss - 1.0),
            (last.w - exact.w).abs(),
            (last.b - exact.b).abs(),
            1e3 * last.seconds / last.epoch.max(1) as f64,
            r.rises(100),
        )?;
    }
    print!("{table}");
    println!(
        "(steps: updates per epoch; epochs->1% and s->1%: first epoch, and training seconds, at whose end the loss is within 1% of loss*; excess: final loss / loss* - 1; rises: epochs among the last 100 whose loss went up. All {n} rows are training data: there is no test loss, and no accuracy for a regression.)"
    );
    write_csv(
        &out.join("ex13-regression.csv"),
        "variant,t,eta,shuffled,steps_per_epoch,epochs_to_target,seconds_to_target,final_loss,w,b",
        runs.iter().map(|r| {
            let hit = r.first_below(target);
            let last = r.last();
            format!(
                "{},{},{},{},{},{},{},{},{},{}",
                label(r.batch, n),
                batch_of(r.batch, n),
                r.eta,
                r.shuffle,
                r.steps_per_epoch,
                hit.map_or(String::new(), |p| p.epoch.to_string()),
                hit.map_or(String::new(), |p| p.seconds.to_string()),
                last.loss,
                last.w,
                last.b
            )
        }),
    )?;

    // Summary, from the shuffled runs.
    let shuffled: Vec<&RegressionRun> = runs.iter().filter(|r| r.shuffle).collect();
    let by_epoch = shuffled
        .iter()
        .filter_map(|r| r.first_below(target).map(|p| (r, p)))
        .min_by(|a, b| {
            (a.1.epoch, a.1.seconds)
                .partial_cmp(&(b.1.epoch, b.1.seconds))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    let mut by_second: Vec<(&RegressionRun, &Point)> = shuffled
        .iter()
        .filter(|r| r.batch != Some(256) || 256 < n)
        .filter_map(|r| r.first_below(target).map(|p| (*r, p)))
        .collect();
    by_second.sort_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds));
    let find = |batch: Option<usize>, shuffle: bool| {
        runs.iter()
            .find(|r| r.batch == batch && r.shuffle == shuffle)
    };
    if let (Some((fe, pe)), Some((fs, ps))) = (by_epoch, by_second.first()) {
        let bgd = find(None, true).and_then(|r| r.first_below(target));
        let others: Vec<String> = by_second[1..]
            .iter()
            .take(3)
            .map(|(r, p)| format!("{} {:.2} ms", label(r.batch, n), 1e3 * p.seconds))
            .collect();
        summary.push(format!(
            "Regression, per epoch: {} reached the target (loss within 1% of the minimum) first, after {}; BGD needed {}. Per second of training: {} was fastest, {:.2} ms ({} steps of {} samples), then {} (times this short vary by some 10-30% from run to run).",
            label(fe.batch, n),
            epochs_word(pe.epoch),
            bgd.map_or(format!("more than {REGRESSION_EPOCHS} epochs"), |p| format!("{} ({:.2} ms)", epochs_word(p.epoch), 1e3 * p.seconds)),
            label(fs.batch, n),
            1e3 * ps.seconds,
            ps.step,
            batch_of(fs.batch, n),
            others.join(", "),
        ));
    }
    if let (Some(sgd), Some(bgd)) = (find(Some(1), true), find(None, true)) {
        let e = &sgd.trace.epochs;
        let tail = &e[e.len().saturating_sub(100)..];
        let (lo, hi) = tail.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.loss), hi.max(p.loss))
        });
        summary.push(format!(
            "SGD with a fixed rate oscillated around the minimum: over its last 100 epochs the loss rose in {} of them and ranged {} to {} above the minimum, ending {:.1e} from w*; BGD's loss rose in {} of its last 100 epochs and ended {:.1e} from w*.",
            sgd.rises(100),
            pct(lo / exact.loss - 1.0),
            pct(hi / exact.loss - 1.0),
            (sgd.last().w - exact.w).abs(),
            bgd.rises(100),
            (bgd.last().w - exact.w).abs(),
        ));
    }
    let mut shuffle_notes = Vec::new();
    for batch in [Some(1), Some(8), Some(32)] {
        if let (Some(a), Some(b)) = (find(batch, true), find(batch, false)) {
            shuffle_notes.push(format!(
                "{}: epochs to the target {} vs {}, final excess {} vs {}, loss rose in {} vs {} of the last 100 epochs",
                label(batch, n),
                a.first_below(target)
                    .map_or("-".into(), |p| p.epoch.to_string()),
                b.first_below(target)
                    .map_or("never".into(), |p| p.epoch.to_string()),
                pct(a.last().loss / exact.loss - 1.0),
                pct(b.last().loss / exact.loss - 1.0),
                a.rises(100),
                b.rises(100),
            ));
        }
    }
    summary.push(format!(
        "Regression, shuffled vs in file order (the same order every epoch, so SGD repeats one cycle and its loss at each epoch's end stops changing): {}.",
        shuffle_notes.join("; ")
    ));

    // Figures.
    let plotted: Vec<(usize, &RegressionRun)> = shuffled
        .iter()
        .copied()
        .filter(|r| r.batch != Some(256) || 256 < n)
        .enumerate()
        .collect();
    let excess = |p: &Point| p.loss / exact.loss - 1.0;
    let lines = |x: &dyn Fn(&Point) -> f64| -> Vec<Line> {
        plotted
            .iter()
            .map(|&(i, r)| Line {
                label: label(r.batch, n),
                color: PALETTE[i % PALETTE.len()],
                dashed: false,
                width: 2,
                points: thin(&r.trace.epochs[1..], 400)
                    .iter()
                    .map(|p| (x(p), excess(p)))
                    .collect(),
            })
            .collect()
    };
    let by_epoch = lines(&|p| p.epoch as f64);
    let by_time = lines(&|p| p.seconds);
    // Per sample seen, after every step: SGD's first epoch is 150 steps.
    let by_samples: Vec<Line> = plotted
        .iter()
        .map(|&(i, r)| Line {
            label: label(r.batch, n),
            color: PALETTE[i % PALETTE.len()],
            dashed: false,
            width: 2,
            points: thin(&r.trace.steps[1..], 600)
                .iter()
                .map(|p| (p.samples as f64, excess(p)))
                .collect(),
        })
        .collect();
    let path = out.join("ex13-regression-loss.png");
    plots::lines_panels(
        &path,
        "Regression on Iris: loss above the least-squares minimum (samples shuffled every epoch)",
        &[
            LinesPanel {
                title: "per epoch",
                x_label: "epoch",
                y_label: "loss / loss* - 1",
                lines: &by_epoch,
                legend: true,
                log_x: true,
                y_floor: Some(1e-6),
                x_integer: false,
            },
            LinesPanel {
                title: "per second of training",
                x_label: "seconds",
                y_label: "loss / loss* - 1",
                lines: &by_time,
                legend: false,
                log_x: true,
                y_floor: Some(1e-6),
                x_integer: false,
            },
            LinesPanel {
                title: "per sample seen (after every step)",
                x_label: "samples (gradients computed)",
                y_label: "loss / loss* - 1",
                lines: &by_samples,
                legend: false,
                log_x: true,
                y_floor: Some(1e-6),
                x_integer: false,
            },
        ],
    )?;
    figures.push(path);

    // (w, b) paths over the loss contours: (batch, name, colour, epochs shown, width).
    let e = REGRESSION_EPOCHS;
    let path_lines = |chosen: &[PathChoice<'_>]| {
        chosen
            .iter()
            .filter_map(|(batch, name, color, epochs, width)| {
                let r = find(*batch, true)?;
                let steps: Vec<(f64, f64)> = r
                    .trace
                    .steps
                    .iter()
                    .filter(|p| epochs.contains(&p.epoch))
                    .map(|p| (p.w, p.b))
                    .collect();
                Some(Line {
                    label: format!("{name}, epochs {}-{}", epochs.start + 1, epochs.end),
                    color: PALETTE[*color],
                    dashed: false,
                    width: *width,
                    points: every(&steps, 3000),
                })
            })
            .collect::<Vec<Line>>()
    };
    let whole = path_lines(&[
        (Some(32), "MBGD (t=32)", 2, 0..e, 5),
        (None, "BGD", 0, 0..e, 2),
        (Some(1), "SGD (t=1)", 3, 0..10, 1),
    ]);
    let near = path_lines(&[
        (Some(32), "MBGD (t=32)", 2, e - 20..e, 3),
        (None, "BGD", 0, 0..e, 2),
        (Some(1), "SGD (t=1)", 3, e - 2..e, 1),
    ]);
    // The zoomed box: around the minimum, wide enough for SGD's last epochs.
    let (dw, db) = near
        .iter()
        .filter(|l| !l.label.starts_with("BGD"))
        .flat_map(|l| l.points.iter())
        .filter(|p| (p.0 - exact.w).abs() < 0.2 && (p.1 - exact.b).abs() < 1.0)
        .fold((0.002f64, 0.01f64), |(dw, db), p| {
            (dw.max((p.0 - exact.w).abs()), db.max((p.1 - exact.b).abs()))
        });
    let (dw, db) = (dw * 1.1, db * 1.1);
    let loss = |w: f64, b: f64| data.loss(w, b);
    let levels: Vec<f64> = [1.002, 1.01, 1.05, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0]
        .iter()
        .map(|k| k * exact.loss)
        .collect();
    // Near the minimum the loss is quadratic: levels equally spaced in
    // sqrt(loss - loss*) are equally spaced ellipses (log-spaced ones crowd
    // into a band around the minimum), the outermost through the box's corners.
    let (near_w, near_b) = (
        (exact.w - dw)..(exact.w + dw),
        (exact.b - db)..(exact.b + db),
    );
    let corner = [near_w.start, near_w.end]
        .into_iter()
        .flat_map(|w| [near_b.start, near_b.end].map(|b| loss(w, b)))
        .fold(exact.loss, f64::max);
    let near_levels = plots::sqrt_levels(exact.loss, corner, 12);
    let marks = [Mark {
        at: (exact.w, exact.b),
        label: "least squares",
    }];
    let path = out.join("ex13-regression-paths.png");
    plots::contour_panels(
        &path,
        "(w, b) of BGD, SGD and MBGD over the contour lines of the loss (eta = eta0/t, shuffled)",
        (1400, 620),
        &[
            ContourPanel {
                title: "from (0, 0): down the valley, then along it",
                x_label: "w",
                y_label: "b",
                x_range: -0.05..0.75,
                y_range: (exact.b - 0.9)..0.3,
                f: &loss,
                levels,
                paths: &whole,
                marks: &marks,
            },
            ContourPanel {
                title: "near the minimum, the last epochs: SGD keeps jumping",
                x_label: "w",
                y_label: "b",
                x_range: near_w,
                y_range: near_b,
                f: &loss,
                levels: near_levels,
                paths: &near,
                marks: &marks,
            },
        ],
    )?;
    figures.push(path);
    Ok(())
}

fn write_csv(path: &Path, header: &str, rows: impl Iterator<Item = String>) -> Result<()> {
    let mut text = format!("{header}\n");
    for row in rows {
        text.push_str(&row);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Learning-rate schedules
// ---------------------------------------------------------------------------

fn schedules(
    args: &ReproduceArgs,
    data: &RegressionData,
    out: &Path,
    summary: &mut Vec<String>,
    figures: &mut Vec<PathBuf>,
) -> Result<()> {
    heading(
        "ex13 schedules: SGD (t=1, shuffled) on the regression with each learning-rate schedule (lecture 13.2)",
    );
    let n = data.len() as u64;
    let exact = data.least_squares()?;
    let eta0 = 1.0
        / data
            .x()
            .as_slice()
            .iter()
            .map(|&x| f64::from(x * x) + 1.0)
            .fold(0.0, f64::max);
    let epoch = n; // steps per epoch
    let schedules: Vec<(&str, Box<dyn LearningRateSchedule>)> = vec![
        ("fixed", Box::new(Constant::new(eta0 as f32)?)),
        (
            "exponential (x0.5 / 50 ep)",
            Box::new(ExponentialDecay::new(eta0, 50 * epoch, 0.5, false)?),
        ),
        (
            "step (x0.5 every 50 ep)",
            Box::new(ExponentialDecay::new(eta0, 50 * epoch, 0.5, true)?),
        ),
        (
            "piecewise (/10 at 100, 200 ep)",
            Box::new(PiecewiseConstantDecay::new(
                vec![100 * epoch, 200 * epoch],
                vec![eta0 as f32, (eta0 / 10.0) as f32, (eta0 / 100.0) as f32],
            )?),
        ),
        (
            "inverse time (1/(1+0.1 ep))",
            Box::new(InverseTimeDecay::new(eta0, epoch, 0.1, false)?),
        ),
        (
            "cyclical (triangular2, 20 ep)",
            Box::new(CyclicalLearningRate::new(
                eta0 / 20.0,
                eta0,
                10 * epoch,
                CyclicalMode::Triangular2,
            )?),
        ),
    ];
    println!(
        "{SCHEDULE_EPOCHS} epochs of {n} steps from w = b = 0, shuffled with seed {}; eta0 = {}",
        args.seed,
        sig(eta0)
    );
    println!(
        "{:<32} {:>10} {:>12} {:>12} {:>10} {:>10}",
        "schedule", "final eta", "final excess", "mean excess", "|w-w*|", "|b-b*|"
    );
    let mut results = Vec::new();
    let mut rate_lines = Vec::new();
    let mut loss_lines = Vec::new();
    for (i, (name, schedule)) in schedules.into_iter().enumerate() {
        let rates: Vec<(f64, f64)> = every(
            &(1..=SCHEDULE_EPOCHS as u64 * epoch).collect::<Vec<u64>>(),
            2000,
        )
        .iter()
        .map(|&s| {
            (
                s as f64 / epoch as f64,
                f64::from(schedule.learning_rate(s - 1)),
            )
        })
        .collect();
        let final_eta = schedule.learning_rate(SCHEDULE_EPOCHS as u64 * epoch - 1);
        let mut sgd = Scheduled::from_boxed(Box::new(Sgd::new(0.0)), schedule);
        let trace = fit_regression(
            data,
            1,
            Some(u64::from(args.seed)),
            &mut sgd,
            SCHEDULE_EPOCHS,
        )?;
        let last = *trace.epochs.last().unwrap_or(&trace.epochs[0]);
        let tail = &trace.epochs[trace.epochs.len().saturating_sub(50)..];
        let mean_excess =
            tail.iter().map(|p| p.loss / exact.loss - 1.0).sum::<f64>() / tail.len() as f64;
        println!(
            "{:<32} {:>10.3e} {:>12} {:>12} {:>10.1e} {:>10.1e}",
            name,
            final_eta,
            pct(last.loss / exact.loss - 1.0),
            pct(mean_excess),
            (last.w - exact.w).abs(),
            (last.b - exact.b).abs()
        );
        let color = PALETTE[i % PALETTE.len()];
        rate_lines.push(Line {
            label: name.to_string(),
            color,
            dashed: false,
            width: 2,
            points: rates,
        });
        // The mean loss over each epoch's steps: SGD's loss jumps from step to step.
        let mut per_epoch = vec![(0.0f64, 0usize); SCHEDULE_EPOCHS];
        for p in trace.steps.iter().skip(1) {
            if let Some(slot) = per_epoch.get_mut(p.epoch) {
                slot.0 += p.loss / exact.loss - 1.0;
                slot.1 += 1;
            }
        }
        loss_lines.push(Line {
            label: name.to_string(),
            color,
            dashed: false,
            width: 2,
            points: per_epoch
                .iter()
                .enumerate()
                .filter(|(_, s)| s.1 > 0)
                .map(|(e, s)| ((e + 1) as f64, s.0 / s.1 as f64))
                .collect(),
        });
        results.push((name, mean_excess, last));
    }
    println!("(excess: loss / loss* - 1; mean excess: over the last 50 epochs)");
    let fixed = results.iter().find(|r| r.0 == "fixed");
    let best = results.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(fixed), Some(best)) = (fixed, best) {
        summary.push(format!(
            "Schedules: with a fixed rate SGD's loss stayed {} above the minimum on average over the last 50 of {SCHEDULE_EPOCHS} epochs; the {} schedule brought that to {} (|w - w*| {:.1e} instead of {:.1e}).",
            pct(fixed.1),
            best.0,
            pct(best.1),
            (best.2.w - exact.w).abs(),
            (fixed.2.w - exact.w).abs(),
        ));
    }
    let path = out.join("ex13-schedules.png");
    plots::lines_panels(
        &path,
        "Learning-rate schedules: SGD (t=1) on the Iris regression",
        &[
            LinesPanel {
                title: "learning rate",
                x_label: "epoch",
                y_label: "eta",
                lines: &rate_lines,
                legend: true,
                log_x: false,
                y_floor: None,
                x_integer: false,
            },
            LinesPanel {
                title: "loss above the minimum, mean over each epoch's steps",
                x_label: "epoch",
                y_label: "loss / loss* - 1",
                lines: &loss_lines,
                legend: false,
                log_x: false,
                y_floor: Some(1e-6),
                x_integer: false,
            },
        ],
    )?;
    figures.push(path);
    Ok(())
}

// ---------------------------------------------------------------------------
// MNIST
// ---------------------------------------------------------------------------

/// The figures of one MNIST epoch (after it).
#[derive(Debug, Clone, Copy)]
struct MnistEpoch {
    epoch: usize,
    seconds: f64,
    loss: f64,
    accuracy: f64,
}

struct MnistRun {
    name: String,
    batch: Option<usize>,
    order: &'static str,
    epochs: Vec<MnistEpoch>,
    /// `(samples seen, mean batch loss)` over windows of about `n / 20`
    /// samples, from the loss of every batch (before its update).
    running: Vec<(f64, f64)>,
    test: Option<(f64, f64)>,
    diverged: Option<String>,
}

impl MnistRun {
    fn first_below(&self, target: f64) -> Option<&MnistEpoch> {
        self.epochs.iter().skip(1).find(|e| e.loss <= target)
    }

    fn last(&self) -> &MnistEpoch {
        &self.epochs[self.epochs.len() - 1]
    }
}

/// Records the size and loss of every batch of a `fit` (Keras'
/// `on_train_batch_end` logs), for the loss per sample seen.
struct BatchLosses {
    t: usize,
    n: usize,
    out: Arc<Mutex<Vec<(usize, f32)>>>,
}

impl Callback for BatchLosses {
    fn on_batch_end(
        &mut self,
        _epoch: usize,
        batch: usize,
        loss: f32,
    ) -> hebb_models::Result<Control> {
        let size = self.t.min(self.n.saturating_sub(batch * self.t));
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((size, loss));
        Ok(Control::Continue)
    }
}

/// Mean batch losses over windows of at least `window` samples, at the
/// number of samples seen at each window's end.
fn windowed(batches: &[(usize, f32)], window: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let (mut seen, mut sum, mut count) = (0usize, 0.0f64, 0usize);
    for &(size, loss) in batches {
        seen += size;
        sum += f64::from(loss) * size as f64;
        count += size;
        if count >= window {
            out.push((seen as f64, sum / count as f64));
            (sum, count) = (0.0, 0);
        }
    }
    if count > 0 {
        out.push((seen as f64, sum / count as f64));
    }
    out
}

struct MnistSetup<'a> {
    x: &'a Tensor,
    y: &'a Tensor,
    x_test: &'a Tensor,
    y_test: &'a Tensor,
    seed: u64,
    epochs: usize,
}

fn mnist_run(
    s: &MnistSetup<'_>,
    name: String,
    batch: Option<usize>,
    order: &'static str,
    optimizer: Box<dyn Optimizer>,
) -> Result<MnistRun> {
    let n = s.x.shape()[0];
    let t = batch_of(batch, n);
    let mut model = mnist_model(s.seed)?;
    model.compile(
        optimizer,
        "sparse_categorical_crossentropy",
        vec!["sparse_categorical_accuracy"],
    )?;
    let evaluate = |m: &mut hebb_models::sequential::Sequential, x, y| -> Result<(f64, f64)> {
        let v = m.evaluate(x, y, 1000, 0)?;
        Ok((f64::from(v[0]), f64::from(v[1])))
    };
    let (loss, accuracy) = evaluate(&mut model, s.x, s.y)?;
    let mut run = MnistRun {
        name,
        batch,
        order,
        epochs: vec![MnistEpoch {
            epoch: 0,
            seconds: 0.0,
            loss,
            accuracy,
        }],
        running: Vec::new(),
        test: None,
        diverged: None,
    };
    let batches = Arc::new(Mutex::new(Vec::new()));
    let mut seconds = 0.0;
    for epoch in 0..s.epochs {
        let start = Instant::now();
        let fit = model.fit(
            s.x,
            s.y,
            FitOptions {
                batch_size: t,
                epochs: epoch + 1,
                initial_epoch: epoch,
                verbose: 0,
                shuffle: order == "shuffled",
                seed: s.seed,
                callbacks: vec![Box::new(BatchLosses {
                    t,
                    n,
                    out: Arc::clone(&batches),
                })],
                ..Default::default()
            },
        );
        seconds += start.elapsed().as_secs_f64();
        match fit {
            Ok(_) => {}
            Err(e @ hebb_models::Error::NonFiniteBatchLoss { .. }) => {
                run.diverged = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        }
        let (loss, accuracy) = evaluate(&mut model, s.x, s.y)?;
        run.epochs.push(MnistEpoch {
            epoch: epoch + 1,
            seconds,
            loss,
            accuracy,
        });
    }
    if run.diverged.is_none() {
        run.test = Some(evaluate(&mut model, s.x_test, s.y_test)?);
    }
    let batches = batches.lock().unwrap_or_else(|e| e.into_inner());
    run.running = windowed(&batches, (n / 20).max(1));
    Ok(run)
}

fn mnist(
    args: &ReproduceArgs,
    data_dir: &DataDir,
    out: &Path,
    summary: &mut Vec<String>,
    figures: &mut Vec<PathBuf>,
) -> Result<()> {
    heading("ex13 mnist: the lecture's MNIST network (13.5) by BGD, SGD and MBGD");
    let data = hebb_data::mnist::load_data(data_dir)
        .with_context(|| format!("loading MNIST from {}", data_dir.root().display()))?;
    let (x_all, y_all) = mnist_tensors(&data.x_train, &data.y_train)?;
    let (x_test, y_test) = mnist_tensors(&data.x_test, &data.y_test)?;
    let n = args.subset.unwrap_or(MNIST_SUBSET).min(x_all.shape()[0]);
    let rows: Vec<usize> = (0..n).collect();
    let (x, y) = (x_all.gather_rows(&rows)?, y_all.gather_rows(&rows)?);
    let epochs = args.epochs.unwrap_or(MNIST_EPOCHS);
    let mut sorted_rows = rows.clone();
    let labels = y.as_slice().to_vec();
    sorted_rows.sort_by(|&a, &b| labels[a].total_cmp(&labels[b]));
    let (x_sorted, y_sorted) = (x.gather_rows(&sorted_rows)?, y.gather_rows(&sorted_rows)?);
    println!(
        "Flatten(28, 28) - Dense(128, relu) - Dense(10, softmax), sparse categorical cross-entropy (mean over the batch), SGD(learning_rate={MNIST_LR}) for every batch size; the first {n} training images, {epochs} epochs, the same initial weights (seed {}); losses after each epoch on all {n} training images; target: training loss <= {MNIST_TARGET}",
        args.seed
    );
    let seed = u64::from(args.seed);
    let setup = MnistSetup {
        x: &x,
        y: &y,
        x_test: &x_test,
        y_test: &y_test,
        seed,
        epochs,
    };
    let sorted = MnistSetup {
        x: &x_sorted,
        y: &y_sorted,
        ..setup
    };
    let sgd = || -> Box<dyn Optimizer> { Box::new(Sgd::new(MNIST_LR)) };
    let mut runs = Vec::new();
    for (order, s) in [("shuffled", &setup), ("file order", &setup)] {
        for batch in BATCH_SIZES {
            runs.push(mnist_run(s, label(batch, n), batch, order, sgd())?);
        }
    }
    for t in SORTED_BATCH_SIZES {
        runs.push(mnist_run(
            &sorted,
            label(Some(t), n),
            Some(t),
            "by label",
            sgd(),
        )?);
    }
    // A schedule through Sequential::compile.
    let steps_per_epoch = n.div_ceil(32) as u64;
    let decayed: Box<dyn Optimizer> = Box::new(Scheduled::new(
        Sgd::new(MNIST_LR),
        ExponentialDecay::new(f64::from(MNIST_LR) * 2.0, steps_per_epoch, 0.6, false)?,
    ));
    runs.push(mnist_run(
        &setup,
        "MBGD (t=32), exp. decay".to_string(),
        Some(32),
        "shuffled",
        decayed,
    )?);

    println!(
        "{:<26} {:>10} {:>6} {:>10} {:>8} {:>10} {:>9} {:>10} {:>9} {:>9}",
        "variant",
        "order",
        "steps",
        "epochs->T",
        "s->T",
        "train loss",
        "train acc",
        "test loss",
        "test acc",
        "s/epoch"
    );
    for r in &runs {
        let hit = r.first_below(MNIST_TARGET);
        let last = r.last();
        let (test_loss, test_acc) = r.test.map_or(("-".into(), "-".into()), |(l, a)| {
            (format!("{l:.4}"), format!("{a:.4}"))
        });
        println!(
            "{:<26} {:>10} {:>6} {:>10} {:>8} {:>10.4} {:>9.4} {:>10} {:>9} {:>9.3}{}",
            r.name,
            r.order,
            n.div_ceil(batch_of(r.batch, n)),
            hit.map_or("-".into(), |e| e.epoch.to_string()),
            hit.map_or("-".into(), |e| format!("{:.2}", e.seconds)),
            last.loss,
            last.accuracy,
            test_loss,
            test_acc,
            last.seconds / last.epoch.max(1) as f64,
            r.diverged
                .as_ref()
                .map_or(String::new(), |d| format!("  diverged: {d}"))
        );
    }
    println!(
        "(steps: updates per epoch; epochs->T, s->T: first epoch, and training seconds, after which the training loss is <= {MNIST_TARGET}; order: reshuffled every epoch, the file's order, or sorted by label; the last row decays the rate from {:.2} by x0.6 per epoch through Sequential::compile with a Scheduled optimiser; {} threads)",
        f64::from(MNIST_LR) * 2.0,
        rayon::current_num_threads()
    );
    write_csv(
        &out.join("ex13-mnist.csv"),
        "variant,order,t,epochs_to_target,seconds_to_target,train_loss,train_accuracy,test_loss,test_accuracy,seconds",
        runs.iter().map(|r| {
            let hit = r.first_below(MNIST_TARGET);
            let last = r.last();
            format!(
                "{},{},{},{},{},{},{},{},{},{}",
                r.name,
                r.order,
                batch_of(r.batch, n),
                hit.map_or(String::new(), |e| e.epoch.to_string()),
                hit.map_or(String::new(), |e| e.seconds.to_string()),
                last.loss,
                last.accuracy,
                r.test.map_or(String::new(), |t| t.0.to_string()),
                r.test.map_or(String::new(), |t| t.1.to_string()),
                last.seconds
            )
        }),
    )?;

    // Summary.
    let plain: Vec<&MnistRun> = runs
        .iter()
        .filter(|r| r.order == "shuffled" && !r.name.contains("decay"))
        .collect();
    let reached: Vec<(&MnistRun, &MnistEpoch)> = plain
        .iter()
        .filter_map(|r| r.first_below(MNIST_TARGET).map(|e| (*r, e)))
        .collect();
    let fastest_epoch = reached.iter().min_by(|a, b| {
        (a.1.epoch, a.1.seconds)
            .partial_cmp(&(b.1.epoch, b.1.seconds))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let fastest_second = reached
        .iter()
        .min_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds));
    match (fastest_epoch, fastest_second) {
        (Some((re, ee)), Some((rs, es))) => summary.push(format!(
            "MNIST ({n} images, lr {MNIST_LR}): per epoch {} reached training loss {MNIST_TARGET} first (epoch {}); per second {} was fastest ({:.2} s). {} of the {} shuffled batch sizes reached it within {}.",
            re.name,
            ee.epoch,
            rs.name,
            es.seconds,
            reached.len(),
            plain.len(),
            epochs_word(epochs)
        )),
        _ => summary.push(format!(
            "MNIST ({n} images, {}): no batch size reached training loss {MNIST_TARGET}.",
            epochs_word(epochs)
        )),
    }
    if let Some(best) = plain.iter().filter(|r| r.test.is_some()).max_by(|a, b| {
        a.test
            .map(|t| t.1)
            .unwrap_or(0.0)
            .total_cmp(&b.test.map(|t| t.1).unwrap_or(0.0))
    }) && let Some(bgd) = plain.iter().find(|r| r.batch.is_none())
    {
        summary.push(format!(
            "MNIST after {}: best test accuracy {:.4} with {}; BGD, one step per epoch, was still at training loss {:.3} (from {:.3}) and test accuracy {}.",
            epochs_word(epochs),
            best.test.map_or(0.0, |t| t.1),
            best.name,
            bgd.last().loss,
            bgd.epochs[0].loss,
            bgd.test.map_or("-".to_string(), |t| format!("{:.4}", t.1)),
        ));
    }
    let by_label: Vec<String> = runs
        .iter()
        .filter(|r| r.order == "by label")
        .filter_map(|r| {
            let shuffled = plain.iter().find(|p| p.batch == r.batch)?;
            Some(format!(
                "{}: test accuracy {} sorted by label vs {} shuffled",
                r.name,
                r.test
                    .map_or("- (diverged)".to_string(), |t| format!("{:.4}", t.1)),
                shuffled
                    .test
                    .map_or("-".to_string(), |t| format!("{:.4}", t.1)),
            ))
        })
        .collect();
    let file_order: Vec<String> = runs
        .iter()
        .filter(|r| r.order == "file order" && matches!(r.batch, Some(1) | Some(32)))
        .filter_map(|r| {
            let shuffled = plain.iter().find(|p| p.batch == r.batch)?;
            Some(format!(
                "{}: {:.4} in file order vs {:.4} shuffled",
                r.name,
                r.last().loss,
                shuffled.last().loss
            ))
        })
        .collect();
    summary.push(format!(
        "MNIST, order of the samples: training loss {}; {}.",
        file_order.join(", "),
        by_label.join("; ")
    ));
    if let (Some(decay), Some(constant)) = (
        runs.iter().find(|r| r.name.contains("decay")),
        plain.iter().find(|r| r.batch == Some(32)),
    ) {
        summary.push(format!(
            "MNIST with an exponentially decaying rate (through Sequential::compile): training loss {:.4}, test accuracy {} vs {:.4} and {} at the fixed rate {MNIST_LR}.",
            decay.last().loss,
            decay.test.map_or("-".to_string(), |t| format!("{:.4}", t.1)),
            constant.last().loss,
            constant.test.map_or("-".to_string(), |t| format!("{:.4}", t.1)),
        ));
    }

    let plotted: Vec<&MnistRun> = plain
        .iter()
        .copied()
        .filter(|r| r.batch != Some(256) || 256 < n)
        .collect();
    let lines = |x: &dyn Fn(&MnistEpoch) -> f64| -> Vec<Line> {
        plotted
            .iter()
            .enumerate()
            .map(|(i, r)| Line {
                label: r.name.clone(),
                color: PALETTE[i % PALETTE.len()],
                dashed: false,
                width: 2,
                points: r.epochs.iter().map(|e| (x(e), e.loss)).collect(),
            })
            .collect()
    };
    let (by_epoch, by_time) = (lines(&|e| e.epoch as f64), lines(&|e| e.seconds));
    let by_samples: Vec<Line> = plotted
        .iter()
        .enumerate()
        .map(|(i, r)| Line {
            label: r.name.clone(),
            color: PALETTE[i % PALETTE.len()],
            dashed: false,
            width: 2,
            points: r.running.clone(),
        })
        .collect();
    let path = out.join("ex13-mnist-loss.png");
    plots::lines_panels(
        &path,
        &format!("MNIST, {n} training images, SGD(lr={MNIST_LR}), shuffled: training loss"),
        &[
            LinesPanel {
                title: "per epoch",
                x_label: "epoch",
                y_label: "training loss",
                lines: &by_epoch,
                legend: true,
                log_x: false,
                y_floor: None,
                x_integer: true,
            },
            LinesPanel {
                title: "per second of training",
                x_label: "seconds",
                y_label: "training loss",
                lines: &by_time,
                legend: false,
                log_x: true,
                y_floor: None,
                x_integer: false,
            },
            LinesPanel {
                title: "per sample seen (batch losses, n/20-sample means)",
                x_label: "samples",
                y_label: "training loss",
                lines: &by_samples,
                legend: false,
                log_x: true,
                y_floor: None,
                x_integer: false,
            },
        ],
    )?;
    figures.push(path);
    Ok(())
}

// ---------------------------------------------------------------------------
// Optimisers on a non-convex function
// ---------------------------------------------------------------------------

/// `f(x, y) = (x² - 1)² + 0.3·x + y²`: a tilted double well in `x`, a
/// bowl in `y`. Its critical points lie on `y = 0` where
/// `4x³ - 4x + 0.3 = 0`: a global minimum near `x = -1.04`, a saddle
/// point near `x = 0.08` (a maximum in `x`, a minimum in `y`) and a local
/// minimum near `x = 0.96`.
fn saddle_function(x: f64, y: f64) -> f64 {
    (x * x - 1.0).powi(2) + 0.3 * x + y * y
}

/// The roots of `4x³ - 4x + 0.3` by Newton's method from -1, 0 and 1.
fn critical_xs() -> [f64; 3] {
    [-1.0, 0.0, 1.0].map(|mut x: f64| {
        for _ in 0..50 {
            x -= (4.0 * x.powi(3) - 4.0 * x + 0.3) / (12.0 * x * x - 4.0);
        }
        x
    })
}

/// Minimises [`saddle_function`] from `start` with `optimizer`, the
/// gradients from the tape; the points visited.
fn descend(
    optimizer: &mut dyn Optimizer,
    start: (f64, f64),
    steps: usize,
) -> Result<Vec<(f64, f64)>> {
    let mut x = Variable::new("x", Tensor::full(&[1], start.0 as f32));
    let mut y = Variable::new("y", Tensor::full(&[1], start.1 as f32));
    let mut points = vec![start];
    for _ in 0..steps {
        let grads = {
            let tape = GradientTape::new();
            let (vx, vy) = (tape.watch(&x), tape.watch(&y));
            let f = vx
                .square()
                .add_scalar(-1.0)
                .square()
                .add(vx.mul_scalar(0.3))?
                .add(vy.square())?;
            tape.gradient_of(f, &[&x, &y])?
        };
        optimizer.apply_gradients(&mut [&mut x, &mut y], &grads)?;
        let p = (
            f64::from(x.value().as_slice()[0]),
            f64::from(y.value().as_slice()[0]),
        );
        points.push(p);
        if !(p.0.is_finite() && p.1.is_finite()) || p.0.abs() > 1e3 || p.1.abs() > 1e3 {
            break;
        }
    }
    Ok(points)
}

fn optimizer_zoo() -> Vec<(&'static str, Box<dyn Optimizer>)> {
    vec![
        ("SGD (lr 0.02)", Box::new(Sgd::new(0.02))),
        (
            "Momentum (0.02, 0.9)",
            Box::new(Sgd::new(0.02).with_momentum(0.9, false)),
        ),
        (
            "Nesterov (0.02, 0.9)",
            Box::new(Sgd::new(0.02).with_momentum(0.9, true)),
        ),
        ("AdaGrad (0.3)", Box::new(Adagrad::new(0.3))),
        ("RMSprop (0.02)", Box::new(RmsProp::new(0.02))),
        (
            "AdaDelta (1.0, eps 1e-4)",
            Box::new(Adadelta::new(1.0).with_epsilon(1e-4)),
        ),
        ("Adam (0.05)", Box::new(Adam::new(0.05))),
    ]
}

const OPTIMIZER_STEPS: usize = 300;

/// An end point away from every critical point counts as "still moving"
/// when the last ten steps together went further than this.
const STILL_MOVING: f64 = 1e-4;

/// One optimiser's run in [`optimizers`]: its name, where it ends (a
/// critical point's name or the coordinates), the steps until it stayed
/// within 0.05 of its end, the steps within 0.3 of the saddle point, the
/// end point, and how far its last ten steps went.
type Outcome = (&'static str, String, usize, usize, (f64, f64), f64);

/// Where `name`'s path `points` (from [`descend`]) ends on
/// [`saddle_function`]: at a critical point (within 0.05 of it) or at its
/// coordinates, with the other figures of an [`Outcome`].
fn outcome(name: &'static str, points: &[(f64, f64)]) -> Outcome {
    let [x_global, x_saddle, x_local] = critical_xs();
    let end = points.last().copied().unwrap_or_default();
    let near = |x: f64| (end.0 - x).hypot(end.1) < 0.05;
    let ends = if near(x_global) {
        "global minimum".into()
    } else if near(x_local) {
        "local minimum".into()
    } else if near(x_saddle) {
        "saddle point".into()
    } else {
        format!("({:.2}, {:.2})", end.0, end.1)
    };
    let settled = points
        .iter()
        .position(|p| (p.0 - end.0).hypot(p.1 - end.1) < 0.05)
        .unwrap_or(points.len());
    let at_saddle = points
        .iter()
        .filter(|p| (p.0 - x_saddle).hypot(p.1) < 0.3)
        .count();
    // How far the last ten steps went: an end away from every critical
    // point is "still moving" or "stopped elsewhere" by it.
    let tail = points
        .get(points.len().saturating_sub(11))
        .copied()
        .unwrap_or(end);
    let last_moves = (end.0 - tail.0).hypot(end.1 - tail.1);
    (name, ends, settled, at_saddle, end, last_moves)
}

/// The summary line of the runs from `start` (`where_` in words): which
/// optimisers end in which minimum, and where every other one is (still
/// moving, stopped elsewhere, at the saddle point), the steps spent near
/// the saddle point, and the fastest to settle.
fn optimizer_summary(where_: &str, start: (f64, f64), outcomes: &[Outcome]) -> Result<String> {
    let describe = |what: &str| -> String {
        let names: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.1 == what)
            .map(|o| o.0.split(" (").next().unwrap_or(o.0))
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    let short = |name: &'static str| name.split(" (").next().unwrap_or(name);
    let mut line = format!(
        "Optimizers from {where_} ({:.2}, {:.2}): global minimum: {}; local minimum: {}",
        start.0,
        start.1,
        describe("global minimum"),
        describe("local minimum")
    );
    // Every optimiser is named: those that end at neither minimum (not
    // within 0.05 of it) say where they are instead.
    if describe("saddle point") != "none" {
        write!(line, "; at the saddle point: {}", describe("saddle point"))?;
    }
    let elsewhere = |moving: bool| -> Vec<String> {
        outcomes
            .iter()
            .filter(|o| o.1.starts_with('(') && (o.5 > STILL_MOVING) == moving)
            .map(|o| format!("{} at ({:.2}, {:.2})", short(o.0), o.4.0, o.4.1))
            .collect()
    };
    for (moving, what) in [(true, "still moving"), (false, "stopped elsewhere")] {
        let names = elsewhere(moving);
        if !names.is_empty() {
            write!(line, "; {what}: {}", names.join(", "))?;
        }
    }
    line.push('.');
    let mut near: Vec<&Outcome> = outcomes.iter().filter(|o| o.3 > 0).collect();
    near.sort_by_key(|o| std::cmp::Reverse(o.3));
    if !near.is_empty() {
        let listed: Vec<String> = near
            .iter()
            .map(|o| format!("{} {}", short(o.0), o.3))
            .collect();
        let away: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.3 == 0)
            .map(|o| short(o.0))
            .collect();
        write!(
            line,
            " Steps spent within 0.3 of the saddle point: {}{}.",
            listed.join(", "),
            if away.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} moved off the ridge before reaching it",
                    away.join(", ")
                )
            }
        )?;
    }
    let settled: Vec<String> = outcomes
        .iter()
        .filter(|o| o.2 < OPTIMIZER_STEPS)
        .map(|o| (short(o.0), o.2))
        .collect::<Vec<_>>()
        .iter()
        .min_by_key(|o| o.1)
        .map(|o| {
            format!(
                " Fastest to settle (within 0.05 of its end point): {} in {} steps.",
                o.0, o.1
            )
        })
        .into_iter()
        .collect();
    line.push_str(&settled.concat());
    Ok(line)
}

fn optimizers(out: &Path, summary: &mut Vec<String>, figures: &mut Vec<PathBuf>) -> Result<()> {
    heading(
        "ex13 optimizers: f(x, y) = (x^2 - 1)^2 + 0.3 x + y^2 (lecture 13.2: saddle points, local minima)",
    );
    let [x_global, x_saddle, x_local] = critical_xs();
    let f = |x: f64| saddle_function(x, 0.0);
    println!(
        "critical points on y = 0: global minimum x = {x_global:.4} (f = {:.4}), saddle point x = {x_saddle:.4} (f = {:.4}), local minimum x = {x_local:.4} (f = {:.4})",
        f(x_global),
        f(x_saddle),
        f(x_local)
    );
    let starts = [
        ("next to the saddle point", (x_saddle + 0.001, 1.0)),
        ("beyond the local minimum", (2.0, 1.2)),
    ];
    let mut panels_lines = Vec::new();
    for (where_, start) in starts {
        println!(
            "\nfrom ({:.3}, {:.3}), {where_}, {OPTIMIZER_STEPS} steps:",
            start.0, start.1
        );
        println!(
            "{:<26} {:>16} {:>9} {:>20} {:>22}",
            "optimizer", "ends at", "f", "steps to within 0.05", "steps near the saddle"
        );
        let mut lines = Vec::new();
        let mut outcomes: Vec<Outcome> = Vec::new();
        for (i, (name, mut optimizer)) in optimizer_zoo().into_iter().enumerate() {
            let points = descend(optimizer.as_mut(), start, OPTIMIZER_STEPS)?;
            let o = outcome(name, &points);
            println!(
                "{:<26} {:>16} {:>9.4} {:>20} {:>22}",
                name,
                o.1,
                saddle_function(o.4.0, o.4.1),
                o.2,
                o.3
            );
            outcomes.push(o);
            lines.push(Line {
                label: name.to_string(),
                color: PALETTE[i % PALETTE.len()],
                dashed: false,
                width: 2,
                points,
            });
        }
        summary.push(optimizer_summary(where_, start, &outcomes)?);
        panels_lines.push((where_, lines));
    }
    let marks = [
        Mark {
            at: (x_global, 0.0),
            label: "global min",
        },
        Mark {
            at: (x_saddle, 0.0),
            label: "saddle",
        },
        Mark {
            at: (x_local, 0.0),
            label: "local min",
        },
    ];
    // Levels equally spaced in sqrt(f - f(global min)): rings equally far
    // apart around the global minimum (geometrically spaced ones crowd into a
    // band there), three of them around the local minimum.
    let (x_range, y_range) = (-1.8..2.3, -1.4..1.9);
    let corner = [x_range.start, x_range.end]
        .into_iter()
        .flat_map(|x| [y_range.start, y_range.end].map(|y| saddle_function(x, y)))
        .fold(f64::NEG_INFINITY, f64::max);
    let levels = plots::sqrt_levels(saddle_function(x_global, 0.0), corner, 30);
    let titles: Vec<String> = panels_lines
        .iter()
        .map(|(w, _)| format!("from {w}"))
        .collect();
    let panels: Vec<ContourPanel<'_>> = panels_lines
        .iter()
        .zip(&titles)
        .map(|((_, lines), title)| ContourPanel {
            title,
            x_label: "x",
            y_label: "y",
            x_range: x_range.clone(),
            y_range: y_range.clone(),
            f: &saddle_function,
            levels: levels.clone(),
            paths: lines,
            marks: &marks,
        })
        .collect();
    let path = out.join("ex13-optimizer-paths.png");
    plots::contour_panels(
        &path,
        "SGD, momentum, Nesterov, AdaGrad, RMSprop, AdaDelta and Adam on f(x, y) = (x^2 - 1)^2 + 0.3 x + y^2",
        (1500, 680),
        &panels,
    )?;
    figures.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every optimiser appears in the summary of each start: AdaDelta,
    /// within 0.05 of neither minimum after 300 steps from beside the
    /// saddle point, was left out ("global minimum: none; local minimum:
    /// SGD, ..., Adam"); it is now "still moving", with its end point.
    #[test]
    fn every_optimizer_appears_in_the_summary() {
        let [_, x_saddle, _] = critical_xs();
        for start in [(x_saddle + 0.001, 1.0), (2.0, 1.2)] {
            let outcomes: Vec<Outcome> = optimizer_zoo()
                .into_iter()
                .map(|(name, mut optimizer)| {
                    let points = descend(optimizer.as_mut(), start, OPTIMIZER_STEPS).unwrap();
                    outcome(name, &points)
                })
                .collect();
            let line = optimizer_summary("here", start, &outcomes).unwrap();
            // The part before the saddle-point steps names where each ends.
            let ends = line.split(". Steps").next().unwrap();
            for o in &outcomes {
                let short = o.0.split(" (").next().unwrap();
                assert!(ends.contains(short), "{short} missing: {line}");
            }
            if start.0 < 1.0 {
                let adadelta = outcomes
                    .iter()
                    .find(|o| o.0.starts_with("AdaDelta"))
                    .unwrap();
                assert!(adadelta.5 > STILL_MOVING, "{adadelta:?}");
                assert!(
                    ends.ends_with(&format!(
                        "; still moving: AdaDelta at ({:.2}, {:.2})",
                        adadelta.4.0, adadelta.4.1
                    )),
                    "{line}"
                );
            }
        }
    }

    /// The words for each kind of end: a critical point, a path still
    /// moving, one stopped elsewhere.
    #[test]
    fn ends_away_from_the_minima_are_named_with_where_they_are() {
        let [x_global, x_saddle, x_local] = critical_xs();
        let path = |end: (f64, f64), step: f64| -> Vec<(f64, f64)> {
            (0..20)
                .map(|i| (end.0 - step * (19 - i) as f64, end.1))
                .collect()
        };
        let outcomes = [
            outcome("A (1)", &path((x_global, 0.0), 0.0)),
            outcome("B (2)", &path((x_local + 0.01, 0.0), 0.0)),
            outcome("C (3)", &path((x_saddle, 0.0), 0.0)),
            outcome("D (4)", &path((1.5, 0.25), 0.01)),
            outcome("E (5)", &path((-2.0, 0.5), 0.0)),
        ];
        let line = optimizer_summary("x", (0.0, 1.0), &outcomes).unwrap();
        assert!(
            line.starts_with(
                "Optimizers from x (0.00, 1.00): global minimum: A; local minimum: B; at the \
                 saddle point: C; still moving: D at (1.50, 0.25); stopped elsewhere: E at \
                 (-2.00, 0.50)."
            ),
            "{line}"
        );
    }
}
