//! Issue 12's design change seen from `Sequential`: a layer of the user's
//! own (implemented outside hebb-layers) in `add`, `fit`, `summary`, saving
//! and loading through a `Registry`; frozen layers; Dense without bias and
//! with a kernel regulariser; `layer_outputs` and `get_layer`.

use hebb_autograd::{GradientTape, Var, Variable};
use hebb_layers::{Layer, Pass, Registry, Regularizer, reuse};
use hebb_models::Error;
use hebb_models::sequential::layers::{Dense, Flatten};
use hebb_models::sequential::{FitOptions, Sequential, load_model, load_model_with_registry};
use hebb_tensor::Tensor;
use serde_json::{Value, json};

/// `y = s · x`, one trainable scalar `s`, a user's layer (`"mypkg>Scale"`).
#[derive(Debug)]
struct Scale {
    name: String,
    initial: f32,
    s: Option<Variable>,
    out: Tensor,
    grad: Vec<Tensor>,
}

impl Scale {
    fn new(initial: f32) -> Self {
        Self {
            name: String::new(),
            initial,
            s: None,
            out: Tensor::zeros(&[0]),
            grad: Vec::new(),
        }
    }

    fn from_config(config: &Value) -> hebb_layers::Result<Box<dyn Layer>> {
        let mut layer = Scale::new(config["initial"].as_f64().unwrap_or(1.0) as f32);
        layer.name = config["name"].as_str().unwrap_or("").to_string();
        Ok(Box::new(layer))
    }

    fn value(&self) -> f32 {
        self.s
            .as_ref()
            .map_or(self.initial, |s| s.value().as_slice()[0])
    }
}

impl Layer for Scale {
    fn class_name(&self) -> &str {
        "mypkg>Scale"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
        if let Some(s) = &mut self.s {
            *s = Variable::new(format!("{name}/s"), s.value().clone());
        }
    }
    fn trainable(&self) -> bool {
        true
    }
    fn set_trainable(&mut self, _: bool) {}
    fn config(&self) -> Value {
        json!({"name": self.name, "trainable": true, "dtype": "float32", "initial": self.initial})
    }
    fn compute_output_shape(&self, input: &[usize]) -> hebb_layers::Result<Vec<usize>> {
        Ok(input.to_vec())
    }
    fn build(&mut self, _: &[usize], _: &mut dyn rand::RngCore) -> hebb_layers::Result<()> {
        self.s = Some(Variable::new(
            format!("{}/s", self.name),
            Tensor::full(&[1], self.initial),
        ));
        Ok(())
    }
    fn weights(&self) -> Vec<&Variable> {
        self.s.iter().collect()
    }
    fn weights_mut(&mut self) -> Vec<&mut Variable> {
        self.s.iter_mut().collect()
    }
    fn forward(&mut self, x: &Tensor, _: Pass) -> hebb_layers::Result<&Tensor> {
        let s = self.value();
        let out = reuse(&mut self.out, x.shape())?;
        out.iter_mut()
            .zip(x.as_slice())
            .for_each(|(o, &v)| *o = s * v);
        Ok(&self.out)
    }
    fn backward(
        &mut self,
        x: &Tensor,
        g: &mut Tensor,
        grad_in: Option<&mut Tensor>,
        _: Pass,
    ) -> hebb_layers::Result<()> {
        let s = self.value();
        let ds: f32 = g
            .as_slice()
            .iter()
            .zip(x.as_slice())
            .map(|(g, x)| g * x)
            .sum();
        self.grad = vec![Tensor::from_vec(vec![ds], &[1])?];
        if let Some(gi) = grad_in {
            let gi = reuse(gi, x.shape())?;
            gi.iter_mut()
                .zip(g.as_slice())
                .for_each(|(o, &g)| *o = s * g);
        }
        Ok(())
    }
    fn gradients(&self) -> &[Tensor] {
        &self.grad
    }
    fn call<'t>(
        &self,
        tape: &'t GradientTape,
        x: Var<'t>,
        _: bool,
    ) -> hebb_layers::Result<Var<'t>> {
        let s = self.s.as_ref().ok_or_else(|| hebb_layers::Error::Shape {
            layer: self.name.clone(),
            detail: "not built".into(),
        })?;
        Ok(x.mul(tape.watch(s))?)
    }
}

fn data() -> (Tensor, Tensor) {
    let x = Tensor::from_vec(
        (0..24).map(|i| ((i * 7) % 11) as f32 / 11.0).collect(),
        &[8, 3],
    )
    .unwrap();
    let y = Tensor::from_vec(
        (0..16).map(|i| ((i * 3) % 5) as f32 / 5.0).collect(),
        &[8, 2],
    )
    .unwrap();
    (x, y)
}

fn quiet(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 4,
        verbose: 0,
        shuffle: false,
        ..Default::default()
    }
}

fn with_scale() -> Sequential {
    let mut m = Sequential::new().with_seed(4);
    m.add(Dense::new(4).input_shape(&[3])).unwrap();
    m.add(Scale::new(0.5)).unwrap();
    m.add(Dense::new(2)).unwrap();
    m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    m
}

#[test]
fn a_user_layer_trains_summarises_saves_and_loads_with_a_registry() {
    let (x, y) = data();
    let mut m = with_scale();
    let summary = m.summary().unwrap();
    assert!(
        summary.contains("scale (Scale)                (None, 4)                 1         "),
        "{summary}"
    );
    assert!(summary.contains("Total params: 27"), "{summary}");
    let names: Vec<&str> = m.trainable_variables().iter().map(|v| v.name()).collect();
    assert_eq!(
        names,
        [
            "dense/kernel",
            "dense/bias",
            "scale/s",
            "dense_1/kernel",
            "dense_1/bias"
        ]
    );
    let h = m.fit(&x, &y, quiet(20)).unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss[19] < loss[0], "{loss:?}");
    let s = m.get_layer("scale").unwrap().weights()[0]
        .value()
        .as_slice()[0];
    assert_ne!(s, 0.5, "the user's weight was trained");
    let want = m.predict(&x, 8).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::builtin();
    registry.register("mypkg>Scale", Scale::from_config);
    for file in ["m.safetensors", "m.keras", "m.h5"] {
        let path = dir.path().join(file);
        m.save(&path, false).unwrap();
        // Without the class: a clear error naming the layer and the class.
        match load_model(&path) {
            Err(Error::UnsupportedLayer { layer, class, .. }) => {
                assert_eq!(
                    (layer.as_str(), class.as_str()),
                    ("scale", "mypkg>Scale"),
                    "{file}"
                );
            }
            other => panic!("{file}: {:?}", other.map(|m| m.name().to_string())),
        }
        let mut back = load_model_with_registry(&path, &registry).unwrap().model;
        assert_eq!(back.get_weights(), m.get_weights(), "{file}");
        assert_eq!(back.predict(&x, 8).unwrap(), want, "{file}");
    }
    // hebb's format resumes training bit for bit, the user's weight included.
    let path = dir.path().join("m.safetensors");
    let mut back = load_model_with_registry(&path, &registry).unwrap().model;
    m.fit(&x, &y, quiet(2)).unwrap();
    back.fit(&x, &y, quiet(2)).unwrap();
    assert_eq!(back.get_weights(), m.get_weights());
}

#[test]
fn frozen_layers_keep_their_weights_and_count_as_non_trainable() {
    let (x, y) = data();
    let mut m = Sequential::new().with_seed(1);
    m.add(Dense::new(4).input_shape(&[3]).trainable(false))
        .unwrap();
    m.add(Dense::new(2)).unwrap();
    m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let summary = m.summary().unwrap();
    assert!(summary.contains("Total params: 26"), "{summary}");
    assert!(summary.contains("Trainable params: 10"), "{summary}");
    assert!(summary.contains("Non-trainable params: 16"), "{summary}");
    assert_eq!(m.trainable_variables().len(), 2);
    let before = m.get_weights();
    m.fit(&x, &y, quiet(3)).unwrap();
    let after = m.get_weights();
    assert_eq!(before[..2], after[..2], "the frozen layer is not updated");
    assert_ne!(before[2], after[2], "the other layer is");
    // A trained model with a frozen layer saves, and resumes bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trained.safetensors");
    m.save(&path, false).unwrap();
    let mut back = load_model(&path).unwrap();
    m.fit(&x, &y, quiet(2)).unwrap();
    back.fit(&x, &y, quiet(2)).unwrap();
    assert_eq!(back.get_weights(), m.get_weights());
    let after = m.get_weights();

    // Unfreezing needs compile again (Keras), then trains it.
    for layer in m.layers_mut() {
        layer.set_trainable(true);
    }
    let err = m.fit(&x, &y, quiet(1)).unwrap_err();
    assert!(matches!(err, Error::RecompileNeeded { .. }), "{err}");
    m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    m.fit(&x, &y, quiet(1)).unwrap();
    assert_ne!(m.get_weights()[0], after[0]);

    // The flag is saved and loaded.
    let mut frozen = Sequential::new();
    frozen
        .add(Dense::new(2).input_shape(&[3]).trainable(false))
        .unwrap();
    for file in ["f.safetensors", "f.keras", "f.h5"] {
        let path = dir.path().join(file);
        frozen.save(&path, false).unwrap();
        let back = load_model(&path).unwrap();
        assert!(!back.layers().next().unwrap().trainable(), "{file}");
        assert!(back.summary().unwrap().contains("Non-trainable params: 8"));
    }
    // Weights files hold the frozen weights too.
    let path = dir.path().join("w.safetensors");
    frozen.save_weights(&path, false).unwrap();
    let mut copy = Sequential::new().with_seed(9);
    copy.add(Dense::new(2).input_shape(&[3]).trainable(false))
        .unwrap();
    assert_ne!(copy.get_weights(), frozen.get_weights());
    copy.load_weights(&path).unwrap();
    assert_eq!(copy.get_weights(), frozen.get_weights());
}

#[test]
fn dense_without_bias_and_with_a_kernel_regularizer() {
    let (x, y) = data();
    let mut m = Sequential::new().with_seed(2);
    m.add(
        Dense::new(4)
            .input_shape(&[3])
            .use_bias(false)
            .kernel_regularizer(Regularizer::l2(0.1)),
    )
    .unwrap();
    m.add(Dense::new(2)).unwrap();
    m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    assert_eq!(m.count_params(), 12 + 10);
    let names: Vec<&str> = m.weights().iter().map(|v| v.name()).collect();
    assert_eq!(names, ["dense/kernel", "dense_1/kernel", "dense_1/bias"]);

    // evaluate = the loss + 0.1 · Σ kernel², as Keras reports it.
    let e = m.evaluate(&x, &y, 8, 0).unwrap()[0];
    let pred = m.predict(&x, 8).unwrap();
    let mse: f64 = pred
        .as_slice()
        .iter()
        .zip(y.as_slice())
        .map(|(p, t)| f64::from(p - t).powi(2))
        .sum::<f64>()
        / 16.0;
    let k = m.weights()[0].value().clone();
    let penalty: f64 = 0.1
        * k.as_slice()
            .iter()
            .map(|&w| f64::from(w).powi(2))
            .sum::<f64>();
    assert!(
        ((f64::from(e) - (mse + penalty)) / (mse + penalty)).abs() < 1e-5,
        "{e} vs {} + {penalty}",
        mse
    );
    let h = m.fit(&x, &y, quiet(30)).unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss[29] < loss[0], "{loss:?}");

    let dir = tempfile::tempdir().unwrap();
    for file in ["r.safetensors", "r.keras", "r.h5"] {
        let path = dir.path().join(file);
        m.save(&path, false).unwrap();
        let mut back = load_model(&path).unwrap();
        assert_eq!(back.get_weights(), m.get_weights(), "{file}");
        assert_eq!(
            back.evaluate(&x, &y, 8, 0).unwrap(),
            m.evaluate(&x, &y, 8, 0).unwrap(),
            "{file}: the regulariser is loaded"
        );
    }
}

#[test]
fn layer_outputs_and_get_layer() {
    let mut m = Sequential::new();
    m.add(Flatten::new().input_shape(&[2, 3])).unwrap();
    m.add(Dense::new(4).name("hidden")).unwrap();
    m.add(Dense::new(2)).unwrap();
    let x = Tensor::from_vec((0..12).map(|i| i as f32 / 12.0).collect(), &[2, 2, 3]).unwrap();
    let outs = m.layer_outputs(&x).unwrap();
    let shapes: Vec<&[usize]> = outs.iter().map(Tensor::shape).collect();
    assert_eq!(shapes, [&[2, 6][..], &[2, 4], &[2, 2]]);
    assert_eq!(outs[0].to_vec(), x.to_vec());
    assert_eq!(outs[2], m.predict(&x, 2).unwrap());
    assert_eq!(m.get_layer("hidden").unwrap().class_name(), "Dense");
    assert!(m.get_layer("nope").is_none());
    assert_eq!(m.output_shapes(), &[vec![6], vec![4], vec![2]]);
}

/// A layer without GPU kernels keeps the model off the GPU, naming the
/// layer and its class (never a silent CPU fallback).
#[cfg(feature = "cuda")]
#[test]
fn a_layer_without_gpu_kernels_refuses_the_gpu() {
    let mut m = with_scale();
    let err = m.to_device(hebb_tensor::Device::Cuda(0)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("scale") && text.contains("mypkg>Scale"),
        "{text}"
    );
    assert_eq!(m.device(), hebb_tensor::Device::Cpu);
}
