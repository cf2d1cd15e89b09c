//! Shared test helpers: the ten optimiser configurations and their update
//! rules written out again in `f64`, straight from the Keras 3 sources
//! (keras/src/optimizers/{sgd,adagrad,adadelta,rmsprop,adam}.py).

#![allow(dead_code)]

use hebb_optim::{Adadelta, Adagrad, Adam, Optimizer, RmsProp, Sgd};

/// One optimiser configuration, its hebb-optim implementation and its f64 reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Config {
    Sgd {
        lr: f64,
    },
    SgdMomentum {
        lr: f64,
        momentum: f64,
    },
    SgdNesterov {
        lr: f64,
        momentum: f64,
    },
    Adagrad {
        lr: f64,
        initial: f64,
        epsilon: f64,
    },
    Adadelta {
        lr: f64,
        rho: f64,
        epsilon: f64,
    },
    RmsProp {
        lr: f64,
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
    Adam {
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
}

impl Config {
    /// The ten configurations of the brief, with learning rates large enough
    /// that three steps move the weights visibly.
    pub fn all() -> Vec<(&'static str, Config)> {
        vec![
            ("SGD", Config::Sgd { lr: 0.1 }),
            (
                "SGD momentum",
                Config::SgdMomentum {
                    lr: 0.1,
                    momentum: 0.9,
                },
            ),
            (
                "SGD Nesterov",
                Config::SgdNesterov {
                    lr: 0.1,
                    momentum: 0.9,
                },
            ),
            (
                "Adagrad",
                Config::Adagrad {
                    lr: 0.1,
                    initial: 0.1,
                    epsilon: 1e-7,
                },
            ),
            (
                "Adadelta",
                Config::Adadelta {
                    lr: 1.0,
                    rho: 0.95,
                    epsilon: 1e-4,
                },
            ),
            (
                "RMSprop",
                Config::RmsProp {
                    lr: 0.01,
                    rho: 0.9,
                    momentum: 0.0,
                    epsilon: 1e-7,
                    centered: false,
                },
            ),
            (
                "RMSprop momentum",
                Config::RmsProp {
                    lr: 0.01,
                    rho: 0.9,
                    momentum: 0.9,
                    epsilon: 1e-7,
                    centered: false,
                },
            ),
            (
                "RMSprop centered",
                Config::RmsProp {
                    lr: 0.01,
                    rho: 0.9,
                    momentum: 0.0,
                    epsilon: 1e-7,
                    centered: true,
                },
            ),
            (
                "Adam",
                Config::Adam {
                    lr: 0.1,
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                    amsgrad: false,
                },
            ),
            (
                "Adam amsgrad",
                Config::Adam {
                    lr: 0.97,
                    beta_1: 0.9,
                    beta_2: 0.999,
                    epsilon: 1e-7,
                    amsgrad: true,
                },
            ),
        ]
    }

    /// The hebb-optim optimiser for this configuration.
    pub fn build(self) -> Box<dyn Optimizer> {
        match self {
            Config::Sgd { lr } => Box::new(Sgd::new(lr as f32)),
            Config::SgdMomentum { lr, momentum } => {
                Box::new(Sgd::new(lr as f32).with_momentum(momentum, false))
            }
            Config::SgdNesterov { lr, momentum } => {
                Box::new(Sgd::new(lr as f32).with_momentum(momentum, true))
            }
            Config::Adagrad {
                lr,
                initial,
                epsilon,
            } => Box::new(
                Adagrad::new(lr as f32)
                    .with_initial_accumulator_value(initial)
                    .with_epsilon(epsilon),
            ),
            Config::Adadelta { lr, rho, epsilon } => {
                Box::new(Adadelta::new(lr as f32).with_rho(rho).with_epsilon(epsilon))
            }
            Config::RmsProp {
                lr,
                rho,
                momentum,
                epsilon,
                centered,
            } => Box::new(
                RmsProp::new(lr as f32)
                    .with_rho(rho)
                    .with_momentum(momentum)
                    .with_epsilon(epsilon)
                    .with_centered(centered),
            ),
            Config::Adam {
                lr,
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            } => Box::new(
                Adam::new(lr as f32)
                    .with_beta_1(beta_1)
                    .with_beta_2(beta_2)
                    .with_epsilon(epsilon)
                    .with_amsgrad(amsgrad),
            ),
        }
    }

    /// The f64 reference state for `n` parameters.
    pub fn reference(self, n: usize) -> Reference {
        let initial = match self {
            Config::Adagrad { initial, .. } => initial,
            _ => 0.0,
        };
        let kinds: Vec<&'static str> = match self {
            Config::Sgd { .. } => vec![],
            Config::SgdMomentum { .. } | Config::SgdNesterov { .. } => vec!["momentum"],
            Config::Adagrad { .. } => vec!["accumulator"],
            Config::Adadelta { .. } => vec!["accumulated_grad", "accumulated_delta_var"],
            Config::RmsProp {
                momentum, centered, ..
            } => {
                let mut k = vec!["velocity"];
                if momentum > 0.0 {
                    k.push("momentum");
                }
                if centered {
                    k.push("average_gradient");
                }
                k
            }
            Config::Adam { amsgrad, .. } => {
                let mut k = vec!["momentum", "velocity"];
                if amsgrad {
                    k.push("velocity_hat");
                }
                k
            }
        };
        Reference {
            config: self,
            iterations: 0,
            slots: kinds
                .into_iter()
                .map(|k| {
                    let init = if k == "accumulator" { initial } else { 0.0 };
                    (k, vec![init; n])
                })
                .collect(),
        }
    }
}

/// The Keras update rules in f64, element by element.
#[derive(Debug, Clone)]
pub struct Reference {
    config: Config,
    pub iterations: u64,
    /// Slots by Keras name, each over all parameters (variables concatenated).
    pub slots: Vec<(&'static str, Vec<f64>)>,
}

impl Reference {
    fn slot(&mut self, kind: &str) -> &mut Vec<f64> {
        &mut self.slots.iter_mut().find(|(k, _)| *k == kind).unwrap().1
    }

    /// One step: `w` updated in place from gradient `g`.
    pub fn step(&mut self, w: &mut [f64], g: &[f64]) {
        let t = (self.iterations + 1) as f64;
        // The learning rate is a float32 variable in Keras.
        let round_lr = |lr: f64| f64::from(lr as f32);
        let config = match self.config {
            Config::Sgd { lr } => Config::Sgd { lr: round_lr(lr) },
            Config::SgdMomentum { lr, momentum } => Config::SgdMomentum {
                lr: round_lr(lr),
                momentum,
            },
            Config::SgdNesterov { lr, momentum } => Config::SgdNesterov {
                lr: round_lr(lr),
                momentum,
            },
            Config::Adagrad {
                lr,
                initial,
                epsilon,
            } => Config::Adagrad {
                lr: round_lr(lr),
                initial,
                epsilon,
            },
            Config::Adadelta { lr, rho, epsilon } => Config::Adadelta {
                lr: round_lr(lr),
                rho,
                epsilon,
            },
            Config::RmsProp {
                lr,
                rho,
                momentum,
                epsilon,
                centered,
            } => Config::RmsProp {
                lr: round_lr(lr),
                rho,
                momentum,
                epsilon,
                centered,
            },
            Config::Adam {
                lr,
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            } => Config::Adam {
                lr: round_lr(lr),
                beta_1,
                beta_2,
                epsilon,
                amsgrad,
            },
        };
        for i in 0..w.len() {
            let g = g[i];
            match config {
                Config::Sgd { lr } => w[i] -= g * lr,
                Config::SgdMomentum { lr, momentum } => {
                    let v = &mut self.slot("momentum")[i];
                    *v = *v * momentum - g * lr;
                    w[i] += *v;
                }
                Config::SgdNesterov { lr, momentum } => {
                    let v = &mut self.slot("momentum")[i];
                    *v = *v * momentum - g * lr;
                    w[i] += *v * momentum - g * lr;
                }
                Config::Adagrad { lr, epsilon, .. } => {
                    let a = &mut self.slot("accumulator")[i];
                    *a += g * g;
                    w[i] -= lr * g / (*a + epsilon).sqrt();
                }
                Config::Adadelta { lr, rho, epsilon } => {
                    let eg = {
                        let eg = &mut self.slot("accumulated_grad")[i];
                        *eg = rho * *eg + (1.0 - rho) * g * g;
                        *eg
                    };
                    let edx = &mut self.slot("accumulated_delta_var")[i];
                    let delta = -((*edx + epsilon).sqrt() * g / (eg + epsilon).sqrt());
                    *edx = rho * *edx + (1.0 - rho) * delta * delta;
                    w[i] += lr * delta;
                }
                Config::RmsProp {
                    lr,
                    rho,
                    momentum,
                    epsilon,
                    centered,
                } => {
                    let v = {
                        let v = &mut self.slot("velocity")[i];
                        *v = rho * *v + (1.0 - rho) * g * g;
                        *v
                    };
                    let denominator = if centered {
                        let a = &mut self.slot("average_gradient")[i];
                        *a = rho * *a + (1.0 - rho) * g;
                        v - *a * *a + epsilon
                    } else {
                        v + epsilon
                    };
                    let increment = lr * g / denominator.sqrt();
                    if momentum > 0.0 {
                        let m = &mut self.slot("momentum")[i];
                        *m = momentum * *m + increment;
                        w[i] -= *m;
                    } else {
                        w[i] -= increment;
                    }
                }
                Config::Adam {
                    lr,
                    beta_1,
                    beta_2,
                    epsilon,
                    amsgrad,
                } => {
                    // Keras computes the powers in the variable dtype:
                    // cast(beta, float32) ** cast(t, float32). The
                    // cancellation in 1 - beta_2^t magnifies the float32
                    // roundings of beta_2 and of the power about 1000-fold
                    // (1 - 0.999f32 is 1.3e-5 off 0.001), so the reference
                    // rounds there too, and computes the rest in f64.
                    let power = |beta: f64| f64::from((beta as f32).powf(t as f32));
                    let alpha = lr * (1.0 - power(beta_2)).sqrt() / (1.0 - power(beta_1));
                    let m = {
                        let m = &mut self.slot("momentum")[i];
                        *m += (g - *m) * (1.0 - beta_1);
                        *m
                    };
                    let mut v = {
                        let v = &mut self.slot("velocity")[i];
                        *v += (g * g - *v) * (1.0 - beta_2);
                        *v
                    };
                    if amsgrad {
                        let vh = &mut self.slot("velocity_hat")[i];
                        *vh = vh.max(v);
                        v = *vh;
                    }
                    w[i] -= m * alpha / (v.sqrt() + epsilon);
                }
            }
        }
        self.iterations += 1;
    }
}

/// `|got - want| <= rel * (|want| + scale)`: relative to the value, with
/// `scale` the magnitude of the quantity (f32 cancellation leaves absolute
/// errors of about `scale * 6e-8`).
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rel: f64, scale: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = rel * (w.abs() + scale);
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (difference {:e}, tolerance {tol:e})",
            (f64::from(g) - w).abs()
        );
    }
}
