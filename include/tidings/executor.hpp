#pragma once
/// @file executor.hpp
/// @brief Where queued deliveries run: tidings::manual_executor (the user's loop runs it) and
/// tidings::thread_executor (owns a worker thread), and tidings::deliver_on to choose one.
///
/// Both are thin owners of a detail::executor_core (detail/executor_core.hpp), which holds
/// the lanes, the waits and the stop protocol; their options, stats and exceptions are in
/// delivery.hpp. Design: an executor has one lane per producer thread, so the events one
/// thread publishes reach it in the order it published them, across event types
/// (per-producer FIFO).

#include <tidings/delivery.hpp>
#include <tidings/detail/epoch.hpp>
#include <tidings/detail/executor_core.hpp>
#include <tidings/detail/fatal_misuse.hpp>
#include <tidings/detail/lanes.hpp>
#include <tidings/fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

namespace tidings {

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
    /// @throws std::invalid_argument for options out of range (executor_options says each
    /// field's range); std::bad_alloc.
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
    /// @throws std::invalid_argument for options out of range (executor_options says each
    /// field's range); std::system_error if the thread cannot be started; std::bad_alloc. Strong
    /// guarantee: no thread is left running, nothing leaks (tests/allocation_failure.cpp).
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
        detail::executor_core::refuse_stop_inside_handler();
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
