//! [`make_weight`]: a layer's weight tensor drawn from its initialiser,
//! with errors that name the layer, the weight, its shape and its bytes.

use hebb_tensor::Tensor;
use rand::RngCore;

use crate::{Error, Initializer, Result};

/// A weight of `shape` for layer `layer` (`what`: `"kernel"`, `"bias"`,
/// ...), drawn from `init` with `rng`, as a layer's `build` makes them.
///
/// # Errors
/// [`Error::Shape`] naming the layer, the weight, its shape and bytes when
/// the tensor cannot exist (more bytes than a process can address, e.g.
/// `Dense(1 << 40)` on `1 << 30` inputs) or the system refuses the memory;
/// the initialiser's errors (a bad parameter) otherwise, also naming the layer.
pub fn make_weight(
    layer: &str,
    what: &str,
    shape: &[usize],
    init: Initializer,
    rng: &mut dyn RngCore,
) -> Result<Tensor> {
    let fail = |detail: String| Error::Shape {
        layer: layer.to_string(),
        detail,
    };
    let bytes = shape
        .iter()
        .try_fold(4u128, |b, &d| b.checked_mul(d as u128));
    match bytes {
        Some(b) if b <= isize::MAX as u128 => {}
        Some(b) => {
            return Err(fail(format!(
                "its {what} {shape:?} would need {b} bytes ({}), more than a process can address",
                hebb_tensor::human_bytes(b)
            )));
        }
        None => {
            return Err(fail(format!(
                "its {what} {shape:?} would need more bytes than can be counted"
            )));
        }
    }
    init.generate(shape, rng).map_err(|e| {
        let allocation = match &e {
            Error::Autograd(hebb_autograd::Error::Tensor(hebb_tensor::Error::Allocation {
                bytes,
                reason,
                ..
            })) => Some((*bytes, *reason)),
            _ => None,
        };
        fail(match allocation {
            Some((bytes, reason)) => format!(
                "its {what} {shape:?} needs {bytes} bytes ({}), which could not be allocated: {reason}",
                hebb_tensor::human_bytes(bytes)
            ),
            None => format!("its {what} {shape:?}: {e}"),
        })
    })
}
