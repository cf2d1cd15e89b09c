//! Keras HDF5 model files (`.h5`): the HDF5 parser and the Keras mapping on
//! top of it must return an error or a model, never panic or allocate
//! without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The HDF5 parser alone, whatever the bytes.
    let _ = hebb_serialize::hdf5::parse(data.to_vec(), Path::new("fuzz.h5"));
    if data.starts_with(b"\x89HDF\r\n\x1a\n") {
        let _ = hebb_models::sequential::load_model_bytes(data, Path::new("fuzz.h5"));
    }
});
