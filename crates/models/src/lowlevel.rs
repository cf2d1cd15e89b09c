//! The lecture's gradient-descent loops, written with the tape (the
//! "low-level API": `tf.GradientTape` plus `assign_sub`).
//!
//! [`Network`] is a stack of [`Dense`] layers with ReLU hidden layers and a
//! softmax output, initialised as the lecture does: each kernel
//! `np.random.randn(in, out)` from one NumPy seed, in layer order, biases
//! zero. [`Network::train`] runs, for `i = 0..=iterations`:
//!
//! ```text
//! with tape:   PRED_train = net(X_train); Loss_train = mean(cce(Y_train, PRED_train))
//!              PRED_test  = net(X_test);  Loss_test  = mean(cce(Y_test, PRED_test))
//! accuracy = mean(argmax(PRED) == y)                      (before the update)
//! grads = tape.gradient(Loss_train, variables)
//! v.assign_sub(learning_rate * grad)                      for every variable
//! ```
//!
//! which is lecture 12.2 with no hidden layer (softmax regression) and 12.6
//! with one of 16 ReLU units. [`LogisticRegression`] is the delta rule of
//! 12.1: one sigmoid neuron trained by gradient descent on binary
//! cross-entropy.

use hebb_autograd::{GradientTape, Variable};
use hebb_layers::{Activation, Dense, Layer, losses, metrics};
use hebb_tensor::{Device, Tensor, random::RandomState};

use crate::{Error, Result};

/// A labelled classification data set split into training and test parts.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training features `[n_train, features]`.
    pub x_train: Tensor,
    /// Training labels, `n_train` class indices.
    pub y_train: Vec<usize>,
    /// Test features `[n_test, features]`.
    pub x_test: Tensor,
    /// Test labels, `n_test` class indices.
    pub y_test: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
}

impl Dataset {
    /// The same data set with its features on `device` (the labels stay
    /// host indices; [`Network::train`] puts their one-hot form beside the features).
    ///
    /// # Errors
    /// [`hebb_tensor::Error::NoCudaDevice`] (wrapped) or a copy error.
    pub fn to_device(&self, device: Device) -> Result<Self> {
        Ok(Self {
            x_train: self.x_train.to_device(device)?,
            x_test: self.x_test.to_device(device)?,
            ..self.clone()
        })
    }

    fn check(&self) -> Result<()> {
        let ok =
            |x: &Tensor, y: &[usize]| x.rank() == 2 && x.shape()[0] == y.len() && !y.is_empty();
        if !ok(&self.x_train, &self.y_train)
            || !ok(&self.x_test, &self.y_test)
            || self.x_train.shape()[1] != self.x_test.shape()[1]
        {
            return Err(Error::Shape {
                model: "Dataset",
                detail: format!(
                    "x_train {:?} with {} labels and x_test {:?} with {} labels do not fit (each split needs [n, features] with n >= 1 labels)",
                    self.x_train.shape(),
                    self.y_train.len(),
                    self.x_test.shape(),
                    self.y_test.len()
                ),
            });
        }
        Ok(())
    }
}

/// One iteration's figures, all computed before that iteration's update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterationLog {
    /// Iteration number `i`, from 0.
    pub iteration: usize,
    /// Training accuracy.
    pub train_acc: f32,
    /// Mean training loss.
    pub train_loss: f32,
    /// Test accuracy.
    pub test_acc: f32,
    /// Mean test loss.
    pub test_loss: f32,
}

impl IterationLog {
    /// The lecture's print line:
    /// `i: 0, TrainAcc:0.333333, TrainLoss: 2.066978 ,TestAcc:0.266667, TestLoss: 1.880856`
    /// (Python's `"i: %i, TrainAcc:%f, TrainLoss: %f ,TestAcc:%f, TestLoss: %f"`).
    pub fn lecture_line(&self) -> String {
        format!(
            "i: {}, TrainAcc:{:.6}, TrainLoss: {:.6} ,TestAcc:{:.6}, TestLoss: {:.6}",
            self.iteration, self.train_acc, self.train_loss, self.test_acc, self.test_loss
        )
    }
}

/// A feed-forward network of [`Dense`] layers: ReLU hidden layers, softmax output.
#[derive(Debug, Clone)]
pub struct Network {
    /// The layers, input first; named `dense`, `dense_1`, ... as in Keras.
    pub layers: Vec<Dense>,
}

impl Network {
    /// The lecture's initialisation for layer sizes `sizes = [in, h1, .., out]`:
    /// `np.random.seed(seed)`, then each kernel `np.random.randn(in, out)` in
    /// layer order (cast to `f32`), biases zero. `[4, 3]` is 12.2's softmax
    /// regression, `[4, 16, 3]` 12.6's network.
    ///
    /// # Errors
    /// [`Error::Shape`] if fewer than two sizes are given.
    pub fn lecture_init(seed: u32, sizes: &[usize]) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::Shape {
                model: "Network",
                detail: format!("need at least input and output sizes, got {sizes:?}"),
            });
        }
        let mut rng = RandomState::new(seed);
        let last = sizes.len() - 2;
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let name = if i == 0 {
                    "dense".to_string()
                } else {
                    format!("dense_{i}")
                };
                let activation = if i == last {
                    Activation::Softmax
                } else {
                    Activation::Relu
                };
                Ok(Dense::from_weights(
                    name,
                    rng.randn_tensor(&[w[0], w[1]])?,
                    Tensor::zeros(&[w[1]]),
                    activation,
                )?)
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Class probabilities `[batch, classes]` for `x` `[batch, in]`.
    ///
    /// # Errors
    /// Shape errors naming the layer.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.layers
            .iter()
            .try_fold(x.clone(), |h, layer| Ok(layer.predict(&h)?))
    }

    /// Moves the weights to `device`; [`train`](Self::train) then runs
    /// where the data set's tensors are (move them with
    /// [`Dataset::to_device`]).
    ///
    /// # Errors
    /// [`hebb_tensor::Error::NoCudaDevice`] (wrapped) or a copy error.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        for v in self
            .layers
            .iter_mut()
            .flat_map(Dense::trainable_variables_mut)
        {
            let moved = v.value().to_device(device)?;
            *v.value_mut() = moved;
        }
        Ok(())
    }

    fn variables(&self) -> Vec<&Variable> {
        self.layers
            .iter()
            .flat_map(Dense::trainable_variables)
            .collect()
    }

    /// Runs the lecture's loop for `i = 0..=iterations` (see the module docs),
    /// calling `on_iteration` with each iteration's figures, and returns them all.
    ///
    /// # Errors
    /// Shape errors naming the layer; [`Error::NonFiniteLoss`] naming the
    /// iteration if the training loss becomes NaN or infinite.
    pub fn train(
        &mut self,
        data: &Dataset,
        learning_rate: f32,
        iterations: usize,
        mut on_iteration: impl FnMut(&IterationLog),
    ) -> Result<Vec<IterationLog>> {
        data.check()?;
        let y_train =
            Tensor::one_hot(&data.y_train, data.classes)?.to_device(data.x_train.device())?;
        let y_test =
            Tensor::one_hot(&data.y_test, data.classes)?.to_device(data.x_test.device())?;
        let mut logs = Vec::new();
        for iteration in 0..=iterations {
            let tape = GradientTape::new();
            let forward = |x: &Tensor| {
                self.layers
                    .iter()
                    .try_fold(tape.constant(x.clone()), |h, layer| {
                        layer.call(&tape, h, true)
                    })
            };
            let pred_train = forward(&data.x_train)?;
            let loss_train =
                losses::categorical_crossentropy(tape.constant(y_train.clone()), pred_train)?
                    .mean_all();
            let pred_test = forward(&data.x_test)?;
            let loss_test =
                losses::categorical_crossentropy(tape.constant(y_test.clone()), pred_test)?
                    .mean_all();

            let log = IterationLog {
                iteration,
                train_acc: metrics::accuracy(&pred_train.value(), &data.y_train)?,
                train_loss: loss_train.value().item()?,
                test_acc: metrics::accuracy(&pred_test.value(), &data.y_test)?,
                test_loss: loss_test.value().item()?,
            };
            if !log.train_loss.is_finite() {
                return Err(Error::NonFiniteLoss {
                    iteration,
                    loss: log.train_loss,
                });
            }
            on_iteration(&log);
            logs.push(log);

            let grads = tape.gradient_of(loss_train, &self.variables())?;
            drop(tape);
            let vars = self
                .layers
                .iter_mut()
                .flat_map(Dense::trainable_variables_mut);
            for (var, grad) in vars.zip(grads) {
                var.assign_sub(&grad.mul_scalar(learning_rate))?;
            }
        }
        Ok(logs)
    }
}

/// The delta rule (lecture 12.1): one sigmoid neuron `ŷ = σ(X w + b)` trained
/// by batch gradient descent on the mean binary cross-entropy, starting
/// from zero weights. Logistic regression is a one-layer network.
#[derive(Debug, Clone)]
pub struct LogisticRegression {
    /// The neuron: kernel `[features, 1]`, bias `[1]`, sigmoid activation.
    pub neuron: Dense,
}

/// One iteration of [`LogisticRegression::train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BinaryLog {
    /// Iteration number, from 0.
    pub iteration: usize,
    /// Mean binary cross-entropy before the update.
    pub loss: f32,
    /// Accuracy (threshold 0.5) before the update.
    pub accuracy: f32,
}

impl LogisticRegression {
    /// A neuron with `features` inputs and zero weights and bias.
    ///
    /// # Errors
    /// Never for `features >= 1`.
    pub fn new(features: usize) -> Result<Self> {
        let neuron = Dense::from_weights(
            "dense",
            Tensor::zeros(&[features, 1]),
            Tensor::zeros(&[1]),
            Activation::Sigmoid,
        )?;
        Ok(Self { neuron })
    }

    /// `iterations + 1` steps of gradient descent on `x` `[n, features]`
    /// with targets `y` (0 or 1); returns the figures of each step.
    ///
    /// # Errors
    /// Shape errors naming the layer; [`Error::NonFiniteLoss`].
    pub fn train(
        &mut self,
        x: &Tensor,
        y: &[f32],
        learning_rate: f32,
        iterations: usize,
    ) -> Result<Vec<BinaryLog>> {
        let targets = Tensor::from_vec(y.to_vec(), &[y.len(), 1])?;
        let mut logs = Vec::new();
        for iteration in 0..=iterations {
            let tape = GradientTape::new();
            let pred = self.neuron.call(&tape, tape.constant(x.clone()), true)?;
            let loss =
                losses::binary_crossentropy(tape.constant(targets.clone()), pred)?.mean_all();
            let log = BinaryLog {
                iteration,
                loss: loss.value().item()?,
                accuracy: metrics::binary_accuracy(&pred.value(), y, 0.5)?,
            };
            if !log.loss.is_finite() {
                return Err(Error::NonFiniteLoss {
                    iteration,
                    loss: log.loss,
                });
            }
            logs.push(log);
            let grads = tape.gradient_of(loss, &self.neuron.trainable_variables())?;
            drop(tape);
            for (var, grad) in self.neuron.trainable_variables_mut().into_iter().zip(grads) {
                var.assign_sub(&grad.mul_scalar(learning_rate))?;
            }
        }
        Ok(logs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lecture_line_format() {
        let log = IterationLog {
            iteration: 10,
            train_acc: 0.875,
            train_loss: 0.339_41,
            test_acc: 0.866_666_7,
            test_loss: 0.461_705,
        };
        assert_eq!(
            log.lecture_line(),
            "i: 10, TrainAcc:0.875000, TrainLoss: 0.339410 ,TestAcc:0.866667, TestLoss: 0.461705"
        );
    }

    #[test]
    fn init_draws_kernels_in_layer_order() {
        let net = Network::lecture_init(612, &[4, 3]).unwrap();
        assert_eq!(
            net.layers[0].kernel().unwrap().value().to_vec()[0],
            RandomState::new(612).randn() as f32
        );
        let net = Network::lecture_init(612, &[4, 16, 3]).unwrap();
        assert_eq!(hebb_layers::Layer::name(&net.layers[1]), "dense_1");
        assert_eq!(net.layers[1].kernel().unwrap().shape(), &[16, 3]);
        assert!(Network::lecture_init(0, &[4]).is_err());
    }

    #[test]
    fn diverging_loss_is_an_error() {
        let x = Tensor::from_vec(vec![f32::INFINITY, 1.0, 0.0, 1.0], &[2, 2]).unwrap();
        let data = Dataset {
            x_train: x.clone(),
            y_train: vec![0, 1],
            x_test: x,
            y_test: vec![0, 1],
            classes: 2,
        };
        let mut net = Network::lecture_init(1, &[2, 2]).unwrap();
        let err = net.train(&data, 0.5, 5, |_| {}).unwrap_err();
        assert!(
            matches!(err, Error::NonFiniteLoss { iteration: 0, .. }),
            "{err}"
        );
    }
}
