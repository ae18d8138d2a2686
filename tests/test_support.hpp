#pragma once
// Helpers shared by the tidings tests: sanitizer-aware iteration counts, a lifetime counter
// for captured state, a bounded spin-wait that never sleeps, and allocation counting.

#include <atomic>
#include <cstdint>
#include <thread>

namespace tidings_test {

// ThreadSanitizer makes every atomic operation and every synchronization point many times
// slower; the stress tests scale their iteration counts down under it.
#if defined(__SANITIZE_THREAD__)
#define TIDINGS_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIDINGS_TEST_TSAN 1
#endif
#endif
#ifndef TIDINGS_TEST_TSAN
#define TIDINGS_TEST_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TIDINGS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIDINGS_TEST_ASAN 1
#endif
#endif
#ifndef TIDINGS_TEST_ASAN
#define TIDINGS_TEST_ASAN 0
#endif

inline constexpr bool under_tsan = TIDINGS_TEST_TSAN != 0;
inline constexpr bool under_asan = TIDINGS_TEST_ASAN != 0;

/// `n` normally; `n / tsan_divisor` (at least 1) under ThreadSanitizer.
constexpr std::int64_t scaled(std::int64_t n, std::int64_t tsan_divisor = 16) {
    if (!under_tsan) return n;
    const std::int64_t reduced = n / tsan_divisor;
    return reduced > 0 ? reduced : 1;
}

/// Counts constructions and destructions of `counted` objects that share it.
struct lifetime_counter {
    std::atomic<int> constructed{0};
    std::atomic<int> destroyed{0};
    [[nodiscard]] int live() const noexcept {
        return constructed.load(std::memory_order_acquire) -
               destroyed.load(std::memory_order_acquire);
    }
};

/// An object to capture in a handler, to see when the handler's state is destroyed.
class counted {
public:
    explicit counted(lifetime_counter& counter) noexcept : counter_(&counter) { note_built(); }
    counted(const counted& other) noexcept : counter_(other.counter_) { note_built(); }
    counted(counted&& other) noexcept : counter_(other.counter_) { note_built(); }
    counted& operator=(const counted&) = delete;
    counted& operator=(counted&&) = delete;
    ~counted() { counter_->destroyed.fetch_add(1, std::memory_order_acq_rel); }

private:
    void note_built() noexcept { counter_->constructed.fetch_add(1, std::memory_order_acq_rel); }
    lifetime_counter* counter_;
};

/// Spins (yielding) until `done()` holds. Used only where another running thread is known to
/// make it hold; a bug that prevents it shows up as a ctest timeout.
template <class Predicate>
void spin_until(Predicate done) {
    for (unsigned spins = 0; !done(); ++spins) {
        if (spins >= 64) std::this_thread::yield();
    }
}

/// A little work that the optimizer cannot remove, to widen race windows without sleeping.
inline void busy_work(int iterations) {
    static std::atomic<int> sink{0};
    for (int i = 0; i < iterations; ++i) sink.fetch_add(1, std::memory_order_relaxed);
}

// Allocation counting, defined in tests/allocation.cpp (part of the same test executable): it
// replaces the global allocation functions, or under ASan or TSan installs the sanitizer's
// malloc hook. Each thread counts only its own allocations, and only between these two calls.

/// Starts counting the calling thread's allocations, from zero.
void start_counting_allocations() noexcept;
/// Stops counting the calling thread's allocations; returns how many it made since the start.
std::int64_t stop_counting_allocations() noexcept;

/// Counts the allocations made by the thread that created it, until stop() or destruction.
class allocation_window {
public:
    allocation_window() noexcept { start_counting_allocations(); }
    ~allocation_window() { stop(); }
    allocation_window(const allocation_window&) = delete;
    allocation_window& operator=(const allocation_window&) = delete;
    /// Stops counting and returns the count (the first call's count, on later calls too).
    std::int64_t stop() noexcept {
        if (open_) {
            count_ = stop_counting_allocations();
            open_ = false;
        }
        return count_;
    }

private:
    bool open_ = true;
    std::int64_t count_ = 0;
};

// Allocation failure, defined in tests/allocation.cpp as well: the replaced operator new of the
// calling thread fails once, at the Nth allocation from now. Under ASan, LeakSanitizer then
// reports at exit anything the failure leaked; the sweeps (tests/allocation_failure.cpp) also
// count the captured state themselves.

/// Whether this build can make an allocation fail: everywhere but under Clang's sanitizers,
/// whose runtimes, linked statically, define operator new themselves (tests/allocation.cpp).
#if defined(__clang__) && (TIDINGS_TEST_TSAN || TIDINGS_TEST_ASAN)
inline constexpr bool can_fail_allocations = false;
#else
inline constexpr bool can_fail_allocations = true;
#endif

/// Makes the calling thread's `n`th allocation from now (`n` >= 1) fail: a throwing operator
/// new throws std::bad_alloc, a nothrow one returns null. Only that one fails; the allocations
/// after it succeed. `n` = 0 disarms. Other threads are not affected. Does nothing where
/// can_fail_allocations is false.
void fail_nth_allocation(std::int64_t n) noexcept;
/// Disarms the calling thread's failure; returns whether it happened since it was armed.
bool stop_failing_allocations() noexcept;

/// Fails the `n`th allocation of the thread that created it, counting from its construction,
/// until failed() or destruction.
class allocation_failure {
public:
    explicit allocation_failure(std::int64_t n) noexcept { fail_nth_allocation(n); }
    ~allocation_failure() { failed(); }
    allocation_failure(const allocation_failure&) = delete;
    allocation_failure& operator=(const allocation_failure&) = delete;
    /// Disarms; returns whether the allocation failed (the first call's answer, on later calls
    /// too).
    bool failed() noexcept {
        if (armed_) {
            failed_ = stop_failing_allocations();
            armed_ = false;
        }
        return failed_;
    }

private:
    bool armed_ = true;
    bool failed_ = false;
};

}  // namespace tidings_test
