#pragma once
/// @file detail/task_ring.hpp
/// @brief The lock-free bounded queue under every executor lane: a single-producer
/// single-consumer ring of cache-line slots (task_ring), each holding one type-erased task
/// inline (task_slot), and what a task is asked to do (task_action).
///
/// A header of its own because it is a self-contained data structure with its own tests
/// (tests/queue.cpp): it knows nothing of executors, lanes or buses.

#include <tidings/config.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>

namespace tidings::detail {

/// What a task's operation is asked to do.
enum class task_action : unsigned char {
    run,      ///< deliver, then destroy the payload
    discard,  ///< destroy the payload without delivering (a discarding stop)
};

/// @brief One queue slot: a cache line with a type-erased task stored inline.
///
/// `operation(slot, action, context)` runs or discards the task and always destroys its
/// payload; the slot is then free for reuse.
struct alignas(cache_line_size) task_slot {
    using operation_type = std::size_t (*)(task_slot&, task_action, void* context);
    static constexpr std::size_t storage_size = cache_line_size - sizeof(operation_type);

    operation_type operation;
    alignas(alignof(std::max_align_t) < 8 ? alignof(std::max_align_t)
                                          : 8) std::byte storage[storage_size];

    template <class T>
    [[nodiscard]] T* as() noexcept {
        return std::launder(reinterpret_cast<T*>(storage));
    }
};
static_assert(sizeof(task_slot) == cache_line_size, "a task slot is one cache line");

/// @brief A bounded single-producer single-consumer ring of task slots.
///
/// Design: the producer owns `tail` and a cached copy of the consumer's `head`; the consumer
/// owns `head` and a cached copy of `tail`, and publishes `head` once per batch. Each side re-reads
/// the other's index only when its cached copy says the ring is full (producer) or empty
/// (consumer), so in a busy stream the indices' cache lines rarely travel. Indices grow without
/// wrapping (64 bits) and are masked into the power-of-two slot array.
///
/// Thread safety: one producer thread and one consumer thread at a time; size() from any
/// thread (approximate).
class task_ring {
public:
    /// @throws std::invalid_argument if `capacity` is not a power of two of at least 2, or if
    /// its slots would not fit in the address space (max_capacity); std::bad_alloc.
    explicit task_ring(std::size_t capacity) : mask_(capacity - 1), slots_(allocate(capacity)) {}

    /// The largest capacity accepted: the power of two whose slots take at most
    /// PTRDIFF_MAX / 2 bytes (2^56 slots of 64 bytes on 64-bit platforms). Sizes are checked in
    /// bytes, so `capacity * sizeof(task_slot)` can never wrap.
    static constexpr std::size_t max_capacity =
        std::bit_floor(static_cast<std::size_t>(PTRDIFF_MAX / 2) / sizeof(task_slot));

    /// @throws std::invalid_argument unless `capacity` is a power of two in [2, max_capacity].
    static void check_capacity(std::size_t capacity) {
        if (capacity < 2 || !std::has_single_bit(capacity)) {
            throw std::invalid_argument("tidings: a queue capacity must be a power of two >= 2");
        }
        if (capacity > max_capacity) {
            throw std::invalid_argument(
                "tidings: a queue capacity is too large: its slots (64 bytes each) would not "
                "fit in memory");
        }
    }

    task_ring(const task_ring&) = delete;
    task_ring& operator=(const task_ring&) = delete;
    ~task_ring() {
        // The owner drains or discards every task before destroying the ring.
        ::operator delete[](slots_, std::align_val_t{alignof(task_slot)});
    }

    [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

    /// Producer: the next free slot, or null when full. Construct a task in it, then commit().
    [[nodiscard]] task_slot* try_claim() noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);  // our own
        if (tail - producer_.cached_head > mask_) {
            // acquire: the consumer finished with the slot before publishing its new head
            // (pairs with the release store in pop()).
            producer_.cached_head = consumer_.head.load(std::memory_order_acquire);
            if (tail - producer_.cached_head > mask_) return nullptr;
        }
        return &slots_[tail & mask_];
    }

    /// Producer: publishes the slot returned by the last try_claim().
    void commit() noexcept {
        const std::uint64_t tail = producer_.tail.load(std::memory_order_relaxed);
        // release: the task's construction happens before the consumer reads it (pairs with
        // the acquire load in try_front()).
        producer_.tail.store(tail + 1, std::memory_order_release);
    }

    /// Consumer: the oldest task, or null when empty.
    [[nodiscard]] task_slot* try_front() noexcept {
        const std::uint64_t head = consumer_.local_head;
        if (head == consumer_.cached_tail) {
            // acquire: pairs with the release store in commit().
            consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
            if (head == consumer_.cached_tail) return nullptr;
        }
        return &slots_[head & mask_];
    }

    /// Consumer: moves past the slot returned by try_front() (after its task was run or
    /// discarded). The producer may reuse it only after release_consumed().
    void pop() noexcept { ++consumer_.local_head; }

    /// Consumer: hands every popped slot back to the producer. Called once per batch, so that
    /// a producer waiting on a full ring sees a batch of free slots per cache-line transfer
    /// instead of one.
    void release_consumed() noexcept {
        // release: our use of the slots happens before the producer reuses them (pairs with
        // the acquire load in try_claim()).
        consumer_.head.store(consumer_.local_head, std::memory_order_release);
    }

    /// Consumer: the index one past the newest task visible now; tasks up to it can be run
    /// without seeing later ones (run_pending's "what was queued before the call").
    [[nodiscard]] std::uint64_t visible_end() noexcept {
        // acquire: pairs with the release store in commit().
        consumer_.cached_tail = producer_.tail.load(std::memory_order_acquire);
        return consumer_.cached_tail;
    }

    /// Consumer: the index of the next task to run.
    [[nodiscard]] std::uint64_t head() const noexcept { return consumer_.local_head; }

    /// Any thread: how many tasks are queued (may be stale by the time it is used).
    [[nodiscard]] std::size_t size() const noexcept {
        // acquire on both: a consistent-enough pair; head never passes tail.
        const std::uint64_t head = consumer_.head.load(std::memory_order_acquire);
        const std::uint64_t tail = producer_.tail.load(std::memory_order_acquire);
        // No cast: std::uint64_t is std::size_t on LP64 (a cast would be useless there).
        return tail >= head ? tail - head : 0;
    }

    /// Any thread: the index one past the newest committed task.
    [[nodiscard]] std::uint64_t produced() const noexcept {
        // acquire: pairs with the release store in commit().
        return producer_.tail.load(std::memory_order_acquire);
    }

    /// Any thread: the index of the oldest slot not yet handed back by the consumer; every
    /// task before it has finished running (or was discarded).
    [[nodiscard]] std::uint64_t consumed() const noexcept {
        // acquire: pairs with the release store in release_consumed(), so the consumer's use
        // of the tasks before it happens before our caller's next steps.
        return consumer_.head.load(std::memory_order_acquire);
    }

    /// True when the producer's view says full (producer thread only).
    [[nodiscard]] bool full_for_producer() noexcept { return try_claim() == nullptr; }

private:
    static task_slot* allocate(std::size_t capacity) {
        check_capacity(capacity);
        return static_cast<task_slot*>(
            ::operator new[](capacity * sizeof(task_slot), std::align_val_t{alignof(task_slot)}));
    }

    // Written by the producer; read by the consumer only when its cached tail runs out.
    struct alignas(cache_line_size) producer_side {
        std::atomic<std::uint64_t> tail{0};
        std::uint64_t cached_head = 0;
    };
    // Written by the consumer; `head` is read by the producer only when its cached head says
    // full. `local_head` runs ahead of `head` within a batch.
    struct alignas(cache_line_size) consumer_side {
        std::atomic<std::uint64_t> head{0};
        std::uint64_t local_head = 0;
        std::uint64_t cached_tail = 0;
    };

    producer_side producer_;
    consumer_side consumer_;
    // Read by both sides, written never: a line of its own, away from both indices.
    alignas(cache_line_size) const std::uint64_t mask_;
    task_slot* const slots_;
};

}  // namespace tidings::detail
