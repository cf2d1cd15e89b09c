#!/usr/bin/env bash
# Fills corpus/ with small valid model files: the Keras fixtures of
# crates/models/tests/fixtures/keras, the HDF5 fixtures of
# crates/serialize/tests/fixtures/hdf5, and small hebb-written files in the
# three formats (src/make_seeds.rs).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/load_native corpus/load_h5 corpus/load_keras
cp ../crates/models/tests/fixtures/keras/*.h5 ../crates/serialize/tests/fixtures/hdf5/*.h5 corpus/load_h5/
cp ../crates/models/tests/fixtures/keras/*.keras corpus/load_keras/
cargo run --quiet --release --bin make_seeds -- corpus
echo "corpus: $(ls corpus/load_native | wc -l) native, $(ls corpus/load_h5 | wc -l) h5, $(ls corpus/load_keras | wc -l) keras files"
