#!/usr/bin/env python3
"""Loads Keras model files written by hebb in TensorFlow and evaluates them
on an MNIST-format test split (cargo xtask reproduce ch13, section 13.6).

    python3 xtask/python/tf_check.py --images DIR/t10k-images-idx3-ubyte.gz \
        --labels DIR/t10k-labels-idx1-ubyte.gz MODEL.keras [MODEL.h5 ...]

For each model it prints one line,
`RESULT <path> <loss> <accuracy> <predicted classes of the first four images>`,
with the model loaded by tf.keras.models.load_model, compiled from the file
(the optimizer's state included), and evaluated as the lecture does:
pixels / 255, model.evaluate(x, y, batch_size=32).
"""

import argparse
import gzip
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()

    import tensorflow as tf

    x = (idx(args.images) / 255.0).astype(np.float32)
    y = idx(args.labels).astype(np.int64)
    for path in args.models:
        model = tf.keras.models.load_model(path)
        loss, accuracy = model.evaluate(x, y, batch_size=32, verbose=0)[:2]
        first = np.argmax(model.predict(x[:4], verbose=0), axis=1).tolist()
        steps = int(model.optimizer.iterations.numpy())
        print(f"RESULT {path} {loss:.6f} {accuracy:.6f} {first} steps={steps}", flush=True)


if __name__ == "__main__":
    main()
