#pragma once
/// @file detail/type_index.hpp
/// @brief A small dense number per event type, assigned on first use, that indexes a bus's
/// channel table (no RTTI, no hashing on the publish path).

#include <atomic>
#include <cstdint>

namespace tidings::detail {

/// The next free index; constant-initialized, so it is ready before any dynamic initializer.
inline constinit std::atomic<std::uint32_t> next_type_index{0};

/// @brief The index of type `T`: the same in every thread and translation unit of a program.
/// Thread safety: safe from any thread (a function-local static initialized once).
template <class T>
[[nodiscard]] std::uint32_t type_index() noexcept {
    // relaxed: the counter only has to hand out distinct numbers; the static's own
    // initialization guard publishes the value to other threads.
    static const std::uint32_t index = next_type_index.fetch_add(1, std::memory_order_relaxed);
    return index;
}

}  // namespace tidings::detail
