//! hebb-autograd (work in progress)
