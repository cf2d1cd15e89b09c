//! Weight initialisers with Keras 3 semantics
//! (`keras/src/initializers/random_initializers.py`,
//! `keras/src/initializers/constant_initializers.py`).
//!
//! The fans of a weight shape are Keras' `compute_fans`: a scalar has
//! `fan_in = fan_out = 1`, a vector `[n]` has both `n`, a kernel
//! `[in, out]` has `fan_in = in`, `fan_out = out`, and a convolution kernel
//! `[..., in, out]` multiplies both by the receptive field (the product of
//! the leading dimensions).
//!
//! The variance-scaling family divides a `scale` by `n = max(1, fan)`
//! (`fan_in`, `fan_out` or their mean `fan_avg`) and draws from
//!
//! - a uniform distribution on `[-limit, limit)`, `limit = sqrt(3 · scale / n)`;
//! - a normal distribution truncated at two standard deviations (values
//!   further out are re-drawn) with `stddev = sqrt(scale / n) / 0.87962566103423978`,
//!   the constant being the standard deviation of a unit normal truncated
//!   at `±2`, so that the drawn values have standard deviation `sqrt(scale / n)`.
//!
//! | initialiser | scale | mode | distribution |
//! |---|---|---|---|
//! | `glorot_uniform` | 1 | `fan_avg` | uniform: `limit = sqrt(6 / (fan_in + fan_out))` |
//! | `glorot_normal` | 1 | `fan_avg` | truncated normal, `stddev = sqrt(2 / (fan_in + fan_out)) / 0.8796…` |
//! | `he_uniform` | 2 | `fan_in` | uniform: `limit = sqrt(6 / fan_in)` |
//! | `he_normal` | 2 | `fan_in` | truncated normal, `stddev = sqrt(2 / fan_in) / 0.8796…` |
//! | `lecun_uniform` | 1 | `fan_in` | uniform: `limit = sqrt(3 / fan_in)` |
//! | `lecun_normal` | 1 | `fan_in` | truncated normal, `stddev = sqrt(1 / fan_in) / 0.8796…` |
//!
//! Randomness comes from the generator passed in (hebb uses a seeded
//! [`ChaCha8Rng`](hebb_tensor::random::ChaCha8Rng)); normal draws are
//! `rand_distr`'s `StandardNormal`, computed in `f64` and rounded to `f32`.
//! Keras draws from its backend's generator, so the values are distributed
//! as Keras' but are not Keras' bits.
//!
//! ```
//! use hebb_layers::Initializer;
//! use hebb_tensor::random::chacha;
//!
//! let init = Initializer::from_name("glorot_uniform")?;
//! let w = init.generate(&[784, 128], &mut chacha(42))?;
//! let limit = (6.0f32 / (784.0 + 128.0)).sqrt();
//! assert!(w.to_vec().iter().all(|v| v.abs() <= limit));
//! # Ok::<(), hebb_layers::Error>(())
//! ```

use hebb_tensor::Tensor;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result};

/// The standard deviation of a unit normal truncated to `[-2, 2]`, by which
/// Keras divides the truncated-normal `stddev` of the variance-scaling
/// initialisers (`VarianceScaling.__call__`).
pub const TRUNCATED_NORMAL_STDDEV: f64 = 0.879_625_661_034_239_8;

/// A weight initialiser (`keras.initializers.*`).
///
/// Defaults as in Keras: [`RandomNormal`](Self::RandomNormal) `mean = 0`,
/// `stddev = 0.05`; [`TruncatedNormal`](Self::TruncatedNormal) the same;
/// [`RandomUniform`](Self::RandomUniform) `[-0.05, 0.05)`;
/// [`Constant`](Self::Constant) `0`. [`from_name`](Self::from_name) gives
/// those defaults. The variance-scaling initialisers are described in the
/// [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Initializer {
    /// Glorot (Xavier) uniform, Keras' default kernel initialiser:
    /// `U[-limit, limit)`, `limit = sqrt(6 / (fan_in + fan_out))`
    /// (Glorot & Bengio 2010).
    GlorotUniform,
    /// Glorot normal: truncated normal with
    /// `stddev = sqrt(2 / (fan_in + fan_out)) / 0.87962566103423978`.
    GlorotNormal,
    /// He normal: truncated normal with `stddev = sqrt(2 / fan_in) / 0.87962566103423978`
    /// (He et al. 2015).
    HeNormal,
    /// He uniform: `U[-limit, limit)`, `limit = sqrt(6 / fan_in)`.
    HeUniform,
    /// LeCun normal: truncated normal with `stddev = sqrt(1 / fan_in) / 0.87962566103423978`.
    LecunNormal,
    /// LeCun uniform: `U[-limit, limit)`, `limit = sqrt(3 / fan_in)`.
    LecunUniform,
    /// All zeros, Keras' default bias initialiser.
    Zeros,
    /// All ones.
    Ones,
    /// Every element `value` (`keras.initializers.Constant`, default `0`).
    Constant {
        /// The value.
        value: f32,
    },
    /// `N(mean, stddev²)`, not truncated (Keras default `mean = 0`, `stddev = 0.05`).
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation, `>= 0`.
        stddev: f32,
    },
    /// `N(mean, stddev²)` with draws more than two standard deviations from
    /// the mean re-drawn (Keras default `mean = 0`, `stddev = 0.05`).
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation before truncation, `>= 0`.
        stddev: f32,
    },
    /// `U[minval, maxval)` (Keras default `[-0.05, 0.05)`).
    RandomUniform {
        /// Lower bound (inclusive).
        minval: f32,
        /// Upper bound (exclusive), `>= minval`.
        maxval: f32,
    },
}

/// Which fan a variance-scaling initialiser divides by.
#[derive(Clone, Copy)]
enum Mode {
    FanIn,
    FanAvg,
}

/// `(fan_in, fan_out)` of a weight shape, as Keras' `compute_fans`
/// (`keras/src/initializers/random_initializers.py`):
/// `[]` -> `(1, 1)`; `[n]` -> `(n, n)`; `[in, out]` -> `(in, out)`;
/// `[k1, .., kr, in, out]` -> `(in · Πk, out · Πk)`.
pub fn compute_fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [fan_in, fan_out] => (*fan_in, *fan_out),
        [kernel @ .., fan_in, fan_out] => {
            // Saturating: a shape this large is refused when it is allocated.
            let receptive = kernel.iter().fold(1usize, |r, &k| r.saturating_mul(k));
            (
                fan_in.saturating_mul(receptive),
                fan_out.saturating_mul(receptive),
            )
        }
    }
}

impl Initializer {
    /// The names [`from_name`](Self::from_name) accepts: Keras' class names,
    /// their snake_case forms and its aliases (`keras/src/initializers/__init__.py`).
    pub const NAMES: &'static [&'static str] = &[
        "glorot_uniform",
        "GlorotUniform",
        "glorot_normal",
        "GlorotNormal",
        "he_normal",
        "HeNormal",
        "he_uniform",
        "HeUniform",
        "lecun_normal",
        "LecunNormal",
        "lecun_uniform",
        "LecunUniform",
        "zeros",
        "Zeros",
        "zero",
        "ones",
        "Ones",
        "one",
        "constant",
        "Constant",
        "random_normal",
        "RandomNormal",
        "normal",
        "truncated_normal",
        "TruncatedNormal",
        "random_uniform",
        "RandomUniform",
        "uniform",
    ];

    /// The initialiser Keras' `keras.initializers.get(name)` returns, with
    /// its default arguments. Names are case-sensitive, as in Keras.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown name, listing [`NAMES`](Self::NAMES).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "glorot_uniform" | "GlorotUniform" => Self::GlorotUniform,
            "glorot_normal" | "GlorotNormal" => Self::GlorotNormal,
            "he_normal" | "HeNormal" => Self::HeNormal,
            "he_uniform" | "HeUniform" => Self::HeUniform,
            "lecun_normal" | "LecunNormal" => Self::LecunNormal,
            "lecun_uniform" | "LecunUniform" => Self::LecunUniform,
            "zeros" | "Zeros" | "zero" => Self::Zeros,
            "ones" | "Ones" | "one" => Self::Ones,
            "constant" | "Constant" => Self::Constant { value: 0.0 },
            "random_normal" | "RandomNormal" | "normal" => Self::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            "truncated_normal" | "TruncatedNormal" => Self::TruncatedNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            "random_uniform" | "RandomUniform" | "uniform" => Self::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            _ => {
                return Err(Error::InvalidArgument {
                    what: "initializer",
                    detail: format!(
                        "unknown initializer {name:?}; known names: {}",
                        Self::NAMES.join(", ")
                    ),
                });
            }
        })
    }

    /// Keras' snake_case name of the initialiser (`"glorot_uniform"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::GlorotUniform => "glorot_uniform",
            Self::GlorotNormal => "glorot_normal",
            Self::HeNormal => "he_normal",
            Self::HeUniform => "he_uniform",
            Self::LecunNormal => "lecun_normal",
            Self::LecunUniform => "lecun_uniform",
            Self::Zeros => "zeros",
            Self::Ones => "ones",
            Self::Constant { .. } => "constant",
            Self::RandomNormal { .. } => "random_normal",
            Self::TruncatedNormal { .. } => "truncated_normal",
            Self::RandomUniform { .. } => "random_uniform",
        }
    }

    /// A tensor of `shape` drawn from this initialiser (Keras'
    /// `initializer(shape)`), filled in row-major order from `rng`.
    ///
    /// The memory is reserved before any value is drawn, fallibly (see
    /// [`Tensor::try_from_fn`]): a shape too large for the machine is an
    /// error naming the shape and the bytes, not an abort.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative or non-finite `stddev`, or
    /// `minval > maxval` or a non-finite bound of
    /// [`RandomUniform`](Self::RandomUniform); the tensor errors
    /// [`hebb_tensor::Error::Allocation`] (more bytes than a process can
    /// address, or out of memory) and
    /// [`hebb_tensor::Error::InvalidArgument`] (an element count that
    /// overflows `usize`), wrapped.
    pub fn generate<R: Rng + ?Sized>(&self, shape: &[usize], rng: &mut R) -> Result<Tensor> {
        let draw = |dist: Draw, rng: &mut R| Tensor::try_from_fn(shape, |_| dist.sample(rng));
        Ok(match *self {
            Self::Zeros => Tensor::try_full(shape, 0.0)?,
            Self::Ones => Tensor::try_full(shape, 1.0)?,
            Self::Constant { value } => Tensor::try_full(shape, value)?,
            Self::RandomNormal { mean, stddev } => {
                check_stddev(self.name(), stddev)?;
                draw(Draw::normal(mean, stddev, false), rng)?
            }
            Self::TruncatedNormal { mean, stddev } => {
                check_stddev(self.name(), stddev)?;
                draw(Draw::normal(mean, stddev, true), rng)?
            }
            Self::RandomUniform { minval, maxval } => {
                if !(minval.is_finite() && maxval.is_finite() && minval <= maxval) {
                    return Err(Error::InvalidArgument {
                        what: "random_uniform",
                        detail: format!(
                            "need finite minval <= maxval, got minval={minval}, maxval={maxval}"
                        ),
                    });
                }
                draw(
                    Draw::Uniform {
                        minval: f64::from(minval),
                        maxval: f64::from(maxval),
                    },
                    rng,
                )?
            }
            Self::GlorotUniform => draw(variance_scaling(shape, 1.0, Mode::FanAvg, false), rng)?,
            Self::GlorotNormal => draw(variance_scaling(shape, 1.0, Mode::FanAvg, true), rng)?,
            Self::HeNormal => draw(variance_scaling(shape, 2.0, Mode::FanIn, true), rng)?,
            Self::HeUniform => draw(variance_scaling(shape, 2.0, Mode::FanIn, false), rng)?,
            Self::LecunNormal => draw(variance_scaling(shape, 1.0, Mode::FanIn, true), rng)?,
            Self::LecunUniform => draw(variance_scaling(shape, 1.0, Mode::FanIn, false), rng)?,
        })
    }
}

fn check_stddev(what: &'static str, stddev: f32) -> Result<()> {
    if stddev.is_finite() && stddev >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what,
            detail: format!("stddev must be finite and >= 0, got {stddev}"),
        })
    }
}

/// The distribution of one element.
#[derive(Debug, Clone, Copy)]
enum Draw {
    /// `mean + stddev · z`, `z ~ N(0, 1)`, re-drawing `|z| >= 2` when
    /// `truncated` (TensorFlow's truncated normal keeps `|z| < 2`).
    Normal {
        mean: f64,
        stddev: f64,
        truncated: bool,
    },
    /// `minval + (maxval - minval) · u`, `u ~ U[0, 1)`.
    Uniform { minval: f64, maxval: f64 },
}

impl Draw {
    fn normal(mean: f32, stddev: f32, truncated: bool) -> Self {
        Draw::Normal {
            mean: f64::from(mean),
            stddev: f64::from(stddev),
            truncated,
        }
    }

    /// One draw from `rng`.
    fn sample<R: Rng + ?Sized>(self, rng: &mut R) -> f32 {
        match self {
            Draw::Normal {
                mean,
                stddev,
                truncated,
            } => {
                let z = loop {
                    let z: f64 = StandardNormal.sample(rng);
                    if !truncated || z.abs() < 2.0 {
                        break z;
                    }
                };
                (mean + stddev * z) as f32
            }
            Draw::Uniform { minval, maxval } => {
                let u: f64 = rng.random();
                // Rounding to f32 could reach `maxval` itself; keep the bound exclusive.
                let v = (minval + (maxval - minval) * u) as f32;
                if minval < maxval && f64::from(v) >= maxval {
                    next_down(maxval as f32)
                } else {
                    v
                }
            }
        }
    }
}

/// The largest `f32` below a finite `x` (`f32::next_down`, stable only since Rust 1.86).
fn next_down(x: f32) -> f32 {
    if x > 0.0 {
        f32::from_bits(x.to_bits() - 1)
    } else if x == 0.0 {
        -f32::from_bits(1)
    } else {
        f32::from_bits(x.to_bits() + 1)
    }
}

/// Keras' `VarianceScaling.__call__` for `mode` and a uniform or
/// truncated-normal distribution (see the module docs): the distribution
/// of each element.
fn variance_scaling(shape: &[usize], scale: f64, mode: Mode, truncated_normal: bool) -> Draw {
    let (fan_in, fan_out) = compute_fans(shape);
    let n = match mode {
        Mode::FanIn => fan_in as f64,
        Mode::FanAvg => (fan_in as f64 + fan_out as f64) / 2.0,
    };
    let scale = scale / n.max(1.0);
    if truncated_normal {
        Draw::Normal {
            mean: 0.0,
            stddev: scale.sqrt() / TRUNCATED_NORMAL_STDDEV,
            truncated: true,
        }
    } else {
        let limit = (3.0 * scale).sqrt();
        Draw::Uniform {
            minval: -limit,
            maxval: limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hebb_tensor::random::chacha;

    /// Mean and (population) standard deviation, in f64.
    fn stats(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }

    fn draw(init: Initializer, shape: &[usize], seed: u64) -> Vec<f32> {
        init.generate(shape, &mut chacha(seed)).unwrap().to_vec()
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(compute_fans(&[]), (1, 1));
        assert_eq!(compute_fans(&[7]), (7, 7));
        assert_eq!(compute_fans(&[784, 128]), (784, 128));
        assert_eq!(compute_fans(&[3, 3, 16, 32]), (144, 288));
    }

    #[test]
    fn uniform_family_limits_and_spread() {
        // Variance of U[-l, l) is l²/3.
        for (init, shape, limit) in [
            (
                Initializer::GlorotUniform,
                [300usize, 200usize],
                (6.0f64 / 500.0).sqrt(),
            ),
            (Initializer::HeUniform, [300, 200], (6.0f64 / 300.0).sqrt()),
            (
                Initializer::LecunUniform,
                [300, 200],
                (3.0f64 / 300.0).sqrt(),
            ),
            (
                Initializer::RandomUniform {
                    minval: -0.05,
                    maxval: 0.05,
                },
                [300, 200],
                0.05,
            ),
        ] {
            let v = draw(init, &shape, 1);
            assert_eq!(v.len(), 60_000);
            assert!(v.iter().all(|&x| x.abs() <= limit as f32), "{init:?}");
            let (mean, std) = stats(&v);
            let want = limit / 3f64.sqrt();
            assert!(mean.abs() < 0.01 * limit, "{init:?}: mean {mean}");
            assert!(
                (std / want - 1.0).abs() < 0.01,
                "{init:?}: std {std} vs {want}"
            );
            // Both ends of the range are reached.
            let max = v.iter().cloned().fold(f32::MIN, f32::max);
            assert!(f64::from(max) > 0.99 * limit, "{init:?}");
        }
    }

    #[test]
    fn truncated_normal_family_stddev_and_bound() {
        // The drawn values have stddev sqrt(scale / n); the truncation bound
        // is two of the pre-truncation stddevs, sqrt(scale / n) / 0.8796.
        for (init, shape, sd) in [
            (
                Initializer::HeNormal,
                [500usize, 120usize],
                (2.0f64 / 500.0).sqrt(),
            ),
            (
                Initializer::GlorotNormal,
                [500, 120],
                (2.0f64 / 620.0).sqrt(),
            ),
            (
                Initializer::LecunNormal,
                [500, 120],
                (1.0f64 / 500.0).sqrt(),
            ),
        ] {
            let v = draw(init, &shape, 2);
            let bound = 2.0 * sd / TRUNCATED_NORMAL_STDDEV;
            assert!(
                v.iter().all(|&x| f64::from(x).abs() < bound * (1.0 + 1e-6)),
                "{init:?}"
            );
            let (mean, std) = stats(&v);
            assert!(mean.abs() < 0.01 * sd, "{init:?}: mean {mean}");
            assert!((std / sd - 1.0).abs() < 0.01, "{init:?}: std {std} vs {sd}");
            // Values near the bound occur: the tails are cut, not shrunk.
            assert!(
                v.iter().any(|&x| f64::from(x).abs() > 0.95 * bound),
                "{init:?}"
            );
        }
        let t = Initializer::TruncatedNormal {
            mean: 1.0,
            stddev: 0.05,
        };
        let v = draw(t, &[60_000], 3);
        assert!(v.iter().all(|&x| (x - 1.0).abs() < 0.1 + 1e-6));
        let (mean, std) = stats(&v);
        assert!((mean - 1.0).abs() < 0.001);
        assert!(
            (std / (0.05 * TRUNCATED_NORMAL_STDDEV) - 1.0).abs() < 0.01,
            "{std}"
        );
    }

    #[test]
    fn random_normal_defaults() {
        let init = Initializer::from_name("random_normal").unwrap();
        assert_eq!(
            init,
            Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.05
            }
        );
        let v = draw(init, &[60_000], 4);
        let (mean, std) = stats(&v);
        assert!(mean.abs() < 0.001, "{mean}");
        assert!((std / 0.05 - 1.0).abs() < 0.01, "{std}");
        // Not truncated: some draws lie beyond two standard deviations.
        assert!(v.iter().any(|&x| x.abs() > 0.1));
    }

    #[test]
    fn deterministic_per_seed() {
        for name in [
            "glorot_uniform",
            "he_normal",
            "random_normal",
            "random_uniform",
        ] {
            let init = Initializer::from_name(name).unwrap();
            let a = draw(init, &[30, 20], 612);
            assert_eq!(a, draw(init, &[30, 20], 612), "{name}");
            assert_ne!(a, draw(init, &[30, 20], 613), "{name}");
        }
    }

    #[test]
    fn constants_names_and_errors() {
        let z = Initializer::from_name("zeros")
            .unwrap()
            .generate(&[2, 3], &mut chacha(0))
            .unwrap();
        assert_eq!(z, Tensor::zeros(&[2, 3]));
        let o = Initializer::from_name("one")
            .unwrap()
            .generate(&[4], &mut chacha(0))
            .unwrap();
        assert_eq!(o, Tensor::ones(&[4]));
        let c = Initializer::Constant { value: 0.5 }
            .generate(&[], &mut chacha(0))
            .unwrap();
        assert_eq!(c.item().unwrap(), 0.5);
        for &name in Initializer::NAMES {
            let init = Initializer::from_name(name).unwrap();
            assert_eq!(Initializer::from_name(init.name()).unwrap(), init);
        }
        let err = Initializer::from_name("xavier").unwrap_err().to_string();
        assert!(
            err.contains("xavier") && err.contains("glorot_uniform") && err.contains("he_normal"),
            "{err}"
        );
        let bad = Initializer::RandomNormal {
            mean: 0.0,
            stddev: -1.0,
        };
        assert!(bad.generate(&[2], &mut chacha(0)).is_err());
        let bad = Initializer::RandomUniform {
            minval: 1.0,
            maxval: 0.0,
        };
        assert!(bad.generate(&[2], &mut chacha(0)).is_err());
        // Empty shapes give empty tensors.
        assert_eq!(
            Initializer::HeNormal
                .generate(&[0, 5], &mut chacha(0))
                .unwrap()
                .len(),
            0
        );
    }
}
