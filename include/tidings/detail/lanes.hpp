#pragma once
/// @file detail/lanes.hpp
/// @brief The producer side's bookkeeping of the executors: a lane (one producer thread's
/// record_ring into one executor, with its counters and its futex), the thread-local cache
/// through which a thread finds its lane in an executor, the lanes it gives back when it
/// exits, and the never-reused ids of executors, threads and lane abandonments.
///
/// Design: an executor has one lane per producer thread, so a publish writes only memory of
/// its own thread and its lane's records. A producer finds its lane through a small thread-local
/// cache keyed by the executor's never-reused id (lane_cache, then thread_lanes); a lane is
/// owned by the executor and by that cache, and freed by the last of the two. When the thread
/// exits it abandons its lanes, which a later producer thread may adopt
/// (executor_core::adopt_lane, detail/executor_core.hpp).
///
/// Thread safety: the thread-local parts belong to their thread; a lane's fields say which
/// thread writes them.

#include <tidings/config.hpp>
#include <tidings/detail/record_ring.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tidings::detail {

/// One producer thread's lane into one executor. Fields are grouped by writer so that the
/// producer's per-event writes never share a cache line with what the consumer reads.
struct lane {
    lane(std::size_t bytes, std::size_t max_records, std::uint64_t executor_id)
        : ring(bytes, max_records), owner_id(executor_id) {}

    record_ring ring;
    /// Producer-owned counter (single writer, relaxed; read by stats()); the ring counts the
    /// tasks queued.
    alignas(cache_line_size) std::atomic<std::uint64_t> heap_events{0};
    /// Owned by the executor and by the producer thread's lane cache; the last one frees it.
    std::atomic<std::uint32_t> owners{2};
    /// 0 while a producer owns the lane; once its producer thread let go of it (at exit), a
    /// ticket no other abandonment ever had, so that a taker's compare-exchange fails if the
    /// lane changed hands meanwhile (see executor_core::adopt_lane).
    std::atomic<std::uint64_t> abandoned{0};
    /// The thread token of the producer that abandoned it last (valid while `abandoned`).
    std::atomic<std::uint64_t> last_owner{0};
    /// The executor is gone; the producer's cache drops the lane on its next look-up.
    std::atomic<bool> executor_gone{false};
    /// A producer sleeps on `space` waiting for the consumer to free room (or, with
    /// max_pending, for the executor's pending count to drop).
    alignas(cache_line_size) std::atomic<bool> producer_waiting{false};
    std::atomic<std::uint32_t> space{0};
    /// Consumer-only: where run_pending stops in this lane.
    std::uint64_t run_until = 0;
    /// Immutable once the lane is published in the executor's list.
    lane* next = nullptr;
    /// The id of the executor that owns the lane (for the exit lanes' look-up).
    const std::uint64_t owner_id;
    /// Owned by the producer thread: its next lane taken during its exit (see exit_lanes).
    lane* next_exit_lane = nullptr;

    void release() noexcept {
        // acq_rel: the other owner's last use happens before the deletion.
        if (owners.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Producer: lets go of the lane (its thread is exiting), then drops its reference.
    void abandon(std::uint64_t producer_token) noexcept;
};

/// A thread's lanes, by executor id. The first few entries are constant-initialized and
/// looked up without any TLS guard; the rest live in a vector.
struct lane_cache_entry {
    std::uint64_t executor_id = 0;
    lane* cached = nullptr;
};

inline constexpr std::size_t lane_cache_ways = 4;
inline constinit thread_local lane_cache_entry lane_cache[lane_cache_ways]{};

/// Owns every lane reference of this thread; gives them back when the thread exits.
struct thread_lanes {
    std::vector<lane_cache_entry> entries;
    thread_lanes() = default;
    thread_lanes(const thread_lanes&) = delete;
    thread_lanes& operator=(const thread_lanes&) = delete;
    ~thread_lanes();
};

/// True once this thread's thread_lanes was destroyed: the thread is exiting, and a
/// thread_local destructor that runs later (an object constructed before the thread's first
/// queued publish) may still publish. Trivially destructible, so readable during the exit.
inline constinit thread_local bool this_thread_lanes_gone = false;

/// The lanes such a late publish took (see executor_core::exit_lane), linked through
/// lane::next_exit_lane: given back when its dispatch ends, through request_exit_cleanup.
inline constinit thread_local lane* exit_lanes = nullptr;

inline thread_local thread_lanes this_thread_lanes;

inline constinit std::atomic<std::uint64_t> next_executor_id{1};

/// Thread identity for would_deadlock and misuse checks. std::thread::id values are reused
/// once a thread has exited (a new thread often gets the id of one just joined), so a check
/// against a stored id could mistake a new thread for a dead one; tokens are never reused.
inline constinit std::atomic<std::uint64_t> next_thread_token{1};
inline constinit thread_local std::uint64_t this_thread_token_value = 0;

/// @brief The calling thread's token: non-zero, never given to another thread.
/// Thread safety: any thread.
[[nodiscard]] inline std::uint64_t this_thread_token() noexcept {
    std::uint64_t token = this_thread_token_value;
    if (token == 0) [[unlikely]] {
        // relaxed: tokens only need to be distinct.
        token = next_thread_token.fetch_add(1, std::memory_order_relaxed);
        this_thread_token_value = token;
    }
    return token;
}

/// Unique tickets for lane::abandoned (0 means owned).
inline constinit std::atomic<std::uint64_t> next_abandon_ticket{1};

inline void lane::abandon(std::uint64_t producer_token) noexcept {
    last_owner.store(producer_token, std::memory_order_relaxed);  // published by the release
    // release: our pushes (and `last_owner`) happen before a new owner's use (pairs with
    // its acquire CAS in adopt_lane). relaxed ticket: tickets only need to be distinct.
    abandoned.store(next_abandon_ticket.fetch_add(1, std::memory_order_relaxed),
                    std::memory_order_release);
    release();
}

inline void release_exit_lanes() noexcept {
    for (lane_cache_entry& way : lane_cache) way = {};
    const std::uint64_t self = this_thread_token();
    while (lane* taken = exit_lanes) {
        exit_lanes = taken->next_exit_lane;
        taken->next_exit_lane = nullptr;
        taken->abandon(self);
    }
}

inline thread_lanes::~thread_lanes() {
    this_thread_lanes_gone = true;
    for (lane_cache_entry& way : lane_cache) way = {};
    const std::uint64_t self = this_thread_token();
    for (const lane_cache_entry& entry : entries) entry.cached->abandon(self);
}

}  // namespace tidings::detail
