//! [`GradientTape`]: the record of ops and the backward walk.

use std::cell::RefCell;
use std::collections::HashMap;

use hebb_tensor::Tensor;

use crate::{Error, Result, Var, Variable};

/// Maps the gradient of a node's output to the gradients of its inputs, in
/// input order; `None` for an input no watched value flows into (its
/// gradient is not computed at all).
pub(crate) type Backward = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>>>;

pub(crate) struct Node {
    pub(crate) value: Tensor,
    pub(crate) inputs: Vec<usize>,
    /// `None` for leaves and for nodes no watched value flows into.
    pub(crate) backward: Option<Backward>,
    pub(crate) requires_grad: bool,
}

/// Records ops on [`Var`]s and computes gradients by walking the record in
/// reverse (`tf.GradientTape`).
///
/// Values enter the tape as watched variables ([`watch`](Self::watch),
/// [`watch_tensor`](Self::watch_tensor)), whose gradients can be asked for,
/// or as constants ([`constant`](Self::constant)), whose cannot. Only ops
/// that a watched value flows into keep a backward rule, so forward passes
/// on constants cost no more than plain tensor ops.
#[derive(Default)]
pub struct GradientTape {
    pub(crate) nodes: RefCell<Vec<Node>>,
    /// Node id of each watched [`Variable`], by the variable's identity.
    watched: RefCell<HashMap<u64, usize>>,
}

impl std::fmt::Debug for GradientTape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GradientTape")
            .field("nodes", &self.nodes.borrow().len())
            .finish()
    }
}

impl GradientTape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of recorded nodes (leaves included).
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// True before anything is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&self, node: Node) -> Var<'_> {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(node);
        Var::new(self, nodes.len() - 1)
    }

    /// Records the current value of a trainable variable, once per tape:
    /// watching it again returns the same `Var`. Its gradient can be asked for.
    pub fn watch(&self, variable: &Variable) -> Var<'_> {
        if let Some(&id) = self.watched.borrow().get(&variable.id()) {
            return Var::new(self, id);
        }
        let var = self.watch_tensor(variable.value().clone());
        self.watched.borrow_mut().insert(variable.id(), var.id);
        var
    }

    /// `∂Σtarget/∂v` for each variable (`tape.gradient(loss, [W, B])`); a
    /// variable not watched on this tape gets zeros.
    ///
    /// # Errors
    /// As [`gradient`](Self::gradient).
    pub fn gradient_of(&self, target: Var<'_>, variables: &[&Variable]) -> Result<Vec<Tensor>> {
        let ids: Vec<Option<usize>> = {
            let watched = self.watched.borrow();
            variables
                .iter()
                .map(|v| watched.get(&v.id()).copied())
                .collect()
        };
        let sources: Vec<Var<'_>> = ids.iter().flatten().map(|&id| Var::new(self, id)).collect();
        let mut grads = self.gradient(target, &sources)?.into_iter();
        Ok(ids
            .iter()
            .zip(variables)
            .map(|(id, v)| match id {
                Some(_) => grads.next().unwrap_or_else(|| v.value().zeros_like()),
                None => v.value().zeros_like(),
            })
            .collect())
    }

    /// Records a tensor whose gradient can be asked for (`tape.watch(x)`).
    pub fn watch_tensor(&self, value: Tensor) -> Var<'_> {
        self.push(Node {
            value,
            inputs: Vec::new(),
            backward: None,
            requires_grad: true,
        })
    }

    /// Records a tensor that is not differentiated (inputs, labels, constants).
    pub fn constant(&self, value: Tensor) -> Var<'_> {
        self.push(Node {
            value,
            inputs: Vec::new(),
            backward: None,
            requires_grad: false,
        })
    }

    /// `∂Σtarget/∂source` for each source, in order (`tape.gradient(target, sources)`).
    ///
    /// A non-scalar target is summed first, as in TensorFlow. Each gradient
    /// has its source's shape; a source the target does not depend on gets
    /// zeros (TensorFlow returns `None` there; zeros keep update code simple).
    /// The tape can be asked again; it is not consumed.
    ///
    /// # Errors
    /// [`Error::ForeignVar`] if a `Var` belongs to another tape; tensor errors
    /// from a backward rule (which indicate a bug and name the op).
    pub fn gradient(&self, target: Var<'_>, sources: &[Var<'_>]) -> Result<Vec<Tensor>> {
        self.owns(target, "gradient")?;
        for &s in sources {
            self.owns(s, "gradient")?;
        }
        let nodes = self.nodes.borrow();
        let mut is_source = vec![false; nodes.len()];
        for s in sources {
            is_source[s.id] = true;
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; target.id + 1];
        grads[target.id] = Some(nodes[target.id].value.ones_like());
        for id in (0..=target.id).rev() {
            let Some(g) = grads[id].take() else { continue };
            let node = &nodes[id];
            if let Some(backward) = &node.backward {
                let input_grads = backward(&g)?;
                for (&input, ig) in node.inputs.iter().zip(input_grads) {
                    let Some(ig) = ig else { continue };
                    if !nodes[input].requires_grad {
                        continue;
                    }
                    grads[input] = Some(match grads[input].take() {
                        Some(acc) => acc.add(&ig)?,
                        None => ig,
                    });
                }
            }
            if is_source[id] {
                grads[id] = Some(g);
            }
        }
        Ok(sources
            .iter()
            .map(|s| {
                grads
                    .get(s.id)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| nodes[s.id].value.zeros_like())
            })
            .collect())
    }

    pub(crate) fn owns(&self, var: Var<'_>, op: &'static str) -> Result<()> {
        if std::ptr::eq(var.tape, self) {
            Ok(())
        } else {
            Err(Error::ForeignVar { op })
        }
    }
}
