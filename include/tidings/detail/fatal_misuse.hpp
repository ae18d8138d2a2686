#pragma once
/// @file detail/fatal_misuse.hpp
/// @brief fatal_misuse: how tidings reports a misuse that no exception can report (one made
/// in a destructor) in every build. Shared by the executors and the bus core.

#include <cstdio>
#include <cstdlib>

namespace tidings::detail {

/// Reports a misuse that cannot be reported by an exception (a destructor) and ends the
/// process: the same in every build, NDEBUG or not.
[[noreturn]] inline void fatal_misuse(const char* message) noexcept {
    std::fprintf(stderr, "tidings: %s\n", message);
    std::fflush(stderr);
    std::abort();
}

}  // namespace tidings::detail
