//! Keras 3 archives (`.keras`, zip files of config.json and
//! model.weights.h5): `load_model_bytes` must return an error or a model,
//! never panic or allocate without bound (zip bombs included).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if !data.starts_with(b"PK") {
        return;
    }
    let _ = hebb_models::sequential::load_model_bytes(data, Path::new("fuzz.keras"));
});
