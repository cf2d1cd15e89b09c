//! hebb's image layers against TensorFlow 2.21 / Keras 3.15: the golden
//! numbers of `tests/fixtures/make_layer_fixtures.py` (outputs, gradients of
//! `Σ output · cotangent` with respect to the input and each trainable
//! weight, BatchNormalization's moving statistics after a training call) and
//! the configurations Keras writes.
//!
//! Every layer is made the way a loaded Keras file makes it, from Keras'
//! configuration through [`Registry::builtin`], then built for the fixture's
//! input shape and given the fixture's weights (matched by name, in Keras'
//! order). Each case runs both forms of the layer: the training step's
//! [`Layer::forward`]/[`Layer::backward`] and the tape's [`Layer::call`].
//! Values agree within `1e-5 · max(1, |Keras|)`.

use std::path::Path;

use hebb_autograd::GradientTape;
use hebb_layers::{Layer, Pass, Registry};
use hebb_tensor::Tensor;
use serde_json::{Map, Value};

const TOL: f32 = 1e-5;

/// A fixed stream for `build` (the fixture's weights replace what it draws).
struct Counter(u64);

impl rand::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The cases of one fixture file.
fn cases(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{file}");
    cases
}

/// A nested JSON list of numbers as a flat `Vec<f32>` and its shape.
fn array(v: &Value) -> (Vec<f32>, Vec<usize>) {
    match v {
        Value::Array(items) => {
            let mut data = Vec::new();
            let mut inner = Vec::new();
            for item in items {
                let (d, s) = array(item);
                data.extend(d);
                inner = s;
            }
            let mut shape = vec![items.len()];
            shape.extend(inner);
            (data, shape)
        }
        n => (vec![n.as_f64().unwrap() as f32], vec![]),
    }
}

fn tensor(v: &Value) -> Tensor {
    let (data, shape) = array(v);
    Tensor::from_vec(data, &shape).unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            (g - w).abs() <= TOL * w.abs().max(1.0),
            "{what}[{i}]: hebb {g}, Keras {w}"
        );
    }
}

/// `(name, value)` of a fixture's weight list.
fn named(list: &Value) -> Vec<(String, Tensor)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), tensor(&w["value"])))
        .collect()
}

/// The weight's name without the layer's (`conv2d/kernel` -> `kernel`).
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The layer of a case, made from Keras' configuration, built for the
/// input's per-sample shape and given the fixture's weights.
fn layer_of(case: &Value, what: &str) -> Box<dyn Layer> {
    let class = case["class_name"].as_str().unwrap();
    let mut layer = Registry::builtin()
        .from_config(class, &case["config"])
        .unwrap_or_else(|e| panic!("{what}: from_config: {e}"));
    assert_eq!(layer.class_name(), class, "{what}");
    let x = tensor(&case["x"]);
    let per_sample = &x.shape()[1..];
    let out = tensor(&case["output"]);
    assert_eq!(
        layer.compute_output_shape(per_sample).unwrap(),
        &out.shape()[1..],
        "{what}: output shape"
    );
    layer.build(per_sample, &mut Counter(7)).unwrap();
    let want = named(&case["weights"]);
    let names: Vec<String> = layer
        .weights()
        .iter()
        .map(|w| short(w.name()).to_string())
        .collect();
    let want_names: Vec<String> = want.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, want_names, "{what}: weights in Keras' order");
    for (w, (_, value)) in layer.weights_mut().into_iter().zip(want) {
        w.assign(value).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    layer
}

/// Runs every case of `file`: the step's forward/backward and the tape's
/// call against Keras' numbers.
fn check(file: &str) {
    for case in cases(file) {
        let what = format!("{file}: {}", case["name"].as_str().unwrap());
        let training = case["training"].as_bool().unwrap();
        let pass = Pass {
            training,
            logits: false,
            ..Pass::default()
        };
        let x = tensor(&case["x"]);
        let cot = tensor(&case["cotangent"]);
        let want_out = tensor(&case["output"]);
        let want_gx = tensor(&case["grad_x"]);
        let want_gw = named(&case["grad_weights"]);

        // The training step's form.
        let mut layer = layer_of(&case, &what);
        let trainable = layer.weights().len() - layer.non_trainable_weight_count();
        assert_eq!(trainable, want_gw.len(), "{what}: trainable weights");
        let out = layer.forward(&x, pass).unwrap().clone();
        assert_close(&out, &want_out, &format!("{what}: forward"));
        let mut grad_out = cot.clone();
        let mut grad_in = Tensor::zeros(&[1]);
        layer
            .backward(&x, &mut grad_out, Some(&mut grad_in), pass)
            .unwrap();
        assert_close(&grad_in, &want_gx, &format!("{what}: backward, grad x"));
        let grads = layer.gradients();
        assert_eq!(grads.len(), want_gw.len(), "{what}: gradients");
        for (g, (name, w)) in grads.iter().zip(&want_gw) {
            assert_close(g, w, &format!("{what}: backward, grad {name}"));
        }
        let after = match case.get("weights_after") {
            Some(list) => named(list),
            None => named(&case["weights"]),
        };
        for (w, (name, value)) in layer.weights().iter().zip(&after) {
            assert_close(w.value(), value, &format!("{what}: {name} after the call"));
        }

        // The tape's form (a fresh layer: `call` changes no weight).
        let layer = layer_of(&case, &what);
        let tape = GradientTape::new();
        let xv = tape.watch_tensor(x.clone());
        let y = layer.call(&tape, xv, training).unwrap();
        assert_close(&y.value(), &want_out, &format!("{what}: call"));
        let loss = y.mul(tape.constant(cot.clone())).unwrap().sum_all();
        let gx = tape.gradient(loss, &[xv]).unwrap();
        assert_close(&gx[0], &want_gx, &format!("{what}: tape grad x"));
        let weights = layer.weights();
        let gw = tape.gradient_of(loss, &weights[..trainable]).unwrap();
        for (g, (name, w)) in gw.iter().zip(&want_gw) {
            assert_close(g, w, &format!("{what}: tape grad {name}"));
        }
    }
}

/// A configuration with what may differ between two faithful writers taken
/// out: `dtype` as a string or a `DTypePolicy` object, an initializer as a
/// name or an object (`module`, `registered_name`, and `config` keys whose
/// value is `null`, such as Keras 3.15's `input_axes`, are dropped).
fn normalised(config: &Value) -> Value {
    let mut map: Map<String, Value> = config.as_object().unwrap().clone();
    if let Some(Value::Object(policy)) = map.get("dtype") {
        let name = policy["config"]["name"].clone();
        map.insert("dtype".into(), name);
    }
    for (key, value) in map.iter_mut() {
        if key.ends_with("_initializer") {
            *value = initializer(value);
        }
    }
    Value::Object(map)
}

fn initializer(v: &Value) -> Value {
    match v {
        Value::String(name) => {
            // Keras' short names (`glorot_uniform`) as class names.
            let class: String = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            serde_json::json!({"class_name": class, "config": {}})
        }
        Value::Object(o) => {
            let config: Map<String, Value> = o
                .get("config")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({"class_name": o["class_name"], "config": config})
        }
        other => other.clone(),
    }
}

/// Each case's layer writes Keras' configuration (every key, Keras' values),
/// and makes itself again from its own.
fn check_configs(file: &str) {
    for case in cases(file) {
        let what = format!("{file}: {}", case["name"].as_str().unwrap());
        let layer = layer_of(&case, &what);
        let keras = &case["config"];
        let hebb = layer.config();
        assert_eq!(normalised(&hebb), normalised(keras), "{what}: config");
        let again = Registry::builtin()
            .from_config(layer.class_name(), &hebb)
            .unwrap_or_else(|e| panic!("{what}: from its own config: {e}"));
        assert_eq!(again.config(), hebb, "{what}: config round trip");
    }
}

#[test]
fn conv2d_matches_keras() {
    check("conv2d.json");
}

#[test]
fn max_pooling2d_matches_keras() {
    check("max_pooling2d.json");
}

#[test]
fn average_pooling2d_matches_keras() {
    check("average_pooling2d.json");
}

#[test]
fn global_pooling2d_matches_keras() {
    check("global_pooling2d.json");
}

#[test]
fn batch_normalization_matches_keras() {
    check("batch_normalization.json");
}

#[test]
fn dropout_in_inference_is_the_identity_as_in_keras() {
    check("dropout.json");
}

#[test]
fn reshape_matches_keras() {
    check("reshape.json");
}

#[test]
fn configs_are_keras_configs() {
    for file in [
        "conv2d.json",
        "max_pooling2d.json",
        "average_pooling2d.json",
        "global_pooling2d.json",
        "batch_normalization.json",
        "dropout.json",
        "reshape.json",
    ] {
        check_configs(file);
    }
}
