#pragma once
/// @file delivery.hpp
/// @brief The vocabulary of queued delivery: how an executor is configured
/// (tidings::executor_options, tidings::overflow, tidings::wait_strategy), what it reports
/// (tidings::executor_stats, tidings::publish_result) and what it throws
/// (tidings::queue_full, tidings::executor_stopped, tidings::would_deadlock).
///
/// Plain types and no machinery, so that every layer can name them: the public executors
/// (executor.hpp), the bus, and the internals in detail/ (the wait strategies of
/// detail/wait.hpp, the executor core of detail/executor_core.hpp) all include this header,
/// and it includes only standard headers.

#include <tidings/fwd.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace tidings {

/// @brief What a publish does when an executor's queue (its lane for the publishing thread)
/// is full.
enum class overflow {
    block,  ///< the publisher waits for space: lossless (the default)
    drop,   ///< the event is not queued; publish_result::dropped and the executor's stats count it
    fail,   ///< publish throws tidings::queue_full
};

/// @brief How a thread waits: the executor's consumer for work, a blocked producer for space.
enum class wait_strategy {
    /// Busy-wait with a pause instruction: lowest latency, burns a core while idle. Only the
    /// consumer spins for ever: a producer blocked on a full lane (overflow::block) spins for
    /// executor_options::spin_duration, yields for yield_duration, then sleeps on a futex,
    /// exactly as with adaptive, so that a slow consumer never costs its producers a core
    /// each.
    spin,
    yield,     ///< busy-wait with std::this_thread::yield
    block,     ///< sleep on a futex (C++20 atomic wait) until notified
    adaptive,  ///< spin, then yield, then block: the default
};

/// @brief What a publish did with its queued deliveries (inline subscribers always run).
struct publish_result {
    std::uint32_t queued = 0;   ///< executors that accepted the event
    std::uint32_t dropped = 0;  ///< executors that refused it (overflow::drop: full or stopped)
    /// @brief True when every executor accepted the event.
    [[nodiscard]] bool accepted() const noexcept { return dropped == 0; }
};

/// @brief Thrown by publish when an executor's queue is full and its policy is overflow::fail.
class queue_full : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief Thrown by publish into an executor that has stopped (unless its policy is
/// overflow::drop, which counts the event in executor_stats::rejected instead).
class executor_stopped : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief Thrown instead of waiting forever: a publish with overflow::block into a full lane
/// that only the publishing thread itself drains, or stopping an executor from its own thread.
class would_deadlock : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

/// @brief What stop() does with tasks still queued.
enum class stop_mode {
    drain,    ///< run every accepted task, then stop (the default)
    discard,  ///< throw queued tasks away, counting them in executor_stats::discarded
};

/// @brief How an executor's queues behave. Every field has a sensible default.
///
/// Memory: each thread that publishes to an executor gets a lane of `lane_bytes` (16 KiB by
/// default), freed with the executor, so an executor holds `lanes × lane_bytes`, plus, for
/// events that do not travel inline (events up to 256 bytes always do; see docs/async.md;
/// executor_stats::heap_events), one heap copy per pending event. `lanes` is the most producer
/// threads alive at once, plus lanes of exited threads that still held tasks when a new thread
/// needed one (an exited thread's lane is handed on once the consumer has emptied it).
/// `max_pending` bounds the pending tasks across all lanes.
struct executor_options {
    /// No bound beyond the lanes' bytes (for `capacity` and `max_pending`).
    static constexpr std::size_t unbounded = ~std::size_t{0};

    /// Bytes of each producer thread's lane: a power of two, at least 1024 and at most
    /// PTRDIFF_MAX / 2 (else the constructor throws std::invalid_argument). A queued delivery
    /// of an event of N bytes takes about N + 32 bytes (48 for a 16-byte event). A record never
    /// straddles the lane's end (the bytes left there are skipped) and needs 8 bytes after it,
    /// so how many large records fit at once depends on where the lane stands: a lane of B
    /// bytes always has room for at least (B - 8) / (2 S) records of S bytes. Keep a lane well
    /// inside the L1 cache, where the 16 KiB default measured fastest.
    std::size_t lane_bytes = 16 * 1024;
    /// Tasks per producer lane, at least 1 (a lane is full when either bound is reached):
    /// for a bound in events rather than bytes, e.g. to cap a producer's lead over its consumer.
    std::size_t capacity = unbounded;
    /// Tasks pending across all lanes of the executor, at least 1: a publish that would exceed
    /// it is handled like one into a full lane (on_full). Costs a compare-exchange on one
    /// shared counter per publish, and the consumer looks for waiting producers in every lane
    /// after each batch, so it is off by default.
    std::size_t max_pending = unbounded;
    /// What a publish does when its lane is full.
    overflow on_full = overflow::block;
    /// How the consumer waits for work, and a blocked producer for space.
    wait_strategy wait = wait_strategy::adaptive;
    /// adaptive (and a producer blocked with spin): how long a waiting thread spins before it
    /// starts yielding. Long enough that a busy stream never reaches the futex (a wake-up
    /// costs tens of microseconds), short enough that an idle consumer soon sleeps. Not
    /// negative; any larger value, up to microseconds::max(), is accepted and saturates at
    /// about a century ("spin for ever").
    std::chrono::microseconds spin_duration{50};
    /// adaptive (and a producer blocked with spin): how long it then yields before blocking
    /// on a futex. Same range as spin_duration.
    std::chrono::microseconds yield_duration{50};
};

/// @brief Counters of one executor. All counts are totals since construction.
/// Accepted tasks = executed + discarded + pending.
struct executor_stats {
    std::uint64_t queued = 0;    ///< tasks accepted (one per publish per executor)
    std::uint64_t executed = 0;  ///< tasks run
    /// Accepted tasks thrown away by a discarding stop (or a manual_executor's destruction),
    /// and the live events a replaying subscriber held behind discarded replayed events.
    std::uint64_t discarded = 0;
    std::uint64_t dropped = 0;    ///< publishes refused by overflow::drop: full lane or max_pending
    std::uint64_t rejected = 0;   ///< publishes refused because the executor had stopped
    std::uint64_t cancelled = 0;  ///< deliveries skipped: the subscriber left after the publish
    std::uint64_t heap_events = 0;  ///< events too large for a lane record, stored on the heap
    std::size_t pending = 0;        ///< tasks queued now
};

}  // namespace tidings
