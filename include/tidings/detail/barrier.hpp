#pragma once
/// @file detail/barrier.hpp
/// @brief The memory barriers and the spin pause that tidings' waits and wake-ups are built
/// from: cpu_relax, full_fence, and the asymmetric pair light_barrier / heavy_barrier with
/// the process-wide choice of how the heavy side is made (choose_barrier).
///
/// Design: a store-then-load race between two threads (a producer commits, then reads
/// whether the consumer sleeps; the consumer says it sleeps, then re-checks the lanes) needs
/// a store-load barrier on both sides. The frequent side runs light_barrier(), the rare side
/// heavy_barrier(). With Linux `membarrier` (expedited, private), the heavy side interrupts
/// every other thread of the process, so the light side is only a compiler barrier; without
/// it (other systems, or under ThreadSanitizer, which cannot see it) both sides are full
/// fences. The choice is made once per process, by the first bus or executor constructed,
/// and is read by the reclamation of detail/epoch.hpp as well.
///
/// Thread safety: every function may be called from any thread.

#include <tidings/config.hpp>

#include <atomic>

#if TIDINGS_USE_MEMBARRIER
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace tidings::detail {

/// One pause of a spin loop: tells the core we are spinning (saves power, frees the sibling
/// hyper-thread). A compiler builtin, so that no intrinsics header is needed.
inline void cpu_relax() noexcept {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// A full memory barrier. GCC warns that ThreadSanitizer does not model fences; the barriers
/// here only prevent lost wake-ups (a liveness property TSan does not check), so the warning
/// is silenced.
inline void full_fence() noexcept {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
    std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic pop
#endif
}

enum class barrier_kind : int { unknown = 0, membarrier = 1, sequentially_consistent = 2 };

/// The barrier this process uses, set once by choose_barrier(). Constant-initialized, so it
/// is usable from any static initializer; read (relaxed) on every publish path, written once:
/// a cache line of its own, shared with nothing that is written.
alignas(cache_line_size) inline constinit std::atomic<barrier_kind> process_barrier{
    barrier_kind::unknown};

/// Chooses the barrier once per process. Called by every bus's and every executor's
/// constructor, so a reader never relies on a membarrier that no writer issues.
inline barrier_kind choose_barrier() noexcept {
    barrier_kind kind = process_barrier.load(std::memory_order_acquire);
    if (kind != barrier_kind::unknown) return kind;
    barrier_kind chosen = barrier_kind::sequentially_consistent;
#if TIDINGS_USE_MEMBARRIER
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
        chosen = barrier_kind::membarrier;
    }
#endif
    barrier_kind expected = barrier_kind::unknown;
    // acq_rel: the registration above happens before any reader that sees `membarrier`.
    process_barrier.compare_exchange_strong(expected, chosen, std::memory_order_acq_rel,
                                            std::memory_order_acquire);
    return process_barrier.load(std::memory_order_acquire);
}

/// The fast side of an asymmetric store-load barrier: a compiler barrier when the slow side
/// issues membarrier, a full fence otherwise. Pairs with heavy_barrier().
inline void light_barrier() noexcept {
    if (process_barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier) {
        std::atomic_signal_fence(std::memory_order_seq_cst);
    } else {
        full_fence();
    }
}

/// The slow side: makes every other thread's earlier stores visible before our later loads,
/// whichever light_barrier() they ran. Costs a system call with membarrier.
inline void heavy_barrier() noexcept {
#if TIDINGS_USE_MEMBARRIER
    if (process_barrier.load(std::memory_order_relaxed) == barrier_kind::membarrier) {
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        return;
    }
#endif
    full_fence();
}

}  // namespace tidings::detail
