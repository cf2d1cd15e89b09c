//! [`Dropout`]: inverted dropout (Srivastava et al. 2014; Keras `Dropout`).
//!
//! In training each element is kept with probability `1 - rate` and scaled
//! by `1 / (1 - rate)`, or set to 0: `y = x · m / (1 - rate)`, `m ∈ {0, 1}`;
//! the gradient is `dx = dy · m / (1 - rate)`. Outside training the layer is
//! the identity. Keras scales the same way (`backend.random.dropout`).
//!
//! # The mask: a counter-based hash, reproducible anywhere
//!
//! The mask of a training pass depends only on the layer's seed, the
//! pass's number `step` (0, 1, 2, ...: the layer counts its training
//! passes) and the element's row-major index `i` in the batch tensor, so it
//! does not depend on the number of threads or on the device. In
//! data-parallel training `i` is the index in the global batch (the shard's
//! [`Pass::first_row`] times the elements per sample, plus the index in the
//! shard), so N workers draw together the mask a single process draws:
//!
//! ```text
//! key   = mix(seed ^ mix(step + γ))            γ = 0x9E3779B97F4A7C15
//! u_i   = mix(key + (i + 1) · γ) >> 40         (the i-th SplitMix64 output of `key`, top 24 bits)
//! keep  = u_i >= ceil(rate · 2^24)
//! mix(z): z = (z ^ z >> 30) · 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) · 0x94D049BB133111EB; z ^ z >> 31
//! ```
//!
//! (all arithmetic wrapping on `u64`), so an element is dropped with
//! probability `ceil(rate · 2^24) / 2^24`, which is `rate` up to `2^-24`.
//! [`Dropout::keeps`] computes one bit of it. The hash (`u_i` and `keep`)
//! is hebb-tensor's [`ops::dropout`](hebb_tensor::ops::dropout) op, whose
//! CPU and CUDA kernels compute the same function: **the same seed gives
//! the same mask, and the same outputs bit for bit, on the CPU and on a
//! GPU**, so a model trained on either draws the same masks.
//!
//! # Devices
//!
//! The layer computes on its input's device: on a GPU, a training pass
//! (forward or backward) is one kernel launch on the device's stream,
//! nothing copied to the host; an inference pass shares its input.
//!
//! A training [`forward`](crate::Layer::forward) and a training
//! [`call`](crate::Layer::call) on the tape both use the mask of the current
//! [`step`](Dropout::step) and then advance it by one; [`backward`](crate::Layer::backward)
//! uses the mask of its forward pass. So `set_step(s)` before a `forward`
//! and again before a `call` gives both the same mask (how the tests compare
//! the step with the tape). The step is the layer's only state: saving it
//! with [`step`](Dropout::step) and restoring it with
//! [`set_step`](Dropout::set_step) continues the same sequence of masks.

use std::sync::atomic::{AtomicU64, Ordering};

use hebb_autograd::{GradientTape, Var};
use hebb_tensor::ops::dropout::{DropoutMask, GAMMA, dropout_into, kept, mix};
use hebb_tensor::{Device, Tensor};
use rand::RngCore;
use serde_json::{Value, json};

use crate::base::{LayerBase, base_builders, layer_base_methods};
use crate::keras::{config_error, keras_shape, refuse_non_null};
use crate::layer::{Layer, Pass, reuse};
use crate::{Error, Result};

const CLASS: &str = "Dropout";

/// The per-pass key of `seed` and `step` (see the module docs).
fn step_key(seed: u64, step: u64) -> u64 {
    mix(seed ^ mix(step.wrapping_add(GAMMA)))
}

/// The 24-bit threshold an element's draw must reach to be kept (at most
/// `2^24` for a rate in `[0, 1)`).
fn threshold(rate: f64) -> u32 {
    (rate * f64::from(1u32 << 24)).ceil() as u32
}

/// Inverted dropout (Keras `keras.layers.Dropout(rate, noise_shape=None,
/// seed=None)`): in training (`fit`) each element is set to 0 with
/// probability `rate` and the others are scaled by `1 / (1 - rate)`; in
/// `evaluate`/`predict` it passes its input through. Shapes:
/// `[rows, ..] -> [rows, ..]`. See the module docs for the mask.
///
/// Without [`seed`](Self::seed), [`build`](Layer::build) draws the seed
/// from the model's generator, so the model's seed decides the masks.
///
/// ```
/// use hebb_layers::{Dropout, Layer, Pass};
/// use hebb_tensor::{Tensor, random::chacha};
///
/// let mut dropout = Dropout::new(0.5).seed(42);
/// dropout.build(&[4], &mut chacha(0))?;
/// let x = Tensor::ones(&[2, 4]);
/// let y = dropout.forward(&x, Pass::TRAIN)?.to_vec();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// assert_eq!(dropout.forward(&x, Pass::INFER)?.to_vec(), vec![1.0; 8]);
/// # Ok::<(), hebb_layers::Error>(())
/// ```
#[derive(Debug)]
pub struct Dropout {
    base: LayerBase,
    rate: f64,
    seed: Option<u64>,
    drawn_seed: Option<u64>,
    step: AtomicU64,
    last_step: u64,
    /// The global index of the last training pass's first element.
    last_first: usize,
    built: Option<Vec<usize>>,
    out: Tensor,
}

impl Dropout {
    /// A dropout layer dropping the fraction `rate` of its inputs in
    /// training. A rate outside `[0, 1)` is refused by
    /// [`validate`](Self::validate) and when the layer is added or built.
    pub fn new(rate: f64) -> Self {
        Self {
            base: LayerBase::new(CLASS),
            rate,
            seed: None,
            drawn_seed: None,
            step: AtomicU64::new(0),
            last_step: 0,
            last_first: 0,
            built: None,
            out: Tensor::zeros(&[0]),
        }
    }

    /// Fixes the seed of the masks (Keras `seed=`).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The drop rate.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// The number of training passes so far, i.e. the step whose mask the
    /// next training pass uses.
    pub fn step(&self) -> u64 {
        self.step.load(Ordering::Relaxed)
    }

    /// Sets the step the next training pass uses (replaying a mask, or
    /// resuming a saved training run).
    pub fn set_step(&mut self, step: u64) {
        *self.step.get_mut() = step;
    }

    /// The seed in use: the user's, or the one drawn at build; `None` before
    /// a seedless layer is built.
    pub fn effective_seed(&self) -> Option<u64> {
        self.seed.or(self.drawn_seed)
    }

    /// Whether element `index` (row-major in the batch tensor) is kept in
    /// training pass `step` of a layer seeded with `seed` dropping `rate`
    /// (see the module docs).
    pub fn keeps(seed: u64, step: u64, index: usize, rate: f64) -> bool {
        kept(step_key(seed, step), index as u64, threshold(rate))
    }

    /// Checks the rate.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer and the rate unless
    /// `0 <= rate < 1`.
    pub fn validate(&self) -> Result<()> {
        if (0.0..1.0).contains(&self.rate) {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                what: "Dropout",
                detail: format!("rate must be in [0, 1), got {}", self.rate),
            })
        }
    }

    /// The layer from its Keras configuration (`rate`, `seed`,
    /// `noise_shape`: only `null`).
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or invalid rate or seed, a
    /// `noise_shape`, or a dtype other than float32.
    pub fn from_config(config: &Value) -> Result<Box<dyn Layer>> {
        let (base, map) = LayerBase::from_config(CLASS, config)?;
        refuse_non_null(CLASS, map, "noise_shape")?;
        let rate = map
            .get("rate")
            .and_then(Value::as_f64)
            .ok_or_else(|| config_error(CLASS, "rate must be a number".into()))?;
        let mut layer = Dropout::new(rate);
        match map.get("seed") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let seed = v.as_u64().ok_or_else(|| {
                    config_error(CLASS, format!("seed must be an integer >= 0, got {v}"))
                })?;
                layer = layer.seed(seed);
            }
        }
        layer.base = base;
        layer
            .validate()
            .map_err(|e| config_error(CLASS, e.to_string()))?;
        Ok(Box::new(layer))
    }

    fn key(&self, step: u64) -> Result<u64> {
        let seed = self
            .effective_seed()
            .ok_or_else(|| Error::InvalidArgument {
                what: "Dropout",
                detail: format!(
                    "layer {} has no seed: give it one (.seed(n)) or build it in a model first",
                    self.base.label()
                ),
            })?;
        Ok(step_key(seed, step))
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let per_sample = shape.get(1..).ok_or_else(|| {
            self.base
                .shape_error("Dropout needs an input [rows, ..], got a scalar".into())
        })?;
        match &self.built {
            Some(built) if built != per_sample => Err(self.base.shape_error(format!(
                "built for inputs {}, got {}",
                keras_shape(built),
                keras_shape(per_sample)
            ))),
            _ => Ok(()),
        }
    }

    /// The mask of training pass `step` over a tensor whose element 0 has
    /// the global index `first`.
    fn mask(&self, step: u64, first: usize) -> Result<DropoutMask> {
        Ok(DropoutMask {
            key: self.key(step)?,
            first: first as u64,
            threshold: threshold(self.rate),
            scale: self.scale(),
        })
    }

    /// The index in the global batch of the first element of a pass whose
    /// inputs are `shape` (see [`Pass::first_row`]).
    fn first_element(pass: Pass, shape: &[usize]) -> usize {
        pass.first_row * shape.iter().skip(1).product::<usize>()
    }

    fn scale(&self) -> f32 {
        (1.0 / (1.0 - self.rate)) as f32
    }
}

base_builders!(Dropout, base);

impl Layer for Dropout {
    layer_base_methods!(base);

    fn config(&self) -> Value {
        let mut map = self.base.config();
        map.insert("rate".into(), json!(self.rate));
        map.insert("seed".into(), json!(self.seed));
        map.insert("noise_shape".into(), Value::Null);
        Value::Object(map)
    }

    fn compute_output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        Ok(input_shape.to_vec())
    }

    /// `{"seed": <the seed in use, or null before a seedless layer is
    /// built>, "step": <training passes so far>}`: what picks the next mask.
    fn training_state(&self) -> Option<Value> {
        Some(json!({"seed": self.effective_seed(), "step": self.step()}))
    }

    /// Continues the masks of a saved layer: its step, and its seed when
    /// the layer was seedless (a given seed must be the saved one).
    fn set_training_state(&mut self, state: &Value) -> Result<()> {
        let bad = |detail: String| {
            config_error(
                CLASS,
                format!(
                    "layer {}: training state {state}: {detail}",
                    self.base.label()
                ),
            )
        };
        let step = state
            .get("step")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("step must be an integer >= 0".into()))?;
        let seed = match state.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| bad("seed must be an integer >= 0 or null".into()))?,
            ),
        };
        match (self.seed, seed) {
            (Some(given), Some(saved)) if given != saved => {
                return Err(bad(format!("the layer's seed is {given}")));
            }
            (None, Some(saved)) => self.drawn_seed = Some(saved),
            _ => {}
        }
        self.set_step(step);
        Ok(())
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut dyn RngCore) -> Result<()> {
        self.validate()?;
        if self.seed.is_none() {
            self.drawn_seed = Some(rng.next_u64());
        }
        self.built = Some(input_shape.to_vec());
        Ok(())
    }

    fn forward(&mut self, x: &Tensor, pass: Pass) -> Result<&Tensor> {
        self.check_input(x.shape())?;
        self.validate()?;
        if pass.training {
            let step = self.step.fetch_add(1, Ordering::Relaxed);
            self.last_step = step;
            self.last_first = Self::first_element(pass, x.shape());
            let mask = self.mask(step, self.last_first)?;
            // On the input's device, into the layer's buffer when it is free.
            dropout_into(x, &mut self.out, &mask)?;
        } else if x.device() == Device::Cpu {
            // A copy, not a clone of `x`: a clone would share the previous
            // layer's output buffer, whose next `reuse` would then copy it.
            reuse(&mut self.out, x.shape())?.copy_from_slice(x.as_slice());
        } else {
            // GPU layers write fresh (or unshared) buffers: sharing is free.
            self.out = x.clone();
        }
        Ok(&self.out)
    }

    fn backward(
        &mut self,
        x: &Tensor,
        grad_out: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        pass: Pass,
    ) -> Result<()> {
        if grad_out.shape() != x.shape() || grad_out.device() != x.device() {
            return Err(self.base.shape_error(format!(
                "backward: gradient {:?} on {} does not match the input {:?} on {}",
                grad_out.shape(),
                grad_out.device(),
                x.shape(),
                x.device()
            )));
        }
        let Some(grad_in) = grad_in else {
            return Ok(());
        };
        if pass.training {
            let mask = self.mask(self.last_step, self.last_first)?;
            dropout_into(grad_out, grad_in, &mask)?;
        } else if x.device() == Device::Cpu {
            reuse(grad_in, x.shape())?.copy_from_slice(grad_out.as_slice());
        } else {
            *grad_in = grad_out.clone();
        }
        Ok(())
    }

    fn call<'t>(&self, tape: &'t GradientTape, x: Var<'t>, training: bool) -> Result<Var<'t>> {
        self.validate()?;
        let shape = x.shape();
        self.check_input(&shape)?;
        if !training {
            return Ok(x);
        }
        let step = self.step.fetch_add(1, Ordering::Relaxed);
        // The mask's values (`0` or `1 / (1 - rate)`) on `x`'s device.
        let ones = Tensor::full_on(&shape, 1.0, x.value().device())?;
        let mask = ones.dropout(&self.mask(step, 0)?)?;
        Ok(x.mul(tape.constant(mask))?)
    }

    fn skip_training_pass(&mut self) {
        self.step.fetch_add(1, Ordering::Relaxed);
    }

    /// Every device: the mask is hebb-tensor's dropout op.
    fn supports(&self, _device: Device) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run_step, tape_reference};
    use hebb_tensor::random::chacha;

    fn built(rate: f64, seed: u64, shape: &[usize]) -> Dropout {
        let mut d = Dropout::new(rate).seed(seed).name("drop");
        d.build(shape, &mut chacha(0)).unwrap();
        d
    }

    fn ramp(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|i| i as f32 * 0.25 - 3.0).collect(), shape).unwrap()
    }

    #[test]
    fn the_training_state_continues_the_masks() {
        let x = ramp(&[8, 5]);
        // A seedless layer draws its seed at build; a copy built from
        // another generator takes the saved seed and step.
        let mut a = Dropout::new(0.5).name("drop");
        a.build(&[5], &mut chacha(1)).unwrap();
        a.forward(&x, Pass::TRAIN).unwrap();
        a.forward(&x, Pass::TRAIN).unwrap();
        let state = a.training_state().unwrap();
        assert_eq!(state["step"], json!(2));
        assert_eq!(state["seed"], json!(a.effective_seed().unwrap()));
        let mut b = Dropout::new(0.5).name("drop");
        b.build(&[5], &mut chacha(2)).unwrap();
        assert_ne!(b.effective_seed(), a.effective_seed());
        b.set_training_state(&state).unwrap();
        let ya = a.forward(&x, Pass::TRAIN).unwrap().to_vec();
        let yb = b.forward(&x, Pass::TRAIN).unwrap().to_vec();
        assert_eq!(ya, yb);
        assert_eq!(b.step(), 3);
        // A given seed must be the saved one; the state must be readable.
        let mut c = built(0.5, 9, &[5]);
        for bad in [
            json!({"seed": 10, "step": 0}),
            json!({"seed": 9}),
            json!({"seed": "9", "step": 1}),
        ] {
            let e = c.set_training_state(&bad).unwrap_err().to_string();
            assert!(e.contains("Dropout") && e.contains("drop"), "{e}");
        }
        c.set_training_state(&json!({"seed": 9, "step": 4}))
            .unwrap();
        assert_eq!(c.step(), 4);
    }

    #[test]
    fn shards_from_their_first_row_draw_the_whole_batch_mask() {
        // A batch of 9 rows cut into shards of 4 and 5 rows (two
        // data-parallel workers): each shard's forward and backward with
        // its first row are the whole batch's rows.
        let x = ramp(&[9, 5]);
        let g = ramp(&[9, 5]).mul_scalar(-1.5);
        let mut whole = built(0.4, 3, &[5]);
        let (y, dx) = run_step(&mut whole, &x, &g, Pass::TRAIN).unwrap();
        let (y, dx) = (y.to_vec(), dx.to_vec());
        for (first, rows) in [(0usize, 4usize), (4, 5)] {
            let mut shard = built(0.4, 3, &[5]);
            let pass = Pass {
                first_row: first,
                ..Pass::TRAIN
            };
            let part: Vec<usize> = (first..first + rows).collect();
            let (ys, dxs) = run_step(
                &mut shard,
                &x.gather_rows(&part).unwrap(),
                &g.gather_rows(&part).unwrap(),
                pass,
            )
            .unwrap();
            assert_eq!(ys.to_vec(), y[first * 5..(first + rows) * 5]);
            assert_eq!(dxs.to_vec(), dx[first * 5..(first + rows) * 5]);
        }
        // A skipped pass advances the count as a pass does.
        let mut skipped = built(0.4, 3, &[5]);
        skipped.skip_training_pass();
        assert_eq!(skipped.step(), 1);
    }

    #[test]
    fn training_keeps_and_scales_as_the_plain_reference() {
        let mut d = built(0.3, 11, &[5, 7]);
        let x = ramp(&[64, 5, 7]);
        for step in 0..3 {
            let y = d.forward(&x, Pass::TRAIN).unwrap().to_vec();
            let scale = (1.0 / (1.0 - 0.3f64)) as f32;
            for (i, (&yi, &xi)) in y.iter().zip(x.as_slice()).enumerate() {
                let expect = if Dropout::keeps(11, step, i, 0.3) {
                    xi * scale
                } else {
                    0.0
                };
                assert_eq!(yi.to_bits(), expect.to_bits(), "step {step} element {i}");
            }
        }
        assert_eq!(d.step(), 3);
    }

    #[test]
    fn drop_fraction_is_the_rate() {
        for rate in [0.1, 0.5, 0.9] {
            let n = 200_000;
            let dropped = (0..n).filter(|&i| !Dropout::keeps(7, 3, i, rate)).count();
            let frac = dropped as f64 / n as f64;
            // Binomial standard deviation is at most 0.0012 for n = 200000.
            assert!((frac - rate).abs() < 0.006, "rate {rate}: dropped {frac}");
        }
        // Consecutive steps and seeds give different masks.
        let mask = |seed, step| {
            (0..256)
                .map(|i| Dropout::keeps(seed, step, i, 0.5))
                .collect::<Vec<_>>()
        };
        assert_ne!(mask(1, 0), mask(1, 1));
        assert_ne!(mask(1, 0), mask(2, 0));
        assert_eq!(mask(1, 5), mask(1, 5));
    }

    #[test]
    fn rate_zero_keeps_everything_and_inference_is_identity() {
        let mut d = built(0.0, 1, &[3]);
        let x = ramp(&[4, 3]);
        assert_eq!(d.forward(&x, Pass::TRAIN).unwrap(), &x);
        let mut d = built(0.5, 1, &[3]);
        assert_eq!(d.forward(&x, Pass::INFER).unwrap(), &x);
        assert_eq!(d.step(), 0, "inference passes do not count");
        let mut g = ramp(&[4, 3]);
        let mut gi = Tensor::zeros(&[1]);
        d.backward(&x, &mut g, Some(&mut gi), Pass::INFER).unwrap();
        assert_eq!(gi, ramp(&[4, 3]));
    }

    #[test]
    fn same_result_for_any_thread_count() {
        let x = ramp(&[3, (1 << 14) + 17]);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut d = built(0.4, 99, &[(1 << 14) + 17]);
                d.forward(&x, Pass::TRAIN).unwrap().clone()
            })
        };
        assert_eq!(run(1), run(3));
    }

    #[test]
    fn backward_and_tape_match_the_step() {
        let shape = [6, 2, 5];
        let x = ramp(&shape);
        let w = Tensor::from_vec((0..60).map(|i| (i % 7) as f32 - 3.0).collect(), &shape).unwrap();
        let mut d = built(0.5, 5, &[2, 5]);
        d.set_step(17);
        let (y, gi) = run_step(&mut d, &x, &w, Pass::TRAIN).unwrap();

        d.set_step(17);
        let want = tape_reference(&d, &x, &w, true).unwrap();
        assert_eq!(want.y, y);
        assert_eq!(want.dx, gi);
        assert_eq!(d.step(), 18);
        // Some elements were dropped and some kept.
        let ys = y.to_vec();
        assert!(ys.contains(&0.0) && ys.iter().any(|&v| v != 0.0));
        // Inference on the tape is the identity.
        let tape = GradientTape::new();
        let xv = tape.constant(x.clone());
        assert_eq!(d.call(&tape, xv, false).unwrap().value(), x);
    }

    #[test]
    fn seedless_layer_takes_its_seed_from_the_build_rng() {
        let make = |model_seed| {
            let mut d = Dropout::new(0.5);
            d.build(&[8], &mut chacha(model_seed)).unwrap();
            d.forward(&Tensor::ones(&[4, 8]), Pass::TRAIN)
                .unwrap()
                .clone()
        };
        assert_eq!(make(1), make(1));
        assert_ne!(make(1), make(2));
        let unbuilt = Dropout::new(0.5).name("d0");
        let tape = GradientTape::new();
        let e = unbuilt
            .call(&tape, tape.constant(Tensor::ones(&[2, 2])), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("d0") && e.contains("seed"), "{e}");
    }

    #[test]
    fn bad_rates_and_shapes_are_errors() {
        for rate in [-0.1, 1.0, 1.5, f64::NAN] {
            let d = Dropout::new(rate).name("drop_1");
            let e = d.compute_output_shape(&[3]).unwrap_err().to_string();
            // Sequential adds "layer drop_1: " in front (one name, not two).
            assert!(e.starts_with("Dropout: rate must be in [0, 1)"), "{e}");
            assert!(Dropout::new(rate).build(&[3], &mut chacha(0)).is_err());
        }
        let mut d = built(0.5, 1, &[3]);
        let e = d
            .forward(&Tensor::ones(&[2, 4]), Pass::TRAIN)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("drop") && e.contains("(None, 3)") && e.contains("(None, 4)"),
            "{e}"
        );
    }

    #[test]
    fn config_round_trip_and_keras_config() {
        let d = Dropout::new(0.25)
            .seed(3)
            .name("dropout_7")
            .trainable(false);
        let c = d.config();
        assert_eq!(
            c,
            json!({"name": "dropout_7", "trainable": false, "dtype": "float32",
                   "rate": 0.25, "seed": 3, "noise_shape": null})
        );
        let back = Dropout::from_config(&c).unwrap();
        assert_eq!(back.config(), c);
        assert_eq!(back.class_name(), "Dropout");
        // Keras' own config, with extra keys and a dtype policy.
        let keras = json!({"name": "dropout", "trainable": true,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
            "rate": 0.5, "seed": null, "noise_shape": null});
        let l = Dropout::from_config(&keras).unwrap();
        assert_eq!(l.config()["rate"], json!(0.5));
        assert_eq!(l.config()["seed"], Value::Null);
        for (bad, key) in [
            (
                json!({"rate": 0.5, "noise_shape": [null, 1]}),
                "noise_shape",
            ),
            (json!({"rate": 1.0}), "rate"),
            (json!({}), "rate"),
            (json!({"rate": 0.5, "seed": -1}), "seed"),
            (json!({"rate": 0.5, "dtype": "float16"}), "float16"),
        ] {
            let e = Dropout::from_config(&bad).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{e:?}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn supports_every_device() {
        let d = Dropout::new(0.5);
        assert!(d.supports(Device::Cpu));
        #[cfg(feature = "cuda")]
        assert!(d.supports(Device::Cuda(0)));
    }
}
