#!/usr/bin/env bash
# Builds the fake CUDA driver, cuBLAS and NCCL (see README.md) into OUT_DIR
# (default: target/fake-cuda under the repository root):
#   OUT_DIR/libcuda.so.1     the driver API, with every crates/**/*.cu kernel compiled natively
#   OUT_DIR/libcuda.so       -> libcuda.so.1 (cudarc tries this name first)
#   OUT_DIR/libcublas.so.12  sgemm/sgemv reference implementation
#   OUT_DIR/libcublas.so     -> libcublas.so.12
#   OUT_DIR/libnccl.so.2     collectives between processes through shared memory (exports nccl* only)
#   OUT_DIR/libnccl.so       -> libnccl.so.2 (cudarc tries this name first)
#   OUT_DIR/nccl_selftest    its self-test (forks the ranks; no GPU, no MPI), run by test.sh
# Usage: scripts/fake-cuda/build.sh [OUT_DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/fake-cuda}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
gen="$out/gen"
rm -rf "$gen"
mkdir -p "$gen" "$out/obj"

CXX="${CXX:-g++}"
# IEEE float arithmetic as the GPU's _rn intrinsics: no contraction into
# fused multiply-adds, no fast-math reassociation.
FLAGS=(-std=c++17 -O2 -g -fPIC -ffp-contract=off -fno-fast-math -fvisibility=hidden -Wall -Wno-unused-function -I"$here")

mapfile -t sources < <(cd "$root" && find crates -name '*.cu' | LC_ALL=C sort)
echo "fake-cuda: kernels from ${#sources[@]} .cu files"
(cd "$root" && python3 "$here/gen_kernels.py" "$gen" "$root" "${sources[@]}")

objs=()
compile() {  # src obj [extra flags]
    local src="$1" obj="$2"
    shift 2
    "$CXX" "${FLAGS[@]}" "$@" -c "$src" -o "$obj"
}
pids=()
for f in "$gen"/*.cpp "$here/fake_cuda.cpp"; do
    obj="$out/obj/$(basename "${f%.cpp}").o"
    objs+=("$obj")
    compile "$f" "$obj" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

"$CXX" -shared -Wl,-soname,libcuda.so.1 -Wl,-z,defs -o "$out/libcuda.so.1" "${objs[@]}" -lpthread
ln -sf libcuda.so.1 "$out/libcuda.so"

# -O3: lets g++ vectorise the sgemm inner loop (still no contraction).
compile "$here/fake_cublas.cpp" "$out/obj/fake_cublas.o" -O3
"$CXX" -shared -Wl,-soname,libcublas.so.12 -o "$out/libcublas.so.12" "$out/obj/fake_cublas.o" \
    -L"$out" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' -Wl,-z,defs -lpthread
ln -sf libcublas.so.12 "$out/libcublas.so"

# A version script keeps the C++ runtime's weak symbols out: only nccl* is exported.
compile "$here/fake_nccl.cpp" "$out/obj/fake_nccl.o"
echo '{ global: nccl*; local: *; };' >"$out/obj/fake_nccl.map"
"$CXX" -shared -Wl,-soname,libnccl.so.2 -Wl,--version-script="$out/obj/fake_nccl.map" -o "$out/libnccl.so.2" \
    "$out/obj/fake_nccl.o" -L"$out" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' -Wl,-z,defs -lpthread -lrt
ln -sf libnccl.so.2 "$out/libnccl.so"
"$CXX" "${FLAGS[@]}" -o "$out/nccl_selftest" "$here/nccl_selftest.cpp" \
    -L"$out" -l:libnccl.so.2 -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN' -lrt

echo "fake-cuda: built $out/libcuda.so.1, $out/libcublas.so.12 and $out/libnccl.so.2"
echo "run tests with: LD_LIBRARY_PATH=$out:/path/to/nvrtc/lib cargo test --features cuda ..."
