#pragma once
/// @file executor.hpp
/// @brief Where queued deliveries run: tidings::manual_executor (the user's loop runs it) and
/// tidings::thread_executor (owns a worker thread), and tidings::deliver_on to choose one.
///
/// Design: an executor has one lane (a task_ring) per producer thread, so a publish writes
/// only memory of its own thread and the ring's slot, and the events one thread publishes
/// reach the executor in the order it published them, across event types (per-producer
/// FIFO). The consumer visits the lanes round-robin in batches. A producer finds its lane
/// through a small thread-local cache keyed by the executor's never-reused id.

#include <tidings/config.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/queue.hpp>
#include <tidings/subscription.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tidings {

/// @brief How an executor's queues behave. Every field has a sensible default.
struct executor_options {
    /// Slots per producer thread (each thread that publishes to the executor gets its own
    /// lane of this many slots, 64 bytes each). A power of two, at least 2 and at most
    /// detail::task_ring::max_capacity (2^56: larger lanes could not be addressed).
    std::size_t capacity = 1024;
    /// What a publish does when its lane is full.
    overflow on_full = overflow::block;
    /// How the consumer waits for work, and a blocked producer for space.
    wait_strategy wait = wait_strategy::adaptive;
    /// adaptive: how long a waiting thread spins before it starts yielding. Long enough that
    /// a busy stream never reaches the futex (a wake-up costs tens of microseconds), short
    /// enough that an idle consumer soon sleeps. Not negative; any larger value, up to
    /// microseconds::max(), is accepted and saturates at about a century ("spin for ever").
    std::chrono::microseconds spin_duration{50};
    /// adaptive: how long it then yields before blocking on a futex. Same range as
    /// spin_duration.
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
    std::uint64_t dropped = 0;      ///< publishes refused by overflow::drop on a full lane
    std::uint64_t rejected = 0;     ///< publishes refused because the executor had stopped
    std::uint64_t cancelled = 0;    ///< deliveries skipped: the subscriber left after the publish
    std::uint64_t heap_events = 0;  ///< events too large for a slot, stored on the heap
    std::size_t pending = 0;        ///< tasks queued now
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

/// @brief What a publish did with its queued deliveries (inline subscribers always run).
struct publish_result {
    std::uint32_t queued = 0;   ///< executors that accepted the event
    std::uint32_t dropped = 0;  ///< executors that refused it (overflow::drop: full or stopped)
    /// @brief True when every executor accepted the event.
    [[nodiscard]] bool accepted() const noexcept { return dropped == 0; }
};

namespace detail {

/// One producer thread's lane into one executor. Fields are grouped by writer so that the
/// producer's per-event writes never share a cache line with what the consumer reads.
struct lane {
    lane(std::size_t capacity, std::uint64_t executor_id) : ring(capacity), owner_id(executor_id) {}

    task_ring ring;
    /// Producer-owned counters (single writer, relaxed; read by stats()).
    alignas(cache_line_size) std::atomic<std::uint64_t> queued{0};
    std::atomic<std::uint64_t> heap_events{0};
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
    /// A producer sleeps on `space` waiting for the consumer to free a slot.
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

class executor_core;

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

/// Reports a misuse that cannot be reported by an exception (a destructor) and ends the
/// process: the same in every build, NDEBUG or not.
[[noreturn]] inline void fatal_misuse(const char* message) noexcept {
    std::fprintf(stderr, "tidings: %s\n", message);
    std::fflush(stderr);
    std::abort();
}

/// What a bus needs from an executor on its rare paths (attaching and detaching).
class executor_client {
public:
    /// The executor is being destroyed: unlink every subscription delivering to it.
    virtual void detach_executor(executor_core& executor) noexcept = 0;

protected:
    ~executor_client() = default;
};

/// @brief The shared state of an executor: lanes, wait/notify, attachments to buses, stats.
///
/// Thread safety: push() from any thread; the run_* functions and wait_for_work() from one
/// consumer thread at a time; stats(), pending() from any thread.
class executor_core {
public:
    /// @throws std::invalid_argument if the capacity is not a power of two in
    /// [2, task_ring::max_capacity] or a wait duration is negative.
    explicit executor_core(const executor_options& options)
        : options_(checked(options)),
          spin_until_(saturated(options.spin_duration)),
          yield_until_(spin_until_ + saturated(options.yield_duration)),
          id_(next_executor_id.fetch_add(1, std::memory_order_relaxed)) {
        // relaxed above: ids only need to be distinct.
        choose_barrier();
    }

    executor_core(const executor_core&) = delete;
    executor_core& operator=(const executor_core&) = delete;

    ~executor_core() {
        discard_all();
        lane* current = lanes_.load(std::memory_order_acquire);
        while (current != nullptr) {
            lane* next = current->next;
            // release: producers' caches see the flag before the lane may be reused.
            current->executor_gone.store(true, std::memory_order_release);
            current->release();
            current = next;
        }
    }

    [[nodiscard]] const executor_options& options() const noexcept { return options_; }

    // ---- producer side ---------------------------------------------------------------------

    /// The calling thread's lane, created on first use.
    [[nodiscard]] lane& lane_for_this_thread() {
        lane_cache_entry& way = lane_cache[id_ % lane_cache_ways];
        if (way.executor_id == id_) [[likely]]
            return *way.cached;
        return lane_slow(way);
    }

    /// Queues one task built by `build(task_slot&)`. Returns true if queued, false if
    /// refused by overflow::drop (counted). Throws queue_full, executor_stopped or
    /// would_deadlock as documented on tidings::overflow.
    /// Must be called inside a dispatch (a bus read section), so that stop() can wait for it.
    template <class Build>
    bool push(Build&& build) {
        // relaxed: stop() stores false and then waits for every dispatch that could have read
        // true (an epoch grace period), so a push that reads true completes before the drain.
        if (!accepting_.load(std::memory_order_relaxed)) [[unlikely]] {
            return refuse_stopped();
        }
        lane& own = lane_for_this_thread();
        task_slot* slot = own.ring.try_claim();
        if (slot == nullptr) [[unlikely]] {
            slot = claim_when_full(own);
            if (slot == nullptr) return false;
        }
        const bool on_heap = build(*slot);
        own.ring.commit();
        TIDINGS_SCHEDULE_POINT();  // between the commit and the read of `sleeping_`
        // relaxed: statistics with a single writer (this producer thread).
        own.queued.store(own.queued.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        if (on_heap) {
            own.heap_events.store(own.heap_events.load(std::memory_order_relaxed) + 1,
                                  std::memory_order_relaxed);
        }
        // Store-load: our commit before our read of `sleeping_`, paired with the consumer's
        // heavy_barrier between its store of `sleeping_` and its re-check of the lanes.
        light_barrier();
        if (sleeping_.load(std::memory_order_relaxed)) [[unlikely]]
            wake_consumer();
        return true;
    }

    // ---- consumer side ---------------------------------------------------------------------

    /// Runs up to `limit` tasks, visiting lanes round-robin in batches, starting after the
    /// lane where the previous call stopped (so that small limits starve no producer).
    /// Returns how many ran.
    std::size_t run_some(std::size_t limit) noexcept {
        lane* const head = lanes_.load(std::memory_order_acquire);
        if (head == nullptr) return 0;
        std::size_t ran = 0;
        lane* current = cursor_ != nullptr && cursor_->next != nullptr ? cursor_->next : head;
        // One full cycle over the lanes, or until the limit.
        for (lane* const first = current; ran < limit && !halted();) {
            const std::size_t batch = std::min<std::size_t>(limit - ran, per_lane_batch);
            ran += run_lane(*current, batch, ~std::uint64_t{0});
            cursor_ = current;
            current = current->next != nullptr ? current->next : head;
            if (current == first) break;
        }
        return ran;
    }

    /// Runs the tasks visible at the call, not those queued while it runs (every lane's end
    /// is read before any task runs).
    std::size_t run_visible() noexcept {
        lane* const head = lanes_.load(std::memory_order_acquire);
        for (lane* current = head; current != nullptr; current = current->next) {
            current->run_until = current->ring.visible_end();
        }
        std::size_t ran = 0;
        // Lanes created meanwhile are added before `head`, so this walk does not see them.
        for (lane* current = head; current != nullptr && !halted(); current = current->next) {
            ran += run_lane(*current, ~std::size_t{0}, current->run_until);
        }
        return ran;
    }

    /// Throws every queued task away; returns how many, plus the live events that a
    /// replaying subscriber held behind discarded replayed events (thrown away with them).
    std::size_t discard_all() noexcept {
        std::size_t count = 0;
        for (lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            while (task_slot* slot = current->ring.try_front()) {
                count += 1 + slot->operation(*slot, task_action::discard, this);
                current->ring.pop();
            }
            current->ring.release_consumed();
            notify_space(*current);
        }
        add_relaxed(discarded_, count);
        return count;
    }

    /// True if some lane has a task (consumer thread).
    [[nodiscard]] bool has_work() noexcept {
        for (lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            if (current->ring.try_front() != nullptr) return true;
        }
        return false;
    }

    /// Waits for work by the configured strategy. `idle_since` is when the consumer last found
    /// work (the adaptive strategy moves from spinning to yielding to blocking as it ages).
    /// Returns when there may be work, when wake_consumer() was called, or when `stop_flag`
    /// is set (its setter must call wake_consumer() after setting it).
    void wait_for_work(std::chrono::steady_clock::time_point idle_since,
                       const std::atomic<bool>& stop_flag) noexcept {
        switch (phase(idle_since)) {
            case wait_phase::spin:
                // Poll an empty queue about every 0.3 µs (a pause is ~10 ns on the Xeons we
                // measured), not as fast as possible: polling right behind the producer makes
                // every event's cache line cross cores twice, which measured 2.5x slower
                // (7.8 vs 19.9 M events/s); waiting longer adds latency for sparse streams.
                for (int i = 0; i < idle_poll_pauses; ++i) cpu_relax();
                return;
            case wait_phase::yield:
                std::this_thread::yield();
                return;
            case wait_phase::block:
                sleep_until_woken(stop_flag);
                return;
        }
    }

    /// A discarding stop began: the consumer runs no task it has not started (run_lane checks
    /// before each one). Called before stop_accepting(), whose release store of `accepting_`
    /// publishes it: a thread that sees a publish refused (refuse_stopped's acquire fence) and
    /// then lets a running handler finish is sure that the consumer starts nothing more.
    void halt() noexcept {
        halted_.store(true, std::memory_order_relaxed);  // published by stop_accepting
    }

    [[nodiscard]] bool halted() const noexcept {
        // relaxed: see halt(); the consumer's program order does the rest.
        return halted_.load(std::memory_order_relaxed);
    }

    /// Wakes the consumer if it sleeps (or is about to).
    void wake_consumer() noexcept {
        // release: pairs with the acquire load in sleep_until_woken, so that a consumer that
        // reads this increment also sees a stop flag stored before it (the tasks themselves
        // are published by the lanes' own release/acquire).
        wake_.fetch_add(1, std::memory_order_release);
        wake_.notify_one();
    }

    /// Marks the calling thread as the one that runs the consumer side, for would_deadlock
    /// detection.
    void set_consumer_thread() noexcept {
        // relaxed: compared by the same thread that stored it (other threads only need to
        // see that it is not theirs, and no other thread ever has this token).
        consumer_token_.store(this_thread_token(), std::memory_order_relaxed);
        // For a waiting writer on this thread (wait_for_readers): producers blocked on our
        // lanes name this token.
        this_thread_consumer_token = this_thread_token();
    }

    /// @brief Marks the calling thread as running a manual executor's tasks until end_run().
    /// @throws std::logic_error for a nested run (from a handler this executor is running:
    /// run_pending in a modal loop) or a run while another thread runs it. Nothing ran then.
    void begin_run() {
        const std::uint64_t self = this_thread_token();
        std::uint64_t expected = 0;
        // acquire: the previous run (perhaps on another thread) happens before ours (pairs
        // with the release store in end_run).
        if (!runner_.compare_exchange_strong(expected, self, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
            if (expected == self) {
                throw std::logic_error(
                    "tidings: a manual_executor's run_pending/run_one/run_for_at_most was "
                    "called from a handler that this executor is running (a nested run); "
                    "nested runs are not supported: return to the loop that runs it, or run "
                    "another manual_executor for the nested loop");
            }
            throw std::logic_error(
                "tidings: two threads ran the same manual_executor at once; its run "
                "functions must be called by one thread at a time");
        }
        set_consumer_thread();
    }

    void end_run() noexcept {
        runner_.store(0, std::memory_order_release);  // pairs with the CAS in begin_run
    }

    /// True while the calling thread is inside a run of this (manual) executor.
    [[nodiscard]] bool running_on_this_thread() const noexcept {
        // relaxed: compared with our own token, which only this thread stores.
        return runner_.load(std::memory_order_relaxed) == this_thread_token();
    }

    /// Stops accepting new tasks, wakes producers blocked on full lanes (they then throw
    /// executor_stopped), and waits until no publish that saw the executor accepting is still
    /// pushing. After it returns, every accepted task is in a lane.
    void stop_accepting() {
        if (in_read_section()) {
            throw would_deadlock(
                "tidings: an executor cannot be stopped from inside a handler: the stop waits "
                "for running publishes, and this thread is running one");
        }
        // seq_cst: ordered before the epoch increment below, so a dispatch that reads the
        // new epoch also reads accepting == false. Also a release: see halt().
        accepting_.store(false, std::memory_order_seq_cst);
        TIDINGS_SCHEDULE_POINT();  // between the store and the wake-ups and grace period
        for (lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            current->space.fetch_add(1, std::memory_order_release);
            current->space.notify_all();
        }
        // Every dispatch, whatever it reads: a push runs inside a section of the publishing
        // channel, not of this executor. A producer blocked on a lane that this thread
        // consumes is canceled rather than waited for (would_deadlock, detail/epoch.hpp).
        wait_for_readers(registry.epoch.fetch_add(1, std::memory_order_seq_cst), read_scope{});
    }

    [[nodiscard]] bool accepting() const noexcept {
        return accepting_.load(std::memory_order_acquire);
    }

    [[nodiscard]] std::size_t pending() const noexcept {
        std::size_t count = 0;
        for (const lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            count += current->ring.size();
        }
        return count;
    }

    [[nodiscard]] executor_stats stats() const noexcept {
        executor_stats result;
        for (const lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            result.queued += current->queued.load(std::memory_order_relaxed);
            result.heap_events += current->heap_events.load(std::memory_order_relaxed);
            result.pending += current->ring.size();
        }
        // relaxed: statistics; each counter is exact once the executor is quiescent.
        result.executed = executed_.load(std::memory_order_relaxed);
        result.discarded = discarded_.load(std::memory_order_relaxed);
        result.dropped = dropped_.load(std::memory_order_relaxed);
        result.rejected = rejected_.load(std::memory_order_relaxed);
        result.cancelled = cancelled_.load(std::memory_order_relaxed);
        return result;
    }

    // ---- attachments to buses --------------------------------------------------------------
    //
    // A queued task points into its bus's channels, so the executor keeps every bus that
    // delivers through it alive (a shared_ptr to its core) until no task of it can remain.
    // Live buses are in `attached_`, found through `live_` in O(1). A bus that shut down has
    // queued all its tasks (its shutdown waited for running publishes), so what it left lies
    // before each lane's current tail: bus_shut_down records those tails ("marks") for the
    // lanes that still hold tasks, and the bus is released once the consumer has handed back
    // every slot up to its marks. With no task left (the common case) it is released at once,
    // so an executor that is not being run does not accumulate dead buses.

    /// Remembers a bus that delivers through this executor (once per bus; O(1)).
    /// @throws std::bad_alloc, with the strong guarantee (nothing changed).
    void attach(std::shared_ptr<void> bus_core, executor_client& client) {
        std::list<attachment> added;  // destroyed after the lock if unused
        std::lock_guard lock{attach_mutex_};
        TIDINGS_SCHEDULE_POINT();
        if (live_.contains(&client)) return;
        added.push_back(attachment{std::move(bus_core), &client, {}});
        live_.emplace(&client, added.begin());
        attached_.splice(attached_.end(), added);  // nothing below throws
    }

    /// A bus shut down, after its grace period: releases it now if none of its tasks can be
    /// queued any more (at once if it never queued a task, `queued_any` false), else once the
    /// consumer has passed them. The caller keeps the bus alive through this call (the
    /// executor's reference may be dropped inside it).
    void bus_shut_down(executor_client& client, bool queued_any) noexcept {
        std::list<attachment> released;  // destroyed after the lock
        std::lock_guard lock{attach_mutex_};
        const auto found = live_.find(&client);
        if (found == live_.end()) return;  // detached by the executor's destructor
        const auto where = found->second;
        live_.erase(found);
        bool out_of_memory = false;
        try {
            // Lanes created after this load cannot hold a task of this bus: its publishes
            // are over, and each one's lane was linked (release CAS) before it pushed.
            lane* const first = queued_any ? lanes_.load(std::memory_order_acquire) : nullptr;
            for (lane* current = first; current != nullptr; current = current->next) {
                const std::uint64_t end = current->ring.produced();
                TIDINGS_SCHEDULE_POINT();  // the consumer may pass the end meanwhile
                if (current->ring.consumed() < end) where->marks.push_back({current, end});
            }
        } catch (const std::bad_alloc&) {
            out_of_memory = true;  // kept until the executor goes: no leak, no early release
        }
        if (out_of_memory) {
            pinned_.splice(pinned_.end(), attached_, where);
        } else if (where->marks.empty()) {
            released.splice(released.end(), attached_, where);
        } else {
            retired_.splice(retired_.end(), attached_, where);
            // release: the entry is in `retired_` before the flag (pairs with the acquire
            // load in release_retired).
            retiring_.store(true, std::memory_order_release);
            // A sleeping worker re-checks (sleep_until_woken does not sleep while the flag
            // is set), so an idle thread_executor does not hold the bus until its next task.
            wake_consumer();
        }
    }

    /// Consumer, outside any task: releases the retired buses whose tasks have all been run
    /// or discarded. Cheap when there are none (one load).
    void release_retired() noexcept {
        // acquire: pairs with the release store in bus_shut_down.
        if (!retiring_.load(std::memory_order_acquire)) [[likely]]
            return;
        TIDINGS_SCHEDULE_POINT();
        std::list<attachment> released;  // destroyed after the lock: may free bus cores
        std::lock_guard lock{attach_mutex_};
        for (auto it = retired_.begin(); it != retired_.end();) {
            const auto next = std::next(it);
            if (passed(*it)) released.splice(released.end(), retired_, it);
            it = next;
        }
        // relaxed: written only under attach_mutex_; a later retirement sets it again.
        retiring_.store(!retired_.empty(), std::memory_order_relaxed);
    }

    /// The executor object is going away, its tasks drained or discarded: every live bus
    /// unlinks the subscriptions that deliver here, then the executor forgets every bus.
    void detach_all() noexcept {
        std::list<attachment> live;
        std::list<attachment> gone;
        {
            std::lock_guard lock{attach_mutex_};
            live.swap(attached_);
            live_.clear();
            gone.splice(gone.end(), retired_);
            gone.splice(gone.end(), pinned_);
            retiring_.store(false, std::memory_order_relaxed);  // see release_retired
        }
        for (attachment& a : live) a.client->detach_executor(*this);
        // `live` and `gone` are destroyed here, outside the lock.
    }

    /// For tests: how many buses the executor keeps alive (live ones and retired ones).
    [[nodiscard]] std::size_t attachment_count() noexcept {
        std::lock_guard lock{attach_mutex_};
        return attached_.size() + retired_.size() + pinned_.size();
    }

    /// For tests: how many lanes the executor has (producer threads it has ever had at once).
    [[nodiscard]] std::size_t lane_count() const noexcept {
        std::size_t count = 0;
        for (const lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            ++count;
        }
        return count;
    }

    /// True when the calling thread is this executor's consumer.
    [[nodiscard]] bool is_consumer_thread() const noexcept {
        // relaxed: see set_consumer_thread.
        return consumer_token_.load(std::memory_order_relaxed) == this_thread_token();
    }

private:
    static constexpr std::size_t per_lane_batch = 64;

    /// One lane's end at a bus's retirement: the bus's tasks there lie before `end`.
    struct lane_mark {
        const lane* where;
        std::uint64_t end;
    };

    struct attachment {
        std::shared_ptr<void> keep_alive;
        executor_client* client = nullptr;
        std::vector<lane_mark> marks;  // set when the bus shuts down
    };

    /// True once the consumer has handed back every slot before the marks.
    [[nodiscard]] static bool passed(const attachment& a) noexcept {
        return std::all_of(a.marks.begin(), a.marks.end(), [](const lane_mark& mark) {
            return mark.where->ring.consumed() >= mark.end;
        });
    }

    static constexpr int idle_poll_pauses = 32;

    enum class wait_phase { spin, yield, block };

    /// Where a wait that started at `since` stands in the configured strategy.
    [[nodiscard]] wait_phase phase(std::chrono::steady_clock::time_point since) const noexcept {
        switch (options_.wait) {
            case wait_strategy::spin:
                return wait_phase::spin;
            case wait_strategy::yield:
                return wait_phase::yield;
            case wait_strategy::block:
                return wait_phase::block;
            case wait_strategy::adaptive:
                break;
        }
        const auto waited = std::chrono::steady_clock::now() - since;
        if (waited < spin_until_) return wait_phase::spin;
        if (waited < yield_until_) return wait_phase::yield;
        return wait_phase::block;
    }

    /// The longest wait phase: a century, "for ever" in practice. Two of them still fit in a
    /// steady_clock::duration (nanoseconds, 292 years).
    static constexpr std::chrono::hours longest_phase{24 * 365 * 100};

    /// @throws std::invalid_argument for a capacity or a duration out of range.
    static const executor_options& checked(const executor_options& options) {
        task_ring::check_capacity(options.capacity);
        if (options.spin_duration.count() < 0 || options.yield_duration.count() < 0) {
            throw std::invalid_argument(
                "tidings: executor_options::spin_duration and yield_duration must not be "
                "negative");
        }
        return options;
    }

    /// `phase` converted to the clock's unit, saturated at longest_phase: compared in
    /// microseconds first, so that microseconds::max() overflows nothing.
    static std::chrono::steady_clock::duration saturated(std::chrono::microseconds phase) noexcept {
        if (phase > std::chrono::microseconds{longest_phase}) return longest_phase;
        return phase;
    }

    static void add_relaxed(std::atomic<std::uint64_t>& counter, std::uint64_t count) noexcept {
        if (count != 0) counter.fetch_add(count, std::memory_order_relaxed);
    }

    std::size_t run_lane(lane& current, std::size_t limit, std::uint64_t end) noexcept {
        std::size_t ran = 0;
        std::uint64_t cancelled = 0;
        // The consumer thread's first batch registers it; out of memory, it runs nothing now
        // and tries again on its next call (this function cannot throw).
        if (!try_register_this_thread()) return 0;
        // One read section for the batch: the deliveries of thread-safe buses nest in it
        // for the price of a counter increment each. It reads nothing itself, so no writer
        // waits for it; each delivery's own section names its channel.
        epoch_read_section section{reads_nothing};
        // Before each task: a discarding stop lets only the task already running finish.
        while (ran < limit && current.ring.head() < end && !halted()) {
            task_slot* slot = current.ring.try_front();
            if (slot == nullptr) break;
            cancelled += slot->operation(*slot, task_action::run, this);
            current.ring.pop();
            ++ran;
        }
        if (ran != 0) {
            current.ring.release_consumed();
            // relaxed: statistics with a single writer (the consumer).
            executed_.store(executed_.load(std::memory_order_relaxed) + ran,
                            std::memory_order_relaxed);
            if (cancelled != 0) {
                cancelled_.store(cancelled_.load(std::memory_order_relaxed) + cancelled,
                                 std::memory_order_relaxed);
            }
            notify_space(current);
        }
        return ran;
    }

    void notify_space(lane& current) noexcept {
        // Store-load: our pops before our read of `producer_waiting`, paired with the
        // producer's heavy_barrier between setting it and re-checking for space.
        light_barrier();
        if (current.producer_waiting.load(std::memory_order_relaxed)) {
            current.space.fetch_add(1, std::memory_order_release);
            current.space.notify_all();
        }
    }

    void sleep_until_woken(const std::atomic<bool>& stop_flag) noexcept {
        // acquire: see wake_consumer.
        const std::uint32_t seen = wake_.load(std::memory_order_acquire);
        // Checked after reading `seen`: a stop that set the flag and woke us before that read
        // would otherwise leave us asleep for good (the wake-up already happened). acquire:
        // if `seen` includes the stopper's increment, its earlier store of the flag is
        // visible (release sequence of wake_); if not, the increment still changes wake_ and
        // ends the wait below.
        if (stop_flag.load(std::memory_order_acquire)) return;
        sleeping_.store(true, std::memory_order_relaxed);
        TIDINGS_SCHEDULE_POINT();  // between the store of `sleeping_` and the re-check
        heavy_barrier();           // pairs with light_barrier in push(): see there
        // Not while a retired bus waits for release_retired (bus_shut_down woke us for it;
        // acquire: pairs with its release store). Halted, queued tasks are no reason to stay
        // awake: only stop's wake-up is awaited.
        if (!retiring_.load(std::memory_order_acquire) && (halted() || !has_work())) {
            TIDINGS_SCHEDULE_POINT();  // before the wait
            wake_.wait(seen, std::memory_order_acquire);
        }
        sleeping_.store(false, std::memory_order_relaxed);
    }

    [[gnu::noinline]] lane& lane_slow(lane_cache_entry& way) {
        if (this_thread_lanes_gone) [[unlikely]]
            return exit_lane(way);
        std::vector<lane_cache_entry>& entries = this_thread_lanes.entries;
        // Drop lanes of executors that are gone, so their memory is freed.
        for (auto it = entries.begin(); it != entries.end();) {
            // acquire: pairs with the release store in ~executor_core.
            if (it->cached->executor_gone.load(std::memory_order_acquire)) {
                it->cached->release();
                it = entries.erase(it);
            } else {
                ++it;
            }
        }
        lane* found = nullptr;
        for (const lane_cache_entry& entry : entries) {
            if (entry.executor_id == id_) found = entry.cached;
        }
        if (found == nullptr) {
            entries.reserve(entries.size() + 1);  // may throw before a lane is taken (strong)
            found = adopt_lane();
            entries.push_back({id_, found});
        }
        way = {id_, found};
        return *found;
    }

    /// A lane for a publish made after this thread's thread_lanes was destroyed (from a
    /// thread_local destructor at thread exit): taken for the current dispatch only, and
    /// abandoned when it ends, so the consumer still runs its tasks. It is the lane that
    /// holds this thread's earlier tasks if no other thread has taken it (adopt_lane), so
    /// the late events follow the earlier ones (per-producer FIFO).
    [[gnu::noinline]] lane& exit_lane(lane_cache_entry& way) {
        if (!in_read_section()) {
            // Every push runs in a dispatch; without one the lane could not be given back.
            throw std::logic_error("tidings: an executor push outside a dispatch at thread exit");
        }
        for (lane* taken = exit_lanes; taken != nullptr; taken = taken->next_exit_lane) {
            if (taken->owner_id == id_) {
                way = {id_, taken};
                return *taken;
            }
        }
        lane* taken = adopt_lane(this_thread_token());
        taken->next_exit_lane = exit_lanes;
        exit_lanes = taken;
        request_exit_cleanup(&release_exit_lanes);
        way = {id_, taken};
        return *taken;
    }

    /// A lane for a producer thread: an abandoned one if any may be taken, else a new one.
    /// Another thread's abandoned lane is taken only once it is empty: the consumer has run
    /// all it holds, so nothing published later by that thread (from a thread_local
    /// destructor at exit, exit_lane) can run before it. The lane that `self` abandoned itself
    /// is taken back whatever it holds: new tasks queue behind its old ones.
    lane* adopt_lane(std::uint64_t self = 0) {
        lane* const first = lanes_.load(std::memory_order_acquire);
        for (int pass = self != 0 ? 0 : 1; pass < 2; ++pass) {
            for (lane* current = first; current != nullptr; current = current->next) {
                // acquire: pairs with the release store of its previous producer at exit, so
                // `last_owner` and the ring's final tail are visible.
                std::uint64_t ticket = current->abandoned.load(std::memory_order_acquire);
                if (ticket == 0) continue;
                if (pass == 0) {
                    if (current->last_owner.load(std::memory_order_relaxed) != self) continue;
                } else if (current->ring.consumed() < current->ring.produced()) {
                    continue;
                }
                // acquire: as above. The ticket is unique: the exchange fails if the lane was
                // taken (and perhaps abandoned again, with new tasks) since we read it.
                if (current->abandoned.compare_exchange_strong(ticket, 0,
                                                               std::memory_order_acquire)) {
                    current->owners.fetch_add(1, std::memory_order_relaxed);  // we hold the other
                    return current;
                }
            }
        }
        auto* created = new lane(options_.capacity, id_);
        lane* head = lanes_.load(std::memory_order_relaxed);
        do {
            created->next = head;
            // release: the consumer sees a fully built lane (pairs with its acquire loads).
        } while (!lanes_.compare_exchange_weak(head, created, std::memory_order_release,
                                               std::memory_order_relaxed));
        return created;
    }

    bool refuse_stopped() {
        // acquire: reads the stopper's `false` again (it never becomes true again), so what
        // the stopper did before its store happens before what this thread does next (pairs
        // with the seq_cst store in stop_accepting; see halt()).
        (void)accepting_.load(std::memory_order_acquire);
        if (options_.on_full == overflow::drop) {
            rejected_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
            return false;
        }
        throw executor_stopped("tidings: publish to an executor that has stopped");
    }

    /// A producer's wait for space, visible in its reader record (enter_blocked) for as long
    /// as this object lives. Its destructor ends the wait; it does not throw: the caller
    /// checks canceled() in its loop and throws there.
    class blocked_wait {
    public:
        blocked_wait(std::uint64_t consumer, std::atomic<std::uint32_t>& wake) noexcept
            : record_(enter_blocked(consumer, &wake)) {}
        ~blocked_wait() { (void)leave_blocked(record_); }
        blocked_wait(const blocked_wait&) = delete;
        blocked_wait& operator=(const blocked_wait&) = delete;
        [[nodiscard]] bool canceled() const noexcept { return block_canceled(record_); }
        void consumer(std::uint64_t token) const noexcept {
            update_blocked_consumer(record_, token);
        }

    private:
        reader_record* record_;
    };

    /// The lane is full: apply the overflow policy.
    task_slot* claim_when_full(lane& own) {
        switch (options_.on_full) {
            case overflow::drop:
                dropped_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
                return nullptr;
            case overflow::fail:
                throw queue_full("tidings: an executor's queue is full (overflow::fail)");
            case overflow::block:
                break;
        }
        if (is_consumer_thread()) {
            throw would_deadlock(
                "tidings: publishing with overflow::block into a full queue that only this "
                "thread drains would wait forever");
        }
        const auto since = std::chrono::steady_clock::now();
        // While we wait, our reader record says so: a thread that waits for our dispatch to
        // end (an unsubscribe, a bus's destruction, another executor's stop) and that is this
        // lane's consumer would otherwise wait for ever; it cancels our wait instead.
        const blocked_wait blocked{consumer_token_.load(std::memory_order_relaxed), own.space};
        for (;;) {
            if (task_slot* slot = own.ring.try_claim()) return slot;
            // relaxed: stop_accepting wakes us after storing false; see push().
            if (!accepting_.load(std::memory_order_relaxed)) {
                refuse_stopped();
                return nullptr;
            }
            if (blocked.canceled()) {
                throw would_deadlock(
                    "tidings: a publish waiting (overflow::block) for space in a full queue was "
                    "canceled: the queue's consumer thread was waiting for this publish to end "
                    "(an unsubscribe, a bus's destruction or an executor's stop made there)");
            }
            // relaxed: a manual_executor may be handed to another thread meanwhile.
            const std::uint64_t consumer = consumer_token_.load(std::memory_order_relaxed);
            if (joined_by_consumer(consumer)) {
                throw would_deadlock(
                    "tidings: a publish waiting (overflow::block) for space in a full queue gave "
                    "up: the queue's consumer thread is stopping this thread_executor and waits "
                    "for its worker, which is this thread");
            }
            blocked.consumer(consumer);
            switch (phase(since)) {
                case wait_phase::spin:
                    for (int i = 0; i < 16; ++i) cpu_relax();
                    break;
                case wait_phase::yield:
                    std::this_thread::yield();
                    break;
                case wait_phase::block: {
                    const std::uint32_t seen = own.space.load(std::memory_order_acquire);
                    own.producer_waiting.store(true, std::memory_order_relaxed);
                    heavy_barrier();  // pairs with light_barrier in notify_space
                    TIDINGS_SCHEDULE_POINT();
                    // After reading `seen`: a cancel that incremented `space` before that read
                    // is visible here (see cancel_blocked); one after it ends the wait.
                    if (own.ring.full_for_producer() &&
                        accepting_.load(std::memory_order_relaxed) && !blocked.canceled()) {
                        own.space.wait(seen, std::memory_order_acquire);
                    }
                    own.producer_waiting.store(false, std::memory_order_relaxed);
                    break;
                }
            }
        }
    }

    const executor_options options_;
    const std::chrono::steady_clock::duration spin_until_;   // adaptive: end of spinning
    const std::chrono::steady_clock::duration yield_until_;  // adaptive: end of yielding
    const std::uint64_t id_;
    std::atomic<lane*> lanes_{nullptr};
    lane* cursor_ = nullptr;  // consumer-only: the lane run_some served last

    alignas(cache_line_size) std::atomic<bool> accepting_{true};
    std::atomic<bool> halted_{false};  // read before each task: beside the read-mostly flag
    std::atomic<bool> sleeping_{false};
    std::atomic<std::uint64_t> consumer_token_{0};  // this_thread_token() of the consumer
    std::atomic<std::uint64_t> runner_{0};          // manual: the token of the thread inside a run

    alignas(cache_line_size) std::atomic<std::uint32_t> wake_{0};
    std::atomic<std::uint64_t> executed_{0};   // single writer: the consumer
    std::atomic<std::uint64_t> cancelled_{0};  // single writer: the consumer
    std::atomic<std::uint64_t> discarded_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> rejected_{0};

    std::mutex attach_mutex_;
    // Guarded by attach_mutex_: live buses, and `live_` to find them; buses that shut down
    // with tasks queued; buses kept till the end because their marks could not be allocated.
    std::list<attachment> attached_;
    std::unordered_map<const executor_client*, std::list<attachment>::iterator> live_;
    std::list<attachment> retired_;
    std::list<attachment> pinned_;
    std::atomic<bool> retiring_{false};  // `retired_` may be non-empty
};

/// Implemented by both executors, so that deliver_on can take either.
template <class Executor>
concept executor_type = requires(Executor& executor) {
    { executor.core() } -> std::same_as<executor_core&>;
};

}  // namespace detail

/// @brief The option that queues a subscription's deliveries to an executor:
/// `bus.subscribe<E>(handler, tidings::deliver_on(worker))`.
template <class Executor>
struct deliver_on {
    static_assert(detail::executor_type<Executor>,
                  "tidings::deliver_on: the argument must be an executor "
                  "(tidings::thread_executor or tidings::manual_executor)");
    using is_delivery_option = void;
    Executor* executor;
    explicit deliver_on(Executor& target) noexcept : executor(&target) {}
};

/// @brief An executor the user's own loop runs: deliveries wait in its queues until
/// run_pending(), run_one() or run_for_at_most(n) is called, in the calling thread. For game
/// loops, GUI threads and deterministic tests.
///
/// Thread safety: publishes may queue to it from any thread; the run functions must not be
/// called by two threads at once, nor from a handler it is running (both are refused with
/// std::logic_error). It can serve several buses, including a tidings::single_threaded_bus
/// whose thread runs it.
class manual_executor {
public:
    /// @throws std::invalid_argument if options.capacity is not a power of two in
    /// [2, detail::task_ring::max_capacity] or a wait duration is negative; std::bad_alloc.
    /// Strong guarantee: nothing was made, nothing leaks (tests/allocation_failure.cpp).
    explicit manual_executor(const executor_options& options = {})
        : core_(std::make_shared<detail::executor_core>(options)) {
        // Until some thread runs it, the constructing thread is taken to be its loop's thread
        // (for would_deadlock: a blocking publish from it into a full queue would wait
        // forever). By token, not std::thread::id: a later thread may reuse this one's id.
        core_->set_consumer_thread();
    }

    /// @brief Disconnects the subscriptions that deliver here. Tasks still queued are not run:
    /// they are discarded and counted, and a line on stderr says how many (call run_pending()
    /// first to deliver them). Waits for publishes to it running in other threads.
    /// @warning Destroying it inside a handler, its own or any other (a publish may be
    /// pushing into it, and waiting for that from inside a dispatch could deadlock), is a
    /// misuse that ends the process with a `tidings:` message, in every build.
    ~manual_executor() {
        if (core_ == nullptr) return;
        if (core_->running_on_this_thread()) {
            detail::fatal_misuse(
                "a manual_executor was destroyed inside one of its own handlers (during its "
                "run_pending/run_one/run_for_at_most); destroy it after the run returns");
        }
        if (detail::in_read_section()) {
            detail::fatal_misuse(
                "a manual_executor was destroyed inside a handler: its destruction must wait "
                "for publishes that may be queuing to it, which cannot be done from inside a "
                "dispatch; destroy it outside handlers");
        }
        core_->stop_accepting();  // not in a read section: does not throw would_deadlock
        const std::size_t discarded = core_->discard_all();
        if (discarded != 0) {
            std::fprintf(stderr,
                         "tidings: a manual_executor was destroyed with %zu undelivered tasks\n",
                         discarded);
        }
        core_->detach_all();
    }

    manual_executor(const manual_executor&) = delete;
    manual_executor& operator=(const manual_executor&) = delete;

    /// @brief Runs the tasks queued before the call (not those they queue); returns how many.
    /// The calling thread becomes the executor's loop thread (for would_deadlock).
    /// @throws std::logic_error, running nothing, if called from a handler this executor is
    /// running (nested runs are not supported: each task runs once) or while another thread
    /// runs it. A handler of another executor may run this one.
    /// Thread safety: one thread at a time (checked).
    std::size_t run_pending() {
        core_->begin_run();
        const std::size_t ran = core_->run_visible();
        core_->release_retired();
        core_->end_run();
        return ran;
    }

    /// @brief Runs the oldest task of the next non-empty lane, if any; returns 1 or 0.
    /// @throws std::logic_error as run_pending does.
    std::size_t run_one() { return run_for_at_most(1); }

    /// @brief Runs at most `count` tasks; returns how many ran.
    /// @throws std::logic_error as run_pending does.
    std::size_t run_for_at_most(std::size_t count) {
        core_->begin_run();
        const std::size_t ran = core_->run_some(count);
        core_->release_retired();
        core_->end_run();
        return ran;
    }

    /// @brief How many tasks are queued (from any thread; may be stale when used).
    [[nodiscard]] std::size_t pending() const noexcept { return core_->pending(); }

    /// @brief The executor's counters (from any thread).
    [[nodiscard]] executor_stats stats() const noexcept { return core_->stats(); }

    /// @brief For tidings internals: the shared state.
    [[nodiscard]] detail::executor_core& core() noexcept { return *core_; }

private:
    std::shared_ptr<detail::executor_core> core_;
};

/// @brief An executor that owns a worker thread (a std::jthread started by the constructor)
/// and runs queued deliveries on it, in per-producer FIFO order.
///
/// stop() (and the destructor) stops accepting, drains or discards what was accepted, and
/// joins. Publishing to a stopped executor throws tidings::executor_stopped, or counts the
/// event as rejected with overflow::drop: never a hang, never a silent loss.
///
/// Thread safety: every member may be called from any thread, except stop() and the
/// destructor from the worker thread itself or from inside a handler (stop() throws
/// tidings::would_deadlock; the destructor ends the process with a `tidings:` message).
class thread_executor {
public:
    /// @throws std::invalid_argument if options.capacity is not a power of two in
    /// [2, detail::task_ring::max_capacity] or a wait duration is negative;
    /// std::system_error if the thread cannot be started; std::bad_alloc. Strong guarantee:
    /// no thread is left running, nothing leaks (tests/allocation_failure.cpp).
    explicit thread_executor(const executor_options& options = {})
        : core_(std::make_shared<detail::executor_core>(options)),
          worker_([core = core_.get(), this](std::stop_token) { run(*core); }),
          worker_id_(worker_.get_id()) {}

    /// @brief stop(stop_mode::drain), then disconnects the subscriptions that deliver here.
    /// @warning Destroying it from its worker (inside one of its handlers) or from inside any
    /// handler is a misuse that ends the process with a `tidings:` message, in every build
    /// (the stop would wait for this very thread). A stop() that another thread began before
    /// the destruction is waited for; one begun after it is a use of a destroyed object.
    ~thread_executor() {
        // acquire: pairs with the release store after the join in stop().
        if (!stopped_.load(std::memory_order_acquire)) {
            try {
                stop(stop_mode::drain);
            } catch (const would_deadlock&) {
                detail::fatal_misuse(
                    "a thread_executor was destroyed from its own worker or from inside a "
                    "handler; its stop would wait for this very thread. Destroy it outside "
                    "handlers, from another thread than its worker");
            } catch (...) {
                detail::fatal_misuse("a thread_executor's stop failed in its destructor");
            }
        }
        // Another thread's stop() may still be on its way out (it waited for the mutex, then
        // found the work done): it must leave this object before the object goes. A short
        // wait: it holds no lock we hold. acquire: pairs with its release decrement, after
        // which it touches nothing of ours.
        while (stoppers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
        core_->detach_all();
    }

    thread_executor(const thread_executor&) = delete;
    thread_executor& operator=(const thread_executor&) = delete;

    /// @brief Stops accepting tasks, then drains (runs) or discards the queued ones, and joins
    /// the worker. Returns how many tasks were discarded (0 with stop_mode::drain), counting the
    /// live events a replaying subscriber held behind discarded replayed events.
    /// Idempotent: a second call returns 0.
    /// @throws would_deadlock if called from the worker thread or from inside a handler.
    std::size_t stop(stop_mode mode = stop_mode::drain) {
        // Counted for the destructor (destroyed last: after the unlock and the mark's removal).
        const stopper_count counted{stoppers_};
        // Both checks come before the mutex: a handler that called stop() while another
        // thread holds the mutex (waiting to join this very worker) would wait for ever.
        // relaxed: compared with our own token; only the worker stores its own.
        if (worker_token_.load(std::memory_order_relaxed) == detail::this_thread_token()) {
            throw would_deadlock("tidings: a thread_executor cannot stop itself from its worker");
        }
        if (detail::in_read_section()) {
            throw would_deadlock(
                "tidings: an executor cannot be stopped from inside a handler: the stop waits "
                "for running publishes, and this thread is running one");
        }
        // From here until the join returns (waiting for another stopper's join included), the
        // worker does not wait for space in a full queue that this thread consumes: its drain
        // may publish, with overflow::block, into a frame loop's queue while the loop stops it.
        // Such a publish gets would_deadlock instead.
        const detail::joining_mark joining{join_point_, detail::this_thread_consumer_token};
        std::lock_guard lock{stop_mutex_};
        if (!worker_.joinable()) return 0;
        // Before stop_accepting, whose release store publishes it: from now on the worker
        // starts no task; only the one already running may finish.
        if (mode == stop_mode::discard) core_->halt();
        core_->stop_accepting();
        const std::uint64_t discarded_before = core_->stats().discarded;
        mode_.store(mode, std::memory_order_relaxed);  // ordered by the release below
        // release: the mode and every accepted task (stop_accepting waited for their pushes)
        // happen before the worker's final drain (pairs with its acquire load).
        stopping_.store(true, std::memory_order_release);
        core_->wake_consumer();
        worker_.join();
        stopped_.store(true, std::memory_order_release);     // see the destructor
        return core_->stats().discarded - discarded_before;  // std::uint64_t is std::size_t
    }

    /// @brief How many tasks are queued (may be stale when used).
    [[nodiscard]] std::size_t pending() const noexcept { return core_->pending(); }

    /// @brief The executor's counters.
    [[nodiscard]] executor_stats stats() const noexcept { return core_->stats(); }

    /// @brief For tests: how many stop() calls (the destructor's included) are under way.
    [[nodiscard]] int stops_in_progress() const noexcept {
        return stoppers_.load(std::memory_order_relaxed);
    }

    /// @brief The worker thread's id.
    [[nodiscard]] std::thread::id thread_id() const noexcept { return worker_id_; }

    /// @brief For tidings internals: the shared state.
    [[nodiscard]] detail::executor_core& core() noexcept { return *core_; }

private:
    /// Counts a stop() in progress, for the destructor.
    class stopper_count {
    public:
        explicit stopper_count(std::atomic<int>& count) noexcept : count_(count) {
            count_.fetch_add(1, std::memory_order_relaxed);  // before any use of the object
        }
        ~stopper_count() {
            // release: our uses of the object happen before the destructor's acquire load.
            count_.fetch_sub(1, std::memory_order_release);
        }
        stopper_count(const stopper_count&) = delete;
        stopper_count& operator=(const stopper_count&) = delete;

    private:
        std::atomic<int>& count_;
    };

    void run(detail::executor_core& core) noexcept {
        worker_token_.store(detail::this_thread_token(), std::memory_order_relaxed);  // see stop
        detail::this_thread_joined_as = &join_point_;  // see stop(); outlives the thread
        core.set_consumer_thread();
        bool idle = false;
        auto idle_since = std::chrono::steady_clock::now();
        for (;;) {
            // A discarding stop halts the core first: run_some then starts no task and
            // returns 0, and the idle path below discards once stop() says it may.
            if (core.run_some(batch_limit) != 0) {
                idle = false;
                core.release_retired();
                continue;
            }
            if (!idle) {
                idle = true;
                idle_since = std::chrono::steady_clock::now();
            }
            core.release_retired();
            // acquire: pairs with the release store in stop().
            if (stopping_.load(std::memory_order_acquire)) {
                if (mode_.load(std::memory_order_relaxed) == stop_mode::discard) {
                    core.discard_all();
                } else {
                    while (core.run_some(batch_limit) != 0) {
                    }
                }
                return;
            }
            core.wait_for_work(idle_since, stopping_);
        }
    }

    static constexpr std::size_t batch_limit = 1024;

    std::shared_ptr<detail::executor_core> core_;
    std::atomic<bool> stopping_{false};
    std::atomic<stop_mode> mode_{stop_mode::drain};
    std::mutex stop_mutex_;
    std::atomic<std::uint64_t> worker_token_{0};  // the worker's this_thread_token()
    detail::join_point join_point_;               // what the worker is joined as (stop)
    std::atomic<int> stoppers_{0};                // stop() calls in progress
    std::atomic<bool> stopped_{false};            // the worker was joined
    std::jthread worker_;  // after the members run() uses: starts once they are constructed
    // Read by stop() without the mutex (worker_.get_id() would race with another stop's join).
    const std::thread::id worker_id_;
};

}  // namespace tidings
