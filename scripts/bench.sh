#!/usr/bin/env bash
# Build and run the tidings benchmarks (the README's benchmark command), then time how long
# tidings' headers take to compile.
#
#   bash scripts/bench.sh                      # default compiler (c++)
#   CXX=clang++ bash scripts/bench.sh          # another compiler
#   bash scripts/bench.sh --benchmark_filter=publish   # arguments go to every benchmark
#   bash scripts/bench.sh --compile-time-only  # only the compile-time table (about a minute)
#
# On Debian/Ubuntu it first installs whatever is missing, including the peer libraries the
# benchmarks compare against (Boost.Signals2, libsigc++, moodycamel, TBB). Builds Release in
# build/bench and runs every build/bench/benchmarks/tidings_bench* executable.
#
# The compile-time table (issue #11): one translation unit per public header (and one for the
# umbrella tidings.hpp) that only includes it, and benchmarks/compile_time_tu.cpp, which
# subscribes and publishes; each compiled with $CXX -std=c++20 -O2 -c, best of 3 wall-clock
# times, beside a TU that includes <functional> and <vector> (the ratio column), with the
# preprocessed line count (-E). Targets: tidings.hpp <= 4x, bus.hpp <= 3x.
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
compile_time_only=0
if [ "${1:-}" = --compile-time-only ]; then
    compile_time_only=1
    shift
fi
cxx=$(command -v "${CXX:-c++}") || { echo "bench.sh: compiler ${CXX:-c++} not found" >&2; exit 1; }

# --- the compile-time table ------------------------------------------------------------------
# best_compile_ns FILE: the fastest of 3 compilations of FILE, in nanoseconds.
best_compile_ns() {
    local best="" start end _
    for _ in 1 2 3; do
        start=$(date +%s%N)
        "$cxx" -std=c++20 -O2 -Iinclude -c "$1" -o /dev/null || return 1
        end=$(date +%s%N)
        if [ -z "$best" ] || [ $((end - start)) -lt "$best" ]; then best=$((end - start)); fi
    done
    echo "$best"
}

compile_time_table() {
    local tmp base header name ns lines target status=0
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/tidings-compile.XXXXXX")
    printf '#include <functional>\n#include <vector>\n' >"$tmp/baseline.cpp"
    echo
    echo "=== compile time: $("$cxx" --version | head -n1), -std=c++20 -O2 -c," \
        "best of 3 wall-clock runs ==="
    printf '%-42s %8s %6s %8s  %s\n' "translation unit" seconds ratio lines target
    base=$(best_compile_ns "$tmp/baseline.cpp") || { rm -rf "$tmp"; return 1; }
    row() { # label file target [nanoseconds, if measured already]
        if [ -n "${4:-}" ]; then
            ns=$4
        elif ! ns=$(best_compile_ns "$2"); then
            echo "bench.sh: $1 does not compile" >&2
            status=1
            return
        fi
        lines=$("$cxx" -std=c++20 -Iinclude -E "$2" | wc -l)
        awk -v l="$1" -v n="$ns" -v b="$base" -v c="$lines" -v t="$3" \
            'BEGIN { r = sprintf("%-42s %8.3f %6.2f %8d  %s", l, n / 1e9, n / b, c, t)
                     sub(/ +$/, "", r); print r }'
    }
    row "<functional> + <vector>" "$tmp/baseline.cpp" "" "$base"
    for header in include/tidings/*.hpp; do
        name=${header#include/}
        [ "$name" = tidings/tidings.hpp ] && continue
        printf '#include <%s>\n' "$name" >"$tmp/header.cpp"
        target=""
        [ "$name" = tidings/bus.hpp ] && target="<= 3x"
        row "$name" "$tmp/header.cpp" "$target"
    done
    printf '#include <tidings/tidings.hpp>\n' >"$tmp/header.cpp"
    row "tidings/tidings.hpp (umbrella)" "$tmp/header.cpp" "<= 4x"
    row "subscribe + publish (compile_time_tu.cpp)" benchmarks/compile_time_tu.cpp ""
    rm -rf "$tmp"
    return $status
}

if [ $compile_time_only -eq 1 ]; then
    compile_time_table
    exit $?
fi

ensure_packages g++ clang cmake ninja-build pkg-config libbenchmark-dev \
    libboost-dev libsigc++-3.0-dev libconcurrentqueue-dev libtbb-dev

# --- configure and build --------------------------------------------------------------------
build_dir=build/bench
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release
    -DTIDINGS_BUILD_BENCHMARKS=ON -DTIDINGS_BUILD_TESTS=OFF -DTIDINGS_BUILD_EXAMPLES=OFF)
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
compile_time_table || status=1
exit $status
