#!/usr/bin/env bash
# Build and run the tidings benchmarks (the README's benchmark command).
#
#   bash scripts/bench.sh                      # default compiler (c++)
#   CXX=clang++ bash scripts/bench.sh          # another compiler
#   bash scripts/bench.sh --benchmark_filter=publish   # arguments go to every benchmark
#
# On Debian/Ubuntu it first installs whatever is missing, including the peer libraries the
# benchmarks compare against (Boost.Signals2, libsigc++, moodycamel, TBB). Builds Release in
# build/bench and runs every build/bench/benchmarks/tidings_bench* executable.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# --- dependencies ---------------------------------------------------------------------------
ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 || {
        echo "bench.sh: not a Debian system; assuming the libraries are installed" >&2
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
    echo "bench.sh: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}
ensure_packages g++ clang cmake ninja-build pkg-config libbenchmark-dev \
    libboost-dev libsigc++-3.0-dev libconcurrentqueue-dev libtbb-dev

# --- configure and build --------------------------------------------------------------------
build_dir=build/bench
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release
    -DTIDINGS_BUILD_BENCHMARKS=ON -DTIDINGS_BUILD_TESTS=OFF -DTIDINGS_BUILD_EXAMPLES=OFF)
cxx=$(command -v "${CXX:-c++}") || { echo "bench.sh: compiler ${CXX:-c++} not found" >&2; exit 1; }
cmake_args+=("-DCMAKE_CXX_COMPILER=$cxx")
# A build tree is tied to one compiler: start afresh when CXX names another one.
cache="$build_dir/CMakeCache.txt"
if [ -f "$cache" ] && ! grep -qxF "CMAKE_CXX_COMPILER:FILEPATH=$cxx" "$cache"; then
    echo "bench.sh: compiler changed to $cxx; reconfiguring $build_dir"
    rm -rf "$cache" "$build_dir/CMakeFiles"
fi
cmake -S . -B "$build_dir" "${cmake_args[@]}"
cmake --build "$build_dir" -j2

# --- run ------------------------------------------------------------------------------------
shopt -s nullglob
benches=()
for f in "$build_dir"/benchmarks/tidings_bench*; do
    [ -f "$f" ] && [ -x "$f" ] && benches+=("$f")
done
if [ ${#benches[@]} -eq 0 ]; then
    echo "bench.sh: no $build_dir/benchmarks/tidings_bench* executable was built" >&2
    exit 1
fi

echo "cpu:      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n1)" \
    "($(nproc) cores)"
echo "compiler: $("$cxx" --version | head -n1)"
echo "build:    Release, $(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
status=0
for bench in "${benches[@]}"; do
    echo
    echo "=== $(basename "$bench") $* ==="
    "$bench" "$@" || status=$?
done
exit $status
