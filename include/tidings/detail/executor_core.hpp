#pragma once
/// @file detail/executor_core.hpp
/// @brief The shared state of an executor (executor_core): its lanes, the consumer's runs and
/// waits, the producers' pushes and their waits on full lanes, the stop protocol, the buses
/// it keeps alive (executor_attachments, detail/attachments.hpp), and its stats. The public
/// executors of executor.hpp are thin owners of one; the bus and its channels reach it through
/// detail::executor_type and executor_client.
///
/// Design: an executor has one lane (a record_ring, detail/lanes.hpp) per producer thread, so
/// a publish writes only memory of its own thread and its lane's record, and the events one thread
/// publishes reach the executor in the order it published them, across event types
/// (per-producer FIFO). The consumer visits the lanes round-robin in batches. Waits follow
/// the executor's wait_policy (detail/wait.hpp); the store-load races between a waiter and
/// the thread that wakes it are closed by the asymmetric barriers of detail/barrier.hpp.
///
/// A detail header: it includes the vocabulary (delivery.hpp) and other detail headers,
/// never a public machinery header (executor.hpp, bus.hpp, ...).

#include <tidings/config.hpp>
#include <tidings/delivery.hpp>
#include <tidings/detail/attachments.hpp>
#include <tidings/detail/barrier.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/detail/lanes.hpp>
#include <tidings/detail/record_ring.hpp>
#include <tidings/detail/wait.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace tidings::detail {

/// @brief The shared state of an executor: lanes, wait/notify, attachments to buses, stats.
///
/// Thread safety: push() from any thread; the run_* functions and wait_for_work() from one
/// consumer thread at a time; stats(), pending() from any thread.
class executor_core {
public:
    /// @throws std::invalid_argument for lane_bytes that is not a power of two in
    /// [1024, PTRDIFF_MAX / 2], a capacity or max_pending of 0, or a negative wait duration.
    explicit executor_core(const executor_options& options)
        : options_(checked(options)),
          consumer_wait_(options_, waiter::consumer),
          producer_wait_(options_, waiter::producer),
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

    /// Throws would_deadlock when called from inside a handler (a dispatch): stopping an
    /// executor waits for running publishes, and this thread is running one.
    static void refuse_stop_inside_handler() {
        if (in_read_section()) {
            throw would_deadlock(
                "tidings: an executor cannot be stopped from inside a handler: the stop waits "
                "for running publishes, and this thread is running one");
        }
    }

    // ---- producer side ---------------------------------------------------------------------

    /// The calling thread's lane, created on first use.
    [[nodiscard]] lane& lane_for_this_thread() {
        lane_cache_entry& way = lane_cache[id_ % lane_cache_ways];
        if (way.executor_id == id_) [[likely]]
            return *way.cached;
        return lane_slow(way);
    }

    /// Queues one task of type `Task`, built by `build(void* where)` (a placement new of Task
    /// there, in a lane record). Task has `static task_outcome operation(record_header&,
    /// task_action, void* executor) noexcept`, which runs or discards it and destroys it, and
    /// `static constexpr bool on_heap` (its event is on the heap). Returns true if queued,
    /// false if refused by overflow::drop (counted). Throws queue_full, executor_stopped or
    /// would_deadlock as documented on tidings::overflow, or what `build` throws (then nothing
    /// was queued). Must be called inside a dispatch (a bus read section), so that stop() can
    /// wait for it.
    template <class Task, class Build>
    bool push(Build&& build) {
        static_assert(fits_in_record<Task>, "a queued task must fit in a lane record");
        constexpr std::size_t size = record_size_of<Task>;
        // relaxed: stop() stores false and then waits for every dispatch that could have read
        // true (an epoch grace period), so a push that reads true completes before the drain.
        if (!accepting_.load(std::memory_order_relaxed)) [[unlikely]] {
            return refuse_stopped();
        }
        lane& own = lane_for_this_thread();
        record_header* at = own.ring.try_claim(size);
        if (at == nullptr || (bounded_ && !take_pending())) [[unlikely]] {
            at = claim_when_full(own, size);
            if (at == nullptr) return false;
        }
        try {
            build(at->storage());
        } catch (...) {
            // The record is never committed: its max_pending place goes back, and a producer
            // that went to sleep for it (another lane's, perhaps while nothing is queued for the
            // consumer to run) is woken here, as the consumer would have.
            if (bounded_) {
                give_back_pending(1);
                notify_space_all();
            }
            throw;
        }
        own.ring.commit(&Task::operation);
        TIDINGS_SCHEDULE_POINT();  // between the commit and the read of `sleeping_`
        if constexpr (Task::on_heap) {
            // relaxed: a statistic with a single writer (this producer thread).
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
            const std::size_t left = limit - ran;
            const std::size_t batch = left < per_lane_batch ? left : per_lane_batch;
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
        std::size_t tasks = 0;
        std::size_t held = 0;
        for (lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            std::size_t from_lane = 0;
            while (record_header* record = current->ring.try_front()) {
                const task_outcome outcome = (*record)(task_action::discard, this);
                held += outcome.count;
                current->ring.pop(outcome.size);
                ++from_lane;
            }
            current->ring.release_consumed();
            if (bounded_) give_back_pending(from_lane);
            tasks += from_lane;
            notify_space(*current);
        }
        add_relaxed(discarded_, tasks + held);
        return tasks + held;
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
        switch (consumer_wait_.phase(idle_since)) {
            case wait_phase::spin:
                wait_policy::pause();  // polls about every 0.3 µs: see there
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
        refuse_stop_inside_handler();
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
            result.queued += current->ring.committed();
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
    // The buses this executor keeps alive until their queued tasks have run: see
    // executor_attachments (detail/attachments.hpp), to which these forward.

    /// Remembers a bus that delivers through this executor (once per bus; O(1)).
    /// @throws std::bad_alloc, with the strong guarantee (nothing changed).
    void attach(std::shared_ptr<void> bus_core, executor_client& client) {
        attachments_.attach(std::move(bus_core), client);
    }

    /// A bus shut down, after its grace period: releases it now or once the consumer has
    /// passed its tasks (executor_attachments::bus_shut_down). The caller keeps the bus alive
    /// through this call (the executor's reference may be dropped inside it).
    void bus_shut_down(executor_client& client, bool queued_any) noexcept {
        attachments_.bus_shut_down(client, queued_any, lanes_,
                                   [this]() noexcept { wake_consumer(); });
    }

    /// Consumer, outside any task: releases the retired buses whose tasks have all been run
    /// or discarded. Cheap when there are none (one load).
    void release_retired() noexcept { attachments_.release_retired(); }

    /// The executor object is going away, its tasks drained or discarded: every live bus
    /// unlinks the subscriptions that deliver here, then the executor forgets every bus.
    void detach_all() noexcept { attachments_.detach_all(*this); }

    /// For tests: how many buses the executor keeps alive (live ones and retired ones).
    [[nodiscard]] std::size_t attachment_count() noexcept {
        return attachments_.attachment_count();
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

    /// For tests: how many producers announced that they sleep on a full lane (the block
    /// phase of claim_when_full), now or a moment ago.
    [[nodiscard]] std::size_t sleeping_producers() const noexcept {
        std::size_t count = 0;
        for (const lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            // relaxed: a test's observation; the flag pairs with nothing here.
            if (current->producer_waiting.load(std::memory_order_relaxed)) ++count;
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

    /// @throws std::invalid_argument for a size, a bound or a duration out of range.
    static const executor_options& checked(const executor_options& options) {
        record_ring::check_bytes(options.lane_bytes);
        if (options.capacity == 0 || options.max_pending == 0) {
            throw std::invalid_argument(
                "tidings: executor_options::capacity and max_pending must be at least 1");
        }
        if (options.spin_duration.count() < 0 || options.yield_duration.count() < 0) {
            throw std::invalid_argument(
                "tidings: executor_options::spin_duration and yield_duration must not be "
                "negative");
        }
        return options;
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
            record_header* record = current.ring.try_front();
            if (record == nullptr) break;
            const task_outcome outcome = (*record)(task_action::run, this);
            cancelled += outcome.count;
            current.ring.pop(outcome.size);
            ++ran;
        }
        if (ran != 0) {
            current.ring.release_consumed();
            if (bounded_) give_back_pending(ran);
            // relaxed: statistics with a single writer (the consumer).
            executed_.store(executed_.load(std::memory_order_relaxed) + ran,
                            std::memory_order_relaxed);
            if (cancelled != 0) {
                cancelled_.store(cancelled_.load(std::memory_order_relaxed) + cancelled,
                                 std::memory_order_relaxed);
            }
            // With max_pending, a producer of any lane may wait for the count we lowered.
            if (bounded_) {
                notify_space_all();
            } else {
                notify_space(current);
            }
        }
        return ran;
    }

    void notify_space(lane& current) noexcept {
        // Store-load: our pops before our read of `producer_waiting`, paired with the
        // producer's heavy_barrier between setting it and re-checking for space.
        light_barrier();
        wake_waiting_producer(current);
    }

    /// notify_space for every lane: the executor's pending count dropped (max_pending). Any
    /// thread: the consumer after a batch, or a producer whose task's construction threw.
    void notify_space_all() noexcept {
        // Store-load, as in notify_space: our decrement of `pending_total_` before our reads of
        // the flags.
        light_barrier();
        // acquire: a lane published meanwhile is seen fully built (pairs with adopt_lane).
        for (lane* current = lanes_.load(std::memory_order_acquire); current != nullptr;
             current = current->next) {
            wake_waiting_producer(*current);
        }
    }

    static void wake_waiting_producer(lane& current) noexcept {
        // relaxed flag: ordered by the callers' barrier (see notify_space). release increment:
        // the room we made happens before what the woken producer reads after its acquire
        // load of `space` (in claim_when_full).
        if (current.producer_waiting.load(std::memory_order_relaxed)) {
            current.space.fetch_add(1, std::memory_order_release);
            current.space.notify_all();
        }
    }

    /// max_pending: counts one more pending task if the bound allows it.
    [[nodiscard]] bool take_pending() noexcept {
        // relaxed: the count only admits tasks (each record is published by its lane's own
        // release/acquire); a producer that finds it full and sleeps is ordered against the
        // consumer's decrement by the barriers of claim_when_full and notify_space_all.
        // A compare-exchange, not an increment undone when over the bound: a transient excess
        // would make a concurrent publish see a full executor that is not (a spurious drop).
        std::size_t count = pending_total_.load(std::memory_order_relaxed);
        do {
            if (count >= options_.max_pending) return false;
        } while (
            !pending_total_.compare_exchange_weak(count, count + 1, std::memory_order_relaxed));
        return true;
    }

    void give_back_pending(std::size_t count) noexcept {
        if (count != 0) pending_total_.fetch_sub(count, std::memory_order_relaxed);  // see above
    }

    /// True when a record of `size` bytes fits in `own` and, with max_pending, the executor's
    /// bound leaves room (a hint for a producer about to sleep: take_pending decides).
    [[nodiscard]] bool room_for(lane& own, std::size_t size) noexcept {
        if (own.ring.full_for(size)) return false;
        return !bounded_ || pending_total_.load(std::memory_order_relaxed) < options_.max_pending;
    }

    /// A record of `size` bytes in `own`, counted against max_pending; null if either is full.
    [[nodiscard]] record_header* try_take(lane& own, std::size_t size) noexcept {
        record_header* at = own.ring.try_claim(size);
        if (at == nullptr || (bounded_ && !take_pending())) return nullptr;
        return at;
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
        if (!attachments_.retiring() && (halted() || !has_work())) {
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
        auto* created = new lane(options_.lane_bytes, options_.capacity, id_);
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

    /// The lane (or, with max_pending, the executor) is full: apply the overflow policy.
    /// Returns a record of `size` bytes counted against max_pending, or null if refused.
    record_header* claim_when_full(lane& own, std::size_t size) {
        switch (options_.on_full) {
            case overflow::drop:
                dropped_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
                return nullptr;
            case overflow::fail:
                throw queue_full(
                    "tidings: an executor's queue is full (overflow::fail): the publishing "
                    "thread's lane, or the executor's max_pending");
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
            if (record_header* at = try_take(own, size)) return at;
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
            // wait_strategy::spin included: a producer spins for a while only (wait_policy).
            switch (producer_wait_.phase(since)) {
                case wait_phase::spin:
                    wait_policy::pause();
                    break;
                case wait_phase::yield:
                    std::this_thread::yield();
                    break;
                case wait_phase::block: {
                    const std::uint32_t seen = own.space.load(std::memory_order_acquire);
                    own.producer_waiting.store(true, std::memory_order_relaxed);
                    heavy_barrier();  // pairs with light_barrier in notify_space(_all)
                    TIDINGS_SCHEDULE_POINT();
                    // After reading `seen`: a cancel that incremented `space` before that read
                    // is visible here (see cancel_blocked); one after it ends the wait.
                    if (!room_for(own, size) && accepting_.load(std::memory_order_relaxed) &&
                        !blocked.canceled()) {
                        own.space.wait(seen, std::memory_order_acquire);
                    }
                    own.producer_waiting.store(false, std::memory_order_relaxed);
                    break;
                }
            }
        }
    }

    const executor_options options_;
    const wait_policy consumer_wait_;  // wait_for_work
    const wait_policy producer_wait_;  // claim_when_full: never spins for ever
    const std::uint64_t id_;
    // max_pending is set: on or off for the executor's life.
    const bool bounded_ = options_.max_pending != executor_options::unbounded;
    std::atomic<lane*> lanes_{nullptr};

    alignas(cache_line_size) std::atomic<bool> accepting_{true};
    std::atomic<bool> halted_{false};  // read before each task: beside the read-mostly flag
    std::atomic<bool> sleeping_{false};
    std::atomic<std::uint64_t> consumer_token_{0};  // this_thread_token() of the consumer
    std::atomic<std::uint64_t> runner_{0};          // manual: the token of the thread inside a run

    alignas(cache_line_size) std::atomic<std::uint32_t> wake_{0};
    lane* cursor_ = nullptr;  // consumer-only: the lane run_some served last (off the
                              // producers' read-mostly line: written every call)
    std::atomic<std::uint64_t> executed_{0};   // single writer: the consumer
    std::atomic<std::uint64_t> cancelled_{0};  // single writer: the consumer
    std::atomic<std::uint64_t> discarded_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> rejected_{0};

    executor_attachments attachments_;  // the buses kept alive (detail/attachments.hpp)

    // max_pending: the count of pending tasks across lanes (when bounded_), written by every
    // producer and the consumer: a line of its own.
    alignas(cache_line_size) std::atomic<std::size_t> pending_total_{0};
};

/// Implemented by both executors, so that deliver_on can take either.
template <class Executor>
concept executor_type = requires(Executor& executor) {
    { executor.core() } -> std::same_as<executor_core&>;
};

}  // namespace tidings::detail
