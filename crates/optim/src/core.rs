//! State and checks shared by every optimiser: the learning rate, the step
//! counter, the variable shapes recorded at the first call, and range checks.

use hebb_autograd::Variable;
use hebb_tensor::Tensor;

use crate::{Error, Result};

/// The [`Optimizer`](crate::Optimizer) methods every optimiser answers from
/// its `core` field: `name` (Keras' class name), `learning_rate`,
/// `set_learning_rate` and `iterations`.
macro_rules! core_accessors {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn learning_rate(&self) -> f32 {
            self.core.learning_rate
        }

        fn set_learning_rate(&mut self, lr: f32) {
            self.core.learning_rate = lr;
        }

        fn iterations(&self) -> u64 {
            self.core.iterations
        }
    };
}
pub(crate) use core_accessors;

/// The part of an optimiser that does not depend on its update rule
/// (Keras `BaseOptimizer`: `learning_rate`, `iterations`, `build`).
#[derive(Debug, Clone)]
pub(crate) struct Core {
    /// The learning rate, an `f32` as in Keras (a `floatx` variable).
    pub(crate) learning_rate: f32,
    /// Number of updates applied (Keras `optimizer.iterations`).
    pub(crate) iterations: u64,
    /// The variables' shapes at the first non-empty call; `None` before.
    shapes: Option<Vec<Vec<usize>>>,
}

impl Core {
    pub(crate) fn new(learning_rate: f32) -> Self {
        Self {
            learning_rate,
            iterations: 0,
            shapes: None,
        }
    }

    /// Checks the arguments of `apply_gradients` and, at the first non-empty
    /// call, records the variables' shapes (Keras `build`). Returns `false`
    /// when there is nothing to update (no variables: Keras makes that a
    /// no-op that does not count as a step).
    ///
    /// Nothing is modified when an error is returned.
    pub(crate) fn begin(
        &mut self,
        optimizer: &'static str,
        variables: &[&mut Variable],
        gradients: &[Tensor],
    ) -> Result<bool> {
        check_lr(optimizer, self.learning_rate)?;
        if variables.len() != gradients.len() {
            return Err(Error::GradientCount {
                optimizer,
                variables: variables.len(),
                gradients: gradients.len(),
            });
        }
        for (v, g) in variables.iter().zip(gradients) {
            if v.shape() != g.shape() {
                return Err(Error::GradientShape {
                    optimizer,
                    variable: v.name().to_string(),
                    variable_shape: v.shape().to_vec(),
                    gradient_shape: g.shape().to_vec(),
                });
            }
        }
        for (v, g) in variables.iter().zip(gradients) {
            // hebb-tensor may have its `cuda` feature (through another
            // crate) while this crate lacks it: the host loops would move
            // the variable off its GPU (`as_mut_slice`).
            #[cfg(not(feature = "cuda"))]
            if v.value().device().is_cuda() {
                return Err(Error::NoCudaFeature {
                    optimizer,
                    variable: v.name().to_string(),
                    device: v.value().device(),
                });
            }
            if v.value().device() != g.device() {
                return Err(Error::GradientDevice {
                    optimizer,
                    variable: v.name().to_string(),
                    variable_device: v.value().device(),
                    gradient_device: g.device(),
                });
            }
        }
        if variables.is_empty() {
            return Ok(false);
        }
        match &self.shapes {
            None => {
                self.shapes = Some(variables.iter().map(|v| v.shape().to_vec()).collect());
            }
            Some(shapes) => {
                if shapes.len() != variables.len() {
                    return Err(Error::VariableCount {
                        optimizer,
                        built: shapes.len(),
                        got: variables.len(),
                    });
                }
                for (index, (v, s)) in variables.iter().zip(shapes).enumerate() {
                    if v.shape() != s.as_slice() {
                        return Err(Error::SlotShape {
                            optimizer,
                            index,
                            variable: v.name().to_string(),
                            variable_shape: v.shape().to_vec(),
                            slot_shape: s.clone(),
                        });
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Builds one slot per variable, filled with `init` on the variable's
/// device, if `slots` is empty (Keras `add_optimizer_variables` /
/// `add_variable_from_reference`); otherwise moves any slot that is not on
/// its variable's device there (state installed with
/// [`Optimizer::set_state`](crate::Optimizer::set_state) from host tensors,
/// then used with variables on a GPU). Called after [`Core::begin`] has
/// checked that the variables match the recorded shapes, so non-empty slots
/// already fit.
///
/// # Errors
/// [`Error::Tensor`] if a slot cannot be made or moved on the device (for
/// example, out of GPU memory); `slots` is left empty rather than partly
/// built.
pub(crate) fn ensure_slots(
    optimizer: &'static str,
    slots: &mut Vec<Tensor>,
    variables: &[&mut Variable],
    init: f32,
) -> Result<()> {
    let failed = |source| Error::Tensor { optimizer, source };
    if slots.is_empty() {
        *slots = variables
            .iter()
            .map(|v| Tensor::full_on(v.shape(), init, v.value().device()))
            .collect::<hebb_tensor::Result<_>>()
            .map_err(failed)?;
    } else {
        for (slot, v) in slots.iter_mut().zip(variables) {
            let device = v.value().device();
            if slot.device() != device {
                *slot = slot.to_device(device).map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// Whether `variable` lives on a GPU, so its update runs as a fused kernel.
#[cfg(feature = "cuda")]
pub(crate) fn on_gpu(variable: &Variable) -> bool {
    matches!(variable.value().device(), hebb_tensor::Device::Cuda(_))
}

/// Runs `kernel` of `source` over `outputs` (updated in place), then
/// `inputs` and `scalars` (see [`hebb_tensor::cuda::launch_elementwise`]),
/// turning a failure into [`Error::Tensor`] for `optimizer`.
#[cfg(feature = "cuda")]
pub(crate) fn launch(
    optimizer: &'static str,
    source: &hebb_tensor::cuda::CudaSource,
    kernel: &'static str,
    outputs: &mut [&mut Tensor],
    inputs: &[&Tensor],
    scalars: &[f32],
) -> Result<()> {
    hebb_tensor::cuda::launch_elementwise(source, kernel, outputs, inputs, scalars)
        .map_err(|source| Error::Tensor { optimizer, source })
}

/// Names slots as `"{kind}/{index}"`, kinds in the order given.
pub(crate) fn named_slots<'a>(kinds: &[(&str, &'a [Tensor])]) -> Vec<(String, &'a Tensor)> {
    kinds
        .iter()
        .flat_map(|(kind, slots)| {
            slots
                .iter()
                .enumerate()
                .map(move |(i, t)| (format!("{kind}/{i}"), t))
        })
        .collect()
}

/// The learning rate must be finite and `>= 0`.
pub(crate) fn check_lr(optimizer: &'static str, lr: f32) -> Result<()> {
    check(
        optimizer,
        "learning_rate",
        f64::from(lr),
        lr.is_finite() && lr >= 0.0,
        "finite and >= 0",
    )
}

/// A decay rate (`rho`, `beta_1`, `beta_2`) must be in `[0, 1)`.
pub(crate) fn check_rate(optimizer: &'static str, name: &'static str, value: f64) -> Result<()> {
    check(
        optimizer,
        name,
        value,
        (0.0..1.0).contains(&value),
        "in [0, 1)",
    )
}

/// A value that must be finite and `>= 0` (`epsilon`, `initial_accumulator_value`).
pub(crate) fn check_non_negative(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
) -> Result<()> {
    check(
        optimizer,
        name,
        value,
        value.is_finite() && value >= 0.0,
        "finite and >= 0",
    )
}

/// A momentum must be in `[0, 1]` (Keras `sgd.py` and `rmsprop.py` check this).
pub(crate) fn check_momentum(optimizer: &'static str, value: f64) -> Result<()> {
    check(
        optimizer,
        "momentum",
        value,
        (0.0..=1.0).contains(&value),
        "in [0, 1]",
    )
}

pub(crate) fn check(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Hyperparameter {
            optimizer,
            name,
            value,
            expected,
        })
    }
}

/// Flushes a subnormal value to zero (keeping its sign), as TensorFlow's CPU
/// kernels do: they run with the processor's flush-to-zero mode on. Moving
/// averages of gradients that stop arriving (an always-zero input pixel)
/// decay geometrically into the subnormal range, where every further
/// multiplication costs a hundred cycles; flushing keeps optimiser steps at
/// full speed and changes nothing above `f32::MIN_POSITIVE` (1.2e-38).
#[inline(always)]
pub(crate) fn ftz(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0 * x
    } else {
        x
    }
}

/// Installs exported optimiser state (see
/// [`Optimizer::set_state`](crate::Optimizer::set_state)): `slots` named
/// `"{kind}/{i}"` for the slot kinds this optimiser's configuration uses
/// (`kinds`, in order), one per variable of `shapes`.
///
/// Everything is checked before anything changes: each name must be a
/// known kind with an index below `shapes.len()`, given once; when any slot
/// is given (or steps were taken and the optimiser has slot kinds) every
/// `(kind, i)` must be there, with shape `shapes[i]`.
pub(crate) fn set_state(
    optimizer: &'static str,
    core: &mut Core,
    kinds: &mut [(&'static str, &mut Vec<Tensor>)],
    iterations: u64,
    slots: &[(String, Tensor)],
    shapes: &[Vec<usize>],
) -> Result<()> {
    let names: Vec<&'static str> = kinds.iter().map(|(k, _)| *k).collect();
    let mut found: Vec<Vec<Option<&Tensor>>> = vec![vec![None; shapes.len()]; kinds.len()];
    for (name, tensor) in slots {
        let unexpected = || Error::UnexpectedSlot {
            optimizer,
            slot: name.clone(),
            kinds: names.clone(),
            variables: shapes.len(),
        };
        let (kind, index) = name.rsplit_once('/').ok_or_else(unexpected)?;
        let k = names
            .iter()
            .position(|n| *n == kind)
            .ok_or_else(unexpected)?;
        let i: usize = index
            .parse::<usize>()
            .ok()
            .filter(|&i| i < shapes.len() && index == i.to_string())
            .ok_or_else(unexpected)?;
        if found[k][i].replace(tensor).is_some() {
            return Err(Error::DuplicateSlot {
                optimizer,
                slot: name.clone(),
            });
        }
        if tensor.shape() != shapes[i].as_slice() {
            return Err(Error::StateShape {
                optimizer,
                slot: name.clone(),
                expected: shapes[i].clone(),
                got: tensor.shape().to_vec(),
            });
        }
    }
    let fresh = slots.is_empty() && iterations == 0;
    if !fresh {
        for (k, per_variable) in found.iter().enumerate() {
            if let Some(i) = per_variable.iter().position(Option::is_none) {
                return Err(Error::MissingSlot {
                    optimizer,
                    slot: format!("{}/{i}", names[k]),
                    iterations,
                });
            }
        }
    }
    for ((_, target), per_variable) in kinds.iter_mut().zip(found) {
        **target = per_variable.into_iter().flatten().cloned().collect();
    }
    core.iterations = iterations;
    core.shapes = (!shapes.is_empty()).then(|| shapes.to_vec());
    Ok(())
}
