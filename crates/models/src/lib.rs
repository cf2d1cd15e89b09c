//! hebb-models (work in progress)
