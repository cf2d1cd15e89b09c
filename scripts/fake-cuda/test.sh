#!/usr/bin/env bash
# Runs the `--features cuda` code paths on a machine without a GPU: the
# GPU parity tests and chapter 12 on `--device cuda` (and `--device auto`,
# which must choose the GPU), against the fake driver
# and cuBLAS of this folder and a real NVRTC (see README.md). Fails if any
# GPU test skips, fails, or if chapter 12 prints other tables than on the CPU.
# Runs the fake NCCL's self-test first (nccl_selftest, built by build.sh).
#
# NVRTC: $HEBB_NVRTC_DIR if set (a folder with libnvrtc.so.12), else the
# wheel `nvidia-cuda-nvrtc-cu12` from PyPI unpacked into target/nvrtc (pip
# downloads it once, about 90 MB). Without internet and without
# HEBB_NVRTC_DIR this script says so and exits 0 without testing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

nvrtc="${HEBB_NVRTC_DIR:-}"
if [ -z "$nvrtc" ]; then
    nvrtc="$root/target/nvrtc/nvidia/cuda_nvrtc/lib"
    if [ ! -e "$nvrtc/libnvrtc.so.12" ]; then
        mkdir -p target/nvrtc/wheel
        if ! python3 -m pip download --quiet --no-deps --dest target/nvrtc/wheel 'nvidia-cuda-nvrtc-cu12>=12.4,<13'; then
            echo "fake-cuda: NVRTC could not be downloaded (offline?); set HEBB_NVRTC_DIR to test the CUDA paths. Not tested." >&2
            exit 0
        fi
        python3 -m zipfile -e target/nvrtc/wheel/nvidia_cuda_nvrtc_cu12-*.whl target/nvrtc
        rm -r target/nvrtc/wheel
    fi
fi

scripts/fake-cuda/build.sh target/fake-cuda
nccl_log=target/fake-cuda/nccl-selftest.log
target/fake-cuda/nccl_selftest >"$nccl_log" 2>&1 || { cat "$nccl_log"; echo "fake-cuda: NCCL self-test FAILED (log: $nccl_log)" >&2; exit 1; }
echo "fake-cuda: NCCL self-test passed ($(grep -c '^ok ' "$nccl_log") checks on 1 to 3 forked ranks)"
export LD_LIBRARY_PATH="$root/target/fake-cuda:$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

log=target/fake-cuda/tests.log
cargo test --features cuda -p hebb-tensor -p hebb-autograd -p hebb-layers -p hebb-optim -p hebb-models \
    -- --nocapture >"$log" 2>&1 || { tail -60 "$log"; echo "fake-cuda: tests FAILED (log: $log)" >&2; exit 1; }
if grep -q "skipped" "$log"; then
    grep "skipped" "$log" | sort | uniq -c >&2
    echo "fake-cuda: GPU tests skipped (log: $log)" >&2
    exit 1
fi
grep "^test result" "$log" | awk '{p += $4} END {print "fake-cuda: " p " tests passed with the CUDA feature, GPU tests included"}'

cargo build --release -p xtask --features cuda
cpu=target/fake-cuda/ch12-cpu.txt gpu=target/fake-cuda/ch12-cuda.txt
target/release/xtask reproduce ch12 --device cpu --out target/fake-cuda/ch12-cpu >"$cpu"
target/release/xtask reproduce ch12 --device cuda --out target/fake-cuda/ch12-cuda >"$gpu"
if ! diff <(grep -v -e '^figure:' -e '^(training on' "$cpu") <(grep -v -e '^figure:' -e '^(training on' "$gpu"); then
    echo "fake-cuda: chapter 12 prints other tables on --device cuda" >&2
    exit 1
fi
echo "fake-cuda: chapter 12 on --device cuda prints the CPU's tables ($(grep -c '^i: ' "$gpu") iteration lines)"

# --device auto takes the GPU when one is usable, and says so in one line.
auto=target/fake-cuda/ch12-auto.txt
target/release/xtask reproduce ch12 --section 12.2 --iters 0 --device auto --out target/fake-cuda/ch12-auto >"$auto"
if ! grep -qxF -- "--device auto: cuda:0, a usable GPU" "$auto"; then
    head -3 "$auto" >&2
    echo "fake-cuda: --device auto did not choose the GPU" >&2
    exit 1
fi
echo "fake-cuda: --device auto chose cuda:0"

# Keras' MNIST convnet (the image layers) on --device cuda, shortened: the
# printed figures are the CPU's within 2e-4 (their 4 decimals, as the
# devices sum in other orders) and the misclassified test images within 2.
cpu=target/fake-cuda/convnet-cpu.txt gpu=target/fake-cuda/convnet-cuda.txt
target/release/xtask reproduce convnet --subset 1000 --epochs 1 --verbose 2 --device cpu --out target/fake-cuda/convnet-cpu >"$cpu"
target/release/xtask reproduce convnet --subset 1000 --epochs 1 --verbose 2 --device cuda --out target/fake-cuda/convnet-cuda >"$gpu"
python3 - "$cpu" "$gpu" <<'PY'
import re, sys
def figures(path):
    lines = [l for l in open(path) if re.match(r"(\d+/\d+ - |Test |  \[|\d+ of \d+ test images)", l)]
    nums = [[float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", re.sub(r" - \d+m?s - ", " - ", l))] for l in lines]
    wrong = [int(l.split()[0]) for l in lines if "misclassified" in l]
    return lines, nums, wrong
(lc, nc, wc), (lg, ng, wg) = figures(sys.argv[1]), figures(sys.argv[2])
assert len(lc) == len(lg) > 5, f"the outputs differ in their lines:\n{''.join(lc)}\n{''.join(lg)}"
worst = max((abs(a - b) for x, y in zip(nc, ng) for a, b in zip(x, y)), default=0.0)
assert worst <= 2e-4, f"figures differ by {worst}:\n{''.join(lc)}\n{''.join(lg)}"
assert abs(wc[0] - wg[0]) <= 2, f"misclassified: cpu {wc[0]}, gpu {wg[0]}"
print(f"fake-cuda: the convnet on --device cuda prints the CPU's figures (largest difference {worst:.1e}, misclassified {wc[0]} / {wg[0]})")
PY
