#pragma once
/// @file detail/type_index.hpp
/// @brief A small dense number per event type, assigned on first use, that indexes a bus's
/// channel table (no RTTI, no hashing on the publish path).

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace tidings::detail {

inline constexpr std::uint32_t unassigned_type_index = ~std::uint32_t{0};

/// How many distinct event types one program may use; indexes are checked once, when assigned,
/// so that the publish path needs no bounds check.
inline constexpr std::uint32_t max_event_types = 16384;

/// The next free index; constant-initialized, so it is ready before any dynamic initializer.
inline constinit std::atomic<std::uint32_t> next_type_index{0};

/// Each type's index, or unassigned_type_index before its first use. Constant-initialized, so
/// reading it needs no initialization guard (a function-local static would add one to every
/// publish) and is safe from any static initializer.
template <class T>
inline constinit std::atomic<std::uint32_t> type_index_slot{unassigned_type_index};

template <class T>
[[gnu::noinline]] std::uint32_t assign_type_index() noexcept {
    // relaxed: the counter only hands out distinct numbers.
    std::uint32_t fresh = next_type_index.fetch_add(1, std::memory_order_relaxed);
    if (fresh >= max_event_types) {
        std::fputs("tidings: more than 16384 event types in one program\n", stderr);
        std::abort();
    }
    std::uint32_t expected = unassigned_type_index;
    // relaxed: the index is a plain number; all that matters is that every thread agrees on
    // one value, which the CAS's single modification order gives. A losing thread's number
    // is simply never used.
    if (type_index_slot<T>.compare_exchange_strong(expected, fresh, std::memory_order_relaxed)) {
        return fresh;
    }
    return expected;
}

/// @brief The index of type `T`: the same in every thread and translation unit of a program.
/// Thread safety: safe from any thread.
template <class T>
[[nodiscard]] inline std::uint32_t type_index() noexcept {
    // relaxed: see assign_type_index.
    const std::uint32_t index = type_index_slot<T>.load(std::memory_order_relaxed);
    if (index != unassigned_type_index) [[likely]]
        return index;
    return assign_type_index<T>();
}

}  // namespace tidings::detail
