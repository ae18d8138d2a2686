#!/usr/bin/env bash
# Build and run the tidings tests (the README's test command).
#
#   bash scripts/test.sh              # default compiler (c++)
#   CXX=clang++ bash scripts/test.sh  # another compiler
#   TIDINGS_WERROR=ON bash scripts/test.sh
#
# On Debian/Ubuntu it first installs whatever is missing (as root, or through sudo).
# Builds in build/test-<compiler>, runs ctest, and exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- dependencies ---------------------------------------------------------------------------
ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 || {
        echo "test.sh: not a Debian system; assuming the tools are installed" >&2
        return 0
    }
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "test.sh: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}
ensure_packages g++ clang cmake ninja-build catch2 pkg-config

# --- configure, build, test -----------------------------------------------------------------
# Benchmarks are off: they need Google Benchmark, and scripts/bench.sh builds them.
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Debug -DTIDINGS_BUILD_BENCHMARKS=OFF
    "-DTIDINGS_WERROR=${TIDINGS_WERROR:-OFF}")
cxx=$(command -v "${CXX:-c++}") || { echo "test.sh: compiler ${CXX:-c++} not found" >&2; exit 1; }
cmake_args+=("-DCMAKE_CXX_COMPILER=$cxx")
build_dir=build/test-$(basename "$cxx")

cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" -j2
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error --timeout 300 -j2
