//! `cargo xtask reproduce convnet` (in progress): its figures.

// Used by `reproduce convnet`, which needs the image layers (issue 12).
#![allow(dead_code)]

mod plots;
