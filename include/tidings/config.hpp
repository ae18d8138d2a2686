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

namespace tidings {

/// @brief The size we pad contended atomics to. 64 bytes on every x86-64 and most ARM cores;
/// `std::hardware_destructive_interference_size` is not used because GCC warns that its value
/// may differ between translation units.
inline constexpr std::size_t cache_line_size = 64;

}  // namespace tidings
