//! Host kernels for unary ops.

use super::{UnaryOp, sigmoid};

pub(super) fn unary(op: UnaryOp, x: &[f32]) -> Vec<f32> {
    macro_rules! map {
        ($f:expr) => {
            x.iter().map(|&v| $f(v)).collect()
        };
    }
    match op {
        UnaryOp::Neg => map!(|v: f32| -v),
        UnaryOp::Exp => map!(f32::exp),
        UnaryOp::Log => map!(f32::ln),
        UnaryOp::Log1p => map!(f32::ln_1p),
        UnaryOp::Sqrt => map!(f32::sqrt),
        UnaryOp::Square => map!(|v: f32| v * v),
        UnaryOp::Abs => map!(f32::abs),
        UnaryOp::Reciprocal => map!(|v: f32| 1.0 / v),
        UnaryOp::Sigmoid => map!(sigmoid),
        UnaryOp::Tanh => map!(f32::tanh),
        // NaN stays NaN, as in tf.nn.relu.
        UnaryOp::Relu => map!(|v: f32| if v < 0.0 { 0.0 } else { v }),
        UnaryOp::Step => map!(|v: f32| if v >= 0.0 { 1.0 } else { 0.0 }),
        UnaryOp::Sign => map!(|v: f32| if v > 0.0 {
            1.0
        } else if v < 0.0 {
            -1.0
        } else {
            v
        }),
        UnaryOp::AddScalar(c) => map!(|v: f32| v + c),
        UnaryOp::MulScalar(c) => map!(|v: f32| v * c),
        UnaryOp::Powf(p) => map!(|v: f32| v.powf(p)),
        UnaryOp::Clip(lo, hi) => map!(|v: f32| if v < lo {
            lo
        } else if v > hi {
            hi
        } else {
            v
        }),
        UnaryOp::LeakyRelu(s) => map!(|v: f32| if v >= 0.0 { v } else { v * s }),
    }
}
