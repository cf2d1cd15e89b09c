//! hebb-data (work in progress)
