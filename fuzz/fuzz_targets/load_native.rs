//! hebb's own model files (safetensors with the configuration in the
//! metadata): `load_model_bytes` must return an error or a model, never
//! panic or allocate without bound.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // safetensors: an 8-byte header length, then JSON; other inputs go to the other loaders.
    if data.get(8) != Some(&b'{') {
        return;
    }
    let _ = hebb_models::sequential::load_model_bytes(data, Path::new("fuzz.safetensors"));
});
