#pragma once
/// @file detail/plain_atomic.hpp
/// @brief The subset of std::atomic's interface that the bus uses, over a plain value, for
/// the single-threaded policy: the same code compiles to ordinary loads and stores.
///
/// Not thread-safe, by design.

#include <atomic>

namespace tidings::detail {

template <class T>
class plain_atomic {
public:
    constexpr plain_atomic() noexcept = default;
    constexpr plain_atomic(T value) noexcept : value_(value) {}  // NOLINT: mirrors std::atomic
    plain_atomic(const plain_atomic&) = delete;
    plain_atomic& operator=(const plain_atomic&) = delete;

    [[nodiscard]] T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
        return value_;
    }
    void store(T value, std::memory_order = std::memory_order_seq_cst) noexcept { value_ = value; }
    T exchange(T value, std::memory_order = std::memory_order_seq_cst) noexcept {
        T old = value_;
        value_ = value;
        return old;
    }
    bool compare_exchange_strong(T& expected, T desired,
                                 std::memory_order = std::memory_order_seq_cst,
                                 std::memory_order = std::memory_order_seq_cst) noexcept {
        if (value_ == expected) {
            value_ = desired;
            return true;
        }
        expected = value_;
        return false;
    }

private:
    T value_{};
};

/// A mutex that does nothing, for the single-threaded policy.
struct null_mutex {
    void lock() noexcept {}
    void unlock() noexcept {}
    bool try_lock() noexcept { return true; }
};

}  // namespace tidings::detail
