#pragma once
/// @file config.hpp
/// @brief Every configuration knob of tidings, in one place.
///
/// Define any of these macros before the first tidings include to override them.

#include <cstddef>
#include <cstdio>
#include <cstdlib>

/// @brief Checks a precondition whose violation would be undefined behaviour.
///
/// The default is active unless `NDEBUG` is defined: it prints the message and aborts.
/// Define `TIDINGS_ASSERT(cond, msg)` before the first include to route it elsewhere.
#ifndef TIDINGS_ASSERT
#ifdef NDEBUG
#define TIDINGS_ASSERT(cond, msg) ((void)0)
#else
#define TIDINGS_ASSERT(cond, msg)                                                               \
    ((cond) ? (void)0                                                                           \
            : (std::fprintf(stderr, "tidings: assertion failed: %s (%s:%d)\n", (msg), __FILE__, \
                            __LINE__),                                                          \
               std::abort()))
#endif
#endif

/// @brief 1 when the translation unit is built with ThreadSanitizer.
///
/// ThreadSanitizer cannot see the process-wide memory barrier (`membarrier`) that keeps the
/// read side of tidings::bus free of fences, so under TSan the read side uses sequentially
/// consistent operations instead: the same algorithm, checked by the same tests.
#ifndef TIDINGS_TSAN
#if defined(__SANITIZE_THREAD__)
#define TIDINGS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIDINGS_TSAN 1
#endif
#endif
#endif
#ifndef TIDINGS_TSAN
#define TIDINGS_TSAN 0
#endif

/// @brief 1 to use Linux `membarrier(2)` as the asymmetric barrier of tidings::bus.
#ifndef TIDINGS_USE_MEMBARRIER
#if defined(__linux__) && !TIDINGS_TSAN
#define TIDINGS_USE_MEMBARRIER 1
#else
#define TIDINGS_USE_MEMBARRIER 0
#endif
#endif

/// @brief Forces inlining of the few functions on the publish path that compilers would
/// otherwise keep out of line (the dispatch loop).
#ifndef TIDINGS_ALWAYS_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define TIDINGS_ALWAYS_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define TIDINGS_ALWAYS_INLINE __forceinline
#else
#define TIDINGS_ALWAYS_INLINE inline
#endif
#endif

/// @brief A point where the test build perturbs the thread schedule.
///
/// Placed at the concurrency-critical points of the executor, channel, epoch and retention
/// code (between a store and the load that must see another thread's store, before a wait,
/// between two steps of a protocol). Compiled out unless `TIDINGS_PERTURB_SCHEDULE` is defined
/// to 1, as the test suite's perturbation build does (CMake option TIDINGS_PERTURB_SCHEDULE):
/// then each point, at random, yields the thread or spins a short while, so that stress tests
/// reach interleavings that plain runs almost never do. Never enable it in production.
#ifndef TIDINGS_PERTURB_SCHEDULE
#define TIDINGS_PERTURB_SCHEDULE 0
#endif
#if TIDINGS_PERTURB_SCHEDULE
#include <atomic>
#include <cstdint>
#include <thread>
namespace tidings::detail {
/// One schedule point of the perturbation build: nothing 3 times in 4, else a yield or a spin
/// of up to ~2000 iterations, chosen by a per-thread xorshift generator.
inline void perturb_schedule() noexcept {
    thread_local std::uint64_t state =
        0x9E3779B97F4A7C15ULL ^
        static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const auto draw = static_cast<unsigned>(state >> 32);
    switch (draw & 7U) {
        case 0:
            std::this_thread::yield();
            break;
        case 1: {
            const unsigned spins = (draw >> 3) & 2047U;
            for (unsigned i = 0; i < spins; ++i)
                std::atomic_signal_fence(std::memory_order_seq_cst);
            break;
        }
        default:
            break;
    }
}
}  // namespace tidings::detail
#define TIDINGS_SCHEDULE_POINT() ::tidings::detail::perturb_schedule()
#else
#define TIDINGS_SCHEDULE_POINT() ((void)0)
#endif

namespace tidings {

/// @brief The size we pad contended atomics to. 64 bytes on every x86-64 and most ARM cores;
/// `std::hardware_destructive_interference_size` is not used because GCC warns that its value
/// may differ between translation units.
inline constexpr std::size_t cache_line_size = 64;

}  // namespace tidings
