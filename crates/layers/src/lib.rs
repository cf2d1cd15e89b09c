//! hebb-layers (work in progress)
