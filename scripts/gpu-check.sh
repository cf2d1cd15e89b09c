#!/usr/bin/env bash
# The GPU check of hebb's CUDA backend, in two steps on two machines.
#
#   scripts/gpu-check.sh build [DIR]   on a development machine (Rust, the data sets;
#                                      no GPU needed): builds the CUDA tests and the
#                                      xtask in release mode and copies them, the
#                                      data they read and this script into DIR
#                                      (default target/gpu-check, git-ignored).
#   DIR/gpu-check.sh run               on the GPU machine (CUDA driver, cuBLAS and
#                                      NVRTC libraries; no Rust, no ../shared): runs the
#                                      CPU/GPU parity tests, chapter 12 on both devices
#                                      with a diff of their tables, the 13.5 fit on the
#                                      GPU, the MNIST timings, Keras' MNIST convnet (15
#                                      epochs) and its timing, and NCCL on one GPU.
#                                      A few minutes.
#
# The CUDA libraries are found as the dynamic loader finds them; where the
# toolkit is not on the loader's path, export LD_LIBRARY_PATH (for example
# /usr/local/cuda/lib64) first.
set -euo pipefail

cmd="${1:-}"
case "$cmd" in
build)
    root="$(cd "$(dirname "$0")/.." && pwd)"
    # DIR is relative to where the script is called from; it is emptied first.
    target="${2:-$root/target/gpu-check}"
    mkdir -p "$target"
    out="$(cd "$target" && pwd)"
    case "$out" in
    / | "$HOME" | "$root") echo "refusing to empty $out" >&2; exit 2 ;;
    esac
    cd "$root"
    data="${HEBB_DATA_DIR:-$(cd .. && pwd)/shared/datasets}"
    rm -rf "$out" && mkdir -p "$out/bin" "$out/data/mnist" "$out/data/iris"
    # The CPU/GPU parity tests (the test targets named cuda*) of the crates with
    # CUDA code, in release mode (smaller, and the MNIST epoch runs at speed);
    # cargo prints their paths as JSON. The other tests need the source tree.
    cargo test --release --no-run --features cuda \
        -p hebb-tensor -p hebb-autograd -p hebb-layers -p hebb-optim -p hebb-models \
        --message-format=json |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and m.get("profile", {}).get("test") and m["target"]["name"].startswith("cuda")):
        print(m["executable"])
' >"$out/tests.txt"
    while read -r exe; do
        name="$(basename "$exe")"
        cp "$exe" "$out/bin/$name"
        strip "$out/bin/$name" 2>/dev/null || true
    done <"$out/tests.txt"
    (cd "$out/bin" && ls) >"$out/tests.txt"
    cargo build --release -p xtask --features cuda
    cp target/release/xtask "$out/bin/xtask"
    # NCCL over one process (world size 1; no MPI needed on the GPU machine).
    cargo build --release -p hebb-distributed --features cuda --examples
    cp target/release/examples/mpi_check "$out/bin/mpi_check"
    strip "$out/bin/mpi_check" 2>/dev/null || true
    strip "$out/bin/xtask" 2>/dev/null || true
    cp "$data"/mnist/*-ubyte.gz "$out/data/mnist/"
    cp "$data"/iris/iris_training.csv "$data"/iris/iris_test.csv "$out/data/iris/"
    cp scripts/gpu-check.sh "$out/gpu-check.sh"
    du -sh "$out"
    echo "now copy $out to the GPU machine and run: $out/gpu-check.sh run"
    ;;
run)
    here="$(cd "$(dirname "$0")" && pwd)"
    cd "$here"
    export HEBB_DATA_DIR="$here/data"
    export RUST_BACKTRACE=1
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi failed (rc $?)"
    fi
    # Stop at once, with the reason, where no GPU can be used.
    if ! bin/xtask reproduce ch12 --section 12.2 --iters 0 --device cuda --out out/probe >/dev/null; then
        echo "== gpu-check: FAILED (no usable GPU; see the error above) =="
        exit 1
    fi
    status=0
    echo "== 1. CPU/GPU parity tests (each test prints 'skipped' if it finds no GPU) =="
    while read -r t; do
        [ "$t" = xtask ] && continue
        echo "-- $t"
        "bin/$t" --test-threads 1 --nocapture >"log-$t.txt" 2>&1 || true
        grep -E "^test result|FAILED|panicked|skipped" "log-$t.txt" | sort | uniq -c || true
        grep -q "^test result: ok" "log-$t.txt" || { echo "FAILED: $t (see $here/log-$t.txt)"; status=1; }
        # Here a skipped test is a failed check: the point is to run them.
        if grep -q "skipped" "log-$t.txt"; then
            echo "FAILED: $t skipped tests: $(grep -m1 -o 'skipped.*' "log-$t.txt")"
            status=1
        fi
    done <tests.txt
    echo "== 2. Chapter 12 on the CPU and on the GPU: the printed tables must be identical =="
    bin/xtask reproduce ch12 --out out/ch12-cpu --device cpu >ch12-cpu.txt || status=1
    bin/xtask reproduce ch12 --out out/ch12-cuda --device cuda >ch12-cuda.txt || status=1
    # The figure paths and the device line differ by design.
    if [ ! -s ch12-cuda.txt ]; then
        echo "ch12: no output on the GPU"
        status=1
    elif diff <(grep -v -e '^figure:' -e '^(training on' ch12-cpu.txt) \
            <(grep -v -e '^figure:' -e '^(training on' ch12-cuda.txt); then
        echo "ch12: CPU and GPU tables identical ($(grep -c '^i: ' ch12-cuda.txt) iteration lines)"
    else
        echo "ch12: CPU and GPU tables DIFFER (diff above)"
        status=1
    fi
    echo "== 3. Chapter 13 (13.4 Iris, 13.5 MNIST) on the GPU =="
    bin/xtask reproduce ch13 --section 13.4 --device cuda --out out/ch13 >ch13.4.txt || status=1
    tail -4 ch13.4.txt
    bin/xtask reproduce ch13 --section 13.5 --device cuda --verbose 2 --out out/ch13 >ch13.5.txt || status=1
    grep -E "^Epoch|loss|accuracy|test" ch13.5.txt || true
    echo "== 4. MNIST timings (13.5 recipe: 5 epochs, batch 64, validation_split 0.2) =="
    bin/xtask bench mnist --device cuda --repeats 3 || status=1
    bin/xtask bench mnist --device cpu --repeats 1 || status=1
    echo "== 5. Keras' MNIST convnet on the GPU (targets: under 2 s an epoch, test accuracy >= 0.990 after 15 epochs) =="
    bin/xtask reproduce convnet --device cuda --verbose 2 --out out/convnet >convnet.txt || status=1
    grep -E "^Epoch 15|^[0-9]+/[0-9]+ - |epoch seconds|^Test|misclassified" convnet.txt | tail -6 || true
    bin/xtask bench convnet --device cuda || status=1
    bin/xtask bench convnet --device cpu || status=1
    echo "== 6. NCCL, world size 1: the MLP's gradients all-reduced by NCCL on the GPU, against one process =="
    echo "   (NCCL refuses two ranks on one GPU; libnccl.so must be on the loader's path)"
    bin/mpi_check nccl || status=1
    echo "== gpu-check: $([ $status = 0 ] && echo PASSED || echo FAILED) =="
    exit $status
    ;;
*)
    sed -n '2,19p' "$0"
    exit 2
    ;;
esac
