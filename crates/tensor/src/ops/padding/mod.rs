//! [`Padding`]: TensorFlow's `"valid"` and `"same"` rules for windowed ops
//! (convolution, pooling), one spatial axis at a time.
//!
//! For an input of `size` cells, a window of `window` cells dilated by
//! `dilation` (effective extent `(window - 1) · dilation + 1`) and a stride:
//!
//! - `valid`: no padding, `out = floor((size - extent) / stride) + 1`; the
//!   window must fit (`extent <= size`).
//! - `same`: `out = ceil(size / stride)`, total padding
//!   `max((out - 1) · stride + extent - size, 0)`, of which `floor(total / 2)`
//!   goes before (top/left) and the odd extra cell after (bottom/right), as
//!   TensorFlow's `GetWindowedOutputSize` places it.

use crate::{Error, Result};

/// How a windowed op pads its input (Keras `padding="valid" | "same"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Padding {
    /// No padding; windows lie inside the input.
    #[default]
    Valid,
    /// Padded so that `out = ceil(size / stride)`; the extra cell of an odd
    /// total padding at the end (bottom/right).
    Same,
}

impl Padding {
    /// Keras' name: `"valid"` or `"same"`.
    pub fn name(&self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }

    /// The padding of Keras name `name` (case-insensitive, as Keras reads it).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            _ => Err(Error::InvalidArgument {
                op: "padding",
                reason: format!("padding must be \"valid\" or \"same\", got {name:?}"),
            }),
        }
    }

    /// `(out, pad_before)` along one axis of `size` cells for a window of
    /// `window` cells, `stride` and `dilation` (see the module docs).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `window`, `stride` or `dilation` is 0,
    /// or, for `valid`, when the dilated window is larger than `size`
    /// (naming both).
    pub fn output_size(
        &self,
        size: usize,
        window: usize,
        stride: usize,
        dilation: usize,
    ) -> Result<(usize, usize)> {
        if window == 0 || stride == 0 || dilation == 0 {
            return Err(Error::InvalidArgument {
                op: "padding",
                reason: format!(
                    "window {window}, stride {stride} and dilation {dilation} must all be at least 1"
                ),
            });
        }
        let extent = (window - 1) * dilation + 1;
        match self {
            Padding::Valid => {
                if extent > size {
                    return Err(Error::InvalidArgument {
                        op: "padding",
                        reason: format!(
                            "a window of {extent} cells (size {window}, dilation {dilation}) is larger \
                             than the input's {size} cells with padding \"valid\""
                        ),
                    });
                }
                Ok(((size - extent) / stride + 1, 0))
            }
            Padding::Same => {
                let out = size.div_ceil(stride);
                let total = ((out.saturating_sub(1)) * stride + extent).saturating_sub(size);
                Ok((out, total / 2))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorflow_sizes() {
        // valid
        assert_eq!(Padding::Valid.output_size(28, 3, 1, 1).unwrap(), (26, 0));
        assert_eq!(Padding::Valid.output_size(26, 2, 2, 1).unwrap(), (13, 0));
        assert_eq!(Padding::Valid.output_size(7, 3, 2, 2).unwrap(), (2, 0));
        assert!(Padding::Valid.output_size(2, 3, 1, 1).is_err());
        // same: out = ceil(size / stride), extra cell after
        assert_eq!(Padding::Same.output_size(28, 3, 1, 1).unwrap(), (28, 1));
        assert_eq!(Padding::Same.output_size(5, 2, 2, 1).unwrap(), (3, 0)); // total 1: all after
        assert_eq!(Padding::Same.output_size(6, 3, 2, 1).unwrap(), (3, 0)); // total 1
        assert_eq!(Padding::Same.output_size(7, 4, 1, 1).unwrap(), (7, 1)); // total 3: 1 before, 2 after
        assert_eq!(Padding::Same.output_size(2, 5, 1, 1).unwrap(), (2, 2)); // window larger than input
        assert!(Padding::Same.output_size(5, 0, 1, 1).is_err());
        assert_eq!(Padding::from_name("SAME").unwrap(), Padding::Same);
        assert!(Padding::from_name("full").is_err());
    }
}
