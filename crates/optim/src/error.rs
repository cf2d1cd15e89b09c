//! The error type of hebb-optim.

/// Errors from building an optimiser or applying gradients.
///
/// Every message names the optimiser (its Keras class name) and, for shape
/// errors, the variable (by [`Variable::name`](hebb_autograd::Variable::name))
/// and both shapes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// `apply_gradients` got a different number of gradients than variables.
    #[error("{optimizer}.apply_gradients: got {gradients} gradients for {variables} variables")]
    GradientCount {
        /// The optimiser's Keras class name, e.g. `"Adam"`.
        optimizer: &'static str,
        /// Number of variables passed.
        variables: usize,
        /// Number of gradients passed.
        gradients: usize,
    },
    /// A gradient's shape differs from its variable's shape.
    #[error(
        "{optimizer}.apply_gradients: the gradient of variable {variable} has shape \
         {gradient_shape:?}, but the variable has shape {variable_shape:?}"
    )]
    GradientShape {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The variable's name.
        variable: String,
        /// The variable's shape.
        variable_shape: Vec<usize>,
        /// The gradient's shape.
        gradient_shape: Vec<usize>,
    },
    /// The optimiser's slots were built for another number of variables
    /// (Keras: "This optimizer can only be called for the variables it was
    /// originally built with").
    #[error(
        "{optimizer}.apply_gradients: the optimizer was built for {built} variables but got \
         {got}; pass the same variables in the same order at every call, or create a new optimizer"
    )]
    VariableCount {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// Number of variables at the first call.
        built: usize,
        /// Number of variables at this call.
        got: usize,
    },
    /// A variable's shape differs from the shape its slots were built for,
    /// which means the variables were passed in another order than at the
    /// first call.
    #[error(
        "{optimizer}.apply_gradients: variable {index} ({variable}) has shape {variable_shape:?}, \
         but slot {index} was built for shape {slot_shape:?}; pass the variables in the same \
         order at every call"
    )]
    SlotShape {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// Position of the variable in the list.
        index: usize,
        /// The variable's name.
        variable: String,
        /// The variable's shape now.
        variable_shape: Vec<usize>,
        /// The shape recorded for this position at the first call.
        slot_shape: Vec<usize>,
    },
    /// A hyperparameter is outside its valid range (checked by `validate`,
    /// which `apply_gradients` calls first).
    #[error("{optimizer}: {name} must be {expected}, got {value}")]
    Hyperparameter {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The Keras name of the hyperparameter, e.g. `"beta_1"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range, e.g. `"in [0, 1)"`.
        expected: &'static str,
    },
    /// [`from_name`](crate::from_name) got a name it does not know.
    #[error("unknown optimizer {name:?}; known optimizers: {}", .known.join(", "))]
    UnknownOptimizer {
        /// The name asked for.
        name: String,
        /// The names [`from_name`](crate::from_name) accepts.
        known: Vec<&'static str>,
    },
    /// [`Optimizer::set_state`](crate::Optimizer::set_state) got a slot
    /// this optimiser, as configured, does not have (another kind, or an
    /// index past the variables).
    #[error(
        "{optimizer}.set_state: unexpected slot {slot:?}; with this configuration the slots are \
         {{{}}}/i for i < {variables}", .kinds.join(",")
    )]
    UnexpectedSlot {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The slot's name as given.
        slot: String,
        /// The slot kinds this optimiser uses.
        kinds: Vec<&'static str>,
        /// Number of variables.
        variables: usize,
    },
    /// [`Optimizer::set_state`](crate::Optimizer::set_state) got a slot twice.
    #[error("{optimizer}.set_state: slot {slot} is given twice")]
    DuplicateSlot {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The slot's name.
        slot: String,
    },
    /// [`Optimizer::set_state`](crate::Optimizer::set_state) lacks a slot
    /// the optimiser needs (state after steps must have every slot).
    #[error(
        "{optimizer}.set_state: slot {slot} is missing (the state is after {iterations} steps)"
    )]
    MissingSlot {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The missing slot, e.g. `"velocity/1"`.
        slot: String,
        /// The step count given.
        iterations: u64,
    },
    /// A slot given to [`Optimizer::set_state`](crate::Optimizer::set_state)
    /// does not have its variable's shape.
    #[error(
        "{optimizer}.set_state: slot {slot} has shape {got:?}, but its variable has shape {expected:?}"
    )]
    StateShape {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The slot's name.
        slot: String,
        /// The variable's shape.
        expected: Vec<usize>,
        /// The slot's shape.
        got: Vec<usize>,
    },
    /// [`from_config`](crate::from_config) got a hyperparameter the
    /// optimiser does not have.
    #[error("{optimizer}: unknown hyperparameter {name:?}; known: {}", .known.join(", "))]
    UnknownHyperparameter {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The name given.
        name: String,
        /// The names [`Optimizer::config`](crate::Optimizer::config) reports.
        known: Vec<&'static str>,
    },
    /// A gradient is on another device than its variable (move one with
    /// [`Tensor::to_device`](hebb_tensor::Tensor::to_device)).
    #[error(
        "{optimizer}.apply_gradients: variable {variable} is on {variable_device}, \
         but its gradient is on {gradient_device}; move both to one device"
    )]
    GradientDevice {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The variable's name.
        variable: String,
        /// The device holding the variable.
        variable_device: hebb_tensor::Device,
        /// The device holding the gradient.
        gradient_device: hebb_tensor::Device,
    },
    /// A variable lives on a GPU, but this build of hebb-optim lacks its
    /// `cuda` feature (hebb-models' and xtask's `cuda` features enable it).
    #[error(
        "{optimizer}.apply_gradients: variable {variable} is on {device}, but hebb-optim was built \
         without its `cuda` feature; enable it (or hebb-models' `cuda` feature) to train on a GPU"
    )]
    NoCudaFeature {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The variable's name.
        variable: String,
        /// The variable's device.
        device: hebb_tensor::Device,
    },
    /// A tensor operation failed: creating or moving a slot on the
    /// variable's device, or a fused update kernel on a GPU.
    #[error("{optimizer}.apply_gradients: {source}")]
    Tensor {
        /// The optimiser's Keras class name.
        optimizer: &'static str,
        /// The tensor library's error.
        source: hebb_tensor::Error,
    },
}

/// `Result` with hebb-optim's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
